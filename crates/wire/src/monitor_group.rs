//! Monitor group JSON ⇄ core monitor group.

use serde::Deserialize;
use serde_json::{json, Value};
use vantage_core::monitor_group::{MemberDraft, MonitorGroup, MonitorGroupDraft};

use crate::time;

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct MemberIn {
    monitor_id: Option<String>,
    enabled: Option<bool>,
    monitoring_only: Option<bool>,
    must_be_healthy: Option<bool>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct MonitorGroupIn {
    description: Option<String>,
    members: Option<Vec<MemberIn>>,
}

impl From<MonitorGroupIn> for MonitorGroupDraft {
    fn from(g: MonitorGroupIn) -> Self {
        MonitorGroupDraft {
            description: g.description,
            members: g.members.map(|ms| {
                ms.into_iter()
                    .map(|m| MemberDraft {
                        monitor_id: m.monitor_id,
                        enabled: m.enabled,
                        monitoring_only: m.monitoring_only,
                        must_be_healthy: m.must_be_healthy,
                    })
                    .collect()
            }),
        }
    }
}

/// Every field, in Cloudflare's shape (members carry `created_at`/`updated_at`, the group
/// `created_on`/`modified_on`).
pub fn render(g: &MonitorGroup) -> Value {
    json!({
        "id": g.id.to_string(),
        "description": g.description,
        "members": g.members.iter().map(|m| json!({
            "monitor_id": m.monitor.to_string(),
            "enabled": m.enabled,
            "monitoring_only": m.role.monitoring_only,
            "must_be_healthy": m.role.must_be_healthy,
            "created_at": time::format(m.created_at),
            "updated_at": time::format(m.updated_at),
        })).collect::<Vec<_>>(),
        "created_on": time::format(g.created_on),
        "modified_on": time::format(g.modified_on),
    })
}
