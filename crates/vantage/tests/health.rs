//! Health end to end: the built-in agent probes a real origin; killing and reviving it flips
//! the pool's verdict, records events, and the verdicts survive a restart.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::origin::Origin;
use common::{eventually, Server};
use reqwest::Method;
use serde_json::{json, Value};

async fn health(s: &Server, a: &str, pool: &str) -> (u16, Value) {
    let (st, v) = s
        .call(
            Method::GET,
            &format!("/accounts/{a}/load_balancers/pools/{pool}/health"),
            None,
        )
        .await;
    (st.as_u16(), v)
}

fn pool_healthy(v: &Value) -> Option<bool> {
    v["result"]["pop_health"]["healthy"].as_bool()
}

#[tokio::test]
async fn an_origin_dies_and_comes_back() {
    let mut up = Origin::start("healthy").await;
    let port = up.port();
    let s = Server::start();
    let a = s.account_id().await;
    let (_, m) = s
        .call(Method::POST, &format!("/accounts/{a}/load_balancers/monitors"),
              Some(json!({"type": "http", "expected_codes": "200", "expected_body": "HEALTHY", "interval": 5, "timeout": 1, "retries": 0})))
        .await;
    let (st, p) = s
        .call(Method::POST, &format!("/accounts/{a}/load_balancers/pools"),
              Some(json!({"name": "web", "monitor": m["result"]["id"], "origins": [{"name": "o1", "address": "127.0.0.1", "port": port}]})))
        .await;
    assert_eq!(st, 200, "{p}");
    let pid = p["result"]["id"].as_str().unwrap().to_owned();

    let limit = Duration::from_secs(20);
    eventually(limit, "first verdict: healthy", || async {
        pool_healthy(&health(&s, &a, &pid).await.1) == Some(true)
    })
    .await;
    let (_, h) = health(&s, &a, &pid).await;
    let pop = &h["result"]["pop_health"];
    assert_eq!(pop["origins"][0]["ip"]["address"], "127.0.0.1");
    assert_eq!(pop["origins"][0]["ip"]["failure_reason"], "No failures");
    assert_eq!(pop["origins"][0]["ip"]["response_code"], 200);
    assert!(pop["origins"][0]["ip"]["rtt"]
        .as_str()
        .unwrap()
        .ends_with("ms"));
    assert_eq!(pop["WNAM"]["healthy"], true, "{h}");
    assert_eq!(pop["locations"][0]["location"], "local");
    let locations = || async {
        s.call(
            Method::GET,
            &format!("/accounts/{a}/load_balancers/probe_locations"),
            None,
        )
        .await
        .1
    };
    // A follower (the replica pass of the test command) lists the locations the judge
    // published, within a second of the verdict the pool's health shows.
    eventually(limit, "the probe location is listed", || async {
        locations().await["result"][0]["region"] == "WNAM"
    })
    .await;
    let locs = locations().await;
    assert_eq!(
        (
            locs["result"][0]["location"].as_str(),
            locs["result"][0]["state"].as_str()
        ),
        (Some("local"), Some("active"))
    );

    // The origin dies.
    up.kill();
    eventually(limit, "the pool turns unhealthy", || async {
        pool_healthy(&health(&s, &a, &pid).await.1) == Some(false)
    })
    .await;
    let (_, h) = health(&s, &a, &pid).await;
    assert_eq!(
        h["result"]["pop_health"]["origins"][0]["ip"]["failure_reason"],
        "TCP connection failed"
    );
    let pool_path = format!("/accounts/{a}/load_balancers/pools/{pid}");
    // The pool's own fields show this replica's view of the verdicts: on a follower (the
    // replica pass), milliseconds after the judge's health answer above.
    eventually(limit, "the pool object shows the verdict", || async {
        let pool = s.call(Method::GET, &pool_path, None).await.1;
        (
            pool["result"]["healthy"].as_bool(),
            pool["result"]["origins"][0]["healthy"].as_bool(),
        ) == (Some(false), Some(false))
    })
    .await;
    let (_, pool) = s.call(Method::GET, &pool_path, None).await;
    assert_eq!(
        pool["result"]["origins"][0]["failure_reason"],
        "TCP connection failed"
    );
    let events_path =
        format!("/user/load_balancing_analytics/events?pool_id={pid}&origin_healthy=false");
    eventually(limit, "the outage is in the event history", || async {
        s.call(Method::GET, &events_path, None).await.1["result"]
            .as_array()
            .is_some_and(|e| !e.is_empty())
    })
    .await;
    let (_, ev) = s.call(Method::GET, &events_path, None).await;
    let e = &ev["result"][0];
    assert_eq!(
        (
            e["pool"]["healthy"].as_bool(),
            e["pool"]["changed"].as_bool()
        ),
        (Some(false), Some(true))
    );
    assert_eq!(e["origins"][0]["failure_reason"], "TCP connection failed");

    // It comes back.
    up.revive().await;
    eventually(limit, "the pool recovers", || async {
        pool_healthy(&health(&s, &a, &pid).await.1) == Some(true)
    })
    .await;
    let events = || async {
        s.call(
            Method::GET,
            &format!("/user/load_balancing_analytics/events?pool_id={pid}"),
            None,
        )
        .await
        .1
    };
    // The verdict is served as soon as the engine has it; its event once the judge has
    // written it, milliseconds later (on a replica, through the database).
    eventually(limit, "the recovery is recorded", || async {
        events().await["result"].as_array().map(Vec::len) == Some(3)
    })
    .await;
    let all = events().await;
    let verdicts: Vec<Option<bool>> = all["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pool"]["healthy"].as_bool())
        .collect();
    assert_eq!(verdicts, [Some(true), Some(false), Some(true)], "{all}");

    // Down again, then a restart without any probing: the stored verdict is served at once.
    up.kill();
    eventually(limit, "down again", || async {
        pool_healthy(&health(&s, &a, &pid).await.1) == Some(false)
    })
    .await;
    let checked_on = health(&s, &a, &pid).await.1["result"]["pop_health"]["locations"][0]
        ["origins"][0]["checked_on"]
        .clone();
    eventually(limit, "the verdict is stored", || async {
        s.call(
            Method::GET,
            &format!("/user/load_balancing_analytics/events?pool_id={pid}"),
            None,
        )
        .await
        .1["result"]
            .as_array()
            .unwrap()
            .len()
            == 4
    })
    .await;
    let (dir, _tmp) = s.sigkill();
    let s = Server::start_with(&dir, &[], &["--no-agent"]).unwrap();
    let (st, h) = health(&s, &a, &pid).await;
    assert_eq!((st, pool_healthy(&h)), (200, Some(false)), "{h}");
    assert_eq!(
        h["result"]["pop_health"]["locations"][0]["origins"][0]["checked_on"],
        checked_on
    );
}

