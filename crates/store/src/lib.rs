//! The storage boundary: what the control plane needs from durable storage, and nothing
//! about how it is kept. The SQLite implementation lives in `vantage-store-sqlite`.
#![forbid(unsafe_code)]

pub mod contract;
pub mod memory;
pub mod rows;

use vantage_core::catalog::{Catalog, Change};
use vantage_core::health::engine::Event;
use vantage_core::health::{Location, LocationState, ProbeKey};
pub use vantage_core::notification::{Delivery, NewDelivery};
use vantage_core::{AccountId, PoolId, Timestamp};

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be used at all (unreadable file, newer schema, …). Startup stops here.
    #[error("{0}")]
    Unusable(String),
    /// A uniqueness rule held by the store itself was broken by a concurrent writer (another
    /// process on the same data directory).
    #[error("conflicts with a concurrent change: {0}")]
    Conflict(String),
    /// I/O failed; the change was not made.
    #[error("storage failure: {0}")]
    Io(String),
}

/// Durable storage of the catalog. Implementations are synchronous; async callers run them on
/// a blocking thread.
pub trait Store: Send + Sync + 'static {
    /// Every stored object, as the changes that rebuild the catalog from empty.
    fn load(&self) -> Result<Vec<Change>, StoreError>;

    /// Makes all `changes` durable atomically: all of them or none.
    fn commit(&self, changes: &[Change]) -> Result<(), StoreError>;

    /// A number that changes whenever another process commits to the same store, so a
    /// long-running server can notice edits made by the CLI.
    fn external_version(&self) -> Result<u64, StoreError>;

    /// Commits `changes` only if no other process committed since `external_version` was
    /// `seen` (the version the caller's catalog reflects, against which it validated them);
    /// else nothing is written and the answer is [`StoreError::Conflict`]. A store that
    /// cannot check this inside its transaction commits as [`Store::commit`] does (SQLite: its
    /// one server re-reads the file's version before every write, and the CLI's writes are
    /// rare and unique-keyed).
    fn commit_at(&self, changes: &[Change], seen: u64) -> Result<(), StoreError> {
        let _ = seen;
        self.commit(changes)
    }

    /// Whether [`Store::commit_at`] refuses (a [`StoreError::Conflict`]) a commit when another
    /// process committed since `seen`: then the writer need not ask for the version before
    /// each write, and checks again only when refused.
    fn fences_commits(&self) -> bool {
        false
    }

    /// Every stored per-location health state, to resume verdicts after a restart.
    fn load_health(&self) -> Result<Vec<(ProbeKey, Location, LocationState)>, StoreError>;

    /// Durably records changed location states, the events they caused and the
    /// notifications those call for, atomically: a change is notified exactly when it is
    /// recorded.
    ///
    /// A destination that already has [`PENDING_PER_DESTINATION`] notifications waiting (a dead
    /// or slow receiver) gets no more until it drains: the outbox cannot grow without bound
    /// behind one endpoint. Returns how many alerts were left out for that reason.
    fn record_health(
        &self,
        states: &[(ProbeKey, Location, LocationState)],
        events: &[Event],
        alerts: &[NewDelivery],
    ) -> Result<usize, StoreError>;

    /// Notifications due at `now`, at most one per destination (its oldest due), oldest
    /// first: a destination with a long backlog never hides the others' notifications.
    fn due_deliveries(&self, now: Timestamp, limit: usize) -> Result<Vec<Delivery>, StoreError>;

    /// Claims a due notification for one attempt by this process until `until`: while the
    /// claim holds, another process sharing the store neither sees it due nor claims it (so a
    /// change is delivered by one controller at a time; a claim left by a dead one expires).
    /// `false`: someone else holds it. A store only one process delivers from needs no claims.
    fn claim_delivery(
        &self,
        seq: i64,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        let _ = (seq, now, until);
        Ok(true)
    }

    /// Records an attempt: delivered, or failed with an error and the time of the next
    /// attempt (`None`: give up). It ends the attempt's claim.
    fn delivery_attempted(
        &self,
        seq: i64,
        at: Timestamp,
        outcome: Result<(), (String, Option<Timestamp>)>,
    ) -> Result<(), StoreError>;

    /// An account's notifications, newest first (the delivery log).
    fn deliveries(&self, account: AccountId, limit: usize) -> Result<Vec<Delivery>, StoreError>;

    /// Stored events matching `filter`, oldest first, with their sequence numbers.
    fn events(&self, filter: &EventFilter) -> Result<Vec<(i64, Event)>, StoreError>;

    /// Deletes what `retention` no longer keeps: health events and finished deliveries (sent
    /// or given up) older than its age or beyond its row count, and location states of
    /// targets for which `live` says no (removed origins and monitors) or of `forgotten`
    /// locations.
    fn prune(
        &self,
        retention: &Retention,
        now: Timestamp,
        live: &dyn Fn(&ProbeKey) -> bool,
        forgotten: &[Location],
    ) -> Result<Pruned, StoreError>;

    /// The bytes the store takes on disk (for the `vantage_store_bytes` gauge).
    fn size_bytes(&self) -> Result<u64, StoreError>;

    /// Everything stored, to move it to another store (`vantage store copy`).
    fn export(&self) -> Result<Export, StoreError>;

    /// Writes `data` into this store, which must be empty, in one transaction: all of it or
    /// nothing. Event and outbox sequence numbers are kept.
    fn import(&self, data: &Export) -> Result<(), StoreError>;

    /// Rows held, per table (the object kinds, `location_states`, `health_events`, `outbox`).
    fn counts(&self) -> Result<std::collections::BTreeMap<&'static str, u64>, StoreError>;

    /// Calls `wake` whenever another process may have committed (a notification from the
    /// database), saying what moved, so a controller reloads at once rather than at its next
    /// look ([`Store::external_version`], [`Store::verdicts_since`]), which stays the truth: a
    /// wake-up may be spurious, and a missed one is caught up by that look. Stores without
    /// notifications never call it.
    fn on_external_change(&self, wake: Box<dyn Fn(External) + Send + Sync>) {
        let _ = wake;
    }

    /// Takes or renews the judge lease for `lease_micros` as `holder`, whom other controllers
    /// reach at `address` (to hand it agents' results). Only the holder judges health: once
    /// a store has been asked, [`Store::record_health`] refuses to write for a controller
    /// that does not hold the lease under the epoch it was given, checked inside the write's
    /// own transaction, so a deposed judge's late write fails. A store only one controller
    /// uses has no lease: that controller always judges.
    fn judge_lease(
        &self,
        holder: &str,
        address: &str,
        lease_micros: i64,
    ) -> Result<Lease, StoreError> {
        let _ = (holder, address, lease_micros);
        Ok(Lease::Sole)
    }

    /// Publishes the judge's verdicts to the controllers following it: the latest of the
    /// `changed` pools, and `removed` pools gone. Fenced as [`Store::record_health`] is: only
    /// the lease holder's write lands. A store only one controller uses keeps nothing.
    fn publish_verdicts(
        &self,
        changed: &[vantage_core::health::Decided],
        removed: &[vantage_core::PoolId],
    ) -> Result<(), StoreError> {
        let _ = (changed, removed);
        Ok(())
    }

    /// The published verdicts of every pool whose verdicts changed after sequence number
    /// `seq` (0: all), with the number to ask from next time. Sequence numbers grow with
    /// every publication, so a follower that missed some catches up by asking again.
    fn verdicts_since(
        &self,
        seq: i64,
    ) -> Result<(i64, Vec<vantage_core::health::Decided>), StoreError> {
        Ok((seq, Vec::new()))
    }

    /// The location states written after sequence number `seq` (0: all), with the number to
    /// ask from next time: how a follower keeps the judge's per-location detail without
    /// reading every state again. A store only one controller uses has none to give.
    fn states_since(&self, seq: i64) -> Result<(i64, Vec<StoredState>), StoreError> {
        Ok((seq, Vec::new()))
    }

    /// The installation's secret called `name` when controllers share this store: the one
    /// stored, or `proposed`, stored now if none was (the first controller to ask decides).
    /// `None`: the store is one controller's, which keeps its secrets in its data directory.
    /// Secrets every replica must agree on live here (the key of affinity cookies: a cookie
    /// one replica's edge minted must mean the same origin at another's).
    fn shared_secret(&self, name: &str, proposed: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let _ = (name, proposed);
        Ok(None)
    }

    /// Publishes every probe location's last contact, as the judge knows it, for its
    /// followers (fenced as [`Store::record_health`]). A store only one controller uses keeps
    /// nothing.
    fn publish_contacts(
        &self,
        contacts: &[(Location, vantage_core::health::engine::LocationContact)],
    ) -> Result<(), StoreError> {
        let _ = contacts;
        Ok(())
    }

    /// The contacts the judge published last (none from a store only one controller uses).
    fn contacts(
        &self,
    ) -> Result<Vec<(Location, vantage_core::health::engine::LocationContact)>, StoreError> {
        Ok(Vec::new())
    }

    /// Publishes the pools' RTTs dynamic latency steers by, as the judge measured them, for
    /// its followers (fenced as [`Store::record_health`]). A store only one controller uses
    /// keeps nothing.
    fn publish_rtts(
        &self,
        rtts: &[(vantage_core::PoolId, vantage_core::routing::PoolRtt)],
    ) -> Result<(), StoreError> {
        let _ = rtts;
        Ok(())
    }

    /// The pools' RTTs the judge published last.
    fn rtts(
        &self,
    ) -> Result<Vec<(vantage_core::PoolId, vantage_core::routing::PoolRtt)>, StoreError> {
        Ok(Vec::new())
    }

    /// Builds the catalog from everything stored.
    fn load_catalog(&self) -> Result<Catalog, StoreError> {
        let mut catalog = Catalog::default();
        for change in self.load()? {
            catalog.apply(change);
        }
        Ok(catalog)
    }
}

