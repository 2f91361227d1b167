//! Previews from remote probe locations: the checks a preview asks of an agent wait here until
//! that agent's long poll takes them (`GET /agent/v1/preview_checks`), and their facts come
//! back through its answer. Nothing here reaches the health engine.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use vantage_core::health::{Facts, Location};
use vantage_core::monitor::MonitorSpec;
use vantage_core::{AccountId, Timestamp};

use crate::agent_protocol::{Monitor, PreviewCheck};

/// Checks waiting for one location at most; a preview asking more gets no result from it.
pub const MAX_WAITING: usize = 10_000;
/// Of those, one account's at most: one account's previews cannot fill a location's queue.
pub const MAX_WAITING_PER_ACCOUNT: usize = 2_000;
/// Checks handed to an agent in one answer at most.
pub const MAX_PER_ANSWER: usize = 500;
/// A location counts as able to run previews this long after its last poll (the long poll
/// is 25 s, so a live agent is always inside it).
const POLLER_FRESH_MICROS: i64 = 60_000_000;
/// How long a check may wait to be taken by its agent, on top of the monitor's own time.
const PICKUP: Duration = Duration::from_secs(30);

struct Waiting {
    /// Whose preview asked: handed only to an agent whose token covers the account.
    account: AccountId,
    check: PreviewCheck,
    reply: oneshot::Sender<Facts>,
}

struct Poller {
    /// The accounts the agent's token is limited to (`None`: every account).
    accounts: Option<Vec<AccountId>>,
    seen: Timestamp,
}

#[derive(Default)]
struct Inner {
    waiting: HashMap<Location, VecDeque<Waiting>>,
    /// Taken by an agent, not answered yet: by id, with the location that took it.
    handed: HashMap<u64, (Location, oneshot::Sender<Facts>)>,
    pollers: HashMap<Location, Poller>,
}

/// The checks previews ask of remote agents, and the agents that ask for them.
pub struct RemoteChecks {
    inner: Mutex<Inner>,
    /// Moves whenever a check is queued: waiting long polls look again.
    queued: watch::Sender<u64>,
}

impl std::fmt::Debug for RemoteChecks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteChecks").finish_non_exhaustive()
    }
}

impl Default for RemoteChecks {
    fn default() -> Self {
        Self {
            inner: Mutex::default(),
            queued: watch::channel(0).0,
        }
    }
}

impl RemoteChecks {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `location` asks for checks at `now`; what to wait on when none are waiting.
    pub fn poll(
        &self,
        location: &Location,
        accounts: Option<&[AccountId]>,
        now: Timestamp,
    ) -> watch::Receiver<u64> {
        self.inner().pollers.insert(
            location.clone(),
            Poller {
                accounts: accounts.map(<[AccountId]>::to_vec),
                seen: now,
            },
        );
        self.queued.subscribe()
    }

    /// Hands the checks waiting for `location` (at most [`MAX_PER_ANSWER`]) to its agent, as
    /// far as its token covers their accounts (`accounts`, as the token says now; `None`:
    /// every account); the rest wait (and are given up in time).
    pub fn take(&self, location: &Location, accounts: Option<&[AccountId]>) -> Vec<PreviewCheck> {
        let mut inner = self.inner();
        let Some(queue) = inner.waiting.get_mut(location) else {
            return Vec::new();
        };
        let covered = |w: &Waiting| accounts.is_none_or(|a| a.contains(&w.account));
        let mut taken = Vec::new();
        let mut kept = VecDeque::new();
        for w in queue.drain(..) {
            if taken.len() < MAX_PER_ANSWER && covered(&w) {
                taken.push(w);
            } else {
                kept.push_back(w);
            }
        }
        *queue = kept;
        if queue.is_empty() {
            inner.waiting.remove(location);
        }
        taken
            .into_iter()
            .filter(|w| !w.reply.is_closed())
            .map(|w| {
                inner.handed.insert(w.check.id, (location.clone(), w.reply));
                w.check
            })
            .collect()
    }

    /// `location` answers check `id`; false when it was not asked that (another location's
    /// check, or one given up on).
    pub fn answer(&self, location: &Location, id: u64, facts: Facts) -> bool {
        let mut inner = self.inner();
        match inner.handed.remove(&id) {
            Some((asked, reply)) if asked == *location => reply.send(facts).is_ok(),
            Some(other) => {
                inner.handed.insert(id, other);
                false
            }
            None => false,
        }
    }

    /// The remote locations that can run a preview for `account` now: those that polled
    /// lately with a token that covers the account.
    pub fn locations(&self, account: AccountId, now: Timestamp) -> Vec<Location> {
        let mut out: Vec<Location> = self
            .inner()
            .pollers
            .iter()
            .filter(|(_, p)| p.seen.unix_micros() + POLLER_FRESH_MICROS >= now.unix_micros())
            .filter(|(_, p)| p.accounts.as_ref().is_none_or(|a| a.contains(&account)))
            .map(|(l, _)| l.clone())
            .collect();
        out.sort();
        out
    }

