//! The controller's view of health: every location's state for every probe target, the
//! verdicts they add up to for every pool, and the events when those verdicts change.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::changes::{Change, ChangeLog};
use super::check::{CheckResult, FailureReason};
use super::latency::Smoothed;
use super::plan::{HealthPlan, PlannedPool};
use super::verdict::{
    group_verdict, majority, pool_verdict, LocationState, RegionVerdicts, Verdict,
};
use super::view::{HealthView, OriginVerdict, PoolVerdicts, Probe, Probes};
use super::{Location, ProbeKey};
use crate::monitor::MonitorSpec;
use crate::monitor_group::Role;
use crate::region::{CheckRegions, RegionCode};
use crate::{AccountId, MonitorId, PoolId, Timestamp};

#[derive(Debug, Clone, PartialEq)]
struct OriginPlan {
    name: Arc<str>,
    address: Arc<str>,
    enabled: bool,
    /// Empty when not probed: a disabled origin, or any origin of a disabled pool. Shared
    /// with the view, which names them for latency lookups.
    probes: Probes,
}

/// A target's monitor and the pools that use it.
#[derive(Debug, Clone)]
struct TargetPlan {
    spec: Arc<MonitorSpec>,
    users: Vec<PoolId>,
    /// The assignment change that last touched it (its note in the change log).
    seq: u64,
}

#[derive(Debug, Clone, PartialEq)]
struct PoolPlan {
    account: AccountId,
    name: String,
    enabled: bool,
    minimum: u16,
    check_regions: CheckRegions,
    /// Judged by a monitor group: its health shows each member.
    grouped: bool,
    /// The longest a location may wait between two of this pool's results (µs): its slowest
    /// monitor's interval plus one check.
    gap: i64,
    origins: Vec<OriginPlan>,
}

/// An origin's health as one pool sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct OriginHealth {
    pub name: String,
    pub address: String,
    pub enabled: bool,
    pub healthy: Verdict,
    pub reason: FailureReason,
    pub response_code: Option<u16>,
    /// Median of the voting locations' latest round trips.
    pub rtt_micros: Option<u64>,
    /// Per checking region: its verdict (majority of its locations).
    pub regions: RegionVerdicts,
    /// Every location's latest state for this origin, voting or not (by its monitor; in a
    /// monitor group, by the first member that counts — each member's own verdict is in
    /// `members`).
    pub locations: Vec<(Location, LocationState)>,
    /// In a pool judged by a monitor group: each enabled member's verdict on this origin, in
    /// the group's order. Empty otherwise.
    pub members: Vec<MemberHealth>,
}

/// One monitor group member's verdict on one origin.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberHealth {
    pub monitor: MonitorId,
    pub role: Role,
    pub healthy: Verdict,
    pub reason: FailureReason,
    pub response_code: Option<u16>,
    pub rtt_micros: Option<u64>,
}

/// One target's verdicts for one pool: what a monitor alone says of an origin.
struct Judged {
    healthy: Verdict,
    reason: FailureReason,
    response_code: Option<u16>,
    rtt_micros: Option<u64>,
    regions: RegionVerdicts,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PoolHealth {
    pub pool: PoolId,
    pub healthy: Verdict,
    /// The pool's threshold over each checking region's verdicts.
    pub regions: RegionVerdicts,
    pub origins: Vec<OriginHealth>,
}

/// A change of an origin's or a pool's verdict (contract §5 rule 8).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub at: Timestamp,
    pub account: AccountId,
    pub pool: PoolId,
    pub pool_name: String,
    pub pool_healthy: Verdict,
    /// The pool's verdict before this change (unknown when this is its first).
    pub pool_was: Verdict,
    pub pool_changed: bool,
    pub minimum_origins: u16,
    /// The origins whose verdict changed.
    pub origins: Vec<OriginEvent>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OriginEvent {
    pub name: String,
    pub address: String,
    pub enabled: bool,
    pub healthy: Verdict,
    /// The verdict before this change.
    pub was: Verdict,
    pub reason: FailureReason,
}

/// What a location must probe: the target and its monitor, and the pools it serves (for
/// the probe's User-Agent).
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    pub key: ProbeKey,
    /// Shared by every target of the monitor.
    pub spec: Arc<MonitorSpec>,
    pub pools: Vec<String>,
    /// The account whose pools the target serves (a monitor and the pools using it are one
    /// account's): an agent short of slots gives its accounts turns.
    pub account: Option<AccountId>,
}

#[derive(Debug, Clone, Default)]
pub struct Engine {
    pools: BTreeMap<PoolId, PoolPlan>,
    /// Every target probed now. Keys are shared (one allocation per target) with `states`,
    /// the plan's origins and the view: at 100,000 targets each copy is megabytes.
    targets: HashMap<Arc<ProbeKey>, TargetPlan>,
    states: HashMap<Arc<ProbeKey>, LocationStates>,
    /// The engine's time: the latest `now` it was given. Freshness is judged against it, so
    /// what the API shows and what the events say always agree.
    clock: Timestamp,
    /// Last contact from each probe location.
    locations: BTreeMap<Location, LocationContact>,
    /// When the engine resumed from stored states. Whether those locations are still alive is
    /// unknown at that moment, so their votes get the usual grace period counted from here.
    restored_at: Timestamp,
    /// When each pool must be looked at again because a vote it counts may have gone stale:
    /// never later than the true instant (a result only moves a vote's expiry later, so the
    /// earliest one noted is a safe bound), sometimes earlier (then the look finds nothing).
    wake: HashMap<PoolId, i64>,
    wakes: std::collections::BTreeSet<(i64, PoolId)>,
    /// Per region, the longest a location there may go without a result while all is well:
    /// its slowest assigned monitor's interval plus one check's time.
    quiet: HashMap<RegionCode, i64>,
    /// Every pool's verdicts as last evaluated, kept current by each evaluation.
    view: HealthView,
    /// What moved in the assignment, so locations are sent deltas.
    changes: ChangeLog,
}

/// What changed in one location's assignment since a version it knows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AssignmentDelta {
    /// No longer probed there. Applied before `assigned`: a target removed and added again
    /// since is in both.
    pub removed: Vec<ProbeKey>,
    /// New, or changed (monitor or pools): each replaces what the location held.
    pub assigned: Vec<Assignment>,
}

/// A probe location as the controller knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocationContact {
    pub last_seen: Timestamp,
    /// Silent: no contact for longer than [`SILENT_AFTER`].
    pub silent: bool,
}

/// How far ahead of the controller's clock a result's check time may be.
const CLOCK_SKEW_MICROS: i64 = 5_000_000;