/// What another process moved (see [`Store::on_external_change`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum External {
    /// The catalog: a command's commit, an import.
    Catalog,
    /// The judge published verdicts or wrote location states.
    Verdicts,
}

/// One location's state on one probe target, as stored.
pub type StoredState = (ProbeKey, Location, LocationState);

/// Who judges health among the controllers sharing a store (see [`Store::judge_lease`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lease {
    /// The store has one controller, which always judges.
    Sole,
    /// The caller holds the lease under `epoch` (which grows with every change of holder).
    Held { epoch: i64 },
    /// Another controller holds it, reachable at `address`.
    Other { holder: String, address: String },
}

/// The kinds of stored objects in load order: referenced kinds before the kinds that
/// reference them (every store keeps and loads them so).
pub const KINDS: [&str; 10] = [
    "accounts",
    "users",
    "tokens",
    "zones",
    "monitors",
    "monitor_groups",
    "pools",
    "load_balancers",
    "webhooks",
    "policies",
];

/// The tables of health and notifications, kept beside the object kinds' tables.
pub const HEALTH_TABLES: [&str; 3] = ["location_states", "health_events", "outbox"];

/// Every table a store holds, as [`Store::counts`] reports them: the object kinds in load
/// order, then [`HEALTH_TABLES`].
pub fn tables() -> impl Iterator<Item = &'static str> {
    KINDS.into_iter().chain(HEALTH_TABLES)
}

