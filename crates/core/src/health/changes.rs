//! What moved in the assignment, change by change, so a location is sent only what changed
//! since the assignment it holds (a delta), and a full one only when it is too far behind.
//!
//! Every configuration change that touches targets gets the next sequence number. A target
//! touched by it (added, its monitor or pools changed) is noted at that number, replacing its
//! earlier note; a target that is no longer probed is noted as removed. A delta since `s`
//! is every note after `s`. The log keeps at most [`MAX_CHANGES`] notes: past that the
//! oldest go, and a location that knows only an assignment older than what is kept gets the
//! full one again.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::ProbeKey;
use crate::AccountId;

/// The most notes the log keeps. A location that follows its assignment is rarely more than
/// one re-plan behind (a second's worth of writes); one further behind is sent everything.
pub const MAX_CHANGES: usize = 65_536;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Change {
    /// Probed (new, or its monitor or pools changed): sent whole.
    Assigned,
    Removed,
}

#[derive(Debug, Clone, Default)]
pub(super) struct ChangeLog {
    /// The latest change.
    seq: u64,
    /// Deltas can be made since this change or any later one (every note after it is kept).
    horizon: u64,
    /// By change, the targets noted at it, each with the account whose pools probe it (a
    /// target's monitor belongs to one account, so does the target).
    notes: BTreeMap<u64, BTreeMap<Arc<ProbeKey>, (Change, AccountId)>>,
    /// How many notes in all.
    len: usize,
}

impl ChangeLog {
    pub(super) fn seq(&self) -> u64 {
        self.seq
    }

    /// The number the next change gets.
    pub(super) fn next(&self) -> u64 {
        self.seq + 1
    }

    /// Notes `key` (of `account`) at `seq` (a change not yet committed), replacing its note at
    /// `before`.
    pub(super) fn note(
        &mut self,
        key: &Arc<ProbeKey>,
        before: u64,
        seq: u64,
        change: Change,
        account: AccountId,
    ) {
        if let Some(at) = self.notes.get_mut(&before) {
            if at.remove(key).is_some() {
                self.len -= 1;
            }
            if at.is_empty() {
                self.notes.remove(&before);
            }
        }
        if self
            .notes
            .entry(seq)
            .or_default()
            .insert(Arc::clone(key), (change, account))
            .is_none()
        {
            self.len += 1;
        }
    }

    /// Ends the change numbered `seq`: if it noted anything, it is the latest from now on (a
    /// re-plan that moved nothing leaves the version, and waiting agents, alone), and the
    /// oldest notes go if the log is over its bound.
    pub(super) fn commit(&mut self, seq: u64) {
        if self.notes.contains_key(&seq) {
            self.seq = self.seq.max(seq);
        }
        while self.len > MAX_CHANGES {
            let Some((dropped, notes)) = self.notes.pop_first() else {
                break;
            };
            self.len -= notes.len();
            self.horizon = self.horizon.max(dropped);
        }
    }

    /// Forgets every note and starts again after `after` (an engine built from scratch:
    /// what came before it cannot be told apart, so older locations start over).
    pub(super) fn restart(&mut self, after: u64) {
        self.notes.clear();
        self.len = 0;
        self.seq = self.seq.max(after);
        self.horizon = self.seq;
    }

    /// Every note after `since`, in order; `None` when the log cannot say (older than what
    /// it keeps, or a number it never gave).
    pub(super) fn since(
        &self,
        since: u64,
    ) -> Option<impl Iterator<Item = (&Arc<ProbeKey>, Change, AccountId)> + '_> {
        if since < self.horizon || since > self.seq {
            return None;
        }
        Some(
            self.notes
                .range(since + 1..)
                .flat_map(|(_, at)| at.iter().map(|(k, (c, a))| (k, *c, *a))),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MonitorId;

    const A: AccountId = AccountId::from_bytes([9; 16]);

    fn key(i: u8) -> Arc<ProbeKey> {
        Arc::new(ProbeKey {
            monitor: MonitorId::from_bytes([1; 16]),
            address: format!("10.0.0.{i}"),
            port: 0,
            host: None,
        })
    }

    fn changes(log: &ChangeLog, since: u64) -> Option<Vec<(String, Change)>> {
        Some(
            log.since(since)?
                .map(|(k, c, _)| (k.address.clone(), c))
                .collect(),
        )
    }

    #[test]
    fn a_delta_holds_each_target_once_at_its_latest_change() {
        let mut log = ChangeLog::default();
        let (a, b) = (key(1), key(2));
        log.note(&a, 0, 1, Change::Assigned, A);
        log.note(&b, 0, 1, Change::Assigned, A);
        log.commit(1);
        log.note(&a, 1, 2, Change::Assigned, A);
        log.commit(2);
        log.note(&b, 1, 3, Change::Removed, A);
        log.commit(3);
        assert_eq!(
            changes(&log, 0).unwrap(),
            vec![
                ("10.0.0.1".into(), Change::Assigned),
                ("10.0.0.2".into(), Change::Removed)
            ]
        );
        assert_eq!(
            changes(&log, 2).unwrap(),
            vec![("10.0.0.2".into(), Change::Removed)]
        );
        assert_eq!(changes(&log, 3).unwrap(), vec![]);
        // A number this log never gave: another engine's, or a future one.
        assert!(changes(&log, 4).is_none());
    }

    #[test]
    fn past_its_bound_the_log_sends_laggards_everything() {
        let mut log = ChangeLog::default();
        for seq in 1..=(MAX_CHANGES as u64 + 2) {
            let k = Arc::new(ProbeKey {
                monitor: MonitorId::from_bytes([2; 16]),
                address: format!("10.{seq}"),
                port: 0,
                host: None,
            });
            log.note(&k, 0, seq, Change::Assigned, A);
            log.commit(seq);
        }
        // The two oldest changes went: a location that knows only change 1 is behind what is
        // kept.
        assert!(changes(&log, 1).is_none());
        assert_eq!(changes(&log, 2).unwrap().len(), MAX_CHANGES);
    }

    #[test]
    fn a_restarted_log_knows_nothing_before_it() {
        let mut log = ChangeLog::default();
        log.note(&key(1), 0, 1, Change::Assigned, A);
        log.commit(1);
        log.restart(7);
        // A re-plan that noted nothing is no new version.
        log.commit(8);
        assert_eq!(log.seq(), 7);
        assert!(changes(&log, 1).is_none());
        assert_eq!(changes(&log, 7).unwrap(), vec![]);
        assert_eq!(log.next(), 8);
    }
}
