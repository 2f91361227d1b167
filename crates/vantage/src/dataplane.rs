//! Wiring of the data plane into `vantage serve` and `vantage edge`: the flags, and the proxy
//! and DNS listeners that read the routing table the caller keeps current (from the
//! controller in-process, or from a controller across the network on an edge).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use tokio::task::JoinHandle;
use vantage_core::region::RegionCode;
use vantage_core::routing::RoutingTable;
use vantage_dataplane::dns::{Dns, DnsConfig};
use vantage_dataplane::geo::{GeoTable, Locality};
use vantage_dataplane::limit::ConnectionLimit;
use vantage_dataplane::{Proxy, ProxyConfig};

#[derive(Debug, clap::Args)]
pub struct DataPlaneArgs {
    /// Serve proxied load balancers (`proxied: true`) over HTTP/1.1 and HTTP/2 here.
    #[arg(long, env = "VANTAGE_PROXY_LISTEN")]
    proxy_listen: Option<SocketAddr>,
    /// Terminate TLS on the proxy with this certificate chain (PEM); needs --proxy-tls-key.
    #[arg(long, env = "VANTAGE_PROXY_TLS_CERT", requires = "proxy_tls_key")]
    proxy_tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --proxy-tls-cert.
    #[arg(long, env = "VANTAGE_PROXY_TLS_KEY", requires = "proxy_tls_cert")]
    proxy_tls_key: Option<PathBuf>,
    /// Seconds to establish a connection to an origin before answering 522.
    #[arg(long, default_value_t = 5)]
    proxy_connect_timeout: u64,
    /// Seconds to wait for an origin's response headers before answering 524.
    #[arg(long, default_value_t = 100)]
    proxy_response_timeout: u64,
    /// Seconds an idle connection to an origin is kept for reuse (keep it below the origins'
    /// own keep-alive timeout).
    #[arg(long, default_value_t = 15)]
    proxy_idle_timeout: u64,
    /// Seconds an origin's response body may stall before the client's response is aborted.
    #[arg(long, default_value_t = 100)]
    proxy_body_idle_timeout: u64,
    /// Largest request header block accepted; larger ones answer 431.
    #[arg(long, default_value_t = 32 * 1024, value_parser = clap::value_parser!(u64).range(8192..=1_048_576))]
    proxy_max_header_bytes: u64,
    /// Answer a request carrying `Vantage-Debug: rules` with a `Vantage-Rules-Matched`
    /// header naming the load-balancing rules that matched it (`none` when none did).
    #[arg(long, env = "VANTAGE_PROXY_RULES_DEBUG")]
    proxy_rules_debug: bool,
    /// This data plane's PoP code (three letters, as `pop_pools` keys), for `pop_pools`.
    #[arg(long, env = "VANTAGE_PROXY_POP", value_parser = parse_pop)]
    proxy_pop: Option<String>,
    /// This data plane's country (ISO 3166-1 alpha-2), for `country_pools`.
    #[arg(long, env = "VANTAGE_PROXY_COUNTRY", value_parser = parse_country)]
    proxy_country: Option<String>,
    /// This data plane's region, for `region_pools` and dynamic latency (defaults to the
    /// country's region).
    #[arg(long, env = "VANTAGE_PROXY_REGION", value_parser = crate::process::parse_region)]
    proxy_region: Option<RegionCode>,
    /// This data plane's coordinates `LAT,LON`, for proximity steering.
    #[arg(long, env = "VANTAGE_PROXY_COORDINATES", value_parser = parse_coordinates)]
    proxy_coordinates: Option<(f64, f64)>,
    /// A file of `CIDR COUNTRY [REGION]` lines: clients in a listed network are steered as
    /// coming from there (longest prefix wins).
    #[arg(long, env = "VANTAGE_GEO_FILE")]
    geo_file: Option<PathBuf>,
    /// Answer DNS (UDP and TCP) for the zones here.
    #[arg(long, env = "VANTAGE_DNS_LISTEN")]
    dns_listen: Option<SocketAddr>,
    /// Addresses DNS answers for proxied load balancers (the proxy's public addresses);
    /// repeatable.
    #[arg(long = "dns-proxy-address")]
    dns_proxy_addresses: Vec<IpAddr>,
    /// A nameserver of the fleet, named at every zone's apex (NS) and, first, as the SOA's
    /// primary: `NAME` or `NAME=ADDRESS[,ADDRESS…]` (addresses are given as glue for names
    /// inside the zone); repeatable. None: `ns.<zone>`.
    #[arg(
        long = "dns-nameserver",
        env = "VANTAGE_DNS_NAMESERVERS",
        value_delimiter = ' '
    )]
    dns_nameservers: Vec<vantage_dataplane::dns::Nameserver>,
    /// Response-rate limiting: UDP answers per second to one client network (IPv4 /24,
    /// IPv6 /56), also the burst; 0 turns it off. TCP is never limited.
    #[arg(long, env = "VANTAGE_DNS_RRL_RATE", default_value_t = 20)]
    dns_rrl_rate: u32,
    /// Of the answers over the rate, every Nth is sent truncated (so real resolvers retry
    /// over TCP) and the rest dropped; 0 drops all, 1 truncates all.
    #[arg(long, default_value_t = 2)]
    dns_rrl_slip: u32,
}

