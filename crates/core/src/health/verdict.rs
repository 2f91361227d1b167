//! From check results to verdicts: hysteresis at one location, majorities across locations
//! and regions, and a pool's threshold.

use serde::{Deserialize, Serialize};

use super::check::CheckResult;
use crate::region::RegionCode;
use crate::Timestamp;

/// A verdict: healthy, unhealthy, or not known yet. Stored and rendered as `true`, `false`
/// or `null`, so documents written before this type existed read back unchanged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Nobody has judged yet (no check completed, or every vote went stale).
    #[default]
    Unknown,
    Healthy,
    Unhealthy,
}

impl Verdict {
    pub fn of(healthy: bool) -> Verdict {
        if healthy {
            Verdict::Healthy
        } else {
            Verdict::Unhealthy
        }
    }

    pub fn is_known(self) -> bool {
        self != Verdict::Unknown
    }

    pub fn is_healthy(self) -> bool {
        self == Verdict::Healthy
    }

    pub fn is_unhealthy(self) -> bool {
        self == Verdict::Unhealthy
    }

    /// `Some(healthy)` once known: the JSON and metrics shape.
    pub fn known(self) -> Option<bool> {
        match self {
            Verdict::Unknown => None,
            Verdict::Healthy => Some(true),
            Verdict::Unhealthy => Some(false),
        }
    }

    /// `healthy`, `unhealthy` or `unknown`, as logs and scenario files write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Unknown => "unknown",
            Verdict::Healthy => "healthy",
            Verdict::Unhealthy => "unhealthy",
        }
    }
}

impl From<bool> for Verdict {
    fn from(healthy: bool) -> Verdict {
        Verdict::of(healthy)
    }
}

