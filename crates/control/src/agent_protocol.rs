//! The messages of the probe-agent protocol, shared by the controller's handlers and the
//! agent's client so the two cannot drift apart.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use vantage_core::health::{Facts, ProbeKey};
use vantage_core::monitor::MonitorSpec;
use vantage_core::{MonitorId, Timestamp};

pub const ASSIGNMENT_PATH: &str = "/agent/v1/assignment";
pub const RESULTS_PATH: &str = "/agent/v1/results";

/// The protocol's version. Agents send it in [`VERSION_HEADER`] on every request; a request
/// without it is version 1 (agents from before the header). Version 2: agent tokens are
/// bound to one location, and the results answer says what was refused and why.
pub const VERSION: u32 = 2;
pub const VERSION_HEADER: &str = "vantage-agent-protocol";

/// Whether a controller speaking [`VERSION`] takes an agent speaking `agent`: its own
/// version and the one before, so controllers can be upgraded first and agents after. The
/// refusal names both versions.
pub fn accepts(agent: u32) -> Result<(), String> {
    if agent == VERSION || agent + 1 == VERSION {
        return Ok(());
    }
    let upgrade = if agent < VERSION {
        "the agent"
    } else {
        "the controller"
    };
    Err(format!(
        "this agent speaks protocol version {agent}; this controller speaks {VERSION} and accepts {} and {VERSION}: upgrade {upgrade}",
        VERSION - 1
    ))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_version_behind_is_accepted_and_others_named() {
        assert!(accepts(VERSION).is_ok());
        assert!(accepts(VERSION - 1).is_ok());
        let old = accepts(VERSION - 2).unwrap_err();
        assert!(
            old.contains("version 0")
                && old.contains("speaks 2")
                && old.contains("upgrade the agent"),
            "{old}"
        );
        let new = accepts(VERSION + 1).unwrap_err();
        assert!(new.contains("upgrade the controller"), "{new}");
    }
}