crate::string_enum!(
    /// Why a location's result was not taken (counted by the controller, never silent).
    Refusal {
        /// The target is not assigned to this location (another region, another account,
        /// or no longer probed).
        Unassigned = "unassigned",
        /// Checked too long ago to vote, or in the future.
        OutOfWindow = "out_of_window",
        /// A round trip longer than the monitor's timeout allows.
        RttOutOfRange = "rtt_out_of_range",
        /// Sooner after this location's previous result than half the interval.
        TooFrequent = "too_frequent",
        /// The check failed for a reason of the prober's own machine, not the origin's.
        LocalFailure = "local_failure",
    }
);

/// A location that has not been heard from for this long is reported silent, or for its
/// slowest monitor's interval plus one check and 10 s, if longer: silence follows the
/// location's own schedule. (Its votes go stale per target, after three of that target's
/// intervals.)
pub const SILENT_AFTER: i64 = 30_000_000;
const SILENCE_SLACK: i64 = 10_000_000;

/// How long a location's verdict on a target stays fresh: three intervals plus the time one
/// check may take.
fn freshness_micros(spec: &MonitorSpec) -> i64 {
    let check = i64::from(spec.timeout) * (i64::from(spec.retries) + 1);
    (3 * i64::from(spec.interval) + check) * 1_000_000
}

impl Engine {
    /// An engine for `catalog`, resuming from stored location states. Verdicts computed here
    /// are the baseline: they raise no events.
    pub fn new(
        plan: &HealthPlan,
        restored: impl IntoIterator<Item = (ProbeKey, Location, LocationState)>,
        now: Timestamp,
    ) -> Self {
        let mut e = Engine {
            restored_at: now,
            ..Engine::default()
        };
        for (key, loc, state) in restored {
            *e.states.entry(Arc::new(key)).or_default().entry(&loc) = state;
        }
        e.plan(&plan.pools);
        // A new engine's first assignment is sent whole; deltas start from it.
        e.changes.restart(e.changes.seq());
        e.states.retain(|k, _| e.targets.contains_key(k));
        let ids: Vec<PoolId> = e.pools.keys().copied().collect();
        for id in ids {
            let _ = e.evaluate(id, Timestamp::from_unix_micros(0), None);
            e.reschedule(id);
        }
        e
    }

    /// The instant a vote by `state` on a target of `spec` stops counting.
    fn expiry(&self, spec: &MonitorSpec, state: &LocationState) -> Option<i64> {
        let last = state.last_at?.max(self.restored_at).unix_micros();
        Some(last + freshness_micros(spec) + 1)
    }

    /// Notes that `pool` must be looked at by `at` (keeps the earlier of two).
    fn wake_by(&mut self, pool: PoolId, at: i64) {
        match self.wake.get(&pool) {
            Some(&known) if known <= at => {}
            known => {
                if let Some(known) = known {
                    self.wakes.remove(&(*known, pool));
                }
                self.wake.insert(pool, at);
                self.wakes.insert((at, pool));
            }
        }
    }

    /// Sets `pool`'s wake-up to the exact instant its next counted vote goes stale.
    fn reschedule(&mut self, pool: PoolId) {
        if let Some(known) = self.wake.remove(&pool) {
            self.wakes.remove(&(known, pool));
        }
        let Some(plan) = self.pools.get(&pool) else {
            return;
        };
        let clock = self.clock.unix_micros();
        let next = plan
            .origins
            .iter()
            .flat_map(|o| o.probes.iter())
            .filter_map(|p| Some((&self.targets.get(&*p.key)?.spec, self.states.get(&*p.key)?)))
            .flat_map(|(spec, states)| states.values().filter_map(|s| self.expiry(spec, s)))
            .filter(|at| *at > clock)
            .min();
        if let Some(at) = next {
            self.wake_by(pool, at);
        }
    }

    /// How long `location` may stay quiet before it counts as silent.
    fn silent_after(&self, location: &Location) -> i64 {
        let quiet = self.quiet.get(&location.region).copied().unwrap_or(0);
        SILENT_AFTER.max(quiet + SILENCE_SLACK)
    }

    /// Follows `plan`: a pool whose plan moved is planned again, its targets noted in the
    /// change log; the others are kept as they are, verdicts, wake-ups and all. Returns the
    /// pools planned again (to evaluate and reschedule).
    fn plan<P: std::borrow::Borrow<PlannedPool>>(
        &mut self,
        plan: impl IntoIterator<Item = P>,
    ) -> Vec<PoolId> {
        let seq = self.changes.next();
        let mut view = Arc::clone(&self.view.pools);
        let entries = Arc::make_mut(&mut view);
        let mut listed = std::collections::HashSet::with_capacity(self.pools.len());
        let mut replanned = Vec::new();
        let mut orphans = Vec::new();
        // Targets whose monitor changed: every pool probing one is looked at again, also one
        // whose own plan compares equal because another pool already took the new monitor.
        let mut respecified = Vec::new();
        for p in plan {
            let p = p.borrow();
            listed.insert(p.id);
            if p.checks.is_empty() {
                self.unplan(p.id, seq, &mut orphans);
                let entry = unmonitored(p);
                if entries.get(&p.id).is_none_or(|b| **b != entry) {
                    entries.insert(p.id, Arc::new(entry));
                }
                continue;
            }
            if self
                .pools
                .get(&p.id)
                .is_some_and(|old| self.planned_as(old, p))
            {
                continue;
            }
            self.unplan(p.id, seq, &mut orphans);
            // Until evaluated, the last verdicts stand (the view's entry is kept).
            let origins = p
                .origins
                .iter()
                .map(|o| {
                    let probes: Vec<Probe> = if p.enabled && o.enabled {
                        p.checks
                            .iter()
                            .map(|check| Probe {
                                key: self.target(
                                    ProbeKey {
                                        monitor: check.monitor,
                                        address: o.address.clone(),
                                        port: o.port,
                                        host: o.host.clone(),
                                    },
                                    &check.spec,
                                    (p.id, p.account),
                                    seq,
                                    &mut respecified,
                                ),
                                role: check.role,
                            })
                            .collect()
                    } else {
                        Vec::new()
                    };
                    OriginPlan {
                        name: Arc::from(o.name.as_str()),
                        address: Arc::from(o.address.as_str()),
                        enabled: o.enabled,
                        probes: Probes::from(probes),
                    }
                })
                .collect();
            self.pools.insert(
                p.id,
                PoolPlan {
                    account: p.account,
                    name: p.name.clone(),
                    enabled: p.enabled,
                    minimum: p.minimum,
                    check_regions: p.check_regions.clone(),
                    grouped: p.grouped,
                    gap: gap(p),
                    origins,
                },
            );
            replanned.push(p.id);
        }
        let gone: Vec<PoolId> = self
            .pools
            .keys()
            .filter(|id| !listed.contains(*id))
            .copied()
            .collect();
        for id in gone {
            self.unplan(id, seq, &mut orphans);
        }
        entries.retain(|id, _| listed.contains(id));
        // A target no pool probes any more goes, with its votes.
        for (key, account) in orphans {
            if self.targets.get(&key).is_some_and(|t| t.users.is_empty()) {
                if let Some(t) = self.targets.remove(&key) {
                    self.changes
                        .note(&key, t.seq, seq, Change::Removed, account);
                }
                self.states.remove(&key);
            }
        }
        let mut looked: std::collections::HashSet<PoolId> = replanned.iter().copied().collect();
        for key in respecified {
            for pool in self
                .targets
                .get(&key)
                .map(|t| t.users.clone())
                .unwrap_or_default()
            {
                if looked.insert(pool) {
                    replanned.push(pool);
                }
            }
        }
        self.quiet.clear();
        for plan in self.pools.values() {
            for region in RegionCode::ALL {
                if checks_from(&plan.check_regions, region) {
                    let q = self.quiet.entry(region).or_insert(0);
                    *q = (*q).max(plan.gap);
                }
            }
        }
        self.view = HealthView { pools: view };
        self.changes.commit(seq);
        replanned
    }

