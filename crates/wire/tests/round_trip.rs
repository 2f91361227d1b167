//! What Vantage renders, a client can send back unchanged and get the same object: the
//! property that makes PATCH-by-merge and Terraform's refresh-then-apply safe.

use serde_json::json;
use vantage_core::load_balancer::LoadBalancer;
use vantage_core::monitor::{Monitor, MonitorDraft};
use vantage_core::pool::{Pool, PoolDraft};
use vantage_core::zone::Zone;
use vantage_core::{AccountId, LoadBalancerId, MonitorId, PoolId, Timestamp, ZoneId};
use vantage_wire::{load_balancer, monitor, parse, pool};

const T: Timestamp = Timestamp::from_unix_micros(1_700_000_000_123_456);
const P1: &str = "00000000000000000000000000000001";
const P2: &str = "00000000000000000000000000000002";

#[test]
fn monitor_round_trip() {
    for body in [
        json!({"type": "https", "expected_codes": "2xx,301", "header": {"Host": ["a.example"]}, "allow_insecure": true, "interval": 30, "retries": 0, "timeout": 3}),
        json!({"type": "tcp", "port": 5432, "consecutive_down": 3}),
        json!({"type": "smtp", "port": 25, "description": "mail"}),
    ] {
        let draft: MonitorDraft = parse::typed::<monitor::MonitorIn>(body).unwrap().into();
        let spec = draft.validate().unwrap();
        let m = Monitor {
            id: MonitorId::from_bytes([1; 16]),
            account: AccountId::from_bytes([2; 16]),
            spec,
            created_on: T,
            modified_on: T,
        };
        let rendered = monitor::render(&m);
        let again: MonitorDraft = parse::typed::<monitor::MonitorIn>(rendered).unwrap().into();
        assert_eq!(again.validate().unwrap(), m.spec);
    }
}

#[test]
fn pool_round_trip() {
    for body in [
        json!({"name": "p", "origins": [{"name": "a", "address": "192.0.2.1", "weight": 0.35, "header": {"Host": ["x.example"]}}]}),
        json!({"name": "p", "origins": [{"name": "a", "address": "::1", "enabled": false}], "check_regions": ["WEU", "ENAM"],
               "latitude": 52.5, "longitude": 13.4, "notification_filter": null, "origin_steering": {"policy": "hash"},
               "load_shedding": {"default_percent": 0, "default_policy": "hash"}}),
        json!({"name": "p", "origins": [{"name": "a", "address": "o.example"}], "check_regions": ["ALL_REGIONS"], "enabled": false}),
    ] {
        let (spec, _) = PoolDraft::from(parse::typed::<pool::PoolIn>(body).unwrap())
            .validate()
            .unwrap();
        let p = Pool {
            id: PoolId::from_bytes([1; 16]),
            account: AccountId::from_bytes([2; 16]),
            spec,
            created_on: T,
            modified_on: T,
            disabled_at: None,
        };
        let rendered = pool::render(&p);
        let (again, _) = PoolDraft::from(parse::typed::<pool::PoolIn>(rendered).unwrap())
            .validate()
            .unwrap();
        assert_eq!(again, p.spec);
    }
}

#[test]
fn load_balancer_round_trip() {
    let exists = |_: PoolId| true;
    let zone = Zone {
        id: ZoneId::from_bytes([3; 16]),
        account: AccountId::from_bytes([2; 16]),
        name: "example.com".into(),
        created_on: T,
        modified_on: T,
        overlap_allowed: false,
    };
    for body in [
        json!({"name": "www.example.com", "default_pools": [P1, P2], "fallback_pool": P2}),
        json!({"name": "*.example.com", "default_pools": [P1], "fallback_pool": P2, "steering_policy": "random",
               "random_steering": {"default_weight": 0.5, "pool_weights": {P1: 0.2}}, "region_pools": {"WEU": [P1]},
               "country_pools": {"us": [P2]}, "pop_pools": {"LAX": [P1]}, "session_affinity": "header",
               "session_affinity_attributes": {"headers": ["x-user"], "zero_downtime_failover": "sticky"},
               "rules": [{"name": "r1", "condition": "http.request.uri.path contains \"/v2\""}], "proxied": true, "ttl": 60.0}),
    ] {
        let draft = parse::typed::<load_balancer::LoadBalancerIn>(body)
            .unwrap()
            .into_draft()
            .unwrap();
        let spec = draft.validate("example.com", &exists).unwrap();
        let lb = LoadBalancer {
            id: LoadBalancerId::from_bytes([1; 16]),
            zone: zone.id,
            spec,
            created_on: T,
            modified_on: T,
        };
        let rendered = load_balancer::render(&lb, &zone);
        let again = parse::typed::<load_balancer::LoadBalancerIn>(rendered)
            .unwrap()
            .into_draft()
            .unwrap();
        assert_eq!(again.validate("example.com", &exists).unwrap(), lb.spec);
    }
}
