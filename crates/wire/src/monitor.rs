//! Monitor JSON ⇄ core monitor.

use serde::Deserialize;
use serde_json::{json, Value};
use vantage_core::choice::Choice;
use vantage_core::monitor::{Headers, Monitor, MonitorDraft};

use crate::number::{whole, Whole};
use crate::time;

/// A monitor as a client may send it. Unknown fields are ignored, `null` means "default".
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct MonitorIn {
    #[serde(rename = "type")]
    kind: Option<String>,
    method: Option<String>,
    path: Option<String>,
    header: Option<Headers>,
    port: Option<Whole>,
    timeout: Option<Whole>,
    retries: Option<Whole>,
    interval: Option<Whole>,
    expected_codes: Option<String>,
    expected_body: Option<String>,
    follow_redirects: Option<bool>,
    allow_insecure: Option<bool>,
    consecutive_up: Option<Whole>,
    consecutive_down: Option<Whole>,
    probe_zone: Option<String>,
    description: Option<String>,
}

impl From<MonitorIn> for MonitorDraft {
    fn from(m: MonitorIn) -> Self {
        MonitorDraft {
            kind: m.kind,
            method: m.method,
            path: m.path,
            header: m.header,
            port: whole(m.port),
            timeout: whole(m.timeout),
            retries: whole(m.retries),
            interval: whole(m.interval),
            expected_codes: m.expected_codes,
            expected_body: m.expected_body,
            follow_redirects: m.follow_redirects,
            allow_insecure: m.allow_insecure,
            consecutive_up: whole(m.consecutive_up),
            consecutive_down: whole(m.consecutive_down),
            probe_zone: m.probe_zone,
            description: m.description,
        }
    }
}

/// Every field, defaults included.
pub fn render(m: &Monitor) -> Value {
    let s = &m.spec;
    json!({
        "id": m.id.to_string(),
        "created_on": time::format(m.created_on),
        "modified_on": time::format(m.modified_on),
        "type": s.kind_as_written.as_deref().unwrap_or(s.kind.as_str()),
        "description": s.description,
        "method": s.method,
        "path": s.path,
        "header": s.header,
        "port": s.port,
        "timeout": s.timeout,
        "retries": s.retries,
        "interval": s.interval,
        "expected_codes": s.expected_codes.as_ref().map(|c| c.as_str()).unwrap_or(""),
        "expected_body": s.expected_body,
        "follow_redirects": s.follow_redirects,
        "allow_insecure": s.allow_insecure,
        "consecutive_up": s.consecutive_up,
        "consecutive_down": s.consecutive_down,
        "probe_zone": s.probe_zone,
    })
}
