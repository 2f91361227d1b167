//! One steering decision for a load balancer of 5 pools x 10 origins (random pool weights,
//! random origin weights), single thread. Run: `cargo bench -p vantage-core --bench steering`
// The harness reads files and the clock; the core it drives does not.
#![allow(
    clippy::unwrap_used,
    clippy::disallowed_methods,
    clippy::disallowed_types
)]

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;

mod common;

use vantage_core::load_balancer::LoadBalancerDraft;
use vantage_core::pool::{LoadShedding, OriginSteeringPolicy, Weight};
use vantage_core::steering::{steer, Context, Decision, OriginView, PoolView};
use vantage_core::PoolId;

fn main() {
    let id = |i: u8| PoolId::from_bytes([i + 1; 16]);
    let spec = LoadBalancerDraft {
        name: Some("www.example.com".into()),
        default_pools: Some((0..4).map(|i| id(i).to_string()).collect()),
        fallback_pool: Some(id(4).to_string()),
        steering_policy: Some("random".into()),
        random_pool_weights: Some((0..4).map(|i| (id(i).to_string(), 0.25)).collect()),
        ..Default::default()
    }
    .validate("example.com", &|_| true)
    .unwrap();
    let views: HashMap<PoolId, PoolView> = (0..5)
        .map(|i| {
            let origins = (0..10u8)
                .map(|o| OriginView {
                    enabled: true,
                    healthy: o % 7 != 0,
                    weight: Weight::from_f64(f64::from(o + 1) / 10.0).unwrap(),
                    disabled_at: None,
                })
                .collect();
            (
                id(i),
                PoolView {
                    enabled: true,
                    healthy: i != 1,
                    coordinates: None,
                    origin_steering: OriginSteeringPolicy::Random,
                    origins,
                    shedding: LoadShedding::default(),
                },
            )
        })
        .collect();
    let mut ctx = Context::default();
    let n = common::repeat(5_000_000, 20_000) as u64;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut picked = 0u64;
    let start = Instant::now();
    for _ in 0..n {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        ctx.random = seed;
        if let Decision::Pool { origin, .. } =
            black_box(steer(black_box(&spec), black_box(&views), &ctx))
        {
            picked += origin as u64;
        }
    }
    let elapsed = start.elapsed();
    println!(
        "steering: {n} decisions (5 pools x 10 origins, random/random) in {:.3} s = {:.0} ns each (goal <= 1000 ns) [checksum {picked}]",
        elapsed.as_secs_f64(),
        elapsed.as_nanos() as f64 / n as f64
    );
}
