//! Load balancer JSON ⇄ core load balancer.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Value};
use vantage_core::choice::Choice;
use vantage_core::load_balancer::{
    AffinityAttributes, AffinityAttributesDraft, LoadBalancer, LoadBalancerDraft, LoadBalancerSpec,
    RandomSteering,
};
use vantage_core::rules::{FixedResponseDraft, Overrides, OverridesDraft, Rule, RuleDraft, Rules};
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
    rules: Option<Vec<RuleIn>>,
    description: Option<String>,
}

/// One rule; unknown fields are refused (Cloudflare's schema closes the rule object).
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RuleIn {
    name: Option<String>,
    condition: Option<String>,
    disabled: Option<bool>,
    priority: Option<Whole>,
    terminates: Option<bool>,
    fixed_response: Option<FixedResponseIn>,
    overrides: Option<OverridesIn>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct FixedResponseIn {
    status_code: Option<Whole>,
    content_type: Option<String>,
    message_body: Option<String>,
    location: Option<String>,
}

/// The load balancer fields a rule may override.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct OverridesIn {
    adaptive_routing: Option<AdaptiveRoutingIn>,
    country_pools: Option<PoolMap>,
    default_pools: Option<Vec<String>>,
    fallback_pool: Option<String>,
    location_strategy: Option<LocationStrategyIn>,
    pop_pools: Option<PoolMap>,
    random_steering: Option<RandomSteeringIn>,
    region_pools: Option<PoolMap>,
    session_affinity: Option<String>,
    session_affinity_attributes: Option<AffinityAttributesIn>,
    session_affinity_ttl: Option<Whole>,
    steering_policy: Option<String>,
    ttl: Option<Whole>,
}

impl AffinityAttributesIn {
    fn into_draft(self) -> AffinityAttributesDraft {
        AffinityAttributesDraft {
            samesite: self.samesite,
            secure: self.secure,
            zero_downtime_failover: self.zero_downtime_failover,
            drain_duration: whole(self.drain_duration),
            headers: self.headers,
            require_all_headers: self.require_all_headers,
        }
    }
}

impl RuleIn {
    fn into_draft(self) -> RuleDraft {
        RuleDraft {
            name: self.name,
            condition: self.condition,
            disabled: self.disabled,
            priority: whole(self.priority),
            terminates: self.terminates,
            fixed_response: self.fixed_response.map(|f| FixedResponseDraft {
                status_code: whole(f.status_code),
                content_type: f.content_type,
                message_body: f.message_body,
                location: f.location,
            }),
            overrides: self.overrides.map(|o| {
                let ls = o.location_strategy.unwrap_or_default();
                let rs = o.random_steering;
                OverridesDraft {
                    failover_across_pools: o.adaptive_routing.and_then(|a| a.failover_across_pools),
                    country_pools: o.country_pools,
                    default_pools: o.default_pools,
                    fallback_pool: o.fallback_pool,
                    location_mode: ls.mode,
                    prefer_ecs: ls.prefer_ecs,
                    pop_pools: o.pop_pools,
                    random_steering: rs.is_some(),
                    random_default_weight: rs.as_ref().and_then(|r| r.default_weight),
                    random_pool_weights: rs.and_then(|r| r.pool_weights),
                    region_pools: o.region_pools,
                    session_affinity: o.session_affinity,
                    session_affinity_attributes: o
                        .session_affinity_attributes
                        .map(AffinityAttributesIn::into_draft),
                    session_affinity_ttl: whole(o.session_affinity_ttl),
                    steering_policy: o.steering_policy,
                    ttl: whole(o.ttl),
                }
            }),
        }
    }
}

