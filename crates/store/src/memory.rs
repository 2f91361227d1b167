//! A [`Store`] in memory, for tests of the layers above storage (the API in-process, the
//! controller's drivers): the same contract as SQLite — a commit is all or nothing, pending
//! deliveries are capped per destination, retention deletes what it must — without a file.
//! Nothing survives the value.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use vantage_core::catalog::Change;
use vantage_core::health::engine::Event;
use vantage_core::health::{Location, LocationState, ProbeKey};
use vantage_core::{AccountId, Timestamp};

use crate::{
    Delivery, EventFilter, NewDelivery, Pruned, Retention, Store, StoreError, KINDS,
    PENDING_PER_DESTINATION,
};

#[derive(Debug, Default)]
struct Inner {
    /// The latest `Put` of each object, by kind and id.
    objects: BTreeMap<(usize, String), Change>,
    states: BTreeMap<(ProbeKey, Location), LocationState>,
    events: Vec<(i64, Event)>,
    /// Each delivery with the time of its next attempt.
    outbox: Vec<(Delivery, Timestamp)>,
    next_seq: i64,
}

#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    /// Catalog transactions committed, and whether commits fail (for tests of group commit).
    commits: AtomicUsize,
    refusing: AtomicBool,
    /// Health transactions written (for tests of their batching).
    health_writes: AtomicUsize,
}

/// Where a change lands: its kind's index, the object's id, and whether it is kept.
fn slot(change: &Change) -> Result<(usize, String, bool), StoreError> {
    let kind = |name: &str| KINDS.iter().position(|k| *k == name).unwrap_or(0);
    Ok(match crate::rows::encode(change)? {
        crate::rows::RowWrite::Put { kind: k, id, .. } => (kind(k), id, true),
        crate::rows::RowWrite::Delete { kind: k, id } => (kind(k), id, false),
    })
}

impl MemoryStore {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many catalog transactions were committed (empty ones are not transactions).
    pub fn commits(&self) -> usize {
        self.commits.load(Ordering::SeqCst)
    }

    /// How many health transactions were written ([`Store::record_health`] calls).
    pub fn health_writes(&self) -> usize {
        self.health_writes.load(Ordering::SeqCst)
    }

    /// Makes every catalog commit and health write fail, as a lost disk would, until told
    /// otherwise.
    pub fn refuse_writes(&self, refuse: bool) {
        self.refusing.store(refuse, Ordering::SeqCst);
    }
}

fn pending(d: &Delivery) -> bool {
    d.delivered_at.is_none() && !d.failed
}

impl Store for MemoryStore {
    fn load(&self) -> Result<Vec<Change>, StoreError> {
        Ok(self.inner().objects.values().cloned().collect())
    }

    fn commit(&self, changes: &[Change]) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        if self.refusing.load(Ordering::SeqCst) {
            return Err(StoreError::Io("commits are refused (a test)".into()));
        }
        // Under one lock: all of them or, since nothing here can fail half-way, none.
        let mut inner = self.inner();
        let slots = changes.iter().map(slot).collect::<Result<Vec<_>, _>>()?;
        for (change, (kind, id, keep)) in changes.iter().zip(slots) {
            if keep {
                inner.objects.insert((kind, id), change.clone());
            } else {
                inner.objects.remove(&(kind, id));
            }
        }
        self.commits.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn external_version(&self) -> Result<u64, StoreError> {
        // Only this process writes it.
        Ok(0)
    }

    fn load_health(&self) -> Result<Vec<(ProbeKey, Location, LocationState)>, StoreError> {
        Ok(self
            .inner()
            .states
            .iter()
            .map(|((k, l), s)| (k.clone(), l.clone(), s.clone()))
            .collect())
    }

    fn record_health(
        &self,
        states: &[(ProbeKey, Location, LocationState)],
        events: &[Event],
        alerts: &[NewDelivery],
    ) -> Result<usize, StoreError> {
        if self.refusing.load(Ordering::SeqCst) {
            return Err(StoreError::Io("health writes are refused (a test)".into()));
        }
        self.health_writes.fetch_add(1, Ordering::SeqCst);
        let mut inner = self.inner();
        for (k, l, s) in states {
            inner.states.insert((k.clone(), l.clone()), s.clone());
        }
        for e in events {
            inner.next_seq += 1;
            let seq = inner.next_seq;
            inner.events.push((seq, e.clone()));
        }
        let mut left_out = 0;
        for a in alerts {
            let waiting = inner
                .outbox
                .iter()
                .filter(|(d, _)| d.item.webhook == a.webhook && pending(d))
                .count();
            if waiting >= PENDING_PER_DESTINATION {
                left_out += 1;
                continue;
            }
            inner.next_seq += 1;
            let seq = inner.next_seq;
            inner.outbox.push((
                Delivery {
                    seq,
                    item: a.clone(),
                    attempts: 0,
                    delivered_at: None,
                    failed: false,
                    last_error: None,
                    last_attempt: None,
                },
                a.at,
            ));
        }
        Ok(left_out)
    }

    fn due_deliveries(&self, now: Timestamp, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        let inner = self.inner();
        let mut first_due: BTreeMap<vantage_core::WebhookId, &Delivery> = BTreeMap::new();
        for (d, next) in inner.outbox.iter().filter(|(d, _)| pending(d)) {
            if *next <= now {
                first_due.entry(d.item.webhook).or_insert(d);
            }
        }
        let mut due: Vec<Delivery> = first_due.into_values().cloned().collect();
        due.sort_by_key(|d| d.seq);
        due.truncate(limit);
        Ok(due)
    }

