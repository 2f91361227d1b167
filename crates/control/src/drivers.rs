//! The controller's drivers: the loops that feed it time and changes. The binary spawns
//! them; everything they call is the controller's (and, below it, the core's).

use std::sync::Arc;
use std::time::Duration;

use crate::Controller;

/// Keeps the health engine in step with the catalog. Bursts of writes are coalesced, so a
/// change takes effect about 100 ms after the write that made it.
pub async fn follow_config(state: Arc<Controller>) {
    let mut changes = state.config_changes();
    loop {
        if changes.changed().await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        changes.borrow_and_update();
        let st = Arc::clone(&state);
        match tokio::task::spawn_blocking(move || {
            // A revoked agent token takes its location's votes with it.
            st.forget_retired_locations();
            st.reconfigure()
        })
        .await
        {
            Ok(n) if n > 0 => tracing::debug!(events = n, "configuration changed verdicts"),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "reconfiguring health failed"),
        }
    }
}

/// Silent locations are looked for every this many ticks (it walks every vote).
const FORGET_EVERY_TICKS: u64 = 30;

/// Advances health time once a second, off the async threads. Each call looks only at the
/// pools whose votes went stale (`Engine::poll_timeout`), so a quiet second costs almost
/// nothing.
pub async fn tick(state: Arc<Controller>) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks = 0u64;
    loop {
        every.tick().await;
        ticks += 1;
        let st = Arc::clone(&state);
        let retire = ticks.is_multiple_of(FORGET_EVERY_TICKS);
        let ticked = tokio::task::spawn_blocking(move || {
            st.tick();
            if retire {
                st.forget_retired_locations();
            }
        });
        if let Err(e) = ticked.await {
            tracing::error!(error = %e, "health tick failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vantage_core::catalog::Catalog;
    use vantage_core::monitor::MonitorDraft;
    use vantage_core::pool::{OriginDraft, PoolDraft};
    use vantage_core::{AccountId, MonitorId, PoolId, Timestamp};
    use vantage_store::memory::MemoryStore;
    use vantage_store::Store;

    /// In virtual time: a committed pool reaches the probe assignment through the driver,
    /// coalesced about 100 ms after the write.
    #[tokio::test(start_paused = true)]
    async fn a_configuration_change_reaches_the_assignment() {
        let store = Arc::new(MemoryStore::default());
        let a = AccountId::from_bytes([1; 16]);
        let t = Timestamp::from_unix_micros(0);
        let changes = Catalog::default().create_account(a, "a".into(), t).unwrap();
        store.commit(&changes).unwrap();
        let (c, writer) = Controller::load(store).unwrap();
        std::thread::spawn(move || writer.run());
        tokio::spawn(follow_config(Arc::clone(&c)));
        let mut assignments = c.assignment_changes();
        let m = MonitorId::from_bytes([2; 16]);
        let spec = MonitorDraft {
            expected_codes: Some("200".into()),
            ..Default::default()
        }
        .validate()
        .unwrap();
        let (pool, monitor) = PoolDraft {
            name: Some("p".into()),
            origins: Some(vec![OriginDraft {
                name: Some("o".into()),
                address: Some("192.0.2.1".into()),
                ..Default::default()
            }]),
            monitor: Some(m.to_string()),
            ..Default::default()
        }
        .validate()
        .unwrap();
        c.commit(move |cat, now| {
            let mut changes = cat.create_monitor(a, m, spec, now)?;
            let mut next = cat.clone();
            for ch in &changes {
                next.apply(ch.clone());
            }
            changes.extend(next.create_pool(a, PoolId::from_bytes([3; 16]), pool, monitor, now)?);
            Ok::<_, vantage_core::catalog::CatalogError>(changes)
        })
        .await
        .unwrap();
        assert!(
            c.assignment(vantage_core::region::RegionCode::Weu, None)
                .is_empty(),
            "not before the driver ran"
        );
        assignments.changed().await.unwrap();
        let assigned = c.assignment(vantage_core::region::RegionCode::Weu, None);
        assert_eq!(assigned.len(), 1);
        assert_eq!(assigned[0].key.address, "192.0.2.1");
    }
}
