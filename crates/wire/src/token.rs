//! API token JSON (as `token list --output json` and the verify endpoint show them).

use serde_json::{json, Value};
use vantage_core::auth::{Resource, Token};
use vantage_core::choice::Choice;

use crate::time;

/// Cloudflare's resource key for a grant.
pub fn resource_key(r: Resource) -> String {
    match r {
        Resource::Account(a) => format!("com.cloudflare.api.account.{a}"),
        Resource::Zone(z) => format!("com.cloudflare.api.account.zone.{z}"),
    }
}

/// A token without its secret: only its digest is ever stored.
pub fn render(t: &Token) -> Value {
    let policies: Vec<Value> = t
        .grants
        .iter()
        .map(|g| {
            json!({
                "effect": "allow",
                "resources": {resource_key(g.resource): "*"},
                "permission_groups": g.permissions.iter().map(|p| json!({"name": p.as_str()})).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "id": t.id.to_string(),
        "name": t.name,
        "status": t.status.as_str(),
        "kind": t.kind.as_str(),
        "issued_on": time::format(t.issued_on),
        "modified_on": time::format(t.modified_on),
        "expires_on": t.expires_on.map(time::format),
        "policies": policies,
    })
}