impl From<Option<bool>> for Verdict {
    fn from(v: Option<bool>) -> Verdict {
        v.map_or(Verdict::Unknown, Verdict::of)
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Verdict {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.known().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Verdict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Verdict, D::Error> {
        Option::<bool>::deserialize(d).map(Verdict::from)
    }
}

/// One location's view of one probe target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocationState {
    pub verdict: Verdict,
    /// Consecutive results that disagree with `verdict`.
    pub streak: u32,
    pub last: Option<CheckResult>,
    pub last_at: Option<Timestamp>,
    /// This location's RTTs to the target, smoothed per sample (dynamic latency); kept in
    /// memory only.
    pub latency: Option<super::latency::Smoothed>,
}

impl LocationState {
    /// Records one check (contract §5 rule 2). The first completed check decides the verdict
    /// outright — there is no earlier state to be loyal to; afterwards the verdict flips only
    /// after `up` passes or `down` failures in a row (0 and 1 both mean one). Returns the new
    /// verdict when it changed.
    pub fn record(
        &mut self,
        result: CheckResult,
        up: u8,
        down: u8,
        now: Timestamp,
    ) -> Option<Verdict> {
        let healthy = result.healthy;
        let judged = Verdict::of(healthy);
        self.last = Some(result);
        self.last_at = Some(now);
        if !self.verdict.is_known() {
            self.verdict = judged;
            self.streak = 0;
            return Some(judged);
        }
        if self.verdict == judged {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        let needed = u32::from(if healthy { up } else { down }).max(1);
        if self.streak >= needed {
            self.verdict = judged;
            self.streak = 0;
            Some(judged)
        } else {
            None
        }
    }
}

/// A vote among those with a verdict: healthy when at least half say healthy. A tie counts as
/// healthy, so one bad network path among two voters never takes an origin out of rotation;
/// an origin that is really down fails everywhere and loses every vote. No voter: unknown.
pub fn majority(votes: impl IntoIterator<Item = Verdict>) -> Verdict {
    let (mut up, mut voters) = (0usize, 0usize);
    for v in votes.into_iter().filter_map(Verdict::known) {
        voters += 1;
        up += usize::from(v);
    }
    match voters {
        0 => Verdict::Unknown,
        _ => Verdict::of(up * 2 >= voters),
    }
}

/// An origin's verdict from its monitors' verdicts, as Cloudflare documents monitor groups
/// (a pool's own monitor is a group of one member that counts):
///
/// 1. a member that must be healthy and is unhealthy makes the origin unhealthy, whatever the
///    others say; while such a member has no verdict yet, neither has the origin (its veto
///    may still come);
/// 2. otherwise the members that count (enabled, not monitoring-only; those that must be
///    healthy included) vote by [`majority`]: unhealthy only when more than half of those
///    with a verdict say unhealthy, unknown while none has one.
///
/// Also returns which member decided an unhealthy verdict (the first vetoing member, else
/// the first unhealthy voter), so its failure reason can be told.
pub fn group_verdict(
    members: impl IntoIterator<Item = (Verdict, crate::monitor_group::Role)>,
) -> (Verdict, Option<usize>) {
    let (mut up, mut voters) = (0usize, 0usize);
    let (mut first_down, mut veto_pending) = (None, false);
    for (i, (verdict, role)) in members.into_iter().enumerate() {
        if role.must_be_healthy {
            match verdict {
                Verdict::Unhealthy => return (Verdict::Unhealthy, Some(i)),
                Verdict::Unknown => veto_pending = true,
                Verdict::Healthy => {}
            }
        }
        if !role.counts() {
            continue;
        }
        if let Some(healthy) = verdict.known() {
            voters += 1;
            up += usize::from(healthy);
            if !healthy && first_down.is_none() {
                first_down = Some(i);
            }
        }
    }
    if veto_pending || voters == 0 {
        return (Verdict::Unknown, None);
    }
    match Verdict::of(up * 2 >= voters) {
        Verdict::Unhealthy => (Verdict::Unhealthy, first_down),
        healthy => (healthy, None),
    }
}

/// A pool's verdict (contract §5 rule 5) from its enabled origins' verdicts: healthy with at
/// least `minimum` healthy origins; unknown while no origin has a verdict; a disabled pool is
/// never healthy. An unknown origin counts as down.
pub fn pool_verdict(
    enabled: bool,
    minimum: u16,
    origins: impl IntoIterator<Item = Verdict>,
) -> Verdict {
    if !enabled {
        return Verdict::Unhealthy;
    }
    let (mut known, mut healthy) = (false, 0usize);
    for v in origins {
        known |= v.is_known();
        healthy += usize::from(v.is_healthy());
    }
    if known {
        Verdict::of(healthy >= usize::from(minimum))
    } else {
        Verdict::Unknown
    }
}

crate::string_enum!(
    /// A pool's state as people read it (dashboard, `vantage status`).
    PoolState {
        Healthy = "Healthy",
        /// Healthy, but some enabled origin is not.
        Degraded = "Degraded",
        Critical = "Critical",
        /// Monitored, and no verdict yet.
        Unknown = "Unknown",
        Disabled = "Disabled",
    }
);

impl PoolState {
    /// From the pool's traffic verdict and whether every enabled origin is up.
    pub fn of(enabled: bool, healthy: Verdict, all_origins_up: bool) -> PoolState {
        match (enabled, healthy) {
            (false, _) => PoolState::Disabled,
            (true, Verdict::Unknown) => PoolState::Unknown,
            (true, Verdict::Unhealthy) => PoolState::Critical,
            (true, Verdict::Healthy) if all_origins_up => PoolState::Healthy,
            (true, Verdict::Healthy) => PoolState::Degraded,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::check::FailureReason;
    use Verdict::{Healthy as H, Unhealthy as U, Unknown as N};

    #[test]
    fn pool_states() {
        assert_eq!(PoolState::of(false, H, true), PoolState::Disabled);
        assert_eq!(PoolState::of(true, N, false), PoolState::Unknown);
        assert_eq!(PoolState::of(true, U, false), PoolState::Critical);
        assert_eq!(PoolState::of(true, H, false), PoolState::Degraded);
        assert_eq!(PoolState::of(true, H, true), PoolState::Healthy);
    }

    fn result(healthy: bool) -> CheckResult {
        CheckResult {
            healthy,
            reason: if healthy {
                FailureReason::None
            } else {
                FailureReason::TcpTimeout
            },
            response_code: None,
            rtt_micros: None,
        }
    }

    #[test]
    fn hysteresis() {
        let t = Timestamp::from_unix_micros(0);
        let mut s = LocationState::default();
        assert_eq!(
            s.record(result(false), 2, 3, t),
            Some(U),
            "first check decides"
        );
        assert_eq!(s.record(result(true), 2, 3, t), None);
        assert_eq!(
            s.record(result(false), 2, 3, t),
            None,
            "a failure resets the pass streak"
        );
        assert_eq!(s.record(result(true), 2, 3, t), None);
        assert_eq!(s.record(result(true), 2, 3, t), Some(H));
        assert_eq!(s.record(result(false), 2, 3, t), None);
        assert_eq!(s.record(result(false), 2, 3, t), None);
        assert_eq!(s.record(result(false), 2, 3, t), Some(U));
        let mut z = LocationState {
            verdict: H,
            ..Default::default()
        };
        assert_eq!(z.record(result(false), 0, 0, t), Some(U), "0 means one");
    }

    #[test]
    fn majorities_and_ties() {
        assert_eq!(majority([]), N);
        assert_eq!(majority([N, N]), N);
        assert_eq!(majority([H, U]), H, "a tie is healthy");
        assert_eq!(majority([H, U, U]), U);
        assert_eq!(majority([U, N]), U, "no verdict, no vote");
    }

    #[test]
    fn pool_threshold() {
        assert_eq!(pool_verdict(true, 2, [H, H, U]), H);
        assert_eq!(
            pool_verdict(true, 2, [H, N, U]),
            U,
            "unknown counts as down"
        );
        assert_eq!(pool_verdict(true, 1, [N, N]), N);
        assert_eq!(pool_verdict(false, 1, [H]), U);
    }
}

/// A verdict per region, for the regions that check (a map from [`RegionCode`] to
/// [`Verdict`] in region order). Thirteen bytes and `Copy`: every origin of every pool holds
/// one, and a map would be an allocation each.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct RegionVerdicts([Option<Verdict>; 13]);

/// Regions by their index in [`RegionVerdicts`]: declaration order, which is also their
/// `Ord` order, so iteration comes out as a `BTreeMap`'s would.
static BY_INDEX: [RegionCode; 13] = [
    RegionCode::Wnam,
    RegionCode::Enam,
    RegionCode::Weu,
    RegionCode::Eeu,
    RegionCode::Nsam,
    RegionCode::Ssam,
    RegionCode::Oc,
    RegionCode::Me,
    RegionCode::Naf,
    RegionCode::Saf,
    RegionCode::Sas,
    RegionCode::Seas,
    RegionCode::Neas,
];

impl RegionVerdicts {
    pub fn get(&self, region: &RegionCode) -> Option<&Verdict> {
        self.0[*region as usize].as_ref()
    }

    pub fn contains_key(&self, region: &RegionCode) -> bool {
        self.0[*region as usize].is_some()
    }

    /// Sets a region's verdict; returns the one it had.
    pub fn insert(&mut self, region: RegionCode, verdict: Verdict) -> Option<Verdict> {
        self.0[region as usize].replace(verdict)
    }

    pub fn remove(&mut self, region: &RegionCode) -> Option<Verdict> {
        self.0[*region as usize].take()
    }

    pub fn iter(&self) -> RegionVerdictsIter<'_> {
        RegionVerdictsIter(BY_INDEX.iter().zip(self.0.iter()))
    }

    pub fn keys(&self) -> impl Iterator<Item = &'static RegionCode> + '_ {
        self.iter().map(|(r, _)| r)
    }

    pub fn values(&self) -> impl Iterator<Item = &Verdict> + '_ {
        self.0.iter().flatten()
    }

