//! Health monitors: what a check sends and what it accepts as healthy.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::choice::{choose, Choice};
use crate::name::{is_header_value, is_http_token};
use crate::violation::{in_range, Path, Violations};
use crate::{AccountId, MonitorId, Timestamp};

crate::string_enum!(MonitorType {
    Http = "http",
    Https = "https",
    Tcp = "tcp",
    UdpIcmp = "udp_icmp",
    IcmpPing = "icmp_ping",
    Smtp = "smtp",
});

impl MonitorType {
    pub const fn is_http(self) -> bool {
        matches!(self, Self::Http | Self::Https)
    }

    /// The port a check uses when neither monitor nor origin names one.
    pub const fn default_port(self) -> Option<u16> {
        match self {
            Self::Http => Some(80),
            Self::Https => Some(443),
            _ => None,
        }
    }
}

/// `expected_codes` of an http(s) monitor that names none, as Cloudflare defaults it.
pub const DEFAULT_EXPECTED_CODES: &str = "200";

/// One alternative in `expected_codes`: an exact status or a class such as `2xx`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CodePattern {
    Exact(u16),
    Class(u16),
}

/// The statuses an HTTP check accepts, e.g. `"200"`, `"2xx"`, `"200,301,3xx"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ExpectedCodes {
    raw: String,
    patterns: Vec<CodePattern>,
}

impl ExpectedCodes {
    pub fn parse(raw: &str) -> Option<Self> {
        let patterns = raw
            .split(',')
            .map(|part| {
                let part = part.trim();
                let b = part.as_bytes();
                if b.len() != 3 || !(b'1'..=b'5').contains(&b[0]) {
                    return None;
                }
                let class = u16::from(b[0] - b'0');
                if b[1..].eq_ignore_ascii_case(b"xx") {
                    Some(CodePattern::Class(class))
                } else {
                    part.parse::<u16>().ok().map(CodePattern::Exact)
                }
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            raw: raw.to_owned(),
            patterns,
        })
    }

    pub fn matches(&self, status: u16) -> bool {
        self.patterns.iter().any(|p| match p {
            CodePattern::Exact(c) => *c == status,
            CodePattern::Class(c) => status / 100 == *c,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }
}

impl TryFrom<String> for ExpectedCodes {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s).ok_or_else(|| format!("bad expected_codes {s:?}"))
    }
}

impl From<ExpectedCodes> for String {
    fn from(c: ExpectedCodes) -> String {
        c.raw
    }
}

impl fmt::Display for ExpectedCodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// Request headers a check sends: name → values, in a stable order.
pub type Headers = BTreeMap<String, Vec<String>>;

/// A validated monitor configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorSpec {
    pub kind: MonitorType,
    /// `type` as the client spelled it when not in the API's lower case (`"HTTP"`, which
    /// Terraform's validator accepts): echoed back as written, so a plan sees no change.
    pub kind_as_written: Option<String>,
    pub method: String,
    pub path: String,
    pub header: Headers,
    pub port: u16,
    pub timeout: u8,
    pub retries: u8,
    pub interval: u16,
    /// `None` for non-HTTP monitors that were not given one.
    pub expected_codes: Option<ExpectedCodes>,
    pub expected_body: String,
    pub follow_redirects: bool,
    pub allow_insecure: bool,
    pub consecutive_up: u8,
    pub consecutive_down: u8,
    pub probe_zone: String,
    pub description: String,
}

impl MonitorSpec {
    /// The longest one check may take: its timeout for the first try and every retry (µs).
    pub fn check_micros(&self) -> u64 {
        u64::from(self.timeout) * (u64::from(self.retries) + 1) * 1_000_000
    }
}

/// A stored monitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Monitor {
    pub id: MonitorId,
    pub account: AccountId,
    pub spec: MonitorSpec,
    pub created_on: Timestamp,
    pub modified_on: Timestamp,
}

