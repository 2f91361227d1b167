//! Evaluating a load balancer's rules for one proxied request: 10 enabled rules with typical
//! conditions (paths, headers, methods, a regular expression, client networks, query
//! arguments), against three requests — one no rule matches (every condition evaluated), one
//! the first rule matches with an override, one the last matches. Reports the p50 and p99 of
//! the per-request time over batches of 1,000 evaluations, facts built from a request's
//! headers included. Run: `cargo bench -p vantage-core --bench rules`
// The harness reads the clock; the core it drives does not.
#![allow(
    clippy::unwrap_used,
    clippy::disallowed_methods,
    clippy::disallowed_types
)]

use std::borrow::Cow;
use std::hint::black_box;
use std::time::Instant;

mod common;

use vantage_core::load_balancer::LoadBalancerDraft;
use vantage_core::rules::{Facts, HttpFacts, OverridesDraft, RuleDraft};
use vantage_core::PoolId;

const CONDITIONS: [&str; 10] = [
    r#"starts_with(http.request.uri.path, "/api/")"#,
    r#"http.request.uri.path eq "/maintenance""#,
    r#"any(http.request.headers["x-canary"][*] eq "1")"#,
    r#"http.request.method in {"POST" "PUT" "DELETE"} and http.host eq "admin.example.com""#,
    r#"http.request.uri.path matches "^/v[0-9]+/(users|orders)/[0-9]+$""#,
    r#"ip.src in {10.0.0.0/8 172.16.0.0/12 192.168.0.0/16}"#,
    r#"http.request.uri.args["beta"][0] eq "true""#,
    r#"lower(http.request.headers["user-agent"][0]) contains "bot""#,
    r#"http.cookie contains "region=eu" or cf.load_balancer.region eq "WEU""#,
    r#"ends_with(http.request.uri.path, ".php")"#,
];

fn main() {
    let id = |i: u8| PoolId::from_bytes([i + 1; 16]).to_string();
    let rules = CONDITIONS
        .iter()
        .enumerate()
        .map(|(i, c)| RuleDraft {
            name: Some(format!("rule-{i}")),
            condition: Some((*c).to_owned()),
            overrides: Some(OverridesDraft {
                default_pools: Some(vec![id(1)]),
                ..OverridesDraft::default()
            }),
            ..RuleDraft::default()
        })
        .collect();
    let spec = LoadBalancerDraft {
        name: Some("www.example.com".into()),
        default_pools: Some(vec![id(0)]),
        fallback_pool: Some(id(2)),
        proxied: Some(true),
        rules: Some(rules),
        ..Default::default()
    }
    .validate("example.com", &|_| true)
    .unwrap();

    let headers: Vec<(&str, &str)> = vec![
        ("host", "www.example.com"),
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
        ),
        ("accept", "text/html,application/xhtml+xml"),
        ("accept-language", "en-GB,en;q=0.5"),
        ("accept-encoding", "gzip, deflate, br"),
        ("cookie", "session=8521F670545D7865; region=us"),
    ];
    let requests = [
        ("no rule matches", "/shop/item/42?colour=red"),
        ("the first matches", "/api/orders"),
        ("the last matches", "/index.php"),
    ];
    for (what, uri) in requests {
        let mut per_request = Vec::new();
        let mut matched = 0usize;
        for _ in 0..common::repeat(2_000, 10) {
            let start = Instant::now();
            for _ in 0..1_000 {
                let facts = Facts {
                    name: "www.example.com",
                    region: Some("WNAM"),
                    ip: Some("198.51.100.7".parse().unwrap()),
                    http: Some(HttpFacts {
                        method: "GET",
                        host: Cow::Borrowed("www.example.com"),
                        uri: black_box(uri),
                        version: "HTTP/1.1",
                        headers: headers
                            .iter()
                            .map(|(n, v)| (Cow::Borrowed(*n), Cow::Borrowed(*v)))
                            .collect(),
                        timestamp: 1_700_000_000,
                    }),
                    dns: None,
                };
                let ruled = black_box(&spec).ruled(&facts);
                matched += ruled.matched.len();
                black_box(ruled);
            }
            per_request.push(start.elapsed().as_nanos() as f64 / 1_000.0);
        }
        per_request.sort_by(f64::total_cmp);
        let at = |q: f64| per_request[((per_request.len() as f64 - 1.0) * q) as usize];
        println!(
            "rules: 10 rules, {what}: p50 {:.0} ns, p99 {:.0} ns per request (goal: p50 <= 1000 ns) [matched {matched}]",
            at(0.5),
            at(0.99)
        );
    }
}
