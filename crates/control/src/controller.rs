//! The controller's state: the catalog in memory and the store behind it.
//!
//! Reads take the catalog's read lock briefly and never touch the disk. Writes run on the
//! [`Writer`] thread, the commands queued behind one another as one group: check against the
//! catalog, commit to the store in one transaction, then apply to the catalog (see
//! [`crate::writer`]). A job, once queued, runs to completion, so a client hanging up
//! mid-request can never leave memory and disk disagreeing.

use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

use vantage_core::catalog::{Catalog, Change};
use vantage_core::health::Engine;
use vantage_core::Timestamp;
use vantage_store::{Store, StoreError};

use crate::clock::{Clock, SystemClock};
use crate::writer::{Job, Pending, Writer};

#[derive(Debug)]
struct WriterState {
    /// The store's external version when the catalog was last loaded.
    seen_version: u64,
}

pub struct Controller {
    catalog: RwLock<Catalog>,
    writer: Mutex<WriterState>,
    pub(crate) store: Arc<dyn Store>,
    jobs: tokio::sync::mpsc::UnboundedSender<Job>,
    /// Location states and events queued for the writer and not yet written, and its bound.
    pub(crate) health_queue: crate::health_queue::HealthQueue,
    /// When dropping health writes was last logged (µs), so a stalled store logs once a
    /// minute, not once a check.
    health_dropped_logged: std::sync::atomic::AtomicI64,
    /// Some health changes were dropped or failed to store: the engine's states are written
    /// again once the store takes writes ([`Controller::rewrite_lost_health`]).
    pub(crate) health_lost: std::sync::atomic::AtomicBool,
    /// A copy of every location state is queued and not yet written: one at a time.
    pub(crate) health_rewrite_queued: std::sync::atomic::AtomicBool,
    /// The health engine; lock after the catalog, never before it.
    pub(crate) engine: Mutex<Engine>,
    /// The engine's verdicts as last published: what every reader of health reads.
    pub(crate) health: arc_swap::ArcSwap<vantage_core::health::HealthView>,
    /// The instant (Unix µs) the time driver plans to wake the engine, and how to wake it
    /// sooner.
    pub(crate) planned_wake: std::sync::atomic::AtomicI64,
    pub(crate) wake: tokio::sync::Notify,
    pub(crate) ticks: std::sync::atomic::AtomicU64,
    /// When the health view was last published (µs), whether a newer one waits, and how the
    /// publishing driver is told.
    pub(crate) health_published_at: std::sync::atomic::AtomicI64,
    pub(crate) health_pending: std::sync::atomic::AtomicBool,
    pub(crate) health_flush: tokio::sync::Notify,
    /// Bumped after every change to the catalog.
    pub(crate) config_version: tokio::sync::watch::Sender<u64>,
    /// Bumped after the engine has followed a catalog change (probe assignments may differ).
    pub(crate) assignment_version: tokio::sync::watch::Sender<u64>,
    /// The numbering of assignment versions agents are sent: drawn at start, moved on when
    /// this controller starts or stops judging (its built-in location's assignment changes
    /// wholesale), so an agent's version from before, or from another controller, is never
    /// taken for one of these.
    pub(crate) assignment_epoch: std::sync::atomic::AtomicU64,
    /// Bumped after any origin's or pool's verdict changed (routing snapshots follow it).
    pub(crate) verdict_version: tokio::sync::watch::Sender<u64>,
    /// The routing snapshot as last published, and where every follower (the built-in data
    /// plane, edges) learns of a new one: its version.
    pub(crate) routing: crate::edges::Routing,
    /// Bumped after notifications were added to the outbox (the deliverer wakes up).
    pub(crate) outbox_version: tokio::sync::watch::Sender<u64>,
    /// Runs preview checks; absent when this Vantage has no probe location.
    pub(crate) previewer: std::sync::OnceLock<Arc<dyn crate::preview::PreviewRunner>>,
    pub(crate) previews: crate::preview::Previews,
    /// The checks previews ask of remote agents.
    pub(crate) remote_previews: crate::preview::remote::RemoteChecks,
    /// Whether this controller judges health or follows another that does.
    pub(crate) role: crate::judge::Role,
    /// Recent RTTs per probe target, for the dashboard's charts.
    pub(crate) rtt: Mutex<crate::rtt::RttHistory>,
    /// Prometheus counters, shared with the data plane.
    pub metrics: Arc<vantage_metrics::Metrics>,
    /// The built-in agent's own series (backlog, lateness), shown beside the controller's.
    pub(crate) agent_metrics: std::sync::OnceLock<Arc<vantage_metrics::AgentMetrics>>,
    /// What the operator set for the whole installation (`serve` flags); defaults until set.
    pub(crate) installation: std::sync::OnceLock<Installation>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn crate::ids::IdSource>,
}

