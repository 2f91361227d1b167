//! Routing snapshots: everything the data plane needs to place a request or answer a DNS
//! query, as one immutable value built from the catalog and the health engine. The control
//! plane builds a new table whenever the configuration or a verdict changes and publishes it;
//! the proxy and the DNS listener only ever read a published table, so they never wait on
//! the catalog's lock, the engine or the store.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use crate::catalog::Catalog;
use crate::health::HealthView;
use crate::load_balancer::{LoadBalancerSpec, SessionAffinity, SteeringPolicy};
use crate::region::RegionCode;
use crate::steering::{self, Context, Decision, OriginView, PoolView};
use crate::{LoadBalancerId, PoolId, Timestamp, ZoneId};

mod snapshot;

pub use snapshot::{Latency, PoolRtt, Rtts, Snapshot, SnapshotLoadBalancer, SnapshotPool};

/// Where the data plane sends a request for one origin.
#[derive(Debug, Clone, PartialEq)]
pub struct Upstream {
    pub name: String,
    /// Identifies the origin inside its pool across configuration changes (affinity pins).
    pub key: u64,
    /// `host:port`, IPv6 in brackets, port 80 when the origin sets none (shared: the data
    /// plane keys its connection pools by it).
    pub authority: Arc<str>,
    /// The origin's address as configured (an IP address or a host name).
    pub address: String,
    /// The origin's `header.Host`, which replaces the client's Host.
    pub host: Option<String>,
}

/// One load balancer, ready to steer.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub id: LoadBalancerId,
    pub zone: ZoneId,
    pub spec: LoadBalancerSpec,
    pub pools: HashMap<PoolId, PoolView>,
    /// Per pool, parallel to `pools[id].origins`.
    pub upstreams: HashMap<PoolId, Vec<Upstream>>,
    pub pool_names: HashMap<PoolId, String>,
    /// Probe RTT per pool in milliseconds as seen from the data plane's region: the mean of
    /// its origins' smoothed RTTs (smoothed per sample by the engine).
    pub rtt: HashMap<PoolId, f64>,
}

/// A zone the DNS listener is authoritative for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneView {
    pub id: ZoneId,
    pub name: String,
    /// SOA serial (Unix seconds): the last edit of the zone or its load balancers, or the
    /// last time its answers changed (a verdict), whichever is later; it never goes back.
    pub serial: u32,
}

/// Session affinity: the origin a client is pinned to, stable across configuration changes
/// (the pool's id and the origin's key). Encoded as 48 hex digits in the `__cflb` cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pin {
    pub pool: PoolId,
    pub origin: u64,
}

impl Pin {
    pub fn encode(&self) -> String {
        format!("{}{:016x}", self.pool, self.origin)
    }

    /// Reads a pin back; anything else (tampered, truncated, foreign) is `None`.
    pub fn decode(s: &str) -> Option<Pin> {
        if s.len() != 48 || !s.is_ascii() {
            return None;
        }
        let pool = s[..32].parse().ok()?;
        let origin = u64::from_str_radix(&s[32..], 16).ok()?;
        Some(Pin { pool, origin })
    }
}

/// What a DNS query for a load-balanced name gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsAnswer {
    /// The addresses of the selected pool's origins that can take traffic.
    Addresses {
        pool: PoolId,
        addresses: Vec<IpAddr>,
    },
    /// A proxied load balancer: the proxy's own addresses.
    Proxied,
    /// Nowhere to send it (or the load balancer is disabled): the zone's SOA, no data.
    Nothing,
}

/// Why the proxy does not steer a request for a load balancer it found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// A DNS-only load balancer: the proxy does not serve its name (404).
    NotProxied,
    /// Disabled: nothing serves it (530).
    Disabled,
}

/// What a client's session affinity should become after its request was served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Nothing to change.
    Nothing,
    /// Send this pin in the affinity cookie (it differs from the one the client brought).
    SetCookie(Pin),
    /// Remember this pin under the client's session header, refreshing its TTL.
    Remember(Pin),
}

