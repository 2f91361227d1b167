//! Steering properties over thousands of generated load balancers and requests.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::IpAddr;

use proptest::prelude::*;
use vantage_core::load_balancer::{LoadBalancerDraft, LoadBalancerSpec};
use vantage_core::pool::{LoadShedding, OriginSteeringPolicy, Weight};
use vantage_core::steering::{retry, steer, Context, Decision, OriginView, PoolView};
use vantage_core::PoolId;

fn id(i: usize) -> PoolId {
    let mut b = [0u8; 16];
    b[15] = i as u8 + 1;
    PoolId::from_bytes(b)
}

fn lb(policy: &str, n: usize, weights: Option<Vec<f64>>) -> LoadBalancerSpec {
    let draft = LoadBalancerDraft {
        name: Some("www.example.com".into()),
        default_pools: Some((0..n - 1).map(|i| id(i).to_string()).collect()),
        fallback_pool: Some(id(n - 1).to_string()),
        steering_policy: Some(policy.into()),
        random_pool_weights: weights.map(|w| {
            w.into_iter()
                .enumerate()
                .map(|(i, w)| (id(i).to_string(), w))
                .collect()
        }),
        ..Default::default()
    };
    draft.validate("example.com", &|_| true).unwrap()
}

fn origin(enabled: bool, healthy: bool, weight: u8) -> OriginView {
    OriginView {
        enabled,
        healthy,
        weight: Weight::from_f64(f64::from(weight) / 100.0).unwrap(),
        disabled_at: None,
    }
}

fn pool(enabled: bool, healthy: bool, origins: Vec<OriginView>) -> PoolView {
    PoolView {
        enabled,
        healthy,
        coordinates: None,
        origin_steering: OriginSteeringPolicy::Random,
        origins,
        shedding: LoadShedding::default(),
    }
}

