//! What one probe location may say, in virtual time: results are admitted only for targets
//! assigned to it, with a check time that can vote, a plausible round trip, and no faster
//! than about once an interval; a forgotten location's votes are gone.
#![allow(clippy::unwrap_used)]

use vantage_core::catalog::Catalog;
use vantage_core::health::check::{CheckResult, Facts, FailureReason, Outcome};
use vantage_core::health::engine::Refusal;
use vantage_core::health::{Engine, Location, ProbeKey};
use vantage_core::monitor::MonitorDraft;
use vantage_core::pool::{OriginDraft, PoolDraft};
use vantage_core::region::{CheckRegions, RegionCode};
use vantage_core::{AccountId, MonitorId, PoolId, Timestamp};

fn secs(s: i64) -> Timestamp {
    Timestamp::from_unix_micros(s * 1_000_000)
}

const A: AccountId = AccountId::from_bytes([1; 16]);
const B: AccountId = AccountId::from_bytes([9; 16]);

/// Account A's pool, checked from WEU only: interval 60 s, timeout 5 s, retries 2.
fn setup() -> (Engine, ProbeKey, PoolId) {
    let (m, p) = (MonitorId::from_bytes([2; 16]), PoolId::from_bytes([3; 16]));
    let mut c = Catalog::default();
    let apply = |c: &mut Catalog, changes: Vec<_>| {
        for ch in changes {
            c.apply(ch);
        }
    };
    let changes = c.create_account(A, "a".into(), secs(0)).unwrap();
    apply(&mut c, changes);
    let spec = MonitorDraft {
        expected_codes: Some("200".into()),
        ..Default::default()
    }
    .validate()
    .unwrap();
    let changes = c.create_monitor(A, m, spec, secs(0)).unwrap();
    apply(&mut c, changes);
    let (mut spec, mon) = PoolDraft {
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
    spec.check_regions = CheckRegions::Regions(vec![RegionCode::Weu]);
    let changes = c.create_pool(A, p, spec, mon, secs(0)).unwrap();
    apply(&mut c, changes);
    let key = ProbeKey {
        monitor: m,
        address: "192.0.2.1".into(),
        port: 0,
        host: None,
    };
    (Engine::new(&c, [], secs(0)), key, p)
}

fn at(region: RegionCode, name: &str) -> Location {
    Location {
        region,
        name: name.into(),
    }
}

fn facts(outcome: Outcome, rtt_micros: Option<u64>) -> Facts {
    Facts {
        outcome,
        rtt_micros,
    }
}

fn ok() -> CheckResult {
    CheckResult {
        healthy: true,
        reason: FailureReason::None,
        response_code: Some(200),
        rtt_micros: Some(1_000),
    }
}

#[test]
fn a_location_says_only_what_it_was_asked() {
    let (mut e, key, _) = setup();
    let ams = at(RegionCode::Weu, "ams");
    let now = secs(1_000);
    let admit = |e: &Engine, loc: &Location, accounts: Option<&[AccountId]>, t: i64, rtt| {
        e.admit(
            loc,
            accounts,
            &key,
            secs(t),
            &facts(Outcome::Reached, rtt),
            now,
        )
    };
    assert_eq!(admit(&e, &ams, None, 1_000, Some(1_000)), Ok(()));
    assert_eq!(
        admit(&e, &at(RegionCode::Enam, "iad"), None, 1_000, None),
        Err(Refusal::Unassigned),
        "another region does not check this pool"
    );
    assert_eq!(
        admit(&e, &ams, Some(&[B]), 1_000, None),
        Err(Refusal::Unassigned),
        "an agent limited to another account"
    );
    assert_eq!(admit(&e, &ams, Some(&[A, B]), 1_000, None), Ok(()));
    // Fresh for 3 × 60 + 5 × 3 = 195 s; up to 5 s of clock skew ahead.
    assert_eq!(admit(&e, &ams, None, 1_000 - 195, None), Ok(()));
    assert_eq!(
        admit(&e, &ams, None, 1_000 - 196, None),
        Err(Refusal::OutOfWindow)
    );
    assert_eq!(admit(&e, &ams, None, 1_005, None), Ok(()));
    assert_eq!(
        admit(&e, &ams, None, 1_006, None),
        Err(Refusal::OutOfWindow)
    );
    // A round trip of at most timeout × (retries + 1) + 1 s = 16 s.
    assert_eq!(admit(&e, &ams, None, 1_000, Some(16_000_000)), Ok(()));
    assert_eq!(
        admit(&e, &ams, None, 1_000, Some(16_000_001)),
        Err(Refusal::RttOutOfRange)
    );

    // Once recorded, the next result is due an interval later; half of one is the floor.
    e.record(&ams, &key, ok(), secs(1_000));
    let later = |loc: &Location, t| {
        e.admit(
            loc,
            None,
            &key,
            secs(t),
            &facts(Outcome::Reached, None),
            secs(t),
        )
    };
    assert_eq!(later(&ams, 1_029), Err(Refusal::TooFrequent));
    assert_eq!(
        later(&at(RegionCode::Weu, "fra"), 1_001),
        Ok(()),
        "per location"
    );
    assert_eq!(later(&ams, 1_030), Ok(()));
    // A check this machine could not run is no vote.
    let local = facts(Outcome::Error(FailureReason::LocalResources), None);
    assert_eq!(
        e.admit(&ams, None, &key, secs(1_030), &local, secs(1_030)),
        Err(Refusal::LocalFailure)
    );
}

#[test]
fn a_forgotten_location_takes_its_votes_with_it() {
    let (mut e, key, p) = setup();
    let ams = at(RegionCode::Weu, "ams");
    e.record(&ams, &key, ok(), secs(10));
    assert_eq!(e.pool_health(p).unwrap().healthy, Some(true));
    assert!(e.known_locations().contains(&ams));
    let events = e.forget(&ams, secs(11));
    assert_eq!(
        events.len(),
        1,
        "the pool's verdict is unknown again: an event"
    );
    assert_eq!(e.pool_health(p).unwrap().healthy, None);
    assert!(!e.known_locations().contains(&ams));
    assert!(
        e.forget(&ams, secs(12)).is_empty(),
        "forgetting twice changes nothing"
    );
}
