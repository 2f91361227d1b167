//! The messages of the probe-agent protocol, shared by the controller's handlers and the
//! agent's client so the two cannot drift apart.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use vantage_core::health::{Facts, ProbeKey};
use vantage_core::monitor::MonitorSpec;
use vantage_core::{MonitorId, Timestamp};

pub const ASSIGNMENT_PATH: &str = "/agent/v1/assignment";
pub const RESULTS_PATH: &str = "/agent/v1/results";

/// One target of an assignment; its monitor is `key.monitor` in [`Assignment::monitors`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    pub key: ProbeKey,
    /// Names of the pools the target serves (for the probe's User-Agent).
    pub pools: Vec<String>,
}

/// `GET assignment` answers this (inside the usual envelope's `result`). Each monitor is sent
/// once, however many targets use it: at 100,000 targets that is most of the message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    pub version: u64,
    pub monitors: BTreeMap<MonitorId, MonitorSpec>,
    pub targets: Vec<Target>,
}

impl Assignment {
    /// Builds the message from the engine's assignment.
    pub fn from_engine(
        version: u64,
        assigned: Vec<vantage_core::health::engine::Assignment>,
    ) -> Self {
        let mut monitors = BTreeMap::new();
        let targets = assigned
            .into_iter()
            .map(|a| {
                monitors
                    .entry(a.key.monitor)
                    .or_insert_with(|| (*a.spec).clone());
                Target {
                    key: a.key,
                    pools: a.pools,
                }
            })
            .collect();
        Self {
            version,
            monitors,
            targets,
        }
    }
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
