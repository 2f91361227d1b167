//! Several probe locations in several regions, each a real `vantage agent` process with its
//! own source address, against origins that fail for some of those addresses: the locations
//! disagree, and the verdicts are votes.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{eventually, Server, EMAIL, KEY, TOKEN};
use reqwest::Method;
use serde_json::{json, Value};

const AGENT_TOKEN: &str = "vantage-test-agent-token_0123456789abcdefghijklmnopqrs";

/// An origin that answers 503 to the source addresses in `deny` and 200 to everyone else.
async fn origin(deny: &[&str]) -> common::origin::Origin {
    let origin = common::origin::Origin::start("ok").await;
    for client in deny {
        origin.refuse(client);
    }
    origin
}

/// A controller without a built-in location, whose agent token (`AGENT_TOKEN`) speaks for
/// WEU/ams.
fn controller(tmp: &std::path::Path) -> Server {
    let env = [
        ("VANTAGE_BOOTSTRAP_TOKEN", TOKEN),
        ("VANTAGE_BOOTSTRAP_EMAIL", EMAIL),
        ("VANTAGE_BOOTSTRAP_KEY", KEY),
        ("VANTAGE_BOOTSTRAP_AGENT_TOKEN", AGENT_TOKEN),
        ("VANTAGE_BOOTSTRAP_AGENT_LOCATION", "WEU/ams"),
    ];
    Server::start_with(&tmp.join("data"), &env, &["--no-agent"]).unwrap()
}

struct Agent(Child);

