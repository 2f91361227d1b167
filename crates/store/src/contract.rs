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

fn event(at: i64) -> Event {
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
