//! Which controller judges health when several share one store (replicas on one PostgreSQL
//! database). The store's lease decides ([`vantage_store::Store::judge_lease`]); here a
//! controller takes its turn, judges while it holds the lease, and otherwise follows:
//!
//! - the **judge** runs the engine on agents' results and writes states, events and alerts
//!   (the store refuses them from anyone else, inside the write's own transaction);
//! - a **follower** serves the API as every replica does, hands the agents' results it gets to
//!   the judge at the address the lease names, pauses its built-in agent, and serves the
//!   judge's verdicts: the judge publishes every pool whose verdicts changed, numbered in
//!   sequence, and followers adopt what changed since they last read (the core's
//!   `Engine::adopt`); the judge's per-location detail comes the same way, from the states
//!   it writes (numbered too; the engine is rebuilt from all of them every five minutes, to
//!   drop the ones deleted). A follower's engine is never advanced in time;
//! - when the lease lapses (the judge died or hangs), a follower takes it and resumes from
//!   the stored states: verdicts carry on, with no burst of events.
//!
//! This module keeps the turn at the lease; the judge's publications are in `publish`, a
//! follower's reading of them in `follow`, and what a follower asks of the judge over HTTP in
//! `hop`.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use vantage_core::health::engine::LocationContact;
use vantage_core::health::{Decided, PoolVerdicts};
use vantage_core::routing::PoolRtt;
use vantage_core::PoolId;
use vantage_store::{Lease, StoreError};

use crate::Controller;

/// How a controller stands towards the lease.
#[derive(Debug, Default)]
pub(crate) struct Role {
    /// Followers only; a controller alone on its store always judges.
    following: std::sync::atomic::AtomicBool,
    /// Where the judge is, when this controller follows.
    judge: std::sync::Mutex<Option<String>>,
    /// The epoch this controller last judged under (0: never): held again under another,
    /// someone else judged in between, so it resumes from the store.
    epoch: std::sync::atomic::AtomicI64,
    /// Hands agents' results to the judge.
    client: std::sync::OnceLock<reqwest::Client>,
    /// Shares its store with other controllers (it has been answered about the lease): a
    /// judge publishes its verdicts for them.
    replicated: std::sync::atomic::AtomicBool,
    /// The judge's verdicts as last published to the store, per pool (compared by pointer:
    /// a view shares every pool it did not change), and whether a publication is queued.
    published: std::sync::Mutex<HashMap<PoolId, Arc<PoolVerdicts>>>,
    publishing: std::sync::atomic::AtomicBool,
    /// A follower's copy of the judge's verdicts, and the sequence number read up to.
    adopted: std::sync::Mutex<HashMap<PoolId, Decided>>,
    seen: std::sync::atomic::AtomicI64,
    /// A follower's stored states read up to this sequence number, and when it last read
    /// them all (µs; 0: never, so it must).
    states_seen: std::sync::atomic::AtomicI64,
    rebuilt_at: std::sync::atomic::AtomicI64,
    /// States of targets this follower's engine did not know yet (its catalog was behind),
    /// tried again whenever the engine follows the catalog.
    pending: std::sync::Mutex<Vec<vantage_store::StoredState>>,
    /// Woken when the store says the judge published.
    published_now: Arc<tokio::sync::Notify>,
    /// The pools' RTTs the judge published last, and (a follower's) the judge's as read.
    rtts_published: std::sync::Mutex<HashMap<PoolId, PoolRtt>>,
    rtts_given: std::sync::Mutex<Arc<HashMap<PoolId, PoolRtt>>>,
    /// The probe-location contacts the judge published last.
    contacts_published: std::sync::Mutex<Vec<(vantage_core::health::Location, LocationContact)>>,
}

impl Role {
    pub(crate) fn verdicts_published(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.published_now)
    }
}

/// How often a follower rebuilds its engine from every stored state (dropping those the
/// judge deleted); in between it reads only the states written since.
pub const REBUILD_EVERY_MICROS: i64 = 300 * 1_000_000;

/// The most states a follower holds for targets it does not know yet.
const PENDING_STATES_AT_MOST: usize = 100_000;

/// How often a follower reads the verdicts the judge published when the store's
/// notification does not come first (a store without them, or one missed while reconnecting).
pub const FOLLOW_VERDICTS_EVERY: Duration = Duration::from_millis(200);

