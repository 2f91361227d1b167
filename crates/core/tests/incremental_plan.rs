//! A configuration change re-plans only the pools it touches, and locations are sent deltas:
//! over random sequences of plans and results (virtual time), the engine that followed them
//! change by change must agree with one built from scratch on the same plan and votes, and
//! every location that applied the deltas must hold exactly the whole assignment.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;
use vantage_core::health::check::{CheckResult, FailureReason};
use vantage_core::health::plan::{HealthPlan, PlannedCheck, PlannedOrigin, PlannedPool};
use vantage_core::health::{Engine, Location, ProbeKey};
use vantage_core::monitor::{MonitorDraft, MonitorSpec};
use vantage_core::region::{CheckRegions, RegionCode};
use vantage_core::{AccountId, MonitorId, PoolId, Timestamp};

const REGIONS: [RegionCode; 3] = [RegionCode::Weu, RegionCode::Enam, RegionCode::Eeu];
const ADDRESSES: [&str; 5] = [
    "192.0.2.1",
    "192.0.2.2",
    "192.0.2.3",
    "192.0.2.4",
    "192.0.2.5",
];

fn monitor(i: u8) -> (MonitorId, Arc<MonitorSpec>) {
    let spec = MonitorDraft {
        expected_codes: Some("200".into()),
        interval: Some(60 + 30 * i64::from(i % 2)),
        ..Default::default()
    }
    .validate()
    .unwrap();
    (MonitorId::from_bytes([10 + i; 16]), Arc::new(spec))
}

/// One pool of a random plan: which monitor (none: unmonitored), where it is checked from,
/// whether it is enabled, its name, and its origins (address, enabled).
type PoolChoice = (Option<u8>, u8, bool, bool, Vec<(usize, bool)>);

fn plan(pools: &[Option<PoolChoice>]) -> HealthPlan {
    let pools = pools
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let (monitor_choice, regions, enabled, renamed, origins) = p.as_ref()?;
            let checks = monitor_choice
                .map(|m| {
                    let (id, spec) = monitor(m);
                    vec![PlannedCheck::sole(id, spec)]
                })
                .unwrap_or_default();
            let mut seen = std::collections::BTreeSet::new();
            Some(PlannedPool {
                id: PoolId::from_bytes([i as u8 + 1; 16]),
                account: AccountId::from_bytes([1 + (i % 2) as u8; 16]),
                name: format!("pool{i}{}", if *renamed { "-renamed" } else { "" }),
                enabled: *enabled,
                minimum: 1,
                check_regions: match regions % 3 {
                    0 => CheckRegions::AllRegions,
                    1 => CheckRegions::Regions(vec![RegionCode::Weu]),
                    _ => CheckRegions::Regions(vec![RegionCode::Enam, RegionCode::Eeu]),
                },
                checks,
                grouped: false,
                origins: origins
                    .iter()
                    .filter(|(a, _)| seen.insert(*a))
                    .map(|(a, on)| PlannedOrigin {
                        name: format!("o{a}"),
                        address: ADDRESSES[*a].into(),
                        port: 0,
                        host: None,
                        enabled: *on,
                    })
                    .collect(),
            })
        })
        .collect();
    HealthPlan { pools }
}

/// An assignment as a location holds it: each target's monitor and pools (in any order).
type Held = BTreeMap<ProbeKey, (MonitorSpec, Vec<String>)>;

fn whole(engine: &Engine, region: RegionCode) -> Held {
    engine
        .assignment(region)
        .into_iter()
        .map(|mut a| {
            a.pools.sort();
            (a.key, ((*a.spec).clone(), a.pools))
        })
        .collect()
}

fn choice() -> impl Strategy<Value = Option<PoolChoice>> {
    prop::option::weighted(
        0.8,
        (
            prop::option::weighted(0.85, 0u8..3),
            0u8..3,
            prop::bool::weighted(0.85),
            prop::bool::weighted(0.2),
            prop::collection::vec((0usize..5, prop::bool::weighted(0.85)), 1..4),
        ),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn change_by_change_equals_from_scratch(
        steps in prop::collection::vec(
            (prop::collection::vec(choice(), 4), prop::collection::vec((0usize..5, 0u8..3, 0usize..3, any::<bool>()), 0..6)),
            1..12,
        )
    ) {
        let mut engine = Engine::new(&HealthPlan::default(), [], Timestamp::from_unix_micros(0));
        let mut held: Vec<(u64, Held)> = REGIONS.iter().map(|r| (engine.assignment_seq(), whole(&engine, *r))).collect();
        let mut votes: BTreeMap<(ProbeKey, Location), vantage_core::health::LocationState> = BTreeMap::new();
        for (step, (pools, results)) in steps.into_iter().enumerate() {
            // Votes stay fresh throughout: one second per step, intervals of a minute.
            let now = Timestamp::from_unix_micros((step as i64 + 1) * 1_000_000);
            let plan = plan(&pools);
            engine.configure(&plan, now);
            for (address, monitor_choice, region, pass) in results {
                let key = ProbeKey { monitor: monitor(monitor_choice).0, address: ADDRESSES[address].into(), port: 0, host: None };
                let location = Location { region: REGIONS[region], name: format!("l{region}") };
                let result = CheckResult {
                    healthy: pass,
                    reason: if pass { FailureReason::None } else { FailureReason::TcpTimeout },
                    response_code: None,
                    rtt_micros: None,
                };
                engine.record(&location, &key, result, now);
            }
            // Every location that applies its delta holds the whole assignment.
            for (region, (since, holding)) in REGIONS.iter().zip(&mut held) {
                let delta = engine.assignment_delta(*region, None, *since).unwrap();
                for key in delta.removed {
                    holding.remove(&key);
                }
                for mut a in delta.assigned {
                    a.pools.sort();
                    holding.insert(a.key, ((*a.spec).clone(), a.pools));
                }
                prop_assert_eq!(&*holding, &whole(&engine, *region));
                *since = engine.assignment_seq();
            }
            // The votes the engine keeps, read back through each pool's health.
            votes.clear();
            for p in &plan.pools {
                let Some(health) = engine.pool_health(p.id) else { continue };
                let targets = engine.origin_targets(p.id);
                for (origin, (_, key)) in health.origins.iter().zip(targets) {
                    let Some(key) = key else { continue };
                    for (location, state) in &origin.locations {
                        votes.insert((key.clone(), location.clone()), state.clone());
                    }
                }
            }
            // From scratch, on the same plan and votes, at the same time: the same verdicts
            // and the same assignment.
            let restored = votes.iter().map(|((k, l), s)| (k.clone(), l.clone(), s.clone()));
            let mut fresh = Engine::new(&plan, restored, Timestamp::from_unix_micros(0));
            fresh.configure(&plan, now);
            for p in &plan.pools {
                prop_assert_eq!(engine.pool_health(p.id), fresh.pool_health(p.id), "pool {}", p.name);
            }
            for region in REGIONS {
                prop_assert_eq!(whole(&engine, region), whole(&fresh, region));
            }
        }
    }
}
