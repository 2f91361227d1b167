//! Health JSON: the pool health response (contract §6), health events, and the verdict
//! fields of pool responses.

use serde_json::{json, Map, Value};
use vantage_core::choice::Choice;
use vantage_core::health::engine::{Event, OriginHealth, PoolHealth};
use vantage_core::health::{LocationState, PoolVerdicts, Verdict};
use vantage_core::pool::Pool;

use crate::time;

/// `"12.1ms"`, as Cloudflare writes round-trip times.
pub fn rtt(micros: u64) -> String {
    format!("{:.1}ms", micros as f64 / 1000.0)
}

/// `healthy` and `failure_reason` for a verdict: an origin not yet judged is `healthy: null`
/// with no failure reason, never "unhealthy with no failures".
fn verdict_fields(v: &mut Value, healthy: Verdict, reason: &str) {
    v["healthy"] = json!(healthy);
    if healthy.is_known() {
        v["failure_reason"] = json!(reason);
    }
}

fn origin_detail(o: &OriginHealth) -> Value {
    let mut v = json!({});
    verdict_fields(&mut v, o.healthy, o.reason.as_str());
    if let Some(code) = o.response_code {
        v["response_code"] = json!(code);
    }
    if let Some(r) = o.rtt_micros {
        v["rtt"] = json!(rtt(r));
    }
    v
}

/// A Vantage extension for pools judged by a monitor group: each member's verdict on the
/// origin, so which member failed it can be seen.
fn members_detail(o: &OriginHealth) -> Value {
    Value::Array(
        o.members
            .iter()
            .map(|m| {
                let mut v = json!({
                    "monitor_id": m.monitor.to_string(),
                    "must_be_healthy": m.role.must_be_healthy,
                    "monitoring_only": m.role.monitoring_only,
                });
                verdict_fields(&mut v, m.healthy, m.reason.as_str());
                if let Some(code) = m.response_code {
                    v["response_code"] = json!(code);
                }
                if let Some(r) = m.rtt_micros {
                    v["rtt"] = json!(rtt(r));
                }
                v
            })
            .collect(),
    )
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
/// An origin of a pool judged by a monitor group also carries `members`: each member's own
/// verdict.
pub fn render_pool_health(pool: &Pool, h: &PoolHealth) -> Value {
    let mut pop = Map::new();
    pop.insert("healthy".into(), json!(h.healthy.is_healthy()));
    let enabled: Vec<&OriginHealth> = h.origins.iter().filter(|o| o.enabled).collect();
    pop.insert(
        "origins".into(),
        Value::Array(
            enabled
                .iter()
                .map(|o| {
                    let mut d = origin_detail(o);
                    d["address"] = json!(o.address);
                    if !o.members.is_empty() {
                        d["members"] = members_detail(o);
                    }
                    json!({"ip": d})
                })
                .collect(),
        ),
    );
    for (region, healthy) in &h.regions {
        let verdicts: Vec<Verdict> = enabled
            .iter()
            .map(|o| o.regions.get(region).copied().unwrap_or_default())
            .collect();
        let origins: Vec<Value> = enabled
            .iter()
            .zip(&verdicts)
            .map(|(o, v)| {
                let mut d = origin_detail(o);
                let reason = if v.is_unhealthy() {
                    o.reason.as_str()
                } else {
                    "No failures"
                };
                if d.get("failure_reason").is_some() {
                    d.as_object_mut().map(|m| m.remove("failure_reason"));
                }
                verdict_fields(&mut d, *v, reason);
                json!({ o.address.clone(): d })
            })
            .collect();
        pop.insert(
            region.code().into(),
            json!({"healthy": healthy, "origins": origins}),
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
pub fn decorate_pool(rendered: &mut Value, h: &PoolVerdicts) {
    if let Some(v) = h.healthy.known() {
        rendered["healthy"] = json!(v);
    }
    let Some(origins) = rendered.get_mut("origins").and_then(Value::as_array_mut) else {
        return;
    };
    for (o, health) in origins.iter_mut().zip(&h.origins) {
        if let Some(v) = health.healthy.known() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use vantage_core::health::FailureReason;
    use vantage_core::region::RegionCode;

    fn origin(address: &str, healthy: Verdict, reason: FailureReason) -> OriginHealth {
        OriginHealth {
            name: address.into(),
            address: address.into(),
            enabled: true,
            healthy,
            reason,
            response_code: None,
            rtt_micros: None,
            regions: [(RegionCode::Weu, healthy)].into(),
            locations: vec![],
            members: vec![],
        }
    }

    #[test]
    fn an_origin_not_yet_judged_is_unknown_not_unhealthy() {
        let (spec, _) = vantage_core::pool::PoolDraft {
            name: Some("p".into()),
            origins: Some(vec![vantage_core::pool::OriginDraft {
                name: Some("o".into()),
                address: Some("192.0.2.1".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }
        .validate()
        .unwrap_or_else(|v| panic!("{v:?}"));
        let pool = Pool {
            id: vantage_core::PoolId::from_bytes([1; 16]),
            account: vantage_core::AccountId::from_bytes([2; 16]),
            spec,
            created_on: vantage_core::Timestamp::from_unix_micros(0),
            modified_on: vantage_core::Timestamp::from_unix_micros(0),
            disabled_at: None,
        };
        let h = PoolHealth {
            pool: pool.id,
            healthy: Verdict::Healthy,
            regions: [(RegionCode::Weu, Verdict::Healthy)].into(),
            origins: vec![
                origin("192.0.2.1", Verdict::Healthy, FailureReason::None),
                origin("192.0.2.2", Verdict::Unknown, FailureReason::None),
                origin("192.0.2.3", Verdict::Unhealthy, FailureReason::TcpTimeout),
            ],
        };
        let v = render_pool_health(&pool, &h);
        let overall = &v["pop_health"]["origins"];
        assert_eq!(overall[0]["ip"]["healthy"], true);
        assert_eq!(overall[1]["ip"]["healthy"], Value::Null, "{v}");
        assert!(overall[1]["ip"].get("failure_reason").is_none(), "{v}");
        assert_eq!(overall[2]["ip"]["failure_reason"], "TCP timeout");
        let weu = &v["pop_health"]["WEU"]["origins"];
        assert_eq!(weu[1]["192.0.2.2"]["healthy"], Value::Null, "{v}");
        assert!(weu[1]["192.0.2.2"].get("failure_reason").is_none(), "{v}");
        assert_eq!(weu[0]["192.0.2.1"]["failure_reason"], "No failures");
    }
}
