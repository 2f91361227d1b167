//! The authoritative DNS listener: for every zone, the A/AAAA records of the origins the
//! core selects for each non-proxied load balancer (contract §5 rule 6), the SOA when
//! nothing can take traffic, NXDOMAIN for names the zone does not have. hickory-proto does
//! the wire format; the answers come from the routing snapshot.
//!
//! Abuse it is hardened against: UDP answers are rate limited per client network
//! ([`crate::rrl`]) because they amplify forged queries; zone transfers are refused (the
//! zones are computed, not files to hand out); a TCP client gets `tcp_idle_timeout` for
//! every read *and* every write, so one that sends queries and never reads the answers
//! cannot pin a connection and its send queue.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use hickory_proto::op::{Edns, Header, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_proto::rr::rdata::{A, AAAA, NS, SOA};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use vantage_core::routing::{DnsAnswer, DnsLookup, Route, RoutingTable, ZoneView};
use vantage_core::rules::{DnsFacts, Facts, Ruled};

use crate::geo::{self, GeoTable, Locality};
use crate::rrl::{RateLimiter, Verdict};

/// The largest UDP answer we send (the EDNS payload the DNS flag day settled on).
const MAX_UDP: u16 = 1232;
/// TTL of the SOA record and of negative answers: short, so a pool coming back is seen soon.
const NEGATIVE_TTL: u32 = 30;

#[derive(Debug, Clone)]
pub struct DnsConfig {
    pub locality: Locality,
    pub geo: Option<Arc<GeoTable>>,
    /// Addresses answered for proxied load balancers (the proxy's public addresses); none
    /// means proxied names have no A/AAAA data here.
    pub proxy_addresses: Vec<IpAddr>,
    pub metrics: Arc<vantage_metrics::Metrics>,
    /// How long a TCP connection may wait for the client's next query, and how long one
    /// write of an answer may take, before it is closed.
    pub tcp_idle_timeout: Duration,
    /// UDP answers per second to one client network (IPv4 /24, IPv6 /56), also the burst;
    /// 0 turns response-rate limiting off. TCP is never limited.
    pub rrl_rate: u32,
    /// Of the answers over the limit, every `rrl_slip`-th is sent truncated (TC=1, no
    /// records) so a real resolver retries over TCP; the rest are dropped. 0 drops all,
    /// 1 truncates all.
    pub rrl_slip: u32,
    /// TCP connections open at once; one more is closed at once.
    pub tcp_connections: crate::limit::ConnectionLimit,
    /// The nameservers every zone's apex names (NS), with the addresses given for glue; the
    /// first is the SOA's primary. None: `ns.<zone>`.
    pub nameservers: Vec<Nameserver>,
}

/// One of the fleet's nameservers: `--dns-nameserver NAME[=ADDRESS,…]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nameserver {
    /// Lower case, without the trailing dot.
    pub name: String,
    pub addresses: Vec<IpAddr>,
}

impl std::str::FromStr for Nameserver {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (name, addresses) = match s.split_once('=') {
            Some((n, a)) => (n, a),
            None => (s, ""),
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if !vantage_core::name::is_hostname(&name) || !name.contains('.') {
            return Err(format!("{name:?} is not a nameserver host name"));
        }
        let addresses = addresses
            .split(',')
            .filter(|a| !a.is_empty())
            .map(|a| a.parse().map_err(|_| format!("{a:?} is not an IP address")))
            .collect::<Result<Vec<IpAddr>, String>>()?;
        Ok(Nameserver { name, addresses })
    }
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            locality: Locality::default(),
            geo: None,
            proxy_addresses: Vec::new(),
            metrics: Arc::default(),
            tcp_idle_timeout: Duration::from_secs(10),
            // NSD's rrl-ratelimit and rrl-slip defaults.
            rrl_rate: 20,
            rrl_slip: 2,
            tcp_connections: crate::limit::ConnectionLimit::new(1_024),
            nameservers: Vec::new(),
        }
    }
}