/// A monitor as a client described it: every field optional, values unchecked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MonitorDraft {
    pub kind: Option<String>,
    pub method: Option<String>,
    pub path: Option<String>,
    pub header: Option<Headers>,
    pub port: Option<i64>,
    pub timeout: Option<i64>,
    pub retries: Option<i64>,
    pub interval: Option<i64>,
    pub expected_codes: Option<String>,
    pub expected_body: Option<String>,
    pub follow_redirects: Option<bool>,
    pub allow_insecure: Option<bool>,
    pub consecutive_up: Option<i64>,
    pub consecutive_down: Option<i64>,
    pub probe_zone: Option<String>,
    pub description: Option<String>,
}

pub const DEFAULT_TIMEOUT: u8 = 5;
pub const DEFAULT_RETRIES: u8 = 2;
pub const DEFAULT_INTERVAL: u16 = 60;
pub const MAX_DESCRIPTION: usize = 1024;

/// Narrows an integer already checked to lie in `[lo, hi]` (itself within `T`'s range).
fn narrow<T: TryFrom<i64> + Copy>(
    v: &mut Violations,
    path: &Path,
    name: &str,
    value: i64,
    lo: i64,
    hi: i64,
    fallback: T,
) -> T {
    let checked = in_range(path, name, value, lo, hi);
    let value = v.take(checked, lo);
    T::try_from(value).unwrap_or(fallback)
}

impl MonitorDraft {
    /// Applies defaults and every rule of a monitor; reports all violations at once.
    pub fn validate(self) -> Result<MonitorSpec, Violations> {
        let root = Path::root();
        let mut v = Violations::default();

        // Any case, as Terraform's validator takes it; the spelling is kept to echo back.
        let lower = self.kind.as_deref().map(str::to_ascii_lowercase);
        let kind = choose(
            &mut v,
            root.key("type"),
            lower.as_deref(),
            MonitorType::Http,
        );
        let kind_as_written = self.kind.filter(|raw| {
            raw.as_str() != kind.as_str() && MonitorType::parse(&raw.to_ascii_lowercase()).is_some()
        });

        let method = match (self.method, kind) {
            (Some(m), MonitorType::Http | MonitorType::Https) => {
                if !is_http_token(&m) {
                    v.push(
                        root.key("method"),
                        format!("method {m:?} is not a valid HTTP method"),
                    );
                }
                m
            }
            (Some(m), MonitorType::Tcp) => {
                if m != "connection_established" {
                    v.push(
                        root.key("method"),
                        "method must be \"connection_established\" for tcp monitors",
                    );
                }
                m
            }
            (Some(m), _) => m,
            (None, MonitorType::Http | MonitorType::Https) => "GET".to_owned(),
            (None, MonitorType::Tcp) => "connection_established".to_owned(),
            (None, _) => String::new(),
        };

        let path = self.path.unwrap_or_else(|| "/".to_owned());
        if kind.is_http() && !path.starts_with('/') {
            v.push(root.key("path"), "path must start with \"/\"");
        }
        if path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            v.push(
                root.key("path"),
                "path must not contain spaces or control characters",
            );
        }

        let header = self.header.unwrap_or_default();
        for (name, values) in &header {
            let at = root.key("header").key(name.clone());
            if !is_http_token(name) {
                v.push(
                    at.clone(),
                    format!("header name {name:?} is not a valid HTTP header name"),
                );
            }
            if name.eq_ignore_ascii_case("user-agent") {
                v.push(at.clone(), "the User-Agent header cannot be overridden");
            }
            // A check's request has no body: these would make the origin wait for one.
            if name.eq_ignore_ascii_case("transfer-encoding")
                || (name.eq_ignore_ascii_case("content-length") && values.iter().any(|v| v != "0"))
            {
                v.push(
                    at.clone(),
                    format!("a check's request has no body, so {name} cannot be set (Content-Length may only be 0)"),
                );
            }
            for (i, value) in values.iter().enumerate() {
                if !is_header_value(value) {
                    v.push(
                        at.index(i),
                        format!("header {name} has a value with control characters"),
                    );
                }
            }
            if name.eq_ignore_ascii_case("host") && values.len() != 1 {
                v.push(at, "the Host header takes exactly one value");
            }
        }

