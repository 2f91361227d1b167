//! The messages of the probe-agent protocol, shared by the controller's handlers and the
//! agent's client so the two cannot drift apart.

use serde::{Deserialize, Serialize};
use vantage_core::health::{Facts, ProbeKey};
use vantage_core::monitor::MonitorSpec;
use vantage_core::Timestamp;

pub const ASSIGNMENT_PATH: &str = "/agent/v1/assignment";
pub const RESULTS_PATH: &str = "/agent/v1/results";

/// One target of an assignment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    pub key: ProbeKey,
    pub monitor: MonitorSpec,
    /// Names of the pools the target serves (for the probe's User-Agent).
    pub pools: Vec<String>,
}

/// `GET assignment` answers this (inside the usual envelope's `result`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    pub version: u64,
    pub targets: Vec<Target>,
}

/// One check's facts, with when it ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reported {
    pub key: ProbeKey,
    pub facts: Facts,
    pub at: Timestamp,
}

/// `POST results` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub region: String,
    pub location: String,
    pub results: Vec<Reported>,
}
