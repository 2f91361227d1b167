//! ICMP echo (`icmp_ping`) and UDP reachability (`udp_icmp`).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use surge_ping::{Client, Config, PingIdentifier, PingSequence, SurgeError, ICMP};
use tokio::net::UdpSocket;
use vantage_core::health::{FailureReason, Outcome};

use crate::net::resolve;
use crate::Target;

/// ICMP sockets, one per address family, opened once. Opening needs a raw socket (root or
/// CAP_NET_RAW) or unprivileged ICMP (`net.ipv4.ping_group_range`); where the system refuses
/// both, ICMP checks fail with a logged explanation instead of crashing the location.
pub(crate) struct Pingers {
    v4: Result<Client, String>,
    v6: Result<Client, String>,
    ident: AtomicU16,
}

impl std::fmt::Debug for Pingers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pingers")
            .field("v4", &self.v4.is_ok())
            .field("v6", &self.v6.is_ok())
            .finish()
    }
}

fn open(kind: ICMP, source: Option<IpAddr>) -> Result<Client, String> {
    let mut cfg = Config::builder().kind(kind);
    if let Some(ip) = source.filter(|ip| ip.is_ipv4() == matches!(kind, ICMP::V4)) {
        cfg = cfg.bind(SocketAddr::new(ip, 0));
    }
    Client::new(&cfg.build()).map_err(|e| {
        let why = format!("cannot open an ICMP socket ({e}); icmp_ping and udp_icmp checks will fail here — run as root, grant CAP_NET_RAW, or widen net.ipv4.ping_group_range");
        tracing::warn!("{why}");
        why
    })
}

impl Pingers {
    pub(crate) fn new(source: Option<IpAddr>) -> Self {
        Self {
            v4: open(ICMP::V4, source),
            v6: open(ICMP::V6, source),
            ident: AtomicU16::new(1),
        }
    }

    pub(crate) async fn ping(
        &self,
        target: &Target<'_>,
        limit: Duration,
    ) -> Result<Duration, FailureReason> {
        let addr = resolve(target.address, 0, None).await?;
        let client = match addr.ip() {
            IpAddr::V4(_) => &self.v4,
            IpAddr::V6(_) => &self.v6,
        };
        let client = client.as_ref().map_err(|why| {
            tracing::debug!(target = target.address, "{why}");
            FailureReason::Other
        })?;
        let ident = PingIdentifier(self.ident.fetch_add(1, Ordering::Relaxed));
        let mut pinger = client.pinger(addr.ip(), ident).await;
        pinger.timeout(limit);
        match pinger.ping(PingSequence(0), &[0u8; 16]).await {
            Ok((_, rtt)) => Ok(rtt),
            Err(SurgeError::Timeout { .. }) => Err(FailureReason::Other),
            Err(SurgeError::IOError(e)) => Err(crate::net::connect_failure(&e)),
            Err(_) => Err(FailureReason::Other),
        }
    }
}

/// After a good ping, a datagram to the port: an ICMP port-unreachable (seen as a refused
/// `recv` on a connected socket) means unhealthy; silence or an answer means the port is open.
pub(crate) async fn udp_icmp(
    pingers: &Pingers,
    source: Option<IpAddr>,
    target: &Target<'_>,
    limit: Duration,
) -> Result<Outcome, FailureReason> {
    let spent = pingers.ping(target, limit).await?;
    let addr = resolve(target.address, target.port(), source).await?;
    let bind: SocketAddr = match (source, addr) {
        (Some(ip), _) if ip.is_ipv4() == addr.is_ipv4() => SocketAddr::new(ip, 0),
        (_, SocketAddr::V4(_)) => "0.0.0.0:0".parse().map_err(|_| FailureReason::Other)?,
        (_, SocketAddr::V6(_)) => "[::]:0".parse().map_err(|_| FailureReason::Other)?,
    };
    let socket = UdpSocket::bind(bind)
        .await
        .map_err(|e| crate::net::connect_failure(&e))?;
    socket
        .connect(addr)
        .await
        .map_err(|e| crate::net::connect_failure(&e))?;
    socket
        .send(b"vantage health check")
        .await
        .map_err(|e| refused(&e))?;
    // Silence means open, so this wait must end before the check's own time limit does
    // (else a busy machine turns an open port into a timeout): it keeps a margin.
    let wait = limit
        .saturating_sub(spent)
        .saturating_sub(Duration::from_millis(100))
        .min(Duration::from_secs(1));
    let mut buf = [0u8; 64];
    match tokio::time::timeout(wait, socket.recv(&mut buf)).await {
        Err(_) | Ok(Ok(_)) => Ok(Outcome::Reached),
        Ok(Err(e)) => Err(refused(&e)),
    }
}

fn refused(e: &io::Error) -> FailureReason {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => FailureReason::Other,
        _ => crate::net::connect_failure(e),
    }
}