/// One request's steering, decided by the core: the gate, the first choice (a valid pin, or
/// the policy's pick — for `ip_cookie` one that follows the client's address, so every data
/// plane agrees), the one retry, and what the client's affinity becomes. The data plane
/// supplies facts (where the client is, load, the pin it brought, a random number) and
/// carries the decisions out.
#[derive(Debug, Clone)]
pub struct Session<'r> {
    route: &'r Route,
    /// The load balancer as the request's rules left it.
    spec: Cow<'r, LoadBalancerSpec>,
    ctx: Context,
    pin_in: Option<Pin>,
    pinned: bool,
    /// The client named a session (header affinity) under which a pin may be remembered.
    session_key: bool,
    first: Decision,
}

impl<'r> Session<'r> {
    /// The load balancer this request is steered by (its rules' overrides applied).
    pub fn spec(&self) -> &LoadBalancerSpec {
        &self.spec
    }

    /// The first choice. `None`: no pool can take it (530).
    pub fn target(&self) -> Option<(PoolId, usize)> {
        self.first.target()
    }

    /// Where the request goes after its connection to `failed` could not be made, if it may
    /// go anywhere else: a pinned client with `zero_downtime_failover: none` may not.
    pub fn retry(&self, failed: (PoolId, usize)) -> Option<(PoolId, usize)> {
        let spec = &*self.spec;
        if !steering::may_fail_over(spec, self.pinned) {
            return None;
        }
        steering::retry(spec, &self.route.pools, &self.ctx, failed).target()
    }

    /// What the client's affinity becomes once `used` served the request.
    pub fn keep(&self, used: (PoolId, usize)) -> Keep {
        let spec = &*self.spec;
        let moved = self.first.target() != Some(used);
        let pin = if steering::keeps_pin(spec, self.pinned, moved) {
            self.pin_in
        } else {
            self.route.pin(Decision::Pool {
                pool: used.0,
                origin: used.1,
            })
        };
        match (spec.session_affinity, pin) {
            (SessionAffinity::Cookie | SessionAffinity::IpCookie, Some(p))
                if Some(p) != self.pin_in =>
            {
                Keep::SetCookie(p)
            }
            (SessionAffinity::Header, Some(p)) if self.session_key => Keep::Remember(p),
            _ => Keep::Nothing,
        }
    }
}

impl Route {
    /// Whether the proxy serves this load balancer at all.
    pub fn proxy_gate(&self) -> Result<(), Refused> {
        if !self.spec.proxied {
            Err(Refused::NotProxied)
        } else if !self.spec.enabled {
            Err(Refused::Disabled)
        } else {
            Ok(())
        }
    }

    /// The context steering sees: the data plane's facts plus what the route knows itself
    /// (its pools' RTTs, for dynamic latency).
    fn context(&self, spec: &LoadBalancerSpec, mut ctx: Context) -> Context {
        if spec.steering_policy == SteeringPolicy::DynamicLatency {
            ctx.rtt_ewma = self.rtt.clone();
        }
        ctx
    }