    /// Whether `old` is what planning `p` would give again: then nothing about the pool
    /// moved, and it is kept as it is.
    fn planned_as(&self, old: &PoolPlan, p: &PlannedPool) -> bool {
        old.account == p.account
            && old.name == p.name
            && old.enabled == p.enabled
            && old.minimum == p.minimum
            && old.check_regions == p.check_regions
            && old.grouped == p.grouped
            && old.gap == gap(p)
            && old.origins.len() == p.origins.len()
            && old.origins.iter().zip(&p.origins).all(|(o, n)| {
                let probed = p.enabled && n.enabled;
                *o.name == *n.name
                    && *o.address == *n.address
                    && o.enabled == n.enabled
                    && o.probes.len() == if probed { p.checks.len() } else { 0 }
                    && o.probes.iter().zip(&p.checks).all(|(probe, check)| {
                        let k = &probe.key;
                        probe.role == check.role
                            && k.monitor == check.monitor
                            && k.address == n.address
                            && k.port == n.port
                            && k.host == n.host
                            && self
                                .targets
                                .get(&**k)
                                .is_some_and(|t| *t.spec == *check.spec)
                    })
            })
    }

    /// Forgets `pool`'s plan and wake-up, and takes it off the targets it probed, noting them
    /// at `seq` (their pools changed). Those left with no pool are added to `orphans`: they
    /// go once planning is over, unless another pool takes them on meanwhile.
    fn unplan(&mut self, pool: PoolId, seq: u64, orphans: &mut Vec<(Arc<ProbeKey>, AccountId)>) {
        if let Some(at) = self.wake.remove(&pool) {
            self.wakes.remove(&(at, pool));
        }
        let Some(old) = self.pools.remove(&pool) else {
            return;
        };
        for probe in old.origins.iter().flat_map(|o| o.probes.iter()) {
            if let Some(t) = self.targets.get_mut(&*probe.key) {
                t.users.retain(|u| *u != pool);
                self.changes
                    .note(&probe.key, t.seq, seq, Change::Assigned, old.account);
                t.seq = seq;
                if t.users.is_empty() {
                    orphans.push((Arc::clone(&probe.key), old.account));
                }
            }
        }
    }

    /// The shared key of a target `pool` (of its account) probes with `spec`, noting the pool
    /// as its user and the target as changed at `seq`; added to `respecified` if its monitor
    /// changed.
    fn target(
        &mut self,
        key: ProbeKey,
        spec: &Arc<MonitorSpec>,
        (pool, account): (PoolId, AccountId),
        seq: u64,
        respecified: &mut Vec<Arc<ProbeKey>>,
    ) -> Arc<ProbeKey> {
        // One allocation per target, whoever saw it first.
        let shared = match self.targets.get_key_value(&key) {
            Some((k, _)) => Arc::clone(k),
            None => self
                .states
                .get_key_value(&key)
                .map_or_else(|| Arc::new(key), |(k, _)| Arc::clone(k)),
        };
        let target = self
            .targets
            .entry(Arc::clone(&shared))
            .or_insert_with(|| TargetPlan {
                spec: Arc::clone(spec),
                users: Vec::new(),
                seq: 0,
            });
        if *target.spec != **spec {
            target.spec = Arc::clone(spec);
            respecified.push(Arc::clone(&shared));
        }
        if !target.users.contains(&pool) {
            // Exactly as long as it needs: nearly every target has one user, and a vector's
            // first push would make room for four (48 bytes a target, 5 MB at 100,000).
            target.users.reserve_exact(1);
            target.users.push(pool);
        }
        self.changes
            .note(&shared, target.seq, seq, Change::Assigned, account);
        target.seq = seq;
        shared
    }

    /// The engine's own allocation of `key`, while it probes that target: whoever else in the
    /// process holds the key (the built-in agent) can share it instead of keeping a copy.
    pub fn shared_key(&self, key: &ProbeKey) -> Option<Arc<ProbeKey>> {
        self.targets.get_key_value(key).map(|(k, _)| Arc::clone(k))
    }

    /// A target's smoothed RTT in ms as seen from `region`; from a region that has none,
    /// the mean over the regions that have one.
    pub fn latency_ms(&self, key: &ProbeKey, region: Option<RegionCode>) -> Option<f64> {
        let states = self.states.get(key)?;
        let mean = |inside: &dyn Fn(&Location) -> bool| {
            let (sum, n) = states
                .iter()
                .filter(|(l, _)| inside(l))
                .filter_map(|(_, s)| s.latency)
                .fold((0.0, 0usize), |(sum, n), s| (sum + s.ms, n + 1));
            (n > 0).then(|| sum / n as f64)
        };
        mean(&|l| Some(l.region) == region).or_else(|| mean(&|_| true))
    }

    /// The verdicts of every pool, as last evaluated: cheap to take (shared, not copied).
    pub fn view(&self) -> HealthView {
        self.view.clone()
    }

    /// Follows a configuration change: new targets start unknown, removed ones are forgotten,
    /// and verdicts that the change itself alters (a threshold, a disabled origin) are events.
    pub fn configure(&mut self, plan: &HealthPlan, now: Timestamp) -> Vec<Event> {
        self.configure_pools(&plan.pools, now)
    }