/// Why a commit did not happen: the command refused it, or the store failed (and then
/// nothing was changed).
#[derive(Debug)]
pub enum CommitError<E> {
    Command(E),
    Store(StoreError),
}

/// Installation-wide policy, set once by the binary from `serve`'s flags. Every limit here is
/// documented in the README and answered with a clear error.
#[derive(Debug, Clone)]
pub struct Installation {
    /// Webhooks may point at loopback and link-local addresses (a single-machine setup whose
    /// receiver runs beside Vantage). Off: no tenant can make the controller post its secret
    /// to itself or to a cloud metadata service.
    pub allow_internal_webhooks: bool,
    /// Previews running at once, per account and in all.
    pub previews_per_account: usize,
    pub previews_total: usize,
    /// The built-in probe location, if this controller runs one: no agent token may speak
    /// for it.
    pub builtin_location: Option<vantage_core::health::Location>,
    /// A probe location silent this long is forgotten (dropped from lists, its votes gone).
    pub forget_silent_after_micros: i64,
    /// The most objects of each kind one account may hold.
    pub quotas: vantage_core::catalog::Quotas,
}

impl Default for Installation {
    fn default() -> Self {
        Self {
            allow_internal_webhooks: false,
            previews_per_account: 4,
            previews_total: 32,
            builtin_location: None,
            forget_silent_after_micros: 3600 * 1_000_000,
            quotas: vantage_core::catalog::Quotas::default(),
        }
    }
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller").finish_non_exhaustive()
    }
}

impl Controller {
    /// Loads the catalog from `store`, on the wall clock. The caller must run the returned
    /// [`Writer`].
    pub fn load(store: Arc<dyn Store>) -> Result<(Arc<Self>, Writer), StoreError> {
        Self::load_with(
            store,
            Arc::new(SystemClock),
            Arc::new(crate::ids::RandomIds),
        )
    }

    /// Loads the catalog from `store`, reading time from `clock` and new ids from `ids`
    /// (tests replace both).
    pub fn load_with(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn crate::ids::IdSource>,
    ) -> Result<(Arc<Self>, Writer), StoreError> {
        let seen_version = store.external_version()?;
        let catalog = store.load_catalog()?;
        let engine = Engine::new(&catalog.health_plan(), store.load_health()?, clock.now());
        let health = arc_swap::ArcSwap::from_pointee(engine.view());
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let state = Arc::new(Self {
            catalog: RwLock::new(catalog),
            writer: Mutex::new(WriterState { seen_version }),
            store,
            jobs: tx,
            health_queue: crate::health_queue::HealthQueue::default(),
            health_dropped_logged: std::sync::atomic::AtomicI64::new(i64::MIN),
            health_lost: std::sync::atomic::AtomicBool::new(false),
            health_rewrite_queued: std::sync::atomic::AtomicBool::new(false),
            engine: Mutex::new(engine),
            health,
            planned_wake: std::sync::atomic::AtomicI64::new(i64::MAX),
            wake: tokio::sync::Notify::new(),
            ticks: std::sync::atomic::AtomicU64::new(0),
            health_published_at: std::sync::atomic::AtomicI64::new(i64::MIN),
            health_pending: std::sync::atomic::AtomicBool::new(false),
            health_flush: tokio::sync::Notify::new(),
            config_version: tokio::sync::watch::Sender::new(0),
            assignment_version: tokio::sync::watch::Sender::new(0),
            assignment_epoch: std::sync::atomic::AtomicU64::new(rand::random()),
            verdict_version: tokio::sync::watch::Sender::new(0),
            routing: crate::edges::Routing::default(),
            outbox_version: tokio::sync::watch::Sender::new(0),
            previewer: std::sync::OnceLock::new(),
            agent_metrics: std::sync::OnceLock::new(),
            previews: crate::preview::Previews::default(),
            remote_previews: crate::preview::remote::RemoteChecks::default(),
            role: crate::judge::Role::default(),
            rtt: Mutex::default(),
            metrics: vantage_metrics::Metrics::new(),
            installation: std::sync::OnceLock::new(),
            clock,
            ids,
        });
        Ok((Arc::clone(&state), Writer { state, jobs: rx }))
    }

    /// The installation's secret `name` as the store shares it among replicas (`None`: this
    /// controller is alone on its store). Blocking.
    pub fn shared_secret(
        &self,
        name: &str,
        proposed: &[u8],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.store.shared_secret(name, proposed)
    }

