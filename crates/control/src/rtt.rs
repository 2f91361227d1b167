//! A short RTT history per probe target, for the dashboard's charts: one sample per 30 s,
//! the last 30 minutes, for at most 20,000 targets (8 bytes a sample, grown as samples come,
//! the key shared with the engine: about 11 MB at most; past that, targets not yet tracked
//! get no history until old ones expire). Expired targets are looked for at
//! most once per sample period: a scan per check of an untracked target took 15 % of a
//! server probing 75,000 targets (perf).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use vantage_core::health::ProbeKey;
use vantage_core::Timestamp;

const SAMPLE_EVERY_SECS: i64 = 30;
const KEEP: usize = 60;
const MAX_TARGETS: usize = 20_000;

#[derive(Debug, Default)]
pub struct RttHistory {
    /// (unix seconds, RTT in microseconds), oldest first. Seconds as `u32` (good until 2106)
    /// halve a sample; the heap profile of 20,000 targets had this history at 40 % of the
    /// server's live memory with 16-byte samples preallocated for the whole 30 minutes.
    series: HashMap<Arc<ProbeKey>, VecDeque<(u32, u32)>>,
    /// When the last look for expired targets was (unix seconds).
    swept: Option<i64>,
}

impl RttHistory {
    pub fn note(&mut self, key: &Arc<ProbeKey>, at: Timestamp, rtt_micros: u64) {
        let secs = at.unix_micros() / 1_000_000;
        let stamp = u32::try_from(secs.max(0)).unwrap_or(u32::MAX);
        if !self.series.contains_key(key) {
            if self.series.len() >= MAX_TARGETS {
                if self
                    .swept
                    .is_some_and(|at| (at..at + SAMPLE_EVERY_SECS).contains(&secs))
                {
                    return;
                }
                self.swept = Some(secs);
                let horizon = secs - SAMPLE_EVERY_SECS * KEEP as i64;
                self.series
                    .retain(|_, s| s.back().is_some_and(|(t, _)| i64::from(*t) >= horizon));
                if self.series.len() >= MAX_TARGETS {
                    return;
                }
            }
            self.series.insert(Arc::clone(key), VecDeque::new());
        }
        let Some(s) = self.series.get_mut(key) else {
            return;
        };
        if s.back()
            .is_some_and(|(t, _)| secs - i64::from(*t) < SAMPLE_EVERY_SECS)
        {
            return;
        }
        if s.len() == KEEP {
            s.pop_front();
        }
        s.push_back((stamp, u32::try_from(rtt_micros).unwrap_or(u32::MAX)));
    }

    pub fn series(&self, key: &ProbeKey) -> Vec<(i64, u32)> {
        self.series
            .get(key)
            .map(|s| s.iter().map(|&(t, us)| (i64::from(t), us)).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_spaced_and_bounded() {
        let key = Arc::new(ProbeKey {
            monitor: vantage_core::MonitorId::from_bytes([1; 16]),
            address: "192.0.2.1".into(),
            port: 0,
            host: None,
        });
        let mut h = RttHistory::default();
        for i in 0..1000i64 {
            h.note(
                &key,
                Timestamp::from_unix_micros(i * 10_000_000),
                1000 + i as u64,
            );
        }
        let s = h.series(&key);
        assert_eq!(s.len(), KEEP);
        assert!(s.windows(2).all(|w| w[1].0 - w[0].0 >= SAMPLE_EVERY_SECS));
        // Points every 30 s from samples every 10 s: the last kept is i = 999.
        assert_eq!(s.last().map(|x| x.1), Some(1999));
    }

    fn key(i: usize) -> Arc<ProbeKey> {
        Arc::new(ProbeKey {
            monitor: vantage_core::MonitorId::from_bytes([1; 16]),
            address: format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255),
            port: 0,
            host: None,
        })
    }

    #[test]
    fn a_full_history_looks_for_expired_targets_once_per_sample_period() {
        let at = |secs: i64| Timestamp::from_unix_micros(secs * 1_000_000);
        let mut h = RttHistory::default();
        for i in 0..MAX_TARGETS {
            h.note(&key(i), at(0), 1);
        }
        let span = SAMPLE_EVERY_SECS * KEEP as i64;
        // Nothing has expired yet: the newcomer gets no history, and the look is remembered.
        h.note(&key(MAX_TARGETS), at(span), 1);
        assert!(h.series(&key(MAX_TARGETS)).is_empty());
        // Everything has expired now, but the last look was less than a period ago.
        h.note(&key(MAX_TARGETS), at(span + 1), 1);
        assert!(h.series(&key(MAX_TARGETS)).is_empty());
        assert_eq!(h.series.len(), MAX_TARGETS);
        // A period later the expired targets go and the newcomer is tracked.
        h.note(&key(MAX_TARGETS), at(span + SAMPLE_EVERY_SECS), 1);
        assert_eq!(h.series(&key(MAX_TARGETS)).len(), 1);
        assert_eq!(h.series.len(), 1);
    }
}
