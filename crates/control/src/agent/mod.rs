//! The probe agent, the agent protocol's other end: one probe location that takes its
//! assignment from a controller, checks every target on schedule and hands the facts back.
//! The agent built into `vantage serve` runs this loop against its own controller
//! ([`Link::Local`]); `vantage agent` runs it against one across the network ([`client`]).

pub mod client;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use std::time::Duration;
use vantage_metrics::AgentMetrics;

use crate::agent_protocol::{Assignment, PreviewFacts, Reported};
use crate::clock::now;
use crate::Controller;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use vantage_core::health::{FairQueue, InFlightLimit, Location, ProbeKey, Schedule};
use vantage_core::monitor::MonitorSpec;
use vantage_core::AccountId;
use vantage_probe::{Prober, Target as ProbeTarget};

/// How much an agent takes on: checks in flight at once (beyond it the schedule waits, and
/// lateness shows in the log and metrics), and results kept while the controller is
/// unreachable (beyond it the oldest are dropped, and counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    pub in_flight: usize,
    pub buffer: usize,
}

impl Capacity {
    /// The ceiling: enough for checks that wait on the network (100,000 targets at 60 s with
    /// a second each needs ~1,700). Below it [`InFlightLimit`] takes the limit down while
    /// this machine's cores are the bottleneck (`bench/probes.sh` on loopback: 4,096 in
    /// flight ran about 0.7× the checks/s of 1,024, which ran about 0.9× the adaptive limit's;
    /// BENCHMARKS.md).
    pub const IN_FLIGHT: usize = 1024;
    pub const BUFFER: usize = 100_000;
}

impl Default for Capacity {
    fn default() -> Self {
        Self {
            in_flight: Self::IN_FLIGHT,
            buffer: Self::BUFFER,
        }
    }
}

fn user_agent(pools: &[String]) -> Arc<str> {
    Arc::from(format!(
        "Mozilla/5.0 (compatible; Vantage-Health-Check/{}; pool: {})",
        env!("CARGO_PKG_VERSION"),
        pools.join(",")
    ))
}

/// How late checks start against their schedule, summarised in the log once a minute. A
/// histogram, not the samples: at 15,000 checks/s a minute of samples was 7 MB to keep and
/// sort; this is a fixed couple of hundred kilobytes at three significant digits.
#[derive(Debug)]
struct Lateness {
    micros: hdrhistogram::Histogram<u64>,
    window_start: Option<i64>,
}

impl Default for Lateness {
    fn default() -> Self {
        Self {
            // A check later than an hour counts as an hour late: the memory stays fixed.
            micros: hdrhistogram::Histogram::new_with_bounds(1, Self::LONGEST, 3)
                .expect("valid bounds"),
            window_start: None,
        }
    }
}

impl Lateness {
    const WINDOW: i64 = 60_000_000;
    const LONGEST: u64 = 3_600_000_000;

    /// Notes a check that started `late_micros` after it was due; once a minute, returns the
    /// summary to log.
    fn add(&mut self, late_micros: u64, now: i64) -> Option<String> {
        let start = *self.window_start.get_or_insert(now);
        self.micros.saturating_record(late_micros);
        if now - start < Self::WINDOW {
            return None;
        }
        let ms = |q: f64| self.micros.value_at_quantile(q) as f64 / 1000.0;
        let summary = format!(
            "probes: {} checks started in the last {:.0} s; lateness p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            self.micros.len(),
            (now - start) as f64 / 1e6,
            ms(0.5),
            ms(0.99),
            self.micros.max() as f64 / 1000.0
        );
        self.micros.reset();
        self.window_start = Some(now);
        Some(summary)
    }
}

/// Says when this machine cannot keep up with its assignment: a check that starts more than
/// [`Behind::LATE`] after it was due counts as late, and while checks are late a warning with
/// the backlog is logged, at most once per [`Behind::EVERY`] (never one per check).
#[derive(Debug, Default)]
struct Behind {
    late_since_warning: u64,
    warned_at: Option<i64>,
}

impl Behind {
    const LATE: u64 = 1_000_000;
    const EVERY: i64 = 30_000_000;

    /// A check started `late` µs after it was due, with `waiting` more due behind it and at
    /// most `in_flight` running at once. Returns the warning to log, when one is due.
    fn started(&mut self, late: u64, waiting: usize, in_flight: usize, now: i64) -> Option<String> {
        if late <= Self::LATE {
            return None;
        }
        self.late_since_warning += 1;
        if self.warned_at.is_some_and(|at| now - at < Self::EVERY) {
            return None;
        }
        self.warned_at = Some(now);
        let late_checks = std::mem::take(&mut self.late_since_warning);
        Some(format!(
            "probes are falling behind: {waiting} due checks waiting, this one started {:.1} s late, \
             {late_checks} late since the last warning; this machine cannot run every check on \
             time (at most {} at once): add probe locations or lengthen intervals",
            late as f64 / 1e6,
            in_flight
        ))
    }
}

/// The agent's slots for checks: a semaphore at the configured ceiling, of which the
/// adaptive limit ([`InFlightLimit`]) holds back what it took away.
struct Slots {
    semaphore: Arc<Semaphore>,
    limit: InFlightLimit,
    /// Permits still to forget as checks give them back, for a limit that went down.
    owed: usize,
    queue: Arc<Queued>,
}

/// How long started checks waited for a core, summed by the checks themselves.
#[derive(Debug, Default)]
struct Queued {
    checks: AtomicU64,
    micros: AtomicU64,
}

