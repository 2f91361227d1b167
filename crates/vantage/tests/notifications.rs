//! Notifications end to end: a real webhook receiver gets Cloudflare-shaped alerts when a
//! real origin dies and comes back, retried after a failure, logged in the history, and never
//! sent twice for one change across a `kill -9` of the server.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::origin::Origin;
use common::webhook::{events, receiver};
use common::{eventually, Server};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

/// A pool's `healthy` as the API renders it (`None` while unknown).
async fn pool_health(s: &Server, account: &str, pool: &str) -> Option<bool> {
    let (_, v) = s
        .call(
            Method::GET,
            &format!("/accounts/{account}/load_balancers/pools/{pool}"),
            None,
        )
        .await;
    v["result"]["healthy"].as_bool()
}

#[tokio::test]
async fn health_alerts_reach_a_webhook_once_each() {
    let mut up = Origin::start("ok").await;
    let port = up.port();
    let (url, got, seen) = receiver(1).await;
    // The receiver is on loopback, which webhooks may use only with the operator's allowance.
    let s = Server::start_flags(&["--allow-internal-webhooks"]);
    let a = s.account_id().await;
    let m = s.fast_monitor(&a).await;
    let pool = s
        .create(
            &format!("/accounts/{a}/load_balancers/pools"),
            json!({"name": "web", "monitor": m, "origins": [{"name": "o1", "address": "127.0.0.1", "port": port}]}),
        )
        .await;
    let hook = s
        .create(
            &format!("/accounts/{a}/alerting/v3/destinations/webhooks"),
            json!({"name": "ops", "url": url, "secret": "s3cret-value"}),
        )
        .await;
    let (_, shown) = s
        .call(
            Method::GET,
            &format!("/accounts/{a}/alerting/v3/destinations/webhooks/{hook}"),
            None,
        )
        .await;
    assert_eq!(shown["result"]["url"], url);
    assert!(
        !shown.to_string().contains("s3cret-value"),
        "the secret is never shown"
    );
    // A policy naming a destination that does not exist is refused with a pointer.
    let (st, bad) = s
        .call(
            Method::POST,
            &format!("/accounts/{a}/alerting/v3/policies"),
            Some(
                json!({"name": "x", "alert_type": "load_balancing_health_alert",
                        "mechanisms": {"webhooks": [{"id": "0123456789abcdef0123456789abcdef"}]}}),
            ),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(common::pointer(&bad), "/mechanisms/webhooks/0");
    s.create(
        &format!("/accounts/{a}/alerting/v3/policies"),
        json!({"name": "pool web", "alert_type": "load_balancing_health_alert", "enabled": true,
               "mechanisms": {"webhooks": [{"id": hook}]},
               "filters": {"pool_id": [pool]}}),
    )
    .await;
    // Deleting a destination a policy uses is refused, naming the policy.
    let (st, refused) = s
        .call(
            Method::DELETE,
            &format!("/accounts/{a}/alerting/v3/destinations/webhooks/{hook}"),
            None,
        )
        .await;
    assert_eq!(st, 400, "{refused}");

    let pool_healthy = || pool_health(&s, &a, &pool);
    eventually(Duration::from_secs(15), "the pool is healthy", || async {
        pool_healthy().await == Some(true)
    })
    .await;
    assert!(
        got.lock().unwrap().is_empty(),
        "a first healthy verdict is not news"
    );

    up.kill();
    // One START for the origin and one for the pool; the first try gets a 500 and is retried.
    eventually(
        Duration::from_secs(20),
        "START alerts delivered",
        || async { events(&got, "START").len() == 2 },
    )
    .await;
    let starts = events(&got, "START");
    for r in &starts {
        assert_eq!(r.auth, "s3cret-value");
        assert_eq!(r.body["alert_type"], "load_balancing_health_alert");
        assert_eq!(r.body["account_id"], a);
        assert_eq!(r.body["data"]["pool_id"], pool);
        assert_eq!(r.body["data"]["new_health"], "Unhealthy");
        assert!(r.body["ts"].is_u64() && r.body["name"] == "pool web");
    }
    let origin_start = starts
        .iter()
        .find(|r| r.body["data"]["event_source"] == "origin")
        .unwrap();
    assert_eq!(origin_start.body["data"]["reason"], "TCP connection failed");
    assert!(origin_start.body["text"]
        .as_str()
        .unwrap()
        .contains("TCP connection failed"));
    assert!(
        *seen.lock().unwrap() >= 3,
        "the failed first attempt was retried"
    );

    let (_, history) = s
        .call(
            Method::GET,
            &format!("/accounts/{a}/alerting/v3/history"),
            None,
        )
        .await;
    let log = history["result"].as_array().unwrap();
    assert_eq!(log.len(), 2, "{history}");
    assert!(log
        .iter()
        .all(|d| d["delivered"] == true && d["mechanism"] == hook));
    assert_eq!(
        log.iter()
            .map(|d| d["attempts"].as_u64().unwrap())
            .sum::<u64>(),
        3
    );

    up.revive().await;
    eventually(Duration::from_secs(20), "END alerts delivered", || async {
        events(&got, "END").len() == 2
    })
    .await;

    // kill -9 and restart: nothing already delivered goes out again. The next change's alerts
    // are delivered after anything older still queued, so seeing them proves there was none.
    let delivered_before = got.lock().unwrap().len();
    let (dir, tmp) = s.sigkill();
    let s = Server::start_with(&dir, &[], &["--allow-internal-webhooks"]).unwrap();
    up.kill();
    eventually(Duration::from_secs(25), "the next START alerts", || async {
        events(&got, "START").len() == 4
    })
    .await;
    assert_eq!(
        got.lock().unwrap().len(),
        delivered_before + 2,
        "no duplicates after the restart"
    );
    drop((s, tmp));
}

/// A receiver that takes each request and never answers (until the sender gives up).
/// Returns its URL and how many requests it holds.
async fn tarpit() -> (String, Arc<Mutex<usize>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let held = Arc::new(Mutex::new(0usize));
    let h = held.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let h = h.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                *h.lock().unwrap() += 1;
                // Hold the connection open, answering nothing.
                let _ = s.read(&mut buf).await;
            });
        }
    });
    (url, held)
}

