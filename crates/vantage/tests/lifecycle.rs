//! The server as a process: bootstrap, durability across kill -9, refusals at startup,
//! clean shutdown.
#![allow(clippy::unwrap_used)]

mod common;

use common::{cli_on, Server, TOKEN};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn answered_writes_survive_kill_9_byte_for_byte() {
    let s = Server::start();
    let a = s.account_id().await;
    let (_, m) = s
        .call(
            Method::POST,
            &format!("/accounts/{a}/load_balancers/monitors"),
            Some(json!({"expected_codes": "2xx", "description": "durable"})),
        )
        .await;
    let mid = m["result"]["id"].as_str().unwrap().to_owned();
    let (_, p) = s
        .call(Method::POST, &format!("/accounts/{a}/load_balancers/pools"), Some(json!({"name": "p", "monitor": mid, "origins": [{"name": "o", "address": "192.0.2.1", "weight": 0.33}]})))
        .await;
    let pid = p["result"]["id"].as_str().unwrap().to_owned();
    let (_, z) = s
        .call(
            Method::POST,
            "/zones",
            Some(json!({"name": "durable.example"})),
        )
        .await;
    let zid = z["result"]["id"].as_str().unwrap().to_owned();
    let (st, _) = s
        .call(
            Method::POST,
            &format!("/zones/{zid}/load_balancers"),
            Some(json!({"name": "durable.example", "default_pools": [pid], "fallback_pool": pid})),
        )
        .await;
    assert_eq!(st, 200);
    let paths = [
        format!("/accounts/{a}/load_balancers/monitors"),
        format!("/accounts/{a}/load_balancers/pools/{pid}"),
        format!("/zones/{zid}/load_balancers"),
        "/zones".to_owned(),
        "/accounts".to_owned(),
    ];
    let mut before = Vec::new();
    for p in &paths {
        before.push(s.get_bytes(p).await);
    }
    let (dir, _tmp) = s.sigkill();
    let s = Server::start_in(&dir, &[]).unwrap();
    for (p, want) in paths.iter().zip(before) {
        assert_eq!(s.get_bytes(p).await, want, "GET {p} changed across kill -9");
    }
}

#[tokio::test]
async fn first_start_generates_a_private_token_and_later_starts_add_nothing() {
    // One server's first start in an empty data directory and SQLite file.
    if common::replica_mode("first_start_generates_a_private_token_and_later_starts_add_nothing") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let s = Server::start_in(&dir, &[]).unwrap();
    let saved = std::fs::read_to_string(dir.join("bootstrap-token"))
        .unwrap()
        .trim()
        .to_owned();
    assert!(vantage_control::secrets::is_token_syntax(&saved));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(dir.join("bootstrap-token"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
    }
    assert!(
        s.startup_log.contains(&saved),
        "the generated token is shown once on stderr"
    );
    let (st, v) = s.call_as(&saved, Method::GET, "/accounts", None).await;
    assert_eq!(st, 200);
    let account = v["result"][0]["id"].clone();
    assert!(
        !std::fs::read(dir.join("vantage.db"))
            .unwrap()
            .windows(saved.len())
            .any(|w| w == saved.as_bytes()),
        "the store holds no plain token"
    );
    let (dir, _t) = s.sigkill();
    let s = Server::start_in(&dir, &[("VANTAGE_BOOTSTRAP_TOKEN", TOKEN)]).unwrap();
    assert!(
        !s.startup_log.contains(&saved),
        "a later start shows no token"
    );
    let (_, v) = s.call_as(&saved, Method::GET, "/accounts", None).await;
    assert_eq!(
        v["result"].as_array().unwrap().len(),
        1,
        "no second account"
    );
    assert_eq!(v["result"][0]["id"], account);
    assert_eq!(
        s.call(Method::GET, "/accounts", None).await.0,
        403,
        "a later bootstrap token is ignored"
    );
    let status = s.terminate();
    assert!(status.success(), "SIGTERM exits cleanly: {status:?}");
}

#[test]
fn unusable_stores_and_busy_data_dirs_are_refused() {
    // SQLite files and data-directory locks (a newer PostgreSQL schema: tests/postgres.rs).
    if common::replica_mode("unusable_stores_and_busy_data_dirs_are_refused") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    std::fs::create_dir_all(&dir).unwrap();
    let junk = b"definitely not a sqlite database, just some bytes sitting in the file".repeat(20);
    std::fs::write(dir.join("vantage.db"), &junk).unwrap();
    let err = Server::start_in(&dir, &[])
        .err()
        .expect("refuses a file that is not a store");
    assert!(err.contains("vantage.db"), "{err}");
    assert_eq!(
        std::fs::read(dir.join("vantage.db")).unwrap(),
        junk,
        "the file is left untouched"
    );

    // A truncated store is not a new one: starting afresh would mint a new admin token and
    // orphan every credential of the lost store.
    let empty = tmp.path().join("e");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(empty.join("vantage.db"), b"").unwrap();
    let err = Server::start_in(&empty, &[])
        .err()
        .expect("refuses an empty store file");
    assert!(err.contains("empty (0 bytes)"), "{err}");
    assert!(
        !empty.join("bootstrap-token").exists(),
        "no new admin token"
    );

    let good = tmp.path().join("g");
    let first = Server::start_in(&good, &[]).unwrap();
    let err = Server::start_in(&good, &[])
        .err()
        .expect("a second server on the same data dir is refused");
    assert!(err.contains("another `vantage serve`"), "{err}");
    drop(first);
    cli_on(&good, &["account", "create", "--name", "x"]);
}

#[test]
fn bad_bootstrap_settings_stop_startup() {
    let tmp = tempfile::tempdir().unwrap();
    let err = Server::start_in(
        &tmp.path().join("d"),
        &[("VANTAGE_BOOTSTRAP_TOKEN", "short")],
    )
    .err()
    .unwrap();
    assert!(err.contains("VANTAGE_BOOTSTRAP_TOKEN"), "{err}");
    let err = Server::start_in(
        &tmp.path().join("e"),
        &[("VANTAGE_BOOTSTRAP_EMAIL", "a@b.example")],
    )
    .err()
    .unwrap();
    assert!(err.contains("together"), "{err}");
}