impl Queued {
    /// A check handed its slot at `handed` is running now.
    fn started(&self, handed: std::time::Instant) {
        let waited = u64::try_from(handed.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.checks.fetch_add(1, Ordering::Relaxed);
        self.micros.fetch_add(waited, Ordering::Relaxed);
    }
}

impl Slots {
    fn new(ceiling: usize, now: vantage_core::Timestamp) -> Self {
        let limit = InFlightLimit::new(ceiling, now);
        Self {
            semaphore: Arc::new(Semaphore::new(limit.ceiling())),
            limit,
            owed: 0,
            queue: Arc::default(),
        }
    }

    /// A slot for one check if one is free now under the current limit.
    fn try_acquire(&mut self) -> Option<OwnedSemaphorePermit> {
        self.settle();
        let permit = Arc::clone(&self.semaphore).try_acquire_owned().ok();
        if permit.is_none() {
            self.limit.starved();
        }
        permit
    }

    /// A slot for one check, once one is free under the current limit. `None` once closed.
    async fn acquire(&mut self) -> Option<OwnedSemaphorePermit> {
        self.settle();
        if let Ok(permit) = Arc::clone(&self.semaphore).try_acquire_owned() {
            return Some(permit);
        }
        self.limit.starved();
        loop {
            let permit = Arc::clone(&self.semaphore).acquire_owned().await.ok()?;
            if self.owed == 0 {
                return Some(permit);
            }
            permit.forget();
            self.owed -= 1;
        }
    }

    fn settle(&mut self) {
        if self.owed > 0 {
            self.owed -= self.semaphore.forget_permits(self.owed);
        }
    }

    /// Ends the limit's window when it is due. Returns the new limit when it moved.
    fn tick(&mut self, now: vantage_core::Timestamp) -> Option<usize> {
        if now < self.limit.poll_timeout() {
            return None;
        }
        self.limit.started(
            self.queue.checks.swap(0, Ordering::Relaxed),
            self.queue.micros.swap(0, Ordering::Relaxed),
        );
        let before = self.limit.limit();
        let after = self.limit.handle_timeout(now)?;
        if after < before {
            self.owed += before - after;
            self.settle();
        } else {
            let back = after - before;
            let unowed = back.min(self.owed);
            self.owed -= unowed;
            self.semaphore.add_permits(back - unowed);
        }
        Some(after)
    }
}

/// Where an agent gets its work and sends its facts: the controller in this process (the
/// built-in agent), or one across the network (`vantage agent`). Everything else is shared.
pub enum Link {
    Local(Arc<Controller>),
    Remote(client::Client),
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Link::Local(_) => f.write_str("Link::Local"),
            Link::Remote(c) => f.debug_tuple("Link::Remote").field(&c.base()).finish(),
        }
    }
}

/// The assignment version an agent holds, and its epoch (absent from a controller older
/// than protocol version 4: then only whole assignments).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    pub version: u64,
    pub epoch: Option<u64>,
}

impl Held {
    fn of(a: &Assignment) -> Self {
        Self {
            version: a.version,
            epoch: a.epoch,
        }
    }
}

impl Link {
    /// The assignment once it moved past `held` (long-poll): a delta on it when possible.
    async fn assignment(
        &self,
        location: &Location,
        held: Option<Held>,
    ) -> anyhow::Result<Assignment> {
        match self {
            Link::Local(state) => {
                let mut changes = state.assignment_changes();
                changes.borrow_and_update();
                let at = |(epoch, version)| Held {
                    version,
                    epoch: Some(epoch),
                };
                while held == Some(at(state.assignment_at())) {
                    changes.changed().await?;
                }
                let held = held.and_then(|h| Some((h.epoch?, h.version)));
                // A follower's built-in location rests: the judge's own probes, and remote
                // agents, feed the verdicts (its results would be refused). Where the
                // assignment stands is read first: a role change in between moves the epoch
                // past it, so the next answer is whole again.
                let (epoch, version) = state.assignment_at();
                if !state.judges() {
                    return Ok(Assignment::from_engine(version, epoch, Vec::new()));
                }
                Ok(state.assignment_message(location.region, None, held))
            }
            Link::Remote(c) => c.assignment(location, held).await,
        }
    }

    /// `key` as this agent holds it: in the controller's process, the engine's own allocation.
    fn share(&self, key: ProbeKey) -> Arc<ProbeKey> {
        match self {
            Link::Local(state) => state.shared_probe_key(key),
            Link::Remote(_) => Arc::new(key),
        }
    }

    async fn report(&self, location: &Location, results: Vec<Reported>) -> anyhow::Result<()> {
        match self {
            Link::Local(state) => {
                let (state, location) = (Arc::clone(state), location.clone());
                tokio::task::spawn_blocking(move || {
                    for r in results {
                        // A refusal is counted by the controller; nothing more to do here.
                        let _ = state.record(&location, None, &r.key.into(), &r.facts.into(), r.at);
                    }
                })
                .await?;
                Ok(())
            }
            Link::Remote(c) => c.report(location, results).await,
        }
    }
}

/// Exponential backoff with jitter for reconnecting: 0.5 s doubling to 30 s, each wait drawn
/// between half and all of the current step so agents do not reconnect in lockstep.
#[derive(Debug)]
struct Backoff(Duration);

impl Backoff {
    const FIRST: Duration = Duration::from_millis(500);
    const MAX: Duration = Duration::from_secs(30);

