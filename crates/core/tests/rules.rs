//! The rules language against a table of conditions (`rules/conditions.txt`): every field,
//! operator and kind of error, each against one fixed proxied request or DNS query; and
//! properties: no parsed condition panics on any request, and limits hold.
// The harness reads files; the core it drives does not.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::disallowed_methods,
    clippy::disallowed_types
)]

use std::borrow::Cow;

use proptest::prelude::*;
use vantage_core::rules::{Condition, DnsFacts, Facts, HttpFacts, Mode, MAX_CONDITION};

fn proxied() -> Facts<'static> {
    let headers = [
        ("host", "www.example.com"),
        ("user-agent", "curl/8.5"),
        ("accept", "text/html"),
        ("cookie", "a=1"),
        ("referer", "https://search.example/"),
        ("x-multi", "one"),
        ("x-multi", "two"),
        ("content-type", "Application/JSON"),
    ];
    Facts {
        name: "www.example.com",
        region: Some("WEU"),
        ip: Some("192.0.2.44".parse().unwrap()),
        http: Some(HttpFacts {
            method: "POST",
            host: Cow::Borrowed("www.example.com"),
            uri: "/api/v2/users?q=red+apples&q=pears&page=2",
            version: "HTTP/2",
            headers: headers
                .iter()
                .map(|(n, v)| (Cow::Borrowed(*n), Cow::Borrowed(*v)))
                .collect(),
            timestamp: 1_700_000_000,
        }),
        dns: None,
    }
}

fn dns() -> Facts<'static> {
    Facts {
        name: "www.example.com",
        region: Some("WEU"),
        ip: Some("203.0.113.0".parse().unwrap()),
        http: None,
        dns: Some(DnsFacts {
            name: "www.example.com.",
            qtype: 28,
            qu: true,
            ecs: Some("203.0.113.0".parse().unwrap()),
        }),
    }
}

#[test]
fn condition_table() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rules/conditions.txt");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut failures = Vec::new();
    let mut cases = 0;
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        let [mode, condition, want] = cols[..] else {
            panic!("line {}: expected MODE<TAB>CONDITION<TAB>EXPECTED", n + 1);
        };
        cases += 1;
        let (mode, facts) = match mode {
            "proxied" => (Mode::Proxied, proxied()),
            "dns" => (Mode::DnsOnly, dns()),
            other => panic!("line {}: no mode {other}", n + 1),
        };
        let got = match Condition::parse(condition, mode) {
            Ok(c) => c.matches(&facts).to_string(),
            Err(e) => format!("error: {e}"),
        };
        let ok = match want.strip_prefix("error: ") {
            Some(part) => got.starts_with("error: ") && got.contains(part),
            None => got == want,
        };
        if !ok {
            failures.push(format!(
                "line {}: {condition:?}: expected {want}, got {got}",
                n + 1
            ));
        }
    }
    assert!(cases > 90, "only {cases} cases read");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn limits() {
    let long = format!("http.host eq \"{}\"", "a".repeat(MAX_CONDITION));
    assert!(Condition::parse(&long, Mode::Proxied)
        .unwrap_err()
        .contains("at most 4096 bytes"));
    let deep = format!("{}http.host eq \"a\"{}", "(".repeat(40), ")".repeat(40));
    assert!(Condition::parse(&deep, Mode::Proxied)
        .unwrap_err()
        .contains("nests deeper than 32"));
    let nots = format!("{}http.host eq \"a\"", "not ".repeat(40));
    assert!(Condition::parse(&nots, Mode::Proxied).is_err());
    // Patterns are bounded in number per condition, and in size each.
    let nine = [r#"http.host matches "a""#; 9].join(" or ");
    assert!(Condition::parse(&nine, Mode::Proxied)
        .unwrap_err()
        .contains("at most 8 `matches` patterns"));
    // A pattern whose compiled program outgrows the size limit is refused, not built.
    assert!(Condition::parse(r#"http.host matches "\w{500}\w{500}""#, Mode::Proxied).is_err());
}

/// Fragments that make conditions of every shape the grammar has, most of them valid.
fn fragment() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "http.host",
        "http.request.uri.path",
        "http.request.headers[\"x-multi\"]",
        "http.request.headers[\"x-multi\"][*]",
        "http.request.uri.args[\"q\"][0]",
        "http.request.uri.args.names[*]",
        "http.request.timestamp.sec",
        "ip.src",
        "len(",
        "lower(",
        "any(",
        "all(",
        "starts_with(",
        ",",
        ")",
        "(",
        "eq",
        "ne",
        "lt",
        "contains",
        "matches",
        "in",
        "{",
        "}",
        "\"a\"",
        "\"^/a.*\"",
        "5",
        "1..9",
        "192.0.2.0/24",
        "and",
        "or",
        "xor",
        "not",
        "[0]",
        "[*]",
    ])
    .prop_map(str::to_owned)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Whatever parses evaluates without panicking, on either mode's facts and on a request
    /// that has nothing.
    #[test]
    fn evaluation_never_panics(words in prop::collection::vec(fragment(), 1..12)) {
        let source = words.join(" ");
        if let Ok(c) = Condition::parse(&source, Mode::Proxied) {
            let _ = c.matches(&proxied());
            let _ = c.matches(&Facts::default());
        }
    }

    /// Parsing never panics on arbitrary text either.
    #[test]
    fn parsing_never_panics(source in "\\PC{0,200}") {
        let _ = Condition::parse(&source, Mode::Proxied);
        let _ = Condition::parse(&source, Mode::DnsOnly);
    }
}

