//! The edge protocol's snapshot, pinned: a field renamed or retyped here breaks edges of
//! other versions that are still running, so every change to this shape must show up as a
//! diff of `tests/golden/edge/snapshot.json` (and, when old edges cannot read it, as a new
//! protocol version). Refresh with `VANTAGE_UPDATE_SNAPSHOT=1`. Also: what travels comes back
//! as the same routing state, and what does not validate is refused with the object named.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use vantage_control::edge_protocol::{SnapshotV1, VERSION};
use vantage_core::catalog::{Catalog, Change};
use vantage_core::health::engine::Engine;
use vantage_core::health::HealthView;
use vantage_core::load_balancer::LoadBalancerDraft;
use vantage_core::pool::{LoadSheddingDraft, OriginDraft, PoolDraft};
use vantage_core::region::RegionCode;
use vantage_core::routing::{PoolRtt, RoutingTable, Snapshot};
use vantage_core::zone::Overlap;
use vantage_core::{AccountId, LoadBalancerId, PoolId, Timestamp, ZoneId};

const NOW: Timestamp = Timestamp::from_unix_micros(1_700_000_000_000_000);

fn apply(
    c: &mut Catalog,
    command: impl FnOnce(&Catalog) -> Result<Vec<Change>, vantage_core::catalog::CatalogError>,
) {
    for change in command(c).unwrap() {
        c.apply(change);
    }
}

/// One zone, two pools (one with coordinates, hash steering and an IPv6 origin on a port, one
/// with a disabled host-name origin), and a dynamic-latency load balancer with region pools.
fn catalog() -> Catalog {
    let (a, z) = (AccountId::from_bytes([1; 16]), ZoneId::from_bytes([2; 16]));
    let (p1, p2) = (PoolId::from_bytes([3; 16]), PoolId::from_bytes([4; 16]));
    let mut c = Catalog::default();
    apply(&mut c, |c| c.create_account(a, "a".into(), NOW));
    apply(&mut c, |c| {
        c.create_zone(a, z, "example.com", Overlap::Refuse, NOW)
    });
    let origin = |name: &str, address: &str| OriginDraft {
        name: Some(name.into()),
        address: Some(address.into()),
        ..Default::default()
    };
    let (spec, _) = PoolDraft {
        name: Some("primary".into()),
        origins: Some(vec![
            origin("a", "192.0.2.10"),
            OriginDraft {
                port: Some(8443),
                weight: Some(0.5),
                ..origin("b", "2001:db8::1")
            },
        ]),
        latitude: Some(52.37),
        longitude: Some(4.9),
        origin_steering_policy: Some("hash".into()),
        ..Default::default()
    }
    .validate()
    .unwrap();
    apply(&mut c, |c| {
        c.create_pool(a, p1, spec, Default::default(), NOW)
    });
    let (spec, _) = PoolDraft {
        name: Some("secondary".into()),
        origins: Some(vec![OriginDraft {
            enabled: Some(false),
            ..origin("c", "origin.example.net")
        }]),
        load_shedding: Some(LoadSheddingDraft {
            default_percent: Some(25.0),
            default_policy: Some("hash".into()),
            session_percent: Some(10.0),
            session_policy: None,
        }),
        ..Default::default()
    }
    .validate()
    .unwrap();
    apply(&mut c, |c| {
        c.create_pool(a, p2, spec, Default::default(), NOW)
    });
    let lb = LoadBalancerDraft {
        name: Some("www.example.com".into()),
        default_pools: Some(vec![p1.to_string(), p2.to_string()]),
        fallback_pool: Some(p2.to_string()),
        region_pools: Some(BTreeMap::from([("WEU".into(), vec![p1.to_string()])])),
        steering_policy: Some("dynamic_latency".into()),
        session_affinity: Some("cookie".into()),
        ttl: Some(60),
        ..Default::default()
    };
    apply(&mut c, |c| {
        c.create_load_balancer(z, LoadBalancerId::from_bytes([5; 16]), lb, NOW)
    });
    c
}

/// The catalog's snapshot, with RTTs as a monitored pool's would be (the pools here have no
/// monitor, so nothing measured them).
fn snapshot() -> Snapshot {
    let c = catalog();
    let mut s = build(
        &c,
        &Engine::new(&c.health_plan(), [], NOW).view(),
        None,
        NOW,
    );
    let p1 = s.pools.get_mut(&PoolId::from_bytes([3; 16])).unwrap();
    std::sync::Arc::make_mut(p1).rtt = PoolRtt {
        anywhere: Some(80.0),
        by_region: BTreeMap::from([(RegionCode::Weu, 12.5)]),
    };
    s
}

