//! The storage boundary: what the control plane needs from durable storage, and nothing
//! about how it is kept. The SQLite implementation lives in `vantage-store-sqlite`.
#![forbid(unsafe_code)]

use vantage_core::catalog::{Catalog, Change};
use vantage_core::health::engine::Event;
use vantage_core::health::{Location, LocationState, ProbeKey};
use vantage_core::{AccountId, PolicyId, PoolId, Timestamp, WebhookId};

#[derive(Debug, thiserror::Error)]
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

    /// Every stored per-location health state, to resume verdicts after a restart.
    fn load_health(&self) -> Result<Vec<(ProbeKey, Location, LocationState)>, StoreError>;

    /// Durably records changed location states, the events they caused and the
    /// notifications those call for, atomically: a change is notified exactly when it is
    /// recorded.
    fn record_health(
        &self,
        states: &[(ProbeKey, Location, LocationState)],
        events: &[Event],
        alerts: &[NewDelivery],
    ) -> Result<(), StoreError>;

    /// Notifications not yet delivered whose next attempt is due at `now`, oldest first.
    fn due_deliveries(&self, now: Timestamp, limit: usize) -> Result<Vec<Delivery>, StoreError>;

    /// Records an attempt: delivered, or failed with an error and the time of the next
    /// attempt (`None`: give up).
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

    /// Builds the catalog from everything stored.
    fn load_catalog(&self) -> Result<Catalog, StoreError> {
        let mut catalog = Catalog::default();
        for change in self.load()? {
            catalog.apply(change);
        }
        Ok(catalog)
    }
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

/// A notification to deliver, as recorded with the event that called for it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDelivery {
    pub account: AccountId,
    pub policy: PolicyId,
    pub policy_name: String,
    pub webhook: WebhookId,
    /// The JSON body, exactly as it will be sent.
    pub payload: String,
    pub at: Timestamp,
}

/// A notification and what became of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub seq: i64,
    pub item: NewDelivery,
    pub attempts: u32,
    pub delivered_at: Option<Timestamp>,
    /// Given up on after its last attempt.
    pub failed: bool,
    pub last_error: Option<String>,
    pub last_attempt: Option<Timestamp>,
}
