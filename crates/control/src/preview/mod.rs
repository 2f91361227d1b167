//! Previews: run a candidate monitor once against a set of origins, from every probe
//! location, in the background, and keep what is known so far under an id.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use vantage_core::health::{Facts, Location};
use vantage_core::monitor::MonitorSpec;
use vantage_core::tally::Tally;
use vantage_core::{AccountId, Timestamp};

/// One check, with the monitor given; the binary provides it from its probe locations.
pub trait PreviewRunner: Send + Sync {
    /// The locations a preview runs from.
    fn locations(&self) -> Vec<Location>;

    /// Runs one check of `spec` against an origin from `location`.
    fn check<'a>(
        &'a self,
        location: &'a Location,
        spec: &'a MonitorSpec,
        address: &'a str,
        port: u16,
        host: Option<&'a str>,
    ) -> Pin<Box<dyn Future<Output = Facts> + Send + 'a>>;
}

/// How long a preview's result stays readable, and how many are kept at most.
const KEEP_MICROS: i64 = 3600 * 1_000_000;
const KEEP_AT_MOST: usize = 1000;

/// Why a preview did not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreviewError {
    /// This controller runs no probe location to preview from.
    NoLocations,
    /// As many previews as allowed are running (for the account, or in all); try again in
    /// `retry_after` seconds.
    Busy { message: String, retry_after: u64 },
}

#[derive(Debug, Default)]
pub(crate) struct Previews {
    results: Mutex<HashMap<String, (AccountId, Timestamp, Value)>>,
    /// Previews running now, per account: each holds sockets for every origin × location,
    /// so one account's burst must not exhaust the descriptors everyone's probes need.
    running: Arc<Mutex<Tally<AccountId>>>,
}

/// A running preview's place, held by its background task; freed when the task ends.
#[derive(Debug)]
pub(crate) struct Slot {
    running: Arc<Mutex<Tally<AccountId>>>,
    account: AccountId,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running.remove_one(&self.account);
    }
}

impl Previews {
    /// A place for one more preview of `account`, or 429 when the account or the
    /// installation already runs as many as allowed.
    pub(crate) fn start(
        &self,
        account: AccountId,
        per_account: usize,
        total: usize,
    ) -> Result<Slot, PreviewError> {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let mine = running.get(&account);
        if mine >= per_account {
            return Err(PreviewError::Busy {
                message: format!("this account already runs {mine} previews (at most {per_account} at once); retry when one ends"),
                retry_after: 5,
            });
        }
        if running.total() >= total {
            return Err(PreviewError::Busy {
                message: format!(
                    "this installation already runs {total} previews at once; retry shortly"
                ),
                retry_after: 5,
            });
        }
        running.add(account);
        Ok(Slot {
            running: Arc::clone(&self.running),
            account,
        })
    }

    pub(crate) fn put(&self, id: String, account: AccountId, now: Timestamp, result: Value) {
        let mut map = self.results.lock().unwrap_or_else(|p| p.into_inner());
        // A running preview's newer partial result replaces its older one in place.
        if let Some(entry) = map.get_mut(&id) {
            entry.2 = result;
            return;
        }
        map.retain(|_, (_, at, _)| now.unix_micros() - at.unix_micros() < KEEP_MICROS);
        if map.len() >= KEEP_AT_MOST {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, (_, at, _))| *at)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(id, (account, now, result));
    }

    /// The result of a preview run in `account`.
    pub(crate) fn get(&self, id: &str, account: AccountId) -> Option<Value> {
        let map = self.results.lock().unwrap_or_else(|p| p.into_inner());
        map.get(id)
            .filter(|(a, _, _)| *a == account)
            .map(|(_, _, v)| v.clone())
    }
}

pub mod remote;
mod run;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_are_bounded_per_account_and_in_all() {
        let p = Previews::default();
        let (a, b, c) = (
            AccountId::from_bytes([1; 16]),
            AccountId::from_bytes([2; 16]),
            AccountId::from_bytes([3; 16]),
        );
        let a1 = p.start(a, 2, 3).unwrap();
        let _a2 = p.start(a, 2, 3).unwrap();
        let refused = p.start(a, 2, 3).unwrap_err();
        assert!(matches!(refused, PreviewError::Busy { retry_after: 5, .. }));
        let _b1 = p.start(b, 2, 3).unwrap();
        assert!(
            matches!(p.start(c, 2, 3), Err(PreviewError::Busy { .. })),
            "the total is reached"
        );
        drop(a1);
        assert!(p.start(c, 2, 3).is_ok(), "an ended preview frees its place");
    }
}