/// A monitored pool on `port` in `account` whose alerts go to every URL in `urls`.
async fn alerted_pool(s: &Server, token: &str, account: &str, port: u16, urls: &[String]) {
    let path = |rest: &str| format!("/accounts/{account}/{rest}");
    let id = |v: Value| v["result"]["id"].as_str().unwrap().to_owned();
    let (_, m) = s
        .call_as(
            token,
            Method::POST,
            &path("load_balancers/monitors"),
            Some(json!({"type": "http", "expected_codes": "200", "interval": 5, "timeout": 1, "retries": 0})),
        )
        .await;
    let (_, pool) = s
        .call_as(
            token,
            Method::POST,
            &path("load_balancers/pools"),
            Some(json!({"name": "web", "monitor": id(m), "origins": [{"name": "o1", "address": "127.0.0.1", "port": port}]})),
        )
        .await;
    let mut hooks = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        let (st, v) = s
            .call_as(
                token,
                Method::POST,
                &path("alerting/v3/destinations/webhooks"),
                Some(json!({"name": format!("hook{i}"), "url": url})),
            )
            .await;
        assert_eq!(st, 200, "{v}");
        hooks.push(json!({"id": id(v)}));
    }
    let (st, v) = s
        .call_as(
            token,
            Method::POST,
            &path("alerting/v3/policies"),
            Some(
                json!({"name": "all", "alert_type": "load_balancing_health_alert", "enabled": true,
                        "mechanisms": {"webhooks": hooks}, "filters": {"pool_id": [id(pool)]}}),
            ),
        )
        .await;
    assert_eq!(st, 200, "{v}");
}

