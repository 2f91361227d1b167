//! The commands for people: `vantage check`, `vantage status` and shell completions, run as
//! processes against real servers.
#![allow(clippy::unwrap_used)]

mod common;

use common::origin::Origin;

use std::process::Command;
use std::time::Duration;

use common::{eventually, Server, TOKEN};
use reqwest::Method;
use serde_json::{json, Value};

fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Runs `vantage ARGS` off the async runtime; (exit code, stdout, stderr).
async fn vantage(args: Vec<String>) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let out = Command::new(common::bin()).args(&args).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    })
    .await
    .unwrap()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// An edge's probe flags without `--agent-token` would be accepted and do nothing: refused,
/// naming the flag they need (clap's usage error, exit 2).
#[tokio::test]
async fn an_edges_probe_flags_need_an_agent_token() {
    for flag in [
        ["--probe-max-in-flight", "300"],
        ["--probe-ca-file", "ca.pem"],
    ] {
        let mut list = vec![
            "edge",
            "--controller",
            "http://127.0.0.1:1",
            "--token",
            "t",
            "--proxy-listen",
            "127.0.0.1:0",
        ];
        list.extend(flag);
        let (code, _, err) = vantage(args(&list)).await;
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("--agent-token"), "{err}");
    }
}

#[tokio::test]
async fn check_judges_like_a_monitor() {
    let origin = Origin::start("ok").await;
    let addr = origin.addr();
    let (code, out, _) = vantage(args(&[
        "check",
        &format!("http://{addr}/"),
        "--output",
        "json",
    ]))
    .await;
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (code, &v["healthy"], &v["response_code"]),
        (0, &json!(true), &json!(200)),
        "{out}"
    );

    let (code, out, _) = vantage(args(&[
        "check",
        &format!("http://{addr}/status/404"),
        "--output",
        "json",
    ]))
    .await;
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(code, 1);
    assert_eq!(v["failure_reason"], "Response code mismatch error");

    let (code, out, _) = vantage(args(&[
        "check",
        &format!("http://{addr}/"),
        "--expected-body",
        "absent",
        "--output",
        "json",
    ]))
    .await;
    assert_eq!(code, 1);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["failure_reason"],
        "Response body mismatch error"
    );

    let (code, out, _) = vantage(args(&[
        "check",
        &format!("127.0.0.1:{}", closed_port()),
        "--type",
        "tcp",
    ]))
    .await;
    assert_eq!(code, 1);
    assert!(
        out.contains("unhealthy") && out.contains("TCP connection failed"),
        "{out}"
    );

    // Bad flags are refused with the core's own rule, named by flag.
    let (code, _, err) = vantage(args(&[
        "check",
        &format!("http://{addr}/"),
        "--timeout",
        "0",
    ]))
    .await;
    assert_ne!(code, 0);
    assert!(err.contains("--timeout"), "{err}");
}

#[tokio::test]
async fn status_shows_pools_origins_regions_and_reasons() {
    let origin = Origin::start("ok").await;
    let addr = origin.addr();
    let s = Server::start();
    let a = s.account_id().await;
    let zone = s.zone(&a, "example.com").await;
    let m = s.fast_monitor(&a).await;
    let pool = s
        .create(
            &format!("/accounts/{a}/load_balancers/pools"),
            json!({"name": "web", "monitor": m, "minimum_origins": 1, "origins": [
                {"name": "alive", "address": "127.0.0.1", "port": addr.port()},
                {"name": "dead", "address": "127.0.0.1", "port": closed_port()},
            ]}),
        )
        .await;
    s.create(
        &format!("/zones/{zone}/load_balancers"),
        json!({"name": "www.example.com", "default_pools": [pool], "fallback_pool": pool,
               "rules": [{"name": "v6", "condition": "dns.qry.type eq 28", "overrides": {"ttl": 5}}]}),
    )
    .await;
    let url = format!("http://{}", s.addr);
    let status = || async {
        let (code, out, err) = vantage(args(&[
            "status", "--url", &url, "--token", TOKEN, "--output", "json",
        ]))
        .await;
        assert_eq!(code, 0, "{err}");
        serde_json::from_str::<Value>(&out).unwrap()
    };
    eventually(
        Duration::from_secs(15),
        "both origins have verdicts",
        || async {
            status().await["pools"][0]["origins"]
                .as_array()
                .unwrap()
                .iter()
                .all(|o| o["healthy"].is_boolean())
        },
    )
    .await;
    let v = status().await;
    let p = &v["pools"][0];
    assert_eq!(p["state"], "Degraded", "{v}");
    assert_eq!(p["origins"][0]["regions"]["WNAM"], true);
    assert_eq!(p["origins"][1]["regions"]["WNAM"], false);
    assert_eq!(p["origins"][1]["failure_reason"], "TCP connection failed");
    assert_eq!(v["load_balancers"][0]["serving"], json!([pool]));

    // The text view names the reason too.
    let (code, text, _) = vantage(args(&["status", "--url", &url, "--token", TOKEN])).await;
    assert_eq!(code, 0);
    assert!(
        text.contains("www.example.com") && text.contains("Degraded"),
        "{text}"
    );
    assert!(
        text.contains("TCP connection failed") && text.contains("★"),
        "{text}"
    );
    assert!(
        text.contains("v6 when dns.qry.type eq 28 → ttl"),
        "the rules are shown: {text}"
    );
    assert_eq!(v["load_balancers"][0]["rules"][0]["name"], "v6", "{v}");

    let (code, script, _) = vantage(args(&["completions", "bash"])).await;
    assert_eq!(code, 0);
    assert!(script.contains("_vantage()"));
}

