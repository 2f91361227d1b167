//! From check results to verdicts: hysteresis at one location, majorities across locations
//! and regions, and a pool's threshold.

use serde::{Deserialize, Serialize};

use super::check::CheckResult;
use crate::Timestamp;

/// A verdict: healthy, unhealthy, or not known yet.
pub type Verdict = Option<bool>;

/// One location's view of one probe target.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocationState {
    pub verdict: Verdict,
    /// Consecutive results that disagree with `verdict`.
    pub streak: u32,
    pub last: Option<CheckResult>,
    pub last_at: Option<Timestamp>,
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
    ) -> Option<bool> {
        let healthy = result.healthy;
        self.last = Some(result);
        self.last_at = Some(now);
        match self.verdict {
            None => {
                self.verdict = Some(healthy);
                self.streak = 0;
                Some(healthy)
            }
            Some(v) if v == healthy => {
                self.streak = 0;
                None
            }
            Some(_) => {
                self.streak += 1;
                let needed = u32::from(if healthy { up } else { down }).max(1);
                if self.streak >= needed {
                    self.verdict = Some(healthy);
                    self.streak = 0;
                    Some(healthy)
                } else {
                    None
                }
            }
        }
    }
}

/// A vote among those with a verdict: healthy when at least half say healthy. A tie counts as
/// healthy, so one bad network path among two voters never takes an origin out of rotation;
/// an origin that is really down fails everywhere and loses every vote. No voter: unknown.
pub fn majority(votes: impl IntoIterator<Item = Verdict>) -> Verdict {
    let (mut up, mut voters) = (0usize, 0usize);
    for v in votes.into_iter().flatten() {
        voters += 1;
        up += usize::from(v);
    }
    (voters > 0).then_some(up * 2 >= voters)
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
        return Some(false);
    }
    let (mut known, mut healthy) = (false, 0usize);
    for v in origins {
        known |= v.is_some();
        healthy += usize::from(v == Some(true));
    }
    known.then_some(healthy >= usize::from(minimum))
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
            (true, None) => PoolState::Unknown,
            (true, Some(false)) => PoolState::Critical,
            (true, Some(true)) if all_origins_up => PoolState::Healthy,
            (true, Some(true)) => PoolState::Degraded,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::check::FailureReason;

    #[test]
    fn pool_states() {
        assert_eq!(PoolState::of(false, Some(true), true), PoolState::Disabled);
        assert_eq!(PoolState::of(true, None, false), PoolState::Unknown);
        assert_eq!(PoolState::of(true, Some(false), false), PoolState::Critical);
        assert_eq!(PoolState::of(true, Some(true), false), PoolState::Degraded);
        assert_eq!(PoolState::of(true, Some(true), true), PoolState::Healthy);
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
            Some(false),
            "first check decides"
        );
        assert_eq!(s.record(result(true), 2, 3, t), None);
        assert_eq!(
            s.record(result(false), 2, 3, t),
            None,
            "a failure resets the pass streak"
        );
        assert_eq!(s.record(result(true), 2, 3, t), None);
        assert_eq!(s.record(result(true), 2, 3, t), Some(true));
        assert_eq!(s.record(result(false), 2, 3, t), None);
        assert_eq!(s.record(result(false), 2, 3, t), None);
        assert_eq!(s.record(result(false), 2, 3, t), Some(false));
        let mut z = LocationState {
            verdict: Some(true),
            ..Default::default()
        };
        assert_eq!(z.record(result(false), 0, 0, t), Some(false), "0 means one");
    }

    #[test]
    fn majorities_and_ties() {
        assert_eq!(majority([]), None);
        assert_eq!(majority([None, None]), None);
        assert_eq!(
            majority([Some(true), Some(false)]),
            Some(true),
            "a tie is healthy"
        );
        assert_eq!(
            majority([Some(true), Some(false), Some(false)]),
            Some(false)
        );
        assert_eq!(
            majority([Some(false), None]),
            Some(false),
            "no verdict, no vote"
        );
    }

    #[test]
    fn pool_threshold() {
        assert_eq!(
            pool_verdict(true, 2, [Some(true), Some(true), Some(false)]),
            Some(true)
        );
        assert_eq!(
            pool_verdict(true, 2, [Some(true), None, Some(false)]),
            Some(false),
            "unknown counts as down"
        );
        assert_eq!(pool_verdict(true, 1, [None, None]), None);
        assert_eq!(pool_verdict(false, 1, [Some(true)]), Some(false));
    }
}
