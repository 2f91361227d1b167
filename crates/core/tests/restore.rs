//! After a controller restart, restored votes get the usual grace period from the restart,
//! then expire unless their location reports again; and the engine says when it must be
//! woken for that.
#![allow(clippy::unwrap_used)]

mod common;

use common::{ok, secs, world, POOL as p};
use vantage_core::health::{Engine, Location};
use vantage_core::region::{CheckRegions, RegionCode};
use vantage_core::Timestamp;

#[test]
fn restored_votes_have_a_grace_period_from_the_restart() {
    // A vote stays fresh 195 s.
    let (c, key) = world(CheckRegions::AllLocations);
    let loc = Location {
        region: RegionCode::Weu,
        name: "ams".into(),
    };
    let mut before = Engine::new(&c.health_plan(), [], secs(0));
    let (stored, _) = before.record(&loc, &key, ok(), secs(10));
    let stored = stored.unwrap();

    // Restarted long after that state was stored: the vote still counts for a while…
    let mut after = Engine::new(&c.health_plan(), [(key.clone(), loc, stored)], secs(1000));
    after.handle_timeout(secs(1001));
    assert_eq!(
        after.pool_health(p).unwrap().healthy.known(),
        Some(true),
        "no verdict is lost by a restart"
    );
    after.handle_timeout(secs(1000 + 195));
    assert_eq!(after.pool_health(p).unwrap().healthy.known(), Some(true));
    // …and expires if the location never reports again.
    let (events, _) = after.handle_timeout(secs(1000 + 196));
    assert_eq!(after.pool_health(p).unwrap().healthy.known(), None);
    assert_eq!(events.len(), 1, "going unknown is an event");
}

#[test]
fn the_engine_says_when_it_must_be_woken() {
    let (c, key) = world(CheckRegions::AllLocations);
    let loc = Location {
        region: RegionCode::Weu,
        name: "ams".into(),
    };
    let mut e = Engine::new(&c.health_plan(), [], secs(0));
    assert_eq!(e.poll_timeout(), None, "nothing changes with time alone");
    e.record(&loc, &key, ok(), secs(10));
    // The location falls silent 85 s after its last contact (its monitor's 60 s interval,
    // one 15 s check, 10 s of slack); the vote goes stale at 205 s.
    let silent = Timestamp::from_unix_micros(secs(95).unix_micros() + 1);
    assert_eq!(e.poll_timeout(), Some(silent));
    let (events, fell) = e.handle_timeout(silent);
    assert!(events.is_empty());
    assert_eq!(fell, vec![loc.clone()]);
    let stale = Timestamp::from_unix_micros(secs(205).unix_micros() + 1);
    assert_eq!(e.poll_timeout(), Some(stale));
    // Early wake-ups change nothing.
    assert!(e.handle_timeout(secs(100)).0.is_empty());
    assert_eq!(e.pool_health(p).unwrap().healthy.known(), Some(true));
    // A fresher result moves the deadline later (after the one already due passes).
    e.record(&loc, &key, ok(), secs(70));
    let (events, _) = e.handle_timeout(stale);
    assert!(events.is_empty(), "the vote of 70 s still counts");
    assert_eq!(
        e.poll_timeout(),
        Some(Timestamp::from_unix_micros(secs(265).unix_micros() + 1))
    );
    let (events, _) = e.handle_timeout(secs(266));
    assert_eq!(events.len(), 1, "going unknown is an event");
    assert_eq!(e.pool_health(p).unwrap().healthy.known(), None);
    assert_eq!(e.poll_timeout(), None);
}

#[test]
fn silence_follows_the_locations_schedule() {
    // The monitor checks every 60 s (timeout 5 s × 3 attempts): between two results a location
    // is quiet for up to 75 s while all is well, so it is silent only after 85 s, not 30 s.
    let (c, key) = world(CheckRegions::AllLocations);
    let loc = Location {
        region: RegionCode::Weu,
        name: "ams".into(),
    };
    let mut e = Engine::new(&c.health_plan(), [], secs(0));
    e.record(&loc, &key, ok(), secs(10));
    assert_eq!(
        e.poll_timeout(),
        Some(Timestamp::from_unix_micros(secs(95).unix_micros() + 1))
    );
    assert!(
        e.handle_timeout(secs(70)).1.is_empty(),
        "a check is due, not missed"
    );
    assert_eq!(e.handle_timeout(secs(96)).1, vec![loc]);
}

