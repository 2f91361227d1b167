//! One account, one HTTP monitor (interval 60 s, timeout 5 s, retries 2: a vote stays fresh
//! 3 × 60 + 5 × 3 = 195 s) and one pool of one origin, for the engine tests.
#![allow(dead_code, clippy::unwrap_used)]

use vantage_core::catalog::{Catalog, Change};
use vantage_core::health::check::{CheckResult, FailureReason};
use vantage_core::health::ProbeKey;
use vantage_core::monitor::MonitorDraft;
use vantage_core::pool::{OriginDraft, PoolDraft};
use vantage_core::region::CheckRegions;
use vantage_core::{AccountId, MonitorId, PoolId, Timestamp};

pub const ACCOUNT: AccountId = AccountId::from_bytes([1; 16]);
pub const MONITOR: MonitorId = MonitorId::from_bytes([2; 16]);
pub const POOL: PoolId = PoolId::from_bytes([3; 16]);

pub fn secs(s: i64) -> Timestamp {
    Timestamp::from_unix_micros(s * 1_000_000)
}

fn apply(c: &mut Catalog, changes: Vec<Change>) {
    for ch in changes {
        c.apply(ch);
    }
}

/// The catalog, checked from `regions`, and the probe target of its one origin.
pub fn world(regions: CheckRegions) -> (Catalog, ProbeKey) {
    let mut c = Catalog::default();
    let changes = c.create_account(ACCOUNT, "a".into(), secs(0)).unwrap();
    apply(&mut c, changes);
    let spec = MonitorDraft {
        expected_codes: Some("200".into()),
        ..Default::default()
    }
    .validate()
    .unwrap();
    let changes = c.create_monitor(ACCOUNT, MONITOR, spec, secs(0)).unwrap();
    apply(&mut c, changes);
    let (mut spec, mon) = PoolDraft {
        name: Some("p".into()),
        origins: Some(vec![OriginDraft {
            name: Some("o".into()),
            address: Some("192.0.2.1".into()),
            ..Default::default()
        }]),
        monitor: Some(MONITOR.to_string()),
        ..Default::default()
    }
    .validate()
    .unwrap();
    spec.check_regions = regions;
    let changes = c.create_pool(ACCOUNT, POOL, spec, mon, secs(0)).unwrap();
    apply(&mut c, changes);
    let key = ProbeKey {
        monitor: MONITOR,
        address: "192.0.2.1".into(),
        port: 0,
        host: None,
    };
    (c, key)
}

/// A passing check.
pub fn ok() -> CheckResult {
    CheckResult {
        healthy: true,
        reason: FailureReason::None,
        response_code: Some(200),
        rtt_micros: Some(1_000),
    }
}
