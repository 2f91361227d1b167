//! Running a preview: the controller checks a candidate monitor from every probe location
//! and lets a throwaway engine judge the results.

use std::sync::Arc;

use futures_util::stream::{FuturesUnordered, StreamExt};
use serde_json::{json, Value};
use vantage_core::choice::Choice;

use vantage_core::health::check::judge;
use vantage_core::health::plan::{HealthPlan, PlannedCheck, PlannedPool};
use vantage_core::health::{Engine, Location, ProbeKey};
use vantage_core::monitor::MonitorSpec;
use vantage_core::pool::Pool;
use vantage_core::{AccountId, MonitorId};

/// The monitor id a preview's candidate monitor goes by inside its throwaway engine.
const CANDIDATE: MonitorId = MonitorId::from_bytes([0; 16]);

use super::PreviewError;
use crate::controller::Controller;

impl Controller {
    /// Starts `spec` against every enabled origin of `pools`, from every probe location, in
    /// the background, and returns the preview's id at once. Every distinct target is checked
    /// once from every location, all at the same time, each bounded by the monitor's timeout
    /// and retries; as each check ends, a throwaway engine planned with the candidate judges
    /// it and the result readable under the id grows (origins not yet checked are left out).
    pub fn run_preview(
        self: &Arc<Self>,
        account: AccountId,
        spec: MonitorSpec,
        pools: Vec<Pool>,
    ) -> Result<String, PreviewError> {
        // The built-in location, if this controller runs one, and every remote agent that
        // asks for preview checks with a token covering the account.
        let local = self.previewer.get().cloned();
        let mut from: Vec<(Location, bool)> = local
            .iter()
            .flat_map(|r| r.locations())
            .map(|l| (l, false))
            .collect();
        for l in self.remote_previews.locations(account, self.now()) {
            if !from.iter().any(|(x, _)| *x == l) {
                from.push((l, true));
            }
        }
        if from.is_empty() {
            return Err(PreviewError::NoLocations);
        }
        let limits = self.installation();
        let slot =
            self.previews
                .start(account, limits.previews_per_account, limits.previews_total)?;
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
        let candidate = Arc::new(spec);
        let plan = HealthPlan {
            pools: pools
                .iter()
                .map(|p| {
                    let check = PlannedCheck::sole(CANDIDATE, Arc::clone(&candidate));
                    PlannedPool::of(p, vec![check], false)
                })
                .collect(),
        };
        let mut engine = Engine::new(&plan, [], self.now());
        let id = hex::encode(crate::secrets::random_bytes());
        self.previews
            .put(id.clone(), account, self.now(), render(&engine, &pools));
        let st = Arc::clone(self);
        let preview = id.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let spec = &*candidate;
            let (local, st_ref) = (&local, &st);
            let mut checks: FuturesUnordered<_> = targets
                .iter()
                .flat_map(|key| {
                    from.iter().map(move |(l, remote)| async move {
                        let (address, host) = (&key.address, key.host.as_deref());
                        let facts = match (remote, local) {
                            (false, Some(runner)) => {
                                Some(runner.check(l, spec, address, key.port, host).await)
                            }
                            _ => {
                                st_ref
                                    .remote_previews
                                    .check(account, l, spec, address, key.port, host)
                                    .await
                            }
                        };
                        (key, l, facts.map(|f| judge(spec, &f)))
                    })
                })
                .collect();
            while let Some((key, location, result)) = checks.next().await {
                // A remote location that did not answer in time says nothing.
                let Some(result) = result else { continue };
                engine.record(location, key, result, st.now());
                st.previews
                    .put(preview.clone(), account, st.now(), render(&engine, &pools));
            }
        });
        Ok(id)
    }

    /// The checks previews ask of remote agents (the agent protocol's preview endpoints).
    pub fn remote_previews(&self) -> &super::remote::RemoteChecks {
        &self.remote_previews
    }

    pub fn preview_result(&self, id: &str, account: AccountId) -> Option<Value> {
        self.previews.get(id, account)
    }
}

/// Cloudflare's preview shape, from the engine's view: per pool its verdict once known and, per
/// origin checked so far, the verdict with the reason, response code and round trip.
fn render(engine: &Engine, pools: &[Pool]) -> Value {
    let view = engine.view();
    let mut result = serde_json::Map::new();
    for pool in pools {
        let (Some(verdicts), Some(detail)) = (view.pool(pool.id), engine.pool_health(pool.id))
        else {
            continue;
        };
        let origins: Vec<Value> = verdicts
            .origins
            .iter()
            .zip(&detail.origins)
            .filter(|(v, d)| v.enabled && !d.locations.is_empty())
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
                // A Vantage extension: where the candidate was checked from, and what each
                // location saw.
                o["locations"] = d
                    .locations
                    .iter()
                    .map(|(l, s)| {
                        json!({
                            "region": l.region.code(),
                            "location": l.name,
                            "healthy": s.verdict,
                            "failure_reason": s.last.as_ref().map(|r| r.reason.as_str()),
                        })
                    })
                    .collect();
                json!({ v.address.to_string(): o })
            })
            .collect();
        // Until an origin has been judged the pool's verdict is unknown: left out (as the
        // SDKs' optional `healthy`), never "unhealthy".
        let mut entry = json!({ "origins": origins });
        if let Some(healthy) = verdicts.healthy.known() {
            entry["healthy"] = json!(healthy);
        }
        result.insert(pool.id.to_string(), entry);
    }
    Value::Object(result)
}