fn build(c: &Catalog, view: &HealthView, previous: Option<&Snapshot>, now: Timestamp) -> Snapshot {
    Snapshot::build(
        c,
        view,
        vantage_core::routing::Rtts::Measured(
            &|key, region| match (key.address.as_str(), region) {
                ("192.0.2.10", Some(RegionCode::Weu)) => Some(12.5),
                ("192.0.2.10", _) => Some(80.0),
                _ => None,
            },
        ),
        &[RegionCode::Weu, RegionCode::Enam],
        b"the installation's secret",
        previous,
        now,
    )
}

#[test]
fn the_snapshot_message_is_pinned() {
    let wire = SnapshotV1::from_core(&snapshot());
    common::pinned("edge/snapshot", &wire);
    assert_eq!(wire.protocol, VERSION);
}

#[test]
fn what_travels_steers_as_what_was_built() {
    let built = snapshot();
    let arrived = SnapshotV1::from_core(&built).into_core().unwrap();
    assert_eq!(arrived.version, built.version);
    assert_eq!(arrived.zones, built.zones);
    assert_eq!(arrived.load_balancers, built.load_balancers);
    assert_eq!(arrived.pools, built.pools);
    for region in [
        None,
        Some(RegionCode::Weu),
        Some(RegionCode::Enam),
        Some(RegionCode::Oc),
    ] {
        let (a, b) = (
            RoutingTable::new(&built, region),
            RoutingTable::new(&arrived, region),
        );
        let route = |t: &RoutingTable| (**t.route("www.example.com").unwrap()).clone();
        assert_eq!(route(&a), route(&b), "seen from {region:?}");
    }
    // The RTT an edge steers by is its own region's, else the mean from anywhere.
    let p1 = PoolId::from_bytes([3; 16]);
    let rtt = |r| {
        RoutingTable::new(&arrived, r)
            .route("www.example.com")
            .unwrap()
            .rtt
            .get(&p1)
            .copied()
    };
    assert_eq!(rtt(Some(RegionCode::Weu)), Some(12.5));
    assert_eq!(rtt(Some(RegionCode::Oc)), Some(80.0));
}

#[test]
fn a_snapshot_that_does_not_validate_is_refused_naming_the_object() {
    let good = SnapshotV1::from_core(&snapshot());
    let refused = |edit: &dyn Fn(&mut SnapshotV1)| {
        let mut s = good.clone();
        edit(&mut s);
        s.into_core().unwrap_err()
    };
    let e = refused(&|s| {
        s.pools.remove(1);
    });
    assert!(
        e.contains("load balancer") && e.contains("fallback_pool"),
        "{e}"
    );
    let e = refused(&|s| s.pools[0].origins[0].key = "xyz".into());
    assert!(e.contains("key"), "{e}");
    let e = refused(&|s| s.pools[0].origins[0].weight = 7.0);
    assert!(e.contains("weight"), "{e}");
    let e = refused(&|s| s.load_balancers[0].config["steering_policy"] = "fastest".into());
    assert!(e.contains("steering_policy"), "{e}");
    let e = refused(&|s| s.load_balancers[0].config["name"] = "www.example.org".into());
    assert!(e.contains("name"), "{e}");
    let e = refused(&|s| s.protocol = 2);
    assert!(e.contains("protocol"), "{e}");
}

#[test]
fn versions_grow_and_the_soa_serial_moves_with_the_answers_never_back() {
    let c = catalog();
    let view = Engine::new(&c.health_plan(), [], NOW).view();
    let serial = |s: &Snapshot| s.zones[0].serial;
    let first = build(&c, &view, None, NOW);
    // Nothing changed: the same serial, a newer version even at the same instant.
    let same = build(&c, &view, Some(&first), NOW);
    assert_eq!(serial(&same), serial(&first));
    assert!(same.version > first.version);
    // Every pool's verdict changed (the view no longer knows them): the serial moves.
    let moved = build(&c, &HealthView::default(), Some(&same), NOW);
    assert!(serial(&moved) > serial(&same));
    // The clock went back an hour: neither the version nor the serial does.
    let earlier = Timestamp::from_unix_micros(NOW.unix_micros() - 3_600_000_000);
    let back = build(&c, &view, Some(&moved), earlier);
    assert!(back.version > moved.version);
    assert!(
        serial(&back) > serial(&moved),
        "the answers moved back, so the serial moves on"
    );
}

