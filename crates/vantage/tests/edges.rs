//! The data plane as a fleet, with real processes: one controller, two `vantage edge`
//! processes (DNS and the proxy, each edge on its own loopback address; the first also the
//! probe agent, `--agent-token`) and real origins. Failover reaches both edges; the edges keep serving when the controller
//! is killed, an edge restarted meanwhile serves from its snapshot file, both converge when
//! the controller returns; tokens stay in their lanes; a tampered file is refused.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use common::edge::EdgeProc;
use common::origin::Origin;
use common::{eventually, Server, AGENT_TOKEN, TOKEN};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use reqwest::Method;
use serde_json::{json, Value};

fn dns(
    server: SocketAddr,
    name: &str,
    rtype: RecordType,
) -> Option<(ResponseCode, Vec<IpAddr>, Message)> {
    common::dns::query(server, name, rtype)
}

/// The addresses an edge answers for `www.example.com`.
fn www(edge: &EdgeProc) -> Vec<IpAddr> {
    dns(edge.dns, "www.example.com.", RecordType::A).map_or_else(Vec::new, |(_, ips, _)| ips)
}

/// The origin that served a proxied request for `web.example.com` through `edge`.
async fn web(http: &reqwest::Client, edge: &EdgeProc) -> Option<String> {
    common::edge::proxied(http, edge, "web.example.com").await
}

/// Waits (up to `limit`) until every edge answers `ip` for `www` and proxies `web` to the
/// origin named `origin`.
async fn steer_to(
    edges: &[&EdgeProc],
    http: &reqwest::Client,
    ip: IpAddr,
    origin: &str,
    limit: Duration,
) {
    for e in edges {
        eventually(limit, &format!("DNS on {} answers {ip}", e.dns), || async {
            www(e) == vec![ip]
        })
        .await;
        eventually(
            limit,
            &format!("{} proxies to {origin}", e.proxy),
            || async { web(http, e).await.as_deref() == Some(origin) },
        )
        .await;
    }
}

fn soa_serial(edge: &EdgeProc) -> u32 {
    let (_, _, m) = dns(edge.dns, "example.com.", RecordType::SOA).unwrap();
    m.answers
        .iter()
        .find_map(|r| match &r.data {
            RData::SOA(soa) => Some(soa.serial),
            _ => None,
        })
        .unwrap()
}

async fn edges(s: &Server, acct: &str) -> Vec<Value> {
    let (st, v) = s
        .call(
            Method::GET,
            &format!("/accounts/{acct}/load_balancers/edges"),
            None,
        )
        .await;
    assert_eq!(st, 200, "{v}");
    v["result"].as_array().unwrap().clone()
}

