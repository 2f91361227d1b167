//! Every kind of row the store writes, pinned as it lands in a real SQLite file: rows outlive
//! the binary that wrote them, so a renamed or retyped field anywhere in a stored object
//! (however deep) must show up as a diff of `tests/golden/rows.json`, never as data that
//! silently fails to load after an upgrade. Refresh with `VANTAGE_UPDATE_SNAPSHOT=1` only
//! together with a migration (or a reader that still takes the old shape, tested in rows.rs).
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::collections::BTreeMap;

use serde_json::Value;
use vantage_core::catalog::{Catalog, Change};
use vantage_core::health::check::{CheckResult, FailureReason};
use vantage_core::health::{Location, LocationState, ProbeKey, Verdict};
use vantage_core::load_balancer::{AffinityAttributesDraft, LoadBalancerDraft};
use vantage_core::monitor::MonitorDraft;
use vantage_core::monitor_group::{MemberDraft, MonitorGroupDraft};
use vantage_core::notification::{NewDelivery, PolicyDraft, WebhookDraft};
use vantage_core::pool::{OriginDraft, PoolDraft};
use vantage_core::region::RegionCode;
use vantage_core::rules::{FixedResponseDraft, OverridesDraft, RuleDraft};
use vantage_core::zone::Overlap;
use vantage_core::{
    AccountId, LoadBalancerId, MonitorGroupId, MonitorId, PolicyId, PoolId, Timestamp, WebhookId,
    ZoneId,
};
use vantage_store::Store;
use vantage_store_sqlite::{Durability, SqliteStore};

const T: Timestamp = Timestamp::from_unix_micros(1_764_547_200_000_000);
const A: AccountId = AccountId::from_bytes([1; 16]);

fn apply(c: &mut Catalog, all: &mut Vec<Change>, changes: Vec<Change>) {
    for ch in changes {
        c.apply(ch.clone());
        all.push(ch);
    }
}

