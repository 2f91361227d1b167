//! Data-driven health scenarios: each `scenarios/*.scn` file is a timeline of probe results
//! and configuration changes with the verdicts and events expected after each step, played
//! against the engine in virtual time.
//!
//! Grammar (one statement per line, `#` starts a comment):
//!   monitor [MON] up=N down=N               consecutive thresholds (before any pool);
//!                                           MON defaults to `m`
//!   group NAME MON[:must|:only|:off],…      a monitor group: `must` = must_be_healthy,
//!                                           `only` = monitoring_only, `off` = disabled
//!   pool NAME min=N regions=null|ALL_REGIONS|WEU,ENAM origins=a,b[,c:0] [group=NAME]
//!                                           (`:0` = weight 0; judged by monitor `m` unless
//!                                           a group is named)
//!   config NAME [min=N] [regions=…] [disable=ORIGIN] [enable=ORIGIN] [enabled=true|false]
//!   at SECONDS REGION/LOC ORIGIN[@MON] pass|fail [REASON…]   (ORIGIN's check by MON,
//!                                           default `m`, for every pool)
//!   expect origin POOL ORIGIN healthy|unhealthy|unknown [REASON…]
//!   expect pool POOL healthy|unhealthy|unknown
//!   expect region POOL ORIGIN REGION healthy|unhealthy|unknown
//!   expect member POOL ORIGIN MON healthy|unhealthy|unknown   one group member's verdict
//!   tick SECONDS                             advance time with no result (stale votes expire)
//!   expect silent REGION/LOC                 the location fell silent at the last tick
//!   expect events N                          events raised since the previous `expect events`
//!   expect event POOL pool=healthy|unhealthy|unknown|- [ORIGIN=…]…   the latest event of POOL
// The harness reads files; the core it drives does not.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::disallowed_methods,
    clippy::disallowed_types
)]

use std::collections::BTreeMap;

use vantage_core::catalog::{Catalog, Change};
use vantage_core::choice::Choice;
use vantage_core::health::check::{CheckResult, FailureReason};
use vantage_core::health::engine::Event;
use vantage_core::health::{Engine, Location, ProbeKey, Verdict};
use vantage_core::monitor::MonitorDraft;
use vantage_core::monitor_group::{MemberDraft, MonitorGroupDraft};
use vantage_core::pool::{OriginDraft, PoolDraft};
use vantage_core::region::RegionCode;
use vantage_core::{AccountId, MonitorGroupId, MonitorId, PoolId, Timestamp};

const ACCOUNT: AccountId = AccountId::from_bytes([1; 16]);

/// The monitor called `name` in a scenario (`m`, the default, included).
fn monitor_id(name: &str) -> MonitorId {
    let mut bytes = [2; 16];
    for (b, c) in bytes.iter_mut().zip(name.bytes()) {
        *b = c;
    }
    MonitorId::from_bytes(bytes)
}

fn group_id(name: &str) -> MonitorGroupId {
    let mut bytes = [3; 16];
    for (b, c) in bytes.iter_mut().zip(name.bytes()) {
        *b = c;
    }
    MonitorGroupId::from_bytes(bytes)
}
const T0: Timestamp = Timestamp::from_unix_micros(0);

struct World {
    catalog: Catalog,
    engine: Option<Engine>,
    drafts: BTreeMap<String, (PoolId, PoolDraft)>,
    events: Vec<Event>,
    counted: usize,
    now: Timestamp,
    silent: Vec<String>,
}

fn apply(c: &mut Catalog, changes: Vec<Change>) {
    for ch in changes {
        c.apply(ch);
    }
}

fn verdict(word: &str) -> Verdict {
    match word {
        "healthy" => Verdict::Healthy,
        "unhealthy" => Verdict::Unhealthy,
        "unknown" => Verdict::Unknown,
        other => panic!("not a verdict: {other}"),
    }
}

fn reason(words: &[&str]) -> Option<FailureReason> {
    (!words.is_empty()).then(|| {
        let text = words.join(" ");
        FailureReason::parse(&text).unwrap_or_else(|| panic!("unknown failure reason {text:?}"))
    })
}

fn regions(raw: &str) -> Option<Vec<String>> {
    match raw {
        "null" => None,
        list => Some(list.split(',').map(str::to_owned).collect()),
    }
}

impl World {
    fn new() -> Self {
        let mut catalog = Catalog::default();
        let c = catalog.create_account(ACCOUNT, "a".into(), T0).unwrap();
        apply(&mut catalog, c);
        World {
            catalog,
            engine: None,
            drafts: BTreeMap::new(),
            events: vec![],
            counted: 0,
            now: T0,
            silent: vec![],
        }
    }

