//! Steering: which pool, then which origin, takes a request (contract §5 rules 5–7). A pure
//! function of an immutable routing view, the request's context and an injected random
//! number — so every decision can be replayed and property-tested.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::load_balancer::{LoadBalancerSpec, SteeringPolicy, ZeroDowntimeFailover};
use crate::pool::{LoadShedding, OriginSteeringPolicy, SheddingPolicy, Weight};
use crate::region::RegionCode;
use crate::{PoolId, Timestamp};

/// An origin as steering sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct OriginView {
    pub enabled: bool,
    /// The origin's verdict for traffic: an unknown origin is down; in a pool without a
    /// monitor every enabled origin is taken as up.
    pub healthy: bool,
    pub weight: Weight,
    /// When a disabled origin was disabled: sessions pinned to it may drain until a load
    /// balancer's `drain_duration` has passed.
    pub disabled_at: Option<Timestamp>,
}

impl OriginView {
    /// A disabled origin still taking the sessions pinned to it at `now`: disabled less than
    /// `drain_secs` ago (Cloudflare's `drain_duration`; 0 drains nothing). New sessions never
    /// go to it, and its health is not judged (a disabled origin is not probed).
    pub fn drains(&self, drain_secs: u32, now: Timestamp) -> bool {
        !self.enabled
            && self.weight.hundredths() > 0
            && self.disabled_at.is_some_and(|at| {
                now.unix_micros() < at.unix_micros() + i64::from(drain_secs) * 1_000_000
            })
    }

    /// May take new traffic.
    pub fn eligible(&self) -> bool {
        self.enabled && self.healthy && self.weight.hundredths() > 0
    }

    /// May take traffic as part of a fallback pool, whatever its health.
    pub fn takes_fallback(&self) -> bool {
        self.enabled && self.weight.hundredths() > 0
    }
}

/// A pool as steering sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolView {
    pub enabled: bool,
    /// The pool's verdict for traffic (a pool without a monitor is healthy; unknown is down).
    pub healthy: bool,
    pub coordinates: Option<(f64, f64)>,
    pub origin_steering: OriginSteeringPolicy,
    pub origins: Vec<OriginView>,
    /// The share of traffic the pool turns away while healthy (Cloudflare's load shedding).
    pub shedding: LoadShedding,
}

impl PoolView {
    /// May take new traffic: enabled, healthy, and with an origin that can take it.
    pub fn usable(&self) -> bool {
        self.enabled && self.healthy && self.origins.iter().any(OriginView::eligible)
    }

    /// Whether this pool (`id`) sheds this request when it would otherwise take it as new
    /// traffic: `default_percent` of requests, drawn at random or by the client's address.
    pub fn sheds(&self, id: PoolId, ctx: &Context) -> bool {
        let s = &self.shedding;
        shed(id, s.default_percent, s.default_policy, ctx)
    }

    /// Whether this pool sheds this client's session (an affinity pin to it):
    /// `session_percent` of clients, by address.
    pub fn sheds_session(&self, id: PoolId, ctx: &Context) -> bool {
        let s = &self.shedding;
        shed(id, s.session_percent, s.session_policy, ctx)
    }
}

/// Whether a request falls in a pool's shed share: a draw in [0, 10 000) below the percent
/// in hundredths. The draw mixes in the pool, so two pools shedding 50 % do not shed the
/// same requests; by client address (`hash`) it is the same for a client every time.
fn shed(id: PoolId, percent: f64, policy: SheddingPolicy, ctx: &Context) -> bool {
    if percent <= 0.0 {
        return false;
    }
    let base = match policy {
        SheddingPolicy::Random => ctx.random,
        SheddingPolicy::Hash => ctx.client_ip.as_ref().map_or(ctx.random, hash_ip),
    };
    let mut salt = [0u8; 8];
    salt.copy_from_slice(&id.as_bytes()[..8]);
    let draw = remix(base ^ u64::from_le_bytes(salt).rotate_left(17)) % 10_000;
    draw < (percent * 100.0).round() as u64
}

