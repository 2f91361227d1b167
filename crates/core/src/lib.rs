//! The pure core of Vantage: the domain model and every decision about it.
//!
//! Nothing in this crate performs I/O, reads a clock or draws random numbers: time and
//! randomness arrive as arguments (see [`Timestamp`] and [`id`]), so every decision can be
//! replayed deterministically in tests.
#![forbid(unsafe_code)]

pub mod account;
pub mod auth;
pub mod catalog;
pub mod choice;
pub mod health;
pub mod id;
pub mod load_balancer;
pub mod monitor;
pub mod monitor_group;
pub mod name;
pub mod notification;
pub mod pool;
pub mod region;
pub mod region_map;
pub mod routing;
pub mod steering;
pub mod tally;
pub mod time;
pub mod violation;
pub mod zone;

pub use id::{
    AccountId, LoadBalancerId, MonitorGroupId, MonitorId, PolicyId, PoolId, TokenId, UserId,
    WebhookId, ZoneId,
};
/// Load-balancing rules live with the load balancer they belong to; named here for short.
pub use load_balancer::rules;
pub use time::Timestamp;
pub use violation::{Path, Violation, Violations};