#[derive(Debug)]
pub struct Dns {
    routes: Arc<ArcSwap<RoutingTable>>,
    config: DnsConfig,
    /// Answers counted by response code; the common codes' series made once.
    answered: std::collections::HashMap<u16, vantage_metrics::CounterHandle>,
    rrl: RateLimiter,
    /// UDP answers the rate limit truncated or dropped, counted under the pseudo response
    /// codes `SLIPPED` and `DROPPED` (each query is counted once, under what it got).
    limited: Option<(
        vantage_metrics::CounterHandle,
        vantage_metrics::CounterHandle,
    )>,
}

/// A lower-case name without the trailing dot, from the raw labels (no IDNA, no escapes).
/// The question a load-balanced answer is for, as rules see it.
struct Question<'a> {
    /// Lower case, without the final dot.
    name: &'a str,
    qtype: u16,
}

fn name_key(name: &Name) -> String {
    let mut s = String::with_capacity(name.len());
    for (i, label) in name.iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        s.extend(label.iter().map(|b| char::from(b.to_ascii_lowercase())));
    }
    s
}

fn fqdn(s: &str) -> Option<Name> {
    Name::from_ascii(format!("{s}.")).ok()
}

/// The zone's nameservers: the configured fleet, else `ns.<zone>`.
fn nameservers(zone: &ZoneView, configured: &[Nameserver]) -> Vec<Nameserver> {
    if configured.is_empty() {
        vec![Nameserver {
            name: format!("ns.{}", zone.name),
            addresses: Vec::new(),
        }]
    } else {
        configured.to_vec()
    }
}

fn soa(zone: &ZoneView, configured: &[Nameserver]) -> Option<Record> {
    let primary = configured
        .first()
        .map_or_else(|| format!("ns.{}", zone.name), |n| n.name.clone());
    let soa = SOA::new(
        fqdn(&primary)?,
        fqdn(&format!("hostmaster.{}", zone.name))?,
        zone.serial,
        10_000,
        2_400,
        604_800,
        NEGATIVE_TTL,
    );
    Some(Record::from_rdata(
        fqdn(&zone.name)?,
        NEGATIVE_TTL,
        RData::SOA(soa),
    ))
}

impl Dns {
    pub fn new(routes: Arc<ArcSwap<RoutingTable>>, config: DnsConfig) -> Dns {
        let answered = [
            ResponseCode::NoError,
            ResponseCode::NXDomain,
            ResponseCode::Refused,
            ResponseCode::FormErr,
            ResponseCode::NotImp,
            ResponseCode::ServFail,
        ]
        .into_iter()
        .map(|c| {
            (
                u16::from(c),
                config.metrics.dns_query_series(&rcode_name(c)),
            )
        })
        .collect();
        let limited = (config.rrl_rate > 0).then(|| {
            (
                config.metrics.dns_query_series("SLIPPED"),
                config.metrics.dns_query_series("DROPPED"),
            )
        });
        Dns {
            routes,
            rrl: RateLimiter::new(config.rrl_rate, config.rrl_slip),
            config,
            answered,
            limited,
        }
    }

    fn count(&self, code: ResponseCode) {
        match self.answered.get(&u16::from(code)) {
            Some(c) => {
                c.inc();
            }
            None => self.config.metrics.dns_query(&rcode_name(code)),
        }
    }

    /// The answer to one query from `client`, serialised; `None` when the packet deserves
    /// no answer (not a query, not even a header). `udp` applies the client's size limit.
    /// No rate limit applies (see [`Dns::answer_udp`]).
    pub fn answer(&self, packet: &[u8], client: IpAddr, udp: bool) -> Option<Vec<u8>> {
        self.reply(packet, client, udp, || Verdict::Send)
    }

    /// The answer to one UDP query from `client` at `now`, under the response-rate limit:
    /// `None` also when the limit drops it.
    pub fn answer_udp(&self, packet: &[u8], client: IpAddr, now: Instant) -> Option<Vec<u8>> {
        self.reply(packet, client, true, || self.rrl.check(client, now))
    }

