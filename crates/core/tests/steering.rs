//! Data-driven steering scenarios: each `steering/*.scn` file declares pools and a load
//! balancer, then asks where requests go as health, load and the client's place change.
//! Pool and origin verdicts are set by hand here (the health scenarios test how they arise),
//! so these files test the choice alone: `steer`, `retry`, `serving`, and a `Route` built
//! from the same state for DNS answers and affinity pins.
//!
//! Grammar (one statement per line, `#` starts a comment; B is true|false):
//!   pool NAME origins=O[,O…] [healthy=B] [enabled=B] [coords=LAT,LON] [origin_steering=P]
//!       [shed=PERCENT[:random|hash]] [shed_sessions=PERCENT]   load shedding
//!       O is ONAME[:WEIGHT][@ADDRESS]; addresses default to 192.0.2.N (N counts origins);
//!       pools start healthy and enabled, origins up; P as the API spells it
//!   set POOL [healthy=B] [enabled=B]
//!   origin POOL ORIGIN up|down|disabled[@SECONDS]   up and down leave it enabled; disabled,
//!                                           healthy (disabled at SECONDS, default 0)
//!   lb default=P1,P2… fallback=P [policy=NAME|""] [region_pools=WNAM:p1,p2;EEU:p3]
//!      [country_pools=DE:p1;FR:p2] [pop_pools=AMS:p1] [random_steering=p1:0.5,p2:0.25]
//!      [default_weight=W] [across=B] [zero_downtime_failover=none|temporary|sticky]
//!      [drain=SECONDS]                      session_affinity_attributes.drain_duration
//!      validated as the API would; replaces any earlier lb (pools must be declared first)
//!   client [ip=IP] [region=R] [country=CC] [pop=XYZ] [here=LAT,LON] [random=N]
//!      replaces the previous client (the default client knows nothing, random=0)
//!   rtt POOL MS|-                            smoothed RTT for dynamic latency (- forgets it)
//!   outstanding POOL [ORIGIN] N              requests in flight to the pool or the origin
//!   expect DECISION                          where `steer` sends the client
//!   expect retry POOL ORIGIN -> DECISION     where `retry` goes once POOL/ORIGIN failed
//!   expect serving P1,P2…|nothing            `serving`, in order
//!   expect dns POOL O1,O2…|nothing           `Route::dns_answer`: the pool and its A records
//!   expect pin POOL ORIGIN kept|lost [at=SECONDS]   `Route::pinned` for a pin to that
//!                                           origin, at that time (default 0)
//!   expect may_fail_over pinned|unpinned yes|no
//!   expect keeps_pin pinned|unpinned moved|stayed yes|no
//!   rule NAME [priority=N] [terminates=B] [disabled=B] [fixed=STATUS] [default=P1,P2…]
//!      [fallback=P] [policy=NAME] [country_pools=…] [region_pools=…] when CONDITION…
//!      a load-balancing rule (the condition runs to the end of the line); rules must come
//!      before the `lb` line, which takes them all (and `proxied=B`, default false)
//!   request [method=M] [path=/P?Q] [host=H] [header=NAME:VALUE]…   the proxied request the
//!      rules see (default GET / on www.example.com); ip.src is the client's ip
//!   request dns [type=N] [ecs=IP]             the DNS query the rules see instead
//!   expect fixed STATUS|none                   the fixed response the rules answer
//!   expect matched R1,R2…|none                 the rules that matched, in evaluation order
//!   Every other `expect` steers by the load balancer as the request's rules leave it.
//!   expect spread N [within TOL] KEY=SHARE…  steers the client N times with pseudo-random
//!       numbers from a fixed seed; KEY is POOL, POOL/ORIGIN or nowhere (a fallback decision
//!       counts under its pool); every decision must fall under a listed key and every listed
//!       share hold within TOL (default 0.02)
//! DECISION is `pool NAME [origin O]`, `fallback NAME [origin O]` or `nowhere`.
// The harness reads files; the core it drives does not.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::disallowed_methods,
    clippy::disallowed_types
)]

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use vantage_core::load_balancer::{AffinityAttributesDraft, LoadBalancerDraft, LoadBalancerSpec};
use vantage_core::pool::{LoadSheddingDraft, OriginDraft, PoolDraft};
use vantage_core::region::RegionCode;
use vantage_core::routing::{origin_key, DnsAnswer, Pin, Route, Upstream};
use vantage_core::rules::{
    DnsFacts, Facts, FixedResponseDraft, HttpFacts, OverridesDraft, RuleDraft,
};
use vantage_core::steering::{
    keeps_pin, may_fail_over, retry, serving, steer, Context, Decision, OriginView, PoolView,
};
use vantage_core::{LoadBalancerId, PoolId, Timestamp, ZoneId};

