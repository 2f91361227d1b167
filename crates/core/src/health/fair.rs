//! Fair turns at an agent's check slots among tenants. An agent runs a bounded number of
//! checks at once; when more are due than it can start, the ones waiting take turns by
//! tenant (round robin), not by due time alone. Otherwise one tenant with many checks that
//! hold their slot for the whole timeout (dead origins), or many targets at short intervals,
//! would fill the queue ahead of everybody else, and every tenant's checks on that agent
//! would run late. Within one tenant, checks keep their due order.
//!
//! Turns alone count starts, not slot time: a tenant whose checks are slow (each holding its
//! slot for the whole timeout) would, one start per turn, end up holding nearly every slot,
//! and the others would get only the slots that happen to free. So the tenants with checks
//! waiting may each hold an equal part of the slots that quiet tenants (checks running, none
//! waiting) do not hold, less what is kept free for the others: while a quiet tenant is active,
//! or a tenant the agent probes for has nothing running or waiting ([`FairQueue::set_shares`]),
//! those hold or find free at least an eighth of the slots together (one slot at least,
//! [`RESERVED`]): while they hold less than that, the next check of one finds a free slot at
//! once, whatever the busy tenants' checks hold (once they hold that much, it waits for a slot
//! to free). A tenant coming due gets a part of its own, and slots that free go to it until
//! it has that part.
//!
//! Nothing more is held back (work-conserving): a tenant below its part takes any free slot,
//! a quiet tenant with one check running takes one slot, and a tenant alone may use every
//! slot. A slot stands idle only while every tenant waiting is at its part, and then only the
//! others' eighth.
//!
//! A target waits at most once: one falling behind comes due again before its last check
//! started, and queuing it twice would run the same check twice and let the queue grow past
//! the assignment without bound. It keeps its first place (and its lateness counts from it).

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;

use crate::tally::Tally;

/// The part of the slots (eighths) that tenants with checks running and none waiting hold or
/// find free together, while the others take the rest.
pub const RESERVED: usize = 1;

/// Keys waiting for a slot with a value each (when they came due), in one queue per share
/// (tenant), served round robin; a key waits at most once.
#[derive(Debug, Clone)]
pub struct FairQueue<S, K, V> {
    queues: HashMap<S, VecDeque<(K, V)>>,
    /// The shares with something waiting, in the order of their next turns.
    turns: VecDeque<S>,
    waiting: HashSet<K>,
    /// Checks started and not yet finished, per share.
    running: Tally<S>,
    /// How many shares there are in all, active or not (0: unknown, taken as only those active).
    shares: usize,
}

impl<S, K, V> Default for FairQueue<S, K, V> {
    fn default() -> Self {
        Self {
            queues: HashMap::new(),
            turns: VecDeque::new(),
            waiting: HashSet::new(),
            running: Tally::default(),
            shares: 0,
        }
    }
}

impl<S: Hash + Eq + Clone, K: Hash + Eq + Clone, V> FairQueue<S, K, V> {
    /// Queues `key` behind the others of `share`, unless it is waiting already. Returns
    /// whether it was queued.
    pub fn push(&mut self, share: S, key: K, value: V) -> bool {
        if !self.waiting.insert(key.clone()) {
            return false;
        }
        let queue = self.queues.entry(share.clone()).or_default();
        if queue.is_empty() {
            self.turns.push_back(share);
        }
        queue.push_back((key, value));
        true
    }

    /// The most slots one share with keys waiting may hold, out of `slots`.
    pub fn part(&self, slots: usize) -> usize {
        let (mut quiet, mut quiet_held) = (0, 0);
        for (share, n) in self.running.iter() {
            if !self.queues.contains_key(share) {
                quiet += 1;
                quiet_held += n;
            }
        }
        let idle = self.shares > self.queues.len() + quiet;
        let kept_free = if quiet > 0 || idle {
            (slots * RESERVED / 8).max(1).saturating_sub(quiet_held)
        } else {
            0
        };
        let waiting = self.queues.len().max(1);
        (slots.saturating_sub(quiet_held + kept_free) / waiting).max(1)
    }

    fn may_start(&self, share: &S, part: usize) -> bool {
        self.running.get(share) < part
    }

    /// Says how many shares there are in all (the tenants an agent probes for), so that an
    /// eighth of the slots is kept for those with nothing running or waiting too.
    pub fn set_shares(&mut self, shares: usize) {
        self.shares = shares;
    }

    /// Whether some share waiting may start a check in one of `slots`.
    pub fn can_start(&self, slots: usize) -> bool {
        let part = self.part(slots);
        self.turns.iter().any(|s| self.may_start(s, part))
    }