    /// Calls `wake` when another process may have committed to the catalog (see
    /// [`Store::on_external_change`]); the binary's store watcher reloads then. Published
    /// verdicts wake this controller's follower loop ([`crate::judge::follow_verdicts`]).
    pub fn on_external_change(&self, wake: Box<dyn Fn() + Send + Sync>) {
        let verdicts = self.role.verdicts_published();
        self.store
            .on_external_change(Box::new(move |what| match what {
                vantage_store::External::Catalog => wake(),
                vantage_store::External::Verdicts => verdicts.notify_one(),
            }));
    }

    /// The controller's time.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Bytes for a new object's id.
    pub fn fresh_id(&self) -> [u8; 16] {
        self.ids.next_id()
    }

    /// The recent RTTs of a probe target (for the dashboard's charts).
    pub fn rtt_series(&self, key: &vantage_core::health::ProbeKey) -> Vec<(i64, u32)> {
        self.rtt
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .series(key)
    }

    /// Sets the installation's policy (once, by the binary, before serving).
    pub fn set_installation(&self, installation: Installation) {
        let quotas = installation.quotas;
        if self.installation.set(installation).is_ok() {
            let mut catalog = self.catalog.write().unwrap_or_else(|p| p.into_inner());
            catalog.set_quotas(quotas);
        }
    }

    pub fn installation(&self) -> &Installation {
        static DEFAULT: std::sync::OnceLock<Installation> = std::sync::OnceLock::new();
        self.installation
            .get()
            .unwrap_or_else(|| DEFAULT.get_or_init(Installation::default))
    }

