//! The store contract against a real PostgreSQL server (a throwaway cluster per test file),
//! plus what only a server can do wrong: a newer schema, a second controller, an outage.
#![allow(clippy::unwrap_used)]

use vantage_core::catalog::Change;
use vantage_store::contract;
use vantage_store::{Lease, Store, StoreError};
use vantage_store_postgres::testing::Cluster;
use vantage_store_postgres::PostgresStore;

/// A fresh cluster and database for one test, stopped when the test ends (a static cluster
/// would never be dropped, and would outlive the test process).
fn fresh(name: &str) -> (Cluster, String) {
    let cluster = Cluster::start();
    let url = cluster.database(name);
    (cluster, url)
}

#[test]
fn commits_survive_reopen() {
    let (_cluster, url) = fresh("reopen");
    let first = PostgresStore::open(&url).unwrap();
    contract::commits_survive_reopen(&first, &|| Box::new(PostgresStore::open(&url).unwrap()));
}

#[test]
fn a_failed_commit_writes_nothing() {
    let (_cluster, url) = fresh("atomic");
    contract::a_failed_commit_writes_nothing(&PostgresStore::open(&url).unwrap());
}

#[test]
fn storage_is_bounded_and_one_destination_cannot_hide_another() {
    let (_cluster, url) = fresh("bounded");
    contract::storage_is_bounded_and_one_destination_cannot_hide_another(
        &PostgresStore::open(&url).unwrap(),
    );
}

#[test]
fn reports_its_size() {
    let (_cluster, url) = fresh("size");
    contract::reports_its_size(&PostgresStore::open(&url).unwrap());
}

#[test]
fn failed_deliveries_wait_and_give_up() {
    let (_cluster, url) = fresh("retries");
    contract::failed_deliveries_wait_and_give_up(&PostgresStore::open(&url).unwrap());
}

#[test]
fn external_version_sees_other_connections_only() {
    let (_cluster, url) = fresh("external");
    let server = PostgresStore::open(&url).unwrap();
    let cli = PostgresStore::open(&url).unwrap();
    contract::external_version_sees_other_connections_only(&server, &cli);
}

#[test]
fn a_newer_schema_is_refused_untouched() {
    let (_cluster, url) = fresh("newer");
    drop(PostgresStore::open(&url).unwrap());
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    admin
        .batch_execute("UPDATE vantage_schema SET version = 99")
        .unwrap();
    let err = PostgresStore::open(&url).unwrap_err();
    assert!(
        matches!(err, StoreError::Unusable(_)) && err.to_string().contains("schema version 99"),
        "{err}"
    );
    let version: i32 = admin
        .query_one("SELECT version FROM vantage_schema", &[])
        .unwrap()
        .get(0);
    assert_eq!(version, 99, "left as found");
}

