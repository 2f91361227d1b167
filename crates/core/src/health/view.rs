//! The health view: every pool's verdicts, decided once by the engine and published as one
//! immutable value. Routing, the dashboard, metrics, the pool health JSON and pool responses
//! all read it; none of them re-derives a verdict, a majority or the enabled gate.

use std::collections::HashMap;
use std::sync::Arc;

use super::check::FailureReason;
use super::verdict::{PoolState, RegionVerdicts, Verdict};
use super::ProbeKey;
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
    /// What probes it (`None`: not probed — no monitor, or disabled).
    pub key: Option<Arc<ProbeKey>>,
}

impl OriginVerdict {
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
