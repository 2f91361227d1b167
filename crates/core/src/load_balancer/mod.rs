//! Load balancers: a hostname in a zone and how its traffic is steered across pools.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::choice::choose;
use crate::name::{is_http_token, normalize_lb_name};
use crate::region::{RegionCode, UnknownRegion};
pub mod rules;

use crate::violation::{in_range, Path, Violations};
use crate::{LoadBalancerId, PoolId, Timestamp, ZoneId};
use rules::{Mode, RuleDraft, Rules};

crate::string_enum!(SteeringPolicy {
    Unset = "",
    Off = "off",
    Geo = "geo",
    Random = "random",
    DynamicLatency = "dynamic_latency",
    Proximity = "proximity",
    LeastOutstandingRequests = "least_outstanding_requests",
    LeastConnections = "least_connections",
});

crate::string_enum!(SessionAffinity {
    None = "none",
    Cookie = "cookie",
    IpCookie = "ip_cookie",
    Header = "header",
});

crate::string_enum!(SameSite {
    Auto = "Auto",
    Lax = "Lax",
    None = "None",
    Strict = "Strict",
});

crate::string_enum!(Secure {
    Auto = "Auto",
    Always = "Always",
    Never = "Never",
});

crate::string_enum!(ZeroDowntimeFailover {
    None = "none",
    Temporary = "temporary",
    Sticky = "sticky",
});

crate::string_enum!(LocationMode {
    Pop = "pop",
    ResolverIp = "resolver_ip",
});

crate::string_enum!(PreferEcs {
    Always = "always",
    Never = "never",
    Proximity = "proximity",
    Geo = "geo",
});