    /// Why `url` may not be a webhook here, if it may not (see [`Installation`]).
    pub fn forbidden_webhook(&self, url: &str) -> Option<&'static str> {
        if self.installation().allow_internal_webhooks {
            return None;
        }
        vantage_core::notification::internal_target(url)
    }

    /// Lets previews run checks (set once, by the binary, when it runs a probe agent).
    pub fn set_preview_runner(&self, runner: Arc<dyn crate::preview::PreviewRunner>) {
        let _ = self.previewer.set(runner);
    }

    /// The built-in agent's metrics, made once: its backlog and lateness are this server's
    /// overload signal, shown with the controller's own series.
    pub fn agent_metrics(&self) -> Arc<vantage_metrics::AgentMetrics> {
        Arc::clone(self.agent_metrics.get_or_init(Arc::default))
    }

    /// How many times the catalog changed since it was loaded. Read before the catalog, a
    /// rendering of what the catalog holds stays current for as long as this number does.
    pub fn catalog_generation(&self) -> u64 {
        *self.config_version.borrow()
    }

    /// A read view of the catalog. Hold it briefly and never across an `.await`.
    pub fn catalog(&self) -> RwLockReadGuard<'_, Catalog> {
        // A panic while holding the lock cannot leave the catalog half-updated (apply is
        // infallible), so a poisoned lock is still safe to read.
        self.catalog.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `command` against the current catalog and makes its changes durable and visible,
    /// or changes nothing. Writers are serialised, so read-modify-write commands (PATCH)
    /// never lose a concurrent update. The command may run more than once: again on a fresh
    /// catalog when another process committed first.
    pub async fn commit<F, E>(&self, command: F) -> Result<Vec<Change>, CommitError<E>>
    where
        F: FnMut(&Catalog, Timestamp) -> Result<Vec<Change>, E> + Send + 'static,
        E: Send + 'static,
    {
        let (command, rx) = crate::writer::Command::new(command);
        let job = Job::Commit(Box::new(command));
        if self.jobs.send(job).is_err() {
            return Err(CommitError::Store(StoreError::Io(
                "the writer has stopped".into(),
            )));
        }
        rx.await.unwrap_or_else(|_| {
            Err(CommitError::Store(StoreError::Io(
                "the write job was lost".into(),
            )))
        })
    }

    /// Queues work for the writer thread without waiting for it.
    pub(crate) fn enqueue(&self, job: impl FnOnce(&Controller) + Send + 'static) {
        if self.jobs.send(Job::Other(Box::new(job))).is_err() {
            tracing::warn!("the writer has stopped; a queued write was dropped");
        }
    }

    /// Queues health for the store: written with the health writes queued right behind it,
    /// in one transaction (see [`crate::writer`]), or what the queue's bound leaves of it
    /// ([`crate::health_queue`]).
    pub(crate) fn enqueue_health(&self, mut write: crate::writer::HealthWrite) {
        use std::sync::atomic::Ordering::Relaxed;
        if let Some(dropped) = self.health_queue.admit(&mut write) {
            self.metrics
                .health_writes_dropped
                .inc_by((dropped.states + dropped.events) as u64);
            if dropped.states > 0 {
                self.health_lost.store(true, Relaxed);
            }
            // Once a minute at most: a stalled store would otherwise log once per check.
            let now = self.now().unix_micros();
            let last = self.health_dropped_logged.load(Relaxed);
            if now.saturating_sub(last) >= 60_000_000
                && self
                    .health_dropped_logged
                    .compare_exchange(last, now, Relaxed, Relaxed)
                    .is_ok()
            {
                tracing::warn!(
                    queued = dropped.waiting,
                    limit = crate::health_queue::MAX_QUEUED_HEALTH,
                    "the store is behind: health changes are not being recorded (verdicts still \
                     follow the checks, and their states are written again once it catches \
                     up; each account's events keep an equal share of the queue); see \
                     vantage_health_writes_dropped_total"
                );
            }
            if write.len() == 0 {
                return;
            }
        }
        if let Err(refused) = self.jobs.send(Job::Health(write)) {
            if let Job::Health(w) = refused.0 {
                self.health_queue.done(w.states.len(), &w.events);
            }
            tracing::warn!("the writer has stopped; a health write was dropped");
        }
    }

    /// Commits a group of queued commands in one transaction (see [`crate::writer`]).
    pub(crate) fn commit_group(&self, mut group: Vec<Box<dyn Pending>>) {
        let mut writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let fenced = self.store.fences_commits();
        let mut attempt = 0;
        let outcome = loop {
            // Check against what the store holds now: another process (the CLI, another
            // replica) may have committed since the last look. A fencing store says so at the
            // commit instead.
            if !fenced || attempt > 0 {
                if let Err(e) = self.reload_locked(&mut writer) {
                    break Err(e);
                }
            }
            let checked = if group.len() == 1 {
                // Alone, a command needs no changes undone: readers wait for nothing.
                let catalog = self.catalog();
                vec![group[0].check(&catalog, self.now())]
            } else {
                let mut catalog = self.catalog.write().unwrap_or_else(|p| p.into_inner());
                crate::writer::check_group(&mut catalog, &mut group, || self.now())
            };
            let lengths: Vec<Option<usize>> =
                checked.iter().map(|c| c.as_ref().map(Vec::len)).collect();
            let all: Vec<Change> = checked.into_iter().flatten().flatten().collect();
            let committed = if !all.is_empty() {
                // Written only if nobody committed in between (a store that can check it).
                self.store.commit_at(&all, writer.seen_version)
            } else if fenced {
                // Nothing to write: the refusals stand if the catalog was the latest.
                match self.store.external_version() {
                    Ok(v) if v == writer.seen_version => Ok(()),
                    Ok(_) => Err(StoreError::Conflict("the catalog moved".into())),
                    Err(e) => Err(e),
                }
            } else {
                Ok(())
            };
            match committed {
                Ok(()) => break Ok((all, lengths)),
                Err(StoreError::Conflict(_)) if fenced && attempt < crate::writer::RETRIES => {
                    attempt += 1;
                }
                Err(e) => {
                    if matches!(e, StoreError::Conflict(_)) {
                        // The next write checks against the fresh catalog.
                        let _ = self.reload_locked(&mut writer);
                    }
                    break Err(e);
                }
            }
        };
        let (all, lengths) = match outcome {
            Ok(done) => done,
            Err(e) => {
                for pending in group {
                    pending.finish(Err(e.clone()));
                }
                return;
            }
        };
        let mut catalog = self.catalog.write().unwrap_or_else(|p| p.into_inner());
        for change in &all {
            catalog.apply(change.clone());
        }
        drop(catalog);
        if !all.is_empty() {
            self.config_version.send_modify(|v| *v += 1);
        }
        let mut all = all.into_iter();
        for (pending, n) in group.into_iter().zip(lengths) {
            pending.finish(Ok(all.by_ref().take(n.unwrap_or(0)).collect()));
        }
    }

    /// Reloads the catalog if another process (the CLI) committed to the store since the
    /// last look. Returns whether it reloaded. Blocking: call from a blocking thread.
    pub fn reload_if_changed(&self) -> Result<bool, StoreError> {
        let mut writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        self.reload_locked(&mut writer)
    }

    fn reload_locked(&self, writer: &mut WriterState) -> Result<bool, StoreError> {
        let version = self.store.external_version()?;
        if version == writer.seen_version {
            return Ok(false);
        }
        let mut fresh = self.store.load_catalog()?;
        fresh.set_quotas(self.installation().quotas);
        *self.catalog.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        writer.seen_version = version;
        self.config_version.send_modify(|v| *v += 1);
        Ok(true)
    }
}
