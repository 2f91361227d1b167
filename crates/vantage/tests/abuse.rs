//! Abuse, as a misbehaving agent or tenant would try it against the real binary over
//! loopback: each attack from the hardening review, turned into the behaviour it must meet.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{eventually, Server};
use reqwest::Method;
use serde_json::{json, Value};

/// Runs the CLI expecting it to fail; returns its stderr.
fn cli_refused(s: &Server, args: &[&str]) -> String {
    let out = common::cli_args(&s.dir, args).output().unwrap();
    assert!(!out.status.success(), "vantage {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn agent_url(s: &Server, path: &str) -> String {
    format!("http://{}/agent/v1/{path}", s.addr)
}

/// The assignment as `token` sees it (status and body), asking as `region/location`.
async fn assignment(s: &Server, token: &str, region: &str, location: &str) -> (u16, Value) {
    let r = s
        .http
        .get(agent_url(
            s,
            &format!("assignment?region={region}&location={location}"),
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn report(s: &Server, token: &str, location: &str, results: Vec<Value>) -> (u16, Value) {
    let r = s
        .http
        .post(agent_url(s, "results"))
        .bearer_auth(token)
        .json(&json!({"region": "WEU", "location": location, "results": results}))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn now_micros() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros(),
    )
    .unwrap()
}

fn result(key: &Value, at: i64, rtt: u64) -> Value {
    json!({"key": key, "at": at,
           "facts": {"outcome": {"Http": {"status": 200, "body_matched": true}}, "rtt_micros": rtt}})
}

/// One agent token is one location, so one vote: it cannot speak for another location, for
/// the built-in one, or twice; what it reports is bounded by what it was assigned; it sees
/// only the accounts it serves; and revoking it takes its location away.
#[tokio::test]
async fn an_agent_token_is_one_location_and_one_vote() {
    let s = Server::start_flags(&["--region", "WNAM", "--location", "local"]);
    let a = s.account_id().await;
    let monitor = |headers: Value| {
        json!({"type": "http", "expected_codes": "200", "interval": 60, "timeout": 1, "retries": 0,
               "header": headers})
    };
    let m = s
        .create(
            &format!("/accounts/{a}/load_balancers/monitors"),
            monitor(json!({})),
        )
        .await;
    s.create(
        &format!("/accounts/{a}/load_balancers/pools"),
        json!({"name": "web", "monitor": m, "check_regions": ["WEU"],
               "origins": [{"name": "o", "address": "192.0.2.10", "port": 8080}]}),
    )
    .await;
    // Another tenant, whose monitor carries a credential.
    let b = s.cli(&["account", "create", "--name", "tenant-b"]);
    let b_token = s.cli_token(&b, "b", "all").await;
    let (_, bm) = s
        .call_as(
            &b_token,
            Method::POST,
            &format!("/accounts/{b}/load_balancers/monitors"),
            Some(monitor(
                json!({"Authorization": ["Basic c2VjcmV0OnNlY3JldA=="]}),
            )),
        )
        .await;
    let bm = bm["result"]["id"].as_str().unwrap().to_owned();
    let (st, _) = s
        .call_as(
            &b_token,
            Method::POST,
            &format!("/accounts/{b}/load_balancers/pools"),
            Some(
                json!({"name": "theirs", "monitor": bm, "check_regions": ["WEU"],
                        "origins": [{"name": "o", "address": "192.0.2.20"}]}),
            ),
        )
        .await;
    assert_eq!(st, 200);

    let ams = s.cli(&[
        "token",
        "create",
        "--name",
        "ams",
        "--agent",
        "--region",
        "WEU",
        "--location",
        "ams",
        "--account",
        &a,
    ]);
    // A name is one location: a second live token for it is refused, in any region.
    let err = cli_refused(
        &s,
        &[
            "token",
            "create",
            "--name",
            "dup",
            "--agent",
            "--region",
            "ENAM",
            "--location",
            "ams",
        ],
    );
    assert!(err.contains("already has an active agent token"), "{err}");
    let squatter = s.cli(&[
        "token",
        "create",
        "--name",
        "squat",
        "--agent",
        "--region",
        "WNAM",
        "--location",
        "local",
    ]);
    eventually(
        Duration::from_secs(10),
        "the server sees both tokens",
        || async {
            assignment(&s, &ams, "WEU", "ams").await.0 == 200
                && common::error_code(&assignment(&s, &squatter, "WNAM", "local").await.1) != 9109
        },
    )
    .await;

    // Speaking for another location, or for the built-in one, is refused.
    for (token, region, location) in [(&ams, "WEU", "fra"), (&squatter, "WNAM", "local")] {
        let (st, v) = assignment(&s, token, region, location).await;
        assert_eq!(st, 403, "{location}: {v}");
        assert_eq!(common::error_code(&v), 10000);
    }
    let (st, v) = report(&s, &ams, "fra", vec![]).await;
    assert_eq!(st, 403, "{v}");

    // Limited to account A: B's targets, and B's credential, are not in its assignment
    // (once the engine has followed the new pools).
    for who in [&s, s.judging()] {
        eventually(Duration::from_secs(10), "an assignment", || async {
            let (_, body) = assignment(who, &ams, "WEU", "ams").await;
            body["result"]["targets"]
                .as_array()
                .is_some_and(|t| !t.is_empty())
        })
        .await;
    }
    let (_, body) = assignment(&s, &ams, "WEU", "ams").await;
    let text = body.to_string();
    assert!(
        !text.contains("c2VjcmV0"),
        "another account's credential leaked: {text}"
    );
    let targets = body["result"]["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 1, "{body}");
    let key = targets[0]["key"].clone();
    let theirs = json!({"monitor": bm, "address": "192.0.2.20", "port": 0, "host": null});

    // What a location reports is bounded by what it was asked.
    let now = now_micros();
    let (st, v) = report(
        &s,
        &ams,
        "ams",
        vec![
            result(&key, now, 1_000),
            result(&key, now + 1_000, 1_000), // a second vote in one interval
            result(&key, now + 3_600_000_000, 1_000), // an hour in the future
            result(&key, now - 86_400_000_000, 1_000), // a day old: could not vote
            result(&key, now, 60_000_000),    // a 60 s round trip, timeout 1 s
            result(&theirs, now, 1_000),      // another account's target
        ],
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        v["result"],
        json!({"accepted": 1, "refused": {"out_of_window": 2, "rtt_out_of_range": 1,
                                           "too_frequent": 1, "unassigned": 1}})
    );
    // Counted where the results were judged (in replica mode, the replica beside this one).
    let judging = s.judging();
    let metrics = judging
        .text(&format!("http://{}/metrics", judging.addr))
        .await;
    assert!(
        metrics.contains(
            r#"vantage_agent_results_refused_total{location="WEU/ams",reason="unassigned"} 1"#
        ),
        "{metrics}"
    );

    // Revoking the token retires the location: it leaves the list, its vote goes.
    let locations = format!("/accounts/{a}/load_balancers/probe_locations");
    let listed = |v: &Value| {
        v["result"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["location"] == "ams")
    };
    assert!(listed(&s.call(Method::GET, &locations, None).await.1));
    let id = s
        .cli(&["token", "list", "--output", "json"])
        .parse::<Value>()
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ams")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    s.cli(&["token", "revoke", &id]);
    eventually(
        Duration::from_secs(10),
        "the revoked location is gone",
        || async { !listed(&s.call(Method::GET, &locations, None).await.1) },
    )
    .await;
    let (st, _) = assignment(&s, &ams, "WEU", "ams").await;
    assert_eq!(st, 403, "a revoked token speaks for nothing");
}

/// A count from the detailed metrics exposition (0 when the series is absent).
async fn metric(s: &Server, series: &str) -> f64 {
    let text = s
        .text(&format!("http://{}/metrics", s.serving("metrics")))
        .await;
    text.lines()
        .filter(|l| l.starts_with(series))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Idle connections flooding the proxy and DNS over TCP take at most their listener's cap;
/// the API keeps answering, and the probes keep their descriptors, so a healthy origin stays
/// healthy (a check that could not run would not be a vote anyway). A client trickling a
/// request head byte by byte is cut off.
#[tokio::test]
async fn floods_of_idle_and_slow_connections_starve_nobody() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    let origin = common::origin::Origin::start("ok").await;
    let port = origin.port();
    let s = Server::start_flags(&[
        "--proxy-listen",
        "127.0.0.1:0",
        "--dns-listen",
        "127.0.0.1:0",
        "--max-connections",
        "32",
        "--metrics-listen",
        "127.0.0.1:0",
    ]);
    let a = s.account_id().await;
    let m = s.fast_monitor(&a).await;
    let pool = s
        .create(
            &format!("/accounts/{a}/load_balancers/pools"),
            json!({"name": "web", "monitor": m,
                   "origins": [{"name": "o", "address": "127.0.0.1", "port": port}]}),
        )
        .await;
    let healthy = || async {
        let (_, v) = s
            .call(
                Method::GET,
                &format!("/accounts/{a}/load_balancers/pools/{pool}"),
                None,
            )
            .await;
        v["result"]["healthy"] == json!(true)
    };
    eventually(Duration::from_secs(15), "the origin is healthy", healthy).await;

    // 100 idle connections on each of the proxy and DNS over TCP: three times their cap.
    let mut flood = Vec::new();
    for target in [s.serving("proxy"), s.serving("dns")] {
        for _ in 0..100 {
            flood.push(TcpStream::connect(target).await.unwrap());
        }
    }
    let checks = metric(s.judging(), "vantage_checks_total").await;
    // The API answers, over a fresh connection each time.
    for _ in 0..5 {
        let r = reqwest::Client::new()
            .get(s.url("/accounts"))
            .bearer_auth(common::TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    eventually(
        Duration::from_secs(15),
        "a check runs during the flood",
        || async { metric(s.judging(), "vantage_checks_total").await > checks },
    )
    .await;
    assert!(healthy().await, "the origin is still healthy");
    let (_, v) = s
        .call(Method::GET, "/user/load_balancing_analytics/events", None)
        .await;
    assert!(
        v["result"].as_array().unwrap().iter().all(|e| e["origins"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["healthy"] != false)),
        "no false event: {v}"
    );
    // Connections over the cap were closed at once: reading one finds its end.
    let mut closed = 0;
    for c in &mut flood {
        let mut b = [0u8; 1];
        if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_millis(200), c.read(&mut b)).await {
            closed += 1;
        }
    }
    assert!(
        closed >= 136,
        "{closed} of 200 were closed; the 136 over the caps should have been"
    );
    drop(flood);

    // A head trickled one byte at a time is cut off (10 s for a whole head).
    let mut slow = TcpStream::connect(&s.addr).await.unwrap();
    slow.write_all(b"GET /client/v4/accounts HTTP/1.1\r\n")
        .await
        .unwrap();
    let cut = async {
        for _ in 0..60 {
            if slow.write_all(b"X").await.is_err() {
                return true;
            }
            let mut b = [0u8; 256];
            match tokio::time::timeout(Duration::from_millis(500), slow.read(&mut b)).await {
                Ok(Ok(0) | Err(_)) => return true,
                Ok(Ok(_)) => return true, // an error answer, then the close
                Err(_) => {}
            }
        }
        false
    };
    assert!(cut.await, "the trickling client was never cut off");
}

/// No monitor can turn the controller's probes on its own listeners (an oracle on its API or
/// metrics): such a check fails without connecting.
#[tokio::test]
async fn the_controller_never_probes_its_own_listeners() {
    // Replicas on one machine are each other's loopback targets; on their own machines they
    // are not.
    if common::replica_mode("the_controller_never_probes_its_own_listeners") {
        return;
    }
    let s = Server::start_flags(&["--metrics-listen", "127.0.0.1:0"]);
    let a = s.account_id().await;
    let api: std::net::SocketAddr = s.addr.parse().unwrap();
    let m = s
        .create(
            &format!("/accounts/{a}/load_balancers/monitors"),
            json!({"type": "http", "expected_codes": "200", "path": "/client/v4/openapi.json",
                   "interval": 5, "timeout": 1, "retries": 0}),
        )
        .await;
    let origins: Vec<Value> = [api, s.serving("metrics")]
        .iter()
        .enumerate()
        .map(|(i, addr)| json!({"name": format!("own{i}"), "address": addr.ip().to_string(), "port": addr.port()}))
        .collect();
    let pool = s
        .create(
            &format!("/accounts/{a}/load_balancers/pools"),
            json!({"name": "inside", "monitor": m, "origins": origins}),
        )
        .await;
    let path = format!("/accounts/{a}/load_balancers/pools/{pool}/health");
    eventually(Duration::from_secs(15), "the checks have run", || async {
        s.call(Method::GET, &path, None).await.1["success"] == true
    })
    .await;
    let health = s.call(Method::GET, &path, None).await.1;
    let text = health.to_string();
    assert_eq!(health["result"]["pop_health"]["healthy"], false, "{text}");
    assert!(text.contains("TCP connection failed"), "{text}");
}

/// A tenant cannot grow past its quotas, and hitting one is a clear refusal that loses
/// nothing: the pool it tried to grow is as it was, and another tenant is not held back.
#[tokio::test]
async fn a_tenant_cannot_grow_past_its_quotas() {
    let s = Server::start_flags(&["--quota", "pools=2", "--quota", "origins=3"]);
    let a = s.account_id().await;
    let pools = format!("/accounts/{a}/load_balancers/pools");
    let origins = |n: usize| -> Value {
        (0..n)
            .map(|i| json!({"name": format!("o{i}"), "address": format!("192.0.2.{}", i + 1)}))
            .collect()
    };
    // A create the quotas refuse: its answer.
    let refused = |name: &'static str, n: usize| {
        let body = json!({"name": name, "origins": origins(n)});
        let call = s.call(Method::POST, &pools, Some(body));
        async move {
            let (st, v) = call.await;
            assert_eq!(st, 400, "{name}: {v}");
            v
        }
    };
    let first = s
        .create(&pools, json!({"name": "first", "origins": origins(2)}))
        .await;
    // Two more origins would make four.
    let v = refused("second", 2).await;
    assert_eq!(common::error_code(&v), 1002, "{v}");
    assert_eq!(common::pointer(&v), "/origins", "{v}");
    let message = v["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("quota origins"), "{message}");
    assert!(message.contains("at most 3"), "{message}");
    s.create(&pools, json!({"name": "second", "origins": origins(1)}))
        .await;
    // A third pool is past the pool quota.
    let v = refused("third", 1).await;
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("quota pools"),
        "{v}"
    );
    // Growing a pool past the origin quota is refused and changes nothing.
    let one = format!("{pools}/{first}");
    let (st, v) = s
        .call(
            Method::PUT,
            &one,
            Some(json!({"name": "first", "origins": origins(3)})),
        )
        .await;
    assert_eq!(st, 400, "{v}");
    assert_eq!(common::pointer(&v), "/origins", "{v}");
    let (_, v) = s.call(Method::GET, &one, None).await;
    assert_eq!(v["result"]["origins"].as_array().unwrap().len(), 2, "{v}");
    let (_, v) = s.call(Method::GET, &pools, None).await;
    assert_eq!(v["result"].as_array().unwrap().len(), 2, "{v}");
    // Another tenant has quotas of its own.
    let b = s.cli(&["account", "create", "--name", "tenant-b"]);
    let b_token = s.cli_token(&b, "b", "all").await;
    // The server reloaded the catalog the CLI wrote (it sees the new token): the quotas hold.
    refused("third", 1).await;
    let (st, v) = s
        .call_as(
            &b_token,
            Method::POST,
            &format!("/accounts/{b}/load_balancers/pools"),
            Some(json!({"name": "b", "origins": origins(3)})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    // Deleting makes room again.
    let (st, v) = s.call(Method::DELETE, &one, None).await;
    assert_eq!(st, 200, "{v}");
    s.create(&pools, json!({"name": "third", "origins": origins(2)}))
        .await;
}
