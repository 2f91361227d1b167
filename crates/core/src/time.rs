//! Instants as plain values. The core never reads a clock: callers pass `now` in.

use serde::{Deserialize, Serialize};

/// Microseconds since the Unix epoch, UTC. Microsecond precision is what the wire format
/// carries (`2014-01-01T05:20:00.123456Z`), so a stored and reloaded instant renders to the
/// same bytes.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_unix_micros(micros: i64) -> Self {
        Self(micros)
    }

    pub const fn unix_micros(self) -> i64 {
        self.0
    }
}