        let port = narrow(
            &mut v,
            &root.key("port"),
            "port",
            self.port.unwrap_or(0),
            0,
            65535,
            0u16,
        );
        if port == 0
            && matches!(
                kind,
                MonitorType::Tcp | MonitorType::UdpIcmp | MonitorType::Smtp
            )
        {
            v.push(
                root.key("port"),
                format!("port is required for {} monitors", kind.as_str()),
            );
        }
        let timeout = narrow(
            &mut v,
            &root.key("timeout"),
            "timeout",
            self.timeout.unwrap_or(DEFAULT_TIMEOUT.into()),
            1,
            10,
            DEFAULT_TIMEOUT,
        );
        let retries = narrow(
            &mut v,
            &root.key("retries"),
            "retries",
            self.retries.unwrap_or(DEFAULT_RETRIES.into()),
            0,
            5,
            DEFAULT_RETRIES,
        );
        let interval = narrow(
            &mut v,
            &root.key("interval"),
            "interval",
            self.interval.unwrap_or(DEFAULT_INTERVAL.into()),
            5,
            3600,
            DEFAULT_INTERVAL,
        );
        let attempts_span = (u16::from(retries) + 1) * u16::from(timeout);
        if interval <= attempts_span {
            v.push(
                root.key("interval"),
                format!(
                    "interval must be greater than (retries + 1) * timeout = {attempts_span} seconds"
                ),
            );
        }

        // Cloudflare's default for http(s) monitors is "200"; Terraform sends "" for unset.
        let expected_codes = match self.expected_codes {
            Some(raw) if raw.is_empty() && !kind.is_http() => None,
            Some(raw) if raw.is_empty() => ExpectedCodes::parse(DEFAULT_EXPECTED_CODES),
            Some(raw) => ExpectedCodes::parse(&raw).or_else(|| {
                v.push(
                    root.key("expected_codes"),
                    format!("expected_codes {raw:?} must be status codes or classes like \"200\", \"2xx\" or \"200,301,3xx\""),
                );
                None
            }),
            None if kind.is_http() => ExpectedCodes::parse(DEFAULT_EXPECTED_CODES),
            None => None,
        };

        let consecutive_up = narrow(
            &mut v,
            &root.key("consecutive_up"),
            "consecutive_up",
            self.consecutive_up.unwrap_or(0),
            0,
            100,
            0u8,
        );
        let consecutive_down = narrow(
            &mut v,
            &root.key("consecutive_down"),
            "consecutive_down",
            self.consecutive_down.unwrap_or(0),
            0,
            100,
            0u8,
        );

        let description = self.description.unwrap_or_default();
        if description.chars().count() > MAX_DESCRIPTION {
            v.push(
                root.key("description"),
                format!("description is longer than {MAX_DESCRIPTION} characters"),
            );
        }

