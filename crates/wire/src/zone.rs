//! Zone JSON.

use serde::Deserialize;
use serde_json::{json, Value};
use vantage_core::account::Account;
use vantage_core::zone::Zone;

use crate::time;

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct ZoneAccountIn {
    pub id: Option<String>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct ZoneIn {
    pub name: Option<String>,
    pub account: Option<ZoneAccountIn>,
}

pub fn render(z: &Zone, account: Option<&Account>) -> Value {
    json!({
        "id": z.id.to_string(),
        "name": z.name,
        "status": "active",
        "paused": false,
        "type": "full",
        "development_mode": 0,
        "name_servers": [],
        "original_name_servers": null,
        "original_registrar": null,
        "original_dnshost": null,
        "account": {"id": z.account.to_string(), "name": account.map(|a| a.name.as_str()).unwrap_or("")},
        "owner": {"id": null, "name": null, "type": null},
        "meta": {"page_rule_quota": 0, "phishing_detected": false},
        "permissions": [],
        "created_on": time::format(z.created_on),
        "modified_on": time::format(z.modified_on),
        "activated_on": time::format(z.created_on),
    })
}