#[tokio::test]
async fn edges_fail_over_survive_their_controller_and_converge() {
    let primary_ip: IpAddr = "127.0.0.10".parse().unwrap();
    let secondary_ip: IpAddr = "127.0.0.11".parse().unwrap();
    let mut primary = Origin::on("primary", "127.0.0.10").await;
    let secondary = Origin::on("secondary", "127.0.0.11").await;

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let env = [
        ("VANTAGE_BOOTSTRAP_TOKEN", TOKEN),
        ("VANTAGE_BOOTSTRAP_AGENT_TOKEN", AGENT_TOKEN),
        ("VANTAGE_BOOTSTRAP_AGENT_LOCATION", "WEU/probe"),
    ];
    let s = Server::start_with(&dir, &env, &["--no-agent"]).unwrap();
    let listen = s.addr.clone();
    let controller = format!("http://{listen}");
    let acct = s.account_id().await;

    let zone = s.zone(&acct, "example.com").await;
    let monitor = s.fast_monitor(&acct).await;
    let pool = |name: &str, o: &Origin| json!({"name": name, "monitor": monitor, "origins": [{"name": o.name, "address": o.ip(), "port": o.port()}]});
    let pools = format!("/accounts/{acct}/load_balancers/pools");
    let p1 = s.create(&pools, pool("primary", &primary)).await;
    let p2 = s.create(&pools, pool("secondary", &secondary)).await;
    for (name, proxied) in [("www.example.com", false), ("web.example.com", true)] {
        s.create(
            &format!("/zones/{zone}/load_balancers"),
            json!({"name": name, "default_pools": [p1, p2], "fallback_pool": p2, "proxied": proxied}),
        )
        .await;
    }

    // Edge tokens, one per edge.
    let token1 = s.cli(&["token", "create", "--name", "edge-ams", "--edge"]);
    let token2 = s.cli(&["token", "create", "--name", "edge-fra", "--edge"]);

    // Tokens stay in their lanes: an edge token cannot read the API nor speak for an agent,
    // and API and agent tokens cannot read snapshots.
    let http = reqwest::Client::new();
    eventually(
        Duration::from_secs(10),
        "the controller sees the edge token",
        || async {
            // Until then the token is unknown (9109); then it is known and refused (10000).
            common::error_code(&s.call_as(&token1, Method::GET, "/accounts", None).await.1) == 10000
        },
    )
    .await;
    let (st, v) = s.call_as(&token1, Method::GET, "/accounts", None).await;
    assert_eq!((st.as_u16(), common::error_code(&v)), (403, 10000), "{v}");
    let snapshot_url = format!("{controller}/edge/v1/snapshot?after=0");
    for (token, what) in [(TOKEN, "an API token"), (AGENT_TOKEN, "an agent token")] {
        let r = http
            .get(&snapshot_url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{what} read a snapshot");
        let v: Value = r.json().await.unwrap();
        assert_eq!(common::error_code(&v), 10000, "{v}");
    }
    // Bad input on the edge protocol: an envelope with a pointer, never a 5xx.
    for (query, pointer) in [("after=soon", "/after"), ("region=MARS", "/region")] {
        let r = http
            .get(format!("{controller}/edge/v1/snapshot?{query}"))
            .bearer_auth(&token1)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{query}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(common::pointer(&v), pointer, "{v}");
    }
    let r = http
        .get(format!("{controller}/edge/v1/snapshot"))
        .bearer_auth(&token1)
        .header("vantage-edge-protocol", "9")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "a protocol this controller does not speak");
    let v: Value = r.json().await.unwrap();
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("upgrade the controller"),
        "{v}"
    );
    let r = http
        .get(format!("{controller}/agent/v1/assignment"))
        .bearer_auth(&token1)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "an edge token spoke the agent protocol");

    let files = tempfile::tempdir().unwrap();
    let file1: PathBuf = files.path().join("edge1.snapshot");
    let file2: PathBuf = files.path().join("edge2.snapshot");
    // The first edge is also the probe agent: one process that serves and votes.
    let probes = [
        "--agent-token",
        AGENT_TOKEN,
        "--location",
        "probe",
        "--probe-max-in-flight",
        "300",
        "--metrics-listen",
        "127.0.0.2:0",
    ];
    let edge1 = EdgeProc::start_with(&controller, &token1, "127.0.0.2", &file1, &probes).unwrap();
    let edge2 = EdgeProc::start(&controller, &token2, "127.0.0.3", &file2).unwrap();

    // Both edges steer to the primary once the agent has judged it.
    steer_to(
        &[&edge1, &edge2],
        &http,
        primary_ip,
        "primary",
        Duration::from_secs(30),
    )
    .await;

    let (_, v) = s
        .call(
            Method::GET,
            &format!("/accounts/{acct}/load_balancers/probe_locations"),
            None,
        )
        .await;
    assert_eq!(v["result"][0]["location"], "probe", "{v}");
    assert_eq!(v["result"][0]["region"], "WEU", "{v}");
    // The edge's metrics carry its agent's series, with the ceiling it was given.
    let log = edge1.log();
    let metrics_addr = log
        .split("metrics serving on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no metrics listener in\n{log}"));
    let text = http
        .get(format!("http://{metrics_addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "vantage_agent_in_flight_limit 300",
        "vantage_agent_targets 2",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }

    // The apex names the fleet, with glue.
    let (_, _, ns) = dns(edge1.dns, "example.com.", RecordType::NS).unwrap();
    let names: Vec<String> = ns
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::NS(n) => Some(n.0.to_ascii()),
            _ => None,
        })
        .collect();
    assert_eq!(names, ["ns1.example.com.", "ns2.example.com."]);
    assert_eq!(ns.additionals.len(), 2, "glue for both nameservers");

    // The controller lists both edges, each holding its current snapshot.
    eventually(
        Duration::from_secs(10),
        "both edges listed as current",
        || async {
            let list = edges(&s, &acct).await;
            list.len() == 2
                && list
                    .iter()
                    .all(|e| e["current"] == true && e["state"] == "connected")
                && list[0]["name"] == "edge-ams"
                && list[0]["region"] == "WEU"
        },
    )
    .await;

    // The primary dies: both edges fail over, and the zone's serial moves.
    let serial_before = soa_serial(&edge1);
    primary.kill();
    steer_to(
        &[&edge1, &edge2],
        &http,
        secondary_ip,
        "secondary",
        Duration::from_secs(20),
    )
    .await;
    assert!(
        soa_serial(&edge1) > serial_before,
        "the SOA serial follows the answers"
    );

    // The controller is killed: both edges keep answering from the snapshot they hold.
    let (_, _keep) = s.sigkill();
    for e in [&edge1, &edge2] {
        assert_eq!(www(e), vec![secondary_ip]);
        assert_eq!(web(&http, e).await.as_deref(), Some("secondary"));
    }

    // An edge restarted while no controller answers serves from its file at once.
    eventually(
        Duration::from_secs(10),
        "the edge kept what it serves",
        || async { edge1.kept_current() },
    )
    .await;
    edge1.kill();
    let edge1 = EdgeProc::start_with(&controller, &token1, "127.0.0.2", &file1, &probes).unwrap();
    assert_eq!(www(&edge1), vec![secondary_ip], "served from the file");
    assert_eq!(web(&http, &edge1).await.as_deref(), Some("secondary"));
    assert!(
        edge1.log().contains("serving the routing snapshot kept in"),
        "{}",
        edge1.log()
    );

    // The controller returns and the primary with it: both edges converge on the new state.
    let s = Server::start_with(&dir, &env, &["--no-agent", "--listen", &listen]).unwrap();
    primary.revive().await;
    steer_to(
        &[&edge1, &edge2],
        &http,
        primary_ip,
        "primary",
        Duration::from_secs(30),
    )
    .await;
    eventually(
        Duration::from_secs(10),
        "both edges hold the current snapshot",
        || async {
            let list = edges(&s, &acct).await;
            list.len() == 2 && list.iter().all(|e| e["current"] == true)
        },
    )
    .await;

    // A tampered snapshot file is refused at start, and says why; the edge then follows
    // the controller as if it had none.
    eventually(
        Duration::from_secs(10),
        "the edge kept what it serves",
        || async { edge2.kept_current() },
    )
    .await;
    edge2.kill();
    let mut bytes = std::fs::read(&file2).unwrap();
    let at = bytes.len() / 2;
    bytes[at] = if bytes[at] == b'1' { b'2' } else { b'1' };
    std::fs::write(&file2, &bytes).unwrap();
    let edge2 = EdgeProc::start(&controller, &token2, "127.0.0.3", &file2).unwrap();
    assert!(
        edge2.log().contains("refusing the snapshot file")
            && edge2.log().contains("checksum does not match"),
        "{}",
        edge2.log()
    );
    eventually(
        Duration::from_secs(10),
        "the edge catches up from the controller",
        || async { www(&edge2) == vec![primary_ip] },
    )
    .await;
    drop(secondary);
}
