//! Which controller judges health when several share one store (replicas on one PostgreSQL
//! database). The store's lease decides ([`vantage_store::Store::judge_lease`]); here a
//! controller takes its turn, judges while it holds the lease, and otherwise follows:
//!
//! - the **judge** runs the engine on agents' results and writes states, events and alerts
//!   (the store refuses them from anyone else, inside the write's own transaction);
//! - a **follower** serves the API as every replica does, hands the agents' results it gets to
//!   the judge at the address the lease names, pauses its built-in agent, and shows the
//!   verdicts the judge's stored location states add up to, replayed every few seconds;
//! - when the lease lapses (the judge died or hangs), a follower takes it and resumes from
//!   the stored states: verdicts carry on, with no burst of events.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use vantage_core::health::Engine;
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
}

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
        match self.store.judge_lease(holder, address, micros)? {
            Lease::Sole => {}
            Lease::Held { epoch } => {
                *self.role.judge.lock().unwrap_or_else(|p| p.into_inner()) = None;
                let before = self.role.epoch.swap(epoch, Ordering::AcqRel);
                if self.role.following.load(Ordering::Acquire) || before != epoch {
                    tracing::info!(epoch, "this controller judges health now");
                    self.resume_from_store()?;
                    self.role.following.store(false, Ordering::Release);
                    self.assignment_version.send_modify(|v| *v += 1);
                }
            }
            Lease::Other { holder, address } => {
                *self.role.judge.lock().unwrap_or_else(|p| p.into_inner()) = Some(address);
                if !self.role.following.swap(true, Ordering::AcqRel) {
                    tracing::info!(judge = %holder, "another controller judges health; this one follows");
                    self.assignment_version.send_modify(|v| *v += 1);
                }
            }
        }
        Ok(())
    }

    /// Stops judging at once (the lease could not be renewed in time: another controller may
    /// hold it by now).
    pub fn stop_judging(&self) {
        if !self.role.following.swap(true, Ordering::AcqRel) {
            tracing::warn!("the judge lease could not be renewed; this controller stops judging");
            self.assignment_version.send_modify(|v| *v += 1);
        }
    }

    /// A follower's verdicts: the engine rebuilt from the judge's stored location states.
    pub fn follow_judge(&self) -> Result<(), StoreError> {
        if self.judges() {
            return Ok(());
        }
        self.resume_from_store()
    }

    /// Rebuilds the engine from the stored location states, as at a restart (their votes
    /// count, with the usual grace), and publishes its verdicts.
    fn resume_from_store(&self) -> Result<(), StoreError> {
        let states = self.store.load_health()?;
        // The catalog stays locked while the engine is rebuilt from its plan (catalog before
        // engine, as everywhere): a reconfiguration cannot slip in between and be lost.
        let catalog = self.catalog();
        let mut engine = self.engine();
        *engine = Engine::new(&catalog.health_plan(), states, self.now());
        let view = engine.view();
        drop((engine, catalog));
        if !view.same_verdicts(&self.health.load()) {
            self.health.store(Arc::new(view));
            self.verdict_version.send_modify(|v| *v += 1);
        }
        Ok(())
    }

    /// Hands an agent's batch of results to the judge, with the agent's own credentials and
    /// protocol version: the judge's answer, or why it could not be reached.
    pub async fn forward_results(
        &self,
        body: &Value,
        authorization: &str,
        version: Option<&str>,
    ) -> Result<(u16, Value), String> {
        let address = self
            .judge_address()
            .ok_or("no judge is known yet; try again")?;
        let client = self.role.client.get_or_init(|| {
            reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default()
        });
        let mut request = client
            .post(format!(
                "{}{}",
                address.trim_end_matches('/'),
                crate::agent_protocol::RESULTS_PATH
            ))
            .header("authorization", authorization)
            .json(body);
        if let Some(v) = version {
            request = request.header(crate::agent_protocol::VERSION_HEADER, v);
        }
        let answer = request
            .send()
            .await
            .map_err(|e| format!("the judge at {address} cannot be reached: {e}"))?;
        let status = answer.status().as_u16();
        let value = answer
            .json::<Value>()
            .await
            .map_err(|e| format!("the judge at {address} answered {status} without JSON: {e}"))?;
        Ok((status, value))
    }
}

/// Keeps this controller's turn at the lease: renews it (or tries to take it) three times
/// per lease, follows the judge in between when another holds it, and stops judging when it
/// could not renew within a lease (another controller may have it by then).
pub async fn follow_lease(
    state: Arc<Controller>,
    holder: String,
    address: String,
    lease: Duration,
) {
    let every = lease / 3;
    let mut renewed = tokio::time::Instant::now();
    loop {
        let st = Arc::clone(&state);
        let (h, a) = (holder.clone(), address.clone());
        let turn = tokio::task::spawn_blocking(move || {
            st.take_turn(&h, &a, lease)?;
            st.follow_judge()
        })
        .await;
        match turn {
            Ok(Ok(())) => renewed = tokio::time::Instant::now(),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the judge lease could not be taken or renewed");
                if renewed.elapsed() >= lease {
                    state.stop_judging();
                }
            }
            Err(e) => tracing::warn!(error = %e, "the lease job failed"),
        }
        tokio::time::sleep(every).await;
    }
}