#[test]
fn a_delta_carries_what_changed_and_applies_only_to_its_base() {
    let c = catalog();
    let view = Engine::new(&c.health_plan(), [], NOW).view();
    let first = build(&c, &view, None, NOW);
    // Every pool's verdict changes; the load balancer does not.
    let second = build(&c, &HealthView::default(), Some(&first), NOW);
    let delta = SnapshotV1::delta(&first, &second);
    assert_eq!(delta.base, Some(first.version));
    assert_eq!(delta.pools.len(), 2);
    assert!(
        delta.load_balancers.is_empty(),
        "an unchanged load balancer does not travel"
    );
    let wire: SnapshotV1 = serde_json::from_slice(&serde_json::to_vec(&delta).unwrap()).unwrap();
    let applied = wire.clone().apply_to(Some(&first)).unwrap();
    assert!(applied.same_routes(&second));
    assert_eq!(applied.version, second.version);
    // Not on another base, and not alone.
    assert!(wire
        .clone()
        .apply_to(Some(&second))
        .unwrap_err()
        .contains("does not hold"));
    assert!(wire.clone().apply_to(None).is_err());
    // A pool removed while a load balancer still names it.
    let mut broken = wire;
    broken
        .removed_pools
        .push(PoolId::from_bytes([4; 16]).to_string());
    broken
        .pools
        .retain(|p| p.id != PoolId::from_bytes([4; 16]).to_string());
    let e = broken.apply_to(Some(&first)).unwrap_err();
    assert!(e.contains("load balancer") && e.contains("pool"), "{e}");
}

#[test]
fn a_table_follows_a_snapshot_by_rebuilding_only_what_moved() {
    let c = catalog();
    let view = Engine::new(&c.health_plan(), [], NOW).view();
    let first = build(&c, &view, None, NOW);
    let table = RoutingTable::new(&first, None);
    let route = |t: &RoutingTable| std::sync::Arc::clone(t.route("www.example.com").unwrap());
    // Nothing moved: the pools are shared with the previous snapshot and the route is kept.
    let same = build(&c, &view, Some(&first), NOW);
    assert!(same
        .pools
        .iter()
        .all(|(id, p)| std::sync::Arc::ptr_eq(p, &first.pools[id])));
    let kept = RoutingTable::next(Some((&table, &first)), &same, None);
    assert!(std::sync::Arc::ptr_eq(&route(&kept), &route(&table)));
    // A verdict moved: the route naming the pool is rebuilt, as a fresh table would build it.
    let moved = build(&c, &HealthView::default(), Some(&same), NOW);
    let next = RoutingTable::next(Some((&kept, &same)), &moved, None);
    assert!(!std::sync::Arc::ptr_eq(&route(&next), &route(&kept)));
    assert_eq!(*route(&next), *route(&RoutingTable::new(&moved, None)));
    assert!(route(&next).pools.values().all(|p| !p.healthy));
}

#[test]
fn a_build_on_the_previous_snapshot_reuses_only_what_did_not_move() {
    let (a, p1) = (AccountId::from_bytes([1; 16]), PoolId::from_bytes([3; 16]));
    let mut c = catalog();
    let view = Engine::new(&c.health_plan(), [], NOW).view();
    let first = build(&c, &view, None, NOW);
    // The same state: every entry is the previous one.
    let again = build(&c, &view, Some(&first), NOW);
    assert!(std::sync::Arc::ptr_eq(
        &again.load_balancers[0],
        &first.load_balancers[0]
    ));
    assert!(again
        .pools
        .iter()
        .all(|(id, p)| std::sync::Arc::ptr_eq(p, &first.pools[id])));
    // A pool's configuration changes (same verdicts): that pool is made anew, as a build from
    // nothing makes it; the other is kept.
    let (spec, _) = PoolDraft {
        name: Some("primary".into()),
        origins: Some(vec![OriginDraft {
            name: Some("a".into()),
            address: Some("192.0.2.10".into()),
            port: Some(8080),
            weight: Some(0.3),
            ..Default::default()
        }]),
        ..Default::default()
    }
    .validate()
    .unwrap();
    apply(&mut c, |c| {
        c.replace_pool(a, p1, spec, Default::default(), NOW)
    });
    // The very same view (its entries are the previous build's), so only the configuration
    // tells the pool apart.
    let edited = build(&c, &view, Some(&again), NOW);
    assert!(std::sync::Arc::ptr_eq(
        &edited.pools[&PoolId::from_bytes([4; 16])],
        &again.pools[&PoolId::from_bytes([4; 16])]
    ));
    let fresh = build(&c, &view, None, NOW);
    assert_eq!(edited.pools, fresh.pools);
    assert_eq!(edited.load_balancers, fresh.load_balancers);
    assert_eq!(
        edited.pools[&p1].upstreams[0].authority.as_ref(),
        "192.0.2.10:8080"
    );
    // Every verdict changes (a view that knows no pool): made anew too.
    let moved = build(&c, &HealthView::default(), Some(&edited), NOW);
    let fresh = build(&c, &HealthView::default(), None, NOW);
    assert_eq!(moved.pools, fresh.pools);
    assert!(moved.pools.values().all(|p| !p.view.healthy));
}