    /// `limit` is asked only for a packet that has an answer, so packets that get none
    /// (responses, noise) spend no tokens.
    fn reply(
        &self,
        packet: &[u8],
        client: IpAddr,
        udp: bool,
        limit: impl FnOnce() -> Verdict,
    ) -> Option<Vec<u8>> {
        let (response, size) = match Message::from_vec(packet) {
            Ok(query) => {
                if query.message_type != MessageType::Query {
                    return None;
                }
                let size = if udp {
                    query
                        .edns
                        .as_ref()
                        .map_or(512, |e| e.max_payload().clamp(512, MAX_UDP))
                } else {
                    u16::MAX
                };
                (self.respond(&query, client), size)
            }
            Err(_) => {
                let header = Header::read(&mut BinDecoder::new(packet)).ok()?;
                if header.message_type != MessageType::Query {
                    return None;
                }
                let r = Message::error_msg(header.id, header.op_code, ResponseCode::FormErr);
                (r, 512)
            }
        };
        match limit() {
            Verdict::Send => self.count(response.response_code),
            Verdict::Slip => {
                if let Some((slipped, _)) = &self.limited {
                    slipped.inc();
                }
                return response.truncate().to_vec().ok();
            }
            Verdict::Drop => {
                if let Some((_, dropped)) = &self.limited {
                    dropped.inc();
                }
                return None;
            }
        }
        let bytes = response.to_vec().ok()?;
        if bytes.len() <= usize::from(size) {
            Some(bytes)
        } else {
            response.truncate().to_vec().ok()
        }
    }

    fn respond(&self, query: &Message, client: IpAddr) -> Message {
        let mut r = Message::response(query.id, query.op_code);
        r.metadata.recursion_desired = query.recursion_desired;
        let ecs = query
            .edns
            .as_ref()
            .and_then(|e| match e.option(EdnsCode::Subnet) {
                Some(EdnsOption::Subnet(cs)) => Some(*cs),
                _ => None,
            });
        if let Some(e) = &query.edns {
            let mut out = Edns::new();
            out.set_max_payload(MAX_UDP);
            out.set_version(0);
            r.set_edns(out);
            if e.version() > 0 {
                r.metadata.response_code = ResponseCode::BADVERS;
                return r;
            }
        }
        if query.op_code != OpCode::Query {
            r.metadata.response_code = ResponseCode::NotImp;
            return r;
        }
        let [q] = query.queries.as_slice() else {
            r.metadata.response_code = ResponseCode::FormErr;
            return r;
        };
        r.add_query(q.clone());
        if q.query_class() != DNSClass::IN {
            r.metadata.response_code = ResponseCode::Refused;
            return r;
        }
        // No zone transfers: an empty NOERROR is a malformed transfer, not a refusal, and
        // REFUSED is what BIND, NSD and Knot answer a transfer they do not allow.
        if matches!(q.query_type(), RecordType::AXFR | RecordType::IXFR) {
            r.metadata.response_code = ResponseCode::Refused;
            return r;
        }
        let name = name_key(q.name());
        let table = self.routes.load();
        let Some(zone) = table.zone_of(&name) else {
            r.metadata.response_code = ResponseCode::Refused;
            return r;
        };
        r.metadata.authoritative = true;
        let owner = q.name().clone();
        let qtype = q.query_type();
        let wants = |t: RecordType| qtype == t || qtype == RecordType::ANY;
        let found = table.dns_lookup(zone, &name);
        if name == zone.name {
            if wants(RecordType::SOA) {
                r.answers.extend(soa(zone, &self.config.nameservers));
            }
            if wants(RecordType::NS) {
                for ns in nameservers(zone, &self.config.nameservers) {
                    let Some(target) = fqdn(&ns.name) else {
                        continue;
                    };
                    r.add_answer(Record::from_rdata(
                        owner.clone(),
                        86_400,
                        RData::NS(NS(target.clone())),
                    ));
                    // Glue only for names inside the zone: an address for a name elsewhere
                    // is not ours to give.
                    let inside = ns.name.ends_with(&format!(".{}", zone.name));
                    for ip in ns.addresses.iter().filter(|_| inside) {
                        let data = match ip {
                            IpAddr::V4(v4) => RData::A(A(*v4)),
                            IpAddr::V6(v6) => RData::AAAA(AAAA(*v6)),
                        };
                        r.add_additional(Record::from_rdata(target.clone(), 86_400, data));
                    }
                }
            }
        }
        let mut scope = 0;
        match found {
            DnsLookup::Route(route) if wants(RecordType::A) || wants(RecordType::AAAA) => {
                let question = Question {
                    name: &name,
                    qtype: u16::from(qtype),
                };
                let (addresses, used, ttl) = self.addresses(&route, client, ecs, &question);
                scope = used;
                for ip in addresses {
                    let data = match ip {
                        IpAddr::V4(v4) if wants(RecordType::A) => RData::A(A(v4)),
                        IpAddr::V6(v6) if wants(RecordType::AAAA) => RData::AAAA(AAAA(v6)),
                        _ => continue,
                    };
                    r.add_answer(Record::from_rdata(owner.clone(), ttl, data));
                }
            }
            DnsLookup::Route(_) | DnsLookup::Exists => {}
            DnsLookup::NxDomain => r.metadata.response_code = ResponseCode::NXDomain,
        }
        // RFC 7871: echo the client subnet with the scope the answer depends on.
        if let (Some(cs), Some(edns)) = (ecs, r.edns.as_mut()) {
            edns.options_mut()
                .insert(EdnsOption::Subnet(ClientSubnet::new(
                    cs.addr(),
                    cs.source_prefix(),
                    scope,
                )));
        }
        if r.answers.is_empty() {
            // No data (or no such name): the SOA tells resolvers how long to remember that.
            r.authorities.extend(soa(zone, &self.config.nameservers));
        }
        r
    }

