//! The control-plane HTTP API: Cloudflare's Load Balancing routes under `/client/v4`.
//!
//! Handlers are thin: authenticate, parse with `vantage-wire`, decide with `vantage-core`,
//! persist through [`state::AppState::commit`], render with `vantage-wire`.
#![forbid(unsafe_code)]

pub mod agent_protocol;
pub mod auth;
mod extract;
mod failure;
mod health;
pub mod openapi;
pub mod preview;
mod routes;
mod rtt;
pub mod secrets;
pub mod state;

pub use routes::router;
pub use state::AppState;

/// Requests larger than this are refused with 413/1005 before they are parsed.
pub const BODY_LIMIT: usize = 1024 * 1024;
