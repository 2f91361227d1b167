//! Response-rate limiting (RRL) for UDP answers, as BIND, NSD and Knot do it. A UDP answer
//! is many times larger than the query that asked for it, and UDP sources are forged, so an
//! authoritative server is a ready amplifier aimed at whoever the forged source names. A
//! token bucket per client network (IPv4 /24, IPv6 /56: one victim rarely owns less) caps
//! what that network is sent; past the cap, every `slip`-th answer goes out truncated (TC=1,
//! no records: about the query's size) so that a real resolver behind that network retries
//! over TCP, which a forged source cannot do, and the others are dropped.
//!
//! Memory is bounded: a fixed table of buckets, each network hashed (with a per-process key,
//! so collisions cannot be planned) to two candidate slots. A network that finds neither slot
//! takes the one whose bucket is fuller: a full bucket says nothing a fresh one would not,
//! while an emptied one is the evidence of a flood and is the last to be forgotten.
//!
//! The clock is an argument, so the limiter is tested in virtual time.

use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// Buckets in the table: at 40 bytes each, 1.25 MiB. More networks than this at once (a
/// spray of forged sources) push out full buckets before emptied ones.
const SLOTS: usize = 1 << 15;

/// What to do with one UDP answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Send,
    /// Send it truncated: header and question only, TC set.
    Slip,
    Drop,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    /// The client network (see `network`); 0 for a slot never used.
    key: u64,
    tokens: f64,
    /// When `tokens` was last brought up to date.
    at: Instant,
    /// Answers limited so far, for the slip rotation.
    limited: u32,
}

#[derive(Debug)]
pub struct RateLimiter {
    /// Answers per second per network, which is also the burst; 0: no limit.
    rate: u32,
    slip: u32,
    hasher: RandomState,
    /// Allocated by the first answer, so a server that never sees UDP pays nothing.
    slots: Mutex<Vec<Slot>>,
}

/// The network a client address counts against, as a non-zero key: the /24 of an IPv4
/// address (also when mapped into IPv6), the /56 of an IPv6 one. The low byte tells the
/// families apart.
fn network(ip: IpAddr) -> u64 {
    let v6 = match ip {
        IpAddr::V4(v4) => return v4_network(v4.octets()),
        IpAddr::V6(v6) => v6,
    };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return v4_network(v4.octets());
    }
    let o = v6.octets();
    u64::from_be_bytes([o[0], o[1], o[2], o[3], o[4], o[5], o[6], 6])
}

fn v4_network(o: [u8; 4]) -> u64 {
    u64::from_be_bytes([0, 0, 0, 0, o[0], o[1], o[2], 4])
}

impl RateLimiter {
    /// A limiter of `rate` answers per second per client network (0 turns it off), sending
    /// every `slip`-th limited answer truncated (0: none, 1: all).
    pub fn new(rate: u32, slip: u32) -> RateLimiter {
        RateLimiter {
            rate,
            slip,
            hasher: RandomState::new(),
            slots: Mutex::new(Vec::new()),
        }
    }

    /// The bucket's tokens at `now`, without taking any.
    fn refilled(&self, slot: &Slot, now: Instant) -> f64 {
        let rate = f64::from(self.rate);
        let elapsed = now.saturating_duration_since(slot.at).as_secs_f64();
        (slot.tokens + elapsed * rate).min(rate)
    }

