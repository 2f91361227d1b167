//! JSON numbers as clients actually send them.

use serde::{Deserialize, Deserializer};

/// An integer field that also accepts an integral float (`30.0`): several Cloudflare fields
/// are typed `number` in its schema, and clients serialise them either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Whole(pub i64);

impl<'de> Deserialize<'de> for Whole {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = serde_json::Number::deserialize(d)?;
        if let Some(i) = n.as_i64() {
            return Ok(Whole(i));
        }
        match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Whole(f as i64)),
            Some(f) if f.fract() == 0.0 => Ok(Whole(if f < 0.0 { i64::MIN } else { i64::MAX })),
            _ => Err(serde::de::Error::custom(format!(
                "expected an integer, found {n}"
            ))),
        }
    }
}

pub fn whole(v: Option<Whole>) -> Option<i64> {
    v.map(|w| w.0)
}

impl schemars::JsonSchema for Whole {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Whole".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "number",
            "description": "An integer; an integral float such as 30.0 is accepted too."
        })
    }
}