/// Where the request comes from and what the data plane knows about load. `random` is a
/// fresh uniformly random number per decision, supplied by the caller.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub client_ip: Option<IpAddr>,
    pub pop: Option<String>,
    pub country: Option<String>,
    pub region: Option<RegionCode>,
    /// The data plane's own coordinates, for proximity steering.
    pub here: Option<(f64, f64)>,
    pub random: u64,
    /// Smoothed probe RTT per pool, as seen from the data plane's region (dynamic latency).
    pub rtt_ewma: HashMap<PoolId, f64>,
    /// Requests (or connections) in flight per pool and per (pool, origin index).
    pub outstanding_pools: HashMap<PoolId, u32>,
    pub outstanding_origins: HashMap<(PoolId, usize), u32>,
    /// The request's time (for draining sessions of a disabled origin).
    pub now: Timestamp,
}

/// The outcome of steering one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A healthy pool chosen by the policy, and the origin in it.
    Pool { pool: PoolId, origin: usize },
    /// Every other pool is out: the fallback pool, whatever its health.
    Fallback { pool: PoolId, origin: usize },
    /// Nowhere to send it (the fallback is disabled or has no enabled origin): HTTP 530.
    Nowhere,
}

/// Great-circle distance in kilometres.
pub fn distance_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (la1, lo1, la2, lo2) = (
        a.0.to_radians(),
        a.1.to_radians(),
        b.0.to_radians(),
        b.1.to_radians(),
    );
    let h = ((la2 - la1) / 2.0).sin().powi(2)
        + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().asin()
}

/// Picks an index with probability proportional to `weights`, from a uniform `random`.
fn weighted(weights: &[u64], random: u64) -> Option<usize> {
    let total: u64 = weights.iter().sum();
    if total == 0 {
        return None;
    }
    let mut point = random % total;
    for (i, w) in weights.iter().enumerate() {
        if point < *w {
            return Some(i);
        }
        point -= w;
    }
    None
}

/// A second, independent number from one (the SplitMix64 finaliser: every input bit
/// moves every output bit), so one random draw can make two choices.
fn remix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A stable 64-bit hash (FNV-1a) for client-IP affinity.
pub fn hash_ip(ip: &IpAddr) -> u64 {
    let bytes = match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The pools a policy considers, in preference order.
fn candidates<'a>(lb: &'a LoadBalancerSpec, ctx: &Context) -> &'a [PoolId] {
    let geo = |lb: &'a LoadBalancerSpec| -> Option<&'a [PoolId]> {
        ctx.pop
            .as_ref()
            .and_then(|p| lb.pop_pools.get(p))
            .or_else(|| ctx.country.as_ref().and_then(|c| lb.country_pools.get(c)))
            .or_else(|| ctx.region.and_then(|r| lb.region_pools.get(&r)))
            .map(Vec::as_slice)
    };
    let uses_geo = match lb.steering_policy {
        SteeringPolicy::Geo => true,
        SteeringPolicy::Unset => {
            !(lb.pop_pools.is_empty() && lb.country_pools.is_empty() && lb.region_pools.is_empty())
        }
        _ => false,
    };
    if uses_geo {
        if let Some(list) = geo(lb) {
            return list;
        }
    }
    &lb.default_pools
}

fn pool_weight(lb: &LoadBalancerSpec, id: PoolId) -> f64 {
    lb.random_steering
        .pool_weights
        .get(&id)
        .copied()
        .unwrap_or(lb.random_steering.default_weight)
}

