//! Reference JSON.

use serde_json::{json, Value};
use vantage_core::catalog::Reference;

pub fn render(r: &Reference) -> Value {
    json!({
        "reference_type": r.reference_type.as_str(),
        "resource_id": r.resource_id,
        "resource_name": r.resource_name,
        "resource_type": r.resource_type.as_str(),
    })
}
