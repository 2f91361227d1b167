//! Account JSON.

use serde_json::{json, Value};
use vantage_core::account::Account;

use crate::time;

pub fn render(a: &Account) -> Value {
    json!({
        "id": a.id.to_string(),
        "name": a.name,
        "type": "standard",
        "settings": {"enforce_twofactor": false},
        "created_on": time::format(a.created_on),
    })
}
