//! Session affinity on the wire: the `__cflb` cookie (for `cookie` and `ip_cookie`) and the
//! table of header-keyed sessions (for `header`), which lives in the data plane because only
//! the data plane sees the requests.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::header::{HeaderMap, HeaderValue, COOKIE};
use vantage_core::load_balancer::{affinity_cookies, AffinityAttributes, SameSite, Secure};
use vantage_core::routing::Pin;
use vantage_core::LoadBalancerId;

pub const COOKIE_NAME: &str = "__cflb";

/// Header sessions kept at most (about 25 MB); beyond it, new sessions get no affinity until a
/// sweep frees room.
const MAX_SESSIONS: usize = 250_000;
/// A full table is swept at most this often, so clients minting keys cannot make every
/// request pay for a sweep.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// The pin a request's `__cflb` cookie carries, if any is valid.
pub fn cookie_pin(headers: &HeaderMap) -> Option<Pin> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE_NAME)
        .and_then(|(_, v)| Pin::decode(v.trim_matches('"')))
}

/// The `Set-Cookie` value pinning a client; `ttl` 0 makes it a session cookie.
pub fn set_cookie(pin: Pin, ttl: u32, attributes: &AffinityAttributes, https: bool) -> String {
    let mut c = format!("{COOKIE_NAME}={}; Path=/; HttpOnly", pin.encode());
    if ttl > 0 {
        c.push_str(&format!("; Max-Age={ttl}"));
    }
    // Browsers drop a SameSite=None cookie that is not Secure, so None implies Secure.
    let secure = match attributes.secure {
        Secure::Always => true,
        Secure::Never => attributes.samesite == SameSite::None,
        Secure::Auto => https || attributes.samesite == SameSite::None,
    };
    if secure {
        c.push_str("; Secure");
    }
    c.push_str(match attributes.samesite {
        // Browsers refuse SameSite=None without Secure, so Auto only asks for it when secure.
        SameSite::Auto | SameSite::Lax => "; SameSite=Lax",
        SameSite::Strict => "; SameSite=Strict",
        SameSite::None => "; SameSite=None",
    });
    c
}

/// The session key of a request under header affinity: a hash of the configured headers'
/// values, or `None` when they are absent (any missing with `require_all_headers`, all
/// missing otherwise).
///
/// An entry `cookie:<name>,<name>` stands for those cookies of the `Cookie` header, each
/// counted as one header.
pub fn header_key(headers: &HeaderMap, attributes: &AffinityAttributes) -> Option<u64> {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let mut seen = 0usize;
    let mut mix = |name: &[u8], value: &[u8]| {
        for b in name.iter().chain(&[0]).chain(value).chain(&[0]) {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    };
    for entry in &attributes.headers {
        let values: Vec<(&[u8], Option<&[u8]>)> = match affinity_cookies(entry) {
            Some(names) => names
                .into_iter()
                .map(|n| (n.as_bytes(), cookie(headers, n)))
                .collect(),
            None => vec![(
                entry.as_bytes(),
                headers.get(entry.as_str()).map(HeaderValue::as_bytes),
            )],
        };
        for (name, value) in values {
            match value {
                Some(v) => {
                    seen += 1;
                    mix(name, v);
                }
                None if attributes.require_all_headers => return None,
                None => {}
            }
        }
    }
    (seen > 0).then_some(h)
}

/// The value of the cookie `name` in the request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a [u8]> {
    headers
        .get_all(COOKIE)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b';'))
        .find_map(|pair| {
            let pair = pair.trim_ascii();
            let eq = pair.iter().position(|b| *b == b'=')?;
            (&pair[..eq] == name.as_bytes()).then(|| &pair[eq + 1..])
        })
}

/// Header-keyed sessions with a sliding expiry.
#[derive(Debug, Default)]
pub struct Sessions {
    map: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    pins: HashMap<(LoadBalancerId, u64), (Pin, Instant)>,
    swept: Option<Instant>,
}