    /// [`Engine::configure`] with the plan's pools one at a time, as
    /// [`crate::catalog::Catalog::planned_pools`] makes them.
    pub fn configure_pools<P: std::borrow::Borrow<PlannedPool>>(
        &mut self,
        pools: impl IntoIterator<Item = P>,
        now: Timestamp,
    ) -> Vec<Event> {
        self.clock = self.clock.max(now);
        let replanned = self.plan(pools);
        let events = replanned
            .iter()
            .filter_map(|id| self.evaluate(*id, now, None))
            .collect();
        for id in replanned {
            self.reschedule(id);
        }
        events
    }

    /// The latest assignment change: what a location holds once it has every change so far.
    pub fn assignment_seq(&self) -> u64 {
        self.changes.seq()
    }

    /// Continues assignment numbers after `seq` (an engine built again in place of one that
    /// gave numbers up to it): a location holding one of those gets the whole assignment
    /// again, never a delta against what this engine cannot know.
    pub fn continue_assignments_after(&mut self, seq: u64) {
        self.changes.restart(seq + 1);
    }

    /// What changed for a location in `region` (for pools of `accounts`, if given) since
    /// assignment change `since`; `None` when the engine cannot say (too far behind, or a
    /// number it never gave): then the location needs the whole assignment.
    pub fn assignment_delta(
        &self,
        region: RegionCode,
        accounts: Option<&[AccountId]>,
        since: u64,
    ) -> Option<AssignmentDelta> {
        let mut delta = AssignmentDelta::default();
        for (key, change, account) in self.changes.since(since)? {
            let target = self.targets.get(key);
            match (change, target) {
                (Change::Assigned, Some(t)) if self.assigned_to(t, region, accounts) => {
                    delta.assigned.push(self.assignment_of(key, t));
                }
                // Another account's targets do not exist for an agent bound to some: it is
                // never told of them, not even that they went.
                _ if accounts.is_some_and(|a| !a.contains(&account)) => {}
                _ => delta.removed.push((**key).clone()),
            }
        }
        Some(delta)
    }

    /// Whether a location in `region` probes `t` (for pools of `accounts`, if given).
    fn assigned_to(
        &self,
        t: &TargetPlan,
        region: RegionCode,
        accounts: Option<&[AccountId]>,
    ) -> bool {
        t.users.iter().any(|p| {
            self.pools.get(p).is_some_and(|pp| {
                checks_from(&pp.check_regions, region)
                    && accounts.is_none_or(|a| a.contains(&pp.account))
            })
        })
    }

    fn assignment_of(&self, key: &ProbeKey, t: &TargetPlan) -> Assignment {
        let users = || t.users.iter().filter_map(|p| self.pools.get(p));
        Assignment {
            key: key.clone(),
            spec: Arc::clone(&t.spec),
            pools: users().map(|p| p.name.clone()).collect(),
            account: users().next().map(|p| p.account),
        }
    }

    /// Every target a location in `region` must probe.
    pub fn assignment(&self, region: RegionCode) -> Vec<Assignment> {
        self.assignment_for(region, None)
    }

    /// Every target a location in `region` must probe for pools of `accounts` (`None`: all).
    pub fn assignment_for(
        &self,
        region: RegionCode,
        accounts: Option<&[AccountId]>,
    ) -> Vec<Assignment> {
        let mut out: Vec<Assignment> = self
            .targets
            .iter()
            .filter(|(_, t)| self.assigned_to(t, region, accounts))
            .map(|(key, t)| self.assignment_of(key, t))
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }

    /// Every target probed now (the store keeps location states of these only).
    pub fn targets(&self) -> impl Iterator<Item = &ProbeKey> {
        self.targets.keys().map(|k| &**k)
    }

    /// Every location state of the targets probed now: what a shell writes again when its
    /// record of some changes was lost (a store that fell behind or failed).
    pub fn location_states(&self) -> impl Iterator<Item = (&ProbeKey, &Location, &LocationState)> {
        self.states
            .iter()
            .filter(|(key, _)| self.targets.contains_key(&***key))
            .flat_map(|(key, states)| states.iter().map(move |(l, s)| (&**key, l, s)))
    }

    /// The monitor of a target, if it is still assigned, and the engine's one copy of its
    /// key (a shell keeping something per target shares it rather than copying the key).
    pub fn spec(&self, key: &ProbeKey) -> Option<(&Arc<ProbeKey>, &MonitorSpec)> {
        self.targets.get_key_value(key).map(|(k, t)| (k, &*t.spec))
    }

    /// Records one check from one location. Returns the new location state when its verdict
    /// changed (the shell persists it) and the events it caused.
    pub fn record(
        &mut self,
        location: &Location,
        key: &ProbeKey,
        result: CheckResult,
        now: Timestamp,
    ) -> (Option<LocationState>, Vec<Event>) {
        let Some((shared, target)) = self.targets.get_key_value(key) else {
            return (None, vec![]);
        };
        let (up, down) = (target.spec.consecutive_up, target.spec.consecutive_down);
        let spec = Arc::clone(&target.spec);
        let shared = Arc::clone(shared);
        self.heartbeat(location, now);
        let clock = self.clock.unix_micros();
        let restored_at = self.restored_at;
        let limit = freshness_micros(&spec);
        let state = self.states.entry(shared).or_default().entry(location);
        if let Some(us) = result.rtt_micros {
            let ms = us as f64 / 1000.0;
            match &mut state.latency {
                Some(s) => s.update(ms, now),
                None => state.latency = Some(Smoothed::first(ms, now)),
            }
        }
        // A vote that had gone stale counts again once refreshed, even with its verdict
        // unchanged: the pools it votes in must be re-derived now, not at some later wake-up.
        let was_stale = state
            .last_at
            .is_none_or(|t| t.max(restored_at).unix_micros() + limit < clock);
        let changed = state.record(result, up, down, now).is_some();
        let snapshot = state.clone();
        let pools: Vec<PoolId> = self
            .targets
            .get(key)
            .map(|t| t.users.clone())
            .unwrap_or_default();
        // This vote now counts until its new expiry: its pools must be looked at by then.
        if let Some(at) = self.expiry(&spec, &snapshot) {
            for p in &pools {
                self.wake_by(*p, at);
            }
        }
        if !changed && !was_stale {
            return (None, vec![]);
        }
        let events = pools
            .into_iter()
            .filter_map(|p| self.evaluate(p, now, Some(key)))
            .collect();
        // Only a verdict's change is persisted: a refreshed vote's freshness is kept in memory
        // (a restored engine counts every stored vote fresh from its restart anyway), so an
        // overloaded prober whose votes go stale between checks does not write every check.
        (changed.then_some(snapshot), events)
    }

