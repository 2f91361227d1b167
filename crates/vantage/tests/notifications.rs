//! Notifications end to end: a real webhook receiver gets Cloudflare-shaped alerts when a
//! real origin dies and comes back, retried after a failure, logged in the history, and never
//! sent twice for one change across a `kill -9` of the server.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{eventually, Server};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// One request the receiver got: the `cf-webhook-auth` header and the JSON body.
#[derive(Debug, Clone)]
struct Received {
    auth: String,
    body: Value,
}

/// A webhook receiver that answers 500 to its first `fail_first` requests, then 200.
async fn receiver(fail_first: usize) -> (String, Arc<Mutex<Vec<Received>>>, Arc<Mutex<usize>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::new(Mutex::new(0usize));
    let (g, n) = (got.clone(), seen.clone());
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let (g, n) = (g.clone(), n.clone());
            tokio::spawn(async move {
                let (r, mut w) = s.into_split();
                let mut r = BufReader::new(r);
                let (mut len, mut auth) = (0usize, String::new());
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim_end().to_owned();
                    if line.is_empty() {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':') {
                        match k.to_ascii_lowercase().as_str() {
                            "content-length" => len = v.trim().parse().unwrap_or(0),
                            "cf-webhook-auth" => auth = v.trim().to_owned(),
                            _ => {}
                        }
                    }
                }
                let mut body = vec![0u8; len];
                r.read_exact(&mut body).await.unwrap();
                let index = {
                    let mut n = n.lock().unwrap();
                    *n += 1;
                    *n
                };
                let status = if index <= fail_first {
                    "500 Internal Server Error"
                } else {
                    g.lock().unwrap().push(Received {
                        auth,
                        body: serde_json::from_slice(&body).unwrap(),
                    });
                    "200 OK"
                };
                let _ = w
                    .write_all(
                        format!(
                            "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        )
                        .as_bytes(),
                    )
                    .await;
            });
        }
    });
    (url, got, seen)
}

/// An origin answering 200 on `port` until aborted.
async fn origin(port: u16) -> JoinHandle<()> {
    common::origin_on(port, "ok").await
}

fn events(got: &Arc<Mutex<Vec<Received>>>, alert_event: &str) -> Vec<Received> {
    got.lock()
        .unwrap()
        .iter()
        .filter(|r| r.body["alert_event"] == alert_event)
        .cloned()
        .collect()
}

#[tokio::test]
async fn health_alerts_reach_a_webhook_once_each() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut up = origin(port).await;
    let (url, got, seen) = receiver(1).await;
    let s = Server::start();
    let a = s.account_id().await;
    let m = s
        .create(
            &format!("/accounts/{a}/load_balancers/monitors"),
            json!({"type": "http", "expected_codes": "200", "interval": 5, "timeout": 1, "retries": 0}),
        )
        .await;
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

    let pool_healthy = || async {
        let (_, v) = s
            .call(
                Method::GET,
                &format!("/accounts/{a}/load_balancers/pools/{pool}"),
                None,
            )
            .await;
        v["result"]["healthy"].as_bool()
    };
    eventually(Duration::from_secs(15), "the pool is healthy", || async {
        pool_healthy().await == Some(true)
    })
    .await;
    assert!(
        got.lock().unwrap().is_empty(),
        "a first healthy verdict is not news"
    );

    up.abort();
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

    up = origin(port).await;
    eventually(Duration::from_secs(20), "END alerts delivered", || async {
        events(&got, "END").len() == 2
    })
    .await;

    // kill -9 and restart: nothing already delivered goes out again. The next change's alerts
    // are delivered after anything older still queued, so seeing them proves there was none.
    let delivered_before = got.lock().unwrap().len();
    let (dir, tmp) = s.sigkill();
    let s = Server::start_in(&dir, &[]).unwrap();
    up.abort();
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
