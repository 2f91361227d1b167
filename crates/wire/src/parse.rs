//! Turning request bytes into typed input, with errors that point at the offending field.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::ApiError;

/// Parses a request body that must be one JSON object.
pub fn object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::malformed(
            "Request body is empty; a JSON object was expected",
        ));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(ApiError::malformed(format!(
            "Request body must be a JSON object, not {}",
            json_kind(&other)
        ))),
        Err(e) => Err(ApiError::malformed(format!(
            "Request body is not valid JSON: {} at line {} column {}",
            describe_syntax(&e),
            e.line(),
            e.column()
        ))),
    }
}

fn describe_syntax(e: &serde_json::Error) -> String {
    let s = e.to_string();
    s.split(" at line ").next().unwrap_or(&s).to_owned()
}

pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Deserializes an already-parsed document into `T`; a field of the wrong JSON type becomes a
/// 400/1002 whose pointer names it.
pub fn typed<T: DeserializeOwned>(doc: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(doc).map_err(|e| {
        let pointer = pointer_of(e.path());
        let field = if pointer.is_empty() {
            "body".to_owned()
        } else {
            pointer[1..].replace('/', ".")
        };
        ApiError::field(
            &pointer,
            format!("{field}: {}", humanize(&e.inner().to_string())),
        )
    })
}

/// Parses a request body straight into `T`, with no document in between (the hot path for
/// large bodies, such as agents' result batches); any body that does not parse that way gets
/// exactly the answer [`object`] then [`typed`] give.
pub fn typed_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    // Only an object: serde would also take a struct written as an array.
    let object_first = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if object_first {
        if let Ok(v) = serde_json::from_slice::<T>(body) {
            return Ok(v);
        }
    }
    typed(Value::Object(object(body)?))
}

fn pointer_of(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("/{index}")),
            Segment::Map { key } => {
                out.push('/');
                out.push_str(&key.replace('~', "~0").replace('/', "~1"));
            }
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    out
}

/// serde's type names mean nothing to an API client; say what JSON was expected.
fn humanize(msg: &str) -> String {
    msg.replace("expected i64", "expected an integer")
        .replace("expected f64", "expected a number")
        .replace("expected a JSON number", "expected a number")
        .replace("expected a sequence", "expected an array")
        .replace("expected a map", "expected an object")
        .replace("floating point", "number")
}

/// PATCH: overlays the top-level fields of `patch` on the current representation; the result
/// is then validated exactly as a PUT would be.
pub fn merge(mut current: Value, patch: Map<String, Value>) -> Value {
    if let Value::Object(cur) = &mut current {
        for (k, v) in patch {
            cur.insert(k, v);
        }
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Doc {
        origins: Option<Vec<Origin>>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Origin {
        port: Option<i64>,
    }

    #[test]
    fn wrong_type_points_at_field() {
        let doc = serde_json::json!({"origins": [{"port": 1}, {"port": "eighty"}]});
        let err = typed::<Doc>(doc).unwrap_err();
        assert_eq!(err.status, 400);
        assert_eq!(err.errors[0].code, 1002);
        assert_eq!(err.errors[0].pointer.as_deref(), Some("/origins/1/port"));
        assert!(
            err.errors[0].message.contains("expected an integer"),
            "{}",
            err.errors[0].message
        );
    }

    #[test]
    fn body_must_be_an_object() {
        assert_eq!(object(b"[1]").unwrap_err().errors[0].code, 1001);
        assert_eq!(object(b"{\"a\":").unwrap_err().errors[0].code, 1001);
        assert_eq!(object(b"").unwrap_err().errors[0].code, 1001);
        assert!(object(b" {\"a\": 1} ").is_ok());
    }

    #[test]
    fn a_body_parsed_straight_answers_as_the_two_steps_do() {
        #[derive(Debug, Deserialize, PartialEq)]
        struct Pair {
            a: u8,
            b: String,
        }
        let good = typed_body::<Pair>(br#" {"a": 1, "b": "x"}"#).unwrap();
        assert_eq!(
            good,
            Pair {
                a: 1,
                b: "x".into()
            }
        );
        let two_steps = |body: &[u8]| {
            object(body)
                .and_then(|m| typed::<Pair>(Value::Object(m)))
                .unwrap_err()
        };
        for bad in [
            &br#"[1, "x"]"#[..],
            b"",
            b"{",
            br#"{"a": "one", "b": "x"}"#,
            br#"{"a": 1}"#,
        ] {
            let err = typed_body::<Pair>(bad).unwrap_err();
            assert_eq!(
                format!("{err:?}"),
                format!("{:?}", two_steps(bad)),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