fn parse_country(s: &str) -> Result<String, String> {
    let c = s.to_ascii_uppercase();
    if RegionCode::is_known_country(&c) {
        Ok(c)
    } else {
        Err("not an ISO 3166-1 alpha-2 country code".into())
    }
}

/// A PoP code as `pop_pools` stores its keys (upper case), so `ams` matches `AMS`.
fn parse_pop(s: &str) -> Result<String, String> {
    if s.len() == 3 && s.bytes().all(|b| b.is_ascii_alphabetic()) {
        Ok(s.to_ascii_uppercase())
    } else {
        Err("a PoP code is three letters (an IATA airport code, such as AMS)".into())
    }
}

fn parse_coordinates(s: &str) -> Result<(f64, f64), String> {
    let (lat, lon) = s.split_once(',').ok_or("expected LAT,LON")?;
    let lat: f64 = lat.trim().parse().map_err(|_| "latitude is not a number")?;
    let lon: f64 = lon
        .trim()
        .parse()
        .map_err(|_| "longitude is not a number")?;
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return Err("latitude is within ±90 and longitude within ±180".into());
    }
    Ok((lat, lon))
}

impl DataPlaneArgs {
    pub fn wanted(&self) -> bool {
        self.proxy_listen.is_some() || self.dns_listen.is_some()
    }

    /// How many connection-accepting listeners these flags open (the proxy, DNS over TCP).
    pub fn listeners(&self) -> usize {
        usize::from(self.proxy_listen.is_some()) + usize::from(self.dns_listen.is_some())
    }

    fn locality(&self) -> Locality {
        let region = self.proxy_region.or_else(|| {
            self.proxy_country
                .as_deref()
                .and_then(|c| RegionCode::of_place(c, None))
        });
        Locality {
            pop: self.proxy_pop.clone(),
            country: self.proxy_country.clone(),
            region,
            coordinates: self.proxy_coordinates,
        }
    }
}

/// The bound data-plane listeners, ready to serve.
pub struct DataPlane {
    routes: Arc<ArcSwap<RoutingTable>>,
    region: Option<RegionCode>,
    proxy: Option<(
        Proxy,
        Vec<std::net::TcpListener>,
        Option<tokio_rustls::TlsAcceptor>,
    )>,
    dns: Option<(Arc<Dns>, std::net::UdpSocket, tokio::net::TcpListener)>,
}

impl std::fmt::Debug for DataPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataPlane").finish_non_exhaustive()
    }
}

impl DataPlane {
    /// The addresses this data plane listens on (the proxy, DNS).
    pub fn local_addrs(&self) -> Vec<std::net::SocketAddr> {
        let proxy = self
            .proxy
            .iter()
            .flat_map(|(_, sockets, _)| sockets.iter().filter_map(|s| s.local_addr().ok()));
        let dns = self
            .dns
            .iter()
            .flat_map(|(_, udp, tcp)| [udp.local_addr().ok(), tcp.local_addr().ok()])
            .flatten();
        proxy.chain(dns).collect()
    }

    /// The routing table the listeners read; the caller keeps it current.
    pub fn routes(&self) -> Arc<ArcSwap<RoutingTable>> {
        Arc::clone(&self.routes)
    }

