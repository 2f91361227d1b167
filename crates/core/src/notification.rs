//! Notifications, as Cloudflare's alerting API models them: webhook destinations, and
//! policies that send load-balancing health alerts to them. Which alert an event calls for is
//! decided here; delivering it is the shell's job.

use crate::choice::choose;
use crate::health::engine::Event;
use crate::health::Verdict;
use crate::pool::NotificationFilter;
use crate::violation::{Path, Violations};
use crate::{AccountId, PolicyId, PoolId, Timestamp, WebhookId};

pub const MAX_NAME: usize = 256;

crate::string_enum!(
    /// Which object's change an alert is about.
    EventSource {
        Pool = "pool",
        Origin = "origin",
    }
);

crate::string_enum!(
    /// The verdict an alert announces.
    NewHealth {
        Healthy = "Healthy",
        Unhealthy = "Unhealthy",
    }
);

crate::string_enum!(AlertType {
    LoadBalancingHealth = "load_balancing_health_alert",
});

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSpec {
    pub name: String,
    pub url: String,
    /// Sent as `cf-webhook-auth` with every delivery. Kept as given: the receiver compares
    /// it, so it cannot be stored hashed. Never rendered back.
    pub secret: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: WebhookId,
    pub account: AccountId,
    pub spec: WebhookSpec,
    pub created_on: Timestamp,
    pub modified_on: Timestamp,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct WebhookDraft {
    pub name: Option<String>,
    pub url: Option<String>,
    pub secret: Option<String>,
}

fn name(v: &mut Violations, raw: Option<String>) -> String {
    let name = raw.unwrap_or_default();
    if name.trim().is_empty() {
        v.push(Path::root().key("name"), "name is required");
    } else if name.chars().count() > MAX_NAME {
        v.push(
            Path::root().key("name"),
            format!("name is longer than {MAX_NAME} characters"),
        );
    }
    name
}

/// Attempts before a notification is given up (about 2 hours of retrying).
pub const MAX_ATTEMPTS: u32 = 20;
/// The longest wait between two attempts.
pub const MAX_BACKOFF_MICROS: i64 = 600 * 1_000_000;

/// When to try a notification again after its `attempts`-th attempt failed at `now`: 1 s,
/// doubling, at most 10 minutes apart; `None` once it has had [`MAX_ATTEMPTS`] (give up).
pub fn next_attempt(attempts: u32, now: crate::Timestamp) -> Option<crate::Timestamp> {
    if attempts >= MAX_ATTEMPTS {
        return None;
    }
    let wait = (1_000_000i64 << attempts.saturating_sub(1).min(20)).min(MAX_BACKOFF_MICROS);
    Some(crate::Timestamp::from_unix_micros(
        now.unix_micros().saturating_add(wait),
    ))
}

/// Why an address is inside the installation rather than a place to send alerts to:
/// loopback (the controller itself and its neighbours), link-local (cloud metadata services
/// live at 169.254.169.254), unspecified, multicast or broadcast. Private ranges are not
/// refused: self-hosted receivers often live there.
pub fn internal_address(ip: std::net::IpAddr) -> Option<&'static str> {
    use std::net::IpAddr;
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) if v4.is_loopback() => Some("a loopback address"),
        IpAddr::V4(v4) if v4.is_link_local() => Some("a link-local address"),
        IpAddr::V4(v4) if v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast() => {
            Some("not a unicast address")
        }
        IpAddr::V6(v6) if v6.is_loopback() => Some("a loopback address"),
        IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80 => Some("a link-local address"),
        IpAddr::V6(v6) if v6.is_unspecified() || v6.is_multicast() => Some("not a unicast address"),
        _ => None,
    }
}

/// The host of an `http(s)://` URL: an IP literal (brackets removed) or a name.
fn url_host(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next();
    }
    Some(authority.split(':').next().unwrap_or(authority))
}

/// Why a webhook URL points inside the installation (see [`internal_address`]), judged from
/// the URL alone: an IP literal, or a `localhost` name. Names that resolve inside are caught
/// when delivering, where the resolved address is known.
pub fn internal_target(url: &str) -> Option<&'static str> {
    let host = url_host(url)?.trim_end_matches('.').to_ascii_lowercase();
    if host == "localhost" || host.ends_with(".localhost") {
        return Some("a loopback address");
    }
    host.parse().ok().and_then(internal_address)
}

