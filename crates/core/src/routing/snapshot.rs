//! The routing snapshot: everything any data plane, wherever it runs, needs to steer — the
//! zones, the load balancers, and every pool they name with its traffic verdicts, upstream
//! addresses and RTTs per region. The controller builds one after every change and publishes
//! it; the built-in data plane and every edge turn it into a `RoutingTable` for their own
//! region (`RoutingTable::new`). One value for all of them, so an edge steers exactly as the
//! controller's own data plane would.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use super::{authority, origin_key, Upstream, ZoneView};
use crate::catalog::Catalog;
use crate::health::{HealthView, PoolVerdicts, ProbeKey};
use crate::load_balancer::{LoadBalancerSpec, SteeringPolicy};
use crate::region::RegionCode;
use crate::steering::{OriginView, PoolView};
use crate::{LoadBalancerId, PoolId, Timestamp, ZoneId};

/// A probe target's smoothed RTT in ms as seen from a region (`None`: from anywhere), if
/// measured.
pub type Latency<'a> = &'a dyn Fn(&ProbeKey, Option<RegionCode>) -> Option<f64>;

/// Where the pools' RTTs of a snapshot come from.
#[derive(Clone, Copy)]
pub enum Rtts<'a> {
    /// Measured: each target's smoothed RTT (the judging controller's engine has them).
    Measured(Latency<'a>),
    /// Given whole, per pool: a controller following the judge takes the judge's, so every
    /// replica steers dynamic latency alike.
    Given(&'a HashMap<PoolId, PoolRtt>),
}

impl std::fmt::Debug for Rtts<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rtts::Measured(_) => f.write_str("Measured"),
            Rtts::Given(m) => f.debug_tuple("Given").field(m).finish(),
        }
    }
}

/// One published routing state of the installation.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Grows with every snapshot, across controller restarts: the Unix microseconds of its
    /// making, or one more than the previous one when the clock has not passed it. A data
    /// plane never applies a version below the one it holds.
    pub version: u64,
    pub zones: Vec<ZoneView>,
    /// Shared with the previous snapshot while unchanged (so are the pools): followers
    /// compare by pointer first, and the snapshots a controller keeps share them.
    pub load_balancers: Vec<Arc<SnapshotLoadBalancer>>,
    pub pools: BTreeMap<PoolId, Arc<SnapshotPool>>,
    /// Per zone, a digest of what its answers are made of (not published: it decides when
    /// the SOA serial moves).
    pub answers: HashMap<ZoneId, u64>,
    /// The health view's entry each pool was made from (not published: the next build
    /// reuses a pool whose entry and configuration did not move).
    pub verdicts: HashMap<PoolId, Arc<PoolVerdicts>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotLoadBalancer {
    pub id: LoadBalancerId,
    pub zone: ZoneId,
    pub spec: LoadBalancerSpec,
}

/// A pool as every data plane sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotPool {
    pub name: String,
    /// Verdicts for traffic (a pool the health view does not know takes none).
    pub view: PoolView,
    /// Parallel to `view.origins`.
    pub upstreams: Vec<Upstream>,
    /// Measured only for pools a dynamic-latency load balancer names.
    pub rtt: PoolRtt,
}

/// A pool's probe RTT in ms: the mean over its origins that take traffic of their smoothed
/// RTTs, from each region that has probe locations and from anywhere.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PoolRtt {
    pub anywhere: Option<f64>,
    pub by_region: BTreeMap<RegionCode, f64>,
}

impl PoolRtt {
    /// As a data plane in `region` sees it: its region's, else the mean over every region
    /// (which is what the engine answers for a region without probe locations).
    pub fn seen_from(&self, region: Option<RegionCode>) -> Option<f64> {
        region
            .and_then(|r| self.by_region.get(&r))
            .copied()
            .or(self.anywhere)
    }
}

impl Snapshot {
    /// Whether the two steer alike (everything but the version).
    pub fn same_routes(&self, other: &Snapshot) -> bool {
        self.zones == other.zones
            && self.load_balancers.len() == other.load_balancers.len()
            && self
                .load_balancers
                .iter()
                .zip(&other.load_balancers)
                .all(|(a, b)| same(a, b))
            && self.pools.len() == other.pools.len()
            && self
                .pools
                .iter()
                .zip(&other.pools)
                .all(|((i, a), (j, b))| i == j && same(a, b))
    }

    /// Every pool's RTT this snapshot measured (the pools dynamic-latency load balancers
    /// name), to hand to followers as [`Rtts::Given`].
    pub fn pool_rtts(&self) -> HashMap<PoolId, PoolRtt> {
        self.pools
            .iter()
            .filter(|(_, p)| p.rtt != PoolRtt::default())
            .map(|(id, p)| (*id, p.rtt.clone()))
            .collect()
    }

