//! The replicated control plane under failure, with real processes only: three `vantage
//! serve` replicas on one real PostgreSQL cluster, two `vantage agent` probe locations and one
//! `vantage edge`, each given every replica; a client writing through all replicas; a real
//! webhook receiver. The judging replica is killed with `kill -9` during an origin's outage,
//! then PostgreSQL is stopped for ten seconds. What the issue asks of the fleet is asserted:
//! every write answered 2xx is there afterwards, the verdict still changes, one alert per
//! change, agents and the edge carry on without a restart, writes during the outage get a 503
//! envelope and change nothing, reads and the data plane keep serving, and everything recovers
//! by itself.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::edge::EdgeProc;
use common::origin::Origin;
use common::webhook::{events, receiver};
use common::{bin, error_code, eventually, spawn_agent, AGENT_TOKEN, TOKEN};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use vantage_store_postgres::testing::Cluster;

/// Seconds: the judge lease the replicas run with, and the interval of the monitor
/// (`Server::fast_monitor`: one failure is enough to go down).
const LEASE: u64 = 2;
const INTERVAL: u64 = 5;

/// The admin CLI on the shared database; its stdout.
fn admin(url: &str, dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(bin())
        .args(args)
        .args(["--store", url])
        .arg("--data-dir")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The pool's verdict as a replica serves it (`None`: unknown, or the replica is gone).
async fn healthy(http: &reqwest::Client, replica: &str, path: &str) -> Option<bool> {
    let r = http
        .get(format!("{replica}/client/v4{path}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .ok()?;
    let v: Value = r.json().await.ok()?;
    v["result"]["healthy"].as_bool()
}

async fn proxied(http: &reqwest::Client, edge: &EdgeProc) -> Option<String> {
    common::edge::proxied(http, edge, "web.example.com").await
}

/// A replica's whole routing snapshot, as an edge with `token` reads it.
async fn snapshot(http: &reqwest::Client, replica: &str, token: &str) -> Value {
    http.get(format!("{replica}/edge/v1/snapshot?after=0"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Every origin's identity in affinity cookies, by address, as a replica's routing snapshot
/// gives it to edges.
async fn cookie_keys(
    http: &reqwest::Client,
    replica: &str,
    token: &str,
) -> std::collections::BTreeMap<String, String> {
    fn walk(v: &Value, out: &mut std::collections::BTreeMap<String, String>) {
        match v {
            Value::Object(o) => {
                if let (Some(Value::String(a)), Some(Value::String(k))) =
                    (o.get("address"), o.get("key"))
                {
                    out.insert(a.clone(), k.clone());
                }
                o.values().for_each(|v| walk(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let v = snapshot(http, replica, token).await;
    let mut out = std::collections::BTreeMap::new();
    walk(&v, &mut out);
    out
}

/// The pool RTTs a replica's routing snapshot steers dynamic latency by, by pool name.
async fn snapshot_rtts(
    http: &reqwest::Client,
    replica: &str,
    token: &str,
) -> std::collections::BTreeMap<String, Value> {
    let v = snapshot(http, replica, token).await;
    let mut out = std::collections::BTreeMap::new();
    for p in v["pools"].as_array().into_iter().flatten() {
        if let Some(ms) = p.get("rtt_ms") {
            out.insert(
                p["name"].as_str().unwrap_or_default().to_owned(),
                ms.clone(),
            );
        }
    }
    out
}

/// What the writing client saw.
#[derive(Default)]
struct Writes {
    /// Names of the pools whose creation was answered 2xx.
    created: Vec<String>,
    /// Every other answer, by status (0: no answer: the replica is gone).
    refused: Vec<(u16, Value)>,
}

/// Creates pools one after another, each through the next replica in turn, until told to
/// stop.
fn writer(
    replicas: Vec<String>,
    account: String,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Writes>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let mut i = 0usize;
        while !stop.load(Ordering::Acquire) {
            let name = format!("w{i}");
            let replica = &replicas[i % replicas.len()];
            let answer = http
                .post(format!(
                    "{replica}/client/v4/accounts/{account}/load_balancers/pools"
                ))
                .bearer_auth(TOKEN)
                .json(&json!({"name": name, "origins": [{"name": "o", "address": "192.0.2.1"}]}))
                .send()
                .await;
            let outcome = match answer {
                Ok(r) => (
                    r.status().as_u16(),
                    r.json::<Value>().await.unwrap_or_default(),
                ),
                Err(e) => (0, json!(e.to_string())),
            };
            {
                let mut w = seen.lock().unwrap();
                if outcome.0 == 200 {
                    w.created.push(name);
                } else {
                    w.refused.push(outcome);
                }
            }
            i += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_survive_the_judges_death_and_a_database_outage() {
    let cluster = Cluster::start();
    let url = cluster.database("chaos");
    let mut origin = Origin::start("chaos").await;
    let (hook_url, got, _) = receiver(0).await;
    let tmp = tempfile::tempdir().unwrap();
    let lease = LEASE.to_string();
    let extra = ["--no-agent", "--allow-internal-webhooks"];
    let replica = |name: &str| common::replica(&tmp.path().join(name), &url, &lease, &extra);
    let judge = replica("a");
    assert!(
        judge.startup_log.contains("judges health"),
        "{}",
        judge.startup_log
    );
    let b = replica("b");
    let c = replica("c");
    let controllers: Vec<String> = [&judge, &b, &c]
        .iter()
        .map(|s| format!("http://{}", s.addr))
        .collect();
    let followers = [controllers[1].clone(), controllers[2].clone()];

    // Configured through the judge, which will die: everything must outlive it.
    let account = judge.account_id().await;
    let lb = format!("/accounts/{account}/load_balancers");
    let monitor = judge.fast_monitor(&account).await;
    let pool = judge
        .create(
            &format!("{lb}/pools"),
            json!({"name": "web", "monitor": monitor, "check_regions": ["WEU"],
                   "origins": [{"name": "o", "address": "127.0.0.1", "port": origin.port()}]}),
        )
        .await;
    let zone = judge.zone(&account, "example.com").await;
    judge
        .create(
            &format!("/zones/{zone}/load_balancers"),
            json!({"name": "web.example.com", "default_pools": [pool], "fallback_pool": pool,
                   "proxied": true, "steering_policy": "dynamic_latency"}),
        )
        .await;
    let hook = judge
        .create(
            &format!("/accounts/{account}/alerting/v3/destinations/webhooks"),
            json!({"name": "ops", "url": hook_url}),
        )
        .await;
    judge
        .create(
            &format!("/accounts/{account}/alerting/v3/policies"),
            json!({"name": "web", "alert_type": "load_balancing_health_alert", "enabled": true,
                   "mechanisms": {"webhooks": [{"id": hook}]}, "filters": {"pool_id": [pool]}}),
        )
        .await;

    // Two probe locations in one region and an edge, each knowing every replica.
    let cli = tmp.path().join("cli");
    let fra_token = admin(
        &url,
        &cli,
        &[
            "token",
            "create",
            "--name",
            "fra",
            "--agent",
            "--region",
            "WEU",
            "--location",
            "fra",
        ],
    );
    let edge_token = admin(&url, &cli, &["token", "create", "--name", "edge", "--edge"]);
    let mut ams = spawn_agent(&controllers, AGENT_TOKEN, "ams");
    let mut fra = spawn_agent(&controllers, &fra_token, "fra");
    let more: Vec<&str> = followers
        .iter()
        .flat_map(|c| ["--controller", c.as_str()])
        .collect();
    let edge = EdgeProc::start_with(
        &controllers[0],
        &edge_token,
        "127.0.0.2",
        &tmp.path().join("edge.snapshot"),
        &more,
    )
    .expect("the edge starts");

    let http = reqwest::Client::new();
    let pool_path = format!("{lb}/pools/{pool}");
    let limit = Duration::from_secs(30);
    for r in &controllers {
        eventually(limit, &format!("healthy on {r}"), || async {
            healthy(&http, r, &pool_path).await == Some(true)
        })
        .await;
    }
    eventually(limit, "the edge proxies to the origin", || async {
        proxied(&http, &edge).await.as_deref() == Some("chaos")
    })
    .await;

    // Every replica keys affinity cookies alike: an edge that moves to another replica
    // keeps its sessions.
    let keys = cookie_keys(&http, &controllers[0], &edge_token).await;
    assert!(keys.contains_key("127.0.0.1"), "{keys:?}");
    for r in &followers {
        assert_eq!(cookie_keys(&http, r, &edge_token).await, keys, "{r}");
    }

    // Dynamic latency steers by the judge's RTTs on every replica (followers measure none).
    eventually(
        limit,
        "the same pool RTTs in every replica's snapshot",
        || async {
            let judged = snapshot_rtts(&http, &controllers[0], &edge_token).await;
            if !judged.contains_key("web") {
                return false;
            }
            let mut same = true;
            for r in &followers {
                same &= snapshot_rtts(&http, r, &edge_token).await == judged;
            }
            same
        },
    )
    .await;

    // A client writes through every replica from here on.
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(Mutex::new(Writes::default()));
    let writing = writer(
        controllers.clone(),
        account.clone(),
        Arc::clone(&stop),
        Arc::clone(&writes),
    );

    // The origin dies, and so does the judge. A follower takes the lease and judges the
    // outage from the agents' results, which reach it without any restart.
    origin.kill();
    let outage = Instant::now();
    let _ = judge.sigkill();
    let bound = Duration::from_secs(LEASE + INTERVAL + 2);
    eventually(
        bound + Duration::from_secs(10),
        "the outage judged by a survivor",
        || async { healthy(&http, &followers[0], &pool_path).await == Some(false) },
    )
    .await;
    let took = outage.elapsed();
    eprintln!(
        "verdict changed {:.1} s after the outage began and the judge died (bound {} s)",
        took.as_secs_f64(),
        bound.as_secs()
    );
    eventually(
        Duration::from_secs(2),
        "the same verdict on the other survivor",
        || async { healthy(&http, &followers[1], &pool_path).await == Some(false) },
    )
    .await;
    eventually(
        limit,
        "START alerts, for the origin and the pool",
        || async { events(&got, "START").len() == 2 },
    )
    .await;
    origin.revive().await;
    eventually(limit, "the recovery judged", || async {
        healthy(&http, &followers[1], &pool_path).await == Some(true)
    })
    .await;
    eventually(limit, "END alerts", || async {
        events(&got, "END").len() == 2
    })
    .await;
    assert!(
        ams.0.try_wait().unwrap().is_none() && fra.0.try_wait().unwrap().is_none(),
        "the agents run on, never restarted"
    );
    let (_, health) = b
        .call(Method::GET, &format!("{pool_path}/health"), None)
        .await;
    let locations: BTreeSet<&str> = health["result"]["pop_health"]["locations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["location"].as_str())
        .collect();
    assert_eq!(locations, BTreeSet::from(["ams", "fra"]), "{health}");
    eventually(limit, "the edge proxies to the revived origin", || async {
        proxied(&http, &edge).await.as_deref() == Some("chaos")
    })
    .await;

    // PostgreSQL stops for ten seconds. Writes get the 503 envelope and change nothing;
    // reads, pool health and the data plane carry on from memory.
    cluster.stop();
    let down = json!({"name": "during-outage", "origins": [{"name": "o", "address": "192.0.2.9"}]});
    for s in [&b, &c] {
        let (status, body) = s
            .call(Method::POST, &format!("{lb}/pools"), Some(down.clone()))
            .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(body["success"] == false && error_code(&body) > 0, "{body}");
        let (status, body) = s.call(Method::GET, &pool_path, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["result"]["healthy"], true, "{body}");
    }
    let outage_ends = Instant::now() + Duration::from_secs(10);
    while Instant::now() < outage_ends {
        assert_eq!(
            proxied(&http, &edge).await.as_deref(),
            Some("chaos"),
            "the edge serves through the database outage"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    cluster.start_server();

    // Everything recovers by itself: writes on every survivor, and a judge again (the lease
    // lapsed during the outage), which judges the next outage with one alert per change.
    for s in [&b, &c] {
        eventually(limit, "writes go through again", || async {
            let name = format!("after-{}", s.addr.replace([':', '.'], "-"));
            let body = json!({"name": name, "origins": [{"name": "o", "address": "192.0.2.8"}]});
            let (status, answer) = s
                .call(Method::POST, &format!("{lb}/pools"), Some(body))
                .await;
            if status != StatusCode::OK {
                eprintln!("not yet: {status} {answer}");
            }
            status == StatusCode::OK
        })
        .await;
    }
    origin.kill();
    for r in &followers {
        eventually(limit, &format!("the next outage, on {r}"), || async {
            healthy(&http, r, &pool_path).await == Some(false)
        })
        .await;
    }
    eventually(limit, "the next START alerts", || async {
        events(&got, "START").len() == 4
    })
    .await;

    // Every write answered 2xx is there; the one refused during the outage is not; the only
    // refusals were 503s, conflicts (a write validated against a catalog another replica had
    // moved: retried by a client) and the dead replica's silence.
    stop.store(true, Ordering::Release);
    writing.await.unwrap();
    let writes = std::mem::take(&mut *writes.lock().unwrap());
    eprintln!(
        "the client's writes: {} answered 2xx, {} refused or unanswered",
        writes.created.len(),
        writes.refused.len()
    );
    let mut by_status = std::collections::BTreeMap::new();
    for (status, _) in &writes.refused {
        *by_status.entry(*status).or_insert(0) += 1;
    }
    eprintln!("refusals by status: {by_status:?}");
    assert!(writes.created.len() > 10, "the client wrote throughout");
    for (status, body) in &writes.refused {
        assert!(
            matches!(status, 0 | 503)
                || (*status == 400 && body.to_string().contains("concurrent")),
            "{status} {body}"
        );
    }
    let (_, listed) = c.call(Method::GET, &format!("{lb}/pools"), None).await;
    let names: BTreeSet<&str> = listed["result"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    let missing: Vec<&String> = writes
        .created
        .iter()
        .filter(|n| !names.contains(n.as_str()))
        .collect();
    assert!(missing.is_empty(), "answered 2xx but lost: {missing:?}");
    assert!(!names.contains("during-outage"));
    // Exactly one alert per change, whoever delivered it.
    assert_eq!(
        (events(&got, "START").len(), events(&got, "END").len()),
        (4, 2),
        "{:?}",
        got.lock().unwrap()
    );
}
