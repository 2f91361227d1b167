//! Probers: run one check of one target and report what happened — status codes, timings,
//! whether the expected body was seen, the class of error. They never decide health; the
//! core judges these [`Facts`].
#![forbid(unsafe_code)]

mod http;
mod http1;
mod icmp;
mod net;
mod smtp;
mod tls;

use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vantage_core::health::{Facts, FailureReason, Outcome};
use vantage_core::monitor::{MonitorSpec, MonitorType};

pub use net::exclude_own_listeners;
pub use tls::TlsError;

/// One check to run: a monitor against one origin endpoint.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub spec: &'a MonitorSpec,
    /// IP literal or host name of the origin.
    pub address: &'a str,
    /// The origin's port override; 0 means the monitor's port, then the protocol default.
    pub port: u16,
    /// The origin's `Host` override.
    pub host: Option<&'a str>,
    /// Sent as `User-Agent` on HTTP checks.
    pub user_agent: &'a str,
}

impl Target<'_> {
    fn port(&self) -> u16 {
        [self.port, self.spec.port]
            .into_iter()
            .find(|p| *p != 0)
            .or(self.spec.kind.default_port())
            .unwrap_or(0)
    }

    /// Origin `Host` > monitor `Host` header > the monitor's `probe_zone` > the origin address
    /// (contract §5 rule 1; `probe_zone` is how Cloudflare emulates a zone while probing).
    fn host_header(&self) -> String {
        if let Some(h) = self.host {
            return h.to_owned();
        }
        let from_monitor = self
            .spec
            .header
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("host"))
            .and_then(|(_, v)| v.first());
        from_monitor
            .cloned()
            .or_else(|| (!self.spec.probe_zone.is_empty()).then(|| self.spec.probe_zone.clone()))
            .unwrap_or_else(|| self.address.to_owned())
    }
}

/// Runs checks. Cheap to share: one per location.
#[derive(Debug, Clone)]
pub struct Prober {
    tls: Arc<tls::Configs>,
    icmp: Arc<icmp::Pingers>,
    source: Option<IpAddr>,
}

/// How far a check got, so a timeout can be told apart: before the TCP connection was up it
/// is a TCP timeout, after it an HTTP (or protocol) timeout.
#[derive(Debug, Default)]
pub(crate) struct Progress(AtomicU8);

impl Progress {
    pub(crate) fn connected(&self) {
        self.0.store(1, Ordering::Relaxed);
    }

    fn timeout_reason(&self, kind: MonitorType) -> FailureReason {
        match (self.0.load(Ordering::Relaxed), kind) {
            (0, _) | (_, MonitorType::Tcp) => FailureReason::TcpTimeout,
            (_, MonitorType::Http | MonitorType::Https) => FailureReason::HttpTimeout,
            _ => FailureReason::Other,
        }
    }
}

impl Prober {
    /// A prober trusting the Mozilla root store plus the PEM certificates in `extra_ca`, and
    /// binding its sockets to `source` when given. Call it inside a Tokio runtime: the ICMP
    /// sockets are registered with it.
    pub fn new(extra_ca: Option<&Path>, source: Option<IpAddr>) -> Result<Self, TlsError> {
        Ok(Self {
            tls: Arc::new(tls::Configs::new(extra_ca)?),
            icmp: Arc::new(icmp::Pingers::new(source)),
            source,
        })
    }

    /// One check: up to `retries + 1` attempts, each within `timeout`; an attempt that could
    /// not complete (timeout, refused, reset…) is retried at once. An HTTP answer, right or
    /// wrong, is not retried.
    pub async fn check(&self, target: &Target<'_>) -> Facts {
        let mut facts = self.attempt(target).await;
        for _ in 0..target.spec.retries {
            if !matches!(facts.outcome, Outcome::Error(_)) {
                break;
            }
            facts = self.attempt(target).await;
        }
        facts
    }

    async fn attempt(&self, target: &Target<'_>) -> Facts {
        let progress = Progress::default();
        let started = Instant::now();
        let limit = Duration::from_secs(target.spec.timeout.into());
        let run = async {
            match target.spec.kind {
                MonitorType::Http | MonitorType::Https => {
                    http::check(self, target, &progress).await
                }
                MonitorType::Tcp => net::tcp_check(self.source, target, &progress).await,
                MonitorType::Smtp => smtp::check(self.source, target, &progress).await,
                MonitorType::IcmpPing => self
                    .icmp
                    .ping(target, limit)
                    .await
                    .map(|_| Outcome::Reached),
                MonitorType::UdpIcmp => {
                    icmp::udp_icmp(&self.icmp, self.source, target, limit).await
                }
            }
        };
        let outcome = match tokio::time::timeout(limit, run).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(reason)) => Outcome::Error(reason),
            Err(_) => Outcome::Error(progress.timeout_reason(target.spec.kind)),
        };
        let rtt_micros =
            (!matches!(outcome, Outcome::Error(_))).then(|| started.elapsed().as_micros() as u64);
        Facts {
            outcome,
            rtt_micros,
        }
    }
}