#[test]
fn replicas_share_a_database_a_copy_has_it_alone_and_no_password_in_messages() {
    let (_cluster, url) = fresh("claimed");
    // Controllers share the database; a copy, which wants it alone, is refused meanwhile.
    let serving = PostgresStore::open(&url).unwrap();
    serving.join_controllers().unwrap();
    let replica = PostgresStore::open(&url).unwrap();
    replica.join_controllers().unwrap();
    let copy = PostgresStore::open(&url).unwrap();
    let err = copy.claim_controller().unwrap_err();
    assert!(
        err.to_string().contains("`vantage serve` is running"),
        "{err}"
    );
    drop((serving, replica, copy));
    // A closed store's lock goes with its connection, once the server notices: awaited.
    let claimed = |store: &PostgresStore| {
        let mut tries = 0;
        while store.claim_controller().is_err() {
            tries += 1;
            assert!(tries < 100, "the lock of a closed store was never released");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    let first = PostgresStore::open(&url).unwrap();
    claimed(&first);
    let second = PostgresStore::open(&url).unwrap();
    let err = second.join_controllers().unwrap_err();
    assert!(err.to_string().contains("being copied"), "{err}");
    // The CLI's commits go through beside the controller.
    second
        .commit(&[Change::PutAccount(contract::account(4))])
        .unwrap();
    drop(first);
    // A dead claimant's lock goes with its connection.
    let third = PostgresStore::open(&url).unwrap();
    claimed(&third);

    let secret = url
        .replace("vantage@", "vantage:hunter2@")
        .replace("claimed", "nowhere");
    let err = PostgresStore::open(&secret).unwrap_err().to_string();
    assert!(!err.contains("hunter2") && err.contains("***"), "{err}");
}

#[test]
fn an_outage_fails_writes_cleanly_and_recovery_needs_no_restart() {
    let (own, url) = fresh("outage");
    let store = PostgresStore::open(&url).unwrap();
    store
        .commit(&[Change::PutAccount(contract::account(1))])
        .unwrap();
    own.stop();
    let err = store
        .commit(&[Change::PutAccount(contract::account(2))])
        .unwrap_err();
    assert!(matches!(err, StoreError::Io(_)), "{err}");
    assert!(store.load().is_err());
    own.start_server();
    store
        .commit(&[Change::PutAccount(contract::account(3))])
        .unwrap();
    let names: Vec<String> = store
        .load_catalog()
        .unwrap()
        .accounts()
        .map(|a| a.name.clone())
        .collect();
    assert_eq!(names, ["acct1", "acct3"], "the failed commit wrote nothing");
}

#[test]
fn export_and_import_carry_everything_both_ways() {
    let (cluster, url) = fresh("moved");
    let dir = tempfile::tempdir().unwrap();
    let sqlite = vantage_store_sqlite::SqliteStore::open(
        &dir.path().join("v.db"),
        vantage_store_sqlite::Durability::Process,
    )
    .unwrap();
    contract::export_and_import_carry_everything(&sqlite, &PostgresStore::open(&url).unwrap());
    // And back down, from PostgreSQL into a new SQLite file.
    let back = cluster.database("source");
    let down = vantage_store_sqlite::SqliteStore::open(
        &dir.path().join("down.db"),
        vantage_store_sqlite::Durability::Process,
    )
    .unwrap();
    contract::export_and_import_carry_everything(&PostgresStore::open(&back).unwrap(), &down);
}

#[test]
fn tls_to_the_database_is_verified() {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let cluster = Cluster::start_tls(&cert.pem(), &key.serialize_pem());
    cluster.database("secure");
    let tmp = tempfile::tempdir().unwrap();
    let ca_file = tmp.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    // By name (the certificate's), insisting on TLS.
    let url = cluster.url("secure").replace("127.0.0.1", "localhost") + "?sslmode=require";

    let store = PostgresStore::open_with(&url, Some(&ca_file)).unwrap();
    store
        .commit(&[Change::PutAccount(contract::account(1))])
        .unwrap();
    assert!(store.tls_in_use().unwrap(), "the session is encrypted");

    // A certificate nobody vouched for is refused, naming the reason.
    let err = PostgresStore::open(&url).unwrap_err().to_string();
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    let err = PostgresStore::open_with(&url, Some(&tmp.path().join("missing.pem")))
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing.pem"), "{err}");
}

#[test]
fn a_commit_validated_against_an_older_catalog_is_refused() {
    let (_cluster, url) = fresh("stale");
    let server = PostgresStore::open(&url).unwrap();
    let cli = PostgresStore::open(&url).unwrap();
    let seen = server.external_version().unwrap();
    // Its own commits do not make the server's view stale.
    server
        .commit_at(&[Change::PutAccount(contract::account(1))], seen)
        .unwrap();
    server
        .commit_at(&[Change::PutAccount(contract::account(2))], seen)
        .unwrap();
    // Another writer's do.
    cli.commit(&[Change::PutAccount(contract::account(3))])
        .unwrap();
    let err = server
        .commit_at(&[Change::PutAccount(contract::account(4))], seen)
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict(_)) && err.to_string().contains("changed"),
        "{err}"
    );
    let names: Vec<String> = server
        .load_catalog()
        .unwrap()
        .accounts()
        .map(|a| a.name.clone())
        .collect();
    assert_eq!(
        names,
        ["acct1", "acct2", "acct3"],
        "the stale write wrote nothing"
    );
    // Validated again at the version it now sees, it goes through.
    let now = server.external_version().unwrap();
    server
        .commit_at(&[Change::PutAccount(contract::account(4))], now)
        .unwrap();
}

