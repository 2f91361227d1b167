//! How many checks one agent runs at once, within its configured ceiling.
//!
//! More checks at once is more checks done only while a check's time goes to waiting on the
//! network: real origins, and dead ones holding a slot for their whole timeout. When the
//! machine itself is the bottleneck (few cores, many cheap checks), every check more at once
//! only waits longer for a core, and the machine does fewer checks per second, not more
//! (`bench/probes.sh` on loopback, BENCHMARKS.md "Probes end to end").
//!
//! The signal that tells the two apart is how long a started check waits before it first
//! runs. It is near zero while the machine keeps up, whatever the origins' round trips, and
//! grows with the queue for the cores. So while checks are waiting for a slot (the limit
//! binds), each window the limit steps down when started checks queued for a core longer
//! than [`InFlightLimit::BUSY_MICROS`] on average, and back up when they queued less than
//! [`InFlightLimit::IDLE_MICROS`] (or when no check waited for a slot). It never goes below
//! [`InFlightLimit::FLOOR`] (or the ceiling, if lower), so that a machine busy with other
//! work still keeps that many network waits going.

use crate::Timestamp;

/// The agent's limit on checks at once. Sans-IO: the agent reports what happened and the
/// time, and asks for the limit.
#[derive(Debug, Clone)]
pub struct InFlightLimit {
    ceiling: usize,
    limit: usize,
    window_started: Timestamp,
    /// Checks that found every slot taken in this window.
    starved: bool,
    queued_micros: u64,
    started: u64,
}

impl InFlightLimit {
    /// How often the limit may move.
    pub const WINDOW_MICROS: i64 = 1_000_000;
    /// The least the limit goes to (unless the ceiling is lower).
    pub const FLOOR: usize = 128;
    /// A started check waiting longer than this for a core, on average over a window, means
    /// the machine is the bottleneck.
    pub const BUSY_MICROS: u64 = 1_000;
    /// Below this the machine has room: the limit may grow back.
    pub const IDLE_MICROS: u64 = 200;

    /// Starts at `ceiling`: nothing is known yet, and a machine that keeps up never leaves it.
    pub fn new(ceiling: usize, now: Timestamp) -> Self {
        let ceiling = ceiling.max(1);
        Self {
            ceiling,
            limit: ceiling,
            window_started: now,
            starved: false,
            queued_micros: 0,
            started: 0,
        }
    }

    /// The checks that may run at once now.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The configured most.
    pub fn ceiling(&self) -> usize {
        self.ceiling
    }

    /// A due check found every slot taken.
    pub fn starved(&mut self) {
        self.starved = true;
    }

    /// `checks` checks started running, `queued_micros` in all after they were handed their
    /// slots.
    pub fn started(&mut self, checks: u64, queued_micros: u64) {
        self.started = self.started.saturating_add(checks);
        self.queued_micros = self.queued_micros.saturating_add(queued_micros);
    }

    /// When the current window ends: call [`InFlightLimit::handle_timeout`] then.
    pub fn poll_timeout(&self) -> Timestamp {
        Timestamp::from_unix_micros(self.window_started.unix_micros() + Self::WINDOW_MICROS)
    }

