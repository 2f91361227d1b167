//! The documents the store writes, pinned: rows outlive the binary that wrote them, so a
//! renamed or retyped field would silently fail to load (or load wrong) after an upgrade.
//! Each kind is pinned as written today, and rows written by earlier versions must still read.
#![allow(clippy::unwrap_used)]

use serde_json::json;
use vantage_core::auth::{AgentBinding, SecretDigest, Token, TokenKind, TokenStatus};
use vantage_core::health::check::{CheckResult, FailureReason};
use vantage_core::health::{Location, LocationState};
use vantage_core::region::RegionCode;
use vantage_core::zone::Zone;
use vantage_core::{AccountId, Timestamp, TokenId, ZoneId};
use vantage_store::rows::{LocationStateRow, TokenRow, ZoneRow};

const T: Timestamp = Timestamp::from_unix_micros(1_764_547_200_000_000);

fn row<V: serde::Serialize>(v: &V) -> serde_json::Value {
    serde_json::to_value(v).unwrap()
}

#[test]
fn zones_are_pinned_and_old_rows_read() {
    let zone = Zone {
        id: ZoneId::from_bytes([1; 16]),
        account: AccountId::from_bytes([2; 16]),
        name: "example.com".into(),
        created_on: T,
        modified_on: T,
        overlap_allowed: false,
    };
    let written = json!({"id": "01010101010101010101010101010101", "account": "02020202020202020202020202020202",
                         "name": "example.com", "created_on": T.unix_micros(), "modified_on": T.unix_micros()});
    assert_eq!(
        row(&ZoneRow::from(&zone)),
        written,
        "the flag is left out while false"
    );
    let delegated = Zone {
        overlap_allowed: true,
        ..zone.clone()
    };
    assert_eq!(row(&ZoneRow::from(&delegated))["overlap_allowed"], true);
    let read: Zone = serde_json::from_value::<ZoneRow>(written).unwrap().into();
    assert_eq!(
        read, zone,
        "a row from before delegation reads as not delegated"
    );
}

#[test]
fn agent_tokens_are_pinned_and_unbound_old_rows_read() {
    let token = Token {
        id: TokenId::from_bytes([3; 16]),
        name: "ams1".into(),
        digest: SecretDigest([0xab; 32]),
        status: TokenStatus::Active,
        grants: vec![],
        issued_on: T,
        modified_on: T,
        expires_on: None,
        kind: TokenKind::Agent,
        agent: Some(AgentBinding {
            location: Location {
                region: RegionCode::Weu,
                name: "ams1".into(),
            },
            accounts: vec![AccountId::from_bytes([2; 16])],
        }),
    };
    let written = row(&TokenRow::from(&token));
    assert_eq!(
        written["agent"],
        // Regions are stored by their variant name (`Weu`), not the API code (`WEU`).
        json!({"location": {"region": "Weu", "name": "ams1"}, "accounts": ["02020202020202020202020202020202"]})
    );
    assert_eq!(
        written["kind"], "Agent",
        "kinds too are stored by variant name"
    );
    assert_eq!(written["digest"], "ab".repeat(32));
    // Written before bindings (and before token kinds): an unbound agent token, an API token.
    let mut old = written.clone();
    old.as_object_mut().unwrap().remove("agent");
    let read: Token = serde_json::from_value::<TokenRow>(old.clone())
        .unwrap()
        .into();
    assert_eq!(read.agent, None);
    old.as_object_mut().unwrap().remove("kind");
    let read: Token = serde_json::from_value::<TokenRow>(old).unwrap().into();
    assert_eq!(read.kind, TokenKind::Api);
}

#[test]
fn location_states_are_pinned() {
    let state = LocationState {
        verdict: vantage_core::health::Verdict::Unhealthy,
        streak: 1,
        last: Some(CheckResult {
            healthy: false,
            reason: FailureReason::TcpTimeout,
            response_code: None,
            rtt_micros: None,
        }),
        last_at: Some(T),
        latency: None,
    };
    assert_eq!(
        row(&LocationStateRow::from(&state)),
        json!({"verdict": false, "streak": 1, "last_at": T.unix_micros(),
               "last": {"healthy": false, "reason": "TcpTimeout", "response_code": null, "rtt_micros": null}})
    );
}