#[derive(Debug, Clone, PartialEq)]
pub struct RandomSteering {
    pub default_weight: f64,
    pub pool_weights: BTreeMap<PoolId, f64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AffinityAttributes {
    pub samesite: SameSite,
    pub secure: Secure,
    pub zero_downtime_failover: ZeroDowntimeFailover,
    pub drain_duration: u32,
    pub headers: Vec<String>,
    pub require_all_headers: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LoadBalancerSpec {
    /// Lower case, inside the zone.
    pub name: String,
    pub default_pools: Vec<PoolId>,
    pub fallback_pool: PoolId,
    pub region_pools: BTreeMap<RegionCode, Vec<PoolId>>,
    pub country_pools: BTreeMap<String, Vec<PoolId>>,
    pub pop_pools: BTreeMap<String, Vec<PoolId>>,
    pub steering_policy: SteeringPolicy,
    pub random_steering: RandomSteering,
    pub failover_across_pools: bool,
    pub location_mode: LocationMode,
    pub prefer_ecs: PreferEcs,
    pub session_affinity: SessionAffinity,
    pub session_affinity_ttl: u32,
    pub session_affinity_attributes: AffinityAttributes,
    pub proxied: bool,
    pub ttl: u32,
    pub enabled: bool,
    /// Evaluated on every request before steering (shared: cloning a spec to apply a
    /// rule's overrides does not copy them).
    pub rules: Rules,
    pub description: String,
}

impl LoadBalancerSpec {
    /// Every pool this load balancer can send traffic to (its rules' included), each once,
    /// in first-mention order.
    pub fn referenced_pools(&self) -> Vec<PoolId> {
        let mut out: Vec<PoolId> = Vec::new();
        let all = self
            .default_pools
            .iter()
            .chain(std::iter::once(&self.fallback_pool))
            .chain(self.region_pools.values().flatten())
            .chain(self.country_pools.values().flatten())
            .chain(self.pop_pools.values().flatten())
            .chain(self.rules.iter().flat_map(|r| r.overrides.pools()));
        for p in all {
            if !out.contains(p) {
                out.push(*p);
            }
        }
        out
    }
}

impl LoadBalancerSpec {
    /// Whether the location strategy steers a DNS query by its EDNS client subnet, when it
    /// has one: `always`, `never`, or only under the steering policy `prefer_ecs` names (a
    /// load balancer without a policy steers by geography when it has geographic lists).
    pub fn prefers_ecs(&self) -> bool {
        let geo_lists = !(self.region_pools.is_empty()
            && self.country_pools.is_empty()
            && self.pop_pools.is_empty());
        match self.prefer_ecs {
            PreferEcs::Always => true,
            PreferEcs::Never => false,
            PreferEcs::Proximity => self.steering_policy == SteeringPolicy::Proximity,
            PreferEcs::Geo => {
                self.steering_policy == SteeringPolicy::Geo
                    || (self.steering_policy == SteeringPolicy::Unset && geo_lists)
            }
        }
    }

    /// The address a DNS query is located by (Cloudflare's location strategy): the client
    /// subnet's when the caller found it preferred (`prefers_ecs`), else the resolver's
    /// (`resolver_ip`), else none — where the query arrived, the data plane's own place
    /// (`pop`).
    pub fn locate(&self, resolver: IpAddr, preferred_subnet: Option<IpAddr>) -> Option<IpAddr> {
        match (preferred_subnet, self.location_mode) {
            (Some(subnet), _) => Some(subnet),
            (None, LocationMode::ResolverIp) => Some(resolver),
            (None, LocationMode::Pop) => None,
        }
    }

    /// Whether steering by this spec (its own fields, not its rules) can send to `pool`.
    pub fn names_pool(&self, pool: PoolId) -> bool {
        self.fallback_pool == pool
            || self.default_pools.contains(&pool)
            || [&self.country_pools, &self.pop_pools]
                .iter()
                .any(|m| m.values().any(|l| l.contains(&pool)))
            || self.region_pools.values().any(|l| l.contains(&pool))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LoadBalancer {
    pub id: LoadBalancerId,
    pub zone: ZoneId,
    pub spec: LoadBalancerSpec,
    pub created_on: Timestamp,
    pub modified_on: Timestamp,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AffinityAttributesDraft {
    pub samesite: Option<String>,
    pub secure: Option<String>,
    pub zero_downtime_failover: Option<String>,
    pub drain_duration: Option<i64>,
    pub headers: Option<Vec<String>>,
    pub require_all_headers: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadBalancerDraft {
    pub name: Option<String>,
    pub default_pools: Option<Vec<String>>,
    pub fallback_pool: Option<String>,
    pub region_pools: Option<BTreeMap<String, Vec<String>>>,
    pub country_pools: Option<BTreeMap<String, Vec<String>>>,
    pub pop_pools: Option<BTreeMap<String, Vec<String>>>,
    pub steering_policy: Option<String>,
    pub random_default_weight: Option<f64>,
    pub random_pool_weights: Option<BTreeMap<String, f64>>,
    pub failover_across_pools: Option<bool>,
    pub location_mode: Option<String>,
    pub prefer_ecs: Option<String>,
    pub session_affinity: Option<String>,
    pub session_affinity_ttl: Option<i64>,
    pub session_affinity_attributes: Option<AffinityAttributesDraft>,
    pub proxied: Option<bool>,
    pub ttl: Option<i64>,
    pub enabled: Option<bool>,
    pub rules: Option<Vec<RuleDraft>>,
    pub description: Option<String>,
}

pub const DEFAULT_TTL: u32 = 30;
/// Header affinity: how many entries key a session, and how long one may be.
pub const MAX_AFFINITY_HEADERS: usize = 10;
pub const MAX_AFFINITY_HEADER: usize = 256;

/// A header-affinity entry `cookie:<name>,<name>…` (Cloudflare's way of keying a session on
/// some cookies only): the cookie names; `None` for a header name.
pub fn affinity_cookies(entry: &str) -> Option<Vec<&str>> {
    let rest = entry
        .get(..7)
        .filter(|p| p.eq_ignore_ascii_case("cookie:"))
        .map(|_| &entry[7..])?;
    Some(
        rest.split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .collect(),
    )
}
pub const COOKIE_TTL_DEFAULT: u32 = 82_800;
pub const HEADER_TTL_DEFAULT: u32 = 1_800;

/// Resolves pool references for a load balancer: `Ok` for a pool of the zone's account.
pub trait PoolLookup {
    fn pool_exists(&self, id: PoolId) -> bool;
}

impl<F: Fn(PoolId) -> bool> PoolLookup for F {
    fn pool_exists(&self, id: PoolId) -> bool {
        self(id)
    }
}

fn pool_ref(v: &mut Violations, path: Path, raw: &str, pools: &dyn PoolLookup) -> Option<PoolId> {
    match raw.parse::<PoolId>() {
        Ok(id) if pools.pool_exists(id) => Some(id),
        Ok(_) => {
            v.push(path, format!("pool {raw} does not exist in this account"));
            None
        }
        Err(_) => {
            v.push(path, format!("{raw:?} is not a pool identifier"));
            None
        }
    }
}

fn pool_list(
    v: &mut Violations,
    path: &Path,
    raw: &[String],
    pools: &dyn PoolLookup,
) -> Vec<PoolId> {
    let mut seen = std::collections::HashSet::new();
    raw.iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let id = pool_ref(v, path.index(i), p, pools)?;
            if seen.insert(id) {
                Some(id)
            } else {
                // Listing a pool twice changes nothing a user could want, and a list of the
                // same pool a thousand times is only work for every steering decision.
                v.push(path.index(i), format!("pool {p:?} is listed twice"));
                None
            }
        })
        .collect()
}

fn pool_map<K: Ord>(
    v: &mut Violations,
    path: &Path,
    raw: Option<BTreeMap<String, Vec<String>>>,
    pools: &dyn PoolLookup,
    key: impl Fn(&str) -> Result<K, String>,
) -> BTreeMap<K, Vec<PoolId>> {
    let mut out = BTreeMap::new();
    for (k, list) in raw.unwrap_or_default() {
        let at = path.key(k.clone());
        match key(&k) {
            Ok(parsed) => {
                let ids = pool_list(v, &at, &list, pools);
                if list.is_empty() {
                    v.push(at, "a pool list must name at least one pool");
                } else if out.contains_key(&parsed) {
                    // `de` and `DE` are one place; keeping either list would drop the other.
                    v.push(at, format!("{k:?} names a place listed already"));
                    continue;
                }
                out.insert(parsed, ids);
            }
            Err(why) => v.push(at, why),
        }
    }
    out
}

fn weight(v: &mut Violations, path: Path, name: &str, raw: Option<f64>, default: f64) -> f64 {
    let checked = in_range(&path, name, raw.unwrap_or(default), 0.0, 1.0);
    v.take(checked, default)
}

/// The checks of one field, shared by the load balancer and its rules' overrides (which
/// accept the same fields under the same rules). Each records its violations under `at`.
pub(crate) mod field {
    use super::*;

    pub fn default_pools(
        v: &mut Violations,
        at: &Path,
        raw: Vec<String>,
        pools: &dyn PoolLookup,
    ) -> Vec<PoolId> {
        if raw.is_empty() {
            v.push(at.clone(), "default_pools must name at least one pool");
        }
        pool_list(v, at, &raw, pools)
    }

    pub fn fallback_pool(
        v: &mut Violations,
        at: &Path,
        raw: Option<&str>,
        pools: &dyn PoolLookup,
    ) -> Option<PoolId> {
        match raw {
            None | Some("") => {
                v.push(at.clone(), "fallback_pool is required");
                None
            }
            Some(raw) => pool_ref(v, at.clone(), raw, pools),
        }
    }

    pub fn region_pools(
        v: &mut Violations,
        at: &Path,
        raw: Option<BTreeMap<String, Vec<String>>>,
        pools: &dyn PoolLookup,
    ) -> BTreeMap<RegionCode, Vec<PoolId>> {
        pool_map(v, at, raw, pools, |k| {
            k.parse::<RegionCode>()
                .map_err(|UnknownRegion| format!("{k:?} is not a region code"))
        })
    }

    pub fn country_pools(
        v: &mut Violations,
        at: &Path,
        raw: Option<BTreeMap<String, Vec<String>>>,
        pools: &dyn PoolLookup,
    ) -> BTreeMap<String, Vec<PoolId>> {
        pool_map(v, at, raw, pools, |k| {
            let upper = k.to_ascii_uppercase();
            if RegionCode::is_known_country(&upper) {
                Ok(upper)
            } else {
                Err(format!("{k:?} is not an ISO 3166-1 alpha-2 country code"))
            }
        })
    }

    pub fn pop_pools(
        v: &mut Violations,
        at: &Path,
        raw: Option<BTreeMap<String, Vec<String>>>,
        pools: &dyn PoolLookup,
    ) -> BTreeMap<String, Vec<PoolId>> {
        pool_map(v, at, raw, pools, |k| {
            if k.len() == 3 && k.bytes().all(|b| b.is_ascii_alphabetic()) {
                Ok(k.to_ascii_uppercase())
            } else {
                Err(format!("{k:?} is not a three-letter data center code"))
            }
        })
    }

    pub fn random_steering(
        v: &mut Violations,
        at: &Path,
        default_weight: Option<f64>,
        pool_weights: Option<BTreeMap<String, f64>>,
        pools: &dyn PoolLookup,
    ) -> RandomSteering {
        let default_weight = weight(
            v,
            at.key("default_weight"),
            "default_weight",
            default_weight,
            1.0,
        );
        let mut weights = BTreeMap::new();
        for (k, w) in pool_weights.unwrap_or_default() {
            let here = at.key("pool_weights").key(k.clone());
            let w = weight(v, here.clone(), "pool weight", Some(w), 1.0);
            if let Some(id) = pool_ref(v, here, &k, pools) {
                weights.insert(id, w);
            }
        }
        RandomSteering {
            default_weight,
            pool_weights: weights,
        }
    }

    /// The TTL's range depends on the kind of affinity it is for.
    pub fn affinity_ttl(
        v: &mut Violations,
        at: &Path,
        affinity: SessionAffinity,
        raw: Option<i64>,
    ) -> u32 {
        let (default, lo, hi) = match affinity {
            SessionAffinity::Header => (HEADER_TTL_DEFAULT, 30, 3600),
            SessionAffinity::Cookie | SessionAffinity::IpCookie => {
                (COOKIE_TTL_DEFAULT, 1800, 604_800)
            }
            SessionAffinity::None => (COOKIE_TTL_DEFAULT, 0, 604_800),
        };
        let checked = in_range(
            at,
            "session_affinity_ttl",
            raw.unwrap_or(default.into()),
            lo,
            hi,
        );
        v.take(checked, default.into()) as u32
    }

    pub fn affinity_attributes(
        v: &mut Violations,
        ap: &Path,
        affinity: SessionAffinity,
        a: AffinityAttributesDraft,
    ) -> AffinityAttributes {
        let drain = in_range(
            &ap.key("drain_duration"),
            "drain_duration",
            a.drain_duration.unwrap_or(0),
            0,
            3600,
        );
        let headers = a.headers.unwrap_or_default();
        if headers.len() > MAX_AFFINITY_HEADERS {
            v.push(
                ap.key("headers"),
                format!("at most {MAX_AFFINITY_HEADERS} headers key a session"),
            );
        }
        let mut seen = std::collections::HashSet::new();
        for (i, h) in headers.iter().enumerate() {
            let at = ap.key("headers").index(i);
            if h.len() > MAX_AFFINITY_HEADER {
                v.push(
                    at,
                    format!("a header entry is at most {MAX_AFFINITY_HEADER} bytes"),
                );
                continue;
            }
            match affinity_cookies(h) {
                Some(names) if names.is_empty() || !names.iter().all(|n| is_http_token(n)) => v
                    .push(
                        at,
                        format!("{h:?}: after \"cookie:\" come cookie names separated by commas"),
                    ),
                Some(_) => {}
                None if !is_http_token(h) => {
                    v.push(at, format!("{h:?} is not a valid HTTP header name"));
                    continue;
                }
                None => {}
            }
            if !seen.insert(h.to_ascii_lowercase()) {
                v.push(ap.key("headers").index(i), format!("{h:?} is listed twice"));
            }
        }
        if affinity == SessionAffinity::Header && headers.is_empty() {
            v.push(
                ap.key("headers"),
                "header session affinity needs at least one header name",
            );
        }
        AffinityAttributes {
            samesite: choose(v, ap.key("samesite"), a.samesite.as_deref(), SameSite::Auto),
            secure: choose(v, ap.key("secure"), a.secure.as_deref(), Secure::Auto),
            zero_downtime_failover: choose(
                v,
                ap.key("zero_downtime_failover"),
                a.zero_downtime_failover.as_deref(),
                ZeroDowntimeFailover::None,
            ),
            drain_duration: v.take(drain, 0) as u32,
            headers,
            require_all_headers: a.require_all_headers.unwrap_or(false),
        }
    }

    pub fn ttl(v: &mut Violations, at: &Path, raw: Option<i64>) -> u32 {
        let ttl = in_range(at, "ttl", raw.unwrap_or(DEFAULT_TTL.into()), 1, 86_400);
        v.take(ttl, DEFAULT_TTL.into()) as u32
    }
}

impl LoadBalancerDraft {
    /// Applies defaults and every rule; `zone_name` is the zone the balancer lives in and
    /// `pools` tells which pool identifiers exist in the zone's account.
    pub fn validate(
        self,
        zone_name: &str,
        pools: &dyn PoolLookup,
    ) -> Result<LoadBalancerSpec, Violations> {
        let root = Path::root();
        let mut v = Violations::default();

        let raw_name = self.name.unwrap_or_default();
        let name = if raw_name.is_empty() {
            v.push(root.key("name"), "name is required");
            String::new()
        } else {
            normalize_lb_name(&raw_name, zone_name).unwrap_or_else(|| {
                v.push(
                    root.key("name"),
                    format!("name {raw_name:?} must be a host name inside the zone {zone_name}"),
                );
                raw_name.clone()
            })
        };

        let default_pools = field::default_pools(
            &mut v,
            &root.key("default_pools"),
            self.default_pools.unwrap_or_default(),
            pools,
        );
        let fallback_pool = field::fallback_pool(
            &mut v,
            &root.key("fallback_pool"),
            self.fallback_pool.as_deref(),
            pools,
        );
        let region_pools =
            field::region_pools(&mut v, &root.key("region_pools"), self.region_pools, pools);
        let country_pools = field::country_pools(
            &mut v,
            &root.key("country_pools"),
            self.country_pools,
            pools,
        );
        let pop_pools = field::pop_pools(&mut v, &root.key("pop_pools"), self.pop_pools, pools);

        let steering_policy = choose(
            &mut v,
            root.key("steering_policy"),
            self.steering_policy.as_deref(),
            SteeringPolicy::Unset,
        );
        let random_steering = field::random_steering(
            &mut v,
            &root.key("random_steering"),
            self.random_default_weight,
            self.random_pool_weights,
            pools,
        );

        let location_mode = choose(
            &mut v,
            root.key("location_strategy").key("mode"),
            self.location_mode.as_deref(),
            LocationMode::Pop,
        );
        let prefer_ecs = choose(
            &mut v,
            root.key("location_strategy").key("prefer_ecs"),
            self.prefer_ecs.as_deref(),
            PreferEcs::Proximity,
        );

        let session_affinity = choose(
            &mut v,
            root.key("session_affinity"),
            self.session_affinity.as_deref(),
            SessionAffinity::None,
        );
        let session_affinity_ttl = field::affinity_ttl(
            &mut v,
            &root.key("session_affinity_ttl"),
            session_affinity,
            self.session_affinity_ttl,
        );
        let session_affinity_attributes = field::affinity_attributes(
            &mut v,
            &root.key("session_affinity_attributes"),
            session_affinity,
            self.session_affinity_attributes.unwrap_or_default(),
        );
        let ttl = field::ttl(&mut v, &root.key("ttl"), self.ttl);

        let description = self.description.unwrap_or_default();
        if description.chars().count() > crate::monitor::MAX_DESCRIPTION {
            v.push(
                root.key("description"),
                "description is longer than 1024 characters",
            );
        }

        let proxied = self.proxied.unwrap_or(false);
        let mode = if proxied {
            Mode::Proxied
        } else {
            Mode::DnsOnly
        };
        let rules = rules::validate(
            &mut v,
            &root.key("rules"),
            self.rules.unwrap_or_default(),
            mode,
            session_affinity,
            pools,
        );

        let Some(fallback_pool) = fallback_pool else {
            return Err(v);
        };
        v.finish(LoadBalancerSpec {
            name,
            default_pools,
            fallback_pool,
            region_pools,
            country_pools,
            pop_pools,
            steering_policy,
            random_steering,
            failover_across_pools: self.failover_across_pools.unwrap_or(false),
            location_mode,
            prefer_ecs,
            session_affinity,
            session_affinity_ttl,
            session_affinity_attributes,
            proxied,
            ttl,
            enabled: self.enabled.unwrap_or(true),
            rules,
            description,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P1: &str = "00000000000000000000000000000001";
    const P2: &str = "00000000000000000000000000000002";

    fn exists(id: PoolId) -> bool {
        id.to_string() == P1 || id.to_string() == P2
    }

    fn draft() -> LoadBalancerDraft {
        LoadBalancerDraft {
            name: Some("www.example.com".into()),
            default_pools: Some(vec![P1.into()]),
            fallback_pool: Some(P2.into()),
            ..Default::default()
        }
    }

    fn pointers(err: Violations) -> Vec<String> {
        err.iter().map(|v| v.path.to_pointer()).collect()
    }

    #[test]
    fn defaults() {
        let spec = draft().validate("example.com", &exists).unwrap();
        assert_eq!(spec.steering_policy, SteeringPolicy::Unset);
        assert_eq!(spec.ttl, 30);
        assert_eq!(spec.session_affinity_ttl, COOKIE_TTL_DEFAULT);
        assert!(spec.rules.is_empty());
        assert_eq!(spec.referenced_pools().len(), 2);
    }

    #[test]
    fn location_strategy_decides_what_locates_a_query() {
        let resolver: IpAddr = "198.51.100.53".parse().unwrap();
        let subnet: IpAddr = "203.0.113.0".parse().unwrap();
        let spec = |mode: &str, prefer: &str, policy: &str| {
            let mut d = draft();
            d.location_mode = Some(mode.into());
            d.prefer_ecs = Some(prefer.into());
            d.steering_policy = Some(policy.into());
            d.validate("example.com", &exists).unwrap()
        };
        let located = |s: &LoadBalancerSpec| s.locate(resolver, s.prefers_ecs().then_some(subnet));
        // Cloudflare's default: pop + proximity; under geo the subnet is not preferred.
        assert_eq!(located(&spec("pop", "proximity", "geo")), None);
        assert_eq!(
            located(&spec("pop", "proximity", "proximity")),
            Some(subnet)
        );
        assert_eq!(located(&spec("pop", "geo", "geo")), Some(subnet));
        assert_eq!(
            located(&spec("resolver_ip", "never", "geo")),
            Some(resolver)
        );
        assert_eq!(located(&spec("resolver_ip", "always", "")), Some(subnet));
        assert_eq!(located(&spec("pop", "never", "random")), None);
    }

    #[test]
    fn a_pool_listed_twice_is_refused() {
        let mut d = draft();
        d.default_pools = Some(vec![P1.into(), P2.into(), P1.into()]);
        d.region_pools = Some([("WEU".to_owned(), vec![P2.into(), P2.into()])].into());
        let mut got = pointers(d.validate("example.com", &exists).unwrap_err());
        got.sort();
        assert_eq!(got, ["/default_pools/2", "/region_pools/WEU/1"]);
    }

    #[test]
    fn pool_references_must_exist() {
        let mut d = draft();
        d.default_pools = Some(vec![
            P1.into(),
            "ffffffffffffffffffffffffffffffff".into(),
            "nope".into(),
        ]);
        d.region_pools = Some([("MARS".to_owned(), vec![P1.to_owned()])].into());
        d.country_pools = Some([("de".to_owned(), vec![P2.to_owned()])].into());
        assert_eq!(
            pointers(d.validate("example.com", &exists).unwrap_err()),
            ["/default_pools/1", "/default_pools/2", "/region_pools/MARS"]
        );
    }

    #[test]
    fn name_inside_zone_and_affinity_ttl_ranges() {
        let mut d = draft();
        d.name = Some("www.example.org".into());
        d.session_affinity = Some("header".into());
        d.session_affinity_ttl = Some(10);
        assert_eq!(
            pointers(d.validate("example.com", &exists).unwrap_err()),
            [
                "/name",
                "/session_affinity_ttl",
                "/session_affinity_attributes/headers"
            ]
        );
    }
}