    fn delivery_attempted(
        &self,
        seq: i64,
        at: Timestamp,
        outcome: Result<(), (String, Option<Timestamp>)>,
    ) -> Result<(), StoreError> {
        let mut inner = self.inner();
        if let Some((d, next_at)) = inner.outbox.iter_mut().find(|(d, _)| d.seq == seq) {
            d.attempts += 1;
            d.last_attempt = Some(at);
            match outcome {
                Ok(()) => {
                    d.delivered_at = Some(at);
                    d.last_error = None;
                }
                Err((error, next)) => {
                    d.last_error = Some(error);
                    match next {
                        Some(next) => *next_at = next,
                        None => d.failed = true,
                    }
                }
            }
        }
        Ok(())
    }

    fn deliveries(&self, account: AccountId, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        Ok(self
            .inner()
            .outbox
            .iter()
            .rev()
            .filter(|(d, _)| d.item.account == account)
            .take(limit)
            .map(|(d, _)| d.clone())
            .collect())
    }

    fn events(&self, filter: &EventFilter) -> Result<Vec<(i64, Event)>, StoreError> {
        let inner = self.inner();
        let matching: Vec<(i64, Event)> = inner
            .events
            .iter()
            .filter(|(_, e)| filter.since.is_none_or(|s| e.at >= s))
            .filter(|(_, e)| filter.until.is_none_or(|u| e.at <= u))
            .filter(|(_, e)| filter.pools.as_ref().is_none_or(|p| p.contains(&e.pool)))
            .cloned()
            .collect();
        let skip = matching.len().saturating_sub(filter.limit);
        Ok(matching.into_iter().skip(skip).collect())
    }

    fn prune(
        &self,
        retention: &Retention,
        now: Timestamp,
        live: &dyn Fn(&ProbeKey) -> bool,
        forgotten: &[Location],
    ) -> Result<Pruned, StoreError> {
        let before = now.unix_micros().saturating_sub(retention.max_age_micros);
        let mut inner = self.inner();
        let n = inner.events.len();
        let keep_from = n.saturating_sub(retention.max_rows);
        let mut i = 0;
        inner.events.retain(|(_, e)| {
            i += 1;
            i > keep_from && e.at.unix_micros() >= before
        });
        let events = n - inner.events.len();
        let finished = inner.outbox.iter().filter(|(d, _)| !pending(d)).count();
        let mut seen_finished = 0;
        let m = inner.outbox.len();
        inner.outbox.retain(|(d, _)| {
            if pending(d) {
                return true;
            }
            seen_finished += 1;
            let recent = d.last_attempt.unwrap_or(d.item.at).unix_micros() >= before;
            recent && finished - seen_finished < retention.max_rows
        });
        let deliveries = m - inner.outbox.len();
        let s = inner.states.len();
        inner
            .states
            .retain(|(k, l), _| live(k) && !forgotten.contains(l));
        Ok(Pruned {
            events,
            deliveries,
            states: s - inner.states.len(),
        })
    }

    fn export(&self) -> Result<crate::Export, StoreError> {
        let inner = self.inner();
        Ok(crate::Export {
            objects: inner.objects.values().cloned().collect(),
            states: inner
                .states
                .iter()
                .map(|((k, l), s)| (k.clone(), l.clone(), s.clone()))
                .collect(),
            events: inner.events.clone(),
            outbox: inner
                .outbox
                .iter()
                .map(|(d, next_at)| crate::OutboxRow {
                    delivery: d.clone(),
                    next_at: *next_at,
                })
                .collect(),
        })
    }

    fn import(&self, data: &crate::Export) -> Result<(), StoreError> {
        let mut inner = self.inner();
        if !inner.objects.is_empty()
            || !inner.states.is_empty()
            || !inner.events.is_empty()
            || !inner.outbox.is_empty()
        {
            return Err(StoreError::Conflict("the target store is not empty".into()));
        }
        let slots = data
            .objects
            .iter()
            .map(slot)
            .collect::<Result<Vec<_>, _>>()?;
        for (change, (kind, id, _)) in data.objects.iter().zip(slots) {
            inner.objects.insert((kind, id), change.clone());
        }
        for (k, l, st) in &data.states {
            inner.states.insert((k.clone(), l.clone()), st.clone());
        }
        inner.events = data.events.clone();
        inner.outbox = data
            .outbox
            .iter()
            .map(|r| (r.delivery.clone(), r.next_at))
            .collect();
        let top = data
            .events
            .iter()
            .map(|(seq, _)| *seq)
            .chain(data.outbox.iter().map(|r| r.delivery.seq))
            .max()
            .unwrap_or(0);
        inner.next_seq = inner.next_seq.max(top);
        Ok(())
    }

    fn counts(&self) -> Result<BTreeMap<&'static str, u64>, StoreError> {
        let inner = self.inner();
        let mut out: BTreeMap<&'static str, u64> = crate::tables().map(|t| (t, 0)).collect();
        for (kind, _) in inner.objects.keys() {
            *out.entry(KINDS[*kind]).or_default() += 1;
        }
        out.insert("location_states", inner.states.len() as u64);
        out.insert("health_events", inner.events.len() as u64);
        out.insert("outbox", inner.outbox.len() as u64);
        Ok(out)
    }

    fn size_bytes(&self) -> Result<u64, StoreError> {
        Ok(0)
    }
}
