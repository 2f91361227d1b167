//! The `Store` contract as executable checks: every implementation's tests call these on a
//! real instance (a SQLite file, a PostgreSQL server), so "the same guarantees" is tested,
//! not promised. Each check panics with what broke.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use vantage_core::account::Account;
use vantage_core::catalog::Change;
use vantage_core::health::engine::Event;
use vantage_core::zone::Zone;
use vantage_core::{AccountId, Timestamp, ZoneId};

use crate::{EventFilter, NewDelivery, Retention, Store, StoreError, PENDING_PER_DESTINATION};

const T: Timestamp = Timestamp::from_unix_micros(1_700_000_000_000_001);

pub fn account(b: u8) -> Account {
    Account {
        id: AccountId::from_bytes([b; 16]),
        name: format!("acct{b}"),
        created_on: T,
    }
}

pub fn zone(b: u8, name: &str) -> Zone {
    Zone {
        id: ZoneId::from_bytes([b; 16]),
        account: AccountId::from_bytes([1; 16]),
        name: name.into(),
        created_on: T,
        modified_on: T,
        overlap_allowed: false,
    }
}

/// A health event at `at` (µs).
pub fn event(at: i64) -> Event {
    Event {
        at: Timestamp::from_unix_micros(at),
        account: AccountId::from_bytes([1; 16]),
        pool: vantage_core::PoolId::from_bytes([2; 16]),
        pool_name: "p".into(),
        pool_healthy: vantage_core::health::Verdict::Unhealthy,
        pool_was: vantage_core::health::Verdict::Healthy,
        pool_changed: true,
        minimum_origins: 1,
        origins: vec![],
    }
}

fn alert(webhook: u8, at: i64) -> NewDelivery {
    NewDelivery {
        account: AccountId::from_bytes([1; 16]),
        policy: vantage_core::PolicyId::from_bytes([3; 16]),
        policy_name: "ops".into(),
        webhook: vantage_core::WebhookId::from_bytes([webhook; 16]),
        payload: "{}".into(),
        at: Timestamp::from_unix_micros(at),
    }
}

/// What one store commits, another opened on the same storage reads back.
/// One location's state on one probe target, `streak` telling versions apart.
pub fn location_state(streak: u32) -> crate::StoredState {
    use vantage_core::health::check::{CheckResult, FailureReason};
    use vantage_core::health::{Location, LocationState, ProbeKey, Verdict};
    use vantage_core::region::RegionCode;
    let key = ProbeKey {
        monitor: vantage_core::MonitorId::from_bytes([5; 16]),
        address: "192.0.2.1".into(),
        port: 0,
        host: None,
    };
    let here = Location {
        region: RegionCode::Weu,
        name: "ams1".into(),
    };
    let state = LocationState {
        verdict: Verdict::Unhealthy,
        streak,
        last: Some(CheckResult {
            healthy: false,
            reason: FailureReason::TcpTimeout,
            response_code: None,
            rtt_micros: None,
        }),
        last_at: Some(T),
        latency: None,
    };
    (key, here, state)
}

pub fn commits_survive_reopen(first: &dyn Store, reopen: &dyn Fn() -> Box<dyn Store>) {
    first
        .commit(&[
            Change::PutAccount(account(1)),
            Change::PutZone(zone(2, "example.com")),
        ])
        .unwrap();
    let again = reopen();
    let c = again.load_catalog().unwrap();
    assert_eq!(c.accounts().next(), Some(&account(1)));
    assert_eq!(c.zones().next(), Some(&zone(2, "example.com")));
    // A deletion too.
    again
        .commit(&[Change::DeleteZone(zone(2, "example.com").id)])
        .unwrap();
    assert_eq!(reopen().load_catalog().unwrap().zones().count(), 0);
}

/// A commit is all or nothing: a change the store refuses (a zone name taken, which the
/// store itself enforces against other processes) leaves the changes before it unwritten.
pub fn a_failed_commit_writes_nothing(s: &dyn Store) {
    s.commit(&[Change::PutZone(zone(2, "example.com"))])
        .unwrap();
    let err = s
        .commit(&[
            Change::PutAccount(account(1)),
            Change::PutZone(zone(3, "example.com")),
        ])
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert_eq!(s.load_catalog().unwrap().accounts().count(), 0);
}