        // Cloudflare probes as if for that zone; a Vantage agent does so by sending the zone as
        // the check's Host and TLS server name, unless the origin or the monitor names a Host.
        let probe_zone = self
            .probe_zone
            .map(|z| z.trim_end_matches('.').to_ascii_lowercase())
            .unwrap_or_default();
        if !probe_zone.is_empty() {
            if !kind.is_http() {
                v.push(
                    root.key("probe_zone"),
                    "probe_zone applies only to http and https monitors",
                );
            } else if !crate::name::is_hostname(&probe_zone) {
                v.push(
                    root.key("probe_zone"),
                    format!("probe_zone {probe_zone:?} is not a host name"),
                );
            }
        }
        v.finish(MonitorSpec {
            kind,
            kind_as_written,
            method,
            path,
            header,
            port,
            timeout,
            retries,
            interval,
            expected_codes,
            expected_body: self.expected_body.unwrap_or_default(),
            follow_redirects: self.follow_redirects.unwrap_or(false),
            allow_insecure: self.allow_insecure.unwrap_or(false),
            consecutive_up,
            consecutive_down,
            probe_zone,
            description,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(codes: &str) -> MonitorDraft {
        MonitorDraft {
            expected_codes: Some(codes.into()),
            ..Default::default()
        }
    }

    fn pointers(err: Violations) -> Vec<String> {
        err.iter().map(|v| v.path.to_pointer()).collect()
    }

    #[test]
    fn defaults_for_minimal_http_monitor() {
        let spec = http("2xx").validate().unwrap();
        assert_eq!(spec.kind, MonitorType::Http);
        assert_eq!(spec.method, "GET");
        assert_eq!(spec.path, "/");
        assert_eq!(
            (spec.port, spec.timeout, spec.retries, spec.interval),
            (0, 5, 2, 60)
        );
        assert!(spec.expected_codes.unwrap().matches(204));
    }

    #[test]
    fn tcp_defaults_and_port_rule() {
        let draft = MonitorDraft {
            kind: Some("tcp".into()),
            ..Default::default()
        };
        assert_eq!(pointers(draft.clone().validate().unwrap_err()), ["/port"]);
        let spec = MonitorDraft {
            port: Some(22),
            ..draft
        }
        .validate()
        .unwrap();
        assert_eq!(spec.method, "connection_established");
        assert_eq!(spec.expected_codes, None);
    }

    #[test]
    fn types_in_any_case_are_echoed_as_written() {
        let spec = |t: &str| {
            MonitorDraft {
                kind: Some(t.into()),
                port: Some(443),
                ..http("2xx")
            }
            .validate()
        };
        let upper = spec("HTTPS").unwrap();
        assert_eq!(
            (upper.kind, upper.kind_as_written.as_deref()),
            (MonitorType::Https, Some("HTTPS"))
        );
        let mixed = spec("Icmp_Ping").unwrap();
        assert_eq!(mixed.kind, MonitorType::IcmpPing);
        assert_eq!(spec("http").unwrap().kind_as_written, None);
        // Terraform's validator takes the underscore spellings only.
        assert!(spec("ICMP-PING").is_err());
    }

    #[test]
    fn reports_every_violation_with_pointers() {
        let draft = MonitorDraft {
            kind: Some("gopher".into()),
            timeout: Some(99),
            retries: Some(-1),
            path: Some("health".into()),
            header: Some([("User-Agent".to_owned(), vec!["x".to_owned()])].into()),
            ..http("2xx")
        };
        let p = pointers(draft.validate().unwrap_err());
        assert_eq!(
            p,
            [
                "/type",
                "/path",
                "/header/User-Agent",
                "/timeout",
                "/retries"
            ]
        );
    }

    #[test]
    fn headers_that_promise_a_body_are_refused() {
        let with = |name: &str, value: &str| MonitorDraft {
            header: Some([(name.to_owned(), vec![value.to_owned()])].into()),
            ..http("2xx")
        };
        for (name, value) in [("Transfer-Encoding", "chunked"), ("content-length", "5")] {
            let p = pointers(with(name, value).validate().unwrap_err());
            assert_eq!(p, [format!("/header/{name}")]);
        }
        assert!(with("Content-Length", "0").validate().is_ok());
    }

    #[test]
    fn interval_must_exceed_attempt_span() {
        let draft = MonitorDraft {
            interval: Some(15),
            timeout: Some(5),
            retries: Some(2),
            ..http("200")
        };
        let err = draft.validate().unwrap_err();
        assert_eq!(pointers(err.clone()), ["/interval"]);
        assert!(err.iter().next().unwrap().detail.contains("15 seconds"));
    }

    #[test]
    fn expected_codes_grammar() {
        let c = ExpectedCodes::parse("200,301,4xx").unwrap();
        assert!(c.matches(200) && c.matches(301) && c.matches(404));
        assert!(!c.matches(302) && !c.matches(500));
        for bad in ["", "2x", "600", "20", "abc", "200,,201"] {
            assert_eq!(ExpectedCodes::parse(bad), None, "{bad:?}");
        }
        assert_eq!(
            pointers(http("abc").validate().unwrap_err()),
            ["/expected_codes"]
        );
        // Left out or empty (as Terraform sends it), an http monitor expects Cloudflare's 200.
        for draft in [MonitorDraft::default(), http("")] {
            let spec = draft.validate().unwrap();
            let codes = spec.expected_codes.unwrap();
            assert!(codes.matches(200) && !codes.matches(204));
        }
    }
}