/// One object of every kind, with every optional part filled in.
fn everything() -> Vec<Change> {
    let mut c = Catalog::default();
    let mut all = Vec::new();
    let out = c.create_account(A, "acme".into(), T).unwrap();
    apply(&mut c, &mut all, out);
    use vantage_core::auth::{
        AgentBinding, Grant, Permission, Resource, SecretDigest, Token, TokenKind, TokenStatus,
        User,
    };
    let token = Token {
        id: vantage_core::TokenId::from_bytes([8; 16]),
        name: "ams1".into(),
        digest: SecretDigest([0xab; 32]),
        status: TokenStatus::Active,
        grants: vec![Grant {
            resource: Resource::Account(A),
            permissions: vec![Permission::LoadBalancersRead],
        }],
        issued_on: T,
        modified_on: T,
        expires_on: Some(T),
        kind: TokenKind::Agent,
        agent: Some(AgentBinding {
            location: Location {
                region: RegionCode::Weu,
                name: "ams1".into(),
            },
            accounts: vec![A],
        }),
    };
    let user = User {
        id: vantage_core::UserId::from_bytes([9; 16]),
        email: "ops@example.com".into(),
        key_digest: SecretDigest([0xcd; 32]),
        key_salt: [0xef; 16],
        accounts: vec![A],
        created_on: T,
    };
    apply(
        &mut c,
        &mut all,
        vec![Change::PutToken(token), Change::PutUser(user)],
    );
    let z = ZoneId::from_bytes([2; 16]);
    let out = c
        .create_zone(A, z, "example.com", Overlap::Refuse, T)
        .unwrap();
    apply(&mut c, &mut all, out);
    let m = MonitorId::from_bytes([3; 16]);
    let spec = MonitorDraft {
        kind: Some("HTTPS".into()),
        method: Some("GET".into()),
        path: Some("/health".into()),
        header: Some(BTreeMap::from([(
            "Host".into(),
            vec!["www.example.com".into()],
        )])),
        port: Some(8443),
        expected_codes: Some("2xx".into()),
        expected_body: Some("ok".into()),
        follow_redirects: Some(true),
        allow_insecure: Some(true),
        consecutive_up: Some(2),
        consecutive_down: Some(3),
        probe_zone: Some("example.com".into()),
        description: Some("api".into()),
        ..Default::default()
    }
    .validate()
    .unwrap();
    let out = c.create_monitor(A, m, spec, T).unwrap();
    apply(&mut c, &mut all, out);
    let p = PoolId::from_bytes([4; 16]);
    let (spec, monitor) = PoolDraft {
        name: Some("eu".into()),
        origins: Some(vec![
            OriginDraft {
                name: Some("a".into()),
                address: Some("192.0.2.1".into()),
                weight: Some(0.5),
                port: Some(8080),
                header: Some(BTreeMap::from([(
                    "Host".into(),
                    vec!["a.example.com".into()],
                )])),
                ..Default::default()
            },
            OriginDraft {
                name: Some("b".into()),
                address: Some("2001:db8::1".into()),
                enabled: Some(false),
                ..Default::default()
            },
        ]),
        minimum_origins: Some(1),
        monitor: Some(m.to_string()),
        check_regions: Some(vec!["WEU".into(), "ENAM".into()]),
        description: Some("europe".into()),
        latitude: Some(52.37),
        longitude: Some(4.89),
        origin_steering_policy: Some("hash".into()),
        notification_email: Some("ops@example.com".into()),
        ..Default::default()
    }
    .validate()
    .unwrap();
    let out = c.create_pool(A, p, spec, monitor, T).unwrap();
    apply(&mut c, &mut all, out);
    let g = MonitorGroupId::from_bytes([9; 16]);
    let group = MonitorGroupDraft {
        description: Some("checks".into()),
        members: Some(vec![MemberDraft {
            monitor_id: Some(m.to_string()),
            must_be_healthy: Some(true),
            ..Default::default()
        }]),
    }
    .validate()
    .unwrap();
    let out = c.create_monitor_group(A, g, group, T).unwrap();
    apply(&mut c, &mut all, out);
    let (spec, checks) = PoolDraft {
        name: Some("grouped".into()),
        origins: Some(vec![OriginDraft {
            name: Some("c".into()),
            address: Some("192.0.2.3".into()),
            ..Default::default()
        }]),
        monitor_group: Some(g.to_string()),
        ..Default::default()
    }
    .validate()
    .unwrap();
    let out = c
        .create_pool(A, PoolId::from_bytes([10; 16]), spec, checks, T)
        .unwrap();
    apply(&mut c, &mut all, out);
    let lb = LoadBalancerDraft {
        name: Some("www.example.com".into()),
        default_pools: Some(vec![p.to_string()]),
        fallback_pool: Some(p.to_string()),
        region_pools: Some(BTreeMap::from([("WEU".into(), vec![p.to_string()])])),
        country_pools: Some(BTreeMap::from([("NL".into(), vec![p.to_string()])])),
        pop_pools: Some(BTreeMap::from([("AMS".into(), vec![p.to_string()])])),
        steering_policy: Some("geo".into()),
        session_affinity: Some("cookie".into()),
        session_affinity_ttl: Some(3600),
        session_affinity_attributes: Some(AffinityAttributesDraft {
            samesite: Some("Strict".into()),
            zero_downtime_failover: Some("sticky".into()),
            ..Default::default()
        }),
        proxied: Some(true),
        description: Some("front".into()),
        rules: Some(vec![
            RuleDraft {
                name: Some("api".into()),
                condition: Some(r#"starts_with(http.request.uri.path, "/api/")"#.into()),
                priority: Some(10),
                overrides: Some(OverridesDraft {
                    default_pools: Some(vec![p.to_string()]),
                    location_mode: Some("resolver_ip".into()),
                    random_steering: true,
                    random_default_weight: Some(0.5),
                    session_affinity: Some("header".into()),
                    session_affinity_attributes: Some(AffinityAttributesDraft {
                        headers: Some(vec!["x-session".into()]),
                        ..Default::default()
                    }),
                    ttl: Some(60),
                    ..Default::default()
                }),
                ..Default::default()
            },
            RuleDraft {
                name: Some("down".into()),
                condition: Some(r#"http.request.uri.path eq "/down""#.into()),
                disabled: Some(true),
                fixed_response: Some(FixedResponseDraft {
                    status_code: Some(503),
                    content_type: Some("text/plain".into()),
                    message_body: Some("maintenance".into()),
                    location: None,
                }),
                ..Default::default()
            },
        ]),
        ..Default::default()
    };
    let out = c
        .create_load_balancer(z, LoadBalancerId::from_bytes([5; 16]), lb, T)
        .unwrap();
    apply(&mut c, &mut all, out);
    let w = WebhookId::from_bytes([6; 16]);
    let spec = WebhookDraft {
        name: Some("pager".into()),
        url: Some("https://hooks.example.com/vantage".into()),
        secret: Some("s3cret".into()),
    }
    .validate()
    .unwrap();
    let out = c.create_webhook(A, w, spec, T).unwrap();
    apply(&mut c, &mut all, out);
    let spec = PolicyDraft {
        name: Some("pool down".into()),
        enabled: Some(true),
        alert_type: Some("load_balancing_health_alert".into()),
        webhooks: Some(vec![w.to_string()]),
        pool_id: Some(vec![p.to_string()]),
        new_health: Some(vec!["Unhealthy".into()]),
        ..Default::default()
    }
    .validate()
    .unwrap();
    let out = c
        .create_policy(A, PolicyId::from_bytes([7; 16]), spec, T)
        .unwrap();
    apply(&mut c, &mut all, out);
    all
}

#[test]
fn every_stored_kind_is_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vantage.db");
    let store = SqliteStore::open(&path, Durability::Power).unwrap();
    let written = everything();
    store.commit(&written).unwrap();
    let key = ProbeKey {
        monitor: MonitorId::from_bytes([3; 16]),
        address: "192.0.2.1".into(),
        port: 8080,
        host: Some("a.example.com".into()),
    };
    let here = Location {
        region: RegionCode::Weu,
        name: "ams1".into(),
    };
    let state = LocationState {
        verdict: Verdict::Unhealthy,
        streak: 0,
        last: Some(CheckResult {
            healthy: false,
            reason: FailureReason::TcpTimeout,
            response_code: None,
            rtt_micros: Some(1500),
        }),
        last_at: Some(T),
        latency: None,
    };
    let event = vantage_core::health::Event {
        at: T,
        account: A,
        pool: PoolId::from_bytes([4; 16]),
        pool_name: "eu".into(),
        pool_healthy: Verdict::Unhealthy,
        pool_was: Verdict::Healthy,
        pool_changed: true,
        minimum_origins: 1,
        origins: vec![vantage_core::health::engine::OriginEvent {
            name: "a".into(),
            address: "192.0.2.1".into(),
            enabled: true,
            healthy: Verdict::Unhealthy,
            was: Verdict::Healthy,
            reason: FailureReason::TcpTimeout,
        }],
    };
    let alert = NewDelivery {
        account: A,
        policy: PolicyId::from_bytes([7; 16]),
        policy_name: "pool down".into(),
        webhook: WebhookId::from_bytes([6; 16]),
        payload: "{\"text\":\"eu is unhealthy\"}".into(),
        at: T,
    };
    let health = vec![(key, here, state)];
    store
        .record_health(&health, std::slice::from_ref(&event), &[alert])
        .unwrap();
    drop(store);

    // Read back as raw rows, as a later binary would find them.
    let db = rusqlite::Connection::open(&path).unwrap();
    let mut rows: BTreeMap<String, Value> = BTreeMap::new();
    for table in vantage_store::KINDS
        .into_iter()
        .chain(["location_states", "health_events"])
    {
        let mut stmt = db.prepare(&format!("SELECT doc FROM {table}")).unwrap();
        let docs: Vec<Value> = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .map(|d| serde_json::from_str(&d.unwrap()).unwrap())
            .collect();
        rows.insert(table.into(), Value::Array(docs));
    }
    let mut stmt = db.prepare("SELECT * FROM outbox").unwrap();
    let names: Vec<String> = stmt
        .column_names()
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let outbox: Vec<Value> = stmt
        .query_map([], |r| {
            let mut o = serde_json::Map::new();
            for (i, n) in names.iter().enumerate() {
                let v: rusqlite::types::Value = r.get(i)?;
                let v = match v {
                    rusqlite::types::Value::Null => Value::Null,
                    rusqlite::types::Value::Integer(n) => Value::from(n),
                    rusqlite::types::Value::Real(f) => Value::from(f),
                    rusqlite::types::Value::Text(t) => Value::from(t),
                    rusqlite::types::Value::Blob(b) => Value::from(format!("{b:?}")),
                };
                o.insert(n.clone(), v);
            }
            Ok(Value::Object(o))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    rows.insert("outbox".into(), Value::Array(outbox));
    let version: i64 = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    rows.insert("schema_version".into(), Value::from(version));

    let text = serde_json::to_string_pretty(&rows).unwrap() + "\n";
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/rows.json");
    if std::env::var_os("VANTAGE_UPDATE_SNAPSHOT").is_some() {
        std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
        std::fs::write(&golden, &text).unwrap();
    }
    let pinned = std::fs::read_to_string(&golden).unwrap_or_default();
    assert!(
        pinned == text,
        "the stored rows changed (see {}); rows outlive binaries: migrate or keep reading the old shape",
        golden.display()
    );
    // And what is pinned loads: a store over exactly these rows reads every object back.
    let reopened = SqliteStore::open(&path, Durability::Power).unwrap();
    let debug = |changes: Vec<Change>| {
        let mut all: Vec<String> = changes.iter().map(|c| format!("{c:?}")).collect();
        all.sort();
        all
    };
    assert_eq!(
        debug(reopened.load().unwrap()),
        debug(written),
        "every object reads back exactly as written"
    );
    assert_eq!(reopened.load_health().unwrap(), health);
    let events = reopened
        .events(&vantage_store::EventFilter {
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].1, event);
}