#[tokio::test]
async fn apply_and_export_round_trip() {
    let s = Server::start();
    let a = s.account_id().await;
    s.zone(&a, "example.com").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vantage.yaml");
    let write = |text: &str| std::fs::write(&file, text).unwrap();
    write(
        r#"
monitors:
  - description: web-health
    type: http
    path: /health
    expected_codes: "200"
    interval: 30
  - description: deep-health
    type: http
    path: /deep
    expected_codes: "200"
    interval: 60
monitor_groups:
  - description: both
    members:
      - {monitor_id: web-health}
      - {monitor_id: deep-health, must_be_healthy: true}
pools:
  - name: primary
    monitor: web-health
    origins:
      - {name: a, address: 192.0.2.10}
      - {name: b, address: 192.0.2.11, weight: 0.5}
  - name: backup
    origins: [{name: c, address: 192.0.2.20}]
  - name: grouped
    monitor_group: both
    origins: [{name: g, address: 192.0.2.30}]
load_balancers:
  - zone: example.com
    name: www.example.com
    default_pools: [primary]
    fallback_pool: backup
    proxied: true
webhooks:
  - name: ops
    url: https://hooks.example.net/lb
    secret_env: TEST_HOOK_SECRET
notification_policies:
  - name: prod
    webhooks: [ops]
    filters: {pool_id: [primary], new_health: [Unhealthy]}
"#,
    );
    let url = format!("http://{}", s.addr);
    let run = |extra: &[&str]| {
        let mut v = args(&["--url", &url, "--token", TOKEN, "--output", "json"]);
        v.extend(extra.iter().map(|s| (*s).to_owned()));
        v
    };
    let apply = |extra: &[&str]| {
        let mut v = args(&["apply", "-f", file.to_str().unwrap()]);
        v.extend(run(extra));
        v
    };
    let changes = |out: &str| -> Vec<String> {
        let v: Value = serde_json::from_str(out).unwrap();
        v["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                format!(
                    "{} {} {}",
                    c["action"].as_str().unwrap(),
                    c["kind"].as_str().unwrap(),
                    c["name"].as_str().unwrap()
                )
            })
            .collect()
    };
    std::env::set_var("TEST_HOOK_SECRET", "from-the-environment");

    // A dry run says everything and changes nothing.
    let (code, out, err) = vantage(apply(&["--dry-run"])).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(changes(&out).len(), 9, "{out}");
    let pools_path = format!("/accounts/{a}/load_balancers/pools");
    assert_eq!(
        s.call(Method::GET, &pools_path, None).await.1["result"],
        json!([])
    );

    let (code, out, err) = vantage(apply(&[])).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        changes(&out),
        [
            "create monitor web-health",
            "create monitor deep-health",
            "create monitor_group both",
            "create pool primary",
            "create pool backup",
            "create pool grouped",
            "create load_balancer example.com/www.example.com",
            "create webhook ops",
            "create notification_policy prod",
        ]
    );
    let (_, pools) = s.call(Method::GET, &pools_path, None).await;
    let primary = pools["result"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "primary")
        .unwrap()
        .clone();
    assert_eq!(primary["origins"][1]["weight"], 0.5);
    assert!(
        primary["monitor"].is_string(),
        "the monitor is referenced by id"
    );

    // Idempotent.
    let (_, out, _) = vantage(apply(&[])).await;
    assert!(changes(&out).is_empty(), "{out}");

    // Export, then apply the export: nothing to do.
    let exported = dir.path().join("export.yaml");
    let mut ex = args(&["export", "-o", exported.to_str().unwrap()]);
    ex.extend(args(&["--url", &url, "--token", TOKEN]));
    let (code, _, err) = vantage(ex).await;
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&exported).unwrap();
    assert!(
        text.contains("fallback_pool: backup")
            && text.contains("monitor: web-health")
            && text.contains("monitor_group: both")
            && text.contains("monitor_id: deep-health"),
        "{text}"
    );
    std::env::set_var("VANTAGE_WEBHOOK_SECRET", "from-the-environment");
    let mut again = args(&["apply", "-f", exported.to_str().unwrap()]);
    again.extend(run(&["--dry-run"]));
    let (code, out, err) = vantage(again).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        changes(&out).is_empty(),
        "the export applies as a no-op: {out}"
    );

    // Change a weight, drop a pool: an update, a re-pointed fallback, a delete — in order.
    let edited = std::fs::read_to_string(&file)
        .unwrap()
        .replace("weight: 0.5", "weight: 0.7")
        .replace(
            "  - name: backup\n    origins: [{name: c, address: 192.0.2.20}]\n",
            "",
        )
        .replace("fallback_pool: backup", "fallback_pool: primary");
    write(&edited);
    let (code, out, err) = vantage(apply(&[])).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        changes(&out),
        [
            "update pool primary",
            "update load_balancer example.com/www.example.com",
            "delete pool backup",
        ]
    );
    let (_, pools) = s.call(Method::GET, &pools_path, None).await;
    assert_eq!(pools["result"].as_array().unwrap().len(), 2);

    // A bad reference is reported, and nothing is changed.
    write(&edited.replace("fallback_pool: primary", "fallback_pool: nowhere"));
    let (code, _, err) = vantage(apply(&[])).await;
    assert_ne!(code, 0);
    assert!(err.contains("no pool named \"nowhere\""), "{err}");
}

