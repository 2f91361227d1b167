//! Running a preview: the controller checks a candidate monitor from every probe location
//! and lets a throwaway engine judge the results.

use std::sync::Arc;

use futures_util::future::join_all;
use serde_json::{json, Value};
use vantage_core::choice::Choice;

use vantage_core::health::check::judge;
use vantage_core::health::plan::{HealthPlan, PlannedPool};
use vantage_core::health::{Engine, ProbeKey};
use vantage_core::monitor::MonitorSpec;
use vantage_core::pool::Pool;
use vantage_core::{AccountId, MonitorId};

/// The monitor id a preview's candidate monitor goes by inside its throwaway engine.
const CANDIDATE: MonitorId = MonitorId::from_bytes([0; 16]);

use super::PreviewError;
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