#[test]
fn a_notification_is_attempted_by_one_process_at_a_time() {
    use vantage_core::notification::NewDelivery;
    use vantage_core::{AccountId, PolicyId, Timestamp, WebhookId};
    let (_cluster, url) = fresh("claims");
    let (a, b) = (
        PostgresStore::open(&url).unwrap(),
        PostgresStore::open(&url).unwrap(),
    );
    let t = Timestamp::from_unix_micros;
    let alert = |hook: u8, at: i64| NewDelivery {
        account: AccountId::from_bytes([1; 16]),
        policy: PolicyId::from_bytes([3; 16]),
        policy_name: "ops".into(),
        webhook: WebhookId::from_bytes([hook; 16]),
        payload: "{}".into(),
        at: t(at),
    };
    a.record_health(&[], &[], &[alert(7, 10), alert(7, 20), alert(8, 30)])
        .unwrap();
    let due = a.due_deliveries(t(100), 10).unwrap();
    assert_eq!(due.len(), 2, "the oldest of each destination");
    let (first, second) = (due[0].seq, due[1].seq);
    assert!(a.claim_delivery(first, t(100), t(60_000_100)).unwrap());
    // The other process no longer sees it due, and cannot take it, nor the destination's next.
    let seen_by_b: Vec<i64> = b
        .due_deliveries(t(100), 10)
        .unwrap()
        .iter()
        .map(|d| d.seq)
        .collect();
    assert_eq!(seen_by_b, [second]);
    assert!(!b.claim_delivery(first, t(100), t(60_000_100)).unwrap());
    assert!(b.claim_delivery(second, t(100), t(60_000_100)).unwrap());
    assert!(!a.claim_delivery(second, t(200), t(60_000_200)).unwrap());
    // An attempt ends its claim: failed, it is due again at its next time, for anyone.
    a.delivery_attempted(first, t(300), Err(("503".into(), Some(t(5_000)))))
        .unwrap();
    let seqs = |at| -> Vec<i64> {
        b.due_deliveries(t(at), 10)
            .unwrap()
            .iter()
            .map(|d| d.seq)
            .collect()
    };
    assert!(!seqs(4_999).contains(&first), "not before its retry time");
    assert!(seqs(5_000).contains(&first));
    assert!(b.claim_delivery(first, t(5_000), t(60_005_000)).unwrap());
    // A claim left by a process that died expires.
    assert!(!a
        .claim_delivery(second, t(60_000_099), t(120_000_000))
        .unwrap());
    assert!(a
        .claim_delivery(second, t(60_000_100), t(120_000_100))
        .unwrap());
    // Delivered, it is never due again.
    a.delivery_attempted(second, t(60_000_200), Ok(())).unwrap();
    assert!(!b
        .claim_delivery(second, t(i64::MAX / 2), t(i64::MAX / 2))
        .unwrap());
}

