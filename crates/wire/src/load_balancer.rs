//! Load balancer JSON ⇄ core load balancer.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Value};
use vantage_core::choice::Choice;
use vantage_core::load_balancer::{
    AffinityAttributesDraft, LoadBalancer, LoadBalancerDraft, LoadBalancerSpec,
};
use vantage_core::zone::Zone;

use crate::error::ApiError;
use crate::number::{whole, Whole};
use crate::time;

type PoolMap = BTreeMap<String, Vec<String>>;

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct RandomSteeringIn {
    default_weight: Option<f64>,
    pool_weights: Option<BTreeMap<String, f64>>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct AdaptiveRoutingIn {
    failover_across_pools: Option<bool>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct LocationStrategyIn {
    mode: Option<String>,
    prefer_ecs: Option<String>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct AffinityAttributesIn {
    samesite: Option<String>,
    secure: Option<String>,
    zero_downtime_failover: Option<String>,
    drain_duration: Option<Whole>,
    headers: Option<Vec<String>>,
    require_all_headers: Option<bool>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct LoadBalancerIn {
    name: Option<String>,
    default_pools: Option<Vec<String>>,
    fallback_pool: Option<String>,
    region_pools: Option<PoolMap>,
    country_pools: Option<PoolMap>,
    pop_pools: Option<PoolMap>,
    steering_policy: Option<String>,
    random_steering: Option<RandomSteeringIn>,
    adaptive_routing: Option<AdaptiveRoutingIn>,
    location_strategy: Option<LocationStrategyIn>,
    session_affinity: Option<String>,
    session_affinity_ttl: Option<Whole>,
    session_affinity_attributes: Option<AffinityAttributesIn>,
    proxied: Option<bool>,
    ttl: Option<Whole>,
    enabled: Option<bool>,
    rules: Option<Vec<serde_json::Map<String, Value>>>,
    description: Option<String>,
}

impl LoadBalancerIn {
    pub fn into_draft(self) -> Result<LoadBalancerDraft, ApiError> {
        let rules = match self.rules {
            None => None,
            Some(r) => Some(serde_json::to_string(&r).map_err(|e| ApiError::field("/rules", e))?),
        };
        let rs = self.random_steering.unwrap_or_default();
        let ls = self.location_strategy.unwrap_or_default();
        Ok(LoadBalancerDraft {
            name: self.name,
            default_pools: self.default_pools,
            fallback_pool: self.fallback_pool,
            region_pools: self.region_pools,
            country_pools: self.country_pools,
            pop_pools: self.pop_pools,
            steering_policy: self.steering_policy,
            random_default_weight: rs.default_weight,
            random_pool_weights: rs.pool_weights,
            failover_across_pools: self.adaptive_routing.and_then(|a| a.failover_across_pools),
            location_mode: ls.mode,
            prefer_ecs: ls.prefer_ecs,
            session_affinity: self.session_affinity,
            session_affinity_ttl: whole(self.session_affinity_ttl),
            session_affinity_attributes: self.session_affinity_attributes.map(|a| {
                AffinityAttributesDraft {
                    samesite: a.samesite,
                    secure: a.secure,
                    zero_downtime_failover: a.zero_downtime_failover,
                    drain_duration: whole(a.drain_duration),
                    headers: a.headers,
                    require_all_headers: a.require_all_headers,
                }
            }),
            proxied: self.proxied,
            ttl: whole(self.ttl),
            enabled: self.enabled,
            rules,
            description: self.description,
        })
    }
}

fn ids<T: ToString>(list: &[T]) -> Vec<String> {
    list.iter().map(ToString::to_string).collect()
}

fn pool_map<K: ToString, P: ToString>(m: &BTreeMap<K, Vec<P>>) -> Value {
    Value::Object(
        m.iter()
            .map(|(k, v)| (k.to_string(), json!(ids(v))))
            .collect(),
    )
}

/// Every field, defaults included.
pub fn render(lb: &LoadBalancer, zone: &Zone) -> Value {
    let mut v = render_spec(&lb.spec);
    v["id"] = json!(lb.id.to_string());
    v["created_on"] = json!(time::format(lb.created_on));
    v["modified_on"] = json!(time::format(lb.modified_on));
    v["zone_name"] = json!(zone.name);
    v
}

/// The configuration alone, every field with its defaults: what `LoadBalancerIn` reads back
/// into the same spec (the edge protocol carries load balancers so).
pub fn render_spec(s: &LoadBalancerSpec) -> Value {
    let a = &s.session_affinity_attributes;
    let rules: Value = serde_json::from_str(&s.rules).unwrap_or_else(|_| json!([]));
    json!({
        "name": s.name,
        "description": s.description,
        "enabled": s.enabled,
        "proxied": s.proxied,
        "ttl": s.ttl,
        "fallback_pool": s.fallback_pool.to_string(),
        "default_pools": ids(&s.default_pools),
        "region_pools": pool_map(&s.region_pools),
        "country_pools": pool_map(&s.country_pools),
        "pop_pools": pool_map(&s.pop_pools),
        "steering_policy": s.steering_policy.as_str(),
        "random_steering": {
            "default_weight": s.random_steering.default_weight,
            "pool_weights": Value::Object(
                s.random_steering.pool_weights.iter().map(|(k, w)| (k.to_string(), json!(w))).collect()
            ),
        },
        "adaptive_routing": {"failover_across_pools": s.failover_across_pools},
        "location_strategy": {"mode": s.location_mode.as_str(), "prefer_ecs": s.prefer_ecs.as_str()},
        "session_affinity": s.session_affinity.as_str(),
        "session_affinity_ttl": s.session_affinity_ttl,
        "session_affinity_attributes": {
            "samesite": a.samesite.as_str(),
            "secure": a.secure.as_str(),
            "zero_downtime_failover": a.zero_downtime_failover.as_str(),
            "drain_duration": a.drain_duration,
            "headers": a.headers,
            "require_all_headers": a.require_all_headers,
        },
        "rules": rules,
    })
}