    /// The oldest key of the first share in turn that holds less than its part of `slots`;
    /// that share's next turn comes after every other share waiting, and the shares passed
    /// over keep their places. Call [`FairQueue::started`] when its check starts.
    pub fn pop(&mut self, slots: usize) -> Option<(S, K, V)> {
        let part = self.part(slots);
        let turn = self.turns.iter().position(|s| self.may_start(s, part))?;
        let share = self.turns.remove(turn)?;
        let queue = self.queues.get_mut(&share)?;
        let item = queue.pop_front();
        if queue.is_empty() {
            self.queues.remove(&share);
        } else {
            self.turns.push_back(share.clone());
        }
        let (key, value) = item?;
        self.waiting.remove(&key);
        Some((share, key, value))
    }

    /// Forgets every waiting key `keep` refuses (targets that left the assignment), so they
    /// neither count as waiting nor keep their share's turn. Shares keep their order.
    pub fn retain(&mut self, mut keep: impl FnMut(&K) -> bool) {
        let waiting = &mut self.waiting;
        self.queues.retain(|_, queue| {
            queue.retain(|(key, _)| {
                let kept = keep(key);
                if !kept {
                    waiting.remove(key);
                }
                kept
            });
            !queue.is_empty()
        });
        let queues = &self.queues;
        self.turns.retain(|s| queues.contains_key(s));
    }

    /// A check of `share` started: it holds a slot until [`FairQueue::finished`].
    pub fn started(&mut self, share: S) {
        self.running.add(share);
    }

    /// A check of `share` gave its slot back.
    pub fn finished(&mut self, share: &S) {
        self.running.remove_one(share);
    }

    /// Checks running, over every share.
    pub fn running(&self) -> usize {
        self.running.total()
    }