    /// The addresses for a load-balanced name, the ECS scope they were chosen for (the
    /// source prefix when the client subnet steered the answer, else 0), and their TTL.
    fn addresses(
        &self,
        route: &Route,
        resolver: IpAddr,
        ecs: Option<ClientSubnet>,
        question: &Question<'_>,
    ) -> (Vec<IpAddr>, u8, u32) {
        let ruled = if route.spec.rules.is_empty() || route.spec.proxied || !route.spec.enabled {
            Ruled::none(&route.spec)
        } else {
            let ecs_addr = ecs.filter(|cs| cs.source_prefix() > 0).map(|cs| cs.addr());
            let qname = format!("{}.", question.name);
            let facts = Facts {
                name: &route.spec.name,
                region: self.config.locality.region.map(|r| r.code()),
                // Cloudflare: the client subnet's address when the query has one, else the
                // resolver's, whatever the load balancer's location strategy.
                ip: Some(ecs_addr.unwrap_or(resolver)),
                http: None,
                dns: Some(DnsFacts {
                    name: &qname,
                    qtype: question.qtype,
                    // Every message answered here is a question (Cloudflare's meaning).
                    qu: true,
                    ecs: ecs_addr,
                }),
            };
            let ruled = route.spec.ruled(&facts);
            for &i in &ruled.matched {
                if let Some(rule) = route.spec.rules.get(i) {
                    self.config
                        .metrics
                        .rule_match(&route.spec.name, &rule.label(i), "dns");
                }
            }
            ruled
        };
        let spec = &*ruled.spec;
        let subnet = ecs.filter(|cs| cs.source_prefix() > 0 && spec.prefers_ecs());
        let client = spec.locate(resolver, subnet.map(|cs| cs.addr()));
        let mut ctx = geo::context(&self.config.locality, self.config.geo.as_deref(), client);
        ctx.random = rand::random();
        // The answer depends on the client subnet when it steered by geography, or when a
        // rule read the client's address.
        let by_rules = route.spec.rules.read_client() && !ruled.spec.proxied;
        let scope = match (ecs.filter(|cs| cs.source_prefix() > 0), subnet) {
            (Some(cs), _) if by_rules => cs.source_prefix(),
            (_, Some(cs)) if self.config.geo.is_some() => cs.source_prefix(),
            _ => 0,
        };
        let ttl = spec.ttl;
        match route.dns(spec, ctx) {
            DnsAnswer::Addresses { addresses, pool } => {
                let pool = route.pool_names.get(&pool).map_or("", String::as_str);
                self.config.metrics.dns_answer(&route.spec.name, pool);
                (addresses, scope, ttl)
            }
            DnsAnswer::Proxied => (self.config.proxy_addresses.clone(), 0, ttl),
            DnsAnswer::Nothing => (Vec::new(), scope, ttl),
        }
    }