    /// The region this data plane steers from.
    pub fn region(&self) -> Option<RegionCode> {
        self.region
    }

    /// Reads the geo file and certificates and binds the listeners, so that every mistake
    /// stops the start; each listener accepts at most `connections` at once.
    pub async fn bind(
        args: &DataPlaneArgs,
        metrics: Arc<vantage_metrics::Metrics>,
        connections: usize,
    ) -> anyhow::Result<DataPlane> {
        let geo = match &args.geo_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                let table =
                    GeoTable::parse(&text).with_context(|| format!("in {}", path.display()))?;
                Some(Arc::new(table))
            }
            None => None,
        };
        let locality = args.locality();
        let routes = Arc::new(ArcSwap::from_pointee(RoutingTable::default()));
        let proxy = match args.proxy_listen {
            Some(addr) => {
                // One socket per worker thread, all on one port (SO_REUSEPORT).
                let first =
                    reuse_port(addr).with_context(|| format!("binding the proxy to {addr}"))?;
                let bound = first.local_addr()?;
                let mut sockets = vec![first];
                let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
                for _ in 1..workers {
                    sockets.push(
                        reuse_port(bound)
                            .with_context(|| format!("binding the proxy to {bound}"))?,
                    );
                }
                let tls = match (&args.proxy_tls_cert, &args.proxy_tls_key) {
                    (Some(c), Some(k)) => Some(crate::tls::acceptor(c, k)?),
                    _ => None,
                };
                let config = ProxyConfig {
                    locality: locality.clone(),
                    geo: geo.clone(),
                    connect_timeout: Duration::from_secs(args.proxy_connect_timeout.max(1)),
                    response_timeout: Duration::from_secs(args.proxy_response_timeout.max(1)),
                    idle_timeout: Duration::from_secs(args.proxy_idle_timeout.max(1)),
                    body_idle_timeout: Duration::from_secs(args.proxy_body_idle_timeout.max(1)),
                    max_header_bytes: usize::try_from(args.proxy_max_header_bytes)
                        .unwrap_or(32 * 1024),
                    connections: ConnectionLimit::new(connections),
                    client_idle_timeout: Duration::from_secs(120),
                    metrics: Arc::clone(&metrics),
                    rules_debug: args.proxy_rules_debug,
                };
                let proxy = Proxy::new(Arc::clone(&routes), config);
                Some((proxy, sockets, tls))
            }
            None => None,
        };
        let dns = match args.dns_listen {
            Some(addr) => {
                let (udp, tcp) = dns_sockets(addr).await?;
                let config = DnsConfig {
                    locality: locality.clone(),
                    geo,
                    proxy_addresses: args.dns_proxy_addresses.clone(),
                    metrics: Arc::clone(&metrics),
                    rrl_rate: args.dns_rrl_rate,
                    rrl_slip: args.dns_rrl_slip,
                    tcp_connections: ConnectionLimit::new(connections),
                    nameservers: args.dns_nameservers.clone(),
                    ..DnsConfig::default()
                };
                Some((Arc::new(Dns::new(Arc::clone(&routes), config)), udp, tcp))
            }
            None => None,
        };
        Ok(DataPlane {
            routes,
            region: locality.region,
            proxy,
            dns,
        })
    }

    /// Starts the listeners (which stop by themselves on SIGTERM, after draining).
    pub fn start(self) -> anyhow::Result<Vec<JoinHandle<()>>> {
        let mut listeners = Vec::new();
        if let Some((proxy, sockets, tls)) = self.proxy {
            let addr = sockets[0].local_addr()?;
            let scheme = if tls.is_some() { "https" } else { "http" };
            let workers = sockets.len();
            // One single-threaded runtime per core, each accepting on its own SO_REUSEPORT
            // socket: a connection and its origin connections live on one thread, with no
            // work stealing or cross-thread wake-ups on the request path.
            tracing::info!("proxy serving on {addr} ({scheme}, {workers} threads)");
            for (i, socket) in sockets.into_iter().enumerate() {
                let proxy = proxy.worker();
                let tls = tls.clone();
                let thread = std::thread::Builder::new()
                    .name(format!("vantage-proxy-{i}"))
                    .spawn(move || {
                        let runtime = match tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                        {
                            Ok(r) => r,
                            Err(e) => {
                                tracing::error!(error = %e, "proxy worker runtime");
                                return;
                            }
                        };
                        runtime.block_on(async move {
                            let socket = match tokio::net::TcpListener::from_std(socket) {
                                Ok(l) => l,
                                Err(e) => {
                                    tracing::error!(error = %e, "proxy worker listener");
                                    return;
                                }
                            };
                            Arc::new(proxy)
                                .serve(socket, tls, crate::process::shutdown_signal())
                                .await;
                        });
                    })?;
                listeners.push(tokio::task::spawn_blocking(move || {
                    let _ = thread.join();
                }));
            }
        }
        if let Some((dns, udp, tcp)) = self.dns {
            tracing::info!("dns serving on {} (udp and tcp)", udp.local_addr()?);
            // One blocking reader thread per core on the same socket keeps both cores
            // answering; each looks at `stop` between reads (the socket's read timeout).
            udp.set_read_timeout(Some(Duration::from_millis(200)))?;
            let stop = Arc::new(AtomicBool::new(false));
            let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
            for i in 0..workers {
                let (dns, socket, stop) = (Arc::clone(&dns), udp.try_clone()?, Arc::clone(&stop));
                let thread = std::thread::Builder::new()
                    .name(format!("vantage-dns-{i}"))
                    .spawn(move || dns.serve_udp_blocking(&socket, &stop))?;
                listeners.push(tokio::task::spawn_blocking(move || {
                    let _ = thread.join();
                }));
            }
            listeners.push(tokio::spawn(async move {
                crate::process::shutdown_signal().await;
                stop.store(true, Ordering::Relaxed);
            }));
            listeners.push(tokio::spawn(
                dns.serve_tcp(tcp, crate::process::shutdown_signal()),
            ));
        }
        Ok(listeners)
    }
}

