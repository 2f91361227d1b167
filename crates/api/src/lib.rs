//! The control-plane HTTP API: Cloudflare's Load Balancing routes under `/client/v4`.
//!
//! Handlers are thin: authenticate, parse with `vantage-wire`, decide with `vantage-core`,
//! persist through the controller (`vantage_control::Controller::commit`), render with
//! `vantage-wire`. The controller is the state every handler is given.
#![forbid(unsafe_code)]

pub mod auth;
mod extract;
mod failure;
pub mod openapi;
mod rendered;
mod routes;

pub use routes::router;

/// Requests larger than this are refused with 413/1005 before they are parsed.
pub const BODY_LIMIT: usize = 1024 * 1024;