    /// Steers one proxied request. `ctx.random` is a fresh random number; `pin_in` the pin
    /// the client brought (its cookie, or the one remembered under its session header, which
    /// it named when `session_key`).
    ///
    /// `spec` is what the request's rules made of this load balancer (`self.spec.ruled`).
    pub fn session<'r>(
        &'r self,
        spec: Cow<'r, LoadBalancerSpec>,
        ctx: Context,
        client: IpAddr,
        pin_in: Option<Pin>,
        session_key: bool,
    ) -> Session<'r> {
        let mut ctx = self.context(&spec, ctx);
        // A pin to a pool shedding this client's session is dropped: the client is steered
        // anew (and may land in the same pool, under its default shedding).
        let pinned = pin_in
            .and_then(|p| self.pinned(&spec, p, ctx.now))
            .filter(|d| {
                d.target().is_none_or(|(pool, _)| {
                    !self
                        .pools
                        .get(&pool)
                        .is_some_and(|v| v.sheds_session(pool, &ctx))
                })
            });
        if spec.session_affinity == SessionAffinity::IpCookie && pinned.is_none() {
            ctx.random = steering::hash_ip(&client);
        }
        let first = pinned.unwrap_or_else(|| steering::steer(&spec, &self.pools, &ctx));
        Session {
            route: self,
            spec,
            ctx,
            pin_in,
            pinned: pinned.is_some(),
            session_key,
            first,
        }
    }

    /// Answers a DNS query for this load balancer: the proxy's addresses when proxied,
    /// nothing when disabled, else steering's answer.
    ///
    /// `spec` is what the query's rules made of this load balancer (`self.spec.ruled`).
    pub fn dns(&self, spec: &LoadBalancerSpec, ctx: Context) -> DnsAnswer {
        if !self.spec.enabled {
            return DnsAnswer::Nothing;
        }
        if self.spec.proxied {
            return DnsAnswer::Proxied;
        }
        self.dns_answer(spec, &self.context(spec, ctx))
    }

    /// The origin a pin names, when it may still take traffic: its pool is one `spec` can
    /// send to (a rule may have moved this request elsewhere), usable, and the origin
    /// eligible, or disabled less than the load balancer's `drain_duration` before `now`
    /// (a session drains; no new one starts there).
    pub fn pinned(&self, spec: &LoadBalancerSpec, pin: Pin, now: Timestamp) -> Option<Decision> {
        if !spec.names_pool(pin.pool) {
            return None;
        }
        let pool = self.pools.get(&pin.pool).filter(|p| p.usable())?;
        let origin = self
            .upstreams
            .get(&pin.pool)?
            .iter()
            .position(|u| u.key == pin.origin)
            .filter(|i| {
                let o = &pool.origins[*i];
                o.eligible() || o.drains(spec.session_affinity_attributes.drain_duration, now)
            })?;
        Some(Decision::Pool {
            pool: pin.pool,
            origin,
        })
    }

    /// The pin for a decision (to set in a cookie or remember).
    pub fn pin(&self, decision: Decision) -> Option<Pin> {
        let (pool, origin) = decision.target()?;
        let key = self.upstreams.get(&pool)?.get(origin)?.key;
        Some(Pin { pool, origin: key })
    }

    pub fn upstream(&self, pool: PoolId, origin: usize) -> Option<&Upstream> {
        self.upstreams.get(&pool)?.get(origin)
    }

    /// Answers a DNS query (contract §5 rule 6): the pool steering selects, then every origin
    /// of it that can take traffic and has an IP address (host-name origins cannot be put in
    /// an A record).
    pub fn dns_answer(&self, spec: &LoadBalancerSpec, ctx: &Context) -> DnsAnswer {
        let (pool, fallback) = match steering::steer(spec, &self.pools, ctx) {
            Decision::Pool { pool, .. } => (pool, false),
            Decision::Fallback { pool, .. } => (pool, true),
            Decision::Nowhere => return DnsAnswer::Nothing,
        };
        let (Some(view), Some(ups)) = (self.pools.get(&pool), self.upstreams.get(&pool)) else {
            return DnsAnswer::Nothing;
        };
        let pick = |ok: &dyn Fn(&OriginView) -> bool| -> Vec<IpAddr> {
            view.origins
                .iter()
                .zip(ups)
                .filter(|(o, _)| ok(o))
                .filter_map(|(_, u)| u.address.parse().ok())
                .collect()
        };
        let mut addresses = pick(&OriginView::eligible);
        if addresses.is_empty() && fallback {
            addresses = pick(&OriginView::takes_fallback);
        }
        if addresses.is_empty() {
            DnsAnswer::Nothing
        } else {
            DnsAnswer::Addresses { pool, addresses }
        }
    }
}

impl Decision {
    /// The (pool, origin index) a decision sends to.
    pub fn target(self) -> Option<(PoolId, usize)> {
        match self {
            Decision::Pool { pool, origin } | Decision::Fallback { pool, origin } => {
                Some((pool, origin))
            }
            Decision::Nowhere => None,
        }
    }
}

/// Every load balancer by host name, and the zones they live in.
#[derive(Debug, Clone, Default)]
pub struct RoutingTable {
    /// By lower-case name; wildcard load balancers under their `*.` name. Only load balancers
    /// whose zone is the most specific zone of their name: a name delegated to a nested zone
    /// (perhaps another account's) belongs to that zone alone.
    routes: HashMap<String, Arc<Route>>,
    zones: HashMap<String, ZoneView>,
    /// Names with no load balancer but one below them (DNS empty non-terminals).
    interior: std::collections::HashSet<String>,
    /// The snapshot entry each route was made from (the next table reuses a route whose
    /// entry is the same, by pointer).
    made_from: HashMap<LoadBalancerId, Arc<SnapshotLoadBalancer>>,
}