#[test]
fn rows_that_make_no_valid_value_are_refused_naming_the_row() {
    let pool = serde_json::json!({
        "id": "04040404040404040404040404040404", "account": "01010101010101010101010101010101",
        "created_on": 1, "modified_on": 1, "disabled_at": null,
        "spec": {"name": "eu", "minimum_origins": 1, "monitor": null, "check_regions": "AllRegions",
                 "enabled": true, "description": "", "coordinates": null, "origin_steering": "Random",
                 "load_shedding": {"default_percent": 0.0, "default_policy": "Random",
                                   "session_percent": 0.0, "session_policy": "Hash"},
                 "notification_email": "", "notification_filter": null,
                 "origins": [{"name": "a", "address": "192.0.2.1", "enabled": true, "weight": 100,
                              "port": 0, "host": null}]}
    });
    let read =
        |v: &serde_json::Value| vantage_store::rows::decode_object("pools", "p1", &v.to_string());
    assert!(read(&pool).is_ok(), "{:?}", read(&pool).err());
    let mut heavy = pool.clone();
    heavy["spec"]["origins"][0]["weight"] = 101.into();
    let err = read(&heavy).unwrap_err().to_string();
    assert!(
        err.contains("pools row p1") && err.contains("weight 101"),
        "{err}"
    );
    let mut renamed = pool.clone();
    renamed["spec"]["origin_steering"] = "round_robin".into();
    let err = read(&renamed).unwrap_err().to_string();
    assert!(
        err.contains("pools row p1") && err.contains("round_robin"),
        "{err}"
    );
    let monitor = serde_json::json!({
        "id": "03030303030303030303030303030303", "account": "01010101010101010101010101010101",
        "created_on": 1, "modified_on": 1,
        "spec": {"kind": "Http", "method": "GET", "path": "/", "header": {}, "port": 0, "timeout": 5,
                 "retries": 2, "interval": 60, "expected_codes": "2xx,banana", "expected_body": "",
                 "follow_redirects": false, "allow_insecure": false, "consecutive_up": 1,
                 "consecutive_down": 1, "probe_zone": "", "description": ""}
    });
    let err = vantage_store::rows::decode_object("monitors", "m1", &monitor.to_string())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("monitors row m1") && err.contains("2xx,banana"),
        "{err}"
    );
}

#[test]
fn published_verdicts_are_pinned_and_read_back() {
    use vantage_core::health::{Decided, DecidedOrigin, RegionVerdicts, Verdict};
    let regions: RegionVerdicts = [
        (RegionCode::Weu, Verdict::Healthy),
        (RegionCode::Enam, Verdict::Unknown),
    ]
    .into_iter()
    .collect();
    let decided = Decided {
        pool: vantage_core::PoolId::from_bytes([3; 16]),
        healthy: Verdict::Unhealthy,
        regions,
        origins: vec![DecidedOrigin {
            name: "web-1".into(),
            healthy: Verdict::Unhealthy,
            reason: FailureReason::TcpConnectionFailed,
            regions,
        }],
    };
    let text = vantage_store::rows::encode_decided(&decided).unwrap();
    let regions = json!([{"region": "Enam", "healthy": null}, {"region": "Weu", "healthy": true}]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&text).unwrap(),
        json!({"pool": "03030303030303030303030303030303", "healthy": false, "regions": regions,
               "origins": [{"name": "web-1", "healthy": false, "reason": "TcpConnectionFailed",
                            "regions": regions}]})
    );
    assert_eq!(
        vantage_store::rows::decode_decided("p", &text).unwrap(),
        decided
    );
}

#[test]
fn published_contacts_are_pinned_and_read_back() {
    use vantage_core::health::engine::LocationContact;
    let contacts = vec![(
        Location {
            region: RegionCode::Weu,
            name: "ams".into(),
        },
        LocationContact {
            last_seen: T,
            silent: true,
        },
    )];
    let text = vantage_store::rows::encode_contacts(&contacts).unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&text).unwrap(),
        json!([{"location": {"region": "Weu", "name": "ams"}, "last_seen": T.unix_micros(), "silent": true}])
    );
    assert_eq!(
        vantage_store::rows::decode_contacts(&text).unwrap(),
        contacts
    );
}

#[test]
fn published_pool_rtts_are_pinned_and_read_back() {
    use vantage_core::routing::PoolRtt;
    let rtts = vec![(
        vantage_core::PoolId::from_bytes([4; 16]),
        PoolRtt {
            anywhere: Some(12.5),
            by_region: [(RegionCode::Weu, 3.25)].into_iter().collect(),
        },
    )];
    let text = vantage_store::rows::encode_rtts(&rtts).unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&text).unwrap(),
        json!([{"pool": "04040404040404040404040404040404", "anywhere": 12.5,
                "by_region": [["Weu", 3.25]]}])
    );
    assert_eq!(vantage_store::rows::decode_rtts(&text).unwrap(), rtts);
}
