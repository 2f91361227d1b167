//! The controller: the room between the pure core and the shells. It owns the catalog in
//! memory and the one writer that commits it, drives the health engine with results and
//! time, runs previews, keeps RTT history and the notification outbox's inputs, and says
//! when routing must be rebuilt. It decides nothing itself (the core does) and speaks no
//! HTTP (the API crate does); the binary wires it to listeners and spawns its drivers.
#![forbid(unsafe_code)]

pub mod agent;
pub mod agent_protocol;
pub mod clock;
pub mod controller;
pub mod delivery;
pub mod drivers;
pub mod edge;
pub mod edge_protocol;
pub mod edges;
mod health;
mod health_queue;
pub mod ids;
pub mod judge;
pub mod preview;
mod rtt;
pub mod secrets;
mod writer;

pub use clock::{Clock, SystemClock};
pub use controller::{CommitError, Controller, Installation};
pub use ids::{IdSource, RandomIds};
pub use writer::Writer;
