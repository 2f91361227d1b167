//! Previews: run a candidate monitor once against a set of origins, from every probe
//! location, and keep the result for a while under an id.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use serde_json::Value;
use vantage_core::health::{Facts, Location};
use vantage_core::monitor::MonitorSpec;
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
    running: Mutex<HashMap<AccountId, usize>>,
}

/// A running preview's place; freed when dropped (also when the client goes away).
#[derive(Debug)]
pub(crate) struct Slot<'a> {
    previews: &'a Previews,
    account: AccountId,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut running = self
            .previews
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = running.get_mut(&self.account) {
            *n -= 1;
            if *n == 0 {
                running.remove(&self.account);
            }
        }
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
    ) -> Result<Slot<'_>, PreviewError> {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let mine = running.get(&account).copied().unwrap_or(0);
        if mine >= per_account {
            return Err(PreviewError::Busy {
                message: format!("this account already runs {mine} previews (at most {per_account} at once); retry when one ends"),
                retry_after: 5,
            });
        }
        if running.values().sum::<usize>() >= total {
            return Err(PreviewError::Busy {
                message: format!(
                    "this installation already runs {total} previews at once; retry shortly"
                ),
                retry_after: 5,
            });
        }
        *running.entry(account).or_default() += 1;
        Ok(Slot {
            previews: self,
            account,
        })
    }

    pub(crate) fn put(&self, id: String, account: AccountId, now: Timestamp, result: Value) {
        let mut map = self.results.lock().unwrap_or_else(|p| p.into_inner());
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

use futures_util::future::join_all;
use serde_json::json;
use std::sync::Arc;
use vantage_core::choice::Choice;

use vantage_core::health::check::judge;
use vantage_core::health::plan::{HealthPlan, PlannedPool};
use vantage_core::health::{Engine, ProbeKey};
use vantage_core::pool::Pool;
use vantage_core::MonitorId;

/// The monitor id a preview's candidate monitor goes by inside its throwaway engine.
const CANDIDATE: MonitorId = MonitorId::from_bytes([0; 16]);

use crate::controller::Controller;

impl Controller {
    /// Runs `spec` once against every enabled origin of `pools`, from every probe location,
    /// and stores the result. Returns the preview id. Every check is bounded by the monitor's
    /// timeout and retries, and they all run at once.
    pub async fn run_preview(
        &self,
        account: AccountId,
        spec: MonitorSpec,
        pools: Vec<Pool>,
    ) -> Result<String, PreviewError> {
        let runner = self.previewer.get().ok_or(PreviewError::NoLocations)?;
        let limits = self.installation();
        let _slot =
            self.previews
                .start(account, limits.previews_per_account, limits.previews_total)?;
        let locations = runner.locations();
        let spec = &spec;
        // Every distinct target of the candidate pools, checked once from every location.
        let mut targets: Vec<ProbeKey> = pools
            .iter()
            .filter(|p| p.spec.enabled)
            .flat_map(|p| p.spec.origins.iter().filter(|o| o.enabled))
            .map(|o| ProbeKey {
                monitor: CANDIDATE,
                address: o.address.clone(),
                port: o.port,
                host: o.host.clone(),
            })
            .collect();
        targets.sort();
        targets.dedup();
        let checks = targets.iter().flat_map(|key| {
            locations.iter().map(move |l| async move {
                let facts = runner
                    .check(l, spec, &key.address, key.port, key.host.as_deref())
                    .await;
                (key, l, judge(spec, &facts))
            })
        });
        let judged = join_all(checks).await;
        // The verdicts are the engine's, as for any pool: one fresh engine judges the results.
        let candidate = Arc::new(spec.clone());
        let plan = HealthPlan {
            pools: pools
                .iter()
                .map(|p| PlannedPool::of(p, Some((CANDIDATE, Arc::clone(&candidate)))))
                .collect(),
        };
        let now = self.now();
        let mut engine = Engine::new(&plan, [], now);
        for (key, location, result) in judged {
            engine.record(location, key, result, now);
        }
        let view = engine.view();
        let mut result = serde_json::Map::new();
        for pool in &pools {
            let (Some(verdicts), Some(detail)) = (view.pool(pool.id), engine.pool_health(pool.id))
            else {
                continue;
            };
            let origins_json: Vec<Value> = verdicts
                .origins
                .iter()
                .zip(&detail.origins)
                .filter(|(v, _)| v.enabled)
                .map(|(v, d)| {
                    let mut o = json!({
                        "healthy": v.healthy.is_healthy(),
                        "failure_reason": v.reason.as_str(),
                    });
                    if let Some(code) = d.response_code {
                        o["response_code"] = json!(code);
                    }
                    if let Some(rtt) = d.rtt_micros {
                        o["rtt"] = json!(vantage_wire::health::rtt(rtt));
                    }
                    json!({ v.address.clone(): o })
                })
                .collect();
            result.insert(
                pool.id.to_string(),
                json!({"healthy": verdicts.healthy.is_healthy(), "origins": origins_json}),
            );
        }
        let id = hex::encode(crate::secrets::random_bytes());
        self.previews
            .put(id.clone(), account, self.now(), Value::Object(result));
        Ok(id)
    }

    pub fn preview_result(&self, id: &str, account: AccountId) -> Option<Value> {
        self.previews.get(id, account)
    }
}

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
