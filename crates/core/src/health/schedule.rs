//! When each assigned probe is due at one location.
//!
//! Every target is checked once per interval, at a fixed phase inside the interval derived
//! from the target itself, so targets spread evenly over time (no thundering herd) and the
//! same target keeps its rhythm across reassignments — without drawing random numbers.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use super::ProbeKey;
use crate::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq)]
struct Entry {
    interval: i64,
    next: i64,
}

#[derive(Debug, Clone, Default)]
pub struct Schedule {
    /// Each key is one allocation, shared by the entry and its place in the queue (and with
    /// whoever handed it in): a location holding 100,000 targets holds each key once.
    entries: HashMap<Arc<ProbeKey>, Entry>,
    queue: BTreeSet<(i64, Arc<ProbeKey>)>,
    started: bool,
    /// Until when the targets added so far have their first checks spread (µs): a new
    /// addition is spread after them, so additions in quick succession (a bulk load through
    /// the API, one pool at a time) add at most one first check per [`NEW_SPACING`] between
    /// them instead of each its own burst within a second.
    fresh_until: i64,
}

/// A target added to a running schedule is first checked within this long (spread by its
/// phase), so a new origin gets a verdict promptly without a herd of simultaneous checks.
const FIRST_CHECK_WITHIN: i64 = 1_000_000;
/// Targets added together are spread this far apart at least (up to their interval): a bulk
/// load of 100,000 is not due within one second, it is spread like a starting location's.
const NEW_SPACING: i64 = 1_000;

/// Where the first checks of an addition's new targets go.
#[derive(Debug, Clone, Copy)]
struct Window {
    from: i64,
    within: i64,
}

/// FNV-1a: a stable spread of keys over an interval.
fn phase(key: &ProbeKey, interval: i64) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.to_string().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % interval.max(1) as u64) as i64
}

impl Schedule {
    /// Replaces the set of targets. Targets kept with the same interval keep their next due
    /// time; a target whose interval changed is due no later than one new interval from now.
    /// New targets are due at their phase within the coming interval on the first call (a
    /// starting location spreads its whole load), and within a second on later calls (a
    /// configuration change takes effect at once).
    pub fn set<K: Into<Arc<ProbeKey>>>(
        &mut self,
        targets: impl IntoIterator<Item = (K, u16)>,
        now: Timestamp,
    ) {
        let now = now.unix_micros();
        let targets: Vec<(Arc<ProbeKey>, u16)> =
            targets.into_iter().map(|(k, i)| (k.into(), i)).collect();
        let window = self.first_check_window(&targets, now);
        let mut next_entries = HashMap::with_capacity(targets.len());
        for (key, interval_secs) in targets {
            let entry = self.entry_for(&key, interval_secs, now, window);
            next_entries.insert(key, entry);
        }
        self.queue = next_entries
            .iter()
            .map(|(k, e)| (e.next, Arc::clone(k)))
            .collect();
        self.entries = next_entries;
        self.started = true;
    }

    /// Changes part of the set: takes out `removed`, then adds or updates `changed` by the
    /// rules of [`Schedule::set`]; every other target keeps its time. What an assignment's
    /// delta asks, at the cost of what it names rather than of every target.
    pub fn update<K: Into<Arc<ProbeKey>>>(
        &mut self,
        removed: impl IntoIterator<Item = ProbeKey>,
        changed: impl IntoIterator<Item = (K, u16)>,
        now: Timestamp,
    ) {
        let now = now.unix_micros();
        for key in removed {
            if let Some((key, e)) = self.entries.remove_entry(&key) {
                self.queue.remove(&(e.next, key));
            }
        }
        let changed: Vec<(Arc<ProbeKey>, u16)> =
            changed.into_iter().map(|(k, i)| (k.into(), i)).collect();
        let window = self.first_check_window(&changed, now);
        for (key, interval_secs) in changed {
            let entry = self.entry_for(&key, interval_secs, now, window);
            // A target already here keeps its key: the queue and the entry share one.
            let key = match self.entries.get_key_value(&key) {
                Some((held, _)) => Arc::clone(held),
                None => key,
            };
            self.queue.insert((entry.next, Arc::clone(&key)));
            if let Some(before) = self.entries.insert(Arc::clone(&key), entry) {
                if before.next != entry.next {
                    self.queue.remove(&(before.next, key));
                }
            }
        }
        self.started = true;
    }

