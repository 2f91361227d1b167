//! What waits for the store of health, and its bound.
//!
//! At most [`MAX_QUEUED_HEALTH`] location states and events wait (one write may go past it).
//! Once that many wait (a store that has stalled for long while origins keep changing), a new
//! write's states are dropped: the engine keeps them, and once the store takes writes again
//! every one is written anew ([`crate::Controller::rewrite_lost_health`]). Its events, which
//! cannot be made again, are kept for accounts holding less than an equal share of the bound
//! among the accounts with events waiting, and dropped for the others: one account whose
//! origins flap while the store stalls cannot crowd another's events (and their alerts) out.
//! Past twice the bound, nothing more is queued (many accounts, each filling its share as it
//! comes, would otherwise add up past any multiple of it).

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;

use vantage_core::health::Event;
use vantage_core::tally::Tally;
use vantage_core::AccountId;

use crate::writer::HealthWrite;

/// The most location states and events waiting for the store at once, shared by every
/// account (see the module's documentation for what happens past it).
pub(crate) const MAX_QUEUED_HEALTH: usize = 100_000;

#[derive(Debug, Default)]
pub(crate) struct HealthQueue {
    /// States and events queued and not yet written.
    queued: AtomicUsize,
    /// Events queued and not yet written, by account.
    events: Mutex<Tally<AccountId>>,
}

/// What [`HealthQueue::admit`] left out of a write, and how much waited before it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Dropped {
    pub(crate) states: usize,
    pub(crate) events: usize,
    pub(crate) waiting: usize,
}

impl HealthQueue {
    /// States and events queued and not yet written.
    pub(crate) fn len(&self) -> usize {
        self.queued.load(Relaxed)
    }

    /// Whether the store has caught up: less than a tenth of the bound waits.
    pub(crate) fn caught_up(&self) -> bool {
        self.len() < MAX_QUEUED_HEALTH / 10
    }

    /// Counts `write` in, all of it while fewer than the bound wait (judged on what waits
    /// already, so one write larger than the bound, a reconfiguration changing every pool,
    /// still goes through a store that keeps up). At the bound, leaves out its states and the
    /// events of accounts at their share, and says what it left out.
    pub(crate) fn admit(&self, write: &mut HealthWrite) -> Option<Dropped> {
        let waiting = self.queued.load(Relaxed);
        let mut by_account = self.events.lock().unwrap_or_else(|p| p.into_inner());
        let dropped = if waiting >= MAX_QUEUED_HEALTH {
            let states = std::mem::take(&mut write.states).len();
            let offered = write.events.len();
            let mut room = (2 * MAX_QUEUED_HEALTH).saturating_sub(waiting);
            write.events.retain(|e| {
                let newcomer = !by_account.contains(&e.account);
                let share = MAX_QUEUED_HEALTH / (by_account.len() + usize::from(newcomer));
                let kept = by_account.get(&e.account) < share && room > 0;
                if kept {
                    by_account.add(e.account);
                    room -= 1;
                }
                kept
            });
            Some(Dropped {
                states,
                events: offered - write.events.len(),
                waiting,
            })
        } else {
            for e in &write.events {
                by_account.add(e.account);
            }
            None
        };
        self.queued.fetch_add(write.len(), Relaxed);
        dropped
    }

    /// Counts out what [`HealthQueue::admit`] counted in: `states` states and `events`,
    /// written (or lost).
    pub(crate) fn done(&self, states: usize, events: &[Event]) {
        let mut by_account = self.events.lock().unwrap_or_else(|p| p.into_inner());
        for e in events {
            by_account.remove_one(&e.account);
        }
        drop(by_account);
        self.queued.fetch_sub(states + events.len(), Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vantage_core::health::Verdict;
    use vantage_core::{PoolId, Timestamp};

    fn event(account: u8) -> Event {
        Event {
            at: Timestamp::from_unix_micros(0),
            account: AccountId::from_bytes([account; 16]),
            pool: PoolId::from_bytes([account; 16]),
            pool_name: "p".into(),
            pool_healthy: Verdict::Unhealthy,
            pool_was: Verdict::Healthy,
            pool_changed: true,
            minimum_origins: 1,
            origins: Vec::new(),
        }
    }

    fn events(account: u8, n: usize) -> HealthWrite {
        HealthWrite {
            states: Vec::new(),
            events: (0..n).map(|_| event(account)).collect(),
        }
    }

    #[test]
    fn at_the_bound_an_account_past_its_share_loses_its_events_and_the_others_keep_theirs() {
        let q = HealthQueue::default();
        let mut flood = events(1, MAX_QUEUED_HEALTH);
        assert_eq!(q.admit(&mut flood), None, "under the bound: all of it");
        assert_eq!(q.len(), MAX_QUEUED_HEALTH);

        // The flooding account holds the whole bound: its next event goes, and a state too.
        let mut more = events(1, 1);
        more.states.push(vantage_store::contract::location_state(0));
        let dropped = q.admit(&mut more).unwrap();
        assert_eq!((dropped.states, dropped.events), (1, 1));
        assert_eq!(more.len(), 0);

        // Another account's events are kept, up to its share (half the bound, for two).
        let mut quiet = events(2, 3);
        assert_eq!(q.admit(&mut quiet).unwrap().events, 0);
        assert_eq!(quiet.events.len(), 3);
        assert_eq!(q.len(), MAX_QUEUED_HEALTH + 3);
        let mut big = events(2, MAX_QUEUED_HEALTH);
        let dropped = q.admit(&mut big).unwrap();
        assert_eq!(big.events.len(), MAX_QUEUED_HEALTH / 2 - 3);
        assert_eq!(dropped.events, MAX_QUEUED_HEALTH / 2 + 3);

        // Newcomers each fill their share (a third, then a quarter of the bound), but never
        // past twice the bound; then nothing more, even for an account with none waiting.
        let mut third = events(3, MAX_QUEUED_HEALTH);
        q.admit(&mut third);
        assert_eq!(third.events.len(), MAX_QUEUED_HEALTH / 3);
        let mut fourth = events(4, MAX_QUEUED_HEALTH);
        q.admit(&mut fourth);
        assert_eq!(q.len(), 2 * MAX_QUEUED_HEALTH);
        let mut fifth = events(5, 1);
        assert_eq!(q.admit(&mut fifth).unwrap().events, 1);

        // Written, the counts come back down, and room with them.
        q.done(0, &third.events);
        q.done(0, &fourth.events);
        q.done(0, &flood.events);
        q.done(0, &quiet.events);
        q.done(0, &big.events);
        assert_eq!(q.len(), 0);
        assert!(q.events.lock().unwrap().is_empty());
        let mut after = events(1, 1);
        after
            .states
            .push(vantage_store::contract::location_state(0));
        assert_eq!(q.admit(&mut after), None);
        assert_eq!(q.len(), 2);
    }
}
