//! The storage boundary: what the control plane needs from durable storage, and nothing
//! about how it is kept. The SQLite implementation lives in `vantage-store-sqlite`.
#![forbid(unsafe_code)]

use vantage_core::catalog::{Catalog, Change};
use vantage_core::health::engine::Event;
use vantage_core::health::{Location, LocationState, ProbeKey};
use vantage_core::{PoolId, Timestamp};

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

    /// Durably records changed location states and the events they caused, atomically.
    fn record_health(
        &self,
        states: &[(ProbeKey, Location, LocationState)],
        events: &[Event],
    ) -> Result<(), StoreError>;

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
