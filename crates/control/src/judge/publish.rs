//! The judge's side: what it publishes for followers to read (verdicts, probe-location
//! contacts, pools' RTTs), each fenced by the lease and written only when it moved.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use vantage_core::health::{Decided, PoolVerdicts};
use vantage_core::routing::PoolRtt;
use vantage_core::PoolId;
use vantage_store::StoreError;

use crate::Controller;

impl Controller {
    /// After the published view changed: a judge among replicas queues a publication of its
    /// verdicts (one at a time; it takes the latest view when it runs).
    pub(crate) fn hand_verdicts_on(&self) {
        if self.role.replicated.load(Ordering::Acquire)
            && self.judges()
            && !self.role.publishing.swap(true, Ordering::AcqRel)
        {
            // Queued from the writer, so behind the health writes the same change queues
            // after this call: followers never read a verdict before the states behind it.
            self.enqueue(|st| st.enqueue(Controller::publish_verdicts));
        }
    }

    /// Writes the pools whose verdicts changed since the last publication, and drops those
    /// gone, for followers to read. Blocking (the store). A failure is retried at the next
    /// turn at the lease.
    pub fn publish_verdicts(&self) {
        self.role.publishing.store(false, Ordering::Release);
        if !self.judges() || !self.role.replicated.load(Ordering::Acquire) {
            return;
        }
        // Held throughout, so two publications never interleave.
        let mut published = self
            .role
            .published
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let view = self.health_view();
        let changed: Vec<&Arc<PoolVerdicts>> = view
            .pools()
            .filter(|p| {
                published
                    .get(&p.pool)
                    .is_none_or(|old| !Arc::ptr_eq(old, p))
            })
            .collect();
        let removed: Vec<PoolId> = published
            .keys()
            .filter(|id| view.pool(**id).is_none())
            .copied()
            .collect();
        if changed.is_empty() && removed.is_empty() {
            return;
        }
        let decided: Vec<Decided> = changed.iter().map(|p| p.decided()).collect();
        // The contacts first: a follower woken by the verdicts lists the locations behind them.
        if let Err(e) = self.publish_contacts() {
            tracing::warn!(error = %e, "probe-location contacts could not be published");
        }
        match self.store.publish_verdicts(&decided, &removed) {
            Ok(()) => {
                for id in &removed {
                    published.remove(id);
                }
                for p in changed {
                    published.insert(p.pool, Arc::clone(p));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "verdicts could not be published to the other controllers")
            }
        }
    }

    /// After a location was heard from for the first time or again after silence: a judge
    /// among replicas publishes the contacts at once (queued, so ahead of any verdict the
    /// location's results change), not only at its next turn at the lease.
    pub(crate) fn contacts_moved(&self) {
        if self.role.replicated.load(Ordering::Acquire) && self.judges() {
            self.enqueue(|st| {
                if let Err(e) = st.publish_contacts() {
                    tracing::warn!(error = %e, "probe-location contacts could not be published");
                }
            });
        }
    }

    /// The judge's probe-location contacts, for followers to list (agents talk to the judge,
    /// so only it hears from all of them): written at a turn at the lease when they moved.
    pub(super) fn publish_contacts(&self) -> Result<(), StoreError> {
        let contacts: Vec<_> = self
            .engine()
            .locations()
            .map(|(l, c)| (l.clone(), *c))
            .collect();
        let mut published = self
            .role
            .contacts_published
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if *published != contacts {
            self.store.publish_contacts(&contacts)?;
            *published = contacts;
        }
        Ok(())
    }

    /// After a snapshot build: a judge among replicas publishes its pools' RTTs when they
    /// moved (snapshots are rebuilt every few seconds, so at most that often).
    pub(crate) fn hand_rtts_on(&self, rtts: HashMap<PoolId, PoolRtt>) {
        if !self.role.replicated.load(Ordering::Acquire) || !self.judges() {
            return;
        }
        if *self
            .role
            .rtts_published
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            == rtts
        {
            return;
        }
        self.enqueue(move |st| {
            let list: Vec<(PoolId, PoolRtt)> = rtts.iter().map(|(k, v)| (*k, v.clone())).collect();
            match st.store.publish_rtts(&list) {
                Ok(()) => {
                    *st.role
                        .rtts_published
                        .lock()
                        .unwrap_or_else(|p| p.into_inner()) = rtts;
                }
                Err(e) => tracing::warn!(error = %e, "pool RTTs could not be published"),
            }
        });
    }
}
