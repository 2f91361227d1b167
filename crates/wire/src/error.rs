//! The error catalogue: every failure Vantage answers with, as Cloudflare spells it. Each is
//! a constructor here, so no caller sets a status or a code by hand:
//!
//! | constructor | status | code | when |
//! |---|---|---|---|
//! | `malformed` | 400 | 1001 | the body is not JSON, or not the JSON expected at the top |
//! | `validation`, `field` | 400 | 1002 | a rule of the core, one entry per violation, with a pointer |
//! | `conflict` | 400 | 1002 | another writer broke a uniqueness rule first; retry |
//! | `referenced` | 400 | 1004 | deleting an object others still use |
//! | `not_found` | 404 | 1003 | no such object in the caller's account |
//! | `no_route` | 404 | 7003 | no such route |
//! | `method_not_allowed` | 405 | 10405 | |
//! | `missing_credentials` | 400 | 9106 | |
//! | `bad_auth_header` | 400 | 6003 (+ chain 6111/6102/6103) | a malformed or repeated credential header |
//! | `invalid_token`, `unknown_key` | 403 | 9109, 9103 | |
//! | `forbidden`, `agent_token_on_api`, `api_token_on_agent`, `edge_token_elsewhere`, `not_edge_token`, `agent_location` | 403 | 10000 | |
//! | `too_large` | 413 | 1005 | body over the limit |
//! | `rate_limited` | 429 | 10429 | with `Retry-After` |
//! | `health_unavailable`, `unavailable` | 400 | 1002 | nothing to answer yet (never 5xx: SDKs retry those) |
//! | `not_stored`, `storage_unavailable`, `failed` | 503 | 1000 | storage or a worker failed; nothing changed |
//! | `judge_unreachable` | 503 | 1000 | a follower could not hand an agent's results to the judge (the agent retries, or moves to the next controller) |

use serde_json::{json, Value};
use vantage_core::catalog::{CatalogError, Reference};
use vantage_core::Violations;

/// One entry of the `errors` array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorEntry {
    pub code: u32,
    pub message: String,
    /// JSON pointer to the offending request field.
    pub pointer: Option<String>,
    pub chain: Vec<(u32, String)>,
}

/// A failed request: the HTTP status and the envelope's errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub errors: Vec<ErrorEntry>,
    /// Seconds, for 429.
    pub retry_after: Option<u64>,
}

impl ApiError {
    fn one(status: u16, code: u32, message: impl Into<String>) -> Self {
        Self {
            status,
            errors: vec![ErrorEntry {
                code,
                message: message.into(),
                pointer: None,
                chain: vec![],
            }],
            retry_after: None,
        }
    }

    /// 400/1002, one entry per violated rule, each with its pointer.
    pub fn validation(violations: Violations) -> Self {
        let errors = violations
            .into_vec()
            .into_iter()
            .map(|v| ErrorEntry {
                code: 1002,
                message: format!("{}: validation failed", v.detail),
                pointer: Some(v.path.to_pointer()),
                chain: vec![],
            })
            .collect();
        Self {
            status: 400,
            errors,
            retry_after: None,
        }
    }

    /// 400/1002 for one field.
    pub fn field(pointer: &str, detail: impl std::fmt::Display) -> Self {
        Self {
            status: 400,
            errors: vec![ErrorEntry {
                code: 1002,
                message: format!("{detail}: validation failed"),
                pointer: Some(pointer.to_owned()),
                chain: vec![],
            }],
            retry_after: None,
        }
    }

