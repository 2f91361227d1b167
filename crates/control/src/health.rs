//! The controller's health operations: following the catalog, handing out probe
//! assignments, taking results in, and answering for verdicts. The binary's tasks drive
//! them; the decisions are the core engine's.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use vantage_core::choice::Choice;
use vantage_core::health::check::judge;
use vantage_core::health::engine::{Assignment, Event, PoolHealth, Refusal};

use vantage_core::health::{Engine, Facts, HealthView, Location, LocationState, ProbeKey};
use vantage_core::region::RegionCode;
use vantage_core::PoolId;

use crate::controller::Controller;

/// The most often the health view is republished under a burst of changes (µs); the
/// publishing driver catches up with the rest within this time.
pub(crate) const HEALTH_PUBLISH_EVERY_MICROS: i64 = 20_000;

impl Controller {
    /// The health engine, locked: hold it briefly, and lock the catalog first when both.
    pub fn engine(&self) -> std::sync::MutexGuard<'_, vantage_core::health::Engine> {
        self.engine.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes to the catalog, to wait on before [`AppState::reconfigure`].
    pub fn config_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.config_version.subscribe()
    }

    /// Changes to probe assignments, for agents to wait on.
    pub fn assignment_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.assignment_version.subscribe()
    }

    /// Changes to verdicts, for routing snapshots to follow.
    pub fn verdict_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.verdict_version.subscribe()
    }

    /// `key` as the engine holds it, when it does: the built-in agent's targets share the
    /// engine's keys (at 100,000 targets a second copy of each was 10 MB).
    pub fn shared_probe_key(&self, key: ProbeKey) -> Arc<ProbeKey> {
        self.engine()
            .shared_key(&key)
            .unwrap_or_else(|| Arc::new(key))
    }

    /// A probe target's smoothed RTT in ms, over every region that measured it.
    pub fn latency_ms(&self, key: &ProbeKey) -> Option<f64> {
        self.engine().latency_ms(key, None)
    }

    /// Every pool's verdicts as last decided: the one value routing, the dashboard, metrics
    /// and the pool health JSON read.
    pub fn health_view(&self) -> Arc<HealthView> {
        self.health.load_full()
    }

    /// After the engine moved (call with it locked): publishes its view if it changed, and
    /// wakes the time driver if the engine now needs waking sooner than planned.
    fn publish_health(&self, engine: &Engine) {
        let view = engine.view();
        if !view.same(&self.health.load()) {
            // A published view is shared, so the engine's next change copies its map of
            // pools: publishing at most every few milliseconds keeps a burst of results (every
            // location's first check) from copying it once per result.
            let now = self.now().unix_micros();
            let last = self.health_published_at.load(Ordering::Acquire);
            if now.saturating_sub(last) >= HEALTH_PUBLISH_EVERY_MICROS {
                self.store_health(view, now);
            } else if !self.health_pending.swap(true, Ordering::AcqRel) {
                self.health_flush.notify_one();
            }
        }
        let due = engine.poll_timeout().map_or(i64::MAX, |t| t.unix_micros());
        if due < self.planned_wake.load(Ordering::Acquire) {
            self.wake.notify_one();
        }
    }

    /// Publishes `view`, then tells whoever follows verdicts (routing, the dashboard): in
    /// that order, or a follower woken early reads the old view and sleeps through the new.
    fn store_health(&self, view: HealthView, now: i64) {
        self.health.store(Arc::new(view));
        self.health_published_at.store(now, Ordering::Release);
        self.hand_verdicts_on();
        self.verdict_version.send_modify(|v| *v += 1);
    }

    /// Publishes the engine's view now if a change is waiting (the publishing driver calls
    /// it shortly after [`Controller::health_waiting`] resolves). Routing follows.
    pub fn flush_health(&self) {
        if !self.health_pending.swap(false, Ordering::AcqRel) {
            return;
        }
        let view = self.engine().view();
        self.store_health(view, self.now().unix_micros());
    }

    /// Resolves when a changed view waits to be published.
    pub async fn health_waiting(&self) {
        self.health_flush.notified().await;
    }

    /// When the engine next needs [`Controller::tick`] (`None`: only new input can change
    /// anything), noted as the driver's plan so that input needing an earlier wake-up
    /// interrupts its sleep (through [`Controller::woken`]).
    pub fn plan_wake(&self) -> Option<vantage_core::Timestamp> {
        let engine = self.engine();
        // A follower's verdicts are the judge's: its engine is never advanced in time.
        let due = engine.poll_timeout().filter(|_| self.judges());
        self.planned_wake
            .store(due.map_or(i64::MAX, |t| t.unix_micros()), Ordering::Release);
        due
    }

    /// Resolves when input made the engine need waking before the planned time.
    pub async fn woken(&self) {
        self.wake.notified().await;
    }

    /// How many times the engine has been advanced in time (a gauge of idle cost).
    pub fn ticks(&self) -> u64 {
        self.ticks.load(Ordering::Relaxed)
    }

    /// Brings the engine up to date with the catalog. Verdicts the change alters are
    /// recorded as events. Returns how many.
    pub fn reconfigure(&self) -> usize {
        let n = {
            // Catalog before engine, as everywhere; the plan is made pool by pool as the engine
            // takes it.
            let catalog = self.catalog();
            let mut engine = self.engine();
            let events = engine.configure_pools(catalog.planned_pools(), self.now());
            drop(catalog);
            self.adopt_judged(&mut engine);
            let n = events.len();
            self.persist(vec![], events);
            self.publish_health(&engine);
            n
        };
        self.assignment_version.send_modify(|v| *v += 1);
        n
    }

    /// Every location's assignment starts over (this controller started or stopped judging):
    /// agents are sent the whole of it next.
    pub(crate) fn assignments_replaced(&self) {
        self.assignment_epoch.fetch_add(1, Ordering::AcqRel);
        self.assignment_version.send_modify(|v| *v += 1);
    }

    /// Where the assignment stands: the epoch of its numbering and its latest version.
    pub fn assignment_at(&self) -> (u64, u64) {
        let seq = self.engine().assignment_seq();
        (self.assignment_epoch.load(Ordering::Acquire), seq)
    }

    /// A location's assignment as the agent protocol sends it: a delta on `held` (the epoch
    /// and version the location holds) when the engine can make one, else the whole.
    pub fn assignment_message(
        &self,
        region: RegionCode,
        accounts: Option<&[vantage_core::AccountId]>,
        held: Option<(u64, u64)>,
    ) -> crate::agent_protocol::Assignment {
        use crate::agent_protocol::Assignment;
        let engine = self.engine();
        let (epoch, seq) = (
            self.assignment_epoch.load(Ordering::Acquire),
            engine.assignment_seq(),
        );
        if let Some((_, since)) = held.filter(|(e, _)| *e == epoch) {
            if let Some(delta) = engine.assignment_delta(region, accounts, since) {
                drop(engine);
                return Assignment::delta_from_engine(seq, epoch, since, delta);
            }
        }
        let whole = engine.assignment_for(region, accounts);
        drop(engine);
        Assignment::from_engine(seq, epoch, whole)
    }

    /// Advances health time: votes that went stale stop counting. Only the pools the engine
    /// asked to be woken for (`Engine::poll_timeout`) are looked at; the driver calls it when
    /// that time comes ([`Controller::plan_wake`]).
    pub fn tick(&self) {
        if !self.judges() {
            return;
        }
        self.ticks.fetch_add(1, Ordering::Relaxed);
        let silent = {
            let mut engine = self.engine();
            let (events, silent) = engine.handle_timeout(self.now());
            self.persist(vec![], events);
            self.publish_health(&engine);
            silent
        };
        for location in silent {
            tracing::warn!(%location, "probe location fell silent (no contact for 30 s); its votes expire after three intervals");
        }
    }

    /// Notes contact from a location. A location name belongs to one region: the same name
    /// in another region is refused.
    pub fn heartbeat(&self, location: &Location) -> Result<(), String> {
        let mut engine = self.engine();
        if let Some((other, _)) = engine
            .locations()
            .find(|(l, _)| l.name == location.name && l.region != location.region)
        {
            return Err(format!(
                "location name {:?} is already used in region {}",
                location.name, other.region
            ));
        }
        let before = engine
            .locations()
            .find(|(l, _)| *l == location)
            .map(|(_, c)| c.silent);
        engine.heartbeat(location, self.now());
        self.publish_health(&engine);
        drop(engine);
        if before != Some(false) {
            self.contacts_moved();
        }
        Ok(())
    }

    /// Every probe location heard from: where it is, when it was last heard, whether silent.
    pub fn probe_locations(
        &self,
    ) -> Vec<(Location, vantage_core::health::engine::LocationContact)> {
        self.engine()
            .locations()
            .map(|(l, c)| (l.clone(), *c))
            .collect()
    }

    /// Everything a location in `region` must probe (for pools of `accounts`, if given).
    pub fn assignment(
        &self,
        region: RegionCode,
        accounts: Option<&[vantage_core::AccountId]>,
    ) -> Vec<Assignment> {
        self.engine().assignment_for(region, accounts)
    }

    /// Forgets probe locations that may no longer vote: neither the built-in location nor
    /// bound to a usable agent token (revoked, expired or deleted), and those silent longer
    /// than the installation allows. Their votes go, and verdicts follow.
    pub fn forget_retired_locations(&self) {
        // The judge's to decide: a follower's engine is rebuilt from the stored states, and
        // must never delete those.
        if !self.judges() {
            return;
        }
        let now = self.now();
        let silent_for = self.installation().forget_silent_after_micros;
        let allowed: std::collections::BTreeSet<Location> = {
            let c = self.catalog();
            c.agent_locations(now)
                .map(|b| b.location.clone())
                .chain(self.installation().builtin_location.clone())
                .collect()
        };
        let mut engine = self.engine();
        let retired = engine.retired(&allowed, silent_for, now);
        if retired.is_empty() {
            return;
        }
        let mut events = Vec::new();
        for l in &retired {
            tracing::info!(location = %l, "probe location forgotten (retired, revoked or silent too long); its votes are gone");
            events.extend(engine.forget(l, now));
        }
        self.persist(vec![], events);
        self.publish_health(&engine);
        drop(engine);
        let forgotten = retired;
        self.enqueue(move |st| {
            let keep_all = vantage_store::Retention {
                max_age_micros: i64::MAX,
                max_rows: usize::MAX,
            };
            if let Err(e) = st.store.prune(&keep_all, now, &|_| true, &forgotten) {
                tracing::warn!(error = %e, "forgotten locations' states could not be deleted");
            }
        });
    }

    /// Takes one check's facts from `location`, if the core admits them (see
    /// [`vantage_core::health::Engine::admit`]; a refusal is counted, never silent): the core
    /// judges them against the target's monitor and updates verdicts. `at` is when the check
    /// ran (a replayed result keeps its time; one a little in the future is taken as now).
    /// `accounts` limits an agent bound to some accounts.
    pub fn record(
        &self,
        location: &Location,
        accounts: Option<&[vantage_core::AccountId]>,
        key: &ProbeKey,
        facts: &Facts,
        at: vantage_core::Timestamp,
    ) -> Result<(), Refusal> {
        let now = self.now();
        {
            let mut engine = self.engine();
            if let Err(refusal) = engine.admit(location, accounts, key, at, facts, now) {
                drop(engine);
                self.metrics
                    .results_refused
                    .get_or_create(&vantage_metrics::RefusedLabels {
                        location: location.to_string(),
                        reason: refusal.as_str().to_owned(),
                    })
                    .inc();
                return Err(refusal);
            }
            let at = at.min(now);
            let Some((shared, spec)) = engine.spec(key) else {
                return Err(Refusal::Unassigned);
            };
            let result = judge(spec, facts);
            let seconds = result.rtt_micros.map(|us| us as f64 / 1e6);
            if let Some(us) = result.rtt_micros {
                self.rtt
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .note(shared, at, us);
            }
            self.metrics.check(
                *key.monitor.as_bytes(),
                &location.to_string(),
                result.healthy,
                seconds,
            );
            let (state, events) = engine.record(location, key, result, at);
            let states: Vec<(ProbeKey, Location, LocationState)> = state
                .into_iter()
                .map(|s| (key.clone(), location.clone(), s))
                .collect();
            self.persist(states, events);
            self.publish_health(&engine);
        }
        Ok(())
    }

    /// Queues what the engine just changed for the store. Called with the engine locked and
    /// before [`Controller::publish_health`]: a judge's publication of the new verdicts to
    /// other replicas is queued after it, so a follower never reads a verdict before its
    /// event is stored. Never takes the catalog (catalog before engine, as everywhere): the
    /// alerts are made on the writer's thread.
    fn persist(&self, states: Vec<(ProbeKey, Location, LocationState)>, events: Vec<Event>) {
        // Only the judge writes health (the store would refuse a follower anyway).
        if (states.is_empty() && events.is_empty()) || !self.judges() {
            return;
        }
        for e in &events {
            tracing::info!(pool = %e.pool_name, healthy = ?e.pool_healthy, origins = e.origins.len(), "health changed");
            if e.pool_changed {
                self.metrics.verdict_change("pool", e.pool_healthy.known());
            }
            for o in &e.origins {
                self.metrics.verdict_change("origin", o.healthy.known());
            }
        }
        self.enqueue_health(crate::writer::HealthWrite { states, events });
    }

    /// Writes health the writer gathered (one transaction for consecutive writes). Runs on
    /// the writer's thread.
    pub(crate) fn write_health(&self, write: crate::writer::HealthWrite) {
        let crate::writer::HealthWrite { states, events } = write;
        let alerts = self.alerts_for(&events);
        // Once more on a failure: a batch carries up to a thousand checks' writes, and a
        // connection the store remakes on its next call (PostgreSQL) should not lose them all.
        let written = self
            .store
            .record_health(&states, &events, &alerts)
            .or_else(|e| {
                tracing::warn!(error = %e, "health changes could not be stored; trying once more");
                self.store.record_health(&states, &events, &alerts)
            });
        let stored = written.is_ok();
        match written {
            Ok(left_out) => {
                if left_out > 0 {
                    self.metrics.notifications_left_out.inc_by(left_out as u64);
                    tracing::warn!(
                        left_out,
                        "alerts not queued: their destinations already have {} notifications waiting",
                        vantage_store::PENDING_PER_DESTINATION
                    );
                }
                if alerts.len() > left_out {
                    self.outbox_version.send_modify(|v| *v += 1);
                }
            }
            Err(e) => {
                tracing::error!(
                    error = %e,
                    states = states.len(),
                    events = events.len(),
                    alerts = alerts.len(),
                    "health changes could not be stored; their events and alerts are lost, \
                     the states are written again once the store takes writes"
                );
                self.health_lost
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        self.health_queue.done(states.len(), &events);
        if stored {
            self.rewrite_lost_health();
        }
    }

    /// Once health changes were lost (dropped past the queue's bound, or refused by the
    /// store), queues a write of every location state the engine holds, so the store's record
    /// matches the verdicts again: a restart in between would otherwise resume from stale
    /// states. Queued under the engine, the one lock every health write is queued under: the
    /// copy is newer than every write queued before it, and older than every write queued
    /// after. Lost events (and their alerts) are not made again: they are history, and the
    /// states say where it led.
    ///
    /// Runs on the writer's thread after a write the store took, and with each retention
    /// pass (a store that recovered while no verdict changed), but only once the store has
    /// caught up (less than a tenth of the queue's bound waiting) and with no copy already
    /// queued: a store still behind would otherwise be handed an engine-sized write after
    /// every batch, each held in memory until its turn. The copy is written alone and not
    /// counted against the bound (counted, at more than the bound's states, it would make
    /// every write behind it be dropped, and so the next copy due).
    pub(crate) fn rewrite_lost_health(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        if !self.health_lost.load(Relaxed)
            || self.health_rewrite_queued.load(Relaxed)
            || !self.health_queue.caught_up()
            || !self.judges()
        {
            return;
        }
        let engine = self.engine();
        if !self.health_lost.swap(false, Relaxed) {
            return;
        }
        let states: Vec<_> = engine
            .location_states()
            .map(|(k, l, s)| (k.clone(), l.clone(), s.clone()))
            .collect();
        if states.is_empty() {
            return;
        }
        self.health_rewrite_queued.store(true, Relaxed);
        self.enqueue(move |st| {
            st.health_rewrite_queued.store(false, Relaxed);
            match st.store.record_health(&states, &[], &[]) {
                Ok(_) => tracing::info!(
                    states = states.len(),
                    "every location state written again: some health changes had not been stored"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "location states could not be written again; trying after the next write the store takes");
                    st.health_lost.store(true, Relaxed);
                }
            }
        });
        drop(engine);
    }

    /// The notifications `events` call for under the current policies, rendered.
    fn alerts_for(&self, events: &[Event]) -> Vec<vantage_store::NewDelivery> {
        if events.is_empty() {
            return Vec::new();
        }
        let c = self.catalog();
        let mut out = Vec::new();
        for e in events {
            let filter = c
                .pool(e.account, e.pool)
                .and_then(|p| p.spec.notification_filter.as_ref());
            for alert in vantage_core::notification::alerts(c.policies_of(e.account), e, filter) {
                let Some(policy) = c.policy(e.account, alert.policy) else {
                    continue;
                };
                out.push(vantage_store::NewDelivery {
                    account: e.account,
                    policy: alert.policy,
                    policy_name: policy.spec.name.clone(),
                    webhook: alert.webhook,
                    payload: vantage_wire::notification::payload(policy, e, &alert),
                    at: e.at,
                });
            }
        }
        out
    }

    /// Wakes when notifications were added to the outbox.
    pub fn outbox_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.outbox_version.subscribe()
    }

    /// Notifications due for an attempt (blocking: reads the store).
    pub fn due_deliveries(
        &self,
        limit: usize,
    ) -> Result<Vec<vantage_store::Delivery>, vantage_store::StoreError> {
        self.store.due_deliveries(self.now(), limit)
    }

    /// Claims a due notification for one attempt by this controller (blocking: writes the
    /// store); `false` when another controller sharing the store holds it.
    pub fn claim_delivery(
        &self,
        seq: i64,
        lease: std::time::Duration,
    ) -> Result<bool, vantage_store::StoreError> {
        let now = self.now();
        let until = vantage_core::Timestamp::from_unix_micros(
            now.unix_micros()
                .saturating_add(i64::try_from(lease.as_micros()).unwrap_or(i64::MAX)),
        );
        self.store.claim_delivery(seq, now, until)
    }

    /// Records a delivery attempt (blocking: writes the store).
    pub fn delivery_attempted(
        &self,
        seq: i64,
        outcome: Result<(), (String, Option<vantage_core::Timestamp>)>,
    ) -> Result<(), vantage_store::StoreError> {
        self.store.delivery_attempted(seq, self.now(), outcome)
    }

    /// An account's delivery log, newest first (blocking: reads the store).
    pub fn deliveries(
        &self,
        account: vantage_core::AccountId,
        limit: usize,
    ) -> Result<Vec<vantage_store::Delivery>, vantage_store::StoreError> {
        self.store.deliveries(account, limit).inspect_err(|e| {
            tracing::error!(error = %e, "reading the notification history");
        })
    }

    /// A webhook destination by id (its URL and secret, for delivery).
    pub fn webhook(
        &self,
        id: vantage_core::WebhookId,
    ) -> Option<vantage_core::notification::Webhook> {
        self.catalog().any_webhook(id).cloned()
    }

    /// Stored health events (blocking: reads the store).
    pub fn stored_events(
        &self,
        filter: &vantage_store::EventFilter,
    ) -> Result<Vec<(i64, Event)>, vantage_store::StoreError> {
        self.store.events(filter).inspect_err(|e| {
            tracing::error!(error = %e, "reading health events");
        })
    }

    /// The Prometheus exposition: counters plus the engine's verdicts and probe locations as
    /// gauges. `scope` says whether series naming tenants' objects are included.
    pub fn render_metrics(&self, scope: vantage_metrics::Scope) -> String {
        self.metrics.render(&self.metrics_snapshot(scope), scope)
    }

    /// The same exposition in pieces (see [`vantage_metrics::Metrics::render_chunks`]): a
    /// scrape of 100,000 origins never holds its whole text. Blocking: it reads the store's
    /// size and visits every monitored pool's verdicts.
    pub fn render_metrics_chunks(
        &self,
        scope: vantage_metrics::Scope,
        chunk: &mut dyn FnMut(String) -> bool,
    ) -> bool {
        self.metrics
            .render_chunks(&self.metrics_snapshot(scope), scope, chunk)
    }

    fn metrics_snapshot(&self, scope: vantage_metrics::Scope) -> vantage_metrics::Snapshot {
        use vantage_metrics::{LocationState, Snapshot};
        let clock = self.now().unix_micros();
        let verdicts = (scope == vantage_metrics::Scope::Detailed).then(|| {
            let pools = self
                .catalog()
                .all_pools()
                .filter(|p| p.spec.monitor.is_some())
                .map(|p| (p.id, p.spec.name.clone()))
                .collect();
            Arc::new(ScrapedVerdicts {
                health: self.health_view(),
                pools,
            }) as Arc<dyn vantage_metrics::Verdicts>
        });
        Snapshot {
            verdicts,
            locations: self
                .probe_locations()
                .into_iter()
                .map(|(l, c)| LocationState {
                    region: l.region.to_string(),
                    name: l.name.clone(),
                    silent: c.silent,
                    seconds_since_contact: (clock - c.last_seen.unix_micros()).max(0) as f64 / 1e6,
                })
                .collect(),
            // Read without the engine's lock: the store may be busy with a write.
            store_bytes: self.store.size_bytes().ok(),
            routing: None,
            agent: self.agent_metrics.get().cloned(),
        }
    }

    /// Applies `retention` to the store: old events and finished deliveries, and the
    /// location states of targets the engine no longer has (blocking: runs on the writer
    /// thread's turn, like any other write).
    pub fn prune(&self, retention: vantage_store::Retention) {
        // Retention is the judge's: a follower's catalog may lag and take the states the
        // judge just wrote for targets no longer probed.
        if !self.judges() {
            return;
        }
        self.enqueue(move |st| {
            let live: std::collections::HashSet<ProbeKey> = {
                let engine = st.engine();
                engine.targets().cloned().collect()
            };
            match st
                .store
                .prune(&retention, st.now(), &|k| live.contains(k), &[])
            {
                Ok(p) => {
                    for (kind, n) in [
                        ("events", p.events),
                        ("deliveries", p.deliveries),
                        ("states", p.states),
                    ] {
                        if n > 0 {
                            st.metrics
                                .pruned
                                .get_or_create(&vantage_metrics::KindLabels { kind: kind.into() })
                                .inc_by(n as u64);
                        }
                    }
                    if p != vantage_store::Pruned::default() {
                        tracing::info!(
                            events = p.events,
                            deliveries = p.deliveries,
                            states = p.states,
                            "retention pruned the store"
                        );
                    }
                }
                Err(e) => tracing::warn!(error = %e, "retention could not prune the store"),
            }
            st.rewrite_lost_health();
        });
    }

    /// A monitored pool's health; `None` for a pool without a monitor.
    pub fn pool_health(&self, pool: PoolId) -> Option<PoolHealth> {
        self.engine().pool_health(pool)
    }
}

/// The monitored pools' verdicts as one published view shows them, visited by the metrics
/// exposition without copying them.
struct ScrapedVerdicts {
    health: Arc<HealthView>,
    /// Monitored pools, with their names at scrape time.
    pools: Vec<(PoolId, String)>,
}

impl vantage_metrics::Verdicts for ScrapedVerdicts {
    fn visit(&self, f: &mut dyn FnMut(vantage_metrics::Verdict<'_>)) {
        use vantage_metrics::Verdict;
        for (id, name) in &self.pools {
            let Some(h) = self.health.pool(*id) else {
                continue;
            };
            if let Some(healthy) = h.healthy.known() {
                f(Verdict::Pool { id, name, healthy });
            }
            for o in h.origins.iter() {
                if let Some(healthy) = o.healthy.known() {
                    f(Verdict::Origin {
                        pool: name,
                        origin: &o.name,
                        address: &o.address,
                        healthy,
                    });
                }
                for (region, v) in o.regions.iter() {
                    if let Some(healthy) = v.known() {
                        f(Verdict::Region {
                            pool: name,
                            origin: &o.name,
                            region,
                            healthy,
                        });
                    }
                }
            }
        }
    }
}