impl Agent {
    fn start(controller: &str, token: &str, region: &str, location: &str, source: &str) -> Self {
        let child = Command::new(common::bin())
            .args([
                "agent",
                "--controller",
                controller,
                "--token",
                token,
                "--region",
                region,
                "--location",
                location,
                "--source-address",
                source,
            ])
            .env("VANTAGE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Self(child)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn four_agents_two_regions_vote() {
    // A: fails only from ams; B: fails from both WEU locations; D: fails from ams and fra, and
    // is checked with `check_regions: null` (a vote over all four locations).
    let (a, b, d) = (
        origin(&["127.0.0.2"]).await,
        origin(&["127.0.0.2", "127.0.0.3"]).await,
        origin(&["127.0.0.2", "127.0.0.3"]).await,
    );
    let tmp = tempfile::tempdir().unwrap();
    let s = controller(tmp.path());
    let controller = format!("http://{}", s.addr);
    let acct = s.account_id().await;

    // API tokens cannot speak the agent protocol, and agent tokens cannot use the API.
    let r = s
        .http
        .get(format!(
            "{controller}/agent/v1/assignment?region=WEU&location=x"
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let (st, _) = s.call_as(AGENT_TOKEN, Method::GET, "/accounts", None).await;
    assert_eq!(st, 403);

    let (_, m) = s
        .call(
            Method::POST,
            &format!("/accounts/{acct}/load_balancers/monitors"),
            Some(json!({"expected_codes": "200", "interval": 5, "timeout": 1, "retries": 0})),
        )
        .await;
    let mid = m["result"]["id"].as_str().unwrap().to_owned();
    let pool = |name: &str, regions: Value, port: u16| json!({"name": name, "monitor": mid, "check_regions": regions, "origins": [{"name": "o", "address": "127.0.0.1", "port": port}]});
    let mut ids = Vec::new();
    for body in [
        pool("a", json!(["WEU", "ENAM"]), a.port()),
        pool("b", json!(["ALL_REGIONS"]), b.port()),
        pool("d", Value::Null, d.port()),
    ] {
        let (st, p) = s
            .call(
                Method::POST,
                &format!("/accounts/{acct}/load_balancers/pools"),
                Some(body),
            )
            .await;
        assert_eq!(st, 200, "{p}");
        ids.push(p["result"]["id"].as_str().unwrap().to_owned());
    }
    let health = |i: usize| {
        let path = format!("/accounts/{acct}/load_balancers/pools/{}/health", ids[i]);
        let s = &s;
        async move { s.call(Method::GET, &path, None).await.1 }
    };

    let agents = [
        ("WEU", "ams", "127.0.0.2"),
        ("WEU", "fra", "127.0.0.3"),
        ("ENAM", "iad", "127.0.0.4"),
        ("ENAM", "ewr", "127.0.0.5"),
    ];
    // One token per location (the bootstrap one is ams's): a token speaks for one location.
    let tokens: Vec<String> = agents
        .iter()
        .map(|(r, l, _)| match *l {
            "ams" => AGENT_TOKEN.to_owned(),
            _ => s.cli(&[
                "token",
                "create",
                "--name",
                l,
                "--agent",
                "--region",
                r,
                "--location",
                l,
            ]),
        })
        .collect();
    for ((region, location, _), token) in agents.iter().zip(&tokens) {
        eventually(
            Duration::from_secs(10),
            "the controller sees the agent token",
            || async {
                s.http
                    .get(format!(
                        "{controller}/agent/v1/assignment?region={region}&location={location}"
                    ))
                    .bearer_auth(token)
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200)
            },
        )
        .await;
    }
    // The first agent is told of a dead controller first: it must move on to the live one by
    // itself for its location to report.
    let with_a_dead_one = format!("http://127.0.0.1:9,{controller}");
    let mut running: Vec<Option<Agent>> = agents
        .iter()
        .zip(&tokens)
        .enumerate()
        .map(|(i, ((r, l, src), token))| {
            let controllers = if i == 0 {
                &with_a_dead_one
            } else {
                &controller
            };
            Some(Agent::start(controllers, token, r, l, src))
        })
        .collect();
    let limit = Duration::from_secs(40);
    eventually(limit, "all four locations report on every pool", || async {
        let mut all = true;
        for i in 0..3 {
            all &= health(i).await["result"]["pop_health"]["locations"]
                .as_array()
                .is_some_and(|l| l.len() == 4);
        }
        all
    })
    .await;

    // A: WEU splits 1-1 (a tie is healthy), ENAM is healthy: healthy, and the breakdown shows
    // which location disagrees.
    let h = health(0).await;
    let pop = &h["result"]["pop_health"];
    assert_eq!(
        (
            pop["healthy"].as_bool(),
            pop["WEU"]["healthy"].as_bool(),
            pop["ENAM"]["healthy"].as_bool()
        ),
        (Some(true), Some(true), Some(true)),
        "{h}"
    );
    let ams = pop["locations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["location"] == "ams")
        .unwrap();
    assert_eq!(
        (
            ams["origins"][0]["healthy"].as_bool(),
            ams["origins"][0]["failure_reason"].as_str()
        ),
        (Some(false), Some("Response code mismatch error"))
    );

    // B: WEU is down (both its locations fail), ENAM up: one region each way, a tie: healthy.
    let h = health(1).await;
    let pop = &h["result"]["pop_health"];
    assert_eq!(
        (
            pop["WEU"]["healthy"].as_bool(),
            pop["ENAM"]["healthy"].as_bool(),
            pop["healthy"].as_bool()
        ),
        (Some(false), Some(true), Some(true)),
        "{h}"
    );

    // D (null: all locations vote directly): two fail, two pass: a tie, healthy.
    assert_eq!(health(2).await["result"]["pop_health"]["healthy"], true);

    // iad dies. Once its vote is stale (3 x 5 s + 1 s) D's vote is two failures to one pass.
    running[2] = None;
    eventually(
        limit,
        "the dead location stops voting and D goes down",
        || async { health(2).await["result"]["pop_health"]["healthy"] == false },
    )
    .await;
    let (_, ev) = s
        .call(
            Method::GET,
            &format!(
                "/user/load_balancing_analytics/events?pool_id={}&pool_healthy=false",
                ids[2]
            ),
            None,
        )
        .await;
    assert!(
        !ev["result"].as_array().unwrap().is_empty(),
        "the change is an event: {ev}"
    );
    eventually(limit, "iad is listed as silent", || async {
        let (_, l) = s
            .call(
                Method::GET,
                &format!("/accounts/{acct}/load_balancers/probe_locations"),
                None,
            )
            .await;
        l["result"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["location"] == "iad" && x["state"] == "silent")
    })
    .await;

    // The controller restarts on the same address; the agents, untouched, reconnect.
    let addr = s.addr.clone();
    let before = health(0).await["result"]["pop_health"]["healthy"].clone();
    let (dir, _t) = s.sigkill();
    let s = Server::start_with(&dir, &[], &["--no-agent", "--listen", &addr]).unwrap();
    let path0 = format!("/accounts/{acct}/load_balancers/pools/{}/health", ids[0]);
    assert_eq!(
        s.call(Method::GET, &path0, None).await.1["result"]["pop_health"]["healthy"],
        before,
        "no verdict is lost"
    );
    let restarted = vantage_wire::time::format(vantage_control::clock::now());
    eventually(
        limit,
        "the agents report to the restarted controller",
        || async {
            let h = s.call(Method::GET, &path0, None).await.1;
            h["result"]["pop_health"]["locations"]
                .as_array()
                .is_some_and(|ls| {
                    ["ams", "fra", "ewr"].iter().all(|name| {
                        ls.iter().any(|l| {
                            l["location"] == *name
                                && l["origins"][0]["checked_on"]
                                    .as_str()
                                    .is_some_and(|c| c > restarted.as_str())
                        })
                    })
                })
        },
    )
    .await;
    drop(running);
}

/// A controller without a built-in location previews from the remote agents that ask for
/// preview checks: the candidate runs at once from `WEU/ams`, which this origin refuses.
#[tokio::test]
async fn previews_run_from_remote_agents() {
    let refusing = origin(&["127.0.0.2"]).await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let env = [
        ("VANTAGE_BOOTSTRAP_TOKEN", TOKEN),
        ("VANTAGE_BOOTSTRAP_AGENT_TOKEN", AGENT_TOKEN),
        ("VANTAGE_BOOTSTRAP_AGENT_LOCATION", "WEU/ams"),
    ];
    let s = Server::start_with(&dir, &env, &["--no-agent"]).unwrap();
    let acct = s.account_id().await;
    let lb = format!("/accounts/{acct}/load_balancers");
    let monitor = json!({"expected_codes": "200", "interval": 60, "timeout": 2, "retries": 0});
    let mid = s.create(&format!("{lb}/monitors"), monitor.clone()).await;
    let pid = s
        .create(
            &format!("{lb}/pools"),
            json!({"name": "p", "monitor": mid, "origins": [{"name": "o", "address": "127.0.0.1", "port": refusing.port()}]}),
        )
        .await;
    let preview = format!("{lb}/pools/{pid}/preview");
    // No location yet: refused, not left hanging.
    let (st, v) = s.call(Method::POST, &preview, Some(monitor.clone())).await;
    assert!(st.is_client_error(), "{st} {v}");

    let _agent = Agent::start(
        &format!("http://{}", s.addr),
        AGENT_TOKEN,
        "WEU",
        "ams",
        "127.0.0.2",
    );
    // Awaited conditions, not guesses: each loop ends as soon as it holds.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let id = loop {
        let (st, v) = s.call(Method::POST, &preview, Some(monitor.clone())).await;
        if st == 200 {
            break v["result"]["preview_id"].as_str().unwrap().to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the agent never offered previews: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let result_path = format!("{lb}/preview/{id}");
    let result = loop {
        let v = s.call(Method::GET, &result_path, None).await.1;
        if v["result"][&pid]["healthy"].is_boolean() {
            break v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no result from the agent: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let pool = &result["result"][&pid];
    assert_eq!(pool["healthy"], false, "{result}");
    let origin = &pool["origins"][0]["127.0.0.1"];
    assert_eq!(origin["failure_reason"], "Response code mismatch error");
    assert_eq!(origin["locations"][0]["region"], "WEU", "{result}");
    assert_eq!(origin["locations"][0]["location"], "ams");
}

/// Protocol version 4: an agent naming the version it holds (and its epoch) is sent only what
/// changed since; one naming another epoch, or an agent of version 3, the whole assignment.
#[tokio::test]
async fn an_agent_is_sent_only_what_changed() {
    if common::replica_mode("an_agent_is_sent_only_what_changed") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let s = controller(tmp.path());
    let acct = s.account_id().await;
    let assignment = |query: String, version: &'static str| {
        let s = &s;
        async move {
            let r = s
                .http
                .get(format!("http://{}/agent/v1/assignment?{query}", s.addr))
                .bearer_auth(AGENT_TOKEN)
                .header("vantage-agent-protocol", version)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()["result"].clone()
        }
    };
    let addresses = |a: &Value| -> Vec<String> {
        let mut out: Vec<String> = a
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                t["address"]
                    .as_str()
                    .or(t["key"]["address"].as_str())
                    .unwrap()
                    .to_owned()
            })
            .collect();
        out.sort();
        out
    };
    let mid = s
        .create(
            &format!("/accounts/{acct}/load_balancers/monitors"),
            json!({"expected_codes": "200", "interval": 60}),
        )
        .await;
    let pool = |name: &str, address: &str| json!({"name": name, "monitor": mid, "origins": [{"name": "o", "address": address, "port": 9}]});
    let first = s
        .create(
            &format!("/accounts/{acct}/load_balancers/pools"),
            pool("a", "192.0.2.1"),
        )
        .await;
    eventually(
        Duration::from_secs(10),
        "the first pool is assigned",
        || async { addresses(&assignment(String::new(), "4").await["targets"]) == ["192.0.2.1"] },
    )
    .await;
    let whole = assignment(String::new(), "4").await;
    assert!(whole.get("changes").is_none(), "{whole}");
    let (epoch, version) = (
        whole["epoch"].as_u64().unwrap(),
        whole["version"].as_u64().unwrap(),
    );

    // A pool added: the delta holds its target alone (the long poll waits for the re-plan).
    s.create(
        &format!("/accounts/{acct}/load_balancers/pools"),
        pool("b", "192.0.2.2"),
    )
    .await;
    let delta = assignment(format!("version={version}&epoch={epoch}"), "4").await;
    assert_eq!(delta["changes"]["since"], version, "{delta}");
    assert_eq!(addresses(&delta["targets"]), ["192.0.2.2"], "{delta}");
    assert_eq!(delta["changes"]["removed"], json!([]), "{delta}");
    assert_eq!(delta["epoch"], epoch);
    let version = delta["version"].as_u64().unwrap();

    // A pool deleted: its target is removed, nothing is sent whole.
    let (st, _) = s
        .call(
            Method::DELETE,
            &format!("/accounts/{acct}/load_balancers/pools/{first}"),
            None,
        )
        .await;
    assert_eq!(st, 200);
    let delta = assignment(format!("version={version}&epoch={epoch}"), "4").await;
    assert_eq!(
        addresses(&delta["changes"]["removed"]),
        ["192.0.2.1"],
        "{delta}"
    );
    assert_eq!(delta["targets"], json!([]), "{delta}");
    let version = delta["version"].as_u64().unwrap();

    // Another epoch's version, or an agent that cannot read deltas: the whole assignment.
    let other = epoch.wrapping_add(1);
    for (query, protocol) in [
        (format!("version={version}&epoch={other}"), "4"),
        (format!("version={}", version - 1), "3"),
    ] {
        let a = assignment(query, protocol).await;
        assert!(a.get("changes").is_none(), "{a}");
        assert_eq!(addresses(&a["targets"]), ["192.0.2.2"], "{a}");
    }

    // A version or epoch that is not a number is refused, with where.
    for (query, pointer) in [
        ("version=soon", "/version"),
        ("version=1&epoch=-3", "/epoch"),
    ] {
        let r = s
            .http
            .get(format!("http://{}/agent/v1/assignment?{query}", s.addr))
            .bearer_auth(AGENT_TOKEN)
            .header("vantage-agent-protocol", "4")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{query}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(common::pointer(&body), pointer, "{body}");
    }
}
