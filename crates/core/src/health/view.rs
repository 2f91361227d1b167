//! The health view: every pool's verdicts, decided once by the engine and published as one
//! immutable value. Routing, the dashboard, metrics, the pool health JSON and pool responses
//! all read it; none of them re-derives a verdict, a majority or the enabled gate.

use std::collections::HashMap;
use std::sync::Arc;

use super::check::FailureReason;
use super::verdict::{PoolState, RegionVerdicts, Verdict};
use super::ProbeKey;
use crate::monitor_group::Role;
use crate::{AccountId, PoolId};

/// Cheap to clone: a published view is shared, and the engine copies its map only when it
/// changes a pool while an older view is still being read.
#[derive(Debug, Clone, Default)]
pub struct HealthView {
    pub(crate) pools: Arc<HashMap<PoolId, Arc<PoolVerdicts>>>,
}

impl HealthView {
    pub fn pool(&self, id: PoolId) -> Option<&Arc<PoolVerdicts>> {
        self.pools.get(&id)
    }

    pub fn pools(&self) -> impl Iterator<Item = &Arc<PoolVerdicts>> {
        self.pools.values()
    }

    pub fn len(&self) -> usize {
        self.pools.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pools.is_empty()
    }

    /// The very same value (not merely equal): nothing changed between the two.
    pub fn same(&self, other: &HealthView) -> bool {
        Arc::ptr_eq(&self.pools, &other.pools)
    }

    /// Every pool's verdicts equal between the two (a rebuilt engine's view against the
    /// published one).
    pub fn same_verdicts(&self, other: &HealthView) -> bool {
        self.same(other) || self.pools == other.pools
    }
}

/// One pool's verdicts.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolVerdicts {
    pub pool: PoolId,
    pub account: AccountId,
    pub enabled: bool,
    pub monitored: bool,
    /// The pool's verdict: its threshold over its enabled origins' verdicts (unknown while no
    /// origin has one). A pool without a monitor is healthy while enabled; a disabled pool is
    /// never healthy.
    pub healthy: Verdict,
    /// The same threshold over each checking region's verdicts.
    pub regions: RegionVerdicts,
    /// Parallel to the pool's origins; shared with earlier views while unchanged, so a
    /// verdict change in a large pool copies one origin, not all.
    pub origins: Vec<Arc<OriginVerdict>>,
}

/// One origin's verdicts as its pool sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginVerdict {
    /// Shared with the engine's plan: views are rebuilt often, names and addresses are not.
    pub name: Arc<str>,
    pub address: Arc<str>,
    pub enabled: bool,
    pub healthy: Verdict,
    /// The most common failure among the locations that judged it unhealthy.
    pub reason: FailureReason,
    /// Per checking region: the majority of its locations.
    pub regions: RegionVerdicts,
    /// What probes it (empty: not probed — no monitor, or disabled).
    pub probes: Probes,
}

/// The monitors probing one origin, each with what its verdict counts for: the pool's own
/// monitor alone, or its group's enabled members. Shared between the engine's plan and every
/// view.
pub type Probes = Arc<[Probe]>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub key: Arc<ProbeKey>,
    pub role: Role,
}

impl OriginVerdict {
    /// The probes whose round trips stand for the origin's latency: those that count (a
    /// group's latency is the mean of its enabled, not monitoring-only members').
    pub fn latency_keys(&self) -> impl Iterator<Item = &ProbeKey> {
        self.probes
            .iter()
            .filter(|p| p.role.counts())
            .map(|p| &*p.key)
    }

    /// The origin's latency from the per-target `latency`: the mean over
    /// [`Self::latency_keys`] that have one.
    pub fn latency(&self, latency: impl Fn(&ProbeKey) -> Option<f64>) -> Option<f64> {
        let (mut sum, mut n) = (0.0, 0u32);
        for ms in self.latency_keys().filter_map(latency) {
            sum += ms;
            n += 1;
        }
        (n > 0).then(|| sum / f64::from(n))
    }

    /// May take traffic: enabled and healthy (unknown is down).
    pub fn takes_traffic(&self) -> bool {
        self.enabled && self.healthy.is_healthy()
    }
}

impl PoolVerdicts {
    /// May take traffic as a healthy pool (a fallback pool takes it whatever this says).
    pub fn takes_traffic(&self) -> bool {
        self.enabled && self.healthy.is_healthy()
    }

    /// The pool's state as people read it.
    pub fn state(&self) -> PoolState {
        let all_up = self
            .origins
            .iter()
            .all(|o| !o.enabled || o.healthy.is_healthy());
        PoolState::of(self.enabled, self.healthy, all_up)
    }
}

/// A pool's verdicts without what every controller's own plan already knows (addresses,
/// probes, whether enabled): what a judging controller hands to the controllers following it
/// (replicas on one database), which take them as they are ([`super::Engine::adopt`]) instead
/// of deciding again from older facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    pub pool: PoolId,
    pub healthy: Verdict,
    pub regions: RegionVerdicts,
    /// In the pool's order; names let a follower whose catalog differs see that it does.
    pub origins: Vec<DecidedOrigin>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecidedOrigin {
    pub name: String,
    pub healthy: Verdict,
    pub reason: FailureReason,
    pub regions: RegionVerdicts,
}

impl PoolVerdicts {
    /// What this pool's judge decided, to hand to followers.
    pub fn decided(&self) -> Decided {
        Decided {
            pool: self.pool,
            healthy: self.healthy,
            regions: self.regions,
            origins: self
                .origins
                .iter()
                .map(|o| DecidedOrigin {
                    name: o.name.to_string(),
                    healthy: o.healthy,
                    reason: o.reason,
                    regions: o.regions,
                })
                .collect(),
        }
    }
}