    /// Builds the installation's routing state from the catalog and the published health
    /// view. `rtts` gives the pools' RTTs (measured per target, or given per pool), `regions` the
    /// regions that have probe locations, `secret` keys the origin identities in affinity
    /// cookies. `previous` (the last published snapshot) keeps versions and SOA serials
    /// growing; `now` is the time of making.
    pub fn build(
        catalog: &Catalog,
        health: &HealthView,
        rtts: Rtts<'_>,
        regions: &[RegionCode],
        secret: &[u8],
        previous: Option<&Snapshot>,
        now: Timestamp,
    ) -> Snapshot {
        let now_micros = u64::try_from(now.unix_micros()).unwrap_or(0);
        let version = previous.map_or(now_micros, |p| now_micros.max(p.version + 1));
        let old_lbs: HashMap<LoadBalancerId, &Arc<SnapshotLoadBalancer>> = previous
            .map(|p| p.load_balancers.iter().map(|lb| (lb.id, lb)).collect())
            .unwrap_or_default();
        // Looked up once per reference: a hash map while building (the published map is
        // ordered, for a deterministic serialization, and is made from it in one pass).
        let capacity = previous.map_or(0, |p| p.pools.len());
        let mut pools: HashMap<PoolId, Arc<SnapshotPool>> = HashMap::with_capacity(capacity);
        let mut verdicts: HashMap<PoolId, Arc<PoolVerdicts>> = HashMap::with_capacity(capacity);
        let mut load_balancers = Vec::new();
        let mut dynamic: Vec<PoolId> = Vec::new();
        for lb in catalog.all_load_balancers() {
            let Some(zone) = catalog.zone(lb.zone) else {
                continue;
            };
            let referenced = lb.spec.referenced_pools();
            for id in &referenced {
                if pools.contains_key(id) {
                    continue;
                }
                let Some(pool) = catalog.pool(zone.account, *id) else {
                    continue;
                };
                let seen = health.pool(*id);
                // Reused when neither its verdicts (the view shares unchanged entries) nor
                // its configuration moved: no copies, no keyed hashes.
                let kept = previous.and_then(|p| {
                    let old = p.pools.get(id)?;
                    let same_verdicts = match (p.verdicts.get(id), seen) {
                        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                        (None, None) => true,
                        _ => false,
                    };
                    (same_verdicts && made_from(old, pool)).then(|| Arc::clone(old))
                });
                let entry =
                    kept.unwrap_or_else(|| Arc::new(pool_entry(pool, seen.map(|v| &**v), secret)));
                if let Some(v) = seen {
                    verdicts.insert(*id, Arc::clone(v));
                }
                pools.insert(*id, entry);
            }
            if lb.spec.steering_policy == SteeringPolicy::DynamicLatency {
                dynamic.extend(referenced);
            }
            let entry = match old_lbs.get(&lb.id) {
                Some(old) if old.zone == lb.zone && old.spec == lb.spec => Arc::clone(old),
                _ => Arc::new(SnapshotLoadBalancer {
                    id: lb.id,
                    zone: lb.zone,
                    spec: lb.spec.clone(),
                }),
            };
            load_balancers.push(entry);
        }
        let mut measured = std::collections::BTreeSet::new();
        for id in dynamic {
            let (Some(entry), Some(v)) = (pools.get_mut(&id), health.pool(id)) else {
                continue;
            };
            if measured.insert(id) {
                let rtt = match rtts {
                    Rtts::Measured(latency) => pool_rtt(v, latency, regions),
                    Rtts::Given(given) => given.get(&id).cloned().unwrap_or_default(),
                };
                if entry.rtt != rtt {
                    Arc::make_mut(entry).rtt = rtt;
                }
            }
        }
        // Deterministic order, so two builds of one state serialize alike.
        load_balancers.sort_by(|a, b| a.spec.name.cmp(&b.spec.name).then(a.id.cmp(&b.id)));

        let mut by_zone: HashMap<ZoneId, Vec<&SnapshotLoadBalancer>> = HashMap::new();
        for lb in &load_balancers {
            by_zone.entry(lb.zone).or_default().push(lb);
        }
        let mut zones = Vec::new();
        let mut answers = HashMap::new();
        for z in catalog.served_zones() {
            let lbs = by_zone.get(&z.id).map_or(&[][..], Vec::as_slice);
            let digest = zone_digest(z, lbs, &pools, catalog);
            let config = serial(z.modified_on);
            let before = previous.and_then(|p| {
                let zone = p.zones.iter().find(|v| v.id == z.id)?;
                Some((zone.serial, p.answers.get(&z.id).copied()))
            });
            // The serial moves whenever the zone's answers do (a verdict too, not only an
            // edit), and never backwards.
            let serial = match before {
                Some((s, Some(d))) if d == digest => s.max(config),
                Some((s, _)) => config.max(s.saturating_add(1)).max(serial(now)),
                None => config.max(serial(now)),
            };
            answers.insert(z.id, digest);
            zones.push(ZoneView {
                id: z.id,
                name: z.name.clone(),
                serial,
            });
        }
        zones.sort_by(|a, b| a.name.cmp(&b.name));
        let pools: BTreeMap<PoolId, Arc<SnapshotPool>> = pools.into_iter().collect();
        Snapshot {
            version,
            zones,
            load_balancers,
            pools,
            answers,
            verdicts,
        }
    }
}

