//! What one probe location may say, in virtual time: results are admitted only for targets
//! assigned to it, with a check time that can vote, a plausible round trip, and no faster
//! than about once an interval; a forgotten location's votes are gone.
#![allow(clippy::unwrap_used)]

mod common;

use common::{ok, secs, world, ACCOUNT as A, POOL};
use vantage_core::health::check::{Facts, FailureReason, Outcome};
use vantage_core::health::engine::Refusal;
use vantage_core::health::{Engine, Location, ProbeKey};
use vantage_core::region::{CheckRegions, RegionCode};
use vantage_core::{AccountId, PoolId};

const B: AccountId = AccountId::from_bytes([9; 16]);

/// Account A's pool, checked from WEU only: interval 60 s, timeout 5 s, retries 2.
fn setup() -> (Engine, ProbeKey, PoolId) {
    let (c, key) = world(CheckRegions::Regions(vec![RegionCode::Weu]));
    (Engine::new(&c.health_plan(), [], secs(0)), key, POOL)
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
    assert_eq!(e.pool_health(p).unwrap().healthy.known(), Some(true));
    assert!(e.known_locations().contains(&ams));
    let events = e.forget(&ams, secs(11));
    assert_eq!(
        events.len(),
        1,
        "the pool's verdict is unknown again: an event"
    );
    assert_eq!(e.pool_health(p).unwrap().healthy.known(), None);
    assert!(!e.known_locations().contains(&ams));
    assert!(
        e.forget(&ams, secs(12)).is_empty(),
        "forgetting twice changes nothing"
    );

    // Which locations are retired: not allowed any more, or silent past the limit.
    let fra = at(RegionCode::Weu, "fra");
    e.record(&ams, &key, ok(), secs(100));
    e.record(&fra, &key, ok(), secs(500));
    let allowed: std::collections::BTreeSet<Location> = [ams.clone(), fra.clone()].into();
    assert!(e.retired(&allowed, 3_600_000_000, secs(600)).is_empty());
    assert_eq!(
        e.retired(&allowed, 400_000_000, secs(600)),
        vec![ams.clone()],
        "silent 500 s"
    );
    let only_ams: std::collections::BTreeSet<Location> = [ams.clone()].into();
    assert_eq!(
        e.retired(&only_ams, 3_600_000_000, secs(600)),
        vec![fra],
        "its token is gone"
    );
}