    /// 400/1001: the body is not JSON, or not the JSON value expected at the top.
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::one(400, 1001, message)
    }

    pub fn not_found() -> Self {
        Self::one(404, 1003, "Not found")
    }

    pub fn no_route() -> Self {
        Self::one(404, 7003, "No route for the URI")
    }

    pub fn method_not_allowed() -> Self {
        Self::one(405, 10405, "Method not allowed")
    }

    /// 400/1004, naming every referrer in the message.
    pub fn referenced(refs: &[Reference]) -> Self {
        let names: Vec<String> = refs
            .iter()
            .map(|r| {
                format!(
                    "{} {:?} ({})",
                    r.resource_type.as_str(),
                    r.resource_name,
                    r.resource_id
                )
            })
            .collect();
        Self::one(
            400,
            1004,
            format!("Object referenced by other objects: {}", names.join(", ")),
        )
    }

    pub fn missing_credentials() -> Self {
        Self::one(
            400,
            9106,
            "Missing X-Auth-Key, X-Auth-Email or Authorization headers",
        )
    }

    /// 400/6003 with the specific header problem in `error_chain` (6111 Authorization,
    /// 6102 X-Auth-Email, 6103 X-Auth-Key).
    pub fn bad_auth_header(chain_code: u32, chain_message: &str) -> Self {
        let mut e = Self::one(400, 6003, "Invalid request headers");
        e.errors[0]
            .chain
            .push((chain_code, chain_message.to_owned()));
        e
    }

    pub fn invalid_token() -> Self {
        Self::one(403, 9109, "Invalid access token")
    }

    pub fn unknown_key() -> Self {
        Self::one(403, 9103, "Unknown X-Auth-Key or X-Auth-Email")
    }

    /// An agent token presented to the API.
    pub fn agent_token_on_api() -> Self {
        Self::one(
            403,
            10000,
            "Authentication error: agent tokens are only valid for the probe-agent protocol",
        )
    }

    /// An API token presented to the agent protocol.
    pub fn api_token_on_agent() -> Self {
        Self::one(403, 10000, "Authentication error: the probe-agent protocol needs an agent token (vantage token create --agent)")
    }

    /// An edge token presented to the API or the agent protocol.
    pub fn edge_token_elsewhere() -> Self {
        Self::one(
            403,
            10000,
            "Authentication error: edge tokens are only valid for the edge protocol (/edge/v1)",
        )
    }

    /// An API or agent token presented to the edge protocol.
    pub fn not_edge_token() -> Self {
        Self::one(
            403,
            10000,
            "Authentication error: the edge protocol needs an edge token (vantage token create --edge)",
        )
    }

    /// An agent token speaking for a location it is not bound to (or bound to none).
    pub fn agent_location(message: impl Into<String>) -> Self {
        Self::one(
            403,
            10000,
            format!("Authentication error: {}", message.into()),
        )
    }

    pub fn forbidden() -> Self {
        Self::one(403, 10000, "Authentication error")
    }

    pub fn too_large(limit: usize) -> Self {
        Self::one(
            413,
            1005,
            format!("Request body too large (limit {limit} bytes)"),
        )
    }

    /// 400/1002 the way Cloudflare answers a health query it cannot serve.
    pub fn health_unavailable() -> Self {
        Self::one(400, 1002, "Health info unavailable")
    }

    /// 429/10429: too many of something at once; try again after `retry_after` seconds.
    pub fn rate_limited(message: impl Into<String>, retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::one(429, 10429, message)
        }
    }

    /// 400/1002: a uniqueness rule the store enforces was broken by a concurrent writer (another
    /// process on the same data); the request can be retried.
    pub fn conflict(detail: &str) -> Self {
        Self::one(
            400,
            1002,
            format!("The change conflicts with a concurrent change ({detail}); retry it"),
        )
    }

    /// 503/1000: the change could not be stored, and nothing was changed.
    pub fn not_stored() -> Self {
        Self::one(
            503,
            1000,
            "The change could not be stored; nothing was changed",
        )
    }

    /// 503/1000: stored data could not be read (the storage failed, or the job reading it
    /// did); nothing was changed, and the same request may succeed later.
    pub fn storage_unavailable(what: &str) -> Self {
        Self::one(
            503,
            1000,
            format!("{what} could not be read from storage; try again"),
        )
    }

    /// 503/1000: the server could not produce an answer (a worker failed); nothing was
    /// changed, and the same request may succeed later.
    pub fn failed(what: &str) -> Self {
        Self::one(503, 1000, format!("{what} failed on the server; try again"))
    }

    /// 503/1000: a follower could not hand an agent's results to the judge; nothing was
    /// recorded, and the agent tries again (or the next controller).
    pub fn judge_unreachable(why: &str) -> Self {
        Self::one(
            503,
            1000,
            format!("The results could not be handed to the controller that judges health ({why}); nothing was recorded"),
        )
    }

    /// 400 for a capability this build does not provide yet. Never a 5xx: SDKs retry those.
    pub fn unavailable(what: &str) -> Self {
        Self::one(
            400,
            1002,
            format!("{what} is not available: this Vantage has no probe locations yet"),
        )
    }

    pub fn from_catalog(err: CatalogError) -> Self {
        match err {
            CatalogError::NotFound => Self::not_found(),
            CatalogError::Invalid(v) => Self::validation(v),
            CatalogError::Referenced(refs) => Self::referenced(&refs),
        }
    }

    pub fn body(&self) -> Value {
        let errors: Vec<Value> = self
            .errors
            .iter()
            .map(|e| {
                let mut v = json!({"code": e.code, "message": e.message});
                if let Some(p) = &e.pointer {
                    v["source"] = json!({"pointer": p});
                }
                if !e.chain.is_empty() {
                    v["error_chain"] = e
                        .chain
                        .iter()
                        .map(|(code, message)| json!({"code": code, "message": message}))
                        .collect();
                }
                v
            })
            .collect();
        json!({"success": false, "errors": errors, "messages": [], "result": null})
    }
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        Self::from_catalog(e)
    }
}

impl From<Violations> for ApiError {
    fn from(v: Violations) -> Self {
        Self::validation(v)
    }
}
