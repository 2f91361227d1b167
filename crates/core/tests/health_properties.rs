//! Properties of the health engine over thousands of random probe sequences (virtual time;
//! the whole run takes well under a second).
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use vantage_core::catalog::Catalog;
use vantage_core::health::check::{CheckResult, FailureReason};
use vantage_core::health::{Engine, Location, ProbeKey};
use vantage_core::monitor::MonitorDraft;
use vantage_core::pool::{OriginDraft, PoolDraft};
use vantage_core::region::RegionCode;
use vantage_core::{AccountId, MonitorId, PoolId, Timestamp};

const A: AccountId = AccountId::from_bytes([1; 16]);
const M: MonitorId = MonitorId::from_bytes([2; 16]);
const P: PoolId = PoolId::from_bytes([3; 16]);

fn world(up: u8, down: u8, min: u16) -> Catalog {
    let t = Timestamp::from_unix_micros(0);
    let mut c = Catalog::default();
    let run = |c: &mut Catalog, f: &dyn Fn(&Catalog) -> Vec<vantage_core::catalog::Change>| {
        for ch in f(c) {
            c.apply(ch);
        }
    };
    run(&mut c, &|c| c.create_account(A, "a".into(), t).unwrap());
    let spec = MonitorDraft {
        expected_codes: Some("200".into()),
        consecutive_up: Some(up.into()),
        consecutive_down: Some(down.into()),
        ..Default::default()
    }
    .validate()
    .unwrap();
    run(&mut c, &|c| {
        c.create_monitor(A, M, spec.clone(), t).unwrap()
    });
    let origins = (0..3)
        .map(|i| OriginDraft {
            name: Some(format!("o{i}")),
            address: Some(format!("o{i}.example")),
            ..Default::default()
        })
        .collect();
    let (spec, monitor) = PoolDraft {
        name: Some("p".into()),
        origins: Some(origins),
        minimum_origins: Some(min.into()),
        monitor: Some(M.to_string()),
        ..Default::default()
    }
    .validate()
    .unwrap();
    run(&mut c, &|c| {
        c.create_pool(A, P, spec.clone(), monitor.clone(), t)
            .unwrap()
    });
    c
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn verdicts_follow_the_rules(up in 0u8..4, down in 0u8..4, min in 1u16..4,
                                 steps in prop::collection::vec((0usize..3, any::<bool>()), 1..60)) {
        let catalog = world(up, down, min);
        let mut engine = Engine::new(&catalog.health_plan(), [], Timestamp::from_unix_micros(0));
        let loc = Location { region: RegionCode::Weu, name: "x".into() };
        let mut history: Vec<Vec<bool>> = vec![vec![]; 3];
        let mut before = engine.pool_health(P).unwrap();
        for (i, (origin, pass)) in steps.into_iter().enumerate() {
            let key = ProbeKey { monitor: M, address: format!("o{origin}.example"), port: 0, host: None };
            let result = CheckResult { healthy: pass, reason: if pass { FailureReason::None } else { FailureReason::TcpTimeout }, response_code: None, rtt_micros: None };
            let (_, events) = engine.record(&loc, &key, result, Timestamp::from_unix_micros(i as i64));
            history[origin].push(pass);
            let after = engine.pool_health(P).unwrap();

            // Events exactly when a verdict changed.
            let changed = before.healthy != after.healthy || before.origins.iter().zip(&after.origins).any(|(b, a)| b.healthy != a.healthy);
            prop_assert_eq!(events.len(), usize::from(changed));

            for (o, h) in after.origins.iter().enumerate() {
                let was = before.origins[o].healthy;
                // A verdict flips to h only after the required run of h.
                if let (Some(prev), Some(now)) = (was.known(), h.healthy.known()) {
                    if prev != now {
                        let need = usize::from(if now { up } else { down }).max(1);
                        let tail = &history[o][history[o].len().saturating_sub(need)..];
                        prop_assert!(tail.len() == need && tail.iter().all(|r| *r == now));
                    }
                }
                // Unknown exactly until the first check.
                prop_assert_eq!(!h.healthy.is_known(), history[o].is_empty());
            }
            // The pool threshold.
            let healthy = after.origins.iter().filter(|o| o.healthy.is_healthy()).count();
            let any_known = after.origins.iter().any(|o| o.healthy.is_known());
            prop_assert_eq!(after.healthy.known(), any_known.then_some(healthy >= usize::from(min)));
            before = after;
        }
    }

    /// Waking the engine only at `poll_timeout` misses no vote going stale: at every step,
    /// the verdicts the events announced are the verdicts the engine would compute afresh.
    #[test]
    fn waking_at_poll_timeout_misses_nothing(
        steps in prop::collection::vec((0usize..3, 0usize..3, any::<bool>(), 0i64..150), 1..80)
    ) {
        let catalog = world(1, 1, 2);
        let secs = |s: i64| Timestamp::from_unix_micros(s * 1_000_000);
        let mut engine = Engine::new(&catalog.health_plan(), [], secs(0));
        let mut announced: Vec<Option<bool>> = vec![None; 3];
        let mut pool: Option<bool> = None;
        let apply = |events: Vec<vantage_core::health::Event>, announced: &mut Vec<Option<bool>>, pool: &mut Option<bool>| {
            for e in events {
                *pool = e.pool_healthy.known();
                for o in e.origins {
                    let i: usize = o.name[1..].parse().unwrap();
                    announced[i] = o.healthy.known();
                }
            }
        };
        let mut t = 0;
        for (origin, location, pass, gap) in steps {
            t += gap;
            // The driver: wake whenever the engine asked to, up to now.
            while let Some(at) = engine.poll_timeout().filter(|at| *at <= secs(t)) {
                let (events, _) = engine.handle_timeout(at);
                apply(events, &mut announced, &mut pool);
            }
            let loc = Location { region: RegionCode::Weu, name: format!("l{location}") };
            let key = ProbeKey { monitor: M, address: format!("o{origin}.example"), port: 0, host: None };
            let result = CheckResult { healthy: pass, reason: if pass { FailureReason::None } else { FailureReason::TcpTimeout }, response_code: None, rtt_micros: None };
            let (_, events) = engine.record(&loc, &key, result, secs(t));
            apply(events, &mut announced, &mut pool);
            let live = engine.pool_health(P).unwrap();
            for (i, o) in live.origins.iter().enumerate() {
                prop_assert_eq!(o.healthy.known(), announced[i], "origin {} at {}s", i, t);
            }
            prop_assert_eq!(live.healthy.known(), pool, "pool at {}s", t);
        }
    }
}