    /// Ends the window if it is over. Returns the new limit when it moved.
    pub fn handle_timeout(&mut self, now: Timestamp) -> Option<usize> {
        if now < self.poll_timeout() {
            return None;
        }
        let (starved, started, queued) = (self.starved, self.started, self.queued_micros);
        self.window_started = now;
        self.starved = false;
        self.started = 0;
        self.queued_micros = 0;
        let floor = Self::FLOOR.min(self.ceiling);
        let before = self.limit;
        // A tenth a window either way: the queue drains over a few windows, not at once.
        let grown = (before + before / 10 + 1).min(self.ceiling);
        let shrunk = (before - before / 10).max(floor);
        self.limit = match (starved, queued.checked_div(started)) {
            // Every due check found a slot: the limit did not bind. It grows back, so a
            // burst of slow (network-bound) checks finds room.
            (false, _) => grown,
            (true, Some(mean)) if mean > Self::BUSY_MICROS => shrunk,
            (true, Some(mean)) if mean < Self::IDLE_MICROS => grown,
            // Between the two, or no check started: nothing to learn.
            (true, _) => before,
        };
        (self.limit != before).then_some(self.limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_unix_micros(seconds * 1_000_000)
    }

    /// Busy windows (slots all taken, checks queued 10 ms) from second `from` to `to`.
    fn busy(l: &mut InFlightLimit, from: i64, to: i64) {
        for s in from..to {
            window(l, s, true, 10_000);
        }
    }

    /// One window in which every started check queued `queued` µs for a core.
    fn window(l: &mut InFlightLimit, second: i64, starved: bool, queued: u64) -> Option<usize> {
        if starved {
            l.starved();
        }
        l.started(100, 100 * queued);
        l.handle_timeout(at(second))
    }

    #[test]
    fn a_busy_machine_steps_down_to_the_floor_and_no_lower() {
        let mut l = InFlightLimit::new(1024, at(0));
        assert_eq!(window(&mut l, 1, true, 10_000), Some(922));
        assert_eq!(window(&mut l, 2, true, 10_000), Some(830));
        busy(&mut l, 3, 60);
        assert_eq!(l.limit(), InFlightLimit::FLOOR);
        assert_eq!(window(&mut l, 60, true, 10_000), None);
    }

    #[test]
    fn a_machine_with_room_grows_back_to_the_ceiling_and_no_higher() {
        let mut l = InFlightLimit::new(1024, at(0));
        busy(&mut l, 1, 60);
        assert_eq!(window(&mut l, 60, true, 100), Some(141));
        for s in 61..120 {
            window(&mut l, s, true, 100);
        }
        assert_eq!(l.limit(), 1024);
    }

    #[test]
    fn between_busy_and_idle_or_with_no_check_started_the_limit_holds() {
        let mut l = InFlightLimit::new(1024, at(0));
        busy(&mut l, 1, 2);
        assert_eq!(window(&mut l, 2, true, 500), None);
        // Every slot held all window (say, by dead origins' timeouts): no wait to read.
        l.starved();
        assert_eq!(l.handle_timeout(at(3)), None);
        assert_eq!(l.limit(), 922);
    }

    #[test]
    fn network_bound_checks_keep_the_ceiling() {
        // Slots all taken, but checks start at once: they are waiting on origins, not cores.
        let mut l = InFlightLimit::new(1024, at(0));
        for s in 1..30 {
            assert_eq!(window(&mut l, s, true, 50), None);
        }
        assert_eq!(l.limit(), 1024);
    }

    #[test]
    fn a_limit_that_stops_binding_grows_back() {
        let mut l = InFlightLimit::new(1024, at(0));
        busy(&mut l, 1, 60);
        // Busy, but no check waited for a slot: the limit is not what holds checks back.
        assert_eq!(window(&mut l, 60, false, 10_000), Some(141));
        assert_eq!(window(&mut l, 61, false, 10_000), Some(156));
    }

    #[test]
    fn the_window_ends_on_time_and_not_before() {
        let mut l = InFlightLimit::new(1024, at(0));
        l.starved();
        l.started(1, 10_000);
        assert_eq!(l.poll_timeout(), at(1));
        assert_eq!(l.handle_timeout(Timestamp::from_unix_micros(999_999)), None);
        assert_eq!(l.handle_timeout(at(1)), Some(922));
        assert_eq!(l.poll_timeout(), at(2));
    }

    #[test]
    fn a_ceiling_below_the_floor_is_kept() {
        let mut l = InFlightLimit::new(16, at(0));
        busy(&mut l, 1, 10);
        assert_eq!(l.limit(), 16);
        assert_eq!(InFlightLimit::new(0, at(0)).limit(), 1);
    }
}
