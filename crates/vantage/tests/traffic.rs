//! Traffic end to end: real origin servers, a real `vantage serve` with its proxy and DNS
//! listeners, real HTTP and DNS clients. Origins die and come back by closing their sockets;
//! the built-in agent notices, and the traffic follows.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use common::dataplane::Setup;
use common::origin::Origin;
use common::{eventually, Server};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use reqwest::Method;
use serde_json::{json, Value};

/// A client that sends every request for `hosts` to the proxy.
fn client(proxy: SocketAddr, hosts: &[&str]) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10));
    for h in hosts {
        b = b.resolve(h, proxy);
    }
    b.build().unwrap()
}

/// GETs `http://host/` through the proxy: the status and, on 200, the origin's reply.
async fn get(c: &reqwest::Client, proxy: SocketAddr, host: &str) -> (u16, Value) {
    let r = c
        .get(format!("http://{host}:{}/", proxy.port()))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn served_by(c: &reqwest::Client, proxy: SocketAddr, host: &str) -> String {
    let (status, v) = get(c, proxy, host).await;
    if status == 200 {
        v["origin"].as_str().unwrap_or_default().to_owned()
    } else {
        status.to_string()
    }
}

/// One DNS query over UDP; the response code and the addresses answered.
fn dns(server: SocketAddr, name: &str, rtype: RecordType) -> (ResponseCode, Vec<IpAddr>, Message) {
    common::dns::query(server, name, rtype).expect("an answer")
}

/// Polls `f` until it yields a value; panics with `what` after `limit`.
async fn until<T, F, Fut>(limit: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < limit, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn origin_json(o: &Origin) -> Value {
    json!({"name": o.name, "address": o.ip(), "port": o.port()})
}

async fn setup() -> Setup {
    Setup::start(&[]).await
}

impl Setup {
    async fn monitor(&self, extra: Value) -> String {
        let mut body = json!({"type": "http", "expected_codes": "200", "interval": 5, "timeout": 1, "retries": 0});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        self.server
            .create(
                &format!("/accounts/{}/load_balancers/monitors", self.account),
                body,
            )
            .await
    }

    async fn pool(&self, name: &str, origins: Vec<Value>, monitor: Option<&str>) -> String {
        let mut body = json!({"name": name, "origins": origins});
        if let Some(m) = monitor {
            body["monitor"] = json!(m);
        }
        self.server
            .create(
                &format!("/accounts/{}/load_balancers/pools", self.account),
                body,
            )
            .await
    }

    async fn load_balancer(&self, body: Value) -> String {
        self.server
            .create(&format!("/zones/{}/load_balancers", self.zone), body)
            .await
    }

    /// The pool as the API renders it (with `healthy` and the origins' verdicts).
    async fn get_pool(&self, pool: &str) -> Value {
        let path = format!("/accounts/{}/load_balancers/pools/{pool}", self.account);
        let (st, v) = self.server.call(Method::GET, &path, None).await;
        assert_eq!(st, 200, "{v}");
        v["result"].clone()
    }

    async fn patch_pool(&self, pool: &str, body: Value) {
        let (st, v) = self
            .server
            .call(
                Method::PATCH,
                &format!("/accounts/{}/load_balancers/pools/{pool}", self.account),
                Some(body),
            )
            .await;
        assert_eq!(st, 200, "{v}");
    }
}

#[tokio::test]
async fn failover_fallback_and_530_for_the_proxy_and_dns() {
    let t = setup().await;
    let mut a = Origin::on("a", "127.0.0.11").await;
    let mut b = Origin::on("b", "127.0.0.12").await;
    let c = Origin::on("c", "127.0.0.13").await;
    let m = t.monitor(json!({})).await;
    let primary = t.pool("primary", vec![origin_json(&a)], Some(&m)).await;
    let secondary = t.pool("secondary", vec![origin_json(&b)], Some(&m)).await;
    let fallback = t.pool("fallback", vec![origin_json(&c)], Some(&m)).await;
    let pools = json!({"default_pools": [primary, secondary], "fallback_pool": fallback});
    let mut proxied = json!({"name": "www.example.com", "proxied": true});
    proxied
        .as_object_mut()
        .unwrap()
        .extend(pools.as_object().unwrap().clone());
    let mut plain = json!({"name": "api.example.com", "ttl": 45});
    plain
        .as_object_mut()
        .unwrap()
        .extend(pools.as_object().unwrap().clone());
    t.load_balancer(proxied).await;
    t.load_balancer(plain).await;
    let http = client(
        t.proxy,
        &["www.example.com", "api.example.com", "nope.example.com"],
    );
    let dns_ips = |name: &str| dns(t.dns, name, RecordType::A).1;
    let ip = |o: &Origin| -> Vec<IpAddr> { vec![o.addr().ip()] };

    // Health detection bound: one interval plus the timeout, with slack for scheduling.
    let detect = Duration::from_secs(15);
    eventually(detect, "the primary takes traffic", || async {
        served_by(&http, t.proxy, "www.example.com").await == "a"
    })
    .await;
    assert_eq!(dns_ips("api.example.com."), ip(&a));
    let (_, _, answer) = dns(t.dns, "api.example.com.", RecordType::A);
    assert_eq!(answer.answers[0].ttl, 45, "the load balancer's ttl");
    assert!(answer.authoritative);

    // Names that are not proxied, or do not exist.
    assert_eq!(get(&http, t.proxy, "api.example.com").await.0, 404);
    assert_eq!(get(&http, t.proxy, "nope.example.com").await.0, 404);
    let (rcode, ips, nx) = dns(t.dns, "nope.example.com.", RecordType::A);
    assert_eq!((rcode, ips.len()), (ResponseCode::NXDomain, 0));
    assert_eq!(nx.authorities[0].record_type(), RecordType::SOA);
    assert_eq!(
        dns(t.dns, "www.example.org.", RecordType::A).0,
        ResponseCode::Refused
    );

    a.kill();
    eventually(detect, "failover to the secondary", || async {
        served_by(&http, t.proxy, "www.example.com").await == "b"
    })
    .await;
    assert_eq!(dns_ips("api.example.com."), ip(&b));

    a.revive().await;
    eventually(detect, "back to the primary", || async {
        served_by(&http, t.proxy, "www.example.com").await == "a"
    })
    .await;
    eventually(detect, "DNS back to the primary", || async {
        dns_ips("api.example.com.") == ip(&a)
    })
    .await;

    a.kill();
    b.kill();
    eventually(detect, "everything goes to the fallback", || async {
        served_by(&http, t.proxy, "www.example.com").await == "c"
    })
    .await;
    assert_eq!(dns_ips("api.example.com."), ip(&c));

    t.patch_pool(&fallback, json!({"enabled": false})).await;
    eventually(detect, "530 with the fallback disabled", || async {
        get(&http, t.proxy, "www.example.com").await.0 == 530
    })
    .await;
    let (rcode, ips, nodata) = dns(t.dns, "api.example.com.", RecordType::A);
    assert_eq!(
        (rcode, ips.len()),
        (ResponseCode::NoError, 0),
        "SOA, no data"
    );
    assert_eq!(nodata.authorities[0].record_type(), RecordType::SOA);

    b.revive().await;
    eventually(detect, "the secondary takes traffic again", || async {
        served_by(&http, t.proxy, "www.example.com").await == "b"
    })
    .await;

    // The metrics counted all of it: in detail on the operator's listener; the API's shows
    // nothing that names a tenant's objects.
    let public = t
        .server
        .text(&format!("http://{}/metrics", t.server.addr))
        .await;
    assert!(public.contains("vantage_dns_queries_total"), "{public}");
    assert!(
        !public.contains("load_balancer=") && !public.contains("pool="),
        "{public}"
    );
    let text = t
        .server
        .text(&format!("http://{}/metrics", t.server.serving("metrics")))
        .await;
    let value = |prefix: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix)?.rsplit(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
    };
    let proxied = |pool: &str, code: u16| {
        format!(
            r#"vantage_proxy_requests_total{{load_balancer="www.example.com",pool="{pool}",code="{code}"}}"#
        )
    };
    assert!(value(&proxied("primary", 200)) >= 1.0);
    assert!(value(&proxied("secondary", 200)) >= 1.0);
    assert!(value(&proxied("fallback", 200)) >= 1.0);
    assert!(value(&proxied("", 530)) >= 1.0);
    assert!(value(r#"vantage_proxy_requests_total{load_balancer="",pool="",code="404"}"#) >= 2.0);
    assert!(value(r#"vantage_dns_queries_total{rcode="NXDOMAIN"}"#) >= 1.0);
    assert!(value(r#"vantage_dns_queries_total{rcode="REFUSED"}"#) >= 1.0);
    assert!(value(r#"vantage_dns_queries_total{rcode="NOERROR"}"#) >= 5.0);
    // The built-in agent's overload signal is on the operator's listener (`value` panics on
    // a missing series; the values depend on this machine's load).
    assert!(value("vantage_agent_backlog ") >= 0.0);
    assert!(value("vantage_agent_checks_late_total ") >= 0.0);
    // Verdicts, checks and probe locations are counted where health is judged (in replica
    // mode, the replica beside this one).
    let judging = t.server.judging();
    let text = judging
        .text(&format!("http://{}/metrics", judging.serving("metrics")))
        .await;
    let value = |prefix: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix)?.rsplit(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
    };
    assert!(value(r#"vantage_verdict_changes_total{kind="pool",healthy="false"}"#) >= 2.0);
    assert_eq!(value(r#"vantage_pool_healthy{pool="secondary","#), 1.0);
    assert_eq!(value(r#"vantage_pool_healthy{pool="primary","#), 0.0);
    assert!(
        value(&format!(
            r#"vantage_checks_total{{monitor="{m}",location="WNAM/local",result="unhealthy"}}"#
        )) >= 1.0
    );
    assert_eq!(
        value(r#"vantage_probe_location_up{region="WNAM",location="local"}"#),
        1.0
    );
}

#[tokio::test]
async fn adaptive_routing_loses_no_get_during_a_failover() {
    let t = setup().await;
    let a = Origin::on("a", "127.0.0.21").await;
    let b = Origin::on("b", "127.0.0.22").await;
    // Three failures in a row before the verdict flips: a window of at least ten seconds in
    // which the dead origin is still "healthy" and only the proxy's retry can save requests.
    let m = t.monitor(json!({"consecutive_down": 3})).await;
    let primary = t.pool("primary", vec![origin_json(&a)], Some(&m)).await;
    let secondary = t.pool("secondary", vec![origin_json(&b)], Some(&m)).await;
    let base =
        json!({"default_pools": [primary, secondary], "fallback_pool": secondary, "proxied": true});
    let with = |name: &str, across: bool| {
        let mut v = base.clone();
        v["name"] = json!(name);
        v["adaptive_routing"] = json!({"failover_across_pools": across});
        v
    };
    t.load_balancer(with("adaptive.example.com", true)).await;
    t.load_balancer(with("plain.example.com", false)).await;
    let http = client(t.proxy, &["adaptive.example.com", "plain.example.com"]);
    eventually(
        Duration::from_secs(15),
        "the primary takes traffic",
        || async {
            served_by(&http, t.proxy, "adaptive.example.com").await == "a"
                && served_by(&http, t.proxy, "plain.example.com").await == "a"
        },
    )
    .await;

    a.kill();
    let mut served = HashMap::<String, usize>::new();
    let mut plain_failures = 0;
    for _ in 0..50 {
        *served
            .entry(served_by(&http, t.proxy, "adaptive.example.com").await)
            .or_default() += 1;
        if get(&http, t.proxy, "plain.example.com").await.0 != 200 {
            plain_failures += 1;
        }
    }
    assert_eq!(
        t.get_pool(&primary).await["healthy"],
        true,
        "the window under test is before the verdict flips"
    );
    assert_eq!(
        served.get("b"),
        Some(&50),
        "every GET retried on the secondary: {served:?}"
    );
    assert!(
        plain_failures > 0,
        "without adaptive routing the dead origin fails requests"
    );

    // Through the verdict flip too: not one failed GET.
    let mut flipped = false;
    let start = std::time::Instant::now();
    while !flipped {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the verdict never flipped"
        );
        assert_eq!(served_by(&http, t.proxy, "adaptive.example.com").await, "b");
        flipped = t.get_pool(&primary).await["healthy"] == false;
    }
    // The routing snapshot follows the verdict a moment later; then even the plain load
    // balancer sends to the secondary.
    eventually(
        Duration::from_secs(5),
        "the snapshot follows the verdict",
        || async { served_by(&http, t.proxy, "plain.example.com").await == "b" },
    )
    .await;
}

#[tokio::test]
async fn weights_hold_within_five_percent_over_forty_thousand_requests() {
    let t = setup().await;
    let o1 = Origin::on("w25", "127.0.0.31").await;
    let o2 = Origin::on("w35", "127.0.0.32").await;
    let o3 = Origin::on("w40", "127.0.0.33").await;
    let weighted = |o: &Origin, w: f64| {
        let mut v = origin_json(o);
        v["weight"] = json!(w);
        v
    };
    // No monitor: every enabled origin takes traffic from the start.
    let pool = t
        .pool(
            "weighted",
            vec![
                weighted(&o1, 0.25),
                weighted(&o2, 0.35),
                weighted(&o3, 0.40),
            ],
            None,
        )
        .await;
    t.load_balancer(json!({"name": "w.example.com", "proxied": true, "default_pools": [pool], "fallback_pool": pool}))
        .await;
    let http = client(t.proxy, &["w.example.com"]);
    eventually(Duration::from_secs(5), "the route is published", || async {
        get(&http, t.proxy, "w.example.com").await.0 == 200
    })
    .await;
    let counts = Arc::new(std::sync::Mutex::new(HashMap::<String, usize>::new()));
    // The choice is truly random, so the sample size decides how often an honest proxy fails
    // this test. Over 10,000 requests the 0.25 origin's share has a standard deviation of
    // 1.7 % of itself, and ±5 % is 2.9 of them: about one run in 260 failed (one CI run did, at
    // 0.2368).
    // Over 40,000, ±5 % is 5.8 deviations: about one run in 150 million.
    let n = 40_000;
    let workers: Vec<_> = (0..32)
        .map(|_| {
            let http = http.clone();
            let counts = counts.clone();
            let proxy = t.proxy;
            tokio::spawn(async move {
                for _ in 0..n / 32 {
                    let who = served_by(&http, proxy, "w.example.com").await;
                    *counts.lock().unwrap().entry(who).or_default() += 1;
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    let counts = counts.lock().unwrap().clone();
    let total: usize = counts.values().sum();
    assert_eq!(total, n);
    for (name, share) in [("w25", 0.25), ("w35", 0.35), ("w40", 0.40)] {
        let got = counts.get(name).copied().unwrap_or(0) as f64 / total as f64;
        assert!(
            (got - share).abs() <= share * 0.05,
            "{name}: {got:.4} of requests, expected {share} ± 5%: {counts:?}"
        );
    }
}

#[tokio::test]
async fn load_shedding_sends_its_share_to_the_next_pool() {
    let t = setup().await;
    let main = Origin::on("main", "127.0.0.51").await;
    let next = Origin::on("next", "127.0.0.52").await;
    let mut shedding = json!({"name": "main", "origins": [origin_json(&main)]});
    shedding["load_shedding"] = json!({"default_percent": 40, "default_policy": "random"});
    let p_main = t
        .server
        .create(
            &format!("/accounts/{}/load_balancers/pools", t.account),
            shedding,
        )
        .await;
    let p_next = t.pool("next", vec![origin_json(&next)], None).await;
    t.load_balancer(json!({"name": "shed.example.com", "proxied": true,
                           "default_pools": [p_main, p_next], "fallback_pool": p_next}))
        .await;
    let http = client(t.proxy, &["shed.example.com"]);
    eventually(Duration::from_secs(5), "the route is published", || async {
        get(&http, t.proxy, "shed.example.com").await.0 == 200
    })
    .await;
    let mut counts = HashMap::<String, usize>::new();
    let n = 2_000;
    for _ in 0..n {
        *counts
            .entry(served_by(&http, t.proxy, "shed.example.com").await)
            .or_default() += 1;
    }
    let main_share = counts.get("main").copied().unwrap_or(0) as f64 / n as f64;
    // 60 % stays. Over 2,000 independent draws the share's standard deviation is 0.011, so
    // ±0.05 (4.5 of them) fails by chance about once in 150,000 runs, while a pool that shed
    // nothing (1.0) or everything shed (0.0) fails every time.
    assert!(
        (main_share - 0.6).abs() <= 0.05,
        "main took {main_share:.3}: {counts:?}"
    );
    assert_eq!(
        counts.get("main").copied().unwrap_or(0) + counts.get("next").copied().unwrap_or(0),
        n
    );
}

#[tokio::test]
async fn an_affinity_cookie_holds_until_its_origin_is_unhealthy() {
    let t = setup().await;
    let origins = [
        Origin::on("s1", "127.0.0.41").await,
        Origin::on("s2", "127.0.0.42").await,
        Origin::on("s3", "127.0.0.43").await,
    ];
    let m = t.monitor(json!({})).await;
    let pool = t
        .pool(
            "sticky",
            origins.iter().map(origin_json).collect(),
            Some(&m),
        )
        .await;
    t.load_balancer(json!({
        "name": "sticky.example.com", "proxied": true, "default_pools": [pool], "fallback_pool": pool,
        "session_affinity": "cookie", "session_affinity_ttl": 1800,
    }))
    .await;
    t.load_balancer(json!({
        "name": "hdr.example.com", "proxied": true, "default_pools": [pool], "fallback_pool": pool,
        "session_affinity": "header", "session_affinity_attributes": {"headers": ["x-user"]},
    }))
    .await;
    let http = client(t.proxy, &["sticky.example.com", "hdr.example.com"]);
    let url = format!("http://sticky.example.com:{}/", t.proxy.port());
    eventually(Duration::from_secs(15), "every origin is up", || async {
        t.get_pool(&pool).await["origins"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["healthy"] == true)
    })
    .await;

    let first = http.get(&url).send().await.unwrap();
    let cookie = first.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.starts_with("__cflb=") && cookie.contains("Max-Age=1800"),
        "{cookie}"
    );
    let pinned_to = first.json::<Value>().await.unwrap()["origin"]
        .as_str()
        .unwrap()
        .to_owned();
    let value = cookie.split(';').next().unwrap().to_owned();
    let with_cookie = |value: String| {
        let http = http.clone();
        let url = url.clone();
        async move {
            let r = http.get(&url).header("cookie", value).send().await.unwrap();
            let status = r.status().as_u16();
            let set = r
                .headers()
                .get("set-cookie")
                .map(|v| v.to_str().unwrap().to_owned());
            // Between the death and the verdict a pinned client without zero-downtime
            // failover gets the origin's error (521); that is the status it sees.
            let origin = match status {
                200 => r.json::<Value>().await.unwrap()["origin"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                other => other.to_string(),
            };
            (origin, set)
        }
    };
    for _ in 0..30 {
        assert_eq!(with_cookie(value.clone()).await, (pinned_to.clone(), None));
    }
    // Without the cookie the pool's other origins take traffic too.
    let mut others = std::collections::HashSet::new();
    for _ in 0..60 {
        others.insert(served_by(&http, t.proxy, "sticky.example.com").await);
    }
    assert_eq!(others.len(), 3, "{others:?}");

    // Header affinity: the same x-user lands on the same origin.
    let by_header = |user: &'static str| {
        let http = http.clone();
        let port = t.proxy.port();
        async move {
            let r = http
                .get(format!("http://hdr.example.com:{port}/"))
                .header("x-user", user)
                .send()
                .await
                .unwrap();
            r.json::<Value>().await.unwrap()["origin"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let alice = by_header("alice").await;
    for _ in 0..20 {
        assert_eq!(by_header("alice").await, alice);
    }

    // The pinned origin dies: once its verdict is down, the cookie moves the client.
    origins.iter().find(|o| o.name == pinned_to).unwrap().kill();
    let (new_origin, new_cookie) = until(
        Duration::from_secs(15),
        "the client is re-pinned",
        || async {
            let (origin, set) = with_cookie(value.clone()).await;
            set.filter(|_| origin.starts_with('s') && origin != pinned_to)
                .map(|s| (origin, s))
        },
    )
    .await;
    assert_ne!(new_origin, pinned_to);
    let new_value = new_cookie.split(';').next().unwrap().to_owned();
    assert_ne!(new_value, value);
    for _ in 0..20 {
        assert_eq!(
            with_cookie(new_value.clone()).await,
            (new_origin.clone(), None)
        );
    }
}

#[tokio::test]
async fn the_proxy_forwards_faithfully_over_http1_http2_and_tls() {
    let tmp = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["tls.example.com".to_owned()]).unwrap();
    let (cert_path, key_path) = (tmp.path().join("c.pem"), tmp.path().join("k.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let plain = setup().await;
    let o = Origin::on("echo", "127.0.0.51").await;
    let mut with_host = origin_json(&o);
    with_host["header"] = json!({"Host": ["internal.example.net"]});
    let pool = plain.pool("echo", vec![origin_json(&o)], None).await;
    let renamed = plain.pool("renamed", vec![with_host], None).await;
    for (name, p) in [("www.example.com", &pool), ("*.apps.example.com", &renamed)] {
        plain
            .load_balancer(
                json!({"name": name, "proxied": true, "default_pools": [p], "fallback_pool": p}),
            )
            .await;
    }
    let http = client(plain.proxy, &["www.example.com", "x.y.apps.example.com"]);
    let port = plain.proxy.port();
    let url = format!("http://www.example.com:{port}/a/b?c=d");
    eventually(Duration::from_secs(5), "the route is published", || async {
        http.get(&url).send().await.unwrap().status() == 200
    })
    .await;
    let v: Value = http
        .get(&url)
        .header("x-forwarded-for", "192.0.2.9")
        .header("cf-connecting-ip", "6.6.6.6")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["request"], "GET /a/b?c=d HTTP/1.1");
    assert_eq!(v["host"], format!("www.example.com:{port}"));
    assert_eq!(v["x-forwarded-for"], "192.0.2.9, 127.0.0.1");
    assert_eq!(
        v["cf-connecting-ip"], "127.0.0.1",
        "never the client's claim"
    );
    assert_eq!(v["x-forwarded-proto"], "http");

    // The wildcard matches any depth below it, and the origin's Host header wins.
    let v = get(&http, plain.proxy, "x.y.apps.example.com").await.1;
    assert_eq!(v["host"], "internal.example.net");

    // A body streams through.
    let body = vec![7u8; 1 << 20];
    let v: Value = http
        .post(&url)
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["body_bytes"], 1 << 20);

    // HTTP/2 from the client (prior knowledge, cleartext).
    let h2 = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .resolve("www.example.com", plain.proxy)
        .build()
        .unwrap();
    let r = h2.get(&url).send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(
        r.json::<Value>().await.unwrap()["host"],
        format!("www.example.com:{port}")
    );

    // TLS termination from certificate files, HTTP/2 by ALPN.
    let tls = Server::start_flags(&[
        "--proxy-listen",
        "127.0.0.1:0",
        "--proxy-tls-cert",
        cert_path.to_str().unwrap(),
        "--proxy-tls-key",
        key_path.to_str().unwrap(),
    ]);
    let account = tls.account_id().await;
    let zone = tls.zone(&account, "example.com").await;
    let p = tls
        .create(
            &format!("/accounts/{account}/load_balancers/pools"),
            json!({"name": "echo", "origins": [origin_json(&o)]}),
        )
        .await;
    tls.create(
        &format!("/zones/{zone}/load_balancers"),
        json!({"name": "tls.example.com", "proxied": true, "default_pools": [p], "fallback_pool": p}),
    )
    .await;
    let proxy = tls.serving("proxy");
    let https = reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .resolve("tls.example.com", proxy)
        .build()
        .unwrap();
    let url = format!("https://tls.example.com:{}/", proxy.port());
    let (version, v) = until(Duration::from_secs(5), "TLS route is published", || async {
        let r = https.get(&url).send().await.unwrap();
        let ok = r.status() == 200;
        let version = r.version();
        let v = r.json::<Value>().await.unwrap_or_default();
        ok.then_some((version, v))
    })
    .await;
    assert_eq!(version, reqwest::Version::HTTP_2);
    assert_eq!(v["x-forwarded-proto"], "https");
}

#[tokio::test]
async fn the_proxy_keeps_serving_while_the_store_is_locked() {
    // Locks the SQLite file; the outage of a database is tests/chaos.rs's.
    if common::replica_mode("the_proxy_keeps_serving_while_the_store_is_locked") {
        return;
    }
    let t = setup().await;
    let o = Origin::on("steady", "127.0.0.61").await;
    let pool = t.pool("steady", vec![origin_json(&o)], None).await;
    t.load_balancer(json!({"name": "steady.example.com", "proxied": true, "default_pools": [pool], "fallback_pool": pool}))
        .await;
    let http = client(t.proxy, &["steady.example.com"]);
    eventually(Duration::from_secs(5), "the route is published", || async {
        served_by(&http, t.proxy, "steady.example.com").await == "steady"
    })
    .await;

    // Another process holds an exclusive lock on the database: the control plane cannot commit.
    let db = t.server.dir.join("vantage.db");
    let mut locker = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys, time\n\
             c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
             c.execute('BEGIN EXCLUSIVE')\n\
             print('locked', flush=True)\n\
             time.sleep(60)",
        ])
        .arg(&db)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(locker.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "locked");
    let url = t.server.url(&format!(
        "/accounts/{}/load_balancers/pools/{pool}",
        t.account
    ));
    let write = tokio::spawn(
        t.server
            .http
            .patch(url)
            .bearer_auth(common::TOKEN)
            .json(&json!({"description": "written under a lock"}))
            .send(),
    );
    for _ in 0..200 {
        assert_eq!(
            served_by(&http, t.proxy, "steady.example.com").await,
            "steady"
        );
    }
    // The write cannot have succeeded while the lock was held: it waits, or gives up with 503.
    if write.is_finished() {
        assert_eq!(write.await.unwrap().unwrap().status(), 503);
    } else {
        locker.kill().unwrap();
        let status = write.await.unwrap().unwrap().status();
        assert!(status == 200 || status == 503, "{status}");
    }
    let _ = locker.kill();
    let _ = locker.wait();
    t.patch_pool(&pool, json!({"description": "after the lock"}))
        .await;
}

/// Tenancy: a zone of another account cannot be created equal to, inside or around a zone
/// of this one (the takeover this test was written for: account B made `www.example.com`, a
/// host of account A, and the proxy and DNS sent A's traffic to B's origins). Only the
/// operator can delegate a nested zone (`zone create --allow-overlap`), and then each name
/// is served by exactly one account: the most specific zone's.
#[tokio::test]
async fn another_account_cannot_capture_a_zones_names() {
    use common::{error_code, pointer};
    let t = setup().await;
    let mine = Origin::on("a", "127.0.0.41").await;
    let theirs = Origin::on("b", "127.0.0.42").await;
    let pool = t.pool("mine", vec![origin_json(&mine)], None).await;
    for (name, proxied) in [("*.example.com", true), ("www.example.com", false)] {
        let body = json!({"name": name, "proxied": proxied, "default_pools": [pool], "fallback_pool": pool});
        t.load_balancer(body).await;
    }
    let http = client(
        t.proxy,
        &[
            "app.example.com",
            "x.shop.example.com",
            "y.shop.example.com",
        ],
    );
    eventually(
        Duration::from_secs(10),
        "the wildcard is served",
        || async { served_by(&http, t.proxy, "app.example.com").await == "a" },
    )
    .await;

    let b = t.server.cli(&["account", "create", "--name", "tenant-b"]);
    let b_token = t.server.cli_token(&b, "b", "all").await;
    for name in [
        "www.example.com",
        "example.com",
        "deep.www.example.com",
        "EXAMPLE.COM.",
    ] {
        let body = json!({"name": name, "account": {"id": b}});
        let (st, v) = t
            .server
            .call_as(&b_token, Method::POST, "/zones", Some(body))
            .await;
        assert_eq!(st, 400, "{name}: {v}");
        assert_eq!(
            (error_code(&v), pointer(&v)),
            (1002, "/name"),
            "{name}: {v}"
        );
        let message = v["errors"][0]["message"].as_str().unwrap();
        assert!(
            !message.contains(&t.zone),
            "the refusal does not name the other account's zone: {message}"
        );
    }
    let (_, v) = t
        .server
        .call_as(&b_token, Method::GET, "/zones", None)
        .await;
    assert_eq!(v["result"], json!([]), "nothing was half-created");
    // A's names still resolve to A, over HTTP and DNS.
    assert_eq!(served_by(&http, t.proxy, "app.example.com").await, "a");
    assert_eq!(
        dns(t.dns, "www.example.com.", RecordType::A).1,
        vec![mine.addr().ip()]
    );

    // The operator delegates shop.example.com to B; B's names are B's alone from then on.
    t.server.cli(&[
        "zone",
        "create",
        "--account",
        &b,
        "--name",
        "shop.example.com",
        "--allow-overlap",
    ]);
    let shop = until(Duration::from_secs(10), "B sees its zone", || async {
        let (_, v) = t
            .server
            .call_as(&b_token, Method::GET, "/zones", None)
            .await;
        v["result"][0]["id"].as_str().map(str::to_owned)
    })
    .await;
    let b_pool = t
        .server
        .call_as(
            &b_token,
            Method::POST,
            &format!("/accounts/{b}/load_balancers/pools"),
            Some(json!({"name": "theirs", "origins": [origin_json(&theirs)]})),
        )
        .await
        .1["result"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (st, v) = t
        .server
        .call_as(
            &b_token,
            Method::POST,
            &format!("/zones/{shop}/load_balancers"),
            Some(json!({"name": "x.shop.example.com", "proxied": true, "default_pools": [b_pool], "fallback_pool": b_pool})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    // A may not put a name of the delegated zone in its own zone: it would never be served.
    let (st, v) = t
        .server
        .call(
            Method::POST,
            &format!("/zones/{}/load_balancers", t.zone),
            Some(json!({"name": "api.shop.example.com", "default_pools": [pool], "fallback_pool": pool})),
        )
        .await;
    assert_eq!((st.as_u16(), pointer(&v)), (400, "/name"), "{v}");

    eventually(Duration::from_secs(10), "B's host is B's", || async {
        served_by(&http, t.proxy, "x.shop.example.com").await == "b"
    })
    .await;
    assert_eq!(
        get(&http, t.proxy, "y.shop.example.com").await.0,
        404,
        "A's wildcard stops at B's zone"
    );
    assert_eq!(served_by(&http, t.proxy, "app.example.com").await, "a");
    let (rcode, ips, _) = dns(t.dns, "y.shop.example.com.", RecordType::A);
    assert_eq!((rcode, ips.len()), (ResponseCode::NXDomain, 0));
    assert_eq!(
        dns(t.dns, "www.example.com.", RecordType::A).1,
        vec![mine.addr().ip()]
    );
}

/// `drain_duration`: once an origin is disabled, the sessions pinned to it keep going there
/// (until the drain ends) while new sessions never do; without a drain the pin moves at once.
#[tokio::test]
async fn a_disabled_origin_drains_its_pinned_sessions() {
    let t = setup().await;
    let origins = [
        Origin::on("d1", "127.0.0.51").await,
        Origin::on("d2", "127.0.0.52").await,
    ];
    let pool = t
        .pool("draining", origins.iter().map(origin_json).collect(), None)
        .await;
    for (name, drain) in [("drain.example.com", 3600), ("nodrain.example.com", 0)] {
        t.load_balancer(json!({
            "name": name, "proxied": true, "default_pools": [pool], "fallback_pool": pool,
            "session_affinity": "cookie", "session_affinity_attributes": {"drain_duration": drain},
        }))
        .await;
    }
    let http = client(t.proxy, &["drain.example.com", "nodrain.example.com"]);
    let ask = |host: &'static str, cookie: Option<String>| {
        let http = http.clone();
        let url = format!("http://{host}:{}/", t.proxy.port());
        async move {
            let mut req = http.get(&url);
            if let Some(c) = cookie {
                req = req.header("cookie", c);
            }
            let r = req.send().await.unwrap();
            let set = r
                .headers()
                .get("set-cookie")
                .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned());
            // Until the data plane has the load balancer, its status stands for the origin.
            let origin = match r.status().as_u16() {
                200 => r.json::<Value>().await.unwrap()["origin"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                other => other.to_string(),
            };
            (origin, set)
        }
    };
    // Pin a session of each load balancer to d1 (fresh sessions land on either origin).
    let mut pins = Vec::new();
    for host in ["drain.example.com", "nodrain.example.com"] {
        let cookie = until(Duration::from_secs(15), "a session on d1", || async {
            match ask(host, None).await {
                (o, Some(c)) if o == "d1" => Some(c),
                _ => None,
            }
        })
        .await;
        pins.push(cookie);
    }

    let mut disabled = vec![origin_json(&origins[0]), origin_json(&origins[1])];
    disabled[0]["enabled"] = json!(false);
    t.patch_pool(&pool, json!({"origins": disabled})).await;
    let rendered = t.get_pool(&pool).await;
    assert!(
        rendered["origins"][0]["disabled_at"].is_string(),
        "{rendered}"
    );
    assert!(rendered["origins"][1].get("disabled_at").is_none());

    // Without a drain the pinned session moves as soon as the data plane has the change.
    until(
        Duration::from_secs(15),
        "the undrained pin moves",
        || async {
            (ask("nodrain.example.com", Some(pins[1].clone())).await.0 == "d2").then_some(())
        },
    )
    .await;
    // From then on: the draining session stays on d1, and no new session goes there.
    for _ in 0..20 {
        assert_eq!(
            ask("drain.example.com", Some(pins[0].clone())).await.0,
            "d1"
        );
        assert_eq!(ask("drain.example.com", None).await.0, "d2");
    }
}
