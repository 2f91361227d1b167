//! Fair turns at an agent's check slots among tenants. An agent runs a bounded number of
//! checks at once; when more are due than it can start, the ones waiting take turns by
//! tenant (round robin), not by due time alone. Otherwise one tenant with many checks that
//! hold their slot for the whole timeout (dead origins), or many targets at short intervals,
//! would fill the queue ahead of everybody else, and every tenant's checks on that agent
//! would run late. Within one tenant, checks keep their due order.
//!
//! Turns count starts, not slot time: a tenant whose checks are slow still starts one check
//! per turn, so others' checks wait for one slot to free between turns rather than for the
//! whole backlog; while its slow checks fill the slots, they still slow everyone down. A cap
//! on the slots one tenant holds would be the next step.
//!
//! A target waits at most once: one falling behind comes due again before its last check
//! started, and queuing it twice would run the same check twice and let the queue grow past
//! the assignment without bound. It keeps its first place (and its lateness counts from it).

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;

/// Keys waiting for a slot with a value each (when they came due), in one queue per share
/// (tenant), served round robin; a key waits at most once.
#[derive(Debug, Clone)]
pub struct FairQueue<S, K, V> {
    queues: HashMap<S, VecDeque<(K, V)>>,
    /// The shares with something waiting, in the order of their next turns.
    turns: VecDeque<S>,
    waiting: HashSet<K>,
}

impl<S, K, V> Default for FairQueue<S, K, V> {
    fn default() -> Self {
        Self {
            queues: HashMap::new(),
            turns: VecDeque::new(),
            waiting: HashSet::new(),
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

    /// The oldest key of the share whose turn it is; that share's next turn comes after
    /// every other share waiting.
    pub fn pop(&mut self) -> Option<(K, V)> {
        let share = self.turns.pop_front()?;
        let queue = self.queues.get_mut(&share)?;
        let item = queue.pop_front();
        if queue.is_empty() {
            self.queues.remove(&share);
        } else {
            self.turns.push_back(share);
        }
        if let Some((key, _)) = &item {
            self.waiting.remove(key);
        }
        item
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

    fn drain(q: &mut FairQueue<char, u32, ()>) -> Vec<u32> {
        std::iter::from_fn(|| q.pop()).map(|(k, ())| k).collect()
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
        let first: Vec<u32> = (0..6).map(|_| q.pop().unwrap().0).collect();
        assert_eq!(first, [0, 5000, 6000, 1, 6001, 2]);
        assert_eq!((q.len(), q.shares()), (997, 1));
        assert_eq!(drain(&mut q), (3..1000).collect::<Vec<_>>());
        assert!(q.is_empty() && q.pop().is_none());
    }

    #[test]
    fn a_share_that_empties_and_returns_queues_at_the_back() {
        let mut q = FairQueue::default();
        q.push('a', 1, ());
        q.push('b', 2, ());
        assert_eq!(q.pop(), Some((1, ())));
        q.push('a', 3, ());
        q.push('a', 4, ());
        assert_eq!(drain(&mut q), [2, 3, 4]);
        q.push('z', 9, ());
        assert_eq!((q.len(), q.pop(), q.len()), (1, Some((9, ())), 0));
    }

    #[test]
    fn a_key_waits_once_and_keeps_its_first_place() {
        let mut q = FairQueue::default();
        assert!(q.push('a', 1, "due at 0 s"));
        assert!(q.push('a', 2, "due at 1 s"));
        // Due again before its check started: not queued twice.
        assert!(!q.push('a', 1, "due at 5 s"));
        assert_eq!(q.len(), 2);
        assert_eq!(q.pop(), Some((1, "due at 0 s")));
        // Once started, it may wait again.
        assert!(q.push('a', 1, "due at 10 s"));
        assert_eq!(q.pop(), Some((2, "due at 1 s")));
        assert_eq!(q.pop(), Some((1, "due at 10 s")));
        assert!(q.is_empty());
    }
}