/// The outbox is bounded per destination, a flooded destination does not hide the others'
/// notifications, history is pruned by age and count, pending deliveries never are.
pub fn storage_is_bounded_and_one_destination_cannot_hide_another(s: &dyn Store) {
    let flood: Vec<NewDelivery> = (0..PENDING_PER_DESTINATION as i64 + 5)
        .map(|i| alert(7, i))
        .collect();
    assert_eq!(s.record_health(&[], &[], &flood).unwrap(), 5);
    assert_eq!(s.record_health(&[], &[], &[alert(8, 1_000)]).unwrap(), 0);
    let due = s
        .due_deliveries(Timestamp::from_unix_micros(10_000), 10)
        .unwrap();
    let hooks: Vec<u8> = due.iter().map(|d| d.item.webhook.as_bytes()[0]).collect();
    assert_eq!(
        hooks,
        [7, 8],
        "the oldest due of each destination, not 10 of the flood"
    );
    assert_eq!(
        due[0].item,
        alert(7, 0),
        "the oldest of the flood comes first"
    );

    let events: Vec<Event> = (1..=5).map(|i| event(i * 1_000_000)).collect();
    s.record_health(&[], &events, &[]).unwrap();
    for d in &due {
        s.delivery_attempted(d.seq, Timestamp::from_unix_micros(5_000_000), Ok(()))
            .unwrap();
    }
    let retention = Retention {
        max_age_micros: 10_000_000,
        max_rows: 3,
    };
    let pruned = s
        .prune(
            &retention,
            Timestamp::from_unix_micros(12_500_000),
            &|_| true,
            &[],
        )
        .unwrap();
    // Events at 1 s and 2 s are past the age; of the rest, the newest three stay.
    assert_eq!(pruned.events, 2);
    assert_eq!(
        pruned.deliveries, 0,
        "finished deliveries within the age and count"
    );
    let left = s
        .events(&EventFilter {
            limit: 100,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(left.len(), 3);
    assert!(left.windows(2).all(|w| w[0].0 < w[1].0), "oldest first");
    let pruned = s
        .prune(
            &retention,
            Timestamp::from_unix_micros(60_000_000),
            &|_| true,
            &[],
        )
        .unwrap();
    assert_eq!((pruned.events, pruned.deliveries), (3, 2));
    assert_eq!(
        s.due_deliveries(Timestamp::from_unix_micros(10_000), 10)
            .unwrap()
            .len(),
        1,
        "pending deliveries are never pruned"
    );
    let log = s.deliveries(AccountId::from_bytes([1; 16]), 1_000).unwrap();
    assert!(
        !log.is_empty() && log.windows(2).all(|w| w[0].seq > w[1].seq),
        "newest first"
    );
}

/// A store on disk reports what it takes there (the `vantage_store_bytes` gauge).
pub fn reports_its_size(s: &dyn Store) {
    s.commit(&[Change::PutAccount(account(1))]).unwrap();
    assert!(s.size_bytes().unwrap() > 0);
}

/// A failed delivery waits for its next attempt; one given up is never due again.
pub fn failed_deliveries_wait_and_give_up(s: &dyn Store) {
    s.record_health(&[], &[], &[alert(9, 100)]).unwrap();
    let due = s
        .due_deliveries(Timestamp::from_unix_micros(100), 10)
        .unwrap();
    assert_eq!(due.len(), 1);
    let later = Timestamp::from_unix_micros(5_000);
    s.delivery_attempted(
        due[0].seq,
        Timestamp::from_unix_micros(200),
        Err(("503 from the receiver".into(), Some(later))),
    )
    .unwrap();
    assert!(s
        .due_deliveries(Timestamp::from_unix_micros(4_999), 10)
        .unwrap()
        .is_empty());
    let again = s.due_deliveries(later, 10).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 1);
    assert_eq!(
        again[0].last_error.as_deref(),
        Some("503 from the receiver")
    );
    s.delivery_attempted(again[0].seq, later, Err(("still down".into(), None)))
        .unwrap();
    assert!(s
        .due_deliveries(Timestamp::from_unix_micros(i64::MAX / 2), 10)
        .unwrap()
        .is_empty());
    let log = s.deliveries(AccountId::from_bytes([1; 16]), 10).unwrap();
    assert!(log[0].failed && log[0].attempts == 2, "{log:?}");
}

/// `external_version` moves when another process commits, and not for the caller's own.
pub fn external_version_sees_other_connections_only(server: &dyn Store, cli: &dyn Store) {
    let v0 = server.external_version().unwrap();
    server.commit(&[Change::PutAccount(account(1))]).unwrap();
    assert_eq!(server.external_version().unwrap(), v0);
    cli.commit(&[Change::PutAccount(account(2))]).unwrap();
    assert_ne!(server.external_version().unwrap(), v0);
}

/// Everything one store holds moves to an empty other store intact — objects, location
/// states, events and the outbox in every state, with their sequence numbers — and new rows
/// continue after the copied ones; a store that is not empty is refused, unchanged.
pub fn export_and_import_carry_everything(from: &dyn Store, to: &dyn Store) {
    from.commit(&[
        Change::PutAccount(account(1)),
        Change::PutZone(zone(2, "example.com")),
    ])
    .unwrap();
    let (key, here, state) = location_state(2);
    from.record_health(
        &[(key, here, state)],
        &[event(1_000), event(2_000)],
        &[alert(7, 10), alert(7, 20), alert(8, 30)],
    )
    .unwrap();
    let due = from
        .due_deliveries(Timestamp::from_unix_micros(100), 10)
        .unwrap();
    from.delivery_attempted(due[0].seq, Timestamp::from_unix_micros(200), Ok(()))
        .unwrap();
    from.delivery_attempted(
        due[1].seq,
        Timestamp::from_unix_micros(200),
        Err(("refused".into(), Some(Timestamp::from_unix_micros(9_000)))),
    )
    .unwrap();
    let data = from.export().unwrap();
    assert_eq!(data.objects.len(), 2);
    assert_eq!(data.outbox.len(), 3);
    to.import(&data).unwrap();
    assert_eq!(to.export().unwrap(), data, "what arrived is what left");
    assert_eq!(to.counts().unwrap(), from.counts().unwrap());
    let again = to.import(&data).unwrap_err();
    assert!(matches!(again, StoreError::Conflict(_)), "{again}");
    assert_eq!(
        to.export().unwrap(),
        data,
        "a refused import changes nothing"
    );
    // The pending retry keeps its time; new rows come after the copied ones.
    assert!(to
        .due_deliveries(Timestamp::from_unix_micros(8_999), 10)
        .unwrap()
        .iter()
        .all(|d| d.item.webhook.as_bytes()[0] == 7));
    to.record_health(&[], &[event(3_000)], &[alert(9, 40)])
        .unwrap();
    let events = to
        .events(&EventFilter {
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    let top = data.events.iter().map(|(s, _)| *s).max().unwrap();
    assert!(events.last().unwrap().0 > top, "{events:?}");
    let log = to.deliveries(AccountId::from_bytes([1; 16]), 10).unwrap();
    let top = data.outbox.iter().map(|r| r.delivery.seq).max().unwrap();
    assert!(log[0].seq > top);
}
