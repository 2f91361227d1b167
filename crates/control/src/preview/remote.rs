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
/// Checks handed to an agent in one answer at most.
pub const MAX_PER_ANSWER: usize = 500;
/// A location counts as able to run previews this long after its last poll (the long poll
/// is 25 s, so a live agent is always inside it).
const POLLER_FRESH_MICROS: i64 = 60_000_000;
/// How long a check may wait to be taken by its agent, on top of the monitor's own time.
const PICKUP: Duration = Duration::from_secs(30);

struct Waiting {
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
    next: u64,
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

    /// Hands the checks waiting for `location` (at most [`MAX_PER_ANSWER`]) to its agent.
    pub fn take(&self, location: &Location) -> Vec<PreviewCheck> {
        let mut inner = self.inner();
        let Some(queue) = inner.waiting.get_mut(location) else {
            return Vec::new();
        };
        let n = queue.len().min(MAX_PER_ANSWER);
        let taken: Vec<Waiting> = queue.drain(..n).collect();
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
        match inner.handed.get(&id) {
            Some((asked, _)) if asked == location => {}
            _ => return false,
        }
        let Some((_, reply)) = inner.handed.remove(&id) else {
            return false;
        };
        reply.send(facts).is_ok()
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

    /// Asks `location` for one check and waits for its facts: `None` when the location has
    /// too much waiting already, or does not answer within the monitor's time plus
    /// [`PICKUP`].
    pub async fn check(
        &self,
        location: &Location,
        spec: &MonitorSpec,
        address: &str,
        port: u16,
        host: Option<&str>,
    ) -> Option<Facts> {
        let (reply, facts) = oneshot::channel();
        let id = {
            let mut inner = self.inner();
            let id = inner.next;
            inner.next += 1;
            let queue = inner.waiting.entry(location.clone()).or_default();
            if queue.len() >= MAX_WAITING {
                return None;
            }
            queue.push_back(Waiting {
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
        let allowed =
            Duration::from_secs(u64::from(spec.timeout) * (u64::from(spec.retries) + 1)) + PICKUP;
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
            tokio::spawn(
                async move { remote.check(&loc("ams"), &spec, "192.0.2.1", 0, None).await },
            )
        };
        let checks = loop {
            let taken = remote.take(&loc("ams"));
            if !taken.is_empty() {
                break taken;
            }
            tokio::task::yield_now().await;
        };
        assert!(remote.take(&loc("fra")).is_empty());
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
        let got = remote.check(&loc("ams"), &spec, "192.0.2.1", 0, None).await;
        assert_eq!(got, None);
        assert!(remote.take(&loc("ams")).is_empty(), "nothing left waiting");
    }
}
