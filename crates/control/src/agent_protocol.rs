//! The messages of the probe-agent protocol, shared by the controller's handlers and the
//! agent's client so the two cannot drift apart.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use vantage_core::health::{check, Facts, Outcome, ProbeKey};
use vantage_core::monitor::{self, ExpectedCodes, MonitorSpec};
use vantage_core::{mirror_enum, AccountId, MonitorId, Timestamp};

pub const ASSIGNMENT_PATH: &str = "/agent/v1/assignment";
pub const RESULTS_PATH: &str = "/agent/v1/results";
/// Preview checks: `GET` long-polls for the checks a preview asks of this location, `POST`
/// answers them (protocol version 3).
pub const PREVIEW_CHECKS_PATH: &str = "/agent/v1/preview_checks";

/// The protocol's version. Agents send it in [`VERSION_HEADER`] on every request; a request
/// without it is version 1 (agents from before the header). Version 2: agent tokens are
/// bound to one location, and the results answer says what was refused and why. Version 3:
/// agents run previews' checks ([`PREVIEW_CHECKS_PATH`]); a version 2 agent simply never asks
/// for them, and previews run from the locations that do. Version 4: assignments come as
/// deltas ([`Assignment::changes`]) to an agent that names the [`Assignment::epoch`] of the
/// version it holds; an older agent never names one, and is always sent the whole. Version 5:
/// each monitor of an assignment names its account ([`Monitor::account`]), so an agent short
/// of slots gives the accounts turns; an older agent ignores it. (A controller refuses
/// agents newer than itself, so the controllers are upgraded first.)
pub const VERSION: u32 = 5;
pub const VERSION_HEADER: &str = "vantage-agent-protocol";
/// The oldest agent a controller still serves: every version since only added to what the
/// one before said (version 2 a binding and a fuller answer, version 3 endpoints), so an older
/// agent is served what it understands. A change that breaks one raises this.
pub const OLDEST: u32 = 1;

/// Whether a controller speaking [`VERSION`] takes an agent speaking `agent`: every version
/// from [`OLDEST`] to its own, so controllers can be upgraded first and agents after. The
/// refusal names the versions it takes.
pub fn accepts(agent: u32) -> Result<(), String> {
    if (OLDEST..=VERSION).contains(&agent) {
        return Ok(());
    }
    let upgrade = if agent < VERSION {
        "the agent"
    } else {
        "the controller"
    };
    Err(format!(
        "this agent speaks protocol version {agent}; this controller speaks {VERSION} and accepts {OLDEST} to {VERSION}: upgrade {upgrade}"
    ))
}

// The messages carry their own types, not the core's: a core type may change shape between
// releases, a message may not (agents and controllers of adjacent versions talk to each
// other). Enums go by their variant names.

mirror_enum!(MonitorKind <=> monitor::MonitorType { Http, Https, Tcp, UdpIcmp, IcmpPing, Smtp });
mirror_enum!(FailureReason <=> check::FailureReason {
    None, TcpConnectionFailed, TcpTimeout, HttpTimeout, ResponseCodeMismatch,
    ResponseBodyMismatch, TlsUntrusted, TlsNameMismatch, TlsHandshake, NoRoute,
    NetworkUnreachable, ConnectionReset, DnsUnknownHost, HttpInvalidResponse, Other,
    LocalResources,
});

/// What to check and how to judge it (a monitor's configuration).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Monitor {
    pub kind: MonitorKind,
    pub method: String,
    pub path: String,
    pub header: BTreeMap<String, Vec<String>>,
    pub port: u16,
    pub timeout: u8,
    pub retries: u8,
    pub interval: u16,
    pub expected_codes: Option<String>,
    pub expected_body: String,
    pub follow_redirects: bool,
    pub allow_insecure: bool,
    pub consecutive_up: u8,
    pub consecutive_down: u8,
    pub probe_zone: String,
    pub description: String,
    /// Version 5, in assignments: the account whose pools the monitor's targets serve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountId>,
}