    /// When the engine next needs [`Engine::handle_timeout`]: the first instant a counted
    /// vote goes stale or a live location falls silent. `None`: nothing will change with time
    /// alone. A driver sleeps until then (or until it has new input for the engine).
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let stale = self.wakes.first().map(|(at, _)| *at);
        let silent = self
            .locations
            .iter()
            .filter(|(_, c)| !c.silent)
            .map(|(l, c)| c.last_seen.unix_micros() + self.silent_after(l) + 1)
            .min();
        [stale, silent]
            .into_iter()
            .flatten()
            .min()
            .map(Timestamp::from_unix_micros)
    }

    /// Advances the engine's time to `now`: votes that went stale stop counting (only the
    /// pools that had one are looked at), and the changes that causes are events. Also
    /// returns the locations that fell silent since.
    ///
    /// Call order, as a driver: feed inputs ([`Engine::configure`], [`Engine::record`],
    /// [`Engine::heartbeat`]) as they come, and call this whenever the clock passes
    /// [`Engine::poll_timeout`] — calling it sooner or more often is harmless.
    pub fn handle_timeout(&mut self, now: Timestamp) -> (Vec<Event>, Vec<Location>) {
        self.clock = self.clock.max(now);
        let clock = self.clock.unix_micros();
        let mut fell_silent = Vec::new();
        let limits: Vec<i64> = self
            .locations
            .keys()
            .map(|l| self.silent_after(l))
            .collect();
        for ((loc, contact), limit) in self.locations.iter_mut().zip(limits) {
            let silent = clock - contact.last_seen.unix_micros() > limit;
            if silent && !contact.silent {
                fell_silent.push(loc.clone());
            }
            contact.silent = silent;
        }
        let mut due = Vec::new();
        while let Some(&(at, pool)) = self.wakes.first() {
            if at > clock {
                break;
            }
            self.wakes.pop_first();
            self.wake.remove(&pool);
            due.push(pool);
        }
        let mut events = Vec::new();
        for pool in due {
            events.extend(self.evaluate(pool, now, None));
            self.reschedule(pool);
        }
        (events, fell_silent)
    }

    /// Notes contact from a location (every result is one too).
    pub fn heartbeat(&mut self, location: &Location, now: Timestamp) {
        self.clock = self.clock.max(now);
        self.locations.insert(
            location.clone(),
            LocationContact {
                last_seen: now,
                silent: false,
            },
        );
    }

    /// Every probe location heard from, with its last contact.
    pub fn locations(&self) -> impl Iterator<Item = (&Location, &LocationContact)> {
        self.locations.iter()
    }

    /// Takes every location's contact as the judging controller's engine knows it (this one
    /// follows it: agents talk to the judge, so only it hears from all of them). Judges
    /// nothing.
    pub fn restore_contacts(
        &mut self,
        contacts: impl IntoIterator<Item = (Location, LocationContact)>,
    ) {
        self.locations = contacts.into_iter().collect();
    }

    /// Every location the engine holds anything of: contact or a stored vote.
    pub fn known_locations(&self) -> std::collections::BTreeSet<Location> {
        let mut out: std::collections::BTreeSet<Location> =
            self.locations.keys().cloned().collect();
        for states in self.states.values() {
            out.extend(states.keys().cloned());
        }
        out
    }

    /// The locations that may vote no longer: not in `allowed` (the built-in location and
    /// those usable agent tokens speak for), or silent for longer than `silent_for` (µs).
    /// Forget them with [`Engine::forget`].
    pub fn retired(
        &self,
        allowed: &std::collections::BTreeSet<Location>,
        silent_for: i64,
        now: Timestamp,
    ) -> Vec<Location> {
        self.known_locations()
            .into_iter()
            .filter(|l| {
                !allowed.contains(l)
                    || self
                        .locations
                        .get(l)
                        .is_some_and(|c| now.unix_micros() - c.last_seen.unix_micros() > silent_for)
            })
            .collect()
    }

    /// Forgets a location: its contact and every vote it holds (a retired agent, or one whose
    /// token was revoked). Verdicts it took part in are re-derived without it; the changes
    /// are events.
    pub fn forget(&mut self, location: &Location, now: Timestamp) -> Vec<Event> {
        self.clock = self.clock.max(now);
        let mut touched = std::collections::BTreeSet::new();
        for (key, states) in &mut self.states {
            if states.remove(location) {
                touched.extend(
                    self.targets
                        .get(key)
                        .into_iter()
                        .flat_map(|t| t.users.iter().copied()),
                );
            }
        }
        self.locations.remove(location);
        touched
            .into_iter()
            .filter_map(|pool| self.evaluate(pool, now, None))
            .collect()
    }

    /// Whether a result from `location` on `key`, checked at `at` with `facts`, may be taken
    /// at `now`. A check that failed for a local reason is no vote at all. One location is
    /// one vote, so what a location may say is bounded by what it was asked: targets assigned to its region (and, when `accounts` is given,
    /// pools of those accounts), a check time that can still vote and is not in the future,
    /// a round trip the monitor's timeout allows, and no more often than about once an
    /// interval — a faster stream would flip verdicts faster than hysteresis intends.
    pub fn admit(
        &self,
        location: &Location,
        accounts: Option<&[AccountId]>,
        key: &ProbeKey,
        at: Timestamp,
        facts: &super::Facts,
        now: Timestamp,
    ) -> Result<(), Refusal> {
        let rtt_micros = facts.rtt_micros;
        if facts.outcome == super::Outcome::Error(FailureReason::LocalResources) {
            return Err(Refusal::LocalFailure);
        }
        let target = self.targets.get(key).ok_or(Refusal::Unassigned)?;
        let spec = &target.spec;
        if !self.assigned_to(target, location.region, accounts) {
            return Err(Refusal::Unassigned);
        }
        let (at, now) = (at.unix_micros(), now.unix_micros());
        if at > now + CLOCK_SKEW_MICROS || at < now - freshness_micros(spec) {
            return Err(Refusal::OutOfWindow);
        }
        let allowed = (i64::from(spec.timeout) * (i64::from(spec.retries) + 1) + 1) * 1_000_000;
        if rtt_micros.is_some_and(|r| i64::try_from(r).unwrap_or(i64::MAX) > allowed) {
            return Err(Refusal::RttOutOfRange);
        }
        let last = self
            .states
            .get(key)
            .and_then(|s| s.iter().find(|(l, _)| *l == location))
            .and_then(|(_, s)| s.last_at);
        let spacing = i64::from(spec.interval) * 1_000_000 / 2;
        if last.is_some_and(|l| at < l.unix_micros() + spacing) {
            return Err(Refusal::TooFrequent);
        }
        Ok(())
    }

    /// Recomputes one pool's verdicts; an event if any changed since last reported. With
    /// `only`, just the origins probed by that target are re-derived (one location's verdict on
    /// it changed); the others keep their last verdicts, which nothing else can have moved.
    fn evaluate(&mut self, pool: PoolId, now: Timestamp, only: Option<&ProbeKey>) -> Option<Event> {
        let plan = self.pools.get(&pool)?;
        // Everything is re-derived when asked, or when the view has no entry of this pool's
        // shape to update (a configuration change re-derives every pool it planned again, so
        // this is a safeguard, not a path).
        let full = only.is_none()
            || self
                .view
                .pools
                .get(&pool)
                .is_none_or(|v| !v.monitored || v.origins.len() != plan.origins.len());
        let recomputed: Vec<Recomputed> = plan
            .origins
            .iter()
            .enumerate()
            .filter(|(_, o)| full || only.is_some_and(|k| o.probes.iter().any(|p| *p.key == *k)))
            .map(|(i, o)| {
                let h = self.origin_health(plan, o, false);
                (i, h.healthy, h.reason, h.regions)
            })
            .collect();
        // What was reported before is what the view holds (a pool's entry survives a
        // configuration change; an origin is found by name when the list moved).
        let reported = self.view.pools.get(&pool).filter(|v| v.monitored).cloned();
        let previous_origin = |i: usize, name: &str| {
            let v = reported.as_ref()?;
            v.origins
                .get(i)
                .filter(|o| *o.name == *name)
                .or_else(|| v.origins.iter().find(|o| *o.name == *name))
                .map(|o| o.healthy)
        };
        let mut origins = Vec::new();
        for (i, healthy, reason, _) in &recomputed {
            let (healthy, reason) = (*healthy, *reason);
            let o = &plan.origins[*i];
            let previous = previous_origin(*i, &o.name);
            if previous != Some(healthy) && (previous.is_some() || healthy.is_known()) {
                origins.push(OriginEvent {
                    name: o.name.to_string(),
                    address: o.address.to_string(),
                    enabled: o.enabled,
                    healthy,
                    was: previous.unwrap_or_default(),
                    reason,
                });
            }
        }
        let previous_pool = reported.as_ref().map(|v| v.healthy);
        let healthy = self.publish(pool, recomputed, full);
        let plan = &self.pools[&pool];
        let pool_changed =
            previous_pool != Some(healthy) && (previous_pool.is_some() || healthy.is_known());
        (pool_changed || !origins.is_empty()).then(|| Event {
            at: now,
            account: plan.account,
            pool,
            pool_name: plan.name.clone(),
            pool_healthy: healthy,
            pool_was: previous_pool.unwrap_or_default(),
            pool_changed,
            minimum_origins: plan.minimum,
            origins,
        })
    }

    /// Updates `pool`'s entry in the view with the origins just re-derived (every origin when
    /// `full`; else only those, the others keep their entries) and returns the pool's
    /// verdict. A partial update touches only the regions whose verdicts moved, so one
    /// location's result costs the same in a pool of 6 origins or 600.
    fn publish(&mut self, pool: PoolId, recomputed: Vec<Recomputed>, full: bool) -> Verdict {
        let Some(plan) = self.pools.get(&pool) else {
            return Verdict::Unknown;
        };
        let fresh = |i: usize, healthy, reason, regions| {
            let o = &plan.origins[i];
            Arc::new(OriginVerdict {
                name: o.name.clone(),
                address: o.address.clone(),
                enabled: o.enabled,
                healthy,
                reason,
                regions,
                probes: Probes::clone(&o.probes),
            })
        };
        let pool_regions = |origins: &[Arc<OriginVerdict>], r: RegionCode| {
            let votes = origins
                .iter()
                .filter(|o| o.enabled)
                .map(|o| o.regions.get(&r).copied().unwrap_or_default());
            pool_verdict(plan.enabled, plan.minimum, votes)
        };
        let before = self
            .view
            .pools
            .get(&pool)
            .filter(|b| !full && b.origins.len() == plan.origins.len());
        let next = match before {
            Some(b) => {
                let mut origins = b.origins.clone();
                let mut moved: std::collections::BTreeSet<RegionCode> = Default::default();
                let mut changed = false;
                for (i, healthy, reason, regions) in recomputed {
                    let old = &origins[i];
                    if old.healthy == healthy && old.reason == reason && old.regions == regions {
                        continue;
                    }
                    changed = true;
                    for r in old.regions.keys().chain(regions.keys()) {
                        if old.regions.get(r) != regions.get(r) {
                            moved.insert(*r);
                        }
                    }
                    origins[i] = fresh(i, healthy, reason, regions);
                }
                if !changed {
                    return b.healthy;
                }
                let mut regions = b.regions;
                for r in moved {
                    if origins
                        .iter()
                        .any(|o| o.enabled && o.regions.contains_key(&r))
                    {
                        regions.insert(r, pool_regions(&origins, r));
                    } else {
                        regions.remove(&r);
                    }
                }
                (origins, regions)
            }
            None => {
                let mut origins: Vec<Arc<OriginVerdict>> = Vec::with_capacity(plan.origins.len());
                let old = self.view.pools.get(&pool);
                // A full update re-derives every origin, in order; an origin that comes out as
                // it was keeps its entry, so a configuration change elsewhere copies nothing.
                for (i, healthy, reason, regions) in recomputed {
                    let o = &plan.origins[i];
                    let kept = old.and_then(|b| b.origins.get(i)).filter(|b| {
                        b.name == o.name
                            && b.address == o.address
                            && b.enabled == o.enabled
                            && b.probes == o.probes
                            && b.healthy == healthy
                            && b.reason == reason
                            && b.regions == regions
                    });
                    origins.push(match kept {
                        Some(b) => Arc::clone(b),
                        None => fresh(i, healthy, reason, regions),
                    });
                }
                let checked: std::collections::BTreeSet<RegionCode> = origins
                    .iter()
                    .filter(|o| o.enabled)
                    .flat_map(|o| o.regions.keys().copied())
                    .collect();
                let regions = checked
                    .into_iter()
                    .map(|r| (r, pool_regions(&origins, r)))
                    .collect();
                (origins, regions)
            }
        };
        let (origins, regions) = next;
        let healthy = pool_verdict(
            plan.enabled,
            plan.minimum,
            origins.iter().filter(|o| o.enabled).map(|o| o.healthy),
        );
        let entry = PoolVerdicts {
            pool,
            account: plan.account,
            enabled: plan.enabled,
            monitored: true,
            healthy,
            regions,
            origins,
        };
        if self.view.pools.get(&pool).is_some_and(|old| **old == entry) {
            // Unchanged: the published view keeps sharing the map.
            return healthy;
        }
        Arc::make_mut(&mut self.view.pools).insert(pool, Arc::new(entry));
        healthy
    }

    /// Sets one location's state on a target as the judging controller's engine recorded it,
    /// judging nothing: a follower keeps the judge's per-location detail this way (its
    /// verdicts are the judge's own, [`Engine::adopt`]). Handed back for a target this
    /// engine does not probe (its catalog is behind), to be tried again after it caught up.
    pub fn restore_state(
        &mut self,
        key: &ProbeKey,
        location: &Location,
        state: LocationState,
    ) -> Result<(), LocationState> {
        let Some((k, _)) = self.targets.get_key_value(key) else {
            return Err(state);
        };
        let k = Arc::clone(k);
        *self.states.entry(k).or_default().entry(location) = state;
        Ok(())
    }

    /// Takes a pool's verdicts as the judging controller decided them: this engine follows
    /// it (a replica on a shared database) and publishes them as its own, so every replica
    /// routes and answers alike. Refused (`false`, nothing changed) when this engine's plan of
    /// the pool names other origins: one of the two catalogs is behind, and the next
    /// adoption after it caught up applies. Schedules nothing: a follower is not ticked.
    pub fn adopt(&mut self, decided: &super::Decided) -> bool {
        let Some(plan) = self.pools.get(&decided.pool) else {
            return false;
        };
        let Some(old) = self.view.pools.get(&decided.pool) else {
            return false;
        };
        let same_origins = plan.origins.len() == decided.origins.len()
            && plan
                .origins
                .iter()
                .zip(&decided.origins)
                .all(|(p, d)| *p.name == *d.name);
        if !same_origins {
            return false;
        }
        let origins: Vec<Arc<OriginVerdict>> = old
            .origins
            .iter()
            .zip(&decided.origins)
            .map(|(o, d)| {
                if o.healthy == d.healthy && o.reason == d.reason && o.regions == d.regions {
                    Arc::clone(o)
                } else {
                    Arc::new(OriginVerdict {
                        healthy: d.healthy,
                        reason: d.reason,
                        regions: d.regions,
                        ..OriginVerdict::clone(o)
                    })
                }
            })
            .collect();
        let entry = PoolVerdicts {
            healthy: decided.healthy,
            regions: decided.regions,
            origins,
            ..PoolVerdicts::clone(old)
        };
        if **old != entry {
            Arc::make_mut(&mut self.view.pools).insert(decided.pool, Arc::new(entry));
        }
        true
    }

    /// The health of a monitored pool, `None` for a pool without a monitor (or unknown).
    pub fn pool_health(&self, pool: PoolId) -> Option<PoolHealth> {
        self.health_of(pool)
    }

    /// The probe target of each origin of a pool, by origin name (`None`: not probed).
    pub fn origin_targets(&self, pool: PoolId) -> Vec<(String, Option<ProbeKey>)> {
        self.pools.get(&pool).map_or_else(Vec::new, |plan| {
            plan.origins
                .iter()
                .map(|o| {
                    let key = o.probes.iter().find(|p| p.role.counts());
                    (o.name.to_string(), key.map(|p| ProbeKey::clone(&p.key)))
                })
                .collect()
        })
    }

    /// A monitored pool's health in detail: the verdicts the view holds (decided once, when
    /// evaluated) and, per origin, every location's latest state, response code and RTT.
    fn health_of(&self, pool: PoolId) -> Option<PoolHealth> {
        let plan = self.pools.get(&pool)?;
        let decided = self.view.pools.get(&pool)?;
        let origins: Vec<OriginHealth> = plan
            .origins
            .iter()
            .zip(&decided.origins)
            .map(|(o, v)| OriginHealth {
                healthy: v.healthy,
                reason: v.reason,
                regions: v.regions,
                ..self.origin_health(plan, o, true)
            })
            .collect();
        Some(PoolHealth {
            pool,
            healthy: decided.healthy,
            regions: decided.regions,
            origins,
        })
    }

    /// An origin's health in `plan`: each of its monitors' verdicts, combined by
    /// [`group_verdict`] (one monitor alone decides by itself).
    fn origin_health(&self, plan: &PoolPlan, origin: &OriginPlan, detailed: bool) -> OriginHealth {
        let first = origin.probes.iter().position(|p| p.role.counts());
        let states = |i: Option<usize>| {
            i.and_then(|i| self.states.get(&*origin.probes[i].key))
                .map(|s| s.iter().map(|(l, s)| (l.clone(), s.clone())).collect())
                .unwrap_or_default()
        };
        let named = |j: Judged, members: Vec<MemberHealth>| OriginHealth {
            name: origin.name.to_string(),
            address: origin.address.to_string(),
            enabled: origin.enabled,
            healthy: j.healthy,
            reason: j.reason,
            response_code: j.response_code,
            rtt_micros: j.rtt_micros,
            regions: j.regions,
            locations: if detailed { states(first) } else { Vec::new() },
            members,
        };
        if let [only] = &*origin.probes {
            if !plan.grouped {
                return named(self.judge(plan, Some(&only.key)), Vec::new());
            }
        }
        if origin.probes.is_empty() {
            return named(self.judge(plan, None), Vec::new());
        }
        let judged: Vec<Judged> = origin
            .probes
            .iter()
            .map(|p| self.judge(plan, Some(&p.key)))
            .collect();
        let roles = || origin.probes.iter().map(|p| p.role);
        let (healthy, decider) = group_verdict(judged.iter().map(|j| j.healthy).zip(roles()));
        let mut regions = RegionVerdicts::default();
        for (r, _) in judged.iter().flat_map(|j| j.regions.iter()) {
            if !regions.contains_key(r) {
                let votes = judged
                    .iter()
                    .map(|j| j.regions.get(r).copied().unwrap_or_default());
                regions.insert(*r, group_verdict(votes.zip(roles())).0);
            }
        }
        let counting: Vec<&Judged> = judged
            .iter()
            .zip(roles())
            .filter(|(_, r)| r.counts())
            .map(|(j, _)| j)
            .collect();
        let rtts: Vec<u64> = counting.iter().filter_map(|j| j.rtt_micros).collect();
        let combined = Judged {
            healthy,
            reason: decider.map_or(FailureReason::None, |i| judged[i].reason),
            response_code: decider
                .map(|i| &judged[i])
                .or(counting.first().copied())
                .and_then(|j| j.response_code),
            rtt_micros: (!rtts.is_empty()).then(|| rtts.iter().sum::<u64>() / rtts.len() as u64),
            regions,
        };
        let members = if detailed {
            origin
                .probes
                .iter()
                .zip(&judged)
                .map(|(p, j)| MemberHealth {
                    monitor: p.key.monitor,
                    role: p.role,
                    healthy: j.healthy,
                    reason: j.reason,
                    response_code: j.response_code,
                    rtt_micros: j.rtt_micros,
                })
                .collect()
        } else {
            Vec::new()
        };
        named(combined, members)
    }

    /// What the target `key` alone says of an origin of `plan`: the majority of its regions'
    /// (or, checked from every location, of its locations') fresh verdicts.
    fn judge(&self, plan: &PoolPlan, key: Option<&ProbeKey>) -> Judged {
        let empty = LocationStates::default();
        let states = key.and_then(|k| self.states.get(k)).unwrap_or(&empty);
        // Only fresh states vote: a location that stopped reporting on this target loses its say.
        let limit = key
            .and_then(|k| self.targets.get(k))
            .map_or(0, |t| freshness_micros(&t.spec));
        let clock = self.clock.unix_micros();
        let since = self.restored_at;
        let fresh = move |s: &LocationState| {
            s.last_at
                .is_some_and(|t| t.max(since).unix_micros() + limit >= clock)
        };
        let votes_from = move |r: RegionCode| {
            states
                .iter()
                .filter(move |(l, s)| l.region == r && fresh(s))
        };
        let mut regions = RegionVerdicts::default();
        let voters: Vec<&LocationState> = match &plan.check_regions {
            CheckRegions::AllLocations => {
                for l in states.keys() {
                    regions.insert(
                        l.region,
                        majority(votes_from(l.region).map(|(_, s)| s.verdict)),
                    );
                }
                states.values().filter(|s| fresh(s)).collect()
            }
            CheckRegions::AllRegions | CheckRegions::Regions(_) => {
                let mut voters = Vec::new();
                for (l, s) in states.iter() {
                    if checks_from(&plan.check_regions, l.region) {
                        regions.insert(
                            l.region,
                            majority(votes_from(l.region).map(|(_, s)| s.verdict)),
                        );
                        if fresh(s) {
                            voters.push(s);
                        }
                    }
                }
                voters
            }
        };
        let healthy = match (&plan.check_regions, key.is_some()) {
            (_, false) => Verdict::Unknown,
            (CheckRegions::AllLocations, true) => majority(voters.iter().map(|s| s.verdict)),
            (_, true) => majority(regions.values().copied()),
        };
        let voting: Vec<&LocationState> = voters
            .into_iter()
            .filter(|s| s.verdict.is_known())
            .collect();
        let reason = match healthy {
            Verdict::Unhealthy => {
                most_common_failure(voting.iter().copied().filter(|s| s.verdict.is_unhealthy()))
            }
            _ => FailureReason::None,
        };
        let response_code = voting
            .iter()
            .find(|s| s.verdict == healthy)
            .and_then(|s| s.last.as_ref())
            .and_then(|r| r.response_code);
        let mut rtts: Vec<u64> = voting
            .iter()
            .filter_map(|s| s.last.as_ref()?.rtt_micros)
            .collect();
        rtts.sort_unstable();
        let rtt_micros = (!rtts.is_empty()).then(|| rtts[rtts.len() / 2]);
        Judged {
            healthy,
            reason,
            response_code,
            rtt_micros,
            regions,
        }
    }
}

