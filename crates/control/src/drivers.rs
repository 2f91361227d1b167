//! The controller's drivers: the loops that feed it time and changes. The binary spawns
//! them; everything they call is the controller's (and, below it, the core's).

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use vantage_core::region::RegionCode;
use vantage_core::routing::RoutingTable;

use crate::Controller;

/// Keeps the health engine in step with the catalog. Bursts of writes are coalesced: a
/// change takes effect once writes have paused for 100 ms, or at the latest
/// [`COALESCE_AT_MOST`] after the first one (a bulk load re-plans once a second, not once
/// per write: each re-plan walks every pool).
///
/// It listens from the moment it is called, not from when the returned future first runs: a
/// change committed in between is not missed.
pub fn follow_config(state: Arc<Controller>) -> impl std::future::Future<Output = ()> {
    let mut changes = state.config_changes();
    async move {
        loop {
            if changes.changed().await.is_err() {
                return;
            }
            let first = tokio::time::Instant::now();
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let more = changes.has_changed().unwrap_or(false);
                changes.borrow_and_update();
                if !more || first.elapsed() >= COALESCE_AT_MOST {
                    break;
                }
            }
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
}

/// The longest a burst of writes holds back its re-plan.
pub const COALESCE_AT_MOST: Duration = Duration::from_secs(1);

/// Retired and long-silent locations are looked for this often (it walks every vote).
const FORGET_EVERY: Duration = Duration::from_secs(30);

/// Advances health time exactly when the engine asks (`Engine::poll_timeout`), off the async
/// threads: it sleeps until then, or until new input needs an earlier wake-up. With nothing
/// going stale, an idle controller does nothing at all.
pub async fn tick(state: Arc<Controller>) {
    let mut forget = tokio::time::interval(FORGET_EVERY);
    forget.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    forget.tick().await;
    loop {
        let due = state.plan_wake();
        let wait = due.map(|at| {
            let micros = at.unix_micros() - state.now().unix_micros();
            Duration::from_micros(u64::try_from(micros).unwrap_or(0))
        });
        let st = Arc::clone(&state);
        let job: Box<dyn FnOnce() + Send> = tokio::select! {
            () = sleep_or_forever(wait) => Box::new(move || st.tick()),
            () = state.woken() => continue,
            _ = forget.tick() => Box::new(move || st.forget_retired_locations()),
        };
        if let Err(e) = tokio::task::spawn_blocking(job).await {
            tracing::error!(error = %e, "health tick failed");
        }
    }
}

/// Sleeps for `wait`, or forever when there is nothing to wait for.
pub(crate) async fn sleep_or_forever(wait: Option<Duration>) {
    match wait {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// Publishes the health view when a burst of changes held it back (see
/// `Controller::flush_health`): at most a few milliseconds after the last change.
pub async fn publish_health(state: Arc<Controller>) {
    let wait = Duration::from_micros(
        u64::try_from(crate::health::HEALTH_PUBLISH_EVERY_MICROS).unwrap_or(0),
    );
    loop {
        state.health_waiting().await;
        tokio::time::sleep(wait).await;
        state.flush_health();
    }
}

/// Snapshots are rebuilt at least this often, so RTTs (dynamic latency) move.
const REFRESH: Duration = Duration::from_secs(5);

/// Publishes the installation's routing snapshot: rebuilt off the async threads after every
/// assignment or verdict change, and every [`REFRESH`]. `secret` keys the origin identities
/// in affinity cookies. Followers (the built-in data plane through [`follow_snapshots`],
/// edges through `/edge/v1`) only ever read the latest.
pub fn publish_snapshots(
    state: Arc<Controller>,
    secret: Arc<[u8]>,
) -> impl std::future::Future<Output = ()> {
    // Subscribed now, so no change between this call and the first poll is missed.
    let mut config = state.assignment_changes();
    let mut verdicts = state.verdict_changes();
    async move {
        let mut refresh = tokio::time::interval(REFRESH);
        loop {
            tokio::select! {
                _ = config.changed() => {}
                _ = verdicts.changed() => {}
                _ = refresh.tick() => {}
            }
            config.borrow_and_update();
            verdicts.borrow_and_update();
            let st = Arc::clone(&state);
            let secret = Arc::clone(&secret);
            if let Err(e) = tokio::task::spawn_blocking(move || st.publish_snapshot(&secret)).await
            {
                tracing::error!(error = %e, "building a routing snapshot failed");
            }
        }
    }
}

/// Keeps `routes` at the controller's latest snapshot as a data plane in `region` sees it:
/// the same path an edge takes, in-process.
pub fn follow_snapshots(
    state: Arc<Controller>,
    routes: Arc<ArcSwap<RoutingTable>>,
    region: Option<RegionCode>,
) -> impl std::future::Future<Output = ()> {
    let mut changes = state.snapshot_changes();
    async move {
        let mut applied: Option<Arc<vantage_core::routing::Snapshot>> = None;
        loop {
            let snapshot = state.snapshot();
            changes.borrow_and_update();
            let before = routes.load_full();
            let last = applied.clone();
            let next = Arc::clone(&snapshot);
            let table = tokio::task::spawn_blocking(move || {
                RoutingTable::next(last.as_deref().map(|s| (&*before, s)), &next, region)
            })
            .await;
            match table {
                Ok(table) => {
                    routes.store(Arc::new(table));
                    applied = Some(snapshot);
                }
                Err(e) => tracing::error!(error = %e, "applying a routing snapshot failed"),
            }
            if changes.changed().await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use vantage_core::catalog::Catalog;
    use vantage_core::monitor::MonitorDraft;
    use vantage_core::pool::{OriginDraft, PoolDraft};
    use vantage_core::{AccountId, MonitorId, PoolId, Timestamp};
    use vantage_store::memory::MemoryStore;
    use vantage_store::Store;

    /// A controller over an in-memory store holding one account, its writer running.
    pub(crate) fn controller() -> (Arc<Controller>, AccountId) {
        controller_on(Arc::new(crate::SystemClock))
    }

    /// The same, reading time from `clock`.
    fn controller_on(clock: Arc<dyn crate::Clock>) -> (Arc<Controller>, AccountId) {
        controller_over(Arc::new(MemoryStore::default()), clock)
    }

    /// The same, over `store`.
    fn controller_over(
        store: Arc<MemoryStore>,
        clock: Arc<dyn crate::Clock>,
    ) -> (Arc<Controller>, AccountId) {
        let a = AccountId::from_bytes([1; 16]);
        let changes = Catalog::default()
            .create_account(a, "a".into(), clock.now())
            .unwrap();
        store.commit(&changes).unwrap();
        let (c, writer) =
            Controller::load_with(store, clock, Arc::new(crate::ids::RandomIds)).unwrap();
        std::thread::spawn(move || writer.run());
        (c, a)
    }

    /// Commits monitor `spec` (id 2) and pool `p` (id 3) of one origin at 192.0.2.1 under it.
    async fn monitored_pool(c: &Controller, a: AccountId, spec: MonitorDraft) -> PoolId {
        let m = MonitorId::from_bytes([2; 16]);
        let spec = spec.validate().unwrap();
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
        let p = PoolId::from_bytes([3; 16]);
        c.commit(move |cat, now| {
            let (spec, pool, monitor) = (spec.clone(), pool.clone(), monitor.clone());
            chain(
                cat,
                vec![
                    Box::new(move |c| c.create_monitor(a, m, spec, now)),
                    Box::new(move |c| c.create_pool(a, p, pool, monitor, now)),
                ],
            )
        })
        .await
        .unwrap();
        p
    }

    /// Commits a pool of one origin under an HTTP monitor, with the configuration follower
    /// running, and returns once the probe assignment moved.
    pub(crate) async fn assigned_pool(c: &Arc<Controller>, a: AccountId) -> PoolId {
        tokio::spawn(follow_config(Arc::clone(c)));
        let mut assignments = c.assignment_changes();
        let spec = MonitorDraft {
            expected_codes: Some("200".into()),
            ..Default::default()
        };
        let p = monitored_pool(c, a, spec).await;
        // Whether the driver already ran depends on the machine's speed; only the outcome is
        // asserted.
        assignments.changed().await.unwrap();
        p
    }

    /// Runs catalog commands one after another on a copy, each seeing the ones before: their
    /// changes, to commit at once.
    type Command<'a> = Box<dyn FnOnce(&Catalog) -> vantage_core::catalog::Outcome + 'a>;

    fn chain(catalog: &Catalog, commands: Vec<Command<'_>>) -> vantage_core::catalog::Outcome {
        let mut next = catalog.clone();
        let mut all = Vec::new();
        for command in commands {
            let changes = command(&next)?;
            for ch in &changes {
                next.apply(ch.clone());
            }
            all.extend(changes);
        }
        Ok(all)
    }

    /// In virtual time: a committed pool reaches the probe assignment through the driver,
    /// coalesced about 100 ms after the write.
    #[tokio::test(start_paused = true)]
    async fn a_configuration_change_reaches_the_assignment() {
        let (c, a) = controller();
        assigned_pool(&c, a).await;
        let assigned = c.assignment(vantage_core::region::RegionCode::Weu, None);
        assert_eq!(assigned.len(), 1);
        assert_eq!(assigned[0].key.address, "192.0.2.1");
    }

    /// A load balancer committed to the catalog is published to the data plane's snapshot
    /// (through the configuration follower, then the publisher), without any request waiting.
    #[tokio::test]
    async fn a_committed_load_balancer_is_published() {
        use vantage_core::load_balancer::LoadBalancerDraft;
        use vantage_core::zone::Overlap;
        use vantage_core::{LoadBalancerId, ZoneId};
        let (c, a) = controller();
        let routes = Arc::new(ArcSwap::from_pointee(RoutingTable::default()));
        tokio::spawn(follow_config(Arc::clone(&c)));
        tokio::spawn(publish_snapshots(Arc::clone(&c), Arc::from(&b"k"[..])));
        tokio::spawn(follow_snapshots(Arc::clone(&c), Arc::clone(&routes), None));
        let (pool, _) = PoolDraft {
            name: Some("p".into()),
            origins: Some(vec![OriginDraft {
                name: Some("o".into()),
                address: Some("192.0.2.1".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }
        .validate()
        .unwrap();
        let (z, p) = (ZoneId::from_bytes([4; 16]), PoolId::from_bytes([3; 16]));
        c.commit(move |cat, now| {
            let lb = LoadBalancerDraft {
                name: Some("www.example.com".into()),
                default_pools: Some(vec![p.to_string()]),
                fallback_pool: Some(p.to_string()),
                ..Default::default()
            };
            let pool = pool.clone();
            chain(
                cat,
                vec![
                    Box::new(move |c| c.create_zone(a, z, "example.com", Overlap::Refuse, now)),
                    Box::new(move |c| c.create_pool(a, p, pool, Default::default(), now)),
                    Box::new(move |c| {
                        c.create_load_balancer(z, LoadBalancerId::from_bytes([5; 16]), lb, now)
                    }),
                ],
            )
        })
        .await
        .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while routes.load().route("www.example.com").is_none() {
            assert!(tokio::time::Instant::now() < deadline, "never published");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            routes.load().route("www.example.com").unwrap().pools.len(),
            1
        );
    }

    /// The time driver wakes the engine when a vote goes stale, not every second: a result
    /// followed by silence turns the pool unknown after three intervals, and getting there in
    /// virtual time takes a handful of engine wake-ups, not one per second.
    #[tokio::test(start_paused = true)]
    async fn the_engine_is_woken_when_it_asks_not_every_second() {
        use crate::clock::TokioClock;
        use vantage_core::health::{Facts, Outcome, Verdict};
        let start = Timestamp::from_unix_micros(1_700_000_000_000_000);
        let (c, a) = controller_on(Arc::new(TokioClock::starting_at(start)));
        let (key, p, here) = probed_origin(&c, a).await;
        let reached = Facts {
            outcome: Outcome::Reached,
            rtt_micros: Some(1_000),
        };
        c.record(&here, None, &key, &reached, c.now()).unwrap();
        // Published at once, or by the publishing driver within milliseconds.
        c.flush_health();
        let healthy = |c: &Controller| c.health_view().pool(p).map(|v| v.healthy);
        assert_eq!(healthy(&c), Some(Verdict::Healthy));

        let begun = tokio::time::Instant::now();
        let mut verdicts = c.verdict_changes();
        tokio::spawn(tick(Arc::clone(&c)));
        while healthy(&c) != Some(Verdict::Unknown) {
            verdicts.changed().await.unwrap();
        }
        let waited = begun.elapsed();
        assert!(
            waited >= Duration::from_secs(180),
            "stale after three intervals, not {waited:?}"
        );
        assert!(
            c.ticks() <= 4,
            "{} engine wake-ups over {waited:?} of virtual time",
            c.ticks()
        );
    }

    /// Waits until the writer has run everything queued before this call.
    async fn written(c: &Controller) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        c.enqueue(move |_| {
            let _ = tx.send(());
        });
        rx.await.unwrap();
    }

    /// Holds the writer until the returned sender sends (or is dropped).
    fn hold_writer(c: &Controller) -> std::sync::mpsc::Sender<()> {
        let (release, hold) = std::sync::mpsc::channel::<()>();
        c.enqueue(move |_| {
            let _ = hold.recv();
        });
        release
    }

    /// One origin, probed here: its key, the pool and the place it is probed from.
    async fn probed_origin(
        c: &Arc<Controller>,
        a: AccountId,
    ) -> (
        vantage_core::health::ProbeKey,
        PoolId,
        vantage_core::health::Location,
    ) {
        let here = vantage_core::health::Location {
            region: vantage_core::region::RegionCode::Weu,
            name: "here".into(),
        };
        c.set_installation(crate::Installation {
            builtin_location: Some(here.clone()),
            ..Default::default()
        });
        let mut assignments = c.assignment_changes();
        tokio::spawn(follow_config(Arc::clone(c)));
        let spec = MonitorDraft {
            kind: Some("tcp".into()),
            port: Some(80),
            interval: Some(60),
            ..Default::default()
        };
        let p = monitored_pool(c, a, spec).await;
        assignments.changed().await.unwrap();
        let key = c.assignment(here.region, None)[0].key.clone();
        (key, p, here)
    }

    fn facts(reached: bool) -> vantage_core::health::Facts {
        use vantage_core::health::{Facts, FailureReason, Outcome};
        Facts {
            outcome: if reached {
                Outcome::Reached
            } else {
                Outcome::Error(FailureReason::TcpConnectionFailed)
            },
            rtt_micros: reached.then_some(1_000),
        }
    }

    /// The stored verdict of `key` as probed from `at`, once the writer has caught up with
    /// whatever it queued itself: a rewrite is queued while the write (or retention pass)
    /// that triggered it runs, so one more turn of the queue after those writes it.
    async fn stored_verdict(
        c: &Controller,
        store: &MemoryStore,
        key: &vantage_core::health::ProbeKey,
        at: &vantage_core::health::Location,
    ) -> Option<vantage_core::health::Verdict> {
        written(c).await;
        while c.health_queue.len() > 0 {
            written(c).await;
        }
        written(c).await;
        store
            .load_health()
            .unwrap()
            .into_iter()
            .find(|(k, l, _)| k == key && l == at)
            .map(|(_, _, s)| s.verdict)
    }

    /// A controller over a store of its own, probing one origin from its built-in location,
    /// whose healthy verdict (checked 40 s ago, so that a result now counts) is stored.
    async fn healthy_and_stored() -> (
        Arc<Controller>,
        Arc<MemoryStore>,
        vantage_core::health::ProbeKey,
        PoolId,
        vantage_core::health::Location,
    ) {
        let store = Arc::new(MemoryStore::default());
        let (c, a) = controller_over(Arc::clone(&store), Arc::new(crate::SystemClock));
        let (key, p, here) = probed_origin(&c, a).await;
        let earlier = Timestamp::from_unix_micros(c.now().unix_micros() - 40_000_000);
        c.record(&here, None, &key, &facts(true), earlier).unwrap();
        let stored = stored_verdict(&c, &store, &key, &here).await;
        assert_eq!(stored, Some(vantage_core::health::Verdict::Healthy));
        (c, store, key, p, here)
    }

    /// A verdict change dropped while the store was behind is not lost for good: once the
    /// store takes writes again, every location state is written anew, and a restart resumes
    /// from the verdict the engine held, not the stale one.
    #[tokio::test]
    async fn states_dropped_while_the_store_was_behind_are_written_again() {
        use vantage_core::health::{LocationState, ProbeKey, Verdict};
        let (c, store, key, p, here) = healthy_and_stored().await;

        // The store falls behind: the queue reaches its bound, and the state is dropped.
        let release = hold_writer(&c);
        let other = |i: usize| {
            let key = ProbeKey {
                monitor: MonitorId::from_bytes([9; 16]),
                address: format!("other-{i}.example"),
                port: 0,
                host: None,
            };
            (key, here.clone(), LocationState::default())
        };
        c.enqueue_health(crate::writer::HealthWrite {
            states: (0..crate::health_queue::MAX_QUEUED_HEALTH)
                .map(other)
                .collect(),
            events: Vec::new(),
        });
        c.record(&here, None, &key, &facts(false), c.now()).unwrap();
        assert_eq!(
            c.metrics.health_writes_dropped.get(),
            1,
            "the state; its event is kept, the account having none waiting"
        );
        c.flush_health();
        assert_eq!(
            c.health_view().pool(p).map(|v| v.healthy),
            Some(Verdict::Unhealthy),
            "the verdict follows the check all the same"
        );

        release.send(()).unwrap();
        let stored = stored_verdict(&c, &store, &key, &here).await;
        assert_eq!(stored, Some(Verdict::Unhealthy), "written again");
        let events = store
            .events(&vantage_store::EventFilter {
                since: None,
                until: None,
                pools: Some(vec![p]),
                limit: 10,
            })
            .unwrap();
        assert!(
            events
                .iter()
                .any(|(_, e)| e.pool_healthy == Verdict::Unhealthy),
            "the pool's event was kept: {events:?}"
        );
        drop(c);
        let (restarted, _writer) = Controller::load(store).unwrap();
        assert_eq!(
            restarted.health_view().pool(p).map(|v| v.healthy),
            Some(Verdict::Unhealthy)
        );
    }

    /// The same when the store refused the write: the states are written again on the next
    /// retention pass, even though no verdict changed since.
    #[tokio::test]
    async fn states_the_store_refused_are_written_with_the_next_retention_pass() {
        use vantage_core::health::Verdict;
        let (c, store, key, _, here) = healthy_and_stored().await;

        store.refuse_writes(true);
        c.record(&here, None, &key, &facts(false), c.now()).unwrap();
        let stored = stored_verdict(&c, &store, &key, &here).await;
        assert_eq!(
            stored,
            Some(Verdict::Healthy),
            "refused: the stale one stays"
        );
        store.refuse_writes(false);
        c.prune(vantage_store::Retention {
            max_age_micros: i64::MAX,
            max_rows: usize::MAX,
        });
        let stored = stored_verdict(&c, &store, &key, &here).await;
        assert_eq!(stored, Some(Verdict::Unhealthy), "written again");
    }

    /// One copy of the states is queued at a time: states lost again while one waits are
    /// left for the next trigger after it, not copied again behind it.
    #[tokio::test]
    async fn one_copy_of_the_states_waits_at_a_time() {
        use std::sync::atomic::Ordering::Relaxed;
        let (c, store, key, _, here) = healthy_and_stored().await;
        store.refuse_writes(true);
        c.record(&here, None, &key, &facts(false), c.now()).unwrap();
        written(&c).await;
        store.refuse_writes(false);
        let before = store.health_writes();
        let keep_all = vantage_store::Retention {
            max_age_micros: i64::MAX,
            max_rows: usize::MAX,
        };
        // The first pass queues a copy; states are lost again before it is written; the
        // second pass finds it queued.
        let release = hold_writer(&c);
        c.prune(keep_all);
        c.enqueue(|c| c.health_lost.store(true, Relaxed));
        c.prune(keep_all);
        release.send(()).unwrap();
        written(&c).await;
        written(&c).await;
        assert_eq!(store.health_writes(), before + 1, "one copy written");
        assert!(
            c.health_lost.load(Relaxed),
            "the loss after it is left for the next trigger"
        );
    }
}