/// What an authoritative server finds for a name (RFC 4592 wildcard rules).
#[derive(Debug, Clone, PartialEq)]
pub enum DnsLookup {
    /// A load balancer by this very name, or by the wildcard at its closest encloser.
    Route(Arc<Route>),
    /// The name exists without data of its own (the zone apex, or an empty non-terminal).
    Exists,
    NxDomain,
}

/// The identity of an origin inside its pool, as it appears in affinity cookies: a keyed
/// hash (SHA-256 under the installation's secret) of its name and address, so a cookie
/// reveals nothing about the origin and cannot be made up for another one.
pub fn origin_key(secret: &[u8], name: &str, address: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(secret);
    h.update(name.as_bytes());
    h.update([0]);
    h.update(address.as_bytes());
    let d = h.finalize();
    u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

/// `host:port` of an origin, IPv6 in brackets, port 80 when it sets none.
pub fn authority(address: &str, port: u16) -> String {
    let port = if port == 0 { 80 } else { port };
    if address.contains(':') {
        format!("[{address}]:{port}")
    } else {
        format!("{address}:{port}")
    }
}

/// Lower case, without a port or a trailing dot; borrowed when already so.
pub fn normalize_host(host: &str) -> std::borrow::Cow<'_, str> {
    if host
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !host.ends_with('.')
    {
        return std::borrow::Cow::Borrowed(host);
    }
    let host = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        host.rsplit_once(':')
            .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
            .map_or(host, |(h, _)| h)
    };
    std::borrow::Cow::Owned(host.trim_end_matches('.').to_ascii_lowercase())
}

impl RoutingTable {
    /// The table a data plane in `region` steers by: the snapshot's load balancers with
    /// their pools, and for dynamic latency each pool's RTT as seen from `region`.
    pub fn new(snapshot: &Snapshot, region: Option<RegionCode>) -> RoutingTable {
        RoutingTable::next(None, snapshot, region)
    }