/// Chooses the pool for a request among the usable ones, by the load balancer's policy.
fn choose_pool(
    lb: &LoadBalancerSpec,
    pools: &HashMap<PoolId, PoolView>,
    ctx: &Context,
    skip: Option<PoolId>,
) -> Option<PoolId> {
    // A pool shedding this request is passed over like one that is down: the next pool in
    // the policy's order takes it, the fallback when none is left.
    let usable = |id: &PoolId| {
        Some(*id) != skip
            && pools
                .get(id)
                .is_some_and(|p| p.usable() && !p.sheds(*id, ctx))
    };
    let listed = candidates(lb, ctx);
    let mut list: Vec<PoolId> = listed.iter().copied().filter(|p| usable(p)).collect();
    if list.is_empty() && !std::ptr::eq(listed, lb.default_pools.as_slice()) {
        // The geo list is all down: the default pools before the fallback.
        list = lb
            .default_pools
            .iter()
            .copied()
            .filter(|p| usable(p))
            .collect();
    }
    let first = *list.first()?;
    let least = |count: &dyn Fn(PoolId) -> f64| {
        list.iter()
            .copied()
            .min_by(|a, b| count(*a).total_cmp(&count(*b)))
            .unwrap_or(first)
    };
    Some(match lb.steering_policy {
        SteeringPolicy::Random => {
            let weights: Vec<u64> = list
                .iter()
                .map(|p| (pool_weight(lb, *p) * 10_000.0).round() as u64)
                .collect();
            weighted(&weights, ctx.random).map_or(first, |i| list[i])
        }
        SteeringPolicy::DynamicLatency => {
            least(&|p| ctx.rtt_ewma.get(&p).copied().unwrap_or(f64::INFINITY))
        }
        SteeringPolicy::Proximity => least(&|p| match (
            ctx.here,
            pools.get(&p).and_then(|v| v.coordinates),
        ) {
            (Some(here), Some(there)) => distance_km(here, there),
            _ => f64::INFINITY,
        }),
        SteeringPolicy::LeastOutstandingRequests | SteeringPolicy::LeastConnections => {
            least(&|p| {
                let w = pool_weight(lb, p).max(1e-6);
                f64::from(ctx.outstanding_pools.get(&p).copied().unwrap_or(0)) / w
            })
        }
        SteeringPolicy::Off | SteeringPolicy::Geo | SteeringPolicy::Unset => first,
    })
}

/// Chooses an origin in `pool` by its origin-steering policy, among the origins `eligible`
/// accepts (by index and view).
pub fn choose_origin(
    id: PoolId,
    pool: &PoolView,
    ctx: &Context,
    eligible: impl Fn(usize, &OriginView) -> bool,
) -> Option<usize> {
    let idx: Vec<usize> = (0..pool.origins.len())
        .filter(|i| eligible(*i, &pool.origins[*i]))
        .collect();
    let weights: Vec<u64> = idx
        .iter()
        .map(|i| u64::from(pool.origins[*i].weight.hundredths()))
        .collect();
    // The pool was picked with the same number (random, or the client's hash for
    // `ip_cookie`); drawing the origin from it again would tie the two choices together and
    // starve some origins of a rarely picked pool. A mix of it is an independent draw.
    let pick = match pool.origin_steering {
        OriginSteeringPolicy::Random => weighted(&weights, remix(ctx.random)),
        OriginSteeringPolicy::Hash => weighted(
            &weights,
            remix(ctx.client_ip.as_ref().map_or(ctx.random, hash_ip)),
        ),
        OriginSteeringPolicy::LeastOutstandingRequests | OriginSteeringPolicy::LeastConnections => {
            (0..idx.len()).filter(|k| weights[*k] > 0).min_by(|a, b| {
                let load = |k: usize| {
                    f64::from(
                        ctx.outstanding_origins
                            .get(&(id, idx[k]))
                            .copied()
                            .unwrap_or(0),
                    ) / weights[k] as f64
                };
                load(*a).total_cmp(&load(*b))
            })
        }
    };
    pick.map(|k| idx[k])
}

/// The pools taking traffic now, as people are shown it (no client context): for failover
/// policies the first usable pool in order, for the others every usable default pool, and the
/// fallback when none is usable (nothing when it is disabled too, or has no origin that can
/// take traffic — as `steer` would answer nowhere).
pub fn serving(lb: &LoadBalancerSpec, pools: &HashMap<PoolId, PoolView>) -> Vec<PoolId> {
    let usable = |id: &&PoolId| pools.get(id).is_some_and(PoolView::usable);
    let failover = matches!(
        lb.steering_policy,
        SteeringPolicy::Off | SteeringPolicy::Unset
    );
    let mut out: Vec<PoolId> = if failover {
        lb.default_pools
            .iter()
            .find(usable)
            .into_iter()
            .copied()
            .collect()
    } else {
        lb.default_pools.iter().filter(usable).copied().collect()
    };
    let fallback_takes =
        |p: &PoolView| p.enabled && p.origins.iter().any(OriginView::takes_fallback);
    if out.is_empty() && pools.get(&lb.fallback_pool).is_some_and(fallback_takes) {
        out.push(lb.fallback_pool);
    }
    out
}