#[tokio::test]
async fn a_remote_agent_serves_its_own_metrics() {
    const AGENT_TOKEN: &str = "vantage-test-agent-token_0123456789abcdefghijklmnopqrs";
    let origin = Origin::start("ok").await;
    let addr = origin.addr();
    let tmp = tempfile::tempdir().unwrap();
    let s = Server::start_with(
        &tmp.path().join("data"),
        &[
            ("VANTAGE_BOOTSTRAP_TOKEN", TOKEN),
            ("VANTAGE_BOOTSTRAP_AGENT_TOKEN", AGENT_TOKEN),
            ("VANTAGE_BOOTSTRAP_AGENT_LOCATION", "WEU/ams"),
        ],
        &["--no-agent"],
    )
    .unwrap();
    let a = s.account_id().await;
    let m = s.fast_monitor(&a).await;
    s.create(
        &format!("/accounts/{a}/load_balancers/pools"),
        json!({"name": "web", "monitor": m, "origins": [{"name": "o", "address": "127.0.0.1", "port": addr.port()}]}),
    )
    .await;
    let mut agent = Command::new(common::bin())
        .args([
            "agent",
            "--controller",
            &format!("http://{}", s.addr),
            "--token",
            AGENT_TOKEN,
            "--region",
            "WEU",
            "--location",
            "ams",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .env("VANTAGE_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = agent.stderr.take().unwrap();
    // Keep reading the agent's log after the address line: a closed pipe would end it.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(a) = line.split("metrics serving on ").nth(1) {
                let _ = tx.send(a.trim().to_owned());
            }
        }
    });
    let metrics_addr =
        tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(10)))
            .await
            .unwrap()
            .expect("the agent logs its metrics address");
    let url = format!("http://{metrics_addr}/metrics");
    let line_value = |text: &str, prefix: &str| -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix)?.trim().parse().ok())
    };
    eventually(
        Duration::from_secs(20),
        "checks counted and reported",
        || async {
            let text = reqwest::get(&url).await.unwrap().text().await.unwrap();
            line_value(
                &text,
                &format!(r#"vantage_agent_checks_total{{monitor="{m}",outcome="completed"}}"#),
            )
            .is_some_and(|v| v >= 1.0)
                && line_value(&text, "vantage_agent_controller_up") == Some(1.0)
                && line_value(&text, "vantage_agent_targets") == Some(1.0)
        },
    )
    .await;
    let _ = agent.kill();
    let _ = agent.wait();
}

#[tokio::test]
async fn an_unknown_quota_is_refused_with_the_kinds() {
    for (quota, says) in [
        ("pool=5", "the kinds are zones, monitors"),
        ("pools", "expected KIND=N"),
        ("pools=many", "not a whole number of pools"),
    ] {
        let (code, _, err) = vantage(args(&["serve", "--quota", quota])).await;
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(says), "{quota}: {err}");
    }
}
