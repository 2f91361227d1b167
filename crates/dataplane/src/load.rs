//! Requests in flight per pool and per origin, for the least-outstanding policies. Counts
//! live outside the routing snapshots so that they survive a snapshot swap; an origin is
//! known by its pool and key, not its position.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock};

use vantage_core::routing::Route;
use vantage_core::steering::Context;
use vantage_core::PoolId;

/// The key under which a pool's own total is counted.
const POOL_TOTAL: u64 = u64::MAX;

#[derive(Debug, Default)]
pub struct Load {
    counters: RwLock<HashMap<(PoolId, u64), Arc<AtomicU32>>>,
}

/// One request in flight; counted down when dropped.
#[derive(Debug)]
pub struct InFlight([Arc<AtomicU32>; 2]);

impl Drop for InFlight {
    fn drop(&mut self) {
        for c in &self.0 {
            c.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Load {
    fn counter(&self, pool: PoolId, key: u64) -> Arc<AtomicU32> {
        if let Some(c) = self
            .counters
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(pool, key))
        {
            return c.clone();
        }
        self.counters
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry((pool, key))
            .or_default()
            .clone()
    }

    fn count(&self, pool: PoolId, key: u64) -> u32 {
        self.counters
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(pool, key))
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Counts a request to an origin until the returned guard is dropped.
    pub fn start(&self, pool: PoolId, origin: u64) -> InFlight {
        let counters = [self.counter(pool, POOL_TOTAL), self.counter(pool, origin)];
        for c in &counters {
            c.fetch_add(1, Ordering::Relaxed);
        }
        InFlight(counters)
    }

    /// Puts the current counts of a route's pools and origins into a steering context.
    pub fn fill(&self, route: &Route, ctx: &mut Context) {
        for (id, ups) in &route.upstreams {
            ctx.outstanding_pools
                .insert(*id, self.count(*id, POOL_TOTAL));
            for (i, u) in ups.iter().enumerate() {
                ctx.outstanding_origins
                    .insert((*id, i), self.count(*id, u.key));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_count_down() {
        let load = Load::default();
        let p = PoolId::from_bytes([1; 16]);
        let a = load.start(p, 1);
        let b = load.start(p, 2);
        assert_eq!((load.count(p, POOL_TOTAL), load.count(p, 1)), (2, 1));
        drop(a);
        assert_eq!((load.count(p, POOL_TOTAL), load.count(p, 1)), (1, 0));
        drop(b);
        assert_eq!(load.count(p, POOL_TOTAL), 0);
    }
}