    /// Where the first checks of `targets`' new ones go: from when (after the additions
    /// before them) and within how long (a second for a few, more for many). Takes that
    /// stretch for them, never further than their longest interval from now: what would go
    /// past it takes its phase in the coming interval instead (see [`Schedule::entry_for`]),
    /// so a later addition never waits more than one interval behind a bulk load.
    fn first_check_window(&mut self, targets: &[(Arc<ProbeKey>, u16)], now: i64) -> Window {
        let (new, longest) = targets
            .iter()
            .filter(|(k, _)| !self.entries.contains_key(k))
            .fold((0usize, 0i64), |(n, longest), (_, secs)| {
                (n + 1, longest.max(i64::from(*secs) * 1_000_000))
            });
        let spread = i64::try_from(new)
            .unwrap_or(i64::MAX)
            .saturating_mul(NEW_SPACING);
        let within = FIRST_CHECK_WITHIN.max(spread);
        // A starting location spreads its whole load by phase over each interval instead.
        if !self.started {
            return Window { from: now, within };
        }
        let from = self.fresh_until.max(now);
        if new > 0 {
            self.fresh_until = from.saturating_add(spread).min(now + longest);
        }
        Window { from, within }
    }

    /// When `key`, checked every `interval_secs`, is next due, given what is known of it; if
    /// new to a running schedule, within `window`. A new target is never due later than one
    /// interval from now, however long the additions before it: past that, it takes its
    /// phase in the coming interval as a starting location's targets do (capping it at one interval from now instead piled the rest of a
    /// bulk load onto the instants they were added, a burst of seconds of lateness).
    fn entry_for(
        &self,
        key: &Arc<ProbeKey>,
        interval_secs: u16,
        now: i64,
        window: Window,
    ) -> Entry {
        let interval = i64::from(interval_secs.max(1)) * 1_000_000;
        let next = match self.entries.get(key) {
            Some(e) if e.interval == interval => e.next,
            Some(e) => e.next.min(now + interval),
            None if self.started => {
                let spread = window.from + phase(key, interval.min(window.within));
                if spread <= now + interval {
                    spread
                } else {
                    now + phase(key, interval)
                }
            }
            None => now + phase(key, interval),
        };
        Entry { interval, next }
    }

    /// Takes every target due at `now`, with the time it was due, and schedules its next check
    /// one interval later. A target that fell more than an interval behind is not checked twice
    /// to catch up.
    pub fn due(&mut self, now: Timestamp) -> Vec<(Arc<ProbeKey>, Timestamp)> {
        let now = now.unix_micros();
        let mut out = Vec::new();
        while let Some((at, _)) = self.queue.first() {
            if *at > now {
                break;
            }
            let Some((at, key)) = self.queue.pop_first() else {
                break;
            };
            if let Some(e) = self.entries.get_mut(&key) {
                let mut next = at + e.interval;
                if next <= now {
                    next += ((now - next) / e.interval + 1) * e.interval;
                }
                e.next = next;
                self.queue.insert((next, Arc::clone(&key)));
            }
            out.push((key, Timestamp::from_unix_micros(at)));
        }
        out
    }

    /// When the next target is due, if any.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.queue
            .first()
            .map(|(at, _)| Timestamp::from_unix_micros(*at))
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MonitorId;

    fn key(i: usize) -> ProbeKey {
        ProbeKey {
            monitor: MonitorId::from_bytes([1; 16]),
            address: format!("10.0.{}.{}", i / 250, i % 250),
            port: 0,
            host: None,
        }
    }

    fn t(secs: f64) -> Timestamp {
        Timestamp::from_unix_micros((secs * 1e6) as i64)
    }

    #[test]
    fn each_target_once_per_interval_spread_evenly() {
        let mut s = Schedule::default();
        s.set((0..6000).map(|i| (key(i), 60)), t(0.0));
        let mut per_second = vec![0usize; 180];
        let mut seen: HashMap<ProbeKey, Vec<usize>> = HashMap::new();
        for (sec, count) in per_second.iter_mut().enumerate() {
            for (k, _) in s.due(t(sec as f64)) {
                *count += 1;
                seen.entry((*k).clone()).or_default().push(sec);
            }
        }
        assert_eq!(seen.len(), 6000);
        for times in seen.values() {
            assert!(times.windows(2).all(|w| w[1] - w[0] == 60), "{times:?}");
        }
        // 100 per second on average; no second carries more than twice that.
        assert!(
            per_second[1..].iter().all(|&n| n < 200),
            "{:?}",
            &per_second[..10]
        );
    }