#[test]
fn a_follower_adopts_the_judges_verdicts_and_refuses_them_for_other_origins() {
    // Replicas on one database: the judge's votes go stale; the follower, rebuilt from the
    // stored states with a fresh grace period, would still say healthy on its own. Adopting
    // the judge's decision, it says what the judge says.
    let (c, key) = world(CheckRegions::AllLocations);
    let loc = Location {
        region: RegionCode::Weu,
        name: "ams".into(),
    };
    let mut judge = Engine::new(&c.health_plan(), [], secs(0));
    let (stored, _) = judge.record(&loc, &key, ok(), secs(10));
    judge.handle_timeout(secs(300));
    assert_eq!(judge.pool_health(p).unwrap().healthy.known(), None);

    let mut follower = Engine::new(
        &c.health_plan(),
        [(key.clone(), loc, stored.unwrap())],
        secs(300),
    );
    assert_eq!(follower.pool_health(p).unwrap().healthy.known(), Some(true));
    let decided = judge.view().pool(p).unwrap().decided();
    assert!(follower.adopt(&decided));
    assert_eq!(follower.pool_health(p).unwrap().healthy.known(), None);
    assert_eq!(
        follower.view().pool(p).unwrap().decided(),
        decided,
        "the follower publishes the judge's verdicts as they are"
    );
    let before = follower.view();
    assert!(follower.adopt(&decided));
    assert!(
        follower.view().same(&before),
        "the same decision changes nothing"
    );

    // The judge's later state of a location is detail only: shown, not judged again.
    let fresh = judge.record(&loc2(), &key, ok(), secs(301)).0.unwrap();
    follower.restore_state(&key, &loc2(), fresh).unwrap();
    let health = follower.pool_health(p).unwrap();
    assert_eq!(health.healthy.known(), None, "the adopted verdict stands");
    assert!(health.origins[0]
        .locations
        .iter()
        .any(|(l, s)| *l == loc2() && s.last_at == Some(secs(301))));
    let before = follower.view();

    // A decision about other origins (one catalog is behind) is refused and changes nothing.
    let mut renamed = decided.clone();
    renamed.origins[0].name = "someone-else".into();
    renamed.healthy = vantage_core::health::Verdict::Healthy;
    assert!(!follower.adopt(&renamed));
    assert!(follower.view().same(&before));
}

fn loc2() -> Location {
    Location {
        region: RegionCode::Weu,
        name: "fra".into(),
    }
}

#[test]
fn a_refreshed_vote_counts_again_but_only_a_changed_verdict_is_stored() {
    // What the shell persists is the verdict; freshness lives in memory (a restored engine
    // counts every stored vote fresh from its restart), so an overloaded prober whose votes go
    // stale between checks does not write every check.
    let (c, key) = world(CheckRegions::AllLocations);
    let loc = Location {
        region: RegionCode::Weu,
        name: "ams".into(),
    };
    let mut e = Engine::new(&c.health_plan(), [], secs(0));
    let (stored, events) = e.record(&loc, &key, ok(), secs(10));
    assert!(stored.is_some(), "the first verdict is stored");
    assert_eq!(events.len(), 1);
    let (stored, events) = e.record(&loc, &key, ok(), secs(70));
    assert!(stored.is_none() && events.is_empty(), "nothing moved");
    // The vote goes stale (265 s): the pool goes unknown.
    let (events, _) = e.handle_timeout(secs(266));
    assert_eq!(events.len(), 1);
    assert_eq!(e.pool_health(p).unwrap().healthy.known(), None);
    // Refreshed with the same verdict: it counts again at once, and that is an event, but the
    // location's verdict did not change, so there is nothing new to store.
    let (stored, events) = e.record(&loc, &key, ok(), secs(300));
    assert_eq!(stored, None);
    assert_eq!(events.len(), 1, "the pool is healthy again");
    assert_eq!(e.pool_health(p).unwrap().healthy.known(), Some(true));
}