    /// The same as [`RoutingTable::new`], reusing the routes of `before` (the table made from
    /// the snapshot given with it, for the same region) whose load balancer and pools did not
    /// change: a verdict change rebuilds the routes that name its pool, not every route.
    pub fn next(
        before: Option<(&RoutingTable, &Snapshot)>,
        snapshot: &Snapshot,
        region: Option<RegionCode>,
    ) -> RoutingTable {
        let unchanged = |lb: &Arc<SnapshotLoadBalancer>| -> Option<Arc<Route>> {
            let (table, old) = before?;
            let route = table.routes.get(&lb.spec.name)?;
            let same_entry = table
                .made_from
                .get(&lb.id)
                .is_some_and(|m| Arc::ptr_eq(m, lb));
            let same_pools = lb.spec.referenced_pools().iter().all(|id| {
                match (old.pools.get(id), snapshot.pools.get(id)) {
                    (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a == b,
                    (None, None) => true,
                    _ => false,
                }
            });
            let same_lb =
                same_entry || (route.id == lb.id && route.zone == lb.zone && route.spec == lb.spec);
            (route.id == lb.id && same_lb && same_pools).then(|| Arc::clone(route))
        };
        let mut table = RoutingTable {
            routes: HashMap::new(),
            zones: snapshot
                .zones
                .iter()
                .map(|z| (z.name.clone(), z.clone()))
                .collect(),
            interior: std::collections::HashSet::new(),
            made_from: HashMap::with_capacity(snapshot.load_balancers.len()),
        };
        let names: HashMap<ZoneId, String> = snapshot
            .zones
            .iter()
            .map(|z| (z.id, z.name.clone()))
            .collect();
        for lb in &snapshot.load_balancers {
            let Some(zone) = names.get(&lb.zone) else {
                continue;
            };
            let bare = lb.spec.name.strip_prefix("*.").unwrap_or(&lb.spec.name);
            if table.zone_of(bare).map(|z| z.id) != Some(lb.zone) {
                // A nested zone owns this name; this load balancer can never be reached.
                continue;
            }
            table.made_from.insert(lb.id, Arc::clone(lb));
            if let Some(route) = unchanged(lb) {
                table.add(route, zone);
                continue;
            }
            let dynamic = lb.spec.steering_policy == SteeringPolicy::DynamicLatency;
            let mut route = Route {
                id: lb.id,
                zone: lb.zone,
                spec: lb.spec.clone(),
                pools: HashMap::new(),
                upstreams: HashMap::new(),
                pool_names: HashMap::new(),
                rtt: HashMap::new(),
            };
            for id in lb.spec.referenced_pools() {
                let Some(pool) = snapshot.pools.get(&id) else {
                    continue;
                };
                route.pools.insert(id, pool.view.clone());
                route.upstreams.insert(id, pool.upstreams.clone());
                route.pool_names.insert(id, pool.name.clone());
                if let Some(rtt) = dynamic.then(|| pool.rtt.seen_from(region)).flatten() {
                    route.rtt.insert(id, rtt);
                }
            }
            table.add(Arc::new(route), zone);
        }
        table
    }

    /// The table of the catalog and health view as they are, seen from no region and with
    /// no RTTs (for views that show where traffic goes, and tests).
    pub fn build(catalog: &Catalog, health: &HealthView, secret: &[u8]) -> RoutingTable {
        let snapshot = Snapshot::build(
            catalog,
            health,
            snapshot::Rtts::Measured(&|_, _| None),
            &[],
            secret,
            None,
            crate::Timestamp::from_unix_micros(0),
        );
        RoutingTable::new(&snapshot, None)
    }

    /// Adds a route of the zone `zone`, and the names between it and the apex.
    fn add(&mut self, route: Arc<Route>, zone: &str) {
        let mut name = route.spec.name.as_str();
        while let Some((_, up)) = name.split_once('.') {
            if up.len() <= zone.len() {
                break;
            }
            self.interior.insert(up.to_owned());
            name = up;
        }
        self.routes.insert(route.spec.name.clone(), route);
    }

    /// The load balancer serving `host` (normalised) for the proxy: the exact name first, then
    /// the nearest `*.` wildcard above it, always one of the host's own zone.
    pub fn route(&self, host: &str) -> Option<&Arc<Route>> {
        let zone = self.zone_of(host)?;
        if let Some(r) = self.routes.get(host) {
            return Some(r);
        }
        let mut rest = host;
        while let Some((_, parent)) = rest.split_once('.') {
            if parent.len() < zone.name.len() {
                break;
            }
            if let Some(r) = self.routes.get(&format!("*.{parent}")) {
                return Some(r);
            }
            rest = parent;
        }
        None
    }

    /// What DNS finds at `name` (normalised) inside `zone`: the name itself, else the
    /// wildcard of its closest encloser — the nearest ancestor that exists — else nothing.
    pub fn dns_lookup(&self, zone: &ZoneView, name: &str) -> DnsLookup {
        if let Some(r) = self.routes.get(name) {
            return DnsLookup::Route(Arc::clone(r));
        }
        if name == zone.name || self.interior.contains(name) {
            return DnsLookup::Exists;
        }
        let mut rest = name;
        while let Some((_, parent)) = rest.split_once('.') {
            if parent.len() < zone.name.len() {
                break;
            }
            let exists = parent == zone.name
                || self.interior.contains(parent)
                || self.routes.contains_key(parent);
            if exists {
                return match self.routes.get(&format!("*.{parent}")) {
                    Some(r) => DnsLookup::Route(Arc::clone(r)),
                    None => DnsLookup::NxDomain,
                };
            }
            rest = parent;
        }
        DnsLookup::NxDomain
    }

    /// The zone `name` (normalised) falls in: the longest zone name it ends with.
    pub fn zone_of(&self, name: &str) -> Option<&ZoneView> {
        let mut rest = name;
        loop {
            if let Some(z) = self.zones.get(rest) {
                return Some(z);
            }
            rest = rest.split_once('.')?.1;
        }
    }

    pub fn routes(&self) -> impl Iterator<Item = &Arc<Route>> {
        self.routes.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_round_trip_and_reject_garbage() {
        let pin = Pin {
            pool: PoolId::from_bytes([7; 16]),
            origin: 0xdead_beef,
        };
        assert_eq!(Pin::decode(&pin.encode()), Some(pin));
        assert_eq!(Pin::decode("zz"), None);
        assert_eq!(Pin::decode(&"g".repeat(48)), None);
        assert_eq!(Pin::decode(&format!("{}é", &pin.encode()[..46])), None);
    }

    fn table(zones: &[(&str, u8)], lbs: &[(&str, u8)]) -> RoutingTable {
        let mut t = RoutingTable::default();
        for (name, id) in zones {
            let z = ZoneView {
                id: ZoneId::from_bytes([*id; 16]),
                name: (*name).to_owned(),
                serial: 1,
            };
            t.zones.insert((*name).to_owned(), z);
        }
        for (name, zone) in lbs {
            let zone_name = zones
                .iter()
                .find(|z| z.1 == *zone)
                .map(|z| z.0)
                .unwrap_or("");
            let spec = crate::load_balancer::LoadBalancerDraft {
                name: Some((*name).to_owned()),
                default_pools: Some(vec![PoolId::from_bytes([1; 16]).to_string()]),
                fallback_pool: Some(PoolId::from_bytes([1; 16]).to_string()),
                ..Default::default()
            }
            .validate(zone_name, &|_| true)
            .unwrap_or_else(|v| panic!("{name}: {v:?}"));
            let route = Route {
                id: LoadBalancerId::from_bytes([*zone; 16]),
                zone: ZoneId::from_bytes([*zone; 16]),
                spec,
                pools: HashMap::new(),
                upstreams: HashMap::new(),
                pool_names: HashMap::new(),
                rtt: HashMap::new(),
            };
            t.add(Arc::new(route), zone_name);
        }
        t
    }

    fn found(t: &RoutingTable, name: &str) -> String {
        let zone = t
            .zone_of(name)
            .unwrap_or_else(|| panic!("no zone for {name}"));
        match t.dns_lookup(zone, name) {
            DnsLookup::Route(r) => r.spec.name.clone(),
            DnsLookup::Exists => "exists".into(),
            DnsLookup::NxDomain => "nxdomain".into(),
        }
    }

    #[test]
    fn dns_follows_rfc4592_wildcards() {
        let t = table(
            &[("example.com", 1)],
            &[
                ("*.example.com", 1),
                ("a.b.example.com", 1),
                ("www.example.com", 1),
            ],
        );
        assert_eq!(found(&t, "www.example.com"), "www.example.com");
        assert_eq!(found(&t, "x.example.com"), "*.example.com");
        assert_eq!(found(&t, "x.y.example.com"), "*.example.com");
        // b exists (it has a child), so neither it nor names below it use *.example.com.
        assert_eq!(found(&t, "b.example.com"), "exists");
        assert_eq!(found(&t, "x.b.example.com"), "nxdomain");
        assert_eq!(found(&t, "example.com"), "exists");
        let plain = table(&[("example.com", 1)], &[("a.b.example.com", 1)]);
        assert_eq!(found(&plain, "c.example.com"), "nxdomain");
        assert_eq!(found(&plain, "b.example.com"), "exists");
    }

    #[test]
    fn a_nested_zone_owns_its_names() {
        // Account 1 has example.com with a wildcard; account 2 has sub.example.com.
        let t = table(
            &[("example.com", 1), ("sub.example.com", 2)],
            &[("*.example.com", 1), ("api.sub.example.com", 2)],
        );
        let owner = |host: &str| t.route(host).map(|r| r.zone);
        assert_eq!(owner("x.example.com"), Some(ZoneId::from_bytes([1; 16])));
        assert_eq!(
            owner("api.sub.example.com"),
            Some(ZoneId::from_bytes([2; 16]))
        );
        assert_eq!(
            owner("other.sub.example.com"),
            None,
            "the parent's wildcard stops at the nested zone"
        );
        assert_eq!(owner("www.example.org"), None);
    }

    #[test]
    fn hosts_are_normalised() {
        assert_eq!(normalize_host("WWW.Example.com:8080"), "www.example.com");
        assert_eq!(normalize_host("www.example.com."), "www.example.com");
        assert_eq!(normalize_host("[::1]:80"), "::1");
        assert_eq!(authority("::1", 0), "[::1]:80");
        assert_eq!(authority("10.0.0.1", 8080), "10.0.0.1:8080");
    }
}
