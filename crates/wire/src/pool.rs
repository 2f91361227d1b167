//! Pool JSON ⇄ core pool.

use serde::{Deserialize, Deserializer};
use serde_json::{json, Map, Value};
use vantage_core::choice::Choice;
use vantage_core::monitor::Headers;
use vantage_core::pool::{
    Field, LoadSheddingDraft, NotificationFilter, NotificationRule, OriginDraft, OriginSpec, Pool,
    PoolDraft,
};
use vantage_core::region::CheckRegions;

use crate::number::{whole, Whole};
use crate::time;

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct OriginIn {
    name: Option<String>,
    address: Option<String>,
    enabled: Option<bool>,
    weight: Option<f64>,
    port: Option<Whole>,
    header: Option<Headers>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct OriginSteeringIn {
    policy: Option<String>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct LoadSheddingIn {
    default_percent: Option<f64>,
    default_policy: Option<String>,
    session_percent: Option<f64>,
    session_policy: Option<String>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct RuleIn {
    disable: Option<bool>,
    healthy: Option<bool>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct FilterIn {
    origin: Option<RuleIn>,
    pool: Option<RuleIn>,
}

/// Keeps "absent" and "null" apart for fields where `null` is a value of its own.
fn tri_state<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Field<T>, D::Error> {
    Ok(match Option::<T>::deserialize(d)? {
        None => Field::Null,
        Some(v) => Field::Value(v),
    })
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct PoolIn {
    name: Option<String>,
    origins: Option<Vec<OriginIn>>,
    minimum_origins: Option<Whole>,
    monitor: Option<String>,
    monitor_group: Option<String>,
    check_regions: Option<Vec<String>>,
    enabled: Option<bool>,
    description: Option<String>,
    latitude: Option<f64>,
    longitude: Option<f64>,
    origin_steering: Option<OriginSteeringIn>,
    load_shedding: Option<LoadSheddingIn>,
    notification_email: Option<String>,
    #[serde(deserialize_with = "tri_state")]
    #[schemars(with = "Option<FilterIn>")]
    notification_filter: Field<FilterIn>,
}

fn rule(r: Option<RuleIn>) -> NotificationRule {
    let r = r.unwrap_or_default();
    NotificationRule {
        disable: r.disable.unwrap_or(false),
        healthy: r.healthy,
    }
}

impl From<PoolIn> for PoolDraft {
    fn from(p: PoolIn) -> Self {
        PoolDraft {
            name: p.name,
            origins: p.origins.map(|os| {
                os.into_iter()
                    .map(|o| OriginDraft {
                        name: o.name,
                        address: o.address,
                        enabled: o.enabled,
                        weight: o.weight,
                        port: whole(o.port),
                        header: o.header,
                    })
                    .collect()
            }),
            minimum_origins: whole(p.minimum_origins),
            monitor: p.monitor,
            monitor_group: p.monitor_group,
            check_regions: p.check_regions,
            enabled: p.enabled,
            description: p.description,
            latitude: p.latitude,
            longitude: p.longitude,
            origin_steering_policy: p.origin_steering.and_then(|o| o.policy),
            load_shedding: p.load_shedding.map(|l| LoadSheddingDraft {
                default_percent: l.default_percent,
                default_policy: l.default_policy,
                session_percent: l.session_percent,
                session_policy: l.session_policy,
            }),
            notification_email: p.notification_email,
            notification_filter: match p.notification_filter {
                Field::Absent => Field::Absent,
                Field::Null => Field::Null,
                Field::Value(f) => Field::Value(NotificationFilter {
                    origin: rule(f.origin),
                    pool: rule(f.pool),
                }),
            },
        }
    }
}

fn render_origin(o: &OriginSpec) -> Value {
    let mut v = json!({
        "name": o.name,
        "address": o.address,
        "enabled": o.enabled,
        "weight": o.weight.as_f64(),
        "port": o.port,
    });
    if let Some(h) = &o.host {
        v["header"] = json!({"Host": [h]});
    }
    if let Some(at) = o.disabled_at {
        v["disabled_at"] = json!(time::format(at));
    }
    v
}

fn render_rule(r: NotificationRule) -> Value {
    json!({"disable": r.disable, "healthy": r.healthy})
}

/// Every field, defaults included; absent optional references (`monitor`, coordinates, an
/// origin's `header`) are omitted, as Cloudflare does.
pub fn render(p: &Pool) -> Value {
    let s = &p.spec;
    let mut v = Map::new();
    v.insert("id".into(), json!(p.id.to_string()));
    v.insert("created_on".into(), json!(time::format(p.created_on)));
    v.insert("modified_on".into(), json!(time::format(p.modified_on)));
    v.insert("name".into(), json!(s.name));
    v.insert("description".into(), json!(s.description));
    v.insert("enabled".into(), json!(s.enabled));
    v.insert("minimum_origins".into(), json!(s.minimum_origins));
    if let Some(m) = s.monitor {
        v.insert("monitor".into(), json!(m.to_string()));
    }
    if let Some(g) = s.monitor_group {
        v.insert("monitor_group".into(), json!(g.to_string()));
    }
    v.insert(
        "check_regions".into(),
        match &s.check_regions {
            CheckRegions::AllLocations => Value::Null,
            CheckRegions::AllRegions => json!(["ALL_REGIONS"]),
            CheckRegions::Regions(r) => json!(r.iter().map(|r| r.code()).collect::<Vec<_>>()),
        },
    );
    if let Some((lat, lon)) = s.coordinates {
        v.insert("latitude".into(), json!(lat));
        v.insert("longitude".into(), json!(lon));
    }
    v.insert(
        "origins".into(),
        Value::Array(s.origins.iter().map(render_origin).collect()),
    );
    v.insert(
        "origin_steering".into(),
        json!({"policy": s.origin_steering.as_str()}),
    );
    v.insert(
        "load_shedding".into(),
        json!({
            "default_percent": s.load_shedding.default_percent,
            "default_policy": s.load_shedding.default_policy.as_str(),
            "session_percent": s.load_shedding.session_percent,
            "session_policy": s.load_shedding.session_policy.as_str(),
        }),
    );
    v.insert("notification_email".into(), json!(s.notification_email));
    v.insert(
        "notification_filter".into(),
        match s.notification_filter {
            None => Value::Null,
            Some(f) => json!({"origin": render_rule(f.origin), "pool": render_rule(f.pool)}),
        },
    );
    v.insert("networks".into(), json!([]));
    if let Some(t) = p.disabled_at {
        v.insert("disabled_at".into(), json!(time::format(t)));
    }
    Value::Object(v)
}