impl WebhookDraft {
    pub fn validate(self) -> Result<WebhookSpec, Violations> {
        let mut v = Violations::default();
        let name = name(&mut v, self.name);
        let url = self.url.unwrap_or_default();
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"));
        let host_ok = rest.is_some_and(|r| {
            let host = r.split(['/', '?', '#']).next().unwrap_or("");
            !host.is_empty() && !host.contains('@')
        });
        if !host_ok || url.chars().any(char::is_whitespace) || url.len() > 2048 {
            v.push(
                Path::root().key("url"),
                "url must be an http:// or https:// URL with a host",
            );
        }
        let secret = self.secret.unwrap_or_default();
        if secret.len() > 1024 {
            v.push(
                Path::root().key("secret"),
                "secret is longer than 1024 bytes",
            );
        }
        v.finish(WebhookSpec { name, url, secret })
    }
}

/// Which changes a policy is about; an empty list means all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyFilters {
    pub pool_id: Vec<PoolId>,
    pub event_source: Vec<EventSource>,
    pub new_health: Vec<NewHealth>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySpec {
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub alert_type: AlertType,
    pub webhooks: Vec<WebhookId>,
    pub filters: PolicyFilters,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub id: PolicyId,
    pub account: AccountId,
    pub spec: PolicySpec,
    pub created_on: Timestamp,
    pub modified_on: Timestamp,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolicyDraft {
    pub name: Option<String>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
    pub alert_type: Option<String>,
    pub webhooks: Option<Vec<String>>,
    pub pool_id: Option<Vec<String>>,
    pub event_source: Option<Vec<String>>,
    pub new_health: Option<Vec<String>>,
}

fn ids<T: std::str::FromStr>(v: &mut Violations, path: Path, raw: Vec<String>) -> Vec<T> {
    raw.iter()
        .enumerate()
        .filter_map(|(i, s)| {
            s.parse().ok().or_else(|| {
                v.push(path.index(i), format!("{s:?} is not an identifier"));
                None
            })
        })
        .collect()
}

impl PolicyDraft {
    /// Checks the document alone; that the webhooks exist is the catalog's rule.
    pub fn validate(self) -> Result<PolicySpec, Violations> {
        let mut v = Violations::default();
        let name = name(&mut v, self.name);
        let root = Path::root();
        let alert_type = choose(
            &mut v,
            root.key("alert_type"),
            Some(self.alert_type.as_deref().unwrap_or("")),
            AlertType::LoadBalancingHealth,
        );
        let raw_webhooks = self.webhooks.unwrap_or_default();
        let none_given = raw_webhooks.is_empty();
        let webhooks: Vec<WebhookId> =
            ids(&mut v, root.key("mechanisms").key("webhooks"), raw_webhooks);
        if none_given {
            v.push(
                root.key("mechanisms").key("webhooks"),
                "a policy needs at least one webhook destination",
            );
        }
        let filters = root.key("filters");
        let pool_id = ids(
            &mut v,
            filters.key("pool_id"),
            self.pool_id.unwrap_or_default(),
        );
        let mut event_source = Vec::new();
        for (i, s) in self.event_source.unwrap_or_default().iter().enumerate() {
            event_source.push(choose(
                &mut v,
                filters.key("event_source").index(i),
                Some(s),
                EventSource::Pool,
            ));
        }
        let mut new_health = Vec::new();
        for (i, s) in self.new_health.unwrap_or_default().iter().enumerate() {
            new_health.push(choose(
                &mut v,
                filters.key("new_health").index(i),
                Some(s),
                NewHealth::Healthy,
            ));
        }
        let description = self.description.unwrap_or_default();
        v.finish(PolicySpec {
            name,
            description,
            enabled: self.enabled.unwrap_or(true),
            alert_type,
            webhooks,
            filters: PolicyFilters {
                pool_id,
                event_source,
                new_health,
            },
        })
    }
}

/// One notification an event calls for: a policy, a destination, and what changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub policy: PolicyId,
    pub webhook: WebhookId,
    pub source: EventSource,
    /// The origin (index into the event's `origins`) for origin alerts.
    pub origin: Option<usize>,
    /// `true`: the alert ends (healthy again); `false`: it starts.
    pub healthy: bool,
}

/// A verdict change worth telling: to unhealthy from anything (a new origin that is down is
/// news), to healthy only from unhealthy (a first healthy verdict is not).
fn announced(was: Verdict, now: Verdict) -> Option<bool> {
    match (was, now) {
        (Verdict::Unhealthy, Verdict::Healthy) => Some(true),
        (Verdict::Healthy | Verdict::Unknown, Verdict::Unhealthy) => Some(false),
        _ => None,
    }
}

