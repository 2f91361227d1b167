//! After a controller restart, restored votes get the usual grace period from the restart,
//! then expire unless their location reports again.
#![allow(clippy::unwrap_used)]

use vantage_core::catalog::Catalog;
use vantage_core::health::check::{CheckResult, FailureReason};
use vantage_core::health::{Engine, Location, ProbeKey};
use vantage_core::monitor::MonitorDraft;
use vantage_core::pool::{OriginDraft, PoolDraft};
use vantage_core::region::RegionCode;
use vantage_core::{AccountId, MonitorId, PoolId, Timestamp};

fn secs(s: i64) -> Timestamp {
    Timestamp::from_unix_micros(s * 1_000_000)
}

#[test]
fn restored_votes_have_a_grace_period_from_the_restart() {
    let (a, m, p) = (
        AccountId::from_bytes([1; 16]),
        MonitorId::from_bytes([2; 16]),
        PoolId::from_bytes([3; 16]),
    );
    let mut c = Catalog::default();
    for ch in c.create_account(a, "a".into(), secs(0)).unwrap() {
        c.apply(ch);
    }
    // interval 60 s, timeout 5 s, retries 2: a vote stays fresh 3*60 + 15 = 195 s.
    let spec = MonitorDraft {
        expected_codes: Some("200".into()),
        ..Default::default()
    }
    .validate()
    .unwrap();
    for ch in c.create_monitor(a, m, spec, secs(0)).unwrap() {
        c.apply(ch);
    }
    let origins = vec![OriginDraft {
        name: Some("o".into()),
        address: Some("192.0.2.1".into()),
        ..Default::default()
    }];
    let (spec, mon) = PoolDraft {
        name: Some("p".into()),
        origins: Some(origins),
        monitor: Some(m.to_string()),
        ..Default::default()
    }
    .validate()
    .unwrap();
    for ch in c.create_pool(a, p, spec, mon, secs(0)).unwrap() {
        c.apply(ch);
    }
    let key = ProbeKey {
        monitor: m,
        address: "192.0.2.1".into(),
        port: 0,
        host: None,
    };
    let loc = Location {
        region: RegionCode::Weu,
        name: "ams".into(),
    };
    let mut before = Engine::new(&c, [], secs(0));
    let ok = CheckResult {
        healthy: true,
        reason: FailureReason::None,
        response_code: Some(200),
        rtt_micros: None,
    };
    let (stored, _) = before.record(&loc, &key, ok, secs(10));
    let stored = stored.unwrap();

    // Restarted long after that state was stored: the vote still counts for a while…
    let mut after = Engine::new(&c, [(key.clone(), loc, stored)], secs(1000));
    after.tick(secs(1001));
    assert_eq!(
        after.pool_health(p).unwrap().healthy,
        Some(true),
        "no verdict is lost by a restart"
    );
    after.tick(secs(1000 + 195));
    assert_eq!(after.pool_health(p).unwrap().healthy, Some(true));
    // …and expires if the location never reports again.
    let (events, _) = after.tick(secs(1000 + 196));
    assert_eq!(after.pool_health(p).unwrap().healthy, None);
    assert_eq!(events.len(), 1, "going unknown is an event");
}

#[test]
fn the_engine_says_when_it_must_be_woken() {
    let (a, m, p) = (
        AccountId::from_bytes([1; 16]),
        MonitorId::from_bytes([2; 16]),
        PoolId::from_bytes([3; 16]),
    );
    let mut c = Catalog::default();
    for ch in c.create_account(a, "a".into(), secs(0)).unwrap() {
        c.apply(ch);
    }
    // interval 60 s, timeout 5 s, retries 2: a vote stays fresh 195 s.
    let spec = MonitorDraft {
        expected_codes: Some("200".into()),
        ..Default::default()
    }
    .validate()
    .unwrap();
    for ch in c.create_monitor(a, m, spec, secs(0)).unwrap() {
        c.apply(ch);
    }
    let (spec, mon) = PoolDraft {
        name: Some("p".into()),
        origins: Some(vec![OriginDraft {
            name: Some("o".into()),
            address: Some("192.0.2.1".into()),
            ..Default::default()
        }]),
        monitor: Some(m.to_string()),
        ..Default::default()
    }
    .validate()
    .unwrap();
    for ch in c.create_pool(a, p, spec, mon, secs(0)).unwrap() {
        c.apply(ch);
    }
    let key = ProbeKey {
        monitor: m,
        address: "192.0.2.1".into(),
        port: 0,
        host: None,
    };
    let loc = Location {
        region: RegionCode::Weu,
        name: "ams".into(),
    };
    let ok = CheckResult {
        healthy: true,
        reason: FailureReason::None,
        response_code: Some(200),
        rtt_micros: None,
    };
    let mut e = Engine::new(&c, [], secs(0));
    assert_eq!(e.poll_timeout(), None, "nothing changes with time alone");
    e.record(&loc, &key, ok.clone(), secs(10));
    // The location falls silent 30 s after its last contact; the vote goes stale at 205 s.
    let silent = Timestamp::from_unix_micros(secs(40).unix_micros() + 1);
    assert_eq!(e.poll_timeout(), Some(silent));
    let (events, fell) = e.handle_timeout(silent);
    assert!(events.is_empty());
    assert_eq!(fell, vec![loc.clone()]);
    let stale = Timestamp::from_unix_micros(secs(205).unix_micros() + 1);
    assert_eq!(e.poll_timeout(), Some(stale));
    // Early wake-ups change nothing.
    assert!(e.handle_timeout(secs(100)).0.is_empty());
    assert_eq!(e.pool_health(p).unwrap().healthy, Some(true));
    // A fresher result moves the deadline later (after the one already due passes).
    e.record(&loc, &key, ok, secs(70));
    let (events, _) = e.handle_timeout(stale);
    assert!(events.is_empty(), "the vote of 70 s still counts");
    assert_eq!(
        e.poll_timeout(),
        Some(Timestamp::from_unix_micros(secs(265).unix_micros() + 1))
    );
    let (events, _) = e.handle_timeout(secs(266));
    assert_eq!(events.len(), 1, "going unknown is an event");
    assert_eq!(e.pool_health(p).unwrap().healthy, None);
    assert_eq!(e.poll_timeout(), None);
}