    pub fn len(&self) -> usize {
        self.values().count()
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(Option::is_none)
    }
}

impl std::fmt::Debug for RegionVerdicts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// The regions that have a verdict, in region order.
#[derive(Debug)]
pub struct RegionVerdictsIter<'a>(
    std::iter::Zip<std::slice::Iter<'static, RegionCode>, std::slice::Iter<'a, Option<Verdict>>>,
);

impl<'a> Iterator for RegionVerdictsIter<'a> {
    type Item = (&'static RegionCode, &'a Verdict);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.find_map(|(r, v)| Some((r, v.as_ref()?)))
    }
}

impl<'a> IntoIterator for &'a RegionVerdicts {
    type Item = (&'static RegionCode, &'a Verdict);
    type IntoIter = RegionVerdictsIter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl FromIterator<(RegionCode, Verdict)> for RegionVerdicts {
    fn from_iter<I: IntoIterator<Item = (RegionCode, Verdict)>>(iter: I) -> Self {
        let mut out = Self::default();
        for (r, v) in iter {
            out.insert(r, v);
        }
        out
    }
}

impl<const N: usize> From<[(RegionCode, Verdict); N]> for RegionVerdicts {
    fn from(pairs: [(RegionCode, Verdict); N]) -> Self {
        pairs.into_iter().collect()
    }
}

#[cfg(test)]
mod region_verdicts {
    use super::*;

    #[test]
    fn behaves_as_an_ordered_map() {
        for (i, r) in BY_INDEX.iter().enumerate() {
            assert_eq!(*r as usize, i, "{r:?} is at its own index");
        }
        let mut sorted = RegionCode::ALL;
        sorted.sort();
        assert_eq!(sorted, BY_INDEX, "index order is Ord order");
        let mut v = RegionVerdicts::default();
        assert!(v.is_empty());
        assert_eq!(v.insert(RegionCode::Weu, Verdict::Healthy), None);
        assert_eq!(v.insert(RegionCode::Enam, Verdict::Unknown), None);
        assert_eq!(
            v.insert(RegionCode::Weu, Verdict::Unhealthy),
            Some(Verdict::Healthy)
        );
        let listed: Vec<(RegionCode, Verdict)> = v.iter().map(|(r, v)| (*r, *v)).collect();
        assert_eq!(
            listed,
            vec![
                (RegionCode::Enam, Verdict::Unknown),
                (RegionCode::Weu, Verdict::Unhealthy)
            ]
        );
        assert_eq!(v.len(), 2);
        assert!(v.contains_key(&RegionCode::Enam) && !v.contains_key(&RegionCode::Oc));
        assert_eq!(v.remove(&RegionCode::Enam), Some(Verdict::Unknown));
        assert_eq!(v.get(&RegionCode::Enam), None);
        assert_eq!(format!("{v:?}"), "{Weu: Unhealthy}");
    }
}