/// What a zone's answers are made of: its own and its load balancers' edits, and the traffic
/// verdicts and addresses of the pools they name (RTTs left out: they move all the time).
fn zone_digest(
    zone: &crate::zone::Zone,
    lbs: &[&SnapshotLoadBalancer],
    pools: &HashMap<PoolId, Arc<SnapshotPool>>,
    catalog: &Catalog,
) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    zone.modified_on.unix_micros().hash(&mut h);
    for lb in lbs {
        lb.id.hash(&mut h);
        catalog
            .load_balancer(lb.zone, lb.id)
            .map(|l| l.modified_on.unix_micros())
            .hash(&mut h);
        for id in lb.spec.referenced_pools() {
            let Some(p) = pools.get(&id) else { continue };
            id.hash(&mut h);
            (p.view.enabled, p.view.healthy).hash(&mut h);
            for (o, u) in p.view.origins.iter().zip(&p.upstreams) {
                (o.enabled, o.healthy, o.weight.hundredths()).hash(&mut h);
                u.address.hash(&mut h);
            }
        }
    }
    h.finish()
}

/// The same value, by pointer first (entries shared between snapshots).
fn same<T: PartialEq>(a: &Arc<T>, b: &Arc<T>) -> bool {
    Arc::ptr_eq(a, b) || a == b
}

/// Whether `entry` is what `pool_entry` makes of `pool`'s configuration (its verdicts aside).
fn made_from(entry: &SnapshotPool, pool: &crate::pool::Pool) -> bool {
    let spec = &pool.spec;
    entry.name == spec.name
        && entry.view.enabled == spec.enabled
        && entry.view.coordinates == spec.coordinates
        && entry.view.origin_steering == spec.origin_steering
        && entry.upstreams.len() == spec.origins.len()
        && spec
            .origins
            .iter()
            .zip(entry.upstreams.iter().zip(&entry.view.origins))
            .all(|(o, (u, v))| {
                u.name == o.name
                    && u.address == o.address
                    && u.host == o.host
                    && *u.authority == authority(&o.address, o.port)
                    && v.enabled == o.enabled
                    && v.weight == o.weight
            })
}

pub(super) fn serial(t: Timestamp) -> u32 {
    u32::try_from(t.unix_micros() / 1_000_000).unwrap_or(u32::MAX)
}

/// A pool as traffic sees it: its verdicts from the health view (a pool the view does not
/// know takes no traffic).
fn pool_entry(
    pool: &crate::pool::Pool,
    verdicts: Option<&PoolVerdicts>,
    secret: &[u8],
) -> SnapshotPool {
    let spec = &pool.spec;
    let origin = |i: usize| verdicts.and_then(|v| v.origins.get(i));
    let origins = spec
        .origins
        .iter()
        .enumerate()
        .map(|(i, o)| OriginView {
            enabled: o.enabled,
            healthy: origin(i).is_some_and(|v| v.healthy.is_healthy()),
            weight: o.weight,
            disabled_at: o.disabled_at,
        })
        .collect();
    let upstreams = spec
        .origins
        .iter()
        .map(|o| Upstream {
            name: o.name.clone(),
            key: origin_key(secret, &o.name, &o.address),
            authority: authority(&o.address, o.port).into(),
            address: o.address.clone(),
            host: o.host.clone(),
        })
        .collect();
    SnapshotPool {
        name: spec.name.clone(),
        view: PoolView {
            enabled: spec.enabled,
            healthy: verdicts.is_some_and(PoolVerdicts::takes_traffic),
            coordinates: spec.coordinates,
            origin_steering: spec.origin_steering,
            origins,
            shedding: spec.load_shedding.clone(),
        },
        upstreams,
        rtt: PoolRtt::default(),
    }
}

fn pool_rtt(v: &PoolVerdicts, latency: Latency<'_>, regions: &[RegionCode]) -> PoolRtt {
    let mean = |region: Option<RegionCode>| {
        let per_origin: Vec<f64> = v
            .origins
            .iter()
            .filter(|o| o.takes_traffic())
            .filter_map(|o| o.latency(|k| latency(k, region)))
            .collect();
        (!per_origin.is_empty()).then(|| per_origin.iter().sum::<f64>() / per_origin.len() as f64)
    };
    PoolRtt {
        anywhere: mean(None),
        by_region: regions
            .iter()
            .filter_map(|r| Some((*r, mean(Some(*r))?)))
            .collect(),
    }
}
