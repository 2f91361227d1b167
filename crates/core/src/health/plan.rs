//! What the engine judges, as a plain value: every pool with its monitor and origins. The
//! catalog derives it (`Catalog::health_plan`); the engine never reads the catalog itself, so health depends on configuration only through this value.

use std::sync::Arc;

use crate::monitor::MonitorSpec;
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
    /// The pool's monitor; `None` for a pool without one (every enabled origin takes
    /// traffic unjudged).
    pub monitor: Option<(MonitorId, Arc<MonitorSpec>)>,
    pub origins: Vec<PlannedOrigin>,
}

impl PlannedPool {
    /// `pool` as the engine judges it, under `monitor` (its own, or a candidate's in a
    /// preview).
    pub fn of(pool: &Pool, monitor: Option<(MonitorId, Arc<MonitorSpec>)>) -> PlannedPool {
        PlannedPool {
            id: pool.id,
            account: pool.account,
            name: pool.spec.name.clone(),
            enabled: pool.spec.enabled,
            minimum: pool.spec.minimum_origins,
            check_regions: pool.spec.check_regions.clone(),
            monitor,
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
