//! A configuration change re-plans only the pools it touches, and locations are sent deltas:
//! over random sequences of plans and results (virtual time), the engine that followed them
//! change by change must agree with one built from scratch on the same plan and votes, and
//! every location that applied the deltas must hold exactly the whole assignment.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;
use vantage_core::health::check::{CheckResult, FailureReason};
use vantage_core::health::engine::{Assignment, AssignmentDelta};
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

/// Monitor `i` of `account` (a monitor belongs to one account), as configured in `variant`:
/// the variants keep a pool's longest gap (interval plus one check) but not a vote's
/// freshness (three intervals plus one check).
fn monitor(account: u8, i: u8, variant: bool) -> (MonitorId, Arc<MonitorSpec>) {
    let (interval, timeout, retries) = if variant { (65, 10, 0) } else { (60, 5, 2) };
    let spec = MonitorDraft {
        expected_codes: Some("200".into()),
        interval: Some(interval + 30 * i64::from(i % 2)),
        timeout: Some(timeout),
        retries: Some(retries),
        ..Default::default()
    }
    .validate()
    .unwrap();
    (
        MonitorId::from_bytes([10 + 4 * account + i; 16]),
        Arc::new(spec),
    )
}

fn account(pool: usize) -> u8 {
    (pool % 2) as u8
}

/// One pool of a random plan: which monitor (none: unmonitored), where it is checked from,
/// whether it is enabled, its name, and its origins (address, enabled).
type PoolChoice = (Option<u8>, u8, bool, bool, Vec<(usize, bool)>);

