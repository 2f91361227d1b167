//! Load-balancing rules end to end: a real `vantage serve` with its proxy and DNS listeners,
//! real origins, real HTTP and DNS clients. The pools have no monitor, so their enabled
//! origins take traffic at once and every answer below depends on the rules alone.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::dataplane::Setup;
use common::origin::Origin;
use common::{eventually, Server};
use hickory_proto::rr::RecordType;
use reqwest::Method;
use serde_json::{json, Value};

async fn setup() -> Setup {
    Setup::start(&[
        // The data plane's own place: every client is taken to be in Germany, in WEU.
        "--proxy-country",
        "DE",
        "--proxy-region",
        "WEU",
        "--proxy-rules-debug",
    ])
    .await
}

impl Setup {
    async fn pool(&self, o: &Origin) -> String {
        self.server
            .create(
                &format!("/accounts/{}/load_balancers/pools", self.account),
                json!({"name": o.name, "origins": [{"name": o.name, "address": o.ip(), "port": o.port()}]}),
            )
            .await
    }

    async fn load_balancer(&self, body: Value) -> (u16, Value) {
        let (st, v) = self
            .server
            .call(
                Method::POST,
                &format!("/zones/{}/load_balancers", self.zone),
                Some(body),
            )
            .await;
        (st.as_u16(), v)
    }
}

/// Sends one request through the proxy: status, response headers, body.
async fn send(
    proxy: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, String) {
    let c = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .resolve("www.example.com", proxy)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut r = c.get(format!("http://www.example.com:{}{path}", proxy.port()));
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let h = r.headers().clone();
    (status, h, r.text().await.unwrap())
}

async fn origin_of(proxy: SocketAddr, path: &str, headers: &[(&str, &str)]) -> String {
    let (status, _, body) = send(proxy, path, headers).await;
    assert_eq!(status, 200, "{path}: {body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["origin"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn rules_steer_proxied_requests() {
    let t = setup().await;
    let web = Origin::on("web", "127.0.0.21").await;
    let api = Origin::on("api", "127.0.0.22").await;
    let late = Origin::on("late", "127.0.0.23").await;
    let eu = Origin::on("eu", "127.0.0.24").await;
    let (p_web, p_api, p_late, p_eu) = (
        t.pool(&web).await,
        t.pool(&api).await,
        t.pool(&late).await,
        t.pool(&eu).await,
    );
    let (st, lb) = t
        .load_balancer(json!({
            "name": "www.example.com",
            "proxied": true,
            "default_pools": [p_web],
            "fallback_pool": p_web,
            "rules": [
                {"name": "maintenance", "priority": 1,
                 "condition": "http.request.uri.path eq \"/maintenance\"",
                 "fixed_response": {"status_code": 302, "location": "https://status.example.com/",
                                    "content_type": "text/html", "message_body": "<p>moved</p>"}},
                {"name": "api", "priority": 10,
                 "condition": "starts_with(http.request.uri.path, \"/api/\")",
                 "overrides": {"default_pools": [p_api]}},
                {"name": "stop", "priority": 20, "terminates": true,
                 "condition": "any(http.request.headers[\"x-stop\"][*] eq \"1\")"},
                {"name": "late", "priority": 30,
                 "condition": "http.request.uri.path contains \"/api/\" and cf.load_balancer.region eq \"WEU\"",
                 "overrides": {"default_pools": [p_late]}},
                {"name": "country", "priority": 40,
                 "condition": "http.request.uri.query eq \"geo=1\"",
                 "overrides": {"steering_policy": "geo", "country_pools": {"DE": [p_eu]}}},
                {"name": "off", "priority": 0, "disabled": true, "condition": "",
                 "fixed_response": {"status_code": 500}},
            ],
        }))
        .await;
    assert_eq!(st, 200, "{lb}");

    // Cloudflare's defaults come back: terminates with a fixed response, overrides, disabled.
    let rules = &lb["result"]["rules"];
    assert_eq!(rules[0]["terminates"], true);
    assert_eq!(rules[0]["fixed_response"]["status_code"], 302);
    assert_eq!(rules[1]["disabled"], false);
    assert_eq!(rules[1]["overrides"], json!({"default_pools": [p_api]}));
    assert_eq!(rules[0]["overrides"], json!({}));

    eventually(
        Duration::from_secs(10),
        "the proxy serves the load balancer",
        || async { send(t.proxy, "/", &[]).await.0 == 200 },
    )
    .await;
    // Every pool the rules name has reached the routing snapshot (the first answer may come
    // from one published before the last pool's verdict).
    eventually(
        Duration::from_secs(10),
        "the rules' pools are routed",
        || async { origin_of(t.proxy, "/api/users", &[]).await == "late" },
    )
    .await;
    // No rule: the load balancer's own pools; the disabled rule (always true, a 500) is
    // never evaluated.
    assert_eq!(origin_of(t.proxy, "/", &[]).await, "web");
    // A path-based override, and a later rule's overrides on top of it.
    assert_eq!(origin_of(t.proxy, "/api/users", &[]).await, "late");
    // `terminates` stops before the later rule.
    assert_eq!(
        origin_of(t.proxy, "/api/users", &[("x-stop", "1")]).await,
        "api"
    );
    // A country override: geo steering with the client's country (DE, from --proxy-country).
    assert_eq!(origin_of(t.proxy, "/?geo=1", &[]).await, "eu");

    // The fixed response, answered by the proxy itself.
    let (status, headers, body) = send(t.proxy, "/maintenance", &[]).await;
    assert_eq!(status, 302);
    assert_eq!(headers["location"], "https://status.example.com/");
    assert_eq!(headers["content-type"], "text/html");
    assert_eq!(body, "<p>moved</p>");
    assert!(
        headers.get("vantage-rules-matched").is_none(),
        "only when asked"
    );

    // Which rules matched, when asked.
    let (_, headers, _) = send(t.proxy, "/api/x", &[("vantage-debug", "rules")]).await;
    assert_eq!(headers["vantage-rules-matched"], "api, late");
    let (_, headers, _) = send(t.proxy, "/", &[("vantage-debug", "rules")]).await;
    assert_eq!(headers["vantage-rules-matched"], "none");

    let text = t
        .server
        .text(&format!("http://{}/metrics", t.server.serving("metrics")))
        .await;
    let count = |rule: &str| -> f64 {
        let prefix = format!(
            r#"vantage_rule_matches_total{{load_balancer="www.example.com",rule="{rule}",via="proxy"}} "#
        );
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix)?.parse().ok())
            .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
    };
    assert!(count("api") >= 3.0);
    assert!(count("maintenance") >= 1.0);
    assert!(
        !text.contains(r#"rule="off""#),
        "a disabled rule never matches"
    );

    // A pool a rule names cannot be deleted, and is listed among its references.
    let path = format!("/accounts/{}/load_balancers/pools/{p_late}", t.account);
    let (st, v) = t.server.call(Method::DELETE, &path, None).await;
    assert_eq!(st.as_u16(), 400, "{v}");
    let (st, v) = t
        .server
        .call(Method::GET, &format!("{path}/references"), None)
        .await;
    assert_eq!(st.as_u16(), 200, "{v}");
    assert_eq!(v["result"][0]["resource_type"], "load_balancer", "{v}");
}