/// One origin re-derived: its index, verdict, reason and per-region verdicts.
type Recomputed = (usize, Verdict, FailureReason, RegionVerdicts);

/// A pool without a monitor: every origin counts as healthy, the pool as healthy while
/// enabled.
fn unmonitored(p: &super::plan::PlannedPool) -> PoolVerdicts {
    PoolVerdicts {
        pool: p.id,
        account: p.account,
        enabled: p.enabled,
        monitored: false,
        healthy: Verdict::of(p.enabled),
        regions: RegionVerdicts::default(),
        origins: p
            .origins
            .iter()
            .map(|o| {
                Arc::new(OriginVerdict {
                    name: Arc::from(o.name.as_str()),
                    address: Arc::from(o.address.as_str()),
                    enabled: o.enabled,
                    healthy: Verdict::Healthy,
                    reason: FailureReason::None,
                    regions: RegionVerdicts::default(),
                    probes: Probes::from(Vec::new()),
                })
            })
            .collect(),
    }
}

/// One target's state at each location, sorted by location. Targets are many and locations
/// few, so a sorted vector (one allocation of exactly what is used) beats a map per target.
#[derive(Debug, Clone, Default)]
struct LocationStates(Vec<(Location, LocationState)>);

impl LocationStates {
    fn entry(&mut self, location: &Location) -> &mut LocationState {
        let i = match self.0.binary_search_by(|(l, _)| l.cmp(location)) {
            Ok(i) => i,
            Err(i) => {
                self.0
                    .insert(i, (location.clone(), LocationState::default()));
                self.0.shrink_to_fit();
                i
            }
        };
        &mut self.0[i].1
    }