/// The preview `id` once its check of pool `pid`'s origin has ended (previews run in the
/// background; the result grows as checks end).
async fn preview_done(s: &Server, a: &str, id: &str, pid: &str) -> Value {
    let url = format!("/accounts/{a}/load_balancers/preview/{id}");
    eventually(
        Duration::from_secs(20),
        "the preview's check ends",
        || async {
            s.call(Method::GET, &url, None).await.1["result"][pid]["origins"]
                .as_array()
                .is_some_and(|o| !o.is_empty())
        },
    )
    .await;
    s.call(Method::GET, &url, None).await.1
}

/// A preview answers at once, whatever its checks take: against an origin that never
/// answers, the id comes back while the check still runs, and the result shows the pool
/// with no origin judged yet; it fills in when the check times out.
#[tokio::test]
async fn previews_answer_before_their_checks_end() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let s = Server::start();
    let a = s.account_id().await;
    let (_, p) = s
        .call(Method::POST, &format!("/accounts/{a}/load_balancers/pools"),
              Some(json!({"name": "slow", "origins": [{"name": "o1", "address": "127.0.0.1", "port": port}]})))
        .await;
    let pid = p["result"]["id"].as_str().unwrap().to_owned();
    let (st, v) = s
        .call(
            Method::POST,
            &format!("/accounts/{a}/load_balancers/pools/{pid}/preview"),
            Some(json!({"type": "http", "timeout": 10, "retries": 0})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let id = v["result"]["preview_id"].as_str().unwrap();
    let (_, r) = s
        .call(
            Method::GET,
            &format!("/accounts/{a}/load_balancers/preview/{id}"),
            None,
        )
        .await;
    assert_eq!(
        r["result"][&pid]["origins"],
        json!([]),
        "nothing judged yet: {r}"
    );
    let r = preview_done(&s, &a, id, &pid).await;
    assert_eq!(r["result"][&pid]["healthy"], false, "{r}");
    assert_eq!(
        r["result"][&pid]["origins"][0]["127.0.0.1"]["failure_reason"],
        "HTTP timeout occurred"
    );
    drop(silent);
}

#[tokio::test]
async fn previews_run_a_candidate_monitor_at_once() {
    let _up = Origin::start("healthy").await;
    let port = _up.port();
    let s = Server::start();
    let a = s.account_id().await;
    let (_, m) = s
        .call(
            Method::POST,
            &format!("/accounts/{a}/load_balancers/monitors"),
            Some(json!({"expected_codes": "200", "interval": 3600})),
        )
        .await;
    let mid = m["result"]["id"].as_str().unwrap().to_owned();
    let (_, p) = s
        .call(Method::POST, &format!("/accounts/{a}/load_balancers/pools"),
              Some(json!({"name": "web", "monitor": mid, "origins": [{"name": "o1", "address": "127.0.0.1", "port": port}]})))
        .await;
    let pid = p["result"]["id"].as_str().unwrap().to_owned();

    // A candidate that would pass, and one that would fail, without touching the monitor.
    let (st, v) = s
        .call(
            Method::POST,
            &format!("/accounts/{a}/load_balancers/monitors/{mid}/preview"),
            Some(json!({"expected_codes": "2xx", "expected_body": "healthy", "timeout": 2})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["result"]["pools"][&pid], "web");
    let id = v["result"]["preview_id"].as_str().unwrap();
    let r = preview_done(&s, &a, id, &pid).await;
    assert_eq!(r["result"][&pid]["healthy"], true, "{r}");
    assert_eq!(
        r["result"][&pid]["origins"][0]["127.0.0.1"]["failure_reason"],
        "No failures"
    );

    let (_, v) = s
        .call(
            Method::POST,
            &format!("/accounts/{a}/load_balancers/pools/{pid}/preview"),
            Some(json!({"expected_codes": "200", "expected_body": "absent-text"})),
        )
        .await;
    let id = v["result"]["preview_id"].as_str().unwrap();
    let r = preview_done(&s, &a, id, &pid).await;
    assert_eq!(r["result"][&pid]["healthy"], false);
    assert_eq!(
        r["result"][&pid]["origins"][0]["127.0.0.1"]["failure_reason"],
        "Response body mismatch error"
    );

    let (st, v) = s
        .call(
            Method::POST,
            &format!("/accounts/{a}/load_balancers/pools/{pid}/preview"),
            Some(json!({"timeout": 0})),
        )
        .await;
    assert_eq!(
        (st.as_u16(), v["errors"][0]["code"].as_i64()),
        (400, Some(1002)),
        "a bad candidate is a validation error"
    );
    let (st, _) = s
        .call(
            Method::GET,
            &format!("/accounts/{a}/load_balancers/preview/0123456789abcdef0123456789abcdef"),
            None,
        )
        .await;
    assert_eq!(st, 404);
    let (_, m) = s
        .call(
            Method::GET,
            &format!("/accounts/{a}/load_balancers/monitors/{mid}"),
            None,
        )
        .await;
    assert_eq!(
        m["result"]["expected_body"], "",
        "a preview changes nothing"
    );
}

/// A monitor group judges a real origin through the built-in agent: each member probes it,
/// the group's rule decides, pool health shows which member failed, and references keep
/// what is in use from being deleted.
#[tokio::test]
async fn monitor_groups_judge_an_origin_together() {
    let origin = Origin::start("grouped").await;
    let s = Server::start();
    let a = s.account_id().await;
    let lb = format!("/accounts/{a}/load_balancers");
    let monitor = |path: &str| json!({"type": "http", "path": path, "expected_codes": "200", "interval": 5, "timeout": 1, "retries": 0, "description": path});
    let ok = s.create(&format!("{lb}/monitors"), monitor("/")).await;
    let bad = s
        .create(&format!("{lb}/monitors"), monitor("/status/500"))
        .await;
    let (st, g) = s
        .call(
            Method::POST,
            &format!("{lb}/monitor_groups"),
            Some(json!({"description": "checks", "members": [
                {"monitor_id": ok, "enabled": true, "monitoring_only": false, "must_be_healthy": false},
                {"monitor_id": bad, "enabled": true, "monitoring_only": false, "must_be_healthy": false},
            ]})),
        )
        .await;
    assert_eq!(st, 200, "{g}");
    let gid = g["result"]["id"].as_str().unwrap().to_owned();
    assert!(g["result"]["members"][1]["created_at"].is_string(), "{g}");

    // A pool takes a monitor or a group, never both.
    let pool = |extra: Value| {
        let mut p = json!({"name": "grouped", "origins": [{"name": "o1", "address": "127.0.0.1", "port": origin.port()}]});
        p.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        p
    };
    let (st, both) = s
        .call(
            Method::POST,
            &format!("{lb}/pools"),
            Some(pool(json!({"monitor": ok, "monitor_group": gid}))),
        )
        .await;
    assert_eq!(
        (st.as_u16(), common::pointer(&both)),
        (400, "/monitor_group"),
        "{both}"
    );
    let pid = s
        .create(&format!("{lb}/pools"), pool(json!({"monitor_group": gid})))
        .await;

    // One of two voters fails: a tie, and a tie is healthy. The failing member is named.
    let limit = Duration::from_secs(20);
    let member_failed = |h: &Value| {
        h["result"]["pop_health"]["origins"][0]["ip"]["members"][1]["healthy"] == json!(false)
    };
    eventually(limit, "both members judged", || async {
        let h = health(&s, &a, &pid).await.1;
        pool_healthy(&h) == Some(true) && member_failed(&h)
    })
    .await;
    let (_, h) = health(&s, &a, &pid).await;
    let ip = &h["result"]["pop_health"]["origins"][0]["ip"];
    assert_eq!(ip["healthy"], true, "{h}");
    assert_eq!(ip["members"][0]["monitor_id"], ok.as_str());
    assert_eq!(ip["members"][1]["monitor_id"], bad.as_str());
    assert_eq!(
        ip["members"][1]["failure_reason"], "Response code mismatch error",
        "{h}"
    );

    // The failing member made critical: it alone takes the origin down, with its reason.
    let (st, patched) = s
        .call(
            Method::PATCH,
            &format!("{lb}/monitor_groups/{gid}"),
            Some(json!({"members": [
                {"monitor_id": ok},
                {"monitor_id": bad, "must_be_healthy": true},
            ]})),
        )
        .await;
    assert_eq!(st, 200, "{patched}");
    eventually(
        limit,
        "the critical member takes the origin down",
        || async { pool_healthy(&health(&s, &a, &pid).await.1) == Some(false) },
    )
    .await;
    let (_, h) = health(&s, &a, &pid).await;
    assert_eq!(
        h["result"]["pop_health"]["origins"][0]["ip"]["failure_reason"],
        "Response code mismatch error"
    );

    // What is in use cannot be deleted; references say by what.
    let (st, refused) = s
        .call(Method::DELETE, &format!("{lb}/monitors/{bad}"), None)
        .await;
    assert_eq!(st, 400, "{refused}");
    let (st, refused) = s
        .call(Method::DELETE, &format!("{lb}/monitor_groups/{gid}"), None)
        .await;
    assert_eq!(st, 400, "{refused}");
    let (_, refs) = s
        .call(
            Method::GET,
            &format!("{lb}/monitor_groups/{gid}/references"),
            None,
        )
        .await;
    let kinds = common::reference_kinds(&refs);
    assert_eq!(
        kinds,
        [
            ("referrer", "pool"),
            ("referral", "monitor"),
            ("referral", "monitor")
        ],
        "{refs}"
    );
    let (_, refs) = s
        .call(
            Method::GET,
            &format!("{lb}/monitors/{bad}/references"),
            None,
        )
        .await;
    assert_eq!(
        refs["result"][0]["resource_type"], "monitor_group",
        "{refs}"
    );

    // A member must be a monitor of this account.
    let other = s.cli(&["account", "create", "--name", "other"]);
    let foreign = s.cli_token(&other, "f", "all").await;
    let (st, v) = s
        .call_as(
            &foreign,
            Method::POST,
            &format!("/accounts/{other}/load_balancers/monitor_groups"),
            Some(json!({"description": "x", "members": [{"monitor_id": ok}]})),
        )
        .await;
    assert_eq!(
        (st.as_u16(), common::pointer(&v)),
        (400, "/members/0/monitor_id"),
        "{v}"
    );

    // Once the pool lets go, both can go.
    let (st, _) = s
        .call(Method::DELETE, &format!("{lb}/pools/{pid}"), None)
        .await;
    assert_eq!(st, 200);
    let (st, v) = s
        .call(Method::DELETE, &format!("{lb}/monitor_groups/{gid}"), None)
        .await;
    assert_eq!((st.as_u16(), &v["result"]["id"]), (200, &json!(gid)), "{v}");
}

/// A monitor's `probe_zone` is the Host a check sends (the origin echoes it back, and the
/// monitor expects it in the body), unless the monitor names a Host itself.
#[tokio::test]
async fn probe_zone_is_the_host_a_check_sends() {
    let origin = Origin::start("zoned").await;
    let s = Server::start();
    let a = s.account_id().await;
    let lb = format!("/accounts/{a}/load_balancers");
    let monitor = |extra: Value| {
        let mut m = json!({"type": "http", "expected_codes": "200", "expected_body": "\"host\":\"zone.example\"", "interval": 5, "timeout": 1, "retries": 0});
        m.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        m
    };
    let zoned = s
        .create(
            &format!("{lb}/monitors"),
            monitor(json!({"probe_zone": "zone.example"})),
        )
        .await;
    let plain = s
        .create(&format!("{lb}/monitors"), monitor(json!({})))
        .await;
    let pool = |name: &str, m: &str| json!({"name": name, "monitor": m, "origins": [{"name": "o1", "address": "127.0.0.1", "port": origin.port()}]});
    let with_zone = s
        .create(&format!("{lb}/pools"), pool("with-zone", &zoned))
        .await;
    let without = s
        .create(&format!("{lb}/pools"), pool("without", &plain))
        .await;
    let limit = Duration::from_secs(20);
    eventually(limit, "both pools judged", || async {
        pool_healthy(&health(&s, &a, &with_zone).await.1).is_some()
            && pool_healthy(&health(&s, &a, &without).await.1).is_some()
    })
    .await;
    assert_eq!(
        pool_healthy(&health(&s, &a, &with_zone).await.1),
        Some(true)
    );
    let (_, h) = health(&s, &a, &without).await;
    assert_eq!(pool_healthy(&h), Some(false), "{h}");
    assert_eq!(
        h["result"]["pop_health"]["origins"][0]["ip"]["failure_reason"],
        "Response body mismatch error"
    );
}
