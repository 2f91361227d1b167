//! `vantage serve --store postgres://…` end to end: a real server process on a real
//! PostgreSQL cluster (initdb + pg_ctl on a temporary directory), the CLI beside it, replicas
//! taking turns judging health, and a database outage answered with 503 envelopes while reads
//! and the process carry on, recovering by itself.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::origin::Origin;
use common::{bin, error_code, eventually, Server, AGENT_TOKEN, TOKEN};
use reqwest::{Method, StatusCode};
use serde_json::json;
use vantage_store_postgres::testing::Cluster;

fn start(dir: &std::path::Path, url: &str) -> Result<Server, String> {
    Server::start_with(
        dir,
        &[("VANTAGE_BOOTSTRAP_TOKEN", TOKEN)],
        &["--store", url],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_postgres_with_the_cli_beside_it_and_through_an_outage() {
    let cluster = Cluster::start();
    let url = cluster.database("vantage");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let server = start(&dir, &url).expect("serve starts on PostgreSQL");
    assert!(
        server.startup_log.contains("kept in PostgreSQL")
            && !server.startup_log.contains("vantage.db"),
        "{}",
        server.startup_log
    );
    assert!(
        !dir.join("vantage.db").exists(),
        "no SQLite file beside a database"
    );
    let account = server.account_id().await;
    let pools = format!("/accounts/{account}/load_balancers/pools");
    let pool = server
        .create(
            &pools,
            json!({"name": "eu", "origins": [{"name": "a", "address": "192.0.2.1"}]}),
        )
        .await;

    // The CLI writes to the same database while the server runs, and the server sees it.
    let out = Command::new(bin())
        .args(["token", "create", "--name", "ops", "--account", &account])
        .args(["--permission", "Load Balancers Read", "--store", &url])
        .arg("--data-dir")
        .arg(tmp.path().join("cli"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    eventually(
        Duration::from_secs(10),
        "the server sees the CLI's token",
        || async {
            server
                .call_as(&token, Method::GET, "/user/tokens/verify", None)
                .await
                .0
                == StatusCode::OK
        },
    )
    .await;

    // A second controller on the same database serves beside it, following its judge.
    let second = start(&tmp.path().join("other"), &url).expect("a second serve starts");
    assert!(
        second.startup_log.contains("this one follows"),
        "{}",
        second.startup_log
    );
    let (status, body) = second
        .call(Method::GET, &format!("{pools}/{pool}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    drop(second);

    // The database goes away: writes answer 503 with the envelope and change nothing; reads
    // come from memory.
    cluster.stop();
    let us = json!({"name": "us", "origins": [{"name": "b", "address": "192.0.2.2"}]});
    let (status, body) = server.call(Method::POST, &pools, Some(us.clone())).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["success"], false);
    assert!(error_code(&body) > 0, "{body}");
    let (status, body) = server
        .call(Method::GET, &format!("{pools}/{pool}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // It comes back, and writes go through without a restart.
    cluster.start_server();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = server.call(Method::POST, &pools, Some(us.clone())).await;
        if status == StatusCode::OK {
            break;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(
            std::time::Instant::now() < deadline,
            "writes still fail after the database returned: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Everything answered 2xx is there after a restart, and nothing else.
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
    let server = start(&dir, &url).expect("serve starts again");
    let (status, body) = server.call(Method::GET, &pools, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut names: Vec<&str> = body["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["eu", "us"], "{body}");
}

#[test]
fn a_store_that_is_not_postgres_is_refused_without_echoing_credentials() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(bin())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--store",
            "mysql://root:hunter2@db/vantage",
        ])
        .arg("--data-dir")
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not a postgres:// URL") && !err.contains("hunter2"),
        "{err}"
    );
}

fn copy(from: &str, to: &str) -> std::process::Output {
    Command::new(bin())
        .args(["store", "copy", "--from", from, "--to", to])
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_store_moves_up_to_postgres() {
    let cluster = Cluster::start();
    let url = cluster.database("moved");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let server = Server::start_with(&dir, &[("VANTAGE_BOOTSTRAP_TOKEN", TOKEN)], &[])
        .expect("serve starts on SQLite");
    let account = server.account_id().await;
    let pools = format!("/accounts/{account}/load_balancers/pools");
    server
        .create(
            &pools,
            json!({"name": "eu", "origins": [{"name": "a", "address": "192.0.2.1"}]}),
        )
        .await;
    let source = dir.to_str().unwrap().to_owned();
    let typo = tmp.path().join("dta");
    let mistyped = copy(typo.to_str().unwrap(), &url);
    assert!(!mistyped.status.success());
    assert!(String::from_utf8_lossy(&mistyped.stderr).contains("no store at"));
    assert!(!typo.exists(), "a mistyped source is not created");
    let running = copy(&source, &url);
    assert!(!running.status.success());
    assert!(
        String::from_utf8_lossy(&running.stderr).contains("stop it first"),
        "{}",
        String::from_utf8_lossy(&running.stderr)
    );
    assert!(server.terminate().success());

    let out = copy(&source, &url);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains("pools") && report.contains("as many rows"),
        "{report}"
    );
    let again = copy(&source, &url);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    // The same token, account and pool, now served from PostgreSQL.
    let moved = start(&tmp.path().join("elsewhere"), &url).expect("serve starts on the copy");
    assert_eq!(moved.account_id().await, account);
    let (status, body) = moved.call(Method::GET, &pools, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"][0]["name"], "eu", "{body}");
}

/// Two controllers on one database: both serve, one judges. Writes go through the follower,
/// the follower shows the judge's verdicts, and when the judge is killed the follower takes
/// the lease and goes on judging from the stored states: the outage that follows is one
/// event, not a burst.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_takes_over_judging_when_the_judge_dies() {
    let cluster = Cluster::start();
    let url = cluster.database("replicas");
    let origin = Origin::start("replicated").await;
    let tmp = tempfile::tempdir().unwrap();
    let replica = |name: &str| common::replica(&tmp.path().join(name), &url, "2", &[]);
    let judge = replica("a");
    assert!(
        judge.startup_log.contains("judges health"),
        "{}",
        judge.startup_log
    );
    let follower = replica("b");
    assert!(
        follower.startup_log.contains("this one follows"),
        "{}",
        follower.startup_log
    );

    // Written through the follower; probed by the judge's built-in location.
    let account = follower.account_id().await;
    let lb = format!("/accounts/{account}/load_balancers");
    let monitor = follower.fast_monitor(&account).await;
    let pool = follower
        .create(
            &format!("{lb}/pools"),
            json!({"name": "web", "monitor": monitor, "origins": [{"name": "o", "address": "127.0.0.1", "port": origin.port()}]}),
        )
        .await;
    let health = format!("{lb}/pools/{pool}/health");
    let healthy = |s: &Server| {
        let url = s.url(&health);
        async move {
            let v: serde_json::Value = reqwest::Client::new()
                .get(url)
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["result"]["pop_health"]["healthy"].as_bool()
        }
    };
    let limit = Duration::from_secs(30);
    eventually(limit, "the judge's verdict, on the follower", || async {
        healthy(&follower).await == Some(true)
    })
    .await;

    // A remote agent that knows only the follower: its results reach the judge through it.
    let _agent = common::spawn_agent(&[format!("http://{}", follower.addr)], AGENT_TOKEN, "ams");
    eventually(limit, "the agent's results, at the judge", || async {
        let (_, v) = judge.call(Method::GET, &health, None).await;
        v["result"]["pop_health"]["locations"]
            .as_array()
            .is_some_and(|l| l.iter().any(|l| l["location"] == "ams"))
    })
    .await;

    // The judge dies; so does the origin. The follower takes the lease and judges.
    let _ = judge.sigkill();
    origin.kill();
    eventually(limit, "the new judge sees the outage", || async {
        healthy(&follower).await == Some(false)
    })
    .await;
    let (_, events) = follower
        .call(
            Method::GET,
            &format!("/user/load_balancing_analytics/events?pool_id={pool}&pool_healthy=false"),
            None,
        )
        .await;
    assert_eq!(
        events["result"].as_array().unwrap().len(),
        1,
        "one outage, one event: {events}"
    );
}

/// A follower serves the judge's verdicts, not its own replay of stored states: when the only
/// location probing a pool falls silent, its vote goes stale on the judge (no state changes,
/// so nothing new is stored) and the follower says so too, soon after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_serves_the_judges_verdicts_even_when_no_state_changes() {
    let cluster = Cluster::start();
    let url = cluster.database("followed");
    let origin = Origin::start("followed").await;
    let tmp = tempfile::tempdir().unwrap();
    let replica = |name: &str| common::replica(&tmp.path().join(name), &url, "30", &[]);
    let judge = replica("a");
    let follower = replica("b");
    assert!(
        follower.startup_log.contains("this one follows"),
        "{}",
        follower.startup_log
    );
    let account = judge.account_id().await;
    let lb = format!("/accounts/{account}/load_balancers");
    let monitor = judge.fast_monitor(&account).await;
    // Checked from western Europe only: the built-in location (WNAM) does not vote.
    let pool = judge
        .create(
            &format!("{lb}/pools"),
            json!({"name": "web", "monitor": monitor, "check_regions": ["WEU"],
                   "origins": [{"name": "o", "address": "127.0.0.1", "port": origin.port()}]}),
        )
        .await;
    let agent = common::spawn_agent(&[format!("http://{}", judge.addr)], AGENT_TOKEN, "ams");
    let health = format!("{lb}/pools/{pool}/health");
    let verdict = |s: &Server| {
        let url = s.url(&health);
        async move {
            let v: serde_json::Value = reqwest::Client::new()
                .get(url)
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["result"]["pop_health"]["healthy"].clone()
        }
    };
    let limit = Duration::from_secs(30);
    for (who, s) in [("judge", &judge), ("follower", &follower)] {
        eventually(limit, &format!("healthy, on the {who}"), || async {
            verdict(s).await == json!(true)
        })
        .await;
    }
    // The agent stops: its vote goes stale on the judge after three intervals and a check.
    drop(agent);
    eventually(limit, "the stale vote, on the judge", || async {
        verdict(&judge).await.is_null()
    })
    .await;
    eventually(
        Duration::from_secs(5),
        "the judge's verdict, on the follower",
        || async { verdict(&follower).await.is_null() },
    )
    .await;
}

/// Two controllers in one process on one database, the second never told of the first's
/// writes (no store watcher): its writes, and its refusals, are checked again on the fresh
/// catalog when its commit shows that another committed first, never answered with a
/// conflict or from a stale catalog.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_replica_checks_its_writes_again_on_the_latest_catalog() {
    use std::sync::Arc;
    use vantage_control::{CommitError, Controller};
    use vantage_core::catalog::{Catalog, CatalogError};
    use vantage_core::zone::Overlap;
    use vantage_core::{AccountId, ZoneId};
    use vantage_store::Store;
    use vantage_store_postgres::PostgresStore;

    const A: AccountId = AccountId::from_bytes([1; 16]);
    let cluster = Cluster::start();
    let url = cluster.database("vantage");
    let store = PostgresStore::open(&url).unwrap();
    let account = Catalog::default()
        .create_account(A, "a".into(), vantage_control::clock::now())
        .unwrap();
    store.commit(&account).unwrap();
    let controller = |store: PostgresStore| {
        let (c, writer) = Controller::load(Arc::new(store)).unwrap();
        std::thread::spawn(move || writer.run());
        c
    };
    let (fresh, stale) = (
        controller(store),
        controller(PostgresStore::open(&url).unwrap()),
    );
    let zone = |c: &Arc<Controller>, id: u8, name: &'static str| {
        let id = ZoneId::from_bytes([id; 16]);
        let c = Arc::clone(c);
        async move {
            c.commit(move |cat, now| cat.create_zone(A, id, name, Overlap::Refuse, now))
                .await
                .map(drop)
        }
    };
    let names = |c: &Controller| {
        let mut names: Vec<String> = c.catalog().zones().map(|z| z.name.clone()).collect();
        names.sort();
        names
    };

    zone(&fresh, 2, "example.com").await.unwrap();
    assert!(names(&stale).is_empty(), "the second controller is behind");
    zone(&stale, 3, "example.org")
        .await
        .expect("checked again after the first controller's commit, not refused");
    assert_eq!(names(&stale), ["example.com", "example.org"]);

    // Valid on the stale catalog, refused on the latest: the refusal is what counts.
    zone(&fresh, 4, "example.net").await.unwrap();
    let taken = zone(&stale, 5, "example.net").await;
    assert!(
        matches!(taken, Err(CommitError::Command(CatalogError::Invalid(_)))),
        "{taken:?}"
    );

    // Refused on the stale catalog, valid on the latest: the write is made.
    fresh
        .commit(move |cat, _| cat.delete_zone(ZoneId::from_bytes([4; 16])))
        .await
        .unwrap();
    zone(&stale, 6, "example.net")
        .await
        .expect("the name was free again in the latest catalog");
    assert_eq!(names(&stale), ["example.com", "example.net", "example.org"]);
}