/// Controllers sharing a database take turns judging: one holds the lease at a time, the
/// epoch grows with each holder, and a deposed holder's late health write fails inside its
/// own transaction, writing nothing.
#[test]
fn one_judge_at_a_time_and_a_deposed_one_writes_nothing() {
    let (_cluster, url) = fresh("judges");
    let a = PostgresStore::open(&url).unwrap();
    let b = PostgresStore::open(&url).unwrap();
    // Long enough that no lapse comes by itself, however slow the machine.
    let lease = 60_000_000;
    let first = match a.judge_lease("a", "http://a", lease).unwrap() {
        Lease::Held { epoch } => epoch,
        other => panic!("a free lease is taken: {other:?}"),
    };
    assert_eq!(
        b.judge_lease("b", "http://b", lease).unwrap(),
        Lease::Other {
            holder: "a".into(),
            address: "http://a".into()
        }
    );
    // Renewed by its holder: the same epoch.
    assert_eq!(
        a.judge_lease("a", "http://a", lease).unwrap(),
        Lease::Held { epoch: first }
    );
    a.record_health(&[], &[contract::event(1)], &[]).unwrap();
    let err = b
        .record_health(&[], &[contract::event(2)], &[])
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");

    // a's lease runs out (it hung, say: renewed last for a microsecond); b takes it over,
    // under a new epoch.
    a.judge_lease("a", "http://a", 1).unwrap();
    let mut tries = 0;
    let second = loop {
        if let Lease::Held { epoch } = b.judge_lease("b", "http://b", 60_000_000).unwrap() {
            break epoch;
        }
        tries += 1;
        assert!(tries < 200, "the lapsed lease was never taken over");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(second > first);
    // a wakes up and writes under its old fence: refused, nothing written.
    let late = a
        .record_health(&[], &[contract::event(3)], &[])
        .unwrap_err();
    assert!(late.to_string().contains("judge lease"), "{late}");
    b.record_health(&[], &[contract::event(4)], &[]).unwrap();
    let ats: Vec<i64> = b
        .events(&vantage_store::EventFilter {
            limit: 10,
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .map(|(_, e)| e.at.unix_micros())
        .collect();
    assert_eq!(ats, [1, 4], "only the holders' writes are there");
    assert!(matches!(
        a.judge_lease("a", "http://a", lease).unwrap(),
        Lease::Other { .. }
    ));
    // And b keeps it: renewed under the same epoch.
    assert_eq!(
        b.judge_lease("b", "http://b", lease).unwrap(),
        Lease::Held { epoch: second }
    );
}

/// A commit by another process wakes a listener at once (LISTEN/NOTIFY); the head it then
/// reads says what changed.
#[test]
fn another_writers_commit_wakes_a_listener() {
    let (_cluster, url) = fresh("notified");
    let server = PostgresStore::open(&url).unwrap();
    let cli = PostgresStore::open(&url).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    server.on_external_change(Box::new(move |what| {
        if what == vantage_store::External::Catalog {
            let _ = tx.send(());
        }
    }));
    let wait = std::time::Duration::from_secs(10);
    rx.recv_timeout(wait).expect("a wake-up once listening");
    let before = server.external_version().unwrap();
    cli.commit(&[Change::PutAccount(contract::account(7))])
        .unwrap();
    rx.recv_timeout(wait).expect("a wake-up for the commit");
    assert!(server.external_version().unwrap() > before);
}

/// The judge publishes its verdicts pool by pool; a follower reads what changed after the
/// sequence number it last saw, so a follower that missed a round catches up by asking
/// again. Only the lease holder publishes.
#[test]
fn followers_read_the_judges_verdicts_by_sequence() {
    use vantage_core::health::{Decided, Verdict};
    use vantage_core::PoolId;
    let (_cluster, url) = fresh("verdicts");
    let judge = PostgresStore::open(&url).unwrap();
    let follower = PostgresStore::open(&url).unwrap();
    let lease = 60_000_000;
    assert!(matches!(
        judge.judge_lease("a", "http://a", lease).unwrap(),
        Lease::Held { .. }
    ));
    assert!(matches!(
        follower.judge_lease("b", "http://b", lease).unwrap(),
        Lease::Other { .. }
    ));
    let decided = |n: u8, healthy: Verdict| Decided {
        pool: PoolId::from_bytes([n; 16]),
        healthy,
        regions: Default::default(),
        origins: Vec::new(),
    };
    assert_eq!(follower.verdicts_since(0).unwrap(), (0, Vec::new()));
    let (tx, woken) = std::sync::mpsc::channel();
    follower.on_external_change(Box::new(move |what| {
        if what == vantage_store::External::Verdicts {
            let _ = tx.send(());
        }
    }));
    let wait = std::time::Duration::from_secs(10);
    woken.recv_timeout(wait).expect("a wake-up once listening");
    judge
        .publish_verdicts(
            &[decided(1, Verdict::Healthy), decided(2, Verdict::Healthy)],
            &[],
        )
        .unwrap();
    woken
        .recv_timeout(wait)
        .expect("a wake-up for the publication");
    let (seen, all) = follower.verdicts_since(0).unwrap();
    assert_eq!(
        all,
        [decided(1, Verdict::Healthy), decided(2, Verdict::Healthy)]
    );
    // Pool 1 goes down, pool 2 is deleted: a follower asking from where it was sees pool 1
    // alone; one starting afresh sees pool 1 as it is now, and no row of pool 2 is kept.
    judge
        .publish_verdicts(
            &[decided(1, Verdict::Unhealthy)],
            &[PoolId::from_bytes([2; 16])],
        )
        .unwrap();
    let (next, changed) = follower.verdicts_since(seen).unwrap();
    assert!(next > seen);
    assert_eq!(changed, [decided(1, Verdict::Unhealthy)]);
    assert_eq!(follower.verdicts_since(next).unwrap(), (next, Vec::new()));
    assert_eq!(
        follower.verdicts_since(0).unwrap().1,
        [decided(1, Verdict::Unhealthy)]
    );
    // Location states too: a follower reads those written since it last looked.
    let (seen, all) = follower.states_since(0).unwrap();
    assert!(all.is_empty());
    judge
        .record_health(&[contract::location_state(1)], &[], &[])
        .unwrap();
    let (seen, got) = follower.states_since(seen).unwrap();
    assert_eq!(got, [contract::location_state(1)]);
    assert_eq!(follower.states_since(seen).unwrap(), (seen, Vec::new()));
    judge
        .record_health(&[contract::location_state(2)], &[], &[])
        .unwrap();
    let (later, got) = follower.states_since(seen).unwrap();
    assert!(later > seen);
    assert_eq!(
        got,
        [contract::location_state(2)],
        "an update moves its number"
    );
    // Many rows go in one statement: the last state of a key in one record wins, and
    // events are numbered in the order given.
    judge
        .record_health(
            &[contract::location_state(3), contract::location_state(4)],
            &[contract::event(20), contract::event(10)],
            &[],
        )
        .unwrap();
    let (_, got) = follower.states_since(later).unwrap();
    assert_eq!(got, [contract::location_state(4)]);
    let events = follower
        .events(&vantage_store::EventFilter {
            since: None,
            until: None,
            pools: None,
            limit: 100,
        })
        .unwrap();
    let seq_of = |at: i64| {
        events
            .iter()
            .find(|(_, e)| e.at.unix_micros() == at)
            .map(|(seq, _)| *seq)
            .unwrap()
    };
    assert!(seq_of(20) < seq_of(10), "{events:?}");

    // Probe-location contacts: the last published set, whole.
    assert!(follower.contacts().unwrap().is_empty());
    let (_, place, _) = contract::location_state(1);
    let contact = vantage_core::health::engine::LocationContact {
        last_seen: vantage_core::Timestamp::from_unix_micros(5),
        silent: false,
    };
    judge.publish_contacts(&[(place.clone(), contact)]).unwrap();
    assert_eq!(follower.contacts().unwrap(), [(place.clone(), contact)]);
    assert!(matches!(
        follower.publish_contacts(&[]).unwrap_err(),
        StoreError::Conflict(_)
    ));

    // The pools' RTTs for dynamic latency: the last published set, whole.
    assert!(follower.rtts().unwrap().is_empty());
    let rtt = vantage_core::routing::PoolRtt {
        anywhere: Some(7.5),
        by_region: Default::default(),
    };
    judge
        .publish_rtts(&[(PoolId::from_bytes([1; 16]), rtt.clone())])
        .unwrap();
    assert_eq!(
        follower.rtts().unwrap(),
        [(PoolId::from_bytes([1; 16]), rtt)]
    );

    // A controller that does not hold the lease publishes nothing.
    let err = follower
        .publish_verdicts(&[decided(1, Verdict::Healthy)], &[])
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert_eq!(follower.verdicts_since(next).unwrap(), (next, Vec::new()));
}