impl Sessions {
    pub fn get(&self, lb: LoadBalancerId, key: u64, now: Instant) -> Option<Pin> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.pins
            .get(&(lb, key))
            .filter(|(_, until)| *until > now)
            .map(|(pin, _)| *pin)
    }

    pub fn put(&self, lb: LoadBalancerId, key: u64, pin: Pin, now: Instant, ttl: Duration) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.pins.len() >= MAX_SESSIONS && !map.pins.contains_key(&(lb, key)) {
            if map
                .swept
                .is_some_and(|t| now.saturating_duration_since(t) < SWEEP_EVERY)
            {
                return;
            }
            map.swept = Some(now);
            map.pins.retain(|_, (_, until)| *until > now);
            if map.pins.len() >= MAX_SESSIONS {
                return;
            }
        }
        map.pins.insert((lb, key), (pin, now + ttl));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use http::HeaderValue;
    use vantage_core::PoolId;

    fn attrs(headers: &[&str], all: bool) -> AffinityAttributes {
        AffinityAttributes {
            samesite: SameSite::Auto,
            secure: Secure::Auto,
            zero_downtime_failover: vantage_core::load_balancer::ZeroDowntimeFailover::None,
            drain_duration: 0,
            headers: headers.iter().map(|s| s.to_string()).collect(),
            require_all_headers: all,
        }
    }

    #[test]
    fn cookies_round_trip_among_others() {
        let pin = Pin {
            pool: PoolId::from_bytes([3; 16]),
            origin: 42,
        };
        let set = set_cookie(pin, 1800, &attrs(&[], false), true);
        assert!(
            set.contains("Max-Age=1800") && set.contains("; Secure"),
            "{set}"
        );
        let value = set.split(';').next().unwrap().to_string();
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("a=b"));
        h.append(
            COOKIE,
            HeaderValue::from_str(&format!("x=1; {value}")).unwrap(),
        );
        assert_eq!(cookie_pin(&h), Some(pin));
        let mut bad = HeaderMap::new();
        bad.append(COOKIE, HeaderValue::from_static("__cflb=nonsense"));
        assert_eq!(cookie_pin(&bad), None);
        assert!(!set_cookie(pin, 0, &attrs(&[], false), false).contains("Max-Age"));
    }

    #[test]
    fn cookie_entries_key_on_the_named_cookies_only() {
        let with = |cookies: &str| {
            let mut h = HeaderMap::new();
            h.append(COOKIE, HeaderValue::from_str(cookies).unwrap());
            h
        };
        let some = attrs(&["cookie:session,region"], false);
        let all = attrs(&["cookie:session,region"], true);
        // Other cookies do not move the key; the named ones do.
        let a = header_key(&with("session=s1; region=eu; theme=dark"), &some);
        assert_eq!(
            a,
            header_key(&with("theme=light; region=eu; session=s1"), &some)
        );
        assert_ne!(a, header_key(&with("session=s2; region=eu"), &some));
        assert!(a.is_some());
        // Each named cookie counts as one header for require_all_headers.
        assert!(header_key(&with("session=s1"), &some).is_some());
        assert!(header_key(&with("session=s1"), &all).is_none());
        assert!(header_key(&with("theme=dark"), &some).is_none());
        // A name inside another's value is not that cookie.
        assert!(header_key(&with("x=session=s1"), &some).is_none());
    }

    #[test]
    fn header_keys_follow_require_all() {
        let mut h = HeaderMap::new();
        h.insert("x-user", HeaderValue::from_static("alice"));
        let any = attrs(&["x-user", "x-tenant"], false);
        let all = attrs(&["x-user", "x-tenant"], true);
        assert!(header_key(&h, &any).is_some());
        assert_eq!(header_key(&h, &all), None);
        assert_eq!(header_key(&HeaderMap::new(), &any), None);
        let mut other = HeaderMap::new();
        other.insert("x-user", HeaderValue::from_static("bob"));
        assert_ne!(header_key(&h, &any), header_key(&other, &any));
    }

    #[test]
    fn sessions_expire() {
        let s = Sessions::default();
        let lb = LoadBalancerId::from_bytes([1; 16]);
        let pin = Pin {
            pool: PoolId::from_bytes([3; 16]),
            origin: 7,
        };
        let t0 = Instant::now();
        s.put(lb, 9, pin, t0, Duration::from_secs(30));
        assert_eq!(s.get(lb, 9, t0 + Duration::from_secs(29)), Some(pin));
        assert_eq!(s.get(lb, 9, t0 + Duration::from_secs(31)), None);
    }
}