#[tokio::test]
async fn rules_steer_dns_answers_and_bad_rules_are_refused() {
    let t = setup().await;
    let near = Origin::on("near", "127.0.0.31").await;
    let far = Origin::on("far", "127.0.0.32").await;
    let (p_near, p_far) = (t.pool(&near).await, t.pool(&far).await);
    let (st, v) = t
        .load_balancer(json!({
            "name": "dns.example.com",
            "default_pools": [p_near],
            "fallback_pool": p_near,
            "rules": [{"name": "subnet",
                       "condition": "dns.rr.opt.client and ip.src in {203.0.113.0/24}",
                       "overrides": {"default_pools": [p_far], "ttl": 7}}],
        }))
        .await;
    assert_eq!(st, 200, "{v}");
    let ip = |o: &Origin| vec![o.addr().ip()];
    let plain = || common::dns::query(t.dns, "dns.example.com.", RecordType::A).unwrap();
    eventually(Duration::from_secs(10), "DNS answers", || async {
        plain().1 == ip(&near)
    })
    .await;
    let subnet: IpAddr = "203.0.113.0".parse().unwrap();
    // The rule's pool is judged on its own schedule: awaited too, as the default pool was.
    eventually(
        Duration::from_secs(10),
        "the rule's pool answers",
        || async {
            common::dns::query_ecs(t.dns, "dns.example.com.", RecordType::A, subnet, 24)
                .is_some_and(|(_, ips, _)| ips == ip(&far))
        },
    )
    .await;
    let (_, ips, answer) =
        common::dns::query_ecs(t.dns, "dns.example.com.", RecordType::A, subnet, 24).unwrap();
    assert_eq!(ips, ip(&far));
    assert_eq!(answer.answers[0].ttl, 7, "the rule's ttl");
    let other: IpAddr = "198.51.100.0".parse().unwrap();
    let (_, ips, answer) =
        common::dns::query_ecs(t.dns, "dns.example.com.", RecordType::A, other, 24).unwrap();
    assert_eq!(ips, ip(&near));
    // The answer depended on the client subnet through the rule: its scope says so.
    let scope = answer.edns.as_ref().and_then(|e| {
        match e.option(hickory_proto::rr::rdata::opt::EdnsCode::Subnet) {
            Some(hickory_proto::rr::rdata::opt::EdnsOption::Subnet(cs)) => Some(cs.scope_prefix()),
            _ => None,
        }
    });
    assert_eq!(scope, Some(24));

    // Bad rules: 400 with a pointer to the rule, and nothing stored.
    let bad = [
        (
            json!({"condition": "http.request.uri.path eq \"/\""}),
            "/rules/0/condition",
            "only known to proxied",
        ),
        (
            json!({"condition": "", "fixed_response": {"status_code": 503}}),
            "/rules/0/fixed_response",
            "needs a proxied load balancer",
        ),
        (
            json!({"condition": "dns.qry.type eq"}),
            "/rules/0/condition",
            "expected an integer",
        ),
        (
            json!({"condition": "", "overrides": {"default_pools": ["ffffffffffffffffffffffffffffffff"]}}),
            "/rules/0/overrides/default_pools/0",
            "does not exist",
        ),
        (
            json!({"condition": "", "overrides": {"name": "x"}}),
            "/rules/0/overrides/name",
            "not a field Vantage knows",
        ),
        (
            json!({"condition": "", "priority": -1}),
            "/rules/0/priority",
            "priority",
        ),
    ];
    for (rule, pointer, text) in bad {
        let (st, v) = t
            .load_balancer(json!({
                "name": "bad.example.com",
                "default_pools": [p_near],
                "fallback_pool": p_near,
                "rules": [rule],
            }))
            .await;
        assert_eq!(st, 400, "{v}");
        let e = &v["errors"][0];
        assert!(
            e["source"]["pointer"]
                .as_str()
                .unwrap()
                .starts_with(pointer),
            "{pointer}: {v}"
        );
        assert!(e["message"].as_str().unwrap().contains(text), "{text}: {v}");
    }
    let (_, list) = t
        .server
        .call(
            Method::GET,
            &format!("/zones/{}/load_balancers", t.zone),
            None,
        )
        .await;
    assert_eq!(list["result"].as_array().unwrap().len(), 1, "{list}");
}