    #[test]
    fn additions_in_quick_succession_are_spread_after_one_another() {
        let mut s = Schedule::default();
        // A location starting with 20,000 targets: that is no addition to spread after.
        let initial = 20_000;
        s.set((0..initial).map(|i| (key(i), 60)), t(0.0));
        // A pool of 64 origins every 25 ms for 10 s (25,600 targets), as a bulk load through
        // the API makes them: each pool alone would be due within its second.
        let initial_keys: std::collections::HashSet<ProbeKey> = (0..initial).map(key).collect();
        let mut seen: std::collections::HashSet<ProbeKey> = std::collections::HashSet::new();
        let mut first_checks = vec![0usize; 80];
        let mut count = |due: Vec<(Arc<ProbeKey>, Timestamp)>| {
            for (k, at) in due {
                if !initial_keys.contains(&*k) && seen.insert((*k).clone()) {
                    let sec = usize::try_from(at.unix_micros() / 1_000_000).unwrap_or(0);
                    first_checks[sec.min(79)] += 1;
                }
            }
        };
        for step in 0..400 {
            let now = t(1.0 + f64::from(step) * 0.025);
            s.update(
                [],
                (initial + 64 * step as usize..initial + 64 * (step as usize + 1))
                    .map(|i| (key(i), 60)),
                now,
            );
            count(s.due(now));
        }
        for sec in 11..80 {
            count(s.due(t(f64::from(sec))));
        }
        assert_eq!(seen.len(), 25_600, "each new target checked");
        // About one first check per millisecond: never the 2,560 a second that were added.
        assert!(
            first_checks.iter().all(|&n| n <= 1_100),
            "first checks per second: {first_checks:?}"
        );
        // Once the additions are spread, a new one is checked within the second again.
        s.update([], [(key(900_000), 60)], t(120.0));
        assert!(s.due(t(121.0)).iter().any(|(k, _)| **k == key(900_000)));
        // Behind a bulk load longer than the interval, a new target waits at most one interval.
        s.update([], (1_000_000..1_100_000).map(|i| (key(i), 60)), t(200.0));
        s.update([], [(key(2_000_000), 60)], t(215.0));
        let waited = (215..=275)
            .find(|sec| {
                s.due(t(f64::from(*sec)))
                    .iter()
                    .any(|(k, _)| **k == key(2_000_000))
            })
            .map(|sec| sec - 215);
        assert!(
            waited.is_some(),
            "checked within one interval of being added"
        );
    }

    #[test]
    fn a_delta_schedules_as_the_whole_set_would() {
        let (mut whole, mut delta) = (Schedule::default(), Schedule::default());
        let start: Vec<(ProbeKey, u16)> = (0..100).map(|i| (key(i), 60)).collect();
        whole.set(start.clone(), t(0.0));
        delta.set(start, t(0.0));
        // At 20 s: 0..10 go, 10..20 move to a 10 s interval, 100..110 are new, the rest stay.
        let after: Vec<(ProbeKey, u16)> = (10..110)
            .map(|i| (key(i), if i < 20 { 10 } else { 60 }))
            .collect();
        whole.set(after, t(20.0));
        delta.update(
            (0..10).map(key),
            (10..20)
                .map(|i| (key(i), 10))
                .chain((100..110).map(|i| (key(i), 60))),
            t(20.0),
        );
        assert_eq!(delta.entries, whole.entries);
        assert_eq!(delta.queue, whole.queue);
        assert_eq!(delta.entries.len(), 100);
    }

    #[test]
    fn a_bulk_addition_is_spread_not_due_at_once() {
        let mut s = Schedule::default();
        s.set([(key(0), 60)], t(0.0));
        // 30,000 targets added at once: spread over 30 s (a millisecond apart on average),
        // where a handful would all be due within the second.
        s.update([], (1..=30_000).map(|i| (key(i), 60)), t(10.0));
        let new = |due: Vec<(Arc<ProbeKey>, Timestamp)>| {
            due.into_iter().filter(|(k, _)| **k != key(0)).count()
        };
        let first_second = new(s.due(t(11.0)));
        assert!(
            first_second < 3_000,
            "{first_second} due in the first second"
        );
        let within = new(s.due(t(40.0))) + first_second;
        assert_eq!(within, 30_000, "all due within 30 s");
        s.update([], (30_001..=30_010).map(|i| (key(i), 60)), t(50.0));
        let soon: Vec<ProbeKey> = s
            .due(t(51.0))
            .into_iter()
            .map(|(k, _)| (*k).clone())
            .collect();
        assert!(
            (30_001..=30_010).all(|i| soon.contains(&key(i))),
            "a few new targets are due within a second"
        );
    }

    #[test]
    fn reassignment_keeps_rhythm_and_honours_interval_changes() {
        let mut s = Schedule::default();
        s.set([(key(1), 60)], t(0.0));
        let first = s.next_deadline().unwrap();
        s.set([(key(1), 60), (key(2), 60)], t(10.0));
        let added = s.entries[&key(2)].next;
        assert!(
            (10_000_000..11_000_000).contains(&added),
            "a target added later is checked within a second"
        );
        assert!(s
            .due(first)
            .iter()
            .any(|(k, at)| **k == key(1) && *at == first));
        s.set([(key(1), 10)], t(first.unix_micros() as f64 / 1e6 + 1.0));
        let next = s.next_deadline().unwrap();
        assert!(
            next.unix_micros() - first.unix_micros() <= 11_000_000,
            "interval change honoured"
        );
        s.set::<ProbeKey>([], t(100.0));
        assert!(
            s.is_empty() && s.next_deadline().is_none(),
            "removed targets are no longer probed"
        );
    }

    #[test]
    fn a_late_poll_does_not_burst() {
        let mut s = Schedule::default();
        s.set([(key(1), 10)], t(0.0));
        assert_eq!(s.due(t(1000.0)).len(), 1);
        assert!(s.next_deadline().unwrap() > t(1000.0));
    }
}