/// The alerts `event` calls for under `policies` (those of its account, enabled, matching).
///
/// `pool_filter` is the pool's own `notification_filter`: which of its pool and origin
/// changes notify at all (`disable`), and of which new health (`healthy`).
pub fn alerts<'a>(
    policies: impl Iterator<Item = &'a Policy>,
    event: &Event,
    pool_filter: Option<&NotificationFilter>,
) -> Vec<Alert> {
    let mut changes: Vec<(EventSource, Option<usize>, bool)> = Vec::new();
    if event.pool_changed {
        if let Some(h) = announced(event.pool_was, event.pool_healthy) {
            changes.push((EventSource::Pool, None, h));
        }
    }
    for (i, o) in event.origins.iter().enumerate() {
        if let Some(h) = announced(o.was, o.healthy) {
            changes.push((EventSource::Origin, Some(i), h));
        }
    }
    if let Some(f) = pool_filter {
        changes.retain(|(source, _, healthy)| {
            let rule = match source {
                EventSource::Pool => &f.pool,
                EventSource::Origin => &f.origin,
            };
            !rule.disable && rule.healthy.is_none_or(|h| h == *healthy)
        });
    }
    let mut out = Vec::new();
    for p in policies.filter(|p| p.account == event.account && p.spec.enabled) {
        let f = &p.spec.filters;
        for (source, origin, healthy) in &changes {
            let health = if *healthy {
                NewHealth::Healthy
            } else {
                NewHealth::Unhealthy
            };
            let wanted = (f.pool_id.is_empty() || f.pool_id.contains(&event.pool))
                && (f.event_source.is_empty() || f.event_source.contains(source))
                && (f.new_health.is_empty() || f.new_health.contains(&health));
            if wanted {
                out.extend(p.spec.webhooks.iter().map(|w| Alert {
                    policy: p.id,
                    webhook: *w,
                    source: *source,
                    origin: *origin,
                    healthy: *healthy,
                }));
            }
        }
    }
    out
}

/// A notification to deliver, as recorded with the event that called for it (the outbox
/// row; the store keeps it, the deliverer sends it).
#[derive(Debug, Clone, PartialEq)]
pub struct NewDelivery {
    pub account: AccountId,
    pub policy: PolicyId,
    pub policy_name: String,
    pub webhook: WebhookId,
    /// The JSON body, exactly as it will be sent.
    pub payload: String,
    pub at: Timestamp,
}

/// A notification and what became of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub seq: i64,
    pub item: NewDelivery,
    pub attempts: u32,
    pub delivered_at: Option<Timestamp>,
    /// Given up on after its last attempt.
    pub failed: bool,
    pub last_error: Option<String>,
    pub last_attempt: Option<Timestamp>,
}

#[cfg(test)]
mod tests {

    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn retries_double_up_to_ten_minutes_then_give_up() {
        let t = |s: i64| crate::Timestamp::from_unix_micros(s * 1_000_000);
        assert_eq!(next_attempt(1, t(100)), Some(t(101)));
        assert_eq!(next_attempt(4, t(100)), Some(t(108)));
        assert_eq!(
            next_attempt(19, t(100)),
            Some(t(700)),
            "capped at 10 minutes"
        );
        assert_eq!(next_attempt(MAX_ATTEMPTS, t(100)), None);
    }