fn arb_pool() -> impl Strategy<Value = PoolView> {
    (
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec((any::<bool>(), any::<bool>(), 0u8..=100), 1..5),
    )
        .prop_map(|(e, h, os)| {
            pool(
                e,
                h,
                os.into_iter().map(|(e, h, w)| origin(e, h, w)).collect(),
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn healthy_first_and_fallback_exactly_when_all_out(
        pools in prop::collection::vec(arb_pool(), 2..6),
        policy in prop::sample::select(vec!["off", "random", "dynamic_latency", "proximity", "least_outstanding_requests", "least_connections", ""]),
        random in any::<u64>(),
    ) {
        let n = pools.len();
        let spec = lb(policy, n, None);
        let views: HashMap<PoolId, PoolView> = pools.iter().cloned().enumerate().map(|(i, p)| (id(i), p)).collect();
        let ctx = Context { random, ..Default::default() };
        let any_usable = (0..n - 1).any(|i| views[&id(i)].usable());
        match steer(&spec, &views, &ctx) {
            Decision::Pool { pool, origin } => {
                prop_assert!(any_usable);
                let p = &views[&pool];
                prop_assert!(p.usable(), "picked an unusable pool");
                prop_assert!(p.origins[origin].eligible(), "picked an ineligible origin");
                prop_assert!(pool != id(n - 1) || spec.default_pools.contains(&pool));
            }
            Decision::Fallback { pool, origin } => {
                prop_assert!(!any_usable, "fell back while a pool was usable");
                prop_assert_eq!(pool, id(n - 1));
                let o = &views[&pool].origins[origin];
                prop_assert!(o.enabled && o.weight.hundredths() > 0);
                let healthy_there = views[&pool].origins.iter().any(|o| o.eligible());
                prop_assert!(!healthy_there || o.eligible(), "the fallback prefers its healthy origins");
            }
            Decision::Nowhere => {
                prop_assert!(!any_usable);
                let f = &views[&id(n - 1)];
                prop_assert!(!f.enabled || !f.origins.iter().any(|o| o.enabled && o.weight.hundredths() > 0));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Zero-downtime failover: a retry never goes back to the origin that failed, stays in
    /// its pool without `failover_across_pools`, and leaves the pool only when no other origin
    /// there can take it.
    #[test]
    fn retries_avoid_the_failed_origin(
        pools in prop::collection::vec(arb_pool(), 2..6),
        across in any::<bool>(),
        random in any::<u64>(),
    ) {
        let n = pools.len();
        let mut spec = lb("off", n, None);
        spec.failover_across_pools = across;
        let views: HashMap<PoolId, PoolView> = pools.iter().cloned().enumerate().map(|(i, p)| (id(i), p)).collect();
        let ctx = Context { random, ..Default::default() };
        let Some(failed) = steer(&spec, &views, &ctx).target() else { return Ok(()) };
        let again = retry(&spec, &views, &ctx, failed);
        let others_there = views[&failed.0].origins.iter().enumerate()
            .any(|(i, o)| i != failed.1 && o.eligible());
        match again.target() {
            Some(t) => {
                prop_assert_ne!(t, failed, "retried on the origin that failed");
                if t.0 != failed.0 {
                    prop_assert!(across, "left the pool without failover_across_pools");
                    prop_assert!(!others_there, "left the pool while it had another origin");
                }
                let o = &views[&t.0].origins[t.1];
                prop_assert!(o.enabled && o.weight.hundredths() > 0);
            }
            None => prop_assert!(!others_there),
        }
    }
}

/// A small deterministic PRNG for the convergence tests (the core takes randomness as input).
fn rng(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[test]
fn random_pool_weights_converge_within_five_percent() {
    let spec = lb("random", 4, Some(vec![0.2, 0.3, 0.5]));
    let healthy = || pool(true, true, vec![origin(true, true, 100)]);
    let views: HashMap<PoolId, PoolView> = (0..4).map(|i| (id(i), healthy())).collect();
    let mut counts = [0usize; 3];
    let mut seed = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..10_000 {
        if let Decision::Pool { pool, .. } = steer(
            &spec,
            &views,
            &Context {
                random: rng(&mut seed),
                ..Default::default()
            },
        ) {
            counts[(0..3).find(|i| id(*i) == pool).unwrap()] += 1;
        }
    }
    for (c, want) in counts.iter().zip([0.2, 0.3, 0.5]) {
        let share = *c as f64 / 10_000.0;
        assert!(
            (share - want).abs() <= want * 0.05,
            "share {share} vs {want}: {counts:?}"
        );
    }
}

#[test]
fn origin_weights_converge_and_hash_is_sticky() {
    let spec = lb("off", 2, None);
    let mut p = pool(
        true,
        true,
        vec![
            origin(true, true, 25),
            origin(true, true, 75),
            origin(true, true, 0),
        ],
    );
    let mut views: HashMap<PoolId, PoolView> = [(id(0), p.clone()), (id(1), p.clone())].into();
    let mut counts = [0usize; 3];
    let mut seed = 42;
    for _ in 0..10_000 {
        if let Decision::Pool { origin, .. } = steer(
            &spec,
            &views,
            &Context {
                random: rng(&mut seed),
                ..Default::default()
            },
        ) {
            counts[origin] += 1;
        }
    }
    assert_eq!(counts[2], 0, "a weight-0 origin gets no traffic");
    let share = counts[1] as f64 / 10_000.0;
    assert!((share - 0.75).abs() <= 0.75 * 0.05, "{counts:?}");

    p.origin_steering = OriginSteeringPolicy::Hash;
    views.insert(id(0), p);
    let ip: IpAddr = "198.51.100.7".parse().unwrap();
    let pick = |random| match steer(
        &spec,
        &views,
        &Context {
            client_ip: Some(ip),
            random,
            ..Default::default()
        },
    ) {
        Decision::Pool { origin, .. } => origin,
        other => panic!("{other:?}"),
    };
    assert!(
        (0..50).all(|r| pick(r) == pick(0)),
        "the same client lands on the same origin"
    );
}

#[test]
fn proximity_and_latency_pick_the_nearest_and_fastest() {
    let mut views: HashMap<PoolId, PoolView> = (0..4)
        .map(|i| (id(i), pool(true, true, vec![origin(true, true, 100)])))
        .collect();
    views.get_mut(&id(0)).unwrap().coordinates = Some((52.52, 13.40)); // Berlin
    views.get_mut(&id(1)).unwrap().coordinates = Some((40.71, -74.01)); // New York
    views.get_mut(&id(2)).unwrap().coordinates = Some((35.68, 139.69)); // Tokyo
    let near_nyc = Context {
        here: Some((39.95, -75.17)),
        ..Default::default()
    }; // Philadelphia
    assert!(
        matches!(steer(&lb("proximity", 4, None), &views, &near_nyc), Decision::Pool { pool, .. } if pool == id(1))
    );
    let fast = Context {
        rtt_ewma: [(id(0), 80.0), (id(1), 20.0), (id(2), 5.0)].into(),
        ..Default::default()
    };
    assert!(
        matches!(steer(&lb("dynamic_latency", 4, None), &views, &fast), Decision::Pool { pool, .. } if pool == id(2))
    );
    views.get_mut(&id(2)).unwrap().healthy = false;
    assert!(
        matches!(steer(&lb("dynamic_latency", 4, None), &views, &fast), Decision::Pool { pool, .. } if pool == id(1)),
        "skips the unhealthy fastest pool"
    );
}

#[test]
fn geo_prefers_pop_then_country_then_region_then_default() {
    let draft = LoadBalancerDraft {
        name: Some("www.example.com".into()),
        default_pools: Some(vec![id(0).to_string()]),
        fallback_pool: Some(id(4).to_string()),
        pop_pools: Some([("AMS".to_owned(), vec![id(1).to_string()])].into()),
        country_pools: Some([("DE".to_owned(), vec![id(2).to_string()])].into()),
        region_pools: Some([("WEU".to_owned(), vec![id(3).to_string()])].into()),
        ..Default::default()
    };
    let spec = draft.validate("example.com", &|_| true).unwrap();
    let mut views: HashMap<PoolId, PoolView> = (0..5)
        .map(|i| (id(i), pool(true, true, vec![origin(true, true, 100)])))
        .collect();
    let at = |pop: Option<&str>, country: Option<&str>, region| Context {
        pop: pop.map(str::to_owned),
        country: country.map(str::to_owned),
        region,
        ..Default::default()
    };
    let chosen = |views: &HashMap<PoolId, PoolView>, ctx: &Context| match steer(&spec, views, ctx) {
        Decision::Pool { pool, .. } => pool,
        other => panic!("{other:?}"),
    };
    use vantage_core::region::RegionCode;
    assert_eq!(
        chosen(&views, &at(Some("AMS"), Some("DE"), Some(RegionCode::Weu))),
        id(1)
    );
    assert_eq!(
        chosen(&views, &at(None, Some("DE"), Some(RegionCode::Weu))),
        id(2)
    );
    assert_eq!(
        chosen(&views, &at(None, Some("FR"), Some(RegionCode::Weu))),
        id(3)
    );
    assert_eq!(
        chosen(&views, &at(None, None, Some(RegionCode::Enam))),
        id(0)
    );
    views.get_mut(&id(2)).unwrap().healthy = false;
    assert_eq!(
        chosen(&views, &at(None, Some("DE"), None)),
        id(0),
        "an all-down geo list falls to the default pools"
    );
}
