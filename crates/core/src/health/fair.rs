//! Fair turns at an agent's check slots among tenants. An agent runs a bounded number of
//! checks at once; when more are due than it can start, the ones waiting take turns by
//! tenant (round robin), not by due time alone. Otherwise one tenant with many checks that
//! hold their slot for the whole timeout (dead origins), or many targets at short intervals,
//! would fill the queue ahead of everybody else, and every tenant's checks on that agent
//! would run late. Within one tenant, checks keep their due order.
//!
//! Turns count starts, not slot time: a tenant whose checks are slow still starts one check
//! per turn, so others' checks wait at most for one slot to free between turns.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

/// Items waiting for a slot, in one queue per share (tenant), served round robin.
#[derive(Debug, Clone)]
pub struct FairQueue<S, T> {
    queues: HashMap<S, VecDeque<T>>,
    /// The shares with something waiting, in the order of their next turns.
    turns: VecDeque<S>,
    len: usize,
}

impl<S, T> Default for FairQueue<S, T> {
    fn default() -> Self {
        Self {
            queues: HashMap::new(),
            turns: VecDeque::new(),
            len: 0,
        }
    }
}

impl<S: Hash + Eq + Clone, T> FairQueue<S, T> {
    /// Queues `item` behind the others of `share`.
    pub fn push(&mut self, share: S, item: T) {
        let queue = self.queues.entry(share.clone()).or_default();
        if queue.is_empty() {
            self.turns.push_back(share);
        }
        queue.push_back(item);
        self.len += 1;
    }

    /// The oldest item of the share whose turn it is; that share's next turn comes after
    /// every other share waiting.
    pub fn pop(&mut self) -> Option<T> {
        let share = self.turns.pop_front()?;
        let queue = self.queues.get_mut(&share)?;
        let item = queue.pop_front();
        if queue.is_empty() {
            self.queues.remove(&share);
        } else {
            self.turns.push_back(share);
        }
        self.len -= usize::from(item.is_some());
        item
    }

    /// Items waiting, over every share.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Shares with something waiting.
    pub fn shares(&self) -> usize {
        self.turns.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(q: &mut FairQueue<char, u32>) -> Vec<u32> {
        std::iter::from_fn(|| q.pop()).collect()
    }

    #[test]
    fn a_tenant_with_a_backlog_does_not_hold_back_the_others() {
        let mut q = FairQueue::default();
        for i in 0..1000 {
            q.push('a', i);
        }
        q.push('b', 5000);
        q.push('c', 6000);
        q.push('c', 6001);
        assert_eq!((q.len(), q.shares()), (1003, 3));
        // b's and c's checks start among the first few, not after a's thousand.
        let first: Vec<u32> = (0..6).map(|_| q.pop().unwrap()).collect();
        assert_eq!(first, [0, 5000, 6000, 1, 6001, 2]);
        assert_eq!((q.len(), q.shares()), (997, 1));
        assert_eq!(drain(&mut q), (3..1000).collect::<Vec<_>>());
        assert!(q.is_empty() && q.pop().is_none());
    }

    #[test]
    fn a_share_that_empties_and_returns_queues_at_the_back() {
        let mut q = FairQueue::default();
        q.push('a', 1);
        q.push('b', 2);
        assert_eq!(q.pop(), Some(1));
        q.push('a', 3);
        q.push('a', 4);
        assert_eq!(drain(&mut q), [2, 3, 4]);
        q.push('z', 9);
        assert_eq!((q.len(), q.pop(), q.len()), (1, Some(9), 0));
    }
}