mod follow;
mod hop;
mod publish;

pub use follow::follow_verdicts;

impl Controller {
    /// Whether this controller judges health now (always, alone on its store).
    pub fn judges(&self) -> bool {
        !self.role.following.load(Ordering::Acquire)
    }

    /// Where the judge is, when this controller follows.
    pub fn judge_address(&self) -> Option<String> {
        self.role
            .judge
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// One turn at the lease as `holder` (reachable at `address`): takes or renews it, or
    /// learns who holds it, and judges or follows accordingly. Blocking (the store).
    pub fn take_turn(
        &self,
        holder: &str,
        address: &str,
        lease: Duration,
    ) -> Result<(), StoreError> {
        let micros = i64::try_from(lease.as_micros()).unwrap_or(i64::MAX);
        let lease = self.store.judge_lease(holder, address, micros)?;
        if lease != Lease::Sole {
            self.role.replicated.store(true, Ordering::Release);
        }
        match lease {
            Lease::Sole => {}
            Lease::Held { epoch } => {
                *self.role.judge.lock().unwrap_or_else(|p| p.into_inner()) = None;
                let before = self.role.epoch.swap(epoch, Ordering::AcqRel);
                if self.role.following.load(Ordering::Acquire) || before != epoch {
                    tracing::info!(epoch, "this controller judges health now");
                    // Judging first, so that no adoption of the old judge's verdicts slips
                    // in after the rebuild; then everything is published afresh.
                    self.role.following.store(false, Ordering::Release);
                    self.resume_from_store()?;
                    // Silence is judged on from where the last judge left it.
                    let contacts = self.store.contacts()?;
                    self.engine().restore_contacts(contacts);
                    self.role
                        .published
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .clear();
                    self.role
                        .contacts_published
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .clear();
                    self.role
                        .rtts_published
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .clear();
                    self.assignments_replaced();
                    self.wake.notify_one();
                }
                // Also retries a publication that failed.
                self.publish_verdicts();
                self.publish_contacts()?;
            }
            Lease::Other { holder, address } => {
                *self.role.judge.lock().unwrap_or_else(|p| p.into_inner()) = Some(address);
                if !self.role.following.load(Ordering::Acquire) {
                    self.start_following();
                    tracing::info!(judge = %holder, "another controller judges health; this one follows");
                }
                self.follow_contacts()?;
                self.follow_rtts()?;
            }
        }
        Ok(())
    }

    /// Becomes a follower: reads the judge's verdicts from the start.
    fn start_following(&self) {
        self.role
            .adopted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.role.seen.store(0, Ordering::Release);
        self.role.states_seen.store(0, Ordering::Release);
        self.role.rebuilt_at.store(0, Ordering::Release);
        if !self.role.following.swap(true, Ordering::AcqRel) {
            self.assignments_replaced();
        }
    }

    /// Stops judging at once (the lease could not be renewed in time: another controller may
    /// hold it by now).
    pub fn stop_judging(&self) {
        if !self.role.following.load(Ordering::Acquire) {
            tracing::warn!("the judge lease could not be renewed; this controller stops judging");
            self.start_following();
        }
    }
}

/// Keeps this controller's turn at the lease: the judge renews it three times per lease; a
/// follower asks every second at most, so a lapsed lease is taken within a second of
/// lapsing. A judge that could not renew within a lease stops judging (another controller
/// may have it by then).
pub async fn follow_lease(
    state: Arc<Controller>,
    holder: String,
    address: String,
    lease: Duration,
) {
    let renew = lease / 3;
    let ask = renew.min(Duration::from_secs(1));
    let mut renewed = tokio::time::Instant::now();
    loop {
        let st = Arc::clone(&state);
        let (h, a) = (holder.clone(), address.clone());
        match tokio::task::spawn_blocking(move || st.take_turn(&h, &a, lease)).await {
            Ok(Ok(())) => renewed = tokio::time::Instant::now(),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the judge lease could not be taken or renewed");
                if renewed.elapsed() >= lease {
                    state.stop_judging();
                }
            }
            Err(e) => tracing::warn!(error = %e, "the lease job failed"),
        }
        tokio::time::sleep(if state.judges() { renew } else { ask }).await;
    }
}
