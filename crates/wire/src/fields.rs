//! Fields a body may not carry. A request body is checked against the schema of the type that
//! reads it (the same schema the OpenAPI document publishes), so a field Vantage does not read
//! is refused with a pointer instead of being accepted and dropped.
//!
//! Two kinds of field pass although no type reads them: the read-only fields Vantage and
//! Cloudflare render (`id`, `created_on`, …), so a document read with GET can be sent back
//! with PUT; and any field whose value is `null`. Cloudflare fields Vantage does not
//! implement are refused with a message that says so, unless empty.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use schemars::JsonSchema;
use serde_json::{Map, Value};
use vantage_core::{Path, Violations};

use crate::error::ApiError;

/// Rendered by Vantage or Cloudflare, never read from a body.
const READ_ONLY: &[&str] = &[
    "id",
    "created_on",
    "modified_on",
    "zone_name",
    "zone_id",
    "healthy",
    "disabled_at",
    "failure_reason",
    // A monitor group member's times.
    "created_at",
    "updated_at",
];

/// Cloudflare fields Vantage does not implement, and why; accepted only empty.
const UNSUPPORTED: &[(&str, &str)] = &[
    (
        "networks",
        "Vantage serves every load balancer and pool on every network",
    ),
    (
        "health_sources",
        "Vantage's own probe agents are the only health source",
    ),
    (
        "virtual_network_id",
        "origins are reached over the data plane's own network",
    ),
    (
        "flatten_cname",
        "DNS answers carry the addresses of IP-address origins only; host-name origins are proxied, never flattened or answered as CNAMEs",
    ),
    ("pool_sets", "pool sets are not implemented"),
];

fn empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Number(_) => false,
    }
}

fn schema_of<T: JsonSchema + 'static>() -> Arc<Value> {
    static CACHE: OnceLock<Mutex<HashMap<TypeId, Arc<Value>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Mutex::default);
    let mut map = cache.lock().unwrap_or_else(|p| p.into_inner());
    map.entry(TypeId::of::<T>())
        .or_insert_with(|| Arc::new(schemars::schema_for!(T).to_value()))
        .clone()
}

/// Refuses every field of `doc` that `T` does not read (see the module's text).
pub fn known<T: JsonSchema + 'static>(doc: &Value) -> Result<(), ApiError> {
    let schema = schema_of::<T>();
    let defs = schema
        .get("$defs")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut v = Violations::default();
    walk(doc, &schema, &defs, &Path::root(), &mut v);
    if v.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(v))
    }
}

/// `schema` and every schema it stands for (`$ref`, `anyOf`, `oneOf`, `allOf`).
fn alternatives<'a>(schema: &'a Value, defs: &'a Map<String, Value>, out: &mut Vec<&'a Value>) {
    if out.len() > 64 {
        return;
    }
    if let Some(name) = schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/$defs/"))
    {
        if let Some(target) = defs.get(name) {
            alternatives(target, defs, out);
        }
        return;
    }
    out.push(schema);
    for key in ["anyOf", "oneOf", "allOf"] {
        for sub in schema
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            alternatives(sub, defs, out);
        }
    }
}

fn walk(doc: &Value, schema: &Value, defs: &Map<String, Value>, at: &Path, v: &mut Violations) {
    let mut alts = Vec::new();
    alternatives(schema, defs, &mut alts);
    match doc {
        Value::Object(fields) => {
            let properties: Vec<&Map<String, Value>> = alts
                .iter()
                .filter_map(|s| s.get("properties").and_then(Value::as_object))
                .collect();
            // A map (`additionalProperties`) takes any name; its values are checked.
            let open = alts.iter().find_map(|s| s.get("additionalProperties"));
            if properties.is_empty() && open.is_none() {
                return;
            }
            for (name, value) in fields {
                let here = at.key(name.clone());
                if let Some(sub) = properties.iter().find_map(|p| p.get(name)) {
                    walk(value, sub, defs, &here, v);
                } else if let Some(sub) = open.filter(|s| s.is_object()) {
                    walk(value, sub, defs, &here, v);
                } else if open == Some(&Value::Bool(true))
                    || value.is_null()
                    || READ_ONLY.contains(&name.as_str())
                {
                } else if let Some((_, why)) = UNSUPPORTED.iter().find(|(n, _)| n == name) {
                    if !empty(value) {
                        v.push(here, format!("{name} is not supported: {why}"));
                    }
                } else {
                    v.push(here, format!("{name} is not a field Vantage knows here"));
                }
            }
        }
        Value::Array(items) => {
            if let Some(sub) = alts.iter().find_map(|s| s.get("items")) {
                for (i, item) in items.iter().enumerate() {
                    walk(item, sub, defs, &at.index(i), v);
                }
            }
        }
        _ => {}
    }
}