#[test]
fn rule_validation_points_at_each_problem() {
    use vantage_core::load_balancer::LoadBalancerDraft;
    use vantage_core::rules::{FixedResponseDraft, OverridesDraft, RuleDraft};
    use vantage_core::PoolId;
    let p = PoolId::from_bytes([1; 16]).to_string();
    let rule = |r: RuleDraft| {
        LoadBalancerDraft {
            name: Some("www.example.com".into()),
            default_pools: Some(vec![p.clone()]),
            fallback_pool: Some(p.clone()),
            proxied: Some(true),
            rules: Some(vec![RuleDraft::default(), r]),
            ..Default::default()
        }
        .validate("example.com", &|id: PoolId| id.to_string() == p)
    };
    let pointers = |r: RuleDraft| -> Vec<String> {
        rule(r)
            .unwrap_err()
            .iter()
            .map(|v| v.path.to_pointer())
            .collect()
    };
    assert_eq!(
        pointers(RuleDraft {
            name: Some("n".repeat(201)),
            priority: Some(-1),
            terminates: Some(false),
            fixed_response: Some(FixedResponseDraft {
                status_code: Some(99),
                content_type: Some("text/html\r\nx: y".into()),
                location: Some("l".repeat(2049)),
                message_body: Some("b".repeat(1025)),
            }),
            ..RuleDraft::default()
        }),
        [
            "/rules/1/name",
            "/rules/1/priority",
            "/rules/1/fixed_response/status_code",
            "/rules/1/fixed_response/location",
            "/rules/1/fixed_response/content_type",
            "/rules/1/fixed_response/message_body",
            "/rules/1/terminates",
        ]
    );
    assert_eq!(
        pointers(RuleDraft {
            overrides: Some(OverridesDraft {
                default_pools: Some(vec![]),
                fallback_pool: Some("ffffffffffffffffffffffffffffffff".into()),
                steering_policy: Some("fastest".into()),
                session_affinity: Some("header".into()),
                ttl: Some(0),
                ..OverridesDraft::default()
            }),
            ..RuleDraft::default()
        }),
        [
            "/rules/1/overrides/session_affinity_attributes",
            "/rules/1/overrides/default_pools",
            "/rules/1/overrides/fallback_pool",
            "/rules/1/overrides/steering_policy",
            "/rules/1/overrides/ttl",
        ]
    );
    // … and in number across the load balancer's rules.
    let eight = [r#"http.host matches "a""#; 8].join(" or ");
    let patterns = LoadBalancerDraft {
        name: Some("www.example.com".into()),
        default_pools: Some(vec![p.clone()]),
        fallback_pool: Some(p.clone()),
        proxied: Some(true),
        rules: Some(vec![
            RuleDraft {
                condition: Some(eight),
                ..RuleDraft::default()
            };
            5
        ]),
        ..Default::default()
    }
    .validate("example.com", &|_| true)
    .unwrap_err();
    assert!(patterns
        .iter()
        .any(|v| v.path.to_pointer() == "/rules" && v.detail.contains("at most 32")));
    let too_many = LoadBalancerDraft {
        name: Some("www.example.com".into()),
        default_pools: Some(vec![p.clone()]),
        fallback_pool: Some(p.clone()),
        rules: Some(vec![RuleDraft::default(); 101]),
        ..Default::default()
    }
    .validate("example.com", &|_| true)
    .unwrap_err();
    assert_eq!(too_many.iter().next().unwrap().path.to_pointer(), "/rules");
    // Defaults: positional priorities when none is set; a fixed response terminates.
    let spec = rule(RuleDraft {
        fixed_response: Some(FixedResponseDraft {
            status_code: Some(503),
            ..FixedResponseDraft::default()
        }),
        ..RuleDraft::default()
    })
    .unwrap();
    let rules: Vec<_> = spec.rules.iter().collect();
    assert_eq!((rules[0].priority, rules[1].priority), (0, 1));
    assert!(!rules[0].terminates && rules[1].terminates);
}

#[test]
fn header_affinity_entries_are_names_or_cookie_lists() {
    use vantage_core::load_balancer::{AffinityAttributesDraft, LoadBalancerDraft};
    use vantage_core::PoolId;
    let p = PoolId::from_bytes([1; 16]).to_string();
    let with = |headers: Vec<&str>| {
        LoadBalancerDraft {
            name: Some("www.example.com".into()),
            default_pools: Some(vec![p.clone()]),
            fallback_pool: Some(p.clone()),
            session_affinity: Some("header".into()),
            session_affinity_attributes: Some(AffinityAttributesDraft {
                headers: Some(headers.into_iter().map(str::to_owned).collect()),
                ..Default::default()
            }),
            ..Default::default()
        }
        .validate("example.com", &|_| true)
        .map_err(|v| v.iter().map(|v| v.path.to_pointer()).collect::<Vec<_>>())
    };
    assert!(with(vec!["x-user", "cookie:session,region", "Cookie"]).is_ok());
    let long = "x".repeat(257);
    assert_eq!(
        with(vec!["x-user", "X-User", "cookie:", "bad header", &long]).unwrap_err(),
        [
            "/session_affinity_attributes/headers/1",
            "/session_affinity_attributes/headers/2",
            "/session_affinity_attributes/headers/3",
            "/session_affinity_attributes/headers/4",
        ]
    );
    assert_eq!(
        with(vec!["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"]).unwrap_err(),
        ["/session_affinity_attributes/headers"]
    );
}

#[test]
fn region_codes_in_any_case_and_one_list_per_place() {
    use vantage_core::load_balancer::LoadBalancerDraft;
    use vantage_core::region::RegionCode;
    use vantage_core::PoolId;
    let p = PoolId::from_bytes([1; 16]).to_string();
    let lb = |region_pools: Vec<(&str, &str)>| {
        LoadBalancerDraft {
            name: Some("www.example.com".into()),
            default_pools: Some(vec![p.clone()]),
            fallback_pool: Some(p.clone()),
            region_pools: Some(
                region_pools
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), vec![v.to_owned()]))
                    .collect(),
            ),
            ..Default::default()
        }
        .validate("example.com", &|_| true)
    };
    let spec = lb(vec![("weu", &p)]).unwrap();
    assert!(spec.region_pools.contains_key(&RegionCode::Weu));
    let err = lb(vec![("WEU", &p), ("weu", &p)]).unwrap_err();
    assert_eq!(
        err.iter().map(|v| v.path.to_pointer()).collect::<Vec<_>>(),
        ["/region_pools/weu"]
    );
}