    fn new() -> Self {
        Self(Self::FIRST)
    }

    fn reset(&mut self) {
        self.0 = Self::FIRST;
    }

    async fn wait(&mut self) {
        let jittered = self.0.mul_f64(rand::random_range(0.5..=1.0));
        tokio::time::sleep(jittered).await;
        self.0 = (self.0 * 2).min(Self::MAX);
    }
}

/// Keeps the assignment current: long-polls the controller, retries with backoff when it is
/// unreachable, and meanwhile the last assignment stays in force.
async fn follow_assignment(
    link: Arc<Link>,
    location: Location,
    tx: tokio::sync::mpsc::Sender<Assignment>,
) {
    let mut held = None;
    let mut backoff = Backoff::new();
    loop {
        match link.assignment(&location, held).await {
            Ok(a) => {
                backoff.reset();
                if held != Some(Held::of(&a)) {
                    held = Some(Held::of(&a));
                    // Handed over, not kept: at 100,000 targets a second copy is real memory.
                    if tx.send(a).await.is_err() {
                        return;
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot fetch the assignment; probing on the last one");
                backoff.wait().await;
            }
        }
    }
}

/// Sends results in batches. While the controller is unreachable it buffers up to `capacity`
/// results, dropping the oldest (and counting them), and replays them once it is back.
async fn report_results(
    link: Arc<Link>,
    location: Location,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Reported>,
    capacity: usize,
    metrics: Option<Arc<AgentMetrics>>,
) {
    const BATCH: usize = 2000;
    let mut buffer: std::collections::VecDeque<Reported> = std::collections::VecDeque::new();
    let mut dropped: u64 = 0;
    let mut backoff = Backoff::new();
    loop {
        if buffer.is_empty() {
            // Nothing pending: wait for a result, or send an empty batch now and then so the
            // controller knows this location is alive.
            match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
                Ok(Some(r)) => buffer.push_back(r),
                Ok(None) => return,
                Err(_) => {}
            }
        }
        while let Ok(r) = rx.try_recv() {
            buffer.push_back(r);
        }
        if buffer.len() > capacity {
            let excess = buffer.len() - capacity;
            buffer.drain(..excess);
            dropped += excess as u64;
            if let Some(m) = &metrics {
                m.results_dropped.inc_by(excess as u64);
            }
            tracing::warn!(
                dropped_total = dropped,
                "result buffer full: dropped the oldest results"
            );
        }
        let batch: Vec<Reported> = buffer.iter().take(BATCH).cloned().collect();
        let n = batch.len();
        match link.report(&location, batch).await {
            Ok(()) => {
                buffer.drain(..n);
                backoff.reset();
                if let Some(m) = &metrics {
                    m.controller_up.set(1);
                }
            }
            Err(e) => {
                if let Some(m) = &metrics {
                    m.controller_up.set(0);
                }
                tracing::warn!(error = %e, buffered = buffer.len(), "cannot report results; will retry");
                backoff.wait().await;
            }
        }
    }
}

/// One assigned target, ready to probe; targets of one monitor share its spec.
struct Probe {
    /// The one copy of the key, shared with the targets' map and the schedule.
    key: Arc<ProbeKey>,
    monitor: Arc<MonitorSpec>,
    /// Shared by the targets of the same pools (a pool's origins all send the same).
    user_agent: Arc<str>,
    /// Whose turn it is when checks wait for a slot (`None` if the controller did not say;
    /// such targets share one turn).
    account: Option<AccountId>,
}

/// Due checks waiting for a slot: (target, when it was due), by account.
type Waiting = FairQueue<Option<AccountId>, Arc<ProbeKey>, vantage_core::Timestamp>;

/// What starting a check takes: its slot, the accounting of how late checks start, and
/// where its facts go.
struct Starter {
    slots: Slots,
    lateness: Lateness,
    behind: Behind,
    prober: Prober,
    results: tokio::sync::mpsc::UnboundedSender<Reported>,
    metrics: Option<Arc<AgentMetrics>>,
    /// Where a check's task says it gave its slot back, for the accounts' parts of them.
    finished: tokio::sync::mpsc::UnboundedSender<Option<AccountId>>,
}

/// Tells the agent loop that a check of `account` gave its slot back, however its task ends.
struct Finished {
    account: Option<AccountId>,
    tx: tokio::sync::mpsc::UnboundedSender<Option<AccountId>>,
}

impl Drop for Finished {
    fn drop(&mut self) {
        let _ = self.tx.send(self.account);
    }
}

impl Starter {
    /// Starts the check whose turn it is, in `permit`'s slot (given back at once when every
    /// waiting target has since left the assignment).
    fn start_next(
        &mut self,
        permit: OwnedSemaphorePermit,
        waiting: &mut Waiting,
        targets: &HashMap<Arc<ProbeKey>, Arc<Probe>>,
    ) {
        let slots = self.slots.limit.limit();
        let Some((account, target, due_at)) =
            std::iter::from_fn(|| waiting.pop(slots)).find_map(|(account, key, due_at)| {
                Some((account, Arc::clone(targets.get(&key)?), due_at))
            })
        else {
            return;
        };
        waiting.started(account);
        let finished = Finished {
            account,
            tx: self.finished.clone(),
        };
        let started = now();
        if let Some(limit) = self.slots.tick(started) {
            tracing::debug!(limit, "checks at once at most");
            if let Some(m) = &self.metrics {
                m.in_flight_limit
                    .set(i64::try_from(limit).unwrap_or(i64::MAX));
            }
        }
        let late = u64::try_from(started.unix_micros() - due_at.unix_micros()).unwrap_or(0);
        if let Some(summary) = self.lateness.add(late, started.unix_micros()) {
            tracing::info!("{summary}");
        }
        if let Some(m) = &self.metrics {
            m.lateness.observe(late as f64 / 1e6);
            if late > Behind::LATE {
                m.late.inc();
            }
        }
        if let Some(warning) = self.behind.started(
            late,
            waiting.len(),
            self.slots.limit.limit(),
            started.unix_micros(),
        ) {
            tracing::warn!("{warning}");
        }
        let (prober, results, metrics) = (
            self.prober.clone(),
            self.results.clone(),
            self.metrics.clone(),
        );
        let (queue, handed) = (Arc::clone(&self.slots.queue), std::time::Instant::now());
        tokio::spawn(async move {
            let _finished = finished;
            queue.started(handed);
            let t = &*target;
            let probe = ProbeTarget {
                spec: &t.monitor,
                address: &t.key.address,
                port: t.key.port,
                host: t.key.host.as_deref(),
                user_agent: &t.user_agent,
            };
            let facts = prober.check(&probe).await;
            if let Some(m) = &metrics {
                let completed = !matches!(facts.outcome, vantage_core::health::Outcome::Error(_));
                m.check(*t.key.monitor.as_bytes(), completed);
            }
            // This machine could not run the check: no fact about the origin to
            // report (the controller would refuse it as no vote anyway).
            if facts.outcome
                == vantage_core::health::Outcome::Error(
                    vantage_core::health::FailureReason::LocalResources,
                )
            {
                static NOT_RUN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
                let n = NOT_RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                // Logged at 1, 2, 4, 8, … so exhaustion is seen but cannot flood the log.
                if n.is_power_of_two() {
                    tracing::warn!(
                        not_run = n,
                        "checks not run: this machine is out of descriptors, buffers or ports"
                    );
                }
                return;
            }
            let _ = results.send(Reported {
                key: (&*t.key).into(),
                facts: (&facts).into(),
                at: started,
            });
            drop(permit);
        });
    }
}

/// One probe location: follows its assignment, checks every target on schedule, reports
/// the facts. The built-in agent and `vantage agent` both run this.
pub async fn run(
    link: Link,
    prober: Prober,
    location: Location,
    capacity: Capacity,
    metrics: Option<Arc<AgentMetrics>>,
) {
    tracing::info!(%location, "probe agent started");
    let link = Arc::new(link);
    let (assign_tx, mut assignments) = tokio::sync::mpsc::channel::<Assignment>(1);
    let (results_tx, results_rx) = tokio::sync::mpsc::unbounded_channel();
    let follower = tokio::spawn(follow_assignment(
        Arc::clone(&link),
        location.clone(),
        assign_tx,
    ));
    let reporter = tokio::spawn(report_results(
        Arc::clone(&link),
        location.clone(),
        results_rx,
        capacity.buffer,
        metrics.clone(),
    ));
    // The built-in agent's previews run in-process (LocalPreviews); a remote one asks for
    // them.
    let previews = match &*link {
        Link::Remote(_) => Some(tokio::spawn(run_previews(
            Arc::clone(&link),
            prober.clone(),
            location.clone(),
        ))),
        Link::Local(_) => None,
    };

    let mut schedule = Schedule::default();
    let mut targets: HashMap<Arc<ProbeKey>, Arc<Probe>> = HashMap::new();
    let mut accounts = Accounts::default();
    // Due checks waiting for a slot, taking turns by account.
    let mut waiting: Waiting = FairQueue::default();
    let (finished, mut slots_back) = tokio::sync::mpsc::unbounded_channel();
    let slots = Slots::new(capacity.in_flight, now());
    if let Some(m) = &metrics {
        m.in_flight_limit
            .set(i64::try_from(slots.limit.limit()).unwrap_or(i64::MAX));
    }
    let mut starter = Starter {
        behind: Behind::default(),
        slots,
        lateness: Lateness::default(),
        prober,
        results: results_tx,
        metrics,
        finished,
    };
    loop {
        while let Ok(account) = slots_back.try_recv() {
            waiting.finished(&account);
        }
        // Everything waiting that a free slot can take (within its account's part) starts now.
        while waiting.can_start(starter.slots.limit.limit()) {
            let Some(permit) = starter.slots.try_acquire() else {
                break;
            };
            starter.start_next(permit, &mut waiting, &targets);
        }
        if let Some(m) = &starter.metrics {
            m.backlog
                .set(i64::try_from(waiting.len()).unwrap_or(i64::MAX));
        }
        let wait = schedule.next_deadline().map(|d| {
            Duration::from_micros(u64::try_from(d.unix_micros() - now().unix_micros()).unwrap_or(0))
        });
        tokio::select! {
            received = assignments.recv() => {
                let Some(a) = received else { break };
                if load(&link, &mut targets, &mut accounts, &mut schedule, a) && !waiting.is_empty() {
                    // Targets that left stop counting in the backlog at once, not on their turn.
                    waiting.retain(|key| targets.contains_key(key));
                }
                // Accounts with nothing due yet are kept room in the slots too.
                waiting.set_shares(accounts.len());
                if let Some(m) = &starter.metrics {
                    m.targets.set(i64::try_from(targets.len()).unwrap_or(i64::MAX));
                }
            }
            () = crate::drivers::sleep_or_forever(wait) => {
                for (key, due_at) in schedule.due(now()) {
                    if let Some(target) = targets.get(&key) {
                        // A target still waiting from before keeps its place.
                        waiting.push(target.account, key, due_at);
                    }
                }
            }
            permit = starter.slots.acquire(), if waiting.can_start(starter.slots.limit.limit()) => {
                let Some(permit) = permit else { break };
                starter.start_next(permit, &mut waiting, &targets);
            }
            Some(account) = slots_back.recv() => waiting.finished(&account),
        }
    }
    follower.abort();
    reporter.abort();
    if let Some(p) = previews {
        p.abort();
    }
}

/// How many targets each account has at this location: the accounts its slots keep room for
/// ([`FairQueue::set_shares`]), kept as targets come and go rather than counted again.
type Accounts = vantage_core::tally::Tally<Option<AccountId>>;

/// Counts out of `accounts` the target that left, if one did.
fn left(accounts: &mut Accounts, target: Option<Arc<Probe>>) {
    if let Some(t) = target {
        accounts.remove_one(&t.account);
    }
}

/// Takes an assignment in: a whole one replaces every target, a delta changes only those it
/// names (each target keeps its place in the schedule unless its interval changed). Returns
/// whether targets may have left.
fn load(
    link: &Link,
    targets: &mut HashMap<Arc<ProbeKey>, Arc<Probe>>,
    accounts: &mut Accounts,
    schedule: &mut Schedule,
    a: Assignment,
) -> bool {
    let monitors: HashMap<_, (Arc<MonitorSpec>, Option<AccountId>)> = a
        .monitors
        .into_iter()
        .filter_map(|(id, m)| {
            let account = m.account;
            match MonitorSpec::try_from(m) {
                Ok(spec) => Some((id, (Arc::new(spec), account))),
                Err(e) => {
                    tracing::warn!(monitor = %id, "monitor of the assignment refused, its targets are not probed: {e}");
                    None
                }
            }
        })
        .collect();
    // A target whose monitor was refused is not probed: in a delta, it goes.
    let mut refused = Vec::new();
    let mut agents: HashMap<Vec<String>, Arc<str>> = HashMap::new();
    let probes: Vec<(Arc<ProbeKey>, Arc<Probe>)> = a
        .targets
        .into_iter()
        .filter_map(|t| {
            let Some((monitor, account)) = monitors
                .get(&t.key.monitor)
                .map(|(m, a)| (Arc::clone(m), *a))
            else {
                refused.push(ProbeKey::from(t.key));
                return None;
            };
            let user_agent = match agents.get(&t.pools) {
                Some(ua) => Arc::clone(ua),
                None => {
                    let ua = user_agent(&t.pools);
                    agents.insert(t.pools, Arc::clone(&ua));
                    ua
                }
            };
            let key = ProbeKey::from(t.key);
            // A target already held keeps its key: the map, the probe and the schedule share one.
            let key = match targets.get_key_value(&key) {
                Some((held, _)) => Arc::clone(held),
                None => link.share(key),
            };
            Some((
                Arc::clone(&key),
                Arc::new(Probe {
                    key,
                    monitor,
                    user_agent,
                    account,
                }),
            ))
        })
        .collect();
    let Some(changes) = a.changes else {
        *targets = probes.into_iter().collect();
        *accounts = Accounts::default();
        for p in targets.values() {
            accounts.add(p.account);
        }
        schedule.set(
            targets
                .values()
                .map(|p| (Arc::clone(&p.key), p.monitor.interval)),
            now(),
        );
        tracing::debug!(
            targets = targets.len(),
            version = a.version,
            "assignment loaded"
        );
        return true;
    };
    let mut removed: Vec<ProbeKey> = changes.removed.into_iter().map(ProbeKey::from).collect();
    for key in &removed {
        left(accounts, targets.remove(key));
    }
    let changed: Vec<(Arc<ProbeKey>, u16)> = probes
        .into_iter()
        .map(|(key, probe)| {
            let interval = probe.monitor.interval;
            accounts.add(probe.account);
            left(accounts, targets.insert(Arc::clone(&key), probe));
            (key, interval)
        })
        .collect();
    for key in refused {
        left(accounts, targets.remove(&key));
        removed.push(key);
    }
    tracing::debug!(
        removed = removed.len(),
        changed = changed.len(),
        version = a.version,
        since = changes.since,
        "assignment delta loaded"
    );
    let left = !removed.is_empty();
    schedule.update(removed, changed, now());
    left
}

/// Preview checks at once, at most: a preview's checks beyond it wait their turn.
const MAX_PREVIEW_CHECKS: usize = 256;

/// Runs the checks previews ask of this location: long-polls for them, runs each at once
/// (bounded), and answers with the facts as they come. Never touches the schedule or the
/// results stream: a preview's candidate monitor judges nothing real.
async fn run_previews(link: Arc<Link>, prober: Prober, location: Location) {
    let Link::Remote(client) = &*link else {
        return;
    };
    let limit = Arc::new(Semaphore::new(MAX_PREVIEW_CHECKS));
    // The same checks the built-in location runs for a preview.
    let local = Arc::new(LocalPreviews { prober, location });
    let mut backoff = Backoff::new();
    loop {
        let checks = match client.preview_checks(&local.location).await {
            Ok(c) => {
                backoff.reset();
                c.checks
            }
            Err(e) => {
                tracing::debug!(error = %e, "cannot fetch preview checks");
                backoff.wait().await;
                continue;
            }
        };
        for check in checks {
            let Ok(permit) = Arc::clone(&limit).acquire_owned().await else {
                return;
            };
            let (link, local) = (Arc::clone(&link), Arc::clone(&local));
            tokio::spawn(async move {
                let Link::Remote(client) = &*link else { return };
                let Ok(spec) = MonitorSpec::try_from(check.monitor) else {
                    return;
                };
                let facts = crate::preview::PreviewRunner::check(
                    &*local,
                    &local.location,
                    &spec,
                    &check.address,
                    check.port,
                    check.host.as_deref(),
                )
                .await;
                drop(permit);
                let answer = vec![PreviewFacts {
                    id: check.id,
                    facts: (&facts).into(),
                }];
                if let Err(e) = client.preview_results(answer).await {
                    tracing::debug!(error = %e, "cannot answer a preview check");
                }
            });
        }
    }
}

/// Previews from the built-in location.
#[allow(missing_debug_implementations)] // the prober holds TLS configuration, nothing to show
pub struct LocalPreviews {
    pub prober: Prober,
    pub location: Location,
}

impl crate::preview::PreviewRunner for LocalPreviews {
    fn locations(&self) -> Vec<Location> {
        vec![self.location.clone()]
    }

    fn check<'a>(
        &'a self,
        _: &'a Location,
        spec: &'a vantage_core::monitor::MonitorSpec,
        address: &'a str,
        port: u16,
        host: Option<&'a str>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = vantage_core::health::Facts> + Send + 'a>>
    {
        Box::pin(async move {
            let ua = format!(
                "Mozilla/5.0 (compatible; Vantage-Health-Check/{}; preview)",
                env!("CARGO_PKG_VERSION")
            );
            self.prober
                .check(&ProbeTarget {
                    spec,
                    address,
                    port,
                    host,
                    user_agent: &ua,
                })
                .await
        })
    }
}

#[cfg(test)]
mod lateness_tests {
    use super::{Behind, Lateness};

    #[test]
    fn lateness_is_summarised_once_a_minute_then_starts_over() {
        let mut l = Lateness::default();
        // 1,000 checks in the minute: 1 ms late each, but 20 of them 2 s late (at three
        // significant digits, 2 s reads as the top of its bucket, 2000.9 ms).
        for i in 0..1_000u64 {
            let late = if i % 50 == 49 { 2_000_000 } else { 1_000 };
            assert_eq!(l.add(late, i64::try_from(i).unwrap() * 50_000), None);
        }
        let summary = l.add(1_000, 60_000_000).expect("a minute passed");
        assert_eq!(
            summary,
            "probes: 1001 checks started in the last 60 s; lateness p50 1.0 ms, p99 2000.9 ms, \
             max 2000.9 ms"
        );
        // The next minute counts only its own checks.
        assert_eq!(l.add(5_000, 60_000_001), None);
        let next = l.add(5_000, 120_000_001).expect("another minute");
        assert!(next.starts_with("probes: 2 checks"), "{next}");
        assert!(next.ends_with("max 5.0 ms"), "{next}");
        // Past the histogram's hour, a check still counts, as an hour late.
        l.add(Lateness::LONGEST * 2, 120_000_002);
        let far = l.add(1, 180_000_002).expect("another minute");
        assert!(
            far.contains("2 checks") && far.contains("max 3600"),
            "{far}"
        );
    }

    #[test]
    fn warns_with_the_backlog_at_most_every_thirty_seconds() {
        let mut b = Behind::default();
        assert_eq!(
            b.started(999_999, 10, 512, 0),
            None,
            "a second late is on time"
        );
        let first = b.started(2_500_000, 7, 512, 1_000_000).expect("a warning");
        assert!(
            first.contains("7 due checks waiting")
                && first.contains("2.5 s late")
                && first.contains("at most 512 at once"),
            "{first}"
        );
        assert_eq!(
            b.started(3_000_000, 6, 512, 2_000_000),
            None,
            "not again so soon"
        );
        assert_eq!(b.started(3_000_000, 5, 512, 20_000_000), None);
        let again = b
            .started(4_000_000, 9, 512, 31_000_001)
            .expect("after thirty seconds");
        assert!(again.contains("3 late since the last warning"), "{again}");
    }
}

#[cfg(test)]
mod load_tests {
    use super::*;
    use crate::drivers::tests::{assigned_pool, controller};
    use vantage_core::region::RegionCode;

    /// The built-in agent holds each target's key in the engine's own allocation, not a copy
    /// of it (at 100,000 targets a copy was 10 MB).
    #[tokio::test(start_paused = true)]
    async fn the_built_in_agent_shares_the_engines_keys() {
        let (c, a) = controller();
        assigned_pool(&c, a).await;
        let link = Link::Local(Arc::clone(&c));
        let (mut targets, mut schedule) = (HashMap::new(), Schedule::default());
        load(
            &link,
            &mut targets,
            &mut Accounts::default(),
            &mut schedule,
            c.assignment_message(RegionCode::Weu, None, None),
        );
        assert_eq!(targets.len(), 1);
        let (held, probe) = targets.iter().next().unwrap();
        let engines = c.engine().shared_key(held).expect("the engine probes it");
        assert!(Arc::ptr_eq(held, &engines));
        assert!(Arc::ptr_eq(&probe.key, &engines));
        // A key the engine does not probe is the caller's own.
        let other = ProbeKey {
            address: "192.0.2.9".into(),
            ..ProbeKey::clone(held)
        };
        assert!(c.engine().shared_key(&other).is_none());
        assert_eq!(*c.shared_probe_key(other.clone()), other);
    }
}

#[cfg(test)]
mod slots_tests {
    use super::*;

    fn at(seconds: i64) -> vantage_core::Timestamp {
        vantage_core::Timestamp::from_unix_micros(seconds * 1_000_000)
    }

    /// One window in which every slot was taken and started checks queued `micros` each.
    fn busy_window(slots: &mut Slots, micros: u64) {
        slots.limit.starved();
        slots.queue.checks.fetch_add(10, Ordering::Relaxed);
        slots.queue.micros.fetch_add(10 * micros, Ordering::Relaxed);
    }

    #[tokio::test]
    async fn a_lower_limit_takes_slots_back_as_checks_return_them_and_a_higher_one_gives_them_back()
    {
        let mut slots = Slots::new(1024, at(0));
        let mut held = Vec::new();
        for _ in 0..1024 {
            held.push(slots.acquire().await.unwrap());
        }
        busy_window(&mut slots, 10_000);
        assert_eq!(slots.tick(at(1)), Some(922));
        // Every slot is out: the 102 taken away are owed until checks return them.
        assert_eq!(slots.owed, 102);
        held.clear();
        slots.settle();
        assert_eq!((slots.semaphore.available_permits(), slots.owed), (922, 0));
        busy_window(&mut slots, 10);
        assert_eq!(slots.tick(at(2)), Some(1015));
        assert_eq!(slots.semaphore.available_permits(), 1015);
        // The window that just began moves nothing before it ends.
        assert_eq!(slots.tick(at(2)), None);
    }
}

#[cfg(test)]
mod loop_tests {
    use super::*;
    use crate::drivers::{follow_config, tests::controller};
    use vantage_core::monitor::MonitorDraft;
    use vantage_core::pool::{OriginDraft, PoolDraft};
    use vantage_core::region::RegionCode;
    use vantage_core::{MonitorId, PoolId};

    /// An origin that accepts and never answers: a check on it holds its slot until its
    /// timeout. Says the address each connection was made to.
    async fn silent_origin() -> (u16, tokio::sync::mpsc::UnboundedReceiver<std::net::IpAddr>) {
        let origin = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
        let port = origin.local_addr().unwrap().port();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = origin.accept().await {
                let _ = tx.send(s.local_addr().unwrap().ip());
                held.push(s);
            }
        });
        (port, rx)
    }

    /// An origin that answers `200` at once. Says the address each request was made to.
    async fn answering_origin() -> (u16, tokio::sync::mpsc::UnboundedReceiver<std::net::IpAddr>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let origin = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
        let port = origin.local_addr().unwrap().port();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = origin.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut buf).await {
                            Ok(n) if n > 0 => head.extend_from_slice(&buf[..n]),
                            _ => return,
                        }
                    }
                    let _ = tx.send(s.local_addr().unwrap().ip());
                    let _ = s
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                        .await;
                });
            }
        });
        (port, rx)
    }

    /// The built-in location, probing for the controller's engine.
    fn here(c: &Arc<Controller>) -> Location {
        let here = Location {
            region: RegionCode::Weu,
            name: "here".into(),
        };
        c.set_installation(crate::Installation {
            builtin_location: Some(here.clone()),
            ..Default::default()
        });
        tokio::spawn(follow_config(Arc::clone(c)));
        here
    }

    /// Commits an HTTP monitor on `port` (a 10 s timeout, no retries) for `account`.
    async fn http_monitor(c: &Controller, account: AccountId, id: u8, port: u16) -> MonitorId {
        let m = MonitorId::from_bytes([id; 16]);
        let spec = MonitorDraft {
            kind: Some("http".into()),
            port: Some(i64::from(port)),
            expected_codes: Some("200".into()),
            timeout: Some(10),
            retries: Some(0),
            ..Default::default()
        }
        .validate()
        .unwrap();
        c.commit(move |cat, now| cat.create_monitor(account, m, spec.clone(), now))
            .await
            .unwrap();
        m
    }

    /// Commits a pool of `account` with an origin at each of `addresses`, checked by `m`.
    async fn pool(
        c: &Controller,
        account: AccountId,
        id: u8,
        m: MonitorId,
        addresses: &[String],
    ) -> PoolId {
        let p = PoolId::from_bytes([id; 16]);
        let (pool, checks) = PoolDraft {
            name: Some(format!("p{id}")),
            origins: Some(
                addresses
                    .iter()
                    .enumerate()
                    .map(|(i, address)| OriginDraft {
                        name: Some(format!("o{i}")),
                        address: Some(address.clone()),
                        ..Default::default()
                    })
                    .collect(),
            ),
            monitor: Some(m.to_string()),
            ..Default::default()
        }
        .validate()
        .unwrap();
        c.commit(move |cat, now| cat.create_pool(account, p, pool.clone(), checks.clone(), now))
            .await
            .unwrap();
        p
    }

    /// Checks of monitor `m` that ended (counted before a check gives its slot back).
    fn ended(metrics: &AgentMetrics, m: MonitorId) -> u64 {
        ["completed", "error"]
            .map(|outcome| {
                let labels = vantage_metrics::AgentCheckLabels {
                    monitor: vantage_metrics::IdLabel(*m.as_bytes()),
                    outcome,
                };
                metrics.checks.get_or_create(&labels).get()
            })
            .iter()
            .sum::<u64>()
    }

    fn agent(
        c: &Arc<Controller>,
        here: Location,
        in_flight: usize,
    ) -> (Arc<AgentMetrics>, tokio::task::JoinHandle<()>) {
        let metrics = Arc::new(AgentMetrics::default());
        let capacity = Capacity {
            in_flight,
            buffer: 100,
        };
        let prober = Prober::new(None, None).unwrap();
        let task = tokio::spawn(run(
            Link::Local(Arc::clone(c)),
            prober,
            here,
            capacity,
            Some(Arc::clone(&metrics)),
        ));
        (metrics, task)
    }

    /// Checks waiting for a slot leave the agent's queue as soon as their targets leave its
    /// assignment, not on their turn: the backlog empties while the one check in flight (an
    /// origin that never answers) still holds the only slot.
    #[tokio::test]
    async fn targets_that_leave_stop_waiting_at_once() {
        let (port, _) = silent_origin().await;
        let (c, a) = controller();
        let here = here(&c);
        let m = http_monitor(&c, a, 2, port).await;
        // Five origins, one address each on loopback (127.0.0.0/8), all served above.
        let addresses: Vec<String> = (1..=5).map(|i| format!("127.0.0.{i}")).collect();
        let p = pool(&c, a, 3, m, &addresses).await;
        let (metrics, agent) = agent(&c, here, 1);
        let backlog = || metrics.backlog.get();
        // Polled: the gauge is set on each turn of the agent's loop.
        while backlog() < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            ended(&metrics, m),
            0,
            "one check in flight, holding the only slot"
        );
        c.commit(move |cat, _| cat.delete_pool(a, p)).await.unwrap();
        while backlog() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            ended(&metrics, m),
            0,
            "the waiting checks left before the slot came back, not on their turn"
        );
        assert_eq!(metrics.targets.get(), 0);
        agent.abort();
    }

    /// One account whose origins never answer fills the agent's slots and keeps checks
    /// waiting; another account's check, coming due, starts at once all the same, in the
    /// eighth of the slots kept for accounts with nothing running or waiting.
    #[tokio::test]
    async fn a_busy_account_leaves_room_for_another_to_start_at_once() {
        let (silent, mut dead) = silent_origin().await;
        let (answering, mut served) = answering_origin().await;
        let (c, a) = controller();
        let b = AccountId::from_bytes([9; 16]);
        c.commit(move |cat, now| cat.create_account(b, "b".into(), now))
            .await
            .unwrap();
        let here = here(&c);
        let (metrics, agent) = agent(&c, here, 8);

        // 'b' has one origin that answers: checked once, it has nothing running or waiting.
        let mb = http_monitor(&c, b, 2, answering).await;
        pool(&c, b, 3, mb, &["127.0.1.1".to_owned()]).await;
        served.recv().await.unwrap();
        // 'a' has twenty that never answer: its checks take slots and wait for more.
        let ma = http_monitor(&c, a, 4, silent).await;
        let addresses: Vec<String> = (1..=20).map(|i| format!("127.0.0.{i}")).collect();
        pool(&c, a, 5, ma, &addresses).await;
        let mut held = 0;
        while held < 7 {
            dead.recv().await.unwrap();
            held += 1;
        }
        while metrics.backlog.get() < 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Another origin of 'b' comes due.
        pool(&c, b, 6, mb, &["127.0.1.2".to_owned()]).await;
        let to = served.recv().await.unwrap();
        assert_eq!(to.to_string(), "127.0.1.2");
        assert_eq!(ended(&metrics, ma), 0, "no check of 'a' gave its slot back");
        assert!(
            dead.try_recv().is_err(),
            "'a' held seven of the eight slots, not the eighth"
        );
        assert!(metrics.backlog.get() > 0, "'a' still has checks waiting");
        agent.abort();
    }

    /// The accounts an agent keeps room for follow its targets through deltas: an account
    /// whose last target left is no longer one of them.
    #[tokio::test]
    async fn the_accounts_kept_room_for_follow_the_assignment() {
        let (c, a) = controller();
        let b = AccountId::from_bytes([9; 16]);
        c.commit(move |cat, now| cat.create_account(b, "b".into(), now))
            .await
            .unwrap();
        let mut changes = c.assignment_changes();
        let here = here(&c);
        let ma = http_monitor(&c, a, 2, 80).await;
        pool(&c, a, 3, ma, &["192.0.2.1".to_owned()]).await;
        let mb = http_monitor(&c, b, 4, 80).await;
        let pb = pool(&c, b, 5, mb, &["192.0.2.2".to_owned()]).await;
        while c.assignment(here.region, None).len() != 2 {
            changes.changed().await.unwrap();
        }
        let link = Link::Local(Arc::clone(&c));
        let (mut targets, mut accounts, mut schedule) =
            (HashMap::new(), Accounts::default(), Schedule::default());
        let whole = c.assignment_message(here.region, None, None);
        load(&link, &mut targets, &mut accounts, &mut schedule, whole);
        assert_eq!(accounts.len(), 2);

        let held = c.assignment_at();
        c.commit(move |cat, _| cat.delete_pool(b, pb))
            .await
            .unwrap();
        while c.assignment(here.region, None).len() != 1 {
            changes.changed().await.unwrap();
        }
        let delta = c.assignment_message(here.region, None, Some(held));
        assert!(delta.changes.is_some(), "a delta, not the whole");
        load(&link, &mut targets, &mut accounts, &mut schedule, delta);
        assert_eq!((targets.len(), accounts.len()), (1, 1));
    }
}