    /// Keys waiting, over every share.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Shares with something waiting.
    pub fn shares(&self) -> usize {
        self.turns.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: usize = usize::MAX / 8;

    fn drain(q: &mut FairQueue<char, u32, ()>) -> Vec<u32> {
        std::iter::from_fn(|| q.pop(ALL))
            .map(|(_, k, ())| k)
            .collect()
    }

    #[test]
    fn a_tenant_with_a_backlog_does_not_hold_back_the_others() {
        let mut q = FairQueue::default();
        for i in 0..1000 {
            q.push('a', i, ());
        }
        q.push('b', 5000, ());
        q.push('c', 6000, ());
        q.push('c', 6001, ());
        assert_eq!((q.len(), q.shares()), (1003, 3));
        // b's and c's checks start among the first few, not after a's thousand.
        let first: Vec<u32> = (0..6).map(|_| q.pop(ALL).unwrap().1).collect();
        assert_eq!(first, [0, 5000, 6000, 1, 6001, 2]);
        assert_eq!((q.len(), q.shares()), (997, 1));
        assert_eq!(drain(&mut q), (3..1000).collect::<Vec<_>>());
        assert!(q.is_empty() && q.pop(ALL).is_none());
    }

    #[test]
    fn a_share_that_empties_and_returns_queues_at_the_back() {
        let mut q = FairQueue::default();
        q.push('a', 1, ());
        q.push('b', 2, ());
        assert_eq!(q.pop(ALL), Some(('a', 1, ())));
        q.push('a', 3, ());
        q.push('a', 4, ());
        assert_eq!(drain(&mut q), [2, 3, 4]);
        q.push('z', 9, ());
        assert_eq!((q.len(), q.pop(ALL), q.len()), (1, Some(('z', 9, ())), 0));
    }

    #[test]
    fn keys_that_left_are_forgotten_and_their_turns_with_them() {
        let mut q = FairQueue::default();
        for (share, key) in [('a', 1), ('b', 2), ('a', 3), ('c', 4), ('b', 5)] {
            q.push(share, key, ());
        }
        q.retain(|k| *k != 2 && *k != 5 && *k != 3);
        // b has nothing left: it no longer counts, nor holds a turn.
        assert_eq!((q.len(), q.shares()), (2, 2));
        assert_eq!(drain(&mut q), [1, 4]);
        // A key forgotten may wait again.
        assert!(q.push('b', 2, ()));
        assert_eq!(q.pop(ALL), Some(('b', 2, ())));
    }

    #[test]
    fn a_key_waits_once_and_keeps_its_first_place() {
        let mut q = FairQueue::default();
        assert!(q.push('a', 1, "due at 0 s"));
        assert!(q.push('a', 2, "due at 1 s"));
        // Due again before its check started: not queued twice.
        assert!(!q.push('a', 1, "due at 5 s"));
        assert_eq!(q.len(), 2);
        assert_eq!(q.pop(ALL), Some(('a', 1, "due at 0 s")));
        // Once started, it may wait again.
        assert!(q.push('a', 1, "due at 10 s"));
        assert_eq!(q.pop(ALL), Some(('a', 2, "due at 1 s")));
        assert_eq!(q.pop(ALL), Some(('a', 1, "due at 10 s")));
        assert!(q.is_empty());
    }

    /// Pops and starts checks until none may start; what each share then holds.
    fn fill(q: &mut FairQueue<char, u32, ()>, slots: usize) -> HashMap<char, usize> {
        while let Some((share, _, ())) = q.pop(slots) {
            q.started(share);
        }
        q.running.iter().map(|(s, n)| (*s, n)).collect()
    }

    #[test]
    fn a_tenant_holding_slots_leaves_the_others_their_part() {
        let mut q: FairQueue<char, u32, ()> = FairQueue::default();
        // Alone, 'a' may take every one of 16 slots.
        for i in 0..100 {
            q.push('a', i, ());
        }
        for _ in 0..16 {
            let (share, _, ()) = q.pop(16).unwrap();
            q.started(share);
        }
        assert_eq!((q.running(), q.part(16)), (16, 16));
        // 'b' comes due: two waiting, half each, so every slot that frees goes to 'b' until
        // 'a' is under its part.
        q.push('b', 1000, ());
        q.push('b', 1001, ());
        q.push('b', 1002, ());
        assert_eq!(q.part(16), 8);
        q.finished(&'a');
        assert_eq!(q.pop(16).map(|(s, k, ())| (s, k)), Some(('b', 1000)));
        q.started('b');
        q.finished(&'a');
        assert_eq!(q.pop(16).map(|(s, k, ())| (s, k)), Some(('b', 1001)));
        q.started('b');
        q.finished(&'b');
        assert_eq!(q.pop(16).map(|(s, k, ())| (s, k)), Some(('b', 1002)));
        q.started('b');
        // 'b' is quiet now (running, none waiting), holding one slot after this: 'a' may hold
        // all but that one and the one kept free (with it, the quiet tenants' eighth).
        q.finished(&'b');
        assert_eq!((q.running(), q.part(16)), (15, 14));
        assert!(!q.can_start(16));
        assert_eq!(q.pop(16), None);
        // Once 'b' has nothing running or waiting, 'a' is alone again.
        q.finished(&'b');
        assert!(q.can_start(16));
        assert_eq!(q.pop(16).map(|(s, _, ())| s), Some('a'));
    }

    #[test]
    fn the_parts_quiet_tenants_leave_unused_are_taken() {
        let mut q: FairQueue<char, u32, ()> = FairQueue::default();
        // 'b' and 'c' have one check running each and none waiting.
        for share in ['b', 'c'] {
            q.push(share, 0, ());
            let (share, _, ()) = q.pop(96).unwrap();
            q.started(share);
        }
        for i in 1..=200 {
            q.push('a', i, ());
        }
        // 'a' takes every slot but theirs and the ten that keep their eighth (12) free.
        let held = fill(&mut q, 96);
        assert_eq!(held[&'a'], 84);
        assert_eq!(96 - q.running() + held[&'b'] + held[&'c'], 96 / 8);
        // Two of 'b' come due: the first starts at once, in the slots kept free; while the
        // other waits, 'a' and 'b' have half each of what 'c' does not hold or keep free,
        // and 'a', over its part, starts nothing more.
        q.push('b', 1000, ());
        q.push('b', 1001, ());
        assert_eq!(q.pop(96).map(|(s, k, ())| (s, k)), Some(('b', 1000)));
        q.started('b');
        assert_eq!(q.part(96), (96 - 1 - 11) / 2);
        q.finished(&'a');
        assert_eq!(q.pop(96).map(|(s, k, ())| (s, k)), Some(('b', 1001)));
    }

    #[test]
    fn an_eighth_is_kept_for_tenants_not_yet_due() {
        let mut q: FairQueue<char, u32, ()> = FairQueue::default();
        q.set_shares(2);
        for i in 0..100 {
            q.push('a', i, ());
        }
        // 'b' has nothing running or waiting: 'a' leaves it an eighth of 96.
        assert_eq!(fill(&mut q, 96)[&'a'], 84);
        q.push('b', 1000, ());
        assert_eq!(q.pop(96).map(|(s, k, ())| (s, k)), Some(('b', 1000)));
        // The only tenant there is: every slot.
        let mut alone: FairQueue<char, u32, ()> = FairQueue::default();
        alone.set_shares(1);
        for i in 0..100 {
            alone.push('a', i, ());
        }
        assert_eq!(fill(&mut alone, 96)[&'a'], 96);
    }

    #[test]
    fn tenants_waiting_share_the_slots_equally() {
        let mut q: FairQueue<char, u32, ()> = FairQueue::default();
        for share in ['a', 'b', 'c', 'd'] {
            for i in 0..100 {
                q.push(share, u32::from(share) * 1000 + i, ());
            }
        }
        let held = fill(&mut q, 96);
        assert!(held.values().all(|n| *n == 24), "{held:?}");
        // A part never falls under one slot: two tenants on one slot take turns.
        let mut two: FairQueue<char, u32, ()> = FairQueue::default();
        two.push('a', 1, ());
        two.push('b', 2, ());
        assert_eq!(two.part(1), 1);
        assert!(two.can_start(1));
    }
}