fn plan(pools: &[Option<PoolChoice>], variant: bool) -> HealthPlan {
    let pools = pools
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let (monitor_choice, regions, enabled, renamed, origins) = p.as_ref()?;
            let checks = monitor_choice
                .map(|m| {
                    let (id, spec) = monitor(account(i), m, variant);
                    vec![PlannedCheck::sole(id, spec)]
                })
                .unwrap_or_default();
            let mut seen = std::collections::BTreeSet::new();
            Some(PlannedPool {
                id: PoolId::from_bytes([i as u8 + 1; 16]),
                account: AccountId::from_bytes([1 + account(i); 16]),
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

/// An assignment as a location holds it: each target's monitor, pools (in any order) and
/// account.
type Held = BTreeMap<ProbeKey, (MonitorSpec, Vec<String>, Option<AccountId>)>;

fn whole(engine: &Engine, region: RegionCode) -> Held {
    holding(engine.assignment(region))
}

fn holding(assigned: Vec<Assignment>) -> Held {
    assigned
        .into_iter()
        .map(|mut a| {
            a.pools.sort();
            (a.key, ((*a.spec).clone(), a.pools, a.account))
        })
        .collect()
}

/// What a location holds once it applied `delta`.
fn apply(held: &mut Held, delta: AssignmentDelta) {
    for key in delta.removed {
        held.remove(&key);
    }
    held.extend(holding(delta.assigned));
}

fn choice() -> impl Strategy<Value = Option<PoolChoice>> {
    prop::option::weighted(
        0.8,
        (
            prop::option::weighted(0.85, 0u8..3),
            0u8..3,
            prop::bool::weighted(0.85),
            prop::bool::weighted(0.2),
            prop::collection::vec((0usize..3, prop::bool::weighted(0.85)), 1..4),
        ),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn change_by_change_equals_from_scratch(
        steps in prop::collection::vec(
            (prop::collection::vec(choice(), 4), any::<bool>(), prop::collection::vec((0usize..3, 0u8..2, 0u8..3, 0usize..3, any::<bool>()), 0..6)),
            1..12,
        )
    ) {
        let mut engine = Engine::new(&HealthPlan::default(), [], Timestamp::from_unix_micros(0));
        let mut held: Vec<(u64, Held)> = REGIONS.iter().map(|r| (engine.assignment_seq(), whole(&engine, *r))).collect();
        // A location whose agent is bound to the first account.
        let bound = [AccountId::from_bytes([1; 16])];
        let mut held_bound: (u64, Held) = (engine.assignment_seq(), Held::new());
        let mut votes: BTreeMap<(ProbeKey, Location), vantage_core::health::LocationState> = BTreeMap::new();
        for (step, (pools, variant, results)) in steps.into_iter().enumerate() {
            // Votes stay fresh throughout: one second per step, intervals of a minute.
            let now = Timestamp::from_unix_micros((step as i64 + 1) * 1_000_000);
            let plan = plan(&pools, variant);
            engine.configure(&plan, now);
            for (address, owner, monitor_choice, region, pass) in results {
                let key = ProbeKey { monitor: monitor(owner, monitor_choice, variant).0, address: ADDRESSES[address].into(), port: 0, host: None };
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
            for (region, (since, holds)) in REGIONS.iter().zip(&mut held) {
                apply(holds, engine.assignment_delta(*region, None, *since).unwrap());
                prop_assert_eq!(&*holds, &whole(&engine, *region));
                *since = engine.assignment_seq();
            }
            // A bound agent applying its deltas holds what its accounts' pools ask, and is never
            // told of another account's targets.
            let delta = engine.assignment_delta(RegionCode::Weu, Some(&bound), held_bound.0).unwrap();
            let own: Vec<MonitorId> = (0..3).map(|m| monitor(0, m, variant).0).collect();
            prop_assert!(delta.removed.iter().all(|k| own.contains(&k.monitor)), "{:?}", delta.removed);
            apply(&mut held_bound.1, delta);
            let bound_whole = holding(engine.assignment_for(RegionCode::Weu, Some(&bound)));
            prop_assert_eq!(&held_bound.1, &bound_whole);
            // Each target names its account, for the agent's turns.
            prop_assert!(bound_whole.values().all(|(_, _, a)| a.is_some_and(|a| bound.contains(&a))));
            held_bound.0 = engine.assignment_seq();
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
            // As the votes go stale, the two agree still: the engine that followed the changes
            // looks at every pool by the time a vote it counts expires (on copies: the next
            // step goes on from now).
            let (mut followed, mut scratch) = (engine.clone(), fresh.clone());
            for _ in 0..30 {
                let Some(at) = scratch.poll_timeout() else { break };
                for _ in 0..100 {
                    match followed.poll_timeout() {
                        Some(k) if k <= at => { followed.handle_timeout(k); }
                        _ => break,
                    }
                }
                followed.handle_timeout(at);
                scratch.handle_timeout(at);
                prop_assert!(followed.view().same_verdicts(&scratch.view()), "the published verdicts differ at {:?}", at);
            }
            // The engine wakes no later than a vote goes stale (sooner is harmless).
            let (kept, exact) = (engine.poll_timeout(), fresh.poll_timeout());
            prop_assert!(exact.is_none() || kept.is_some_and(|k| k <= exact.unwrap()), "{kept:?} > {exact:?}");
        }
    }
}

/// Two pools probe one target; its monitor's votes stay fresh for less after a change. The
/// first pool's plan takes the new monitor, and the second's then compares equal: it must be
/// looked at again all the same, or its vote would count past its new expiry.
#[test]
fn a_monitor_change_reaches_every_pool_sharing_its_target() {
    let one = |variant| {
        let pool = (Some(0), 0, true, false, vec![(0, true)]);
        // Pools 0 and 2: the same account, the same monitor, the same origin.
        plan(&[Some(pool.clone()), None, Some(pool), None], variant)
    };
    let at = |s: i64| Timestamp::from_unix_micros(s * 1_000_000);
    // Fresh for 3 × 65 + 10 = 205 s, then for 3 × 60 + 15 = 195 s.
    let mut engine = Engine::new(&one(true), [], at(0));
    let key = ProbeKey {
        monitor: monitor(0, 0, true).0,
        address: ADDRESSES[0].into(),
        port: 0,
        host: None,
    };
    let location = Location {
        region: RegionCode::Weu,
        name: "l".into(),
    };
    let pass = CheckResult {
        healthy: true,
        reason: FailureReason::None,
        response_code: None,
        rtt_micros: None,
    };
    engine.record(&location, &key, pass, at(1));
    engine.configure(&one(false), at(2));
    let verdict = |e: &Engine, i: u8| e.view().pool(PoolId::from_bytes([i; 16])).unwrap().healthy;
    assert!(verdict(&engine, 1).is_known() && verdict(&engine, 3).is_known());
    // Past the new expiry, both pools have lost the vote.
    while let Some(t) = engine.poll_timeout().filter(|t| *t <= at(197)) {
        engine.handle_timeout(t);
    }
    engine.handle_timeout(at(197));
    assert!(!verdict(&engine, 1).is_known(), "{:?}", verdict(&engine, 1));
    assert!(!verdict(&engine, 3).is_known(), "{:?}", verdict(&engine, 3));
}