impl LoadBalancerIn {
    pub fn into_draft(self) -> Result<LoadBalancerDraft, ApiError> {
        let rules = self
            .rules
            .map(|r| r.into_iter().map(RuleIn::into_draft).collect());
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
            session_affinity_attributes: self
                .session_affinity_attributes
                .map(AffinityAttributesIn::into_draft),
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
        "random_steering": random_steering(&s.random_steering),
        "adaptive_routing": {"failover_across_pools": s.failover_across_pools},
        "location_strategy": {"mode": s.location_mode.as_str(), "prefer_ecs": s.prefer_ecs.as_str()},
        "session_affinity": s.session_affinity.as_str(),
        "session_affinity_ttl": s.session_affinity_ttl,
        "session_affinity_attributes": affinity_attributes(&s.session_affinity_attributes),
        "rules": render_rules(&s.rules),
    })
}

fn random_steering(r: &RandomSteering) -> Value {
    json!({
        "default_weight": r.default_weight,
        "pool_weights": Value::Object(
            r.pool_weights.iter().map(|(k, w)| (k.to_string(), json!(w))).collect()
        ),
    })
}

fn affinity_attributes(a: &AffinityAttributes) -> Value {
    json!({
        "samesite": a.samesite.as_str(),
        "secure": a.secure.as_str(),
        "zero_downtime_failover": a.zero_downtime_failover.as_str(),
        "drain_duration": a.drain_duration,
        "headers": a.headers,
        "require_all_headers": a.require_all_headers,
    })
}

/// The rules in array order, each with Cloudflare's defaults (`disabled`, `priority`,
/// `terminates`, `overrides`) and, in `overrides`, only the fields the rule sets.
pub fn render_rules(rules: &Rules) -> Value {
    Value::Array(rules.iter().map(render_rule).collect())
}

fn render_rule(r: &Rule) -> Value {
    let mut v = json!({
        "name": r.name,
        "condition": r.condition.source(),
        "disabled": r.disabled,
        "priority": r.priority,
        "terminates": r.terminates,
        "overrides": render_overrides(&r.overrides),
    });
    if let Some(f) = &r.fixed_response {
        let mut fixed = json!({"status_code": f.status_code});
        for (k, val) in [
            ("content_type", &f.content_type),
            ("message_body", &f.message_body),
            ("location", &f.location),
        ] {
            if let Some(val) = val {
                fixed[k] = json!(val);
            }
        }
        v["fixed_response"] = fixed;
    }
    v
}

fn render_overrides(o: &Overrides) -> Value {
    let mut v = serde_json::Map::new();
    let mut put = |k: &str, val: Option<Value>| {
        if let Some(val) = val {
            v.insert(k.to_owned(), val);
        }
    };
    put(
        "adaptive_routing",
        o.failover_across_pools
            .map(|f| json!({"failover_across_pools": f})),
    );
    put("country_pools", o.country_pools.as_ref().map(pool_map));
    put(
        "default_pools",
        o.default_pools.as_deref().map(|p| json!(ids(p))),
    );
    put(
        "fallback_pool",
        o.fallback_pool.map(|p| json!(p.to_string())),
    );
    if o.location_mode.is_some() || o.prefer_ecs.is_some() {
        let mut ls = serde_json::Map::new();
        if let Some(m) = o.location_mode {
            ls.insert("mode".into(), json!(m.as_str()));
        }
        if let Some(p) = o.prefer_ecs {
            ls.insert("prefer_ecs".into(), json!(p.as_str()));
        }
        put("location_strategy", Some(Value::Object(ls)));
    }
    put("pop_pools", o.pop_pools.as_ref().map(pool_map));
    put(
        "random_steering",
        o.random_steering.as_ref().map(random_steering),
    );
    put("region_pools", o.region_pools.as_ref().map(pool_map));
    put(
        "session_affinity",
        o.session_affinity.map(|a| json!(a.as_str())),
    );
    put(
        "session_affinity_attributes",
        o.session_affinity_attributes
            .as_ref()
            .map(affinity_attributes),
    );
    put(
        "session_affinity_ttl",
        o.session_affinity_ttl.map(|t| json!(t)),
    );
    put(
        "steering_policy",
        o.steering_policy.map(|p| json!(p.as_str())),
    );
    put("ttl", o.ttl.map(|t| json!(t)));
    Value::Object(v)
}
