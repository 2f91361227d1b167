//! Health: from one probe's facts to the verdicts that steer traffic (contract §5).
//!
//! - [`check`]: one check's facts (what a prober saw) judged against its monitor.
//! - [`verdict`]: per-location hysteresis, region and origin majorities, pool thresholds.
//! - [`schedule`]: when each assigned probe is due at one location (agent side).
//! - [`in_flight`]: how many checks one agent runs at once (agent side).
//! - [`plan`]: what the engine judges, a plain value the catalog derives.
//! - [`engine`]: every location's results for every pool, and the events they cause
//!   (controller side).
//! - [`view`]: the verdicts the engine decided, one immutable value everything else reads.
//!
//! All of it is sans-IO: time arrives as [`Timestamp`](crate::Timestamp) arguments.

pub mod changes;
pub mod check;
pub mod engine;
pub mod fair;
pub mod in_flight;
pub mod latency;
pub mod plan;
pub mod schedule;
pub mod verdict;
pub mod view;

pub use check::{CheckResult, Facts, FailureReason, Outcome};
pub use engine::{Engine, Event, OriginHealth, PoolHealth};
pub use fair::FairQueue;
pub use in_flight::InFlightLimit;
pub use plan::HealthPlan;
pub use schedule::Schedule;
pub use verdict::{LocationState, RegionVerdicts, Verdict};
pub use view::{Decided, DecidedOrigin, HealthView, OriginVerdict, PoolVerdicts, Probe, Probes};

use std::fmt;

use crate::region::RegionCode;
use crate::MonitorId;

/// A probe location: one agent, in one region (`WEU` / `ams1`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    pub region: RegionCode,
    pub name: String,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.region, self.name)
    }
}

impl Location {
    /// A location name: 1–63 letters, digits, `-`, `_` or `.` (it appears in logs, URLs and
    /// the health breakdown).
    pub fn is_valid_name(name: &str) -> bool {
        !name.is_empty()
            && name.len() <= 63
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    }
}

/// What one probe checks: a monitor against one endpoint. Pools that share a monitor and
/// an origin endpoint share its probes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProbeKey {
    pub monitor: MonitorId,
    pub address: String,
    /// The origin's port override (0: the monitor's).
    pub port: u16,
    /// The origin's `Host` override.
    pub host: Option<String>,
}

impl fmt::Display for ProbeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}|{}|{}|{}",
            self.monitor,
            self.address,
            self.port,
            self.host.as_deref().unwrap_or("")
        )
    }
}
