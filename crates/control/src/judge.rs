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

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use vantage_core::health::engine::LocationContact;
use vantage_core::health::{Decided, Engine, PoolVerdicts};
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
                    self.assignment_version.send_modify(|v| *v += 1);
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

    /// The judge's pools' RTTs, as this follower last read them.
    pub(crate) fn judges_rtts(&self) -> Arc<HashMap<PoolId, PoolRtt>> {
        Arc::clone(
            &self
                .role
                .rtts_given
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        )
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

    /// A follower takes the judge's pools' RTTs; its routing follows when they moved.
    fn follow_rtts(&self) -> Result<(), StoreError> {
        let rtts: HashMap<PoolId, PoolRtt> = self.store.rtts()?.into_iter().collect();
        let mut given = self
            .role
            .rtts_given
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if **given != rtts {
            *given = Arc::new(rtts);
            drop(given);
            self.verdict_version.send_modify(|v| *v += 1);
        }
        Ok(())
    }

    /// A follower takes the judge's probe-location contacts.
    fn follow_contacts(&self) -> Result<(), StoreError> {
        let contacts = self.store.contacts()?;
        let mut engine = self.engine();
        if !self.judges() {
            engine.restore_contacts(contacts);
        }
        Ok(())
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
    fn publish_contacts(&self) -> Result<(), StoreError> {
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
            self.assignment_version.send_modify(|v| *v += 1);
        }
    }

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

    /// A follower takes the verdicts the judge published since it last looked, and publishes
    /// them as its own. Blocking (the store).
    pub fn follow_verdicts(&self) -> Result<(), StoreError> {
        if self.judges() {
            return Ok(());
        }
        // The verdicts first, then what the judge wrote before them (their states, the
        // locations' contacts): read in this order, nothing shown is older than a verdict.
        let seen = self.role.seen.load(Ordering::Acquire);
        let (next, decided) = self.store.verdicts_since(seen)?;
        self.follow_contacts()?;
        self.follow_judge()?;
        if decided.is_empty() {
            return Ok(());
        }
        let mut engine = self.engine();
        if self.judges() {
            // Became the judge meanwhile: its own verdicts stand.
            return Ok(());
        }
        {
            let mut adopted = self.role.adopted.lock().unwrap_or_else(|p| p.into_inner());
            for d in decided {
                engine.adopt(&d);
                adopted.insert(d.pool, d);
            }
        }
        self.role.seen.store(next, Ordering::Release);
        let view = engine.view();
        drop(engine);
        self.publish_adopted(view);
        Ok(())
    }

    /// A follower's engine, just rebuilt or reconfigured on its own, takes the judge's
    /// verdicts again (call with the engine locked). Keeps the copy bounded: verdicts of pools
    /// this engine does not know are kept for a catalog that is behind, but not past twice
    /// the pools it knows.
    pub(crate) fn adopt_judged(&self, engine: &mut Engine) {
        if self.judges() {
            return;
        }
        {
            let mut pending = self.role.pending.lock().unwrap_or_else(|p| p.into_inner());
            let waiting = std::mem::take(&mut *pending);
            for (key, location, state) in waiting {
                if let Err(state) = engine.restore_state(&key, &location, state) {
                    pending.push((key, location, state));
                }
            }
        }
        let mut adopted = self.role.adopted.lock().unwrap_or_else(|p| p.into_inner());
        let mut unknown = Vec::new();
        for (id, d) in adopted.iter() {
            if !engine.adopt(d) && engine.view().pool(*id).is_none() {
                unknown.push(*id);
            }
        }
        if unknown.len() > engine.view().len() + 1000 {
            for id in unknown {
                adopted.remove(&id);
            }
        }
    }

    fn publish_adopted(&self, view: vantage_core::health::HealthView) {
        if !view.same(&self.health.load()) {
            self.health.store(Arc::new(view));
            self.verdict_version.send_modify(|v| *v += 1);
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

    /// A follower's engine rebuilt from every stored location state (their per-location
    /// detail; its verdicts stay the judge's), when it has none yet or its last rebuild is
    /// older than [`REBUILD_EVERY_MICROS`] (states the judge deleted go then); otherwise only the
    /// states written since it last looked. Blocking (the store).
    pub fn follow_judge(&self) -> Result<(), StoreError> {
        if self.judges() {
            return Ok(());
        }
        let now = self.now().unix_micros();
        let seen = self.role.states_seen.load(Ordering::Acquire);
        let rebuilt = self.role.rebuilt_at.load(Ordering::Acquire);
        if rebuilt == 0 || now.saturating_sub(rebuilt) >= REBUILD_EVERY_MICROS {
            return self.resume_from_store();
        }
        let (next, states) = self.store.states_since(seen)?;
        if states.is_empty() {
            return Ok(());
        }
        let mut engine = self.engine();
        if self.judges() {
            return Ok(());
        }
        let mut pending = self.role.pending.lock().unwrap_or_else(|p| p.into_inner());
        for (key, location, state) in states {
            if let Err(state) = engine.restore_state(&key, &location, state) {
                pending.push((key, location, state));
            }
        }
        if pending.len() > PENDING_STATES_AT_MOST {
            // Targets this replica may never know (deleted meanwhile): read all again.
            pending.clear();
            self.role.rebuilt_at.store(0, Ordering::Release);
        }
        self.role.states_seen.store(next, Ordering::Release);
        Ok(())
    }

    /// Rebuilds the engine from the stored location states, as at a restart (their votes
    /// count, with the usual grace), and publishes its verdicts; a follower's verdicts are
    /// then the judge's again.
    fn resume_from_store(&self) -> Result<(), StoreError> {
        let following = !self.judges();
        let (seen, states) = if following {
            self.store.states_since(0)?
        } else {
            (0, self.store.load_health()?)
        };
        // The catalog stays locked while the engine is rebuilt from its plan (catalog before
        // engine, as everywhere): a reconfiguration cannot slip in between and be lost.
        let catalog = self.catalog();
        let mut engine = self.engine();
        // Everything is read afresh: what waited for the catalog is older than that.
        self.role
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        *engine = Engine::new(&catalog.health_plan(), states, self.now());
        self.adopt_judged(&mut engine);
        let view = engine.view();
        drop((engine, catalog));
        if following {
            self.role.states_seen.store(seen, Ordering::Release);
            self.role
                .rebuilt_at
                .store(self.now().unix_micros(), Ordering::Release);
        }
        if !view.same_verdicts(&self.health.load()) {
            self.publish_adopted(view);
        }
        Ok(())
    }

    /// Hands an agent's batch of results to the judge as it came (the judge parses and
    /// checks it), with the agent's own credentials and protocol version: the judge's answer,
    /// or why it could not be reached.
    pub async fn forward_results(
        &self,
        body: Vec<u8>,
        authorization: &str,
        version: Option<&str>,
    ) -> Result<(u16, Value), String> {
        let mut headers = vec![("authorization", authorization.to_owned())];
        if let Some(v) = version {
            headers.push((crate::agent_protocol::VERSION_HEADER, v.to_owned()));
        }
        self.to_judge(
            reqwest::Method::POST,
            crate::agent_protocol::RESULTS_PATH,
            &headers,
            Some(body),
        )
        .await
    }

    /// Asks the judge for `path` (an API read) with the caller's own credentials: what only
    /// the judge knows first hand, such as each location's latest check.
    pub async fn ask_judge(
        &self,
        path: &str,
        credentials: &[(&'static str, String)],
    ) -> Result<(u16, Value), String> {
        self.to_judge(reqwest::Method::GET, path, credentials, None)
            .await
    }

    async fn to_judge(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&'static str, String)],
        body: Option<Vec<u8>>,
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
        // A read falls back to this replica's own answer: it must not wait long for a judge
        // that died.
        let patience = if method == reqwest::Method::GET {
            Duration::from_secs(2)
        } else {
            Duration::from_secs(10)
        };
        let mut request = client
            .request(method, format!("{}{path}", address.trim_end_matches('/')))
            .timeout(patience);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
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

/// Keeps a follower's verdicts and per-location detail the judge's: reads what the judge
/// published and the states it wrote when the store says it did, and every
/// [`FOLLOW_VERDICTS_EVERY`] anyway (nothing while this controller judges).
pub async fn follow_verdicts(state: Arc<Controller>) {
    let mut every = tokio::time::interval(FOLLOW_VERDICTS_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let published = state.role.verdicts_published();
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = published.notified() => {}
        }
        if state.judges() {
            continue;
        }
        let st = Arc::clone(&state);
        match tokio::task::spawn_blocking(move || st.follow_verdicts()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "the judge's verdicts could not be read"),
            Err(e) => tracing::warn!(error = %e, "the verdict job failed"),
        }
    }
}
