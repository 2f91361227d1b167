//! Cloudflare's alerting JSON: webhook destinations, policies, the webhook payload of a
//! load-balancing health alert, and the delivery history.

use serde::Deserialize;
use serde_json::{json, Value};
use vantage_core::choice::Choice;
use vantage_core::health::engine::Event;
use vantage_core::notification::Delivery;
use vantage_core::notification::{Alert, EventSource, Policy, PolicyDraft, Webhook, WebhookDraft};

use crate::time;

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct WebhookIn {
    pub name: Option<String>,
    pub url: Option<String>,
    pub secret: Option<String>,
}

impl From<WebhookIn> for WebhookDraft {
    fn from(w: WebhookIn) -> Self {
        WebhookDraft {
            name: w.name,
            url: w.url,
            secret: w.secret,
        }
    }
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct MechanismIn {
    pub id: Option<String>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct MechanismsIn {
    pub webhooks: Option<Vec<MechanismIn>>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct FiltersIn {
    pub pool_id: Option<Vec<String>>,
    pub event_source: Option<Vec<String>>,
    pub new_health: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct PolicyIn {
    pub name: Option<String>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
    pub alert_type: Option<String>,
    pub mechanisms: Option<MechanismsIn>,
    pub filters: Option<FiltersIn>,
}

impl From<PolicyIn> for PolicyDraft {
    fn from(p: PolicyIn) -> Self {
        let filters = p.filters.unwrap_or_default();
        PolicyDraft {
            name: p.name,
            description: p.description,
            enabled: p.enabled,
            alert_type: p.alert_type,
            webhooks: p
                .mechanisms
                .and_then(|m| m.webhooks)
                .map(|w| w.into_iter().map(|m| m.id.unwrap_or_default()).collect()),
            pool_id: filters.pool_id,
            event_source: filters.event_source,
            new_health: filters.new_health,
        }
    }
}

/// A destination as the API shows it: never its secret. Delivery outcomes are in the history,
/// so `last_success` and `last_failure` stay null.
pub fn render_webhook(w: &Webhook) -> Value {
    json!({
        "id": w.id.to_string(),
        "name": w.spec.name,
        "url": w.spec.url,
        "type": "generic",
        "created_at": time::format(w.created_on),
        "last_success": null,
        "last_failure": null,
    })
}

pub fn render_policy(p: &Policy) -> Value {
    let list = |v: Vec<&str>| -> Value { json!(v) };
    json!({
        "id": p.id.to_string(),
        "name": p.spec.name,
        "description": p.spec.description,
        "enabled": p.spec.enabled,
        "alert_type": p.spec.alert_type.as_str(),
        "mechanisms": {"webhooks": p.spec.webhooks.iter().map(|w| json!({"id": w.to_string()})).collect::<Vec<_>>()},
        "filters": {
            "pool_id": p.spec.filters.pool_id.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "event_source": list(p.spec.filters.event_source.iter().map(|e| e.as_str()).collect()),
            "new_health": list(p.spec.filters.new_health.iter().map(|e| e.as_str()).collect()),
        },
        "created": time::format(p.created_on),
        "modified": time::format(p.modified_on),
    })
}

/// The webhook body of one alert, in Cloudflare's notification envelope.
pub fn payload(policy: &Policy, event: &Event, alert: &Alert) -> String {
    let health = if alert.healthy {
        "Healthy"
    } else {
        "Unhealthy"
    };
    let origin = alert.origin.and_then(|i| event.origins.get(i));
    let reason = match origin {
        Some(o) => o.reason.as_str(),
        None => "",
    };
    let text = match (alert.source, origin) {
        (EventSource::Origin, Some(o)) => format!(
            "Origin {} ({}) in pool {} is {health}{}",
            o.name,
            o.address,
            event.pool_name,
            if alert.healthy {
                String::new()
            } else {
                format!(": {reason}")
            }
        ),
        _ => format!("Pool {} is {health}", event.pool_name),
    };
    json!({
        "name": policy.spec.name,
        "text": text,
        "data": {
            "alert_name": policy.spec.name,
            "pool_id": event.pool.to_string(),
            "pool_name": event.pool_name,
            "origin_name": origin.map(|o| o.name.as_str()),
            "origin_address": origin.map(|o| o.address.as_str()),
            "event_source": alert.source.as_str(),
            "new_health": health,
            "reason": origin.map(|o| o.reason.as_str()),
            "minimum_origins": event.minimum_origins,
        },
        "ts": event.at.unix_micros() / 1_000_000,
        "account_id": event.account.to_string(),
        "policy_id": policy.id.to_string(),
        "alert_type": policy.spec.alert_type.as_str(),
        "alert_event": if alert.healthy { "END" } else { "START" },
    })
    .to_string()
}

/// One entry of the delivery log (Cloudflare's history, plus the delivery state).
pub fn render_delivery(d: &Delivery) -> Value {
    let body: Value = serde_json::from_str(&d.item.payload).unwrap_or(Value::Null);
    json!({
        "id": d.seq.to_string(),
        "name": d.item.policy_name,
        "policy_id": d.item.policy.to_string(),
        "alert_type": body["alert_type"],
        "alert_body": d.item.payload,
        "description": body["text"],
        "mechanism": d.item.webhook.to_string(),
        "mechanism_type": "webhook",
        "sent": d.delivered_at.map(time::format),
        "created": time::format(d.item.at),
        "attempts": d.attempts,
        "delivered": d.delivered_at.is_some(),
        "failed": d.failed,
        "last_error": d.last_error,
    })
}
