//! Smoothed round-trip times for dynamic latency steering: each sample moves the smoothed
//! value by a weight that grows with the time since the previous one, so the result depends
//! on how fast RTTs change in time, not on how often a snapshot happens to be rebuilt.

use crate::Timestamp;

/// After this long, a new sample has moved the value halfway to itself.
const HALF_LIFE_SECS: f64 = 10.0;
/// Samples from several locations may arrive together; each still counts this much.
const MIN_WEIGHT: f64 = 0.2;

#[derive(Debug, Clone, Copy)]
pub struct Smoothed {
    pub ms: f64,
    pub at: Timestamp,
}

/// Bit-for-bit, so states holding one stay comparable (a smoothed value is never NaN).
impl PartialEq for Smoothed {
    fn eq(&self, other: &Smoothed) -> bool {
        self.ms.to_bits() == other.ms.to_bits() && self.at == other.at
    }
}

impl Eq for Smoothed {}

impl Smoothed {
    pub fn first(ms: f64, at: Timestamp) -> Smoothed {
        Smoothed { ms, at }
    }

    /// Takes one sample taken at `at` (an older one than the last still counts, at the
    /// minimum weight).
    pub fn update(&mut self, ms: f64, at: Timestamp) {
        let dt = (at.unix_micros() - self.at.unix_micros()).max(0) as f64 / 1e6;
        let weight = (1.0 - (-dt / HALF_LIFE_SECS).exp2()).max(MIN_WEIGHT);
        self.ms += weight * (ms - self.ms);
        self.at = self.at.max(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: i64) -> Timestamp {
        Timestamp::from_unix_micros(s * 1_000_000)
    }

    #[test]
    fn weight_follows_elapsed_time() {
        let mut a = Smoothed::first(100.0, secs(0));
        a.update(200.0, secs(10));
        assert!(
            (a.ms - 150.0).abs() < 1e-9,
            "one half-life: halfway, got {}",
            a.ms
        );
        let mut b = Smoothed::first(100.0, secs(0));
        b.update(200.0, secs(600));
        assert!(
            b.ms > 199.0,
            "long after, the sample is nearly all: {}",
            b.ms
        );
        let mut c = Smoothed::first(100.0, secs(0));
        c.update(200.0, secs(0));
        assert!(
            (c.ms - 120.0).abs() < 1e-9,
            "simultaneous samples still count"
        );
        c.update(0.0, secs(-5));
        assert_eq!(c.at, secs(0), "an older sample never moves time back");
    }
}