/// The installation's secret for affinity cookies, made once (32 random bytes, mode 0600) and
/// kept in the data directory so that pins survive restarts. Only controllers hold it: edges
/// receive origin identities already keyed.
pub fn affinity_secret(dir: &std::path::Path) -> anyhow::Result<Arc<[u8]>> {
    let path = dir.join("affinity.key");
    match std::fs::read(&path) {
        Ok(bytes) if bytes.len() >= 32 => return Ok(bytes.into()),
        Ok(_) => anyhow::bail!("{} is shorter than 32 bytes", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    let secret: [u8; 32] = rand::random();
    let mut file = vantage_control::secrets::open_private(&path, true)
        .with_context(|| format!("creating {}", path.display()))?;
    std::io::Write::write_all(&mut file, &secret)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(secret.to_vec().into())
}

/// DNS's UDP socket and TCP listener on one port. With port 0, the port UDP got may be taken
/// for TCP by someone else: then both are tried again on another (a few times).
async fn dns_sockets(
    addr: SocketAddr,
) -> anyhow::Result<(std::net::UdpSocket, tokio::net::TcpListener)> {
    let mut attempts = if addr.port() == 0 { 10 } else { 1 };
    loop {
        let udp = udp_socket(addr).with_context(|| format!("binding DNS (UDP) to {addr}"))?;
        let tcp_addr = udp.local_addr()?;
        match tokio::net::TcpListener::bind(tcp_addr).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && attempts > 1 => attempts -= 1,
            Err(e) => {
                return Err(e).with_context(|| format!("binding DNS (TCP) to {tcp_addr}"));
            }
        }
    }
}

/// The DNS socket, with buffers big enough for a burst of queries (the default 208 KiB holds
/// only a couple of hundred datagrams; the kernel caps the request at `rmem_max`).
fn udp_socket(addr: SocketAddr) -> anyhow::Result<std::net::UdpSocket> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    let _ = socket.set_recv_buffer_size(4 << 20);
    let _ = socket.set_send_buffer_size(4 << 20);
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// A listening socket on `addr` that others may share (SO_REUSEPORT), not yet tied to a
/// runtime (a tokio listener belongs to the runtime that registers it).
fn reuse_port(addr: SocketAddr) -> anyhow::Result<std::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    Ok(socket.listen(4096)?.into_std()?)
}
