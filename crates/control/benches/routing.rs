//! How the routing snapshot's cost grows with load balancers: the time to build it from the
//! catalog (what the controller does on every change), the time an edge takes to make its
//! routing table from it, and its size as the edge protocol sends it whole.
//! Each load balancer has a pool of its own (two origins) and shares one fallback pool.
//! Run: `cargo bench -p vantage-control --bench routing [-- N ...]` (default 100 to 20,000);
//! prints one `RESULT routing` line per size, which `bench/curves.sh` plots.
// The harness reads the clock; the core it drives does not.
#![allow(
    clippy::unwrap_used,
    clippy::disallowed_methods,
    clippy::disallowed_types
)]

use std::time::Instant;

use vantage_control::edge_protocol::SnapshotV1;
use vantage_core::catalog::Catalog;
use vantage_core::health::HealthView;
use vantage_core::load_balancer::LoadBalancerDraft;
use vantage_core::pool::{OriginDraft, PoolDraft};
use vantage_core::routing::{RoutingTable, Rtts, Snapshot};
use vantage_core::zone::Overlap;
use vantage_core::{AccountId, LoadBalancerId, PoolId, Timestamp, ZoneId};

/// Builds per size, of which the median is reported.
const RUNS: usize = 5;

fn id(kind: u8, n: usize) -> [u8; 16] {
    let mut id = [kind; 16];
    id[8..].copy_from_slice(&(n as u64).to_be_bytes());
    id
}

fn apply(c: &mut Catalog, changes: Vec<vantage_core::catalog::Change>) {
    for ch in changes {
        c.apply(ch);
    }
}

fn pool(c: &mut Catalog, a: AccountId, n: usize) -> PoolId {
    let origins = (0..2)
        .map(|o| OriginDraft {
            name: Some(format!("o{o}")),
            address: Some(format!("10.{}.{}.{}", (n >> 8) & 255, n & 255, o + 1)),
            ..Default::default()
        })
        .collect();
    let (spec, monitor) = PoolDraft {
        name: Some(format!("p{n}")),
        origins: Some(origins),
        ..Default::default()
    }
    .validate()
    .unwrap();
    let pid = PoolId::from_bytes(id(2, n));
    let changes = c.create_pool(a, pid, spec, monitor, Timestamp::from_unix_micros(0));
    apply(c, changes.unwrap());
    pid
}

fn catalog(load_balancers: usize) -> Catalog {
    let t = Timestamp::from_unix_micros(0);
    let a = AccountId::from_bytes([1; 16]);
    let z = ZoneId::from_bytes([3; 16]);
    let mut c = Catalog::default();
    // One account far past the default quotas: the curve is about the snapshot, not them.
    c.set_quotas(vantage_core::catalog::Quotas::unlimited());
    let changes = c.create_account(a, "a".into(), t).unwrap();
    apply(&mut c, changes);
    let changes = c
        .create_zone(a, z, "example.com", Overlap::Refuse, t)
        .unwrap();
    apply(&mut c, changes);
    let fallback = pool(&mut c, a, usize::MAX >> 1);
    for n in 0..load_balancers {
        let own = pool(&mut c, a, n);
        let draft = LoadBalancerDraft {
            name: Some(format!("lb{n}.example.com")),
            default_pools: Some(vec![own.to_string()]),
            fallback_pool: Some(fallback.to_string()),
            ..Default::default()
        };
        let lb = LoadBalancerId::from_bytes(id(4, n));
        let changes = c.create_load_balancer(z, lb, draft, t).unwrap();
        apply(&mut c, changes);
    }
    c
}

fn median(mut micros: Vec<f64>) -> f64 {
    micros.sort_by(f64::total_cmp);
    micros[micros.len() / 2]
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![100, 500, 1_000, 2_000, 5_000, 10_000, 20_000]
    } else {
        sizes
    };
    let health = HealthView::default();
    for n in sizes {
        let c = catalog(n);
        let build = || {
            Snapshot::build(
                &c,
                &health,
                Rtts::Measured(&|_, _| None),
                &[],
                b"bench",
                None,
                Timestamp::from_unix_micros(1),
            )
        };
        let mut builds = Vec::new();
        let mut tables = Vec::new();
        let mut snapshot = build();
        for _ in 0..RUNS {
            let t0 = Instant::now();
            snapshot = build();
            builds.push(t0.elapsed().as_secs_f64() * 1e6);
            let t0 = Instant::now();
            let table = RoutingTable::new(&snapshot, None);
            tables.push(t0.elapsed().as_secs_f64() * 1e6);
            drop(table);
        }
        let bytes = serde_json::to_vec(&SnapshotV1::from_core(&snapshot))
            .unwrap()
            .len();
        println!(
            "RESULT routing load_balancers={n} build_us={:.0} table_us={:.0} snapshot_bytes={bytes}",
            median(builds),
            median(tables)
        );
    }
}