const SECRET: &[u8] = b"steering scenarios";

struct PoolDef {
    name: String,
    id: PoolId,
    view: PoolView,
    /// Name and address per origin, parallel to `view.origins`.
    origins: Vec<(String, String)>,
}

#[derive(Default)]
struct World {
    pools: Vec<PoolDef>,
    lb: Option<LoadBalancerSpec>,
    client: Context,
    rtt: HashMap<PoolId, f64>,
    outstanding_pools: HashMap<PoolId, u32>,
    outstanding_origins: HashMap<(PoolId, usize), u32>,
    addresses: u32,
    rules: Vec<RuleDraft>,
    request: Request,
}

#[derive(Default)]
enum Request {
    #[default]
    Root,
    Http {
        method: String,
        path: String,
        host: String,
        headers: Vec<(String, String)>,
    },
    Dns {
        qtype: u16,
        ecs: Option<IpAddr>,
    },
}

/// `KEY=VALUE` words, refusing a key outside `known` so that a misspelt option fails the
/// scenario instead of being ignored.
fn kv(words: &[&str], known: &[&str]) -> BTreeMap<String, String> {
    words
        .iter()
        .map(|w| {
            let (k, v) = w
                .split_once('=')
                .unwrap_or_else(|| panic!("expected KEY=VALUE, not {w:?}"));
            assert!(
                known.contains(&k),
                "unknown option {k:?}, expected one of {known:?}"
            );
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

fn either(word: &str, yes: &str, no: &str) -> bool {
    match word {
        w if w == yes => true,
        w if w == no => false,
        other => panic!("expected {yes} or {no}, not {other:?}"),
    }
}

fn boolean(raw: &str) -> bool {
    either(raw, "true", "false")
}

fn coords(raw: &str) -> (f64, f64) {
    let (lat, lon) = raw.split_once(',').expect("LAT,LON");
    (lat.parse().unwrap(), lon.parse().unwrap())
}

/// A fixed pseudo-random sequence (splitmix64), so spreads are measured over numbers as
/// uniform as the data plane's yet the same on every run.
fn next_random(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl World {
    fn pool(&self, name: &str) -> &PoolDef {
        self.pools
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no pool {name}"))
    }

    fn pool_mut(&mut self, name: &str) -> &mut PoolDef {
        self.pools
            .iter_mut()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no pool {name}"))
    }

    fn origin_index(&self, pool: &str, origin: &str) -> usize {
        self.pool(pool)
            .origins
            .iter()
            .position(|(n, _)| n == origin)
            .unwrap_or_else(|| panic!("no origin {origin} in {pool}"))
    }

    fn name_of(&self, id: PoolId) -> &str {
        &self.pools.iter().find(|p| p.id == id).unwrap().name
    }

    fn declared(&self) -> &LoadBalancerSpec {
        self.lb.as_ref().expect("no lb declared yet")
    }

    /// The facts the rules read for the current request.
    fn facts(&self) -> Facts<'_> {
        let name = "www.example.com";
        let http = |method: &'static str, path: &'static str| HttpFacts {
            method,
            host: name.into(),
            uri: path,
            version: "HTTP/1.1",
            ..HttpFacts::default()
        };
        let (http, dns) = match &self.request {
            Request::Root => (Some(http("GET", "/")), None),
            Request::Http {
                method,
                path,
                host,
                headers,
            } => (
                Some(HttpFacts {
                    method,
                    host: host.as_str().into(),
                    uri: path,
                    version: "HTTP/1.1",
                    headers: headers
                        .iter()
                        .map(|(n, v)| (n.as_str().into(), v.as_str().into()))
                        .collect(),
                    timestamp: 1_700_000_000,
                }),
                None,
            ),
            Request::Dns { qtype, ecs } => (
                None,
                Some(DnsFacts {
                    name: "www.example.com.",
                    qtype: *qtype,
                    qu: true,
                    ecs: *ecs,
                }),
            ),
        };
        let ecs = match &self.request {
            Request::Dns { ecs, .. } => *ecs,
            _ => None,
        };
        Facts {
            name,
            region: None,
            ip: ecs.or(self.client.client_ip),
            http,
            dns,
        }
    }

    /// The load balancer as the current request's rules leave it.
    fn lb(&self) -> LoadBalancerSpec {
        self.declared().ruled(&self.facts()).spec.into_owned()
    }

    /// The route the data plane would hold: only the pools the load balancer references.
    fn route(&self) -> Route {
        let spec = self.declared().clone();
        let mut route = Route {
            id: LoadBalancerId::from_bytes([9; 16]),
            zone: ZoneId::from_bytes([8; 16]),
            pools: HashMap::new(),
            upstreams: HashMap::new(),
            pool_names: HashMap::new(),
            rtt: self.rtt.clone(),
            spec,
        };
        for id in route.spec.referenced_pools() {
            let def = self.pools.iter().find(|p| p.id == id).unwrap();
            let ups = def
                .origins
                .iter()
                .map(|(name, address)| Upstream {
                    name: name.clone(),
                    key: origin_key(SECRET, name, address),
                    authority: Arc::from(format!("{address}:80")),
                    address: address.clone(),
                    host: None,
                })
                .collect();
            route.pools.insert(id, def.view.clone());
            route.upstreams.insert(id, ups);
            route.pool_names.insert(id, def.name.clone());
        }
        route
    }

    fn context(&self) -> Context {
        Context {
            rtt_ewma: self.rtt.clone(),
            outstanding_pools: self.outstanding_pools.clone(),
            outstanding_origins: self.outstanding_origins.clone(),
            ..self.client.clone()
        }
    }

    fn describe(&self, d: Decision) -> Vec<String> {
        let named = |kind: &str, pool: PoolId, origin: usize| {
            let def = self.pools.iter().find(|p| p.id == pool).unwrap();
            vec![
                kind.to_owned(),
                def.name.clone(),
                "origin".to_owned(),
                def.origins[origin].0.clone(),
            ]
        };
        match d {
            Decision::Pool { pool, origin } => named("pool", pool, origin),
            Decision::Fallback { pool, origin } => named("fallback", pool, origin),
            Decision::Nowhere => vec!["nowhere".to_owned()],
        }
    }

    /// Checks a decision against `pool NAME [origin O]`, `fallback NAME [origin O]` or
    /// `nowhere`; leaving the origin out accepts any.
    fn check(&self, want: &[&str], got: Decision) {
        let well_formed = matches!(
            want,
            ["nowhere"] | ["pool" | "fallback", _] | ["pool" | "fallback", _, "origin", _]
        );
        assert!(well_formed, "cannot read decision {want:?}");
        let got = self.describe(got);
        assert!(
            got.len() >= want.len() && got.iter().zip(want).all(|(g, w)| g == w),
            "expected {}, got {}",
            want.join(" "),
            got.join(" ")
        );
    }

    fn declare_pool(&mut self, name: &str, rest: &[&str]) {
        let o = kv(
            rest,
            &[
                "origins",
                "healthy",
                "enabled",
                "coords",
                "origin_steering",
                "shed",
                "shed_sessions",
            ],
        );
        let mut origins = Vec::new();
        let mut drafts = Vec::new();
        for spec in o["origins"].split(',') {
            let (spec, address) = match spec.split_once('@') {
                Some((s, a)) => (s, a.to_owned()),
                None => {
                    self.addresses += 1;
                    (spec, format!("192.0.2.{}", self.addresses))
                }
            };
            let (oname, weight) = spec
                .split_once(':')
                .map_or((spec, None), |(n, w)| (n, Some(w.parse::<f64>().unwrap())));
            drafts.push(OriginDraft {
                name: Some(oname.to_owned()),
                address: Some(address.clone()),
                weight,
                ..Default::default()
            });
            origins.push((oname.to_owned(), address));
        }
        let (lat, lon) = o.get("coords").map(|c| coords(c)).unzip();
        let (spec, _) = PoolDraft {
            name: Some(name.to_owned()),
            origins: Some(drafts),
            enabled: o.get("enabled").map(|b| boolean(b)),
            latitude: lat,
            longitude: lon,
            origin_steering_policy: o.get("origin_steering").cloned(),
            load_shedding: Some(LoadSheddingDraft {
                default_percent: o
                    .get("shed")
                    .map(|s| s.split(':').next().unwrap().parse().unwrap()),
                default_policy: o
                    .get("shed")
                    .and_then(|s| s.split_once(':'))
                    .map(|(_, p)| p.to_owned()),
                session_percent: o.get("shed_sessions").map(|s| s.parse().unwrap()),
                session_policy: None,
            }),
            ..Default::default()
        }
        .validate()
        .unwrap_or_else(|v| panic!("pool {name} refused: {v:?}"));
        let view = PoolView {
            enabled: spec.enabled,
            healthy: o.get("healthy").is_none_or(|b| boolean(b)),
            coordinates: spec.coordinates,
            origin_steering: spec.origin_steering,
            origins: spec
                .origins
                .iter()
                .map(|s| OriginView {
                    enabled: s.enabled,
                    healthy: true,
                    weight: s.weight,
                    disabled_at: None,
                })
                .collect(),
            shedding: spec.load_shedding.clone(),
        };
        assert!(
            self.pools.iter().all(|p| p.name != name),
            "pool {name} declared twice"
        );
        let id = PoolId::from_bytes([self.pools.len() as u8 + 1; 16]);
        self.pools.push(PoolDef {
            name: name.to_owned(),
            id,
            view,
            origins,
        });
    }

    fn declare_lb(&mut self, rest: &[&str]) {
        let o = kv(
            rest,
            &[
                "default",
                "fallback",
                "policy",
                "region_pools",
                "country_pools",
                "pop_pools",
                "random_steering",
                "default_weight",
                "across",
                "zero_downtime_failover",
                "drain",
                "proxied",
            ],
        );
        let ids = |list: &str| self.ids(list);
        let map = |key: &str| o.get(key).map(|raw| self.pool_map(raw));
        let weights = o.get("random_steering").map(|raw| {
            raw.split(',')
                .map(|entry| {
                    let (pool, w) = entry.split_once(':').expect("POOL:WEIGHT");
                    (self.pool(pool).id.to_string(), w.parse::<f64>().unwrap())
                })
                .collect::<BTreeMap<_, _>>()
        });
        let draft = LoadBalancerDraft {
            name: Some("www.example.com".into()),
            default_pools: o.get("default").map(|l| ids(l)),
            fallback_pool: o.get("fallback").map(|p| self.pool(p).id.to_string()),
            region_pools: map("region_pools"),
            country_pools: map("country_pools"),
            pop_pools: map("pop_pools"),
            steering_policy: o.get("policy").map(|p| p.trim_matches('"').to_owned()),
            random_default_weight: o.get("default_weight").map(|w| w.parse().unwrap()),
            random_pool_weights: weights,
            failover_across_pools: o.get("across").map(|b| boolean(b)),
            session_affinity_attributes: (o.contains_key("zero_downtime_failover")
                || o.contains_key("drain"))
            .then(|| AffinityAttributesDraft {
                zero_downtime_failover: o.get("zero_downtime_failover").cloned(),
                drain_duration: o.get("drain").map(|d| d.parse().unwrap()),
                ..Default::default()
            }),
            proxied: Some(o.get("proxied").is_some_and(|b| boolean(b))),
            rules: Some(self.rules.clone()),
            ..Default::default()
        };
        let known: Vec<PoolId> = self.pools.iter().map(|p| p.id).collect();
        let spec = draft
            .validate("example.com", &|id| known.contains(&id))
            .unwrap_or_else(|v| panic!("lb refused: {v:?}"));
        self.lb = Some(spec);
    }

    /// `p1,p2` as pool ids.
    fn ids(&self, list: &str) -> Vec<String> {
        list.split(',')
            .filter(|n| !n.is_empty())
            .map(|n| self.pool(n).id.to_string())
            .collect()
    }

    /// `PLACE:p1,p2;PLACE:p3` as a map of pool ids.
    fn pool_map(&self, raw: &str) -> BTreeMap<String, Vec<String>> {
        raw.split(';')
            .map(|entry| {
                let (place, list) = entry.split_once(':').expect("PLACE:p1,p2");
                (place.to_owned(), self.ids(list))
            })
            .collect()
    }

    fn declare_rule(&mut self, name: &str, rest: &[&str]) {
        let split = rest
            .iter()
            .position(|w| *w == "when")
            .expect("rule … when CONDITION");
        let o = kv(
            &rest[..split],
            &[
                "priority",
                "terminates",
                "disabled",
                "fixed",
                "default",
                "fallback",
                "policy",
                "country_pools",
                "region_pools",
            ],
        );
        let ids = |list: &str| self.ids(list);
        let map = |key: &str| o.get(key).map(|raw| self.pool_map(raw));
        let overrides = OverridesDraft {
            default_pools: o.get("default").map(|l| ids(l)),
            fallback_pool: o.get("fallback").map(|p| self.pool(p).id.to_string()),
            steering_policy: o.get("policy").map(|p| p.trim_matches('"').to_owned()),
            country_pools: map("country_pools"),
            region_pools: map("region_pools"),
            ..OverridesDraft::default()
        };
        self.rules.push(RuleDraft {
            name: Some(name.to_owned()),
            condition: Some(rest[split + 1..].join(" ")),
            priority: o.get("priority").map(|p| p.parse().unwrap()),
            terminates: o.get("terminates").map(|b| boolean(b)),
            disabled: o.get("disabled").map(|b| boolean(b)),
            fixed_response: o.get("fixed").map(|code| FixedResponseDraft {
                status_code: Some(code.parse().unwrap()),
                ..FixedResponseDraft::default()
            }),
            overrides: Some(overrides),
        });
    }

    fn declare_client(&mut self, rest: &[&str]) {
        let o = kv(rest, &["ip", "region", "country", "pop", "here", "random"]);
        self.client = Context {
            client_ip: o.get("ip").map(|ip| ip.parse::<IpAddr>().unwrap()),
            pop: o.get("pop").cloned(),
            country: o.get("country").cloned(),
            region: o.get("region").map(|r| r.parse::<RegionCode>().unwrap()),
            here: o.get("here").map(|h| coords(h)),
            random: o.get("random").map_or(0, |r| r.parse().unwrap()),
            ..Context::default()
        };
    }

    fn spread(&self, n: &str, rest: &[&str]) {
        let n: u32 = n.parse().unwrap();
        let (tolerance, rest) = match rest {
            ["within", tol, rest @ ..] => (tol.parse::<f64>().unwrap(), rest),
            _ => (0.02, rest),
        };
        let wanted: BTreeMap<String, f64> = rest
            .iter()
            .map(|w| {
                let (key, share) = w.split_once('=').expect("KEY=SHARE");
                // Looked up only to fail on a misspelt key, which would otherwise pass as 0.
                match key.split_once('/') {
                    Some((pool, origin)) => {
                        self.origin_index(pool, origin);
                    }
                    None if key != "nowhere" => {
                        self.pool(key);
                    }
                    None => {}
                }
                (key.to_owned(), share.parse().unwrap())
            })
            .collect();
        let lb = self.lb();
        let lb = &lb;
        let pools = self.route().pools;
        let mut ctx = self.context();
        let mut counts: BTreeMap<String, u32> = BTreeMap::new();
        let mut seed = 0;
        for _ in 0..n {
            ctx.random = next_random(&mut seed);
            let keys = match steer(lb, &pools, &ctx).target() {
                Some((pool, origin)) => {
                    let def = self.pools.iter().find(|p| p.id == pool).unwrap();
                    vec![
                        def.name.clone(),
                        format!("{}/{}", def.name, def.origins[origin].0),
                    ]
                }
                None => vec!["nowhere".to_owned()],
            };
            assert!(
                keys.iter().any(|k| wanted.contains_key(k)),
                "a request went to {} which no key covers",
                keys.last().unwrap()
            );
            for k in keys {
                *counts.entry(k).or_default() += 1;
            }
        }
        for (key, want) in &wanted {
            let share = f64::from(counts.get(key).copied().unwrap_or(0)) / f64::from(n);
            assert!(
                (share - want).abs() <= tolerance,
                "{key} took {share:.4}, expected {want} ± {tolerance}; counts {counts:?}"
            );
        }
    }

    fn step(&mut self, line: &str) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["pool", name, rest @ ..] => self.declare_pool(name, rest),
            ["set", name, rest @ ..] => {
                let o = kv(rest, &["healthy", "enabled"]);
                let view = &mut self.pool_mut(name).view;
                if let Some(h) = o.get("healthy") {
                    view.healthy = boolean(h);
                }
                if let Some(e) = o.get("enabled") {
                    view.enabled = boolean(e);
                }
            }
            ["origin", pool, origin, state] => {
                let i = self.origin_index(pool, origin);
                let view = &mut self.pool_mut(pool).view.origins[i];
                let (state, since) = state.split_once('@').unwrap_or((state, "0"));
                (view.enabled, view.healthy) = match state {
                    "up" => (true, true),
                    "down" => (true, false),
                    "disabled" => (false, true),
                    other => panic!("not an origin state: {other}"),
                };
                view.disabled_at = (!view.enabled).then(|| {
                    Timestamp::from_unix_micros(since.parse::<i64>().unwrap() * 1_000_000)
                });
            }
            ["lb", rest @ ..] => self.declare_lb(rest),
            ["client", rest @ ..] => self.declare_client(rest),
            ["rtt", pool, "-"] => {
                let id = self.pool(pool).id;
                self.rtt.remove(&id);
            }
            ["rtt", pool, ms] => {
                let id = self.pool(pool).id;
                self.rtt.insert(id, ms.parse().unwrap());
            }
            ["outstanding", pool, n] => {
                let id = self.pool(pool).id;
                self.outstanding_pools.insert(id, n.parse().unwrap());
            }
            ["outstanding", pool, origin, n] => {
                let key = (self.pool(pool).id, self.origin_index(pool, origin));
                self.outstanding_origins.insert(key, n.parse().unwrap());
            }
            ["expect", "retry", pool, origin, "->", want @ ..] => {
                let failed = (self.pool(pool).id, self.origin_index(pool, origin));
                let route = self.route();
                let got = retry(&self.lb(), &route.pools, &self.context(), failed);
                self.check(want, got);
            }
            ["expect", "serving", list] => {
                let route = self.route();
                let got: Vec<&str> = serving(&self.lb(), &route.pools)
                    .into_iter()
                    .map(|id| self.name_of(id))
                    .collect();
                let want: Vec<&str> = match *list {
                    "nothing" => vec![],
                    l => l.split(',').collect(),
                };
                assert_eq!(got, want, "serving");
            }
            ["expect", "dns", "nothing"] => {
                let got = self.route().dns_answer(&self.lb(), &self.context());
                assert_eq!(got, DnsAnswer::Nothing, "dns");
            }
            ["expect", "dns", pool, list] => {
                let DnsAnswer::Addresses {
                    pool: id,
                    addresses,
                } = self.route().dns_answer(&self.lb(), &self.context())
                else {
                    panic!("dns answered nothing");
                };
                let def = self.pools.iter().find(|p| p.id == id).unwrap();
                let names: Vec<&str> = addresses
                    .iter()
                    .map(|a| {
                        let (n, _) = def
                            .origins
                            .iter()
                            .find(|(_, addr)| addr.parse::<IpAddr>().ok() == Some(*a))
                            .unwrap();
                        n.as_str()
                    })
                    .collect();
                assert_eq!(
                    (def.name.as_str(), names.join(",")),
                    (*pool, (*list).to_owned()),
                    "dns"
                );
            }
            ["expect", "pin", pool, origin, outcome, at @ ..] => {
                let now = match at {
                    [] => Timestamp::default(),
                    [at] => Timestamp::from_unix_micros(
                        at.strip_prefix("at=").unwrap().parse::<i64>().unwrap() * 1_000_000,
                    ),
                    other => panic!("expect pin: cannot read {other:?}"),
                };
                let i = self.origin_index(pool, origin);
                let def = self.pool(pool);
                let pin = Pin {
                    pool: def.id,
                    origin: origin_key(SECRET, &def.origins[i].0, &def.origins[i].1),
                };
                let got = self.route().pinned(&self.lb(), pin, now);
                let want = either(outcome, "kept", "lost").then_some(Decision::Pool {
                    pool: def.id,
                    origin: i,
                });
                assert_eq!(got, want, "pin to {pool}/{origin}");
            }
            ["expect", "may_fail_over", pinned, answer] => {
                let pinned = either(pinned, "pinned", "unpinned");
                assert_eq!(
                    may_fail_over(&self.lb(), pinned),
                    either(answer, "yes", "no"),
                    "may_fail_over"
                );
            }
            ["expect", "keeps_pin", pinned, moved, answer] => {
                let (pinned, moved) = (
                    either(pinned, "pinned", "unpinned"),
                    either(moved, "moved", "stayed"),
                );
                assert_eq!(
                    keeps_pin(&self.lb(), pinned, moved),
                    either(answer, "yes", "no"),
                    "keeps_pin"
                );
            }
            ["expect", "spread", n, rest @ ..] => self.spread(n, rest),
            ["expect", "fixed", want] => {
                let lb = self.declared();
                let facts = self.facts();
                let got = lb
                    .ruled(&facts)
                    .fixed
                    .map_or("none".to_owned(), |f| f.status_code.to_string());
                assert_eq!(got, *want, "fixed response");
            }
            ["expect", "matched", want] => {
                let lb = self.declared();
                let facts = self.facts();
                let got: Vec<String> = lb
                    .ruled(&facts)
                    .matched
                    .iter()
                    .map(|i| lb.rules.get(*i).unwrap().name.clone())
                    .collect();
                let got = if got.is_empty() {
                    "none".to_owned()
                } else {
                    got.join(",")
                };
                assert_eq!(got, *want, "matched rules");
            }
            ["rule", name, rest @ ..] => self.declare_rule(name, rest),
            ["request", "dns", rest @ ..] => {
                let o = kv(rest, &["type", "ecs"]);
                self.request = Request::Dns {
                    qtype: o.get("type").map_or(1, |t| t.parse().unwrap()),
                    ecs: o.get("ecs").map(|a| a.parse().unwrap()),
                };
            }
            ["request", rest @ ..] => {
                let mut headers = Vec::new();
                let mut plain = Vec::new();
                for w in rest {
                    match w.strip_prefix("header=") {
                        Some(h) => {
                            let (n, v) = h.split_once(':').expect("header=NAME:VALUE");
                            headers.push((n.to_ascii_lowercase(), v.to_owned()));
                        }
                        None => plain.push(*w),
                    }
                }
                let o = kv(&plain, &["method", "path", "host"]);
                self.request = Request::Http {
                    method: o.get("method").cloned().unwrap_or_else(|| "GET".into()),
                    path: o.get("path").cloned().unwrap_or_else(|| "/".into()),
                    host: o
                        .get("host")
                        .cloned()
                        .unwrap_or_else(|| "www.example.com".into()),
                    headers,
                };
            }
            ["expect", want @ ..] => {
                let route = self.route();
                let got = steer(&self.lb(), &route.pools, &self.context());
                self.check(want, got);
            }
            other => panic!("cannot read {other:?}"),
        }
    }
}

/// The text of a panic, to repeat it after the scenario line that caused it.
fn message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

#[test]
fn steering_scenarios() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/steering");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "scn"))
        .collect();
    files.sort();
    assert!(files.len() >= 6, "steering scenario files missing");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let mut world = World::default();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap().trim();
            if line.is_empty() {
                continue;
            }
            // Every failure, a misread statement as much as a wrong expectation, names its line.
            let step = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| world.step(line)));
            if let Err(payload) = step {
                let name = file.file_name().unwrap().to_string_lossy();
                panic!("{name}:{}: {}", n + 1, message(payload.as_ref()));
            }
        }
    }
}