impl From<&MonitorSpec> for Monitor {
    fn from(s: &MonitorSpec) -> Self {
        Self {
            kind: s.kind.into(),
            method: s.method.clone(),
            path: s.path.clone(),
            header: s.header.clone(),
            port: s.port,
            timeout: s.timeout,
            retries: s.retries,
            interval: s.interval,
            expected_codes: s.expected_codes.as_ref().map(ToString::to_string),
            expected_body: s.expected_body.clone(),
            follow_redirects: s.follow_redirects,
            allow_insecure: s.allow_insecure,
            consecutive_up: s.consecutive_up,
            consecutive_down: s.consecutive_down,
            probe_zone: s.probe_zone.clone(),
            description: s.description.clone(),
            account: None,
        }
    }
}

impl TryFrom<Monitor> for MonitorSpec {
    type Error = String;

    /// Refuses only what the core could not hold (`expected_codes` that do not parse).
    fn try_from(m: Monitor) -> Result<Self, String> {
        let expected_codes = match m.expected_codes {
            None => None,
            Some(raw) => Some(
                ExpectedCodes::parse(&raw)
                    .ok_or_else(|| format!("expected_codes {raw:?} does not parse"))?,
            ),
        };
        Ok(Self {
            kind: m.kind.into(),
            // Agents never render a monitor.
            kind_as_written: None,
            method: m.method,
            path: m.path,
            header: m.header,
            port: m.port,
            timeout: m.timeout,
            retries: m.retries,
            interval: m.interval,
            expected_codes,
            expected_body: m.expected_body,
            follow_redirects: m.follow_redirects,
            allow_insecure: m.allow_insecure,
            consecutive_up: m.consecutive_up,
            consecutive_down: m.consecutive_down,
            probe_zone: m.probe_zone,
            description: m.description,
        })
    }
}

/// A probe target: a monitor against one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TargetKey {
    pub monitor: MonitorId,
    pub address: String,
    /// The origin's port override (0: the monitor's).
    pub port: u16,
    /// The origin's `Host` override.
    pub host: Option<String>,
}

impl From<&ProbeKey> for TargetKey {
    fn from(k: &ProbeKey) -> Self {
        Self {
            monitor: k.monitor,
            address: k.address.clone(),
            port: k.port,
            host: k.host.clone(),
        }
    }
}

impl From<TargetKey> for ProbeKey {
    fn from(k: TargetKey) -> Self {
        Self {
            monitor: k.monitor,
            address: k.address,
            port: k.port,
            host: k.host,
        }
    }
}

/// What a check saw (facts, never a verdict).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Observed {
    Http { status: u16, body_matched: bool },
    Smtp { helo: u16, quit: Option<u16> },
    Reached,
    Error(FailureReason),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckFacts {
    pub outcome: Observed,
    pub rtt_micros: Option<u64>,
}

impl From<&Facts> for CheckFacts {
    fn from(f: &Facts) -> Self {
        Self {
            outcome: match f.outcome {
                Outcome::Http {
                    status,
                    body_matched,
                } => Observed::Http {
                    status,
                    body_matched,
                },
                Outcome::Smtp { helo, quit } => Observed::Smtp { helo, quit },
                Outcome::Reached => Observed::Reached,
                Outcome::Error(r) => Observed::Error(r.into()),
            },
            rtt_micros: f.rtt_micros,
        }
    }
}

impl From<CheckFacts> for Facts {
    fn from(f: CheckFacts) -> Self {
        Self {
            outcome: match f.outcome {
                Observed::Http {
                    status,
                    body_matched,
                } => Outcome::Http {
                    status,
                    body_matched,
                },
                Observed::Smtp { helo, quit } => Outcome::Smtp { helo, quit },
                Observed::Reached => Outcome::Reached,
                Observed::Error(r) => Outcome::Error(r.into()),
            },
            rtt_micros: f.rtt_micros,
        }
    }
}

/// One target of an assignment; its monitor is `key.monitor` in [`Assignment::monitors`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    pub key: TargetKey,
    /// Names of the pools the target serves (for the probe's User-Agent).
    pub pools: Vec<String>,
}