/// Everything a store holds (see [`Store::export`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Export {
    /// Every object, as the changes that rebuild the catalog from empty (referenced kinds first).
    pub objects: Vec<Change>,
    pub states: Vec<(ProbeKey, Location, LocationState)>,
    /// With their sequence numbers, oldest first.
    pub events: Vec<(i64, Event)>,
    /// Every notification, delivered, pending or given up, oldest first.
    pub outbox: Vec<OutboxRow>,
}

/// One notification in the outbox, every column of it.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    pub delivery: Delivery,
    /// When it is due next (pending ones).
    pub next_at: Timestamp,
}

/// Notifications waiting for one destination, at most (see [`Store::record_health`]).
pub const PENDING_PER_DESTINATION: usize = 100;

/// How much history is kept: health events and the delivery log each keep rows younger than
/// `max_age_micros`, and at most `max_rows` of them (the newest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub max_age_micros: i64,
    pub max_rows: usize,
}

impl Default for Retention {
    /// 30 days, 100,000 rows of each.
    fn default() -> Self {
        Self {
            max_age_micros: 30 * 86_400 * 1_000_000,
            max_rows: 100_000,
        }
    }
}

/// What one [`Store::prune`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub events: usize,
    pub deliveries: usize,
    pub states: usize,
}

/// Which health events to read back.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventFilter {
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub pools: Option<Vec<PoolId>>,
    /// At most this many, the newest ones.
    pub limit: usize,
}