    fn iter(&self) -> impl Iterator<Item = (&Location, &LocationState)> {
        self.0.iter().map(|(l, s)| (l, s))
    }

    fn remove(&mut self, location: &Location) -> bool {
        match self.0.binary_search_by(|(l, _)| l.cmp(location)) {
            Ok(i) => {
                self.0.remove(i);
                true
            }
            Err(_) => false,
        }
    }

    fn keys(&self) -> impl Iterator<Item = &Location> {
        self.0.iter().map(|(l, _)| l)
    }

    fn values(&self) -> impl Iterator<Item = &LocationState> {
        self.0.iter().map(|(_, s)| s)
    }
}

/// Whether a location in `region` checks for a pool with these `check_regions`.
/// The longest a location may wait between two results for `p` (µs): its slowest monitor's
/// interval plus one check.
fn gap(p: &PlannedPool) -> i64 {
    p.checks
        .iter()
        .map(|c| {
            let spec = &c.spec;
            (i64::from(spec.interval) + i64::from(spec.timeout) * (i64::from(spec.retries) + 1))
                * 1_000_000
        })
        .max()
        .unwrap_or(0)
}

fn checks_from(check: &CheckRegions, region: RegionCode) -> bool {
    match check {
        CheckRegions::AllLocations | CheckRegions::AllRegions => true,
        CheckRegions::Regions(list) => list.contains(&region),
    }
}

/// The failure reason most of the failing voters report (the first, among equals).
fn most_common_failure<'a>(states: impl Iterator<Item = &'a LocationState>) -> FailureReason {
    let mut counts: Vec<(FailureReason, usize)> = Vec::new();
    for s in states {
        let Some(r) = s.last.as_ref().filter(|r| !r.healthy).map(|r| r.reason) else {
            continue;
        };
        match counts.iter_mut().find(|(c, _)| *c == r) {
            Some((_, n)) => *n += 1,
            None => counts.push((r, 1)),
        }
    }
    counts
        .iter()
        .max_by_key(|(_, n)| *n)
        .map(|(r, _)| *r)
        .unwrap_or(FailureReason::Other)
}