/// `GET assignment` answers this (inside the usual envelope's `result`). Each monitor is sent
/// once, however many targets use it: at 100,000 targets that is most of the message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    pub version: u64,
    /// Version 4: the controller's numbering of versions (drawn when it starts, and again
    /// when it starts or stops judging). A version means something only within its epoch;
    /// an agent asks for a delta by naming both (`?version=&epoch=`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
    pub monitors: BTreeMap<MonitorId, Monitor>,
    /// Every target (no `changes`), or the targets new or changed since `changes.since`,
    /// each replacing what the agent held.
    pub targets: Vec<Target>,
    /// Version 4: present when this message is a delta on the version the agent named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<Changes>,
}

/// What makes an [`Assignment`] a delta.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Changes {
    /// The version it applies to.
    pub since: u64,
    /// Targets no longer assigned, removed before `targets` are applied (a target removed and
    /// assigned again since is in both).
    pub removed: Vec<TargetKey>,
}

impl Assignment {
    /// Builds the whole message from the engine's assignment.
    pub fn from_engine(
        version: u64,
        epoch: u64,
        assigned: Vec<vantage_core::health::engine::Assignment>,
    ) -> Self {
        let (monitors, targets) = targets(assigned);
        Self {
            version,
            epoch: Some(epoch),
            monitors,
            targets,
            changes: None,
        }
    }

    /// Builds a delta on version `since` from the engine's.
    pub fn delta_from_engine(
        version: u64,
        epoch: u64,
        since: u64,
        delta: vantage_core::health::engine::AssignmentDelta,
    ) -> Self {
        let (monitors, targets) = targets(delta.assigned);
        Self {
            version,
            epoch: Some(epoch),
            monitors,
            targets,
            changes: Some(Changes {
                since,
                removed: delta.removed.iter().map(TargetKey::from).collect(),
            }),
        }
    }
}

/// The targets of an assignment, with each of their monitors once.
fn targets(
    assigned: Vec<vantage_core::health::engine::Assignment>,
) -> (BTreeMap<MonitorId, Monitor>, Vec<Target>) {
    let mut monitors = BTreeMap::new();
    let targets = assigned
        .into_iter()
        .map(|a| {
            monitors.entry(a.key.monitor).or_insert_with(|| Monitor {
                account: a.account,
                ..Monitor::from(&*a.spec)
            });
            Target {
                key: TargetKey::from(&a.key),
                pools: a.pools,
            }
        })
        .collect();
    (monitors, targets)
}

/// One check's facts, with when it ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reported {
    pub key: TargetKey,
    pub facts: CheckFacts,
    pub at: Timestamp,
}

/// `POST results` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub region: String,
    pub location: String,
    pub results: Vec<Reported>,
}

/// One check a preview asks of a location: a candidate monitor against one origin. Its facts
/// go back under `id`; they never reach the health engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreviewCheck {
    pub id: u64,
    pub monitor: Monitor,
    pub address: String,
    /// The origin's port override (0: the monitor's).
    pub port: u16,
    /// The origin's `Host` override.
    pub host: Option<String>,
}

/// `GET preview_checks` answers this: the checks waiting for this location (possibly none,
/// after the long poll's wait).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreviewChecks {
    pub checks: Vec<PreviewCheck>,
}

/// One preview check's facts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreviewFacts {
    pub id: u64,
    pub facts: CheckFacts,
}

/// `POST preview_checks` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreviewReport {
    pub results: Vec<PreviewFacts>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_versions_are_accepted_and_others_named() {
        assert!(accepts(VERSION).is_ok());
        assert!(accepts(VERSION - 1).is_ok());
        assert!(accepts(OLDEST).is_ok());
        let old = accepts(OLDEST - 1).unwrap_err();
        assert!(
            old.contains("version 0")
                && old.contains("speaks 5")
                && old.contains("upgrade the agent"),
            "{old}"
        );
        let new = accepts(VERSION + 1).unwrap_err();
        assert!(new.contains("upgrade the controller"), "{new}");
    }
}
