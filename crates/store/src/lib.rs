//! The storage boundary: what the control plane needs from durable storage, and nothing
//! about how it is kept. The SQLite implementation lives in `vantage-store-sqlite`.
#![forbid(unsafe_code)]

use vantage_core::catalog::{Catalog, Change};

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

    /// Builds the catalog from everything stored.
    fn load_catalog(&self) -> Result<Catalog, StoreError> {
        let mut catalog = Catalog::default();
        for change in self.load()? {
            catalog.apply(change);
        }
        Ok(catalog)
    }
}