    /// Asks `location` for one check of `account`'s preview and waits for its facts: `None`
    /// when the location (or the account there) has too much waiting already, or does not
    /// answer within the monitor's time plus [`PICKUP`].
    pub async fn check(
        &self,
        account: AccountId,
        location: &Location,
        spec: &MonitorSpec,
        address: &str,
        port: u16,
        host: Option<&str>,
    ) -> Option<Facts> {
        let (reply, facts) = oneshot::channel();
        let id = {
            let mut inner = self.inner();
            // Random, not counted: an agent that moved from another controller may still
            // answer that one's ids, which must not name a check here.
            let id = loop {
                let id = u64::from_le_bytes(rand::random());
                if !inner.handed.contains_key(&id) {
                    break id;
                }
            };
            let queue = inner.waiting.entry(location.clone()).or_default();
            let mine = queue.iter().filter(|w| w.account == account).count();
            if queue.len() >= MAX_WAITING || mine >= MAX_WAITING_PER_ACCOUNT {
                return None;
            }
            queue.push_back(Waiting {
                account,
                check: PreviewCheck {
                    id,
                    monitor: Monitor::from(spec),
                    address: address.to_owned(),
                    port,
                    host: host.map(str::to_owned),
                },
                reply,
            });
            id
        };
        self.queued.send_modify(|v| *v += 1);
        let allowed = Duration::from_micros(spec.check_micros()) + PICKUP;
        match tokio::time::timeout(allowed, facts).await {
            Ok(Ok(facts)) => Some(facts),
            _ => {
                let mut inner = self.inner();
                inner.handed.remove(&id);
                if let Some(q) = inner.waiting.get_mut(location) {
                    q.retain(|w| w.check.id != id);
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vantage_core::health::Outcome;
    use vantage_core::monitor::MonitorDraft;
    use vantage_core::region::RegionCode;

    fn loc(name: &str) -> Location {
        Location {
            region: RegionCode::Weu,
            name: name.into(),
        }
    }

    const NOW: Timestamp = Timestamp::from_unix_micros(1_000_000_000);

    #[tokio::test]
    async fn a_check_goes_to_its_location_and_only_it_may_answer() {
        let remote = std::sync::Arc::new(RemoteChecks::default());
        let a = AccountId::from_bytes([1; 16]);
        let only_b = AccountId::from_bytes([2; 16]);
        let _ = remote.poll(&loc("ams"), None, NOW);
        let _ = remote.poll(&loc("fra"), Some(&[only_b]), NOW);
        assert_eq!(remote.locations(a, NOW), [loc("ams")]);
        assert_eq!(remote.locations(only_b, NOW), [loc("ams"), loc("fra")]);
        let later = Timestamp::from_unix_micros(NOW.unix_micros() + POLLER_FRESH_MICROS + 1);
        assert!(
            remote.locations(a, later).is_empty(),
            "a silent agent runs no preview"
        );

        let spec = MonitorDraft::default().validate().unwrap();
        let asking = {
            let remote = std::sync::Arc::clone(&remote);
            tokio::spawn(async move {
                remote
                    .check(a, &loc("ams"), &spec, "192.0.2.1", 0, None)
                    .await
            })
        };
        let checks = loop {
            // A token that no longer covers the account is handed nothing of it.
            assert!(remote.take(&loc("ams"), Some(&[only_b])).is_empty());
            let taken = remote.take(&loc("ams"), None);
            if !taken.is_empty() {
                break taken;
            }
            tokio::task::yield_now().await;
        };
        assert!(remote.take(&loc("fra"), None).is_empty());
        assert_eq!(checks[0].address, "192.0.2.1");
        let facts = Facts {
            outcome: Outcome::Reached,
            rtt_micros: Some(5),
        };
        assert!(
            !remote.answer(&loc("fra"), checks[0].id, facts.clone()),
            "not fra's to answer"
        );
        assert!(remote.answer(&loc("ams"), checks[0].id, facts.clone()));
        assert!(
            !remote.answer(&loc("ams"), checks[0].id, facts.clone()),
            "answered once"
        );
        assert_eq!(asking.await.unwrap(), Some(facts));
    }

    #[tokio::test(start_paused = true)]
    async fn an_unanswered_check_is_given_up_and_forgotten() {
        let remote = RemoteChecks::default();
        let spec = MonitorDraft::default().validate().unwrap();
        let a = AccountId::from_bytes([1; 16]);
        let got = remote
            .check(a, &loc("ams"), &spec, "192.0.2.1", 0, None)
            .await;
        assert_eq!(got, None);
        assert!(
            remote.take(&loc("ams"), None).is_empty(),
            "nothing left waiting"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn one_account_cannot_fill_a_locations_queue() {
        let remote = std::sync::Arc::new(RemoteChecks::default());
        let spec = std::sync::Arc::new(MonitorDraft::default().validate().unwrap());
        let (greedy, other) = (
            AccountId::from_bytes([1; 16]),
            AccountId::from_bytes([2; 16]),
        );
        let ask = |account| {
            let (remote, spec) = (std::sync::Arc::clone(&remote), std::sync::Arc::clone(&spec));
            tokio::spawn(async move {
                remote
                    .check(account, &loc("ams"), &spec, "192.0.2.1", 0, None)
                    .await
            })
        };
        let flood: Vec<_> = (0..MAX_WAITING_PER_ACCOUNT).map(|_| ask(greedy)).collect();
        tokio::task::yield_now().await;
        // The greedy account's next check is refused at once; another account's still waits.
        assert_eq!(ask(greedy).await.unwrap(), None);
        let waiting = ask(other);
        tokio::task::yield_now().await;
        let taken = remote.take(&loc("ams"), Some(&[other]));
        assert_eq!(taken.len(), 1, "the other account's check was queued");
        assert!(remote.answer(
            &loc("ams"),
            taken[0].id,
            Facts {
                outcome: vantage_core::health::Outcome::Reached,
                rtt_micros: None
            }
        ));
        assert!(waiting.await.unwrap().is_some());
        drop(flood);
    }
}
