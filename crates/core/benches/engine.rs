//! Verdict updates per second: a stream of check results over 10,000 origins (157 pools of up
//! to 64 origins, 3 locations), fed to the engine as the controller does.
//! Run: `cargo bench -p vantage-core --bench engine`
// The harness reads files and the clock; the core it drives does not.
#![allow(
    clippy::unwrap_used,
    clippy::disallowed_methods,
    clippy::disallowed_types
)]

use std::time::Instant;

mod common;

use vantage_core::catalog::Catalog;
use vantage_core::health::check::{CheckResult, FailureReason};
use vantage_core::health::{Engine, Location, ProbeKey};
use vantage_core::monitor::MonitorDraft;
use vantage_core::pool::{OriginDraft, PoolDraft};
use vantage_core::region::RegionCode;
use vantage_core::{AccountId, MonitorId, PoolId, Timestamp};

const ORIGINS: usize = 10_000;

fn main() {
    let t = Timestamp::from_unix_micros(0);
    let a = AccountId::from_bytes([1; 16]);
    let m = MonitorId::from_bytes([2; 16]);
    let mut c = Catalog::default();
    for ch in c.create_account(a, "a".into(), t).unwrap() {
        c.apply(ch);
    }
    let spec = MonitorDraft {
        expected_codes: Some("200".into()),
        consecutive_down: Some(2),
        ..Default::default()
    }
    .validate()
    .unwrap();
    for ch in c.create_monitor(a, m, spec, t).unwrap() {
        c.apply(ch);
    }
    let addr = |i: usize| format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256);
    for p in 0..ORIGINS.div_ceil(64) {
        let origins = (p * 64..((p + 1) * 64).min(ORIGINS))
            .map(|i| OriginDraft {
                name: Some(format!("o{i}")),
                address: Some(addr(i)),
                ..Default::default()
            })
            .collect();
        let (spec, mon) = PoolDraft {
            name: Some(format!("p{p}")),
            origins: Some(origins),
            monitor: Some(m.to_string()),
            ..Default::default()
        }
        .validate()
        .unwrap();
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&(p as u64 + 1).to_be_bytes());
        for ch in c
            .create_pool(a, PoolId::from_bytes(id), spec, mon, t)
            .unwrap()
        {
            c.apply(ch);
        }
    }
    let mut engine = Engine::new(&c.health_plan(), [], Timestamp::from_unix_micros(0));
    let keys: Vec<ProbeKey> = (0..ORIGINS)
        .map(|i| ProbeKey {
            monitor: m,
            address: addr(i),
            port: 0,
            host: None,
        })
        .collect();
    let locations: Vec<Location> = ["a", "b", "c"]
        .iter()
        .map(|n| Location {
            region: RegionCode::Weu,
            name: (*n).to_owned(),
        })
        .collect();

    // A deterministic stream: mostly passes, with a failing streak now and then so verdicts flip.
    // Counted: six rounds, so the failing streak of round 5 flips verdicts too.
    let rounds = common::repeat(30, 6);
    let mut flips = 0usize;
    let start = Instant::now();
    for round in 0..rounds {
        for (i, key) in keys.iter().enumerate() {
            for (l, loc) in locations.iter().enumerate() {
                let healthy = !((i + l) % 97 == 0 && (round / 5) % 2 == 1);
                let result = CheckResult {
                    healthy,
                    reason: if healthy {
                        FailureReason::None
                    } else {
                        FailureReason::TcpTimeout
                    },
                    response_code: None,
                    rtt_micros: Some(1000),
                };
                let (changed, events) =
                    engine.record(loc, key, result, Timestamp::from_unix_micros(round as i64));
                flips += usize::from(changed.is_some()) + events.len();
            }
        }
    }
    let elapsed = start.elapsed();
    let n = rounds * ORIGINS * locations.len();
    println!(
        "engine: {n} results over {ORIGINS} origins x {} locations in {:.3} s = {:.0} verdict updates/s ({:.2} us each; {flips} verdict changes and events)",
        locations.len(),
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / n as f64
    );
}