    #[test]
    fn internal_webhook_targets_are_recognised() {
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://localhost/x",
            "https://API.localhost./x",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]:9/x",
            "http://[fe80::1]/x",
            "http://[::ffff:127.0.0.1]/x",
            "http://user@127.0.0.2/x",
            "http://0.0.0.0/x",
        ] {
            assert!(internal_target(url).is_some(), "{url}");
        }
        for url in [
            "https://hooks.example.net/lb",
            "http://10.1.2.3/x",
            "http://192.168.1.1:8080/x",
            "http://[2001:db8::1]/x",
        ] {
            assert_eq!(internal_target(url), None, "{url}");
        }
    }
    use crate::health::engine::OriginEvent;
    use crate::health::FailureReason;

    fn event(pool: (Verdict, Verdict), origin: (Verdict, Verdict)) -> Event {
        Event {
            at: Timestamp::from_unix_micros(0),
            account: AccountId::from_bytes([1; 16]),
            pool: PoolId::from_bytes([2; 16]),
            pool_name: "p".into(),
            pool_healthy: pool.1,
            pool_was: pool.0,
            pool_changed: pool.0 != pool.1,
            minimum_origins: 1,
            origins: vec![OriginEvent {
                name: "o".into(),
                address: "192.0.2.1".into(),
                enabled: true,
                healthy: origin.1,
                was: origin.0,
                reason: FailureReason::TcpConnectionFailed,
            }],
        }
    }

    fn policy(filters: PolicyFilters) -> Policy {
        Policy {
            id: PolicyId::from_bytes([3; 16]),
            account: AccountId::from_bytes([1; 16]),
            spec: PolicySpec {
                name: "ops".into(),
                description: String::new(),
                enabled: true,
                alert_type: AlertType::LoadBalancingHealth,
                webhooks: vec![WebhookId::from_bytes([4; 16])],
                filters,
            },
            created_on: Timestamp::from_unix_micros(0),
            modified_on: Timestamp::from_unix_micros(0),
        }
    }

    #[test]
    fn starts_and_ends_but_not_first_healthy() {
        let all = policy(PolicyFilters::default());
        let down = alerts(
            [&all].into_iter(),
            &event(
                (Verdict::Healthy, Verdict::Unhealthy),
                (Verdict::Healthy, Verdict::Unhealthy),
            ),
        );
        assert_eq!(down.len(), 2);
        assert!(down.iter().all(|a| !a.healthy));
        let up = alerts(
            [&all].into_iter(),
            &event(
                (Verdict::Unhealthy, Verdict::Healthy),
                (Verdict::Unhealthy, Verdict::Healthy),
            ),
        );
        assert!(up.iter().all(|a| a.healthy) && up.len() == 2);
        let first = alerts(
            [&all].into_iter(),
            &event(
                (Verdict::Unknown, Verdict::Healthy),
                (Verdict::Unknown, Verdict::Healthy),
            ),
        );
        assert!(first.is_empty(), "a first healthy verdict is not news");
        let new_and_down = alerts(
            [&all].into_iter(),
            &event(
                (Verdict::Unknown, Verdict::Healthy),
                (Verdict::Unknown, Verdict::Unhealthy),
            ),
        );
        assert_eq!(new_and_down.len(), 1);
    }

    /// Alerts without a pool filter (the pool's `notification_filter: null`).
    fn alerts<'a>(policies: impl Iterator<Item = &'a Policy>, event: &Event) -> Vec<Alert> {
        super::alerts(policies, event, None)
    }

    #[test]
    fn a_pools_notification_filter_chooses_its_changes() {
        use crate::pool::NotificationRule;
        let all = policy(PolicyFilters::default());
        let down = event(
            (Verdict::Healthy, Verdict::Unhealthy),
            (Verdict::Healthy, Verdict::Unhealthy),
        );
        let up = event(
            (Verdict::Unhealthy, Verdict::Healthy),
            (Verdict::Unhealthy, Verdict::Healthy),
        );
        let default = NotificationFilter::default();
        assert_eq!(
            super::alerts([&all].into_iter(), &down, Some(&default)).len(),
            2
        );
        let no_origins = NotificationFilter {
            origin: NotificationRule {
                disable: true,
                healthy: None,
            },
            pool: NotificationRule {
                disable: false,
                healthy: Some(false),
            },
        };
        let got = super::alerts([&all].into_iter(), &down, Some(&no_origins));
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].source, got[0].healthy), (EventSource::Pool, false));
        assert!(
            super::alerts([&all].into_iter(), &up, Some(&no_origins)).is_empty(),
            "only the pool's DOWN changes notify"
        );
    }

    #[test]
    fn filters_select() {
        let origins_down = policy(PolicyFilters {
            pool_id: vec![],
            event_source: vec![EventSource::Origin],
            new_health: vec![NewHealth::Unhealthy],
        });
        let e = event(
            (Verdict::Healthy, Verdict::Unhealthy),
            (Verdict::Healthy, Verdict::Unhealthy),
        );
        let got = alerts([&origins_down].into_iter(), &e);
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].source, got[0].origin),
            (EventSource::Origin, Some(0))
        );
        let other_pool = policy(PolicyFilters {
            pool_id: vec![PoolId::from_bytes([9; 16])],
            ..PolicyFilters::default()
        });
        assert!(alerts([&other_pool].into_iter(), &e).is_empty());
        let mut off = policy(PolicyFilters::default());
        off.spec.enabled = false;
        assert!(alerts([&off].into_iter(), &e).is_empty());
    }

    #[test]
    fn drafts_are_checked() {
        let bad = WebhookDraft {
            name: Some(String::new()),
            url: Some("ftp://x".into()),
            secret: None,
        }
        .validate()
        .unwrap_err();
        assert_eq!(bad.iter().count(), 2);
        let p = PolicyDraft {
            name: Some("ops".into()),
            alert_type: Some("load_balancing_health_alert".into()),
            webhooks: Some(vec!["zz".into()]),
            new_health: Some(vec!["Sideways".into()]),
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        let paths: Vec<String> = p.iter().map(|v| v.path.to_pointer()).collect();
        assert_eq!(paths, ["/mechanisms/webhooks/0", "/filters/new_health/0"]);
    }
}