    /// Answers UDP queries on the calling thread, blocking on `socket`, until `stop` is set
    /// (looked at whenever a read times out: give the socket a read timeout). Several
    /// threads may share one socket; the kernel wakes one of them per datagram.
    ///
    /// A thread of its own, not a task, that takes every queued query in one call
    /// ([`crate::datagrams`]): a runtime added a readiness poll, a wake-up and a context
    /// switch per query (profiled: those were most of the time, hickory's encoding under 5 %).
    pub fn serve_udp_blocking(&self, socket: &std::net::UdpSocket, stop: &AtomicBool) {
        let mut receiver = crate::datagrams::Receiver::default();
        let mut sender = crate::datagrams::Sender::default();
        let mut answers = Vec::with_capacity(crate::datagrams::BATCH);
        while !stop.load(Ordering::Relaxed) {
            let batch = match receiver.receive(socket) {
                Ok(batch) => batch,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                    ) =>
                {
                    continue
                }
                Err(e) => {
                    // A lasting error (out of buffers) must not spin the core.
                    tracing::debug!(error = %e, "dns recv failed");
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
            };
            let now = Instant::now();
            answers.extend(batch.filter_map(|(packet, peer)| {
                Some((self.answer_udp(packet, peer.ip(), now)?, peer))
            }));
            sender.send(socket, &answers);
            answers.clear();
        }
    }

    /// Answers DNS over TCP (RFC 7766: length-prefixed, several queries per connection).
    pub async fn serve_tcp(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = crate::accept(&listener, "dns") => accepted,
                () = &mut shutdown => return,
            };
            let Some(place) = self.config.tcp_connections.admit() else {
                continue;
            };
            let dns = self.clone();
            tokio::spawn(async move {
                dns.tcp_connection(stream, peer).await;
                drop(place);
            });
        }
    }

    async fn tcp_connection(&self, mut stream: tokio::net::TcpStream, peer: SocketAddr) {
        let idle = self.config.tcp_idle_timeout;
        loop {
            let mut len = [0u8; 2];
            match tokio::time::timeout(idle, stream.read_exact(&mut len)).await {
                Ok(Ok(_)) => {}
                _ => return,
            }
            let mut packet = vec![0u8; usize::from(u16::from_be_bytes(len))];
            match tokio::time::timeout(idle, stream.read_exact(&mut packet)).await {
                Ok(Ok(_)) => {}
                _ => return,
            }
            let Some(out) = self.answer(&packet, peer.ip(), false) else {
                return;
            };
            let Ok(n) = u16::try_from(out.len()) else {
                return;
            };
            let mut framed = Vec::with_capacity(out.len() + 2);
            framed.extend_from_slice(&n.to_be_bytes());
            framed.extend_from_slice(&out);
            match tokio::time::timeout(idle, stream.write_all(&framed)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return,
                Err(_) => {
                    // A reset, not a FIN: a graceful close would leave the unread answers
                    // queued in the kernel for as long as the client keeps its window shut.
                    let _ = stream.set_zero_linger();
                    return;
                }
            }
        }
    }
}

/// The mnemonic of a response code as `dig` prints it (`NOERROR`, `NXDOMAIN`, …).
fn rcode_name(code: ResponseCode) -> String {
    format!("{code:?}").to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;

    #[test]
    fn unknown_zones_are_refused_and_garbage_dropped() {
        let dns = Dns::new(Arc::default(), DnsConfig::default());
        let mut q = Message::new(7, MessageType::Query, OpCode::Query);
        q.add_query(Query::query(
            Name::from_ascii("www.example.org.").unwrap_or_default(),
            RecordType::A,
        ));
        let out = dns
            .answer(&q.to_vec().unwrap_or_default(), [127, 0, 0, 1].into(), true)
            .unwrap_or_default();
        let r = Message::from_vec(&out).ok();
        assert_eq!(
            r.map(|r| (r.id, r.response_code)),
            Some((7, ResponseCode::Refused))
        );
        assert_eq!(dns.answer(&[1, 2, 3], [127, 0, 0, 1].into(), true), None);
    }
}