#[tokio::test]
async fn location_strategy_decides_what_locates_a_dns_client() {
    // The resolver (127.0.0.1) and the client subnet 203.0.113.0/24 are both in the US by the
    // geo file; the data plane itself is in Germany (--proxy-country DE).
    let dir = tempfile::tempdir().unwrap();
    let geo = dir.path().join("geo.txt");
    std::fs::write(&geo, "127.0.0.0/8 US\n203.0.113.0/24 US\n").unwrap();
    let server = Server::start_flags(&[
        "--dns-listen",
        "127.0.0.1:0",
        "--dns-rrl-rate",
        "0",
        "--proxy-country",
        "DE",
        "--geo-file",
        geo.to_str().unwrap(),
    ]);
    let account = server.account_id().await;
    let zone = server.zone(&account, "example.com").await;
    let dns = server.serving("dns");
    let t = Setup {
        proxy: dns,
        dns,
        server,
        account,
        zone,
    };
    let home = Origin::on("home", "127.0.0.41").await;
    let us = Origin::on("us", "127.0.0.42").await;
    let (p_home, p_us) = (t.pool(&home).await, t.pool(&us).await);
    let (st, v) = t
        .load_balancer(json!({
            "name": "geo.example.com",
            "steering_policy": "geo",
            "default_pools": [p_home],
            "fallback_pool": p_home,
            "country_pools": {"US": [p_us]},
        }))
        .await;
    assert_eq!(st, 200, "{v}");
    let id = v["result"]["id"].as_str().unwrap().to_owned();
    let subnet: IpAddr = "203.0.113.0".parse().unwrap();
    let ask = |ecs: bool| {
        let r = if ecs {
            common::dns::query_ecs(t.dns, "geo.example.com.", RecordType::A, subnet, 24)
        } else {
            common::dns::query(t.dns, "geo.example.com.", RecordType::A)
        };
        r.unwrap().1
    };
    let ip = |o: &Origin| vec![o.addr().ip()];
    // Cloudflare's default, pop + proximity: under geo steering the subnet is not preferred,
    // and the query is located where it arrived (Germany): the default pools.
    eventually(Duration::from_secs(10), "DNS answers", || async {
        ask(true) == ip(&home)
    })
    .await;
    assert_eq!(ask(false), ip(&home));
    let strategy = |mode: &str, prefer: &str| {
        let path = format!("/zones/{}/load_balancers/{id}", t.zone);
        let body = json!({"location_strategy": {"mode": mode, "prefer_ecs": prefer}});
        let server = &t.server;
        async move {
            let (st, v) = server.call(Method::PATCH, &path, Some(body)).await;
            assert_eq!(st.as_u16(), 200, "{v}");
        }
    };
    // prefer_ecs geo: the subnet (US) steers; without one, still where the query arrived.
    strategy("pop", "geo").await;
    eventually(Duration::from_secs(10), "the subnet steers", || async {
        ask(true) == ip(&us)
    })
    .await;
    assert_eq!(ask(false), ip(&home));
    // resolver_ip: the resolver's address (US) steers, the subnet only when preferred.
    strategy("resolver_ip", "never").await;
    eventually(Duration::from_secs(10), "the resolver steers", || async {
        ask(false) == ip(&us)
    })
    .await;
    assert_eq!(ask(true), ip(&us));
    strategy("pop", "never").await;
    eventually(
        Duration::from_secs(10),
        "back to where it arrived",
        || async { ask(true) == ip(&home) },
    )
    .await;
}