/// One tenant's ten receivers that never answer cannot delay another tenant's alert: it is
/// delivered while all ten still hold their requests. Webhooks to loopback and metadata
/// addresses are refused without the operator's allowance.
#[tokio::test]
async fn a_pools_notification_filter_chooses_what_notifies() {
    let mut up = Origin::start("ok").await;
    let port = up.port();
    let (url, got, _) = receiver(0).await;
    let s = Server::start_flags(&["--allow-internal-webhooks"]);
    let a = s.account_id().await;
    let m = s.fast_monitor(&a).await;
    // Origin changes never notify; the pool's only when it goes down.
    let pool = s
        .create(
            &format!("/accounts/{a}/load_balancers/pools"),
            json!({"name": "quiet", "monitor": m,
                   "origins": [{"name": "o1", "address": "127.0.0.1", "port": port}],
                   "notification_filter": {"origin": {"disable": true}, "pool": {"healthy": false}}}),
        )
        .await;
    let hook = s
        .create(
            &format!("/accounts/{a}/alerting/v3/destinations/webhooks"),
            json!({"name": "ops", "url": url, "secret": "s3cret-value"}),
        )
        .await;
    s.create(
        &format!("/accounts/{a}/alerting/v3/policies"),
        json!({"name": "all", "alert_type": "load_balancing_health_alert", "enabled": true,
               "mechanisms": {"webhooks": [{"id": hook}]}}),
    )
    .await;
    let healthy = || pool_health(&s, &a, &pool);
    eventually(Duration::from_secs(15), "the pool is healthy", || async {
        healthy().await == Some(true)
    })
    .await;
    up.kill();
    eventually(
        Duration::from_secs(20),
        "the pool's START arrives",
        || async { !events(&got, "START").is_empty() },
    )
    .await;
    up.revive().await;
    eventually(
        Duration::from_secs(20),
        "the pool is healthy again",
        || async { healthy().await == Some(true) },
    )
    .await;
    // Alerts are recorded with the health change that calls for them, so the history is
    // complete once the pool reads healthy: one pool START, no origin alert, no END.
    let (_, history) = s
        .call(
            Method::GET,
            &format!("/accounts/{a}/alerting/v3/history"),
            None,
        )
        .await;
    let log = history["result"].as_array().unwrap();
    assert_eq!(log.len(), 1, "{history}");
    let starts = events(&got, "START");
    assert_eq!(starts.len(), 1);
    assert_eq!(starts[0].body["data"]["event_source"], "pool");
}

#[tokio::test]
async fn a_stalled_receiver_of_one_account_delays_no_other() {
    let strict = Server::start();
    let a = strict.account_id().await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://169.254.169.254/latest",
        "http://localhost/x",
    ] {
        let (st, v) = strict
            .call(
                Method::POST,
                &format!("/accounts/{a}/alerting/v3/destinations/webhooks"),
                Some(json!({"name": "inside", "url": url})),
            )
            .await;
        assert_eq!(
            (st.as_u16(), common::pointer(&v)),
            (400, "/url"),
            "{url}: {v}"
        );
    }
    drop(strict);

    let s = Server::start_flags(&["--allow-internal-webhooks"]);
    let a = s.account_id().await;
    let b = s.cli(&["account", "create", "--name", "tenant-b"]);
    let b_token = s.cli_token(&b, "b", "all").await;
    // Both accounts' origins sit on one port, so both pools go down at the same moment.
    let up = Origin::start("ok").await;
    let port = up.port();
    let mut tarpits = Vec::new();
    let mut urls = Vec::new();
    for _ in 0..10 {
        let (url, held) = tarpit().await;
        urls.push(url);
        tarpits.push(held);
    }
    alerted_pool(&s, common::TOKEN, &a, port, &urls).await;
    let (url, got, _) = receiver(0).await;
    alerted_pool(&s, &b_token, &b, port, &[url]).await;
    eventually(
        Duration::from_secs(20),
        "both pools are healthy",
        || async {
            let (_, v) = s
                .call(Method::GET, "/user/load_balancing_analytics/events", None)
                .await;
            v["result"].as_array().is_some_and(|e| !e.is_empty())
        },
    )
    .await;

    up.kill();
    eventually(
        Duration::from_secs(30),
        "the healthy receiver gets its START alert",
        || async { !events(&got, "START").is_empty() },
    )
    .await;
    let held: Vec<usize> = tarpits.iter().map(|t| *t.lock().unwrap()).collect();
    assert!(
        held.iter().all(|n| *n <= 1),
        "no stalled receiver was sent a second request yet: {held:?}"
    );
    assert_eq!(events(&got, "START")[0].body["account_id"], b.as_str());
}
