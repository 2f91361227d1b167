//! What the engine judges, as a plain value: every pool with its monitor and origins. The
//! catalog derives it (`Catalog::health_plan`); the engine never reads the catalog itself, so health depends on configuration only through this value.

use std::sync::Arc;

use crate::monitor::MonitorSpec;
use crate::monitor_group::Role;
use crate::pool::Pool;
use crate::region::CheckRegions;
use crate::{AccountId, MonitorId, PoolId};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct HealthPlan {
    pub pools: Vec<PlannedPool>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlannedPool {
    pub id: PoolId,
    pub account: AccountId,
    pub name: String,
    pub enabled: bool,
    pub minimum: u16,
    pub check_regions: CheckRegions,
    /// The monitors that judge each origin: the pool's own monitor as the one that counts,
    /// or its monitor group's enabled members. Empty for a pool without either (every
    /// enabled origin takes traffic unjudged).
    pub checks: Vec<PlannedCheck>,
    /// Whether `checks` come from a monitor group (its health shows each member).
    pub grouped: bool,
    pub origins: Vec<PlannedOrigin>,
}

/// One monitor judging a pool's origins, and what its verdict counts for.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedCheck {
    pub monitor: MonitorId,
    pub spec: Arc<MonitorSpec>,
    pub role: Role,
}

impl PlannedCheck {
    /// A pool's own monitor (or a preview's candidate).
    pub fn sole(monitor: MonitorId, spec: Arc<MonitorSpec>) -> PlannedCheck {
        PlannedCheck {
            monitor,
            spec,
            role: Role::SOLE,
        }
    }
}

impl PlannedPool {
    /// `pool` as the engine judges it, under `checks` (its own monitor or group, or a
    /// candidate's in a preview).
    pub fn of(pool: &Pool, checks: Vec<PlannedCheck>, grouped: bool) -> PlannedPool {
        PlannedPool {
            id: pool.id,
            account: pool.account,
            name: pool.spec.name.clone(),
            enabled: pool.spec.enabled,
            minimum: pool.spec.minimum_origins,
            check_regions: pool.spec.check_regions.clone(),
            checks,
            grouped,
            origins: pool
                .spec
                .origins
                .iter()
                .map(|o| PlannedOrigin {
                    name: o.name.clone(),
                    address: o.address.clone(),
                    port: o.port,
                    host: o.host.clone(),
                    enabled: o.enabled,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlannedOrigin {
    pub name: String,
    pub address: String,
    pub port: u16,
    pub host: Option<String>,
    pub enabled: bool,
}