/// Whether a request whose connection failed may be retried elsewhere: always, unless it was
/// pinned to its origin by session affinity with `zero_downtime_failover: none`.
pub fn may_fail_over(lb: &LoadBalancerSpec, pinned: bool) -> bool {
    !pinned || lb.session_affinity_attributes.zero_downtime_failover != ZeroDowntimeFailover::None
}

/// Whether a pinned client keeps its pin after its request was served elsewhere: only with
/// `zero_downtime_failover: temporary` (`sticky` re-pins to the origin that served it).
pub fn keeps_pin(lb: &LoadBalancerSpec, pinned: bool, moved: bool) -> bool {
    pinned
        && moved
        && lb.session_affinity_attributes.zero_downtime_failover == ZeroDowntimeFailover::Temporary
}

/// Steers one request (contract §5 rules 6–7).
pub fn steer(lb: &LoadBalancerSpec, pools: &HashMap<PoolId, PoolView>, ctx: &Context) -> Decision {
    steer_avoiding(lb, pools, ctx, None)
}

/// Steers the one retry of a request whose connection to `failed` (pool, origin index)
/// could not be made (zero-downtime failover): another eligible origin of the same pool;
/// when there is none and the load balancer has `adaptive_routing.failover_across_pools`,
/// the pool the policy picks with the failed pool left out (the fallback last). Never the
/// failed origin again.
pub fn retry(
    lb: &LoadBalancerSpec,
    pools: &HashMap<PoolId, PoolView>,
    ctx: &Context,
    failed: (PoolId, usize),
) -> Decision {
    let (pool, bad) = failed;
    if let Some(view) = pools.get(&pool) {
        // A fallback taking traffic whatever its health may retry on any enabled origin.
        let as_fallback = pool == lb.fallback_pool && !view.usable();
        let origin =
            choose_origin(pool, view, ctx, |i, o| i != bad && o.eligible()).or_else(|| {
                as_fallback
                    .then(|| choose_origin(pool, view, ctx, |i, o| i != bad && o.takes_fallback()))
                    .flatten()
            });
        if let Some(origin) = origin {
            return if as_fallback {
                Decision::Fallback { pool, origin }
            } else {
                Decision::Pool { pool, origin }
            };
        }
    }
    if !lb.failover_across_pools {
        return Decision::Nowhere;
    }
    steer_avoiding(lb, pools, ctx, Some(failed))
}

fn steer_avoiding(
    lb: &LoadBalancerSpec,
    pools: &HashMap<PoolId, PoolView>,
    ctx: &Context,
    avoid: Option<(PoolId, usize)>,
) -> Decision {
    let skip_pool = avoid.map(|(p, _)| p);
    if let Some(id) = choose_pool(lb, pools, ctx, skip_pool) {
        if let Some(origin) = pools
            .get(&id)
            .and_then(|p| choose_origin(id, p, ctx, |_, o| o.eligible()))
        {
            return Decision::Pool { pool: id, origin };
        }
    }
    let id = lb.fallback_pool;
    let Some(fallback) = pools.get(&id).filter(|p| p.enabled) else {
        return Decision::Nowhere;
    };
    let allowed = |i: usize| avoid != Some((id, i));
    // The fallback takes traffic whatever its health: healthy origins first, else any enabled.
    let origin = choose_origin(id, fallback, ctx, |i, o| allowed(i) && o.eligible())
        .or_else(|| choose_origin(id, fallback, ctx, |i, o| allowed(i) && o.takes_fallback()));
    match origin {
        Some(origin) => Decision::Fallback { pool: id, origin },
        None => Decision::Nowhere,
    }
}