    fn engine(&mut self) -> &mut Engine {
        if self.engine.is_none() {
            self.engine = Some(Engine::new(&self.catalog.health_plan(), [], T0));
        }
        self.engine.as_mut().unwrap()
    }

    fn put_pool(&mut self, name: &str) {
        let (id, draft) = self.drafts[name].clone();
        let (spec, monitor) = draft.validate().unwrap();
        let exists = self.catalog.pool(ACCOUNT, id).is_some();
        let changes = if exists {
            self.catalog
                .replace_pool(ACCOUNT, id, spec, monitor, self.now)
        } else {
            self.catalog
                .create_pool(ACCOUNT, id, spec, monitor, self.now)
        };
        apply(&mut self.catalog, changes.unwrap());
        if self.engine.is_some() {
            let now = self.now;
            let catalog = self.catalog.clone();
            let events = self.engine().configure(&catalog.health_plan(), now);
            self.events.extend(events);
        }
    }

    fn pool_id(&self, name: &str) -> PoolId {
        self.drafts
            .get(name)
            .unwrap_or_else(|| panic!("no pool {name}"))
            .0
    }

    fn step(&mut self, line: &str, at: &str) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let kv = |w: &[&str]| -> BTreeMap<String, String> {
            w.iter()
                .filter_map(|x| x.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        };
        match words.as_slice() {
            ["monitor", rest @ ..] => {
                let (name, rest) = match rest {
                    [n, more @ ..] if !n.contains('=') => (*n, more),
                    _ => ("m", rest),
                };
                let o = kv(rest);
                let draft = MonitorDraft {
                    expected_codes: Some("2xx".into()),
                    consecutive_up: o.get("up").map(|v| v.parse().unwrap()),
                    consecutive_down: o.get("down").map(|v| v.parse().unwrap()),
                    ..Default::default()
                };
                let c = self
                    .catalog
                    .create_monitor(ACCOUNT, monitor_id(name), draft.validate().unwrap(), T0)
                    .unwrap();
                apply(&mut self.catalog, c);
            }
            ["group", name, members] => {
                let members = members
                    .split(',')
                    .map(|m| {
                        let (mon, flag) = m.split_once(':').unwrap_or((m, ""));
                        MemberDraft {
                            monitor_id: Some(monitor_id(mon).to_string()),
                            enabled: Some(flag != "off"),
                            monitoring_only: Some(flag == "only"),
                            must_be_healthy: Some(flag == "must"),
                        }
                    })
                    .collect();
                let draft = MonitorGroupDraft {
                    description: Some((*name).to_owned()),
                    members: Some(members),
                };
                let c = self
                    .catalog
                    .create_monitor_group(ACCOUNT, group_id(name), draft.validate().unwrap(), T0)
                    .unwrap();
                apply(&mut self.catalog, c);
            }
            ["pool", name, rest @ ..] => {
                let o = kv(rest);
                let origins = o["origins"]
                    .split(',')
                    .map(|spec| {
                        let (n, w) = spec
                            .split_once(':')
                            .map_or((spec, None), |(n, w)| (n, Some(w.parse::<f64>().unwrap())));
                        OriginDraft {
                            name: Some(n.into()),
                            address: Some(format!("{n}.example")),
                            weight: w,
                            ..Default::default()
                        }
                    })
                    .collect();
                let draft = PoolDraft {
                    name: Some((*name).to_owned()),
                    origins: Some(origins),
                    minimum_origins: o.get("min").map(|v| v.parse().unwrap()),
                    check_regions: o.get("regions").and_then(|r| regions(r)),
                    monitor: (!o.contains_key("group")).then(|| monitor_id("m").to_string()),
                    monitor_group: o.get("group").map(|g| group_id(g).to_string()),
                    ..Default::default()
                };
                let id = PoolId::from_bytes([self.drafts.len() as u8 + 10; 16]);
                self.drafts.insert((*name).to_owned(), (id, draft));
                self.put_pool(name);
            }
            ["config", name, rest @ ..] => {
                let o = kv(rest);
                let draft = &mut self.drafts.get_mut(*name).unwrap().1;
                if let Some(m) = o.get("min") {
                    draft.minimum_origins = Some(m.parse().unwrap());
                }
                if let Some(r) = o.get("regions") {
                    draft.check_regions = regions(r);
                }
                if let Some(e) = o.get("enabled") {
                    draft.enabled = Some(e == "true");
                }
                for (flag, value) in [("disable", false), ("enable", true)] {
                    if let Some(origin) = o.get(flag) {
                        let origins = draft.origins.as_mut().unwrap();
                        origins
                            .iter_mut()
                            .find(|x| x.name.as_deref() == Some(origin))
                            .unwrap()
                            .enabled = Some(value);
                    }
                }
                self.put_pool(name);
            }
            ["at", secs, loc, origin, outcome, why @ ..] => {
                self.now = Timestamp::from_unix_micros(secs.parse::<i64>().unwrap() * 1_000_000);
                let (region, name) = loc.split_once('/').unwrap();
                let location = Location {
                    region: region.parse::<RegionCode>().unwrap(),
                    name: name.to_owned(),
                };
                let healthy = *outcome == "pass";
                let result = CheckResult {
                    healthy,
                    reason: reason(why).unwrap_or(if healthy {
                        FailureReason::None
                    } else {
                        FailureReason::Other
                    }),
                    response_code: healthy.then_some(200),
                    rtt_micros: Some(1000),
                };
                let (origin, monitor) = origin.split_once('@').unwrap_or((origin, "m"));
                let key = ProbeKey {
                    monitor: monitor_id(monitor),
                    address: format!("{origin}.example"),
                    port: 0,
                    host: None,
                };
                let now = self.now;
                let (_, events) = self.engine().record(&location, &key, result, now);
                self.events.extend(events);
            }
            ["tick", secs] => {
                self.now = Timestamp::from_unix_micros(secs.parse::<i64>().unwrap() * 1_000_000);
                let now = self.now;
                let (events, silent) = self.engine().handle_timeout(now);
                self.events.extend(events);
                self.silent = silent.iter().map(ToString::to_string).collect();
            }
            ["expect", "silent", loc] => {
                assert!(
                    self.silent.iter().any(|l| l == loc),
                    "{at}: {loc} not silent: {:?}",
                    self.silent
                );
            }
            ["expect", "origin", pool, origin, v, why @ ..] => {
                let id = self.pool_id(pool);
                let h = self.engine().pool_health(id).unwrap();
                let o = h.origins.iter().find(|o| o.name == *origin).unwrap();
                assert_eq!(o.healthy, verdict(v), "{at}: origin {origin} of {pool}");
                if let Some(r) = reason(why) {
                    assert_eq!(o.reason, r, "{at}: reason of {origin}");
                }
            }
            ["expect", "pool", pool, v] => {
                let id = self.pool_id(pool);
                assert_eq!(
                    self.engine().pool_health(id).unwrap().healthy,
                    verdict(v),
                    "{at}: pool {pool}"
                );
            }
            ["expect", "region", pool, origin, region, v] => {
                let id = self.pool_id(pool);
                let h = self.engine().pool_health(id).unwrap();
                let o = h.origins.iter().find(|o| o.name == *origin).unwrap();
                let r: RegionCode = region.parse().unwrap();
                assert_eq!(
                    o.regions.get(&r).copied().unwrap_or_default(),
                    verdict(v),
                    "{at}: region {region} for {origin}"
                );
            }
            ["expect", "member", pool, origin, monitor, v] => {
                let id = self.pool_id(pool);
                let h = self.engine().pool_health(id).unwrap();
                let o = h.origins.iter().find(|o| o.name == *origin).unwrap();
                let m = o
                    .members
                    .iter()
                    .find(|m| m.monitor == monitor_id(monitor))
                    .unwrap_or_else(|| panic!("{at}: {monitor} is no member: {:?}", o.members));
                assert_eq!(m.healthy, verdict(v), "{at}: {monitor} on {origin}");
            }
            ["expect", "events", n] => {
                let fresh = &self.events[self.counted..];
                assert_eq!(
                    fresh.len(),
                    n.parse::<usize>().unwrap(),
                    "{at}: events since last count: {fresh:#?}"
                );
                self.counted = self.events.len();
            }
            ["expect", "event", pool, rest @ ..] => {
                let id = self.pool_id(pool);
                let e = self
                    .events
                    .iter()
                    .rev()
                    .find(|e| e.pool == id)
                    .unwrap_or_else(|| panic!("{at}: no event for {pool}"));
                for (k, v) in kv(rest) {
                    if k == "pool" {
                        if v == "-" {
                            assert!(
                                !e.pool_changed,
                                "{at}: pool verdict should not have changed"
                            );
                        } else {
                            assert!(
                                e.pool_changed && e.pool_healthy == verdict(&v),
                                "{at}: event pool verdict {e:?}"
                            );
                        }
                    } else {
                        let o = e
                            .origins
                            .iter()
                            .find(|o| o.name == k)
                            .unwrap_or_else(|| panic!("{at}: {k} not in {e:?}"));
                        assert_eq!(o.healthy, verdict(&v), "{at}: event origin {k}");
                    }
                }
            }
            other => panic!("{at}: cannot read {other:?}"),
        }
    }
}

#[test]
fn scenarios() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 6, "scenario files missing");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let mut world = World::new();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap().trim();
            if !line.is_empty() {
                world.step(
                    line,
                    &format!("{}:{}", file.file_name().unwrap().to_string_lossy(), n + 1),
                );
            }
        }
    }
}
