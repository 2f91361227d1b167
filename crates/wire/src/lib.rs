//! Cloudflare's wire format for Load Balancing: the response envelope, the error catalogue,
//! request parsing with JSON-pointer errors, and hand-written conversions between the JSON
//! shapes and the core model.
#![forbid(unsafe_code)]

pub mod account;
pub mod envelope;
pub mod error;
pub mod fields;
pub mod health;
pub mod load_balancer;
pub mod monitor;
pub mod monitor_group;
pub mod notification;
pub mod number;
pub mod parse;
pub mod pool;
pub mod reference;
pub mod region;
pub mod time;
pub mod token;
pub mod zone;

pub use envelope::{Page, ResultInfo};
pub use error::ApiError;
