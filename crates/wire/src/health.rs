//! Health JSON: the pool health response (contract §6), health events, and the verdict
//! fields of pool responses.

use serde_json::{json, Map, Value};
use vantage_core::choice::Choice;
use vantage_core::health::engine::{Event, OriginHealth, PoolHealth};
use vantage_core::health::verdict::pool_verdict;
use vantage_core::health::{LocationState, Verdict};
use vantage_core::pool::Pool;

use crate::time;

/// `"12.1ms"`, as Cloudflare writes round-trip times.
pub fn rtt(micros: u64) -> String {
    format!("{:.1}ms", micros as f64 / 1000.0)
}

fn origin_detail(o: &OriginHealth) -> Value {
    let mut v = json!({"healthy": o.healthy.unwrap_or(false), "failure_reason": o.reason.as_str()});
    if let Some(code) = o.response_code {
        v["response_code"] = json!(code);
    }
    if let Some(r) = o.rtt_micros {
        v["rtt"] = json!(rtt(r));
    }
    v
}

fn location_detail(address: &str, s: &LocationState) -> Value {
    let mut v = json!({"address": address, "healthy": s.verdict});
    if let Some(last) = &s.last {
        v["failure_reason"] = json!(last.reason.as_str());
        if let Some(code) = last.response_code {
            v["response_code"] = json!(code);
        }
        if let Some(r) = last.rtt_micros {
            v["rtt"] = json!(rtt(r));
        }
    }
    if let Some(at) = s.last_at {
        v["checked_on"] = json!(time::format(at));
    }
    v
}

/// The §6 superset: `pop_health.healthy` and `pop_health.origins[].ip` (the overall
/// verdicts), one key per checking region with its origins keyed by address, and the
/// Vantage extension `pop_health.locations`: every probe location's latest result per origin.
pub fn render_pool_health(pool: &Pool, h: &PoolHealth) -> Value {
    let mut pop = Map::new();
    pop.insert("healthy".into(), json!(h.healthy.unwrap_or(false)));
    let enabled: Vec<&OriginHealth> = h.origins.iter().filter(|o| o.enabled).collect();
    pop.insert(
        "origins".into(),
        Value::Array(
            enabled
                .iter()
                .map(|o| {
                    let mut d = origin_detail(o);
                    d["address"] = json!(o.address);
                    json!({"ip": d})
                })
                .collect(),
        ),
    );
    let regions: std::collections::BTreeSet<_> = enabled
        .iter()
        .flat_map(|o| o.regions.keys().copied())
        .collect();
    for region in regions {
        let verdicts: Vec<Verdict> = enabled
            .iter()
            .map(|o| o.regions.get(&region).copied().flatten())
            .collect();
        let healthy = pool_verdict(
            pool.spec.enabled,
            pool.spec.minimum_origins,
            verdicts.iter().copied(),
        );
        let origins: Vec<Value> = enabled
            .iter()
            .zip(&verdicts)
            .map(|(o, v)| {
                let mut d = origin_detail(o);
                d["healthy"] = json!(v.unwrap_or(false));
                if *v != Some(false) {
                    d["failure_reason"] = json!("No failures");
                }
                json!({ o.address.clone(): d })
            })
            .collect();
        pop.insert(
            region.code().into(),
            json!({"healthy": healthy.unwrap_or(false), "origins": origins}),
        );
    }
    let mut locations: Vec<Value> = Vec::new();
    let mut names: Vec<_> = enabled
        .iter()
        .flat_map(|o| o.locations.iter().map(|(l, _)| l.clone()))
        .collect();
    names.sort();
    names.dedup();
    for l in names {
        let origins: Vec<Value> = enabled
            .iter()
            .filter_map(|o| {
                o.locations
                    .iter()
                    .find(|(x, _)| *x == l)
                    .map(|(_, s)| location_detail(&o.address, s))
            })
            .collect();
        locations.push(json!({"region": l.region.code(), "location": l.name, "origins": origins}));
    }
    pop.insert("locations".into(), Value::Array(locations));
    json!({"pool_id": pool.id.to_string(), "pop_health": pop})
}

/// Adds the read-only verdict fields to a rendered pool: `healthy` on the pool and
/// `healthy` + `failure_reason` on its origins, each only once known.
pub fn decorate_pool(rendered: &mut Value, h: &PoolHealth) {
    if let Some(v) = h.healthy {
        rendered["healthy"] = json!(v);
    }
    let Some(origins) = rendered.get_mut("origins").and_then(Value::as_array_mut) else {
        return;
    };
    for (o, health) in origins.iter_mut().zip(&h.origins) {
        if let Some(v) = health.healthy {
            o["healthy"] = json!(v);
            o["failure_reason"] = json!(health.reason.as_str());
        }
    }
}

/// One event in the analytics shape.
pub fn render_event(seq: i64, e: &Event) -> Value {
    json!({
        "id": seq,
        "timestamp": time::format(e.at),
        "pool": {
            "id": e.pool.to_string(),
            "name": e.pool_name,
            "healthy": e.pool_healthy,
            "changed": e.pool_changed,
            "minimum_origins": e.minimum_origins,
        },
        "origins": e.origins.iter().map(|o| json!({
            "name": o.name,
            "address": o.address,
            "ip": o.address,
            "enabled": o.enabled,
            "healthy": o.healthy,
            "changed": true,
            "failure_reason": o.reason.as_str(),
        })).collect::<Vec<_>>(),
    })
}