    /// Whether the answer to `client` at `now` is sent, slipped or dropped; sending takes a
    /// token from the client's network.
    pub fn check(&self, client: IpAddr, now: Instant) -> Verdict {
        if self.rate == 0 {
            return Verdict::Send;
        }
        let key = network(client);
        let hash = self.hasher.hash_one(key);
        let first = usize::try_from(hash & 0xffff_ffff).unwrap_or(0) % SLOTS;
        let mut second = usize::try_from(hash >> 32).unwrap_or(0) % SLOTS;
        if second == first {
            second = (first + 1) % SLOTS;
        }
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if slots.is_empty() {
            let empty = Slot {
                key: 0,
                tokens: f64::from(self.rate),
                at: now,
                limited: 0,
            };
            *slots = vec![empty; SLOTS];
        }
        let i = if slots[first].key == key {
            first
        } else if slots[second].key == key {
            second
        } else {
            let fuller = if self.refilled(&slots[first], now) >= self.refilled(&slots[second], now)
            {
                first
            } else {
                second
            };
            slots[fuller] = Slot {
                key,
                tokens: f64::from(self.rate),
                at: now,
                limited: 0,
            };
            fuller
        };
        let tokens = self.refilled(&slots[i], now);
        let slot = &mut slots[i];
        slot.tokens = tokens;
        slot.at = slot.at.max(now);
        if slot.tokens >= 1.0 {
            slot.tokens -= 1.0;
            return Verdict::Send;
        }
        slot.limited = slot.limited.wrapping_add(1);
        if self.slip != 0 && slot.limited.is_multiple_of(self.slip) {
            Verdict::Slip
        } else {
            Verdict::Drop
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::Duration;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_are_v4_slash_24_and_v6_slash_56() {
        assert_eq!(network(ip("192.0.2.1")), network(ip("192.0.2.254")));
        assert_eq!(network(ip("192.0.2.1")), network(ip("::ffff:192.0.2.9")));
        assert_ne!(network(ip("192.0.2.1")), network(ip("192.0.3.1")));
        assert_eq!(
            network(ip("2001:db8:0:ff::1")),
            network(ip("2001:db8:0:1::2"))
        );
        assert_ne!(network(ip("2001:db8:0:100::1")), network(ip("2001:db8::1")));
        // No address maps to the empty slot's key, and the families never meet.
        assert_ne!(network(ip("::")), 0);
        assert_ne!(network(ip("0.0.0.0")), 0);
        assert_ne!(network(ip("::")), network(ip("0.0.0.0")));
    }

    #[test]
    fn a_burst_is_capped_per_network_slipping_every_second_answer_and_refills() {
        let rrl = RateLimiter::new(20, 2);
        let t0 = Instant::now();
        let flood: Vec<Verdict> = (0..30)
            .map(|i| rrl.check(ip(&format!("198.51.100.{i}")), t0))
            .collect();
        assert!(flood[..20].iter().all(|v| *v == Verdict::Send));
        let over = &flood[20..];
        assert_eq!(
            over,
            &[
                Verdict::Drop,
                Verdict::Slip,
                Verdict::Drop,
                Verdict::Slip,
                Verdict::Drop,
                Verdict::Slip,
                Verdict::Drop,
                Verdict::Slip,
                Verdict::Drop,
                Verdict::Slip
            ]
        );
        // The next network has a bucket of its own.
        assert_eq!(rrl.check(ip("198.51.101.1"), t0), Verdict::Send);
        // A quarter second buys five answers back.
        let later = t0 + Duration::from_millis(250);
        let sent = (0..10)
            .filter(|_| rrl.check(ip("198.51.100.1"), later) == Verdict::Send)
            .count();
        assert_eq!(sent, 5);
        // A quiet second refills to the burst, no further.
        let much_later = t0 + Duration::from_secs(60);
        let sent = (0..40)
            .filter(|_| rrl.check(ip("198.51.100.1"), much_later) == Verdict::Send)
            .count();
        assert_eq!(sent, 20);
        // A clock read out of order on another thread does not add tokens.
        let sent = (0..5)
            .filter(|_| rrl.check(ip("198.51.100.1"), t0) == Verdict::Send)
            .count();
        assert_eq!(sent, 0);
    }

    #[test]
    fn zero_disables_and_slip_settings_are_honoured() {
        let t0 = Instant::now();
        let off = RateLimiter::new(0, 2);
        assert!((0..1000).all(|_| off.check(ip("192.0.2.1"), t0) == Verdict::Send));
        assert!(off.slots.lock().unwrap().is_empty(), "no table when off");
        let never = RateLimiter::new(1, 0);
        assert_eq!(never.check(ip("192.0.2.1"), t0), Verdict::Send);
        assert!((0..10).all(|_| never.check(ip("192.0.2.1"), t0) == Verdict::Drop));
        let always = RateLimiter::new(1, 1);
        assert_eq!(always.check(ip("192.0.2.1"), t0), Verdict::Send);
        assert!((0..10).all(|_| always.check(ip("192.0.2.1"), t0) == Verdict::Slip));
    }

    #[test]
    fn memory_is_bounded_and_a_flooded_network_outlives_a_spray_of_others() {
        let rrl = RateLimiter::new(5, 2);
        let t0 = Instant::now();
        let victim = ip("203.0.113.7");
        for _ in 0..5 {
            assert_eq!(rrl.check(victim, t0), Verdict::Send);
        }
        assert_ne!(rrl.check(victim, t0), Verdict::Send);
        // Four times as many networks as slots, each answered once.
        for n in 0..4 * SLOTS {
            let [_, a, b, c] = u32::try_from(n).unwrap().to_be_bytes();
            assert_eq!(
                rrl.check(IpAddr::from([10 + a, b, c, 1]), t0),
                Verdict::Send
            );
        }
        assert_eq!(rrl.slots.lock().unwrap().len(), SLOTS);
        assert_ne!(
            rrl.check(victim, t0),
            Verdict::Send,
            "the emptied bucket was kept"
        );
    }
}
