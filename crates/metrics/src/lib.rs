//! Prometheus metrics. The running parts count what happens (checks, verdict changes, proxied
//! requests, DNS queries) in the families below; the state of things (verdicts, probe
//! locations) is read from the health engine at scrape time and handed to [`Metrics::render`]
//! as plain values, so a gauge can never disagree with the API. Names follow Prometheus
//! conventions: a `vantage_` prefix, `_total` counters, `_seconds` durations.

use std::fmt::Write as _;
use std::sync::Arc;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

pub use prometheus_client::metrics::counter::Counter as CounterHandle;
pub use prometheus_client::metrics::histogram::Histogram as HistogramHandle;
pub use verdicts::{Verdict, Verdicts};

pub mod verdicts;

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// An object's id as a label value: its 16 bytes, written as the id's 32 hex digits only when
/// scraped, so counting a check formats nothing and hashes 16 bytes.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct IdLabel(pub [u8; 16]);

impl EncodeLabelValue for IdLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        let mut digits = [0u8; 32];
        hex::encode_to_slice(self.0, &mut digits).map_err(|_| std::fmt::Error)?;
        encoder.write_str(std::str::from_utf8(&digits).map_err(|_| std::fmt::Error)?)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CheckLabels {
    pub monitor: IdLabel,
    pub location: String,
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LocationLabels {
    pub location: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChangeLabels {
    pub kind: String,
    pub healthy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProxyLabels {
    pub load_balancer: String,
    pub pool: String,
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub load_balancer: String,
    pub pool: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    pub load_balancer: String,
    /// The rule's name, else `#` and its position in the load balancer's `rules`.
    pub rule: String,
    /// `proxy` or `dns`.
    pub via: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DnsLabels {
    pub rcode: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusedLabels {
    pub location: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProbeLocationLabels {
    region: String,
    location: String,
}

fn latency() -> Histogram {
    // 0.5 ms to ~16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Every counter and histogram; cheap to clone (the families are shared).
#[derive(Debug, Clone)]
pub struct Metrics {
    pub checks: Family<CheckLabels, Counter>,
    pub check_duration: Histograms<LocationLabels>,
    pub verdict_changes: Family<ChangeLabels, Counter>,
    pub proxy_requests: Family<ProxyLabels, Counter>,
    pub proxy_upstream_errors: Family<ProxyLabels, Counter>,
    pub proxy_duration: Histograms<RouteLabels>,
    pub dns_queries: Family<DnsLabels, Counter>,
    /// Alerts not queued because their destination's backlog was full.
    pub notifications_left_out: Counter,
    /// Location states and events not queued because the store was too far behind.
    pub health_writes_dropped: Counter,
    /// Rows deleted by retention, by kind (events, deliveries, states).
    pub pruned: Family<KindLabels, Counter>,
    /// Agent results refused, by location and reason.
    pub results_refused: Family<RefusedLabels, Counter>,
    /// DNS answers with addresses, by load balancer and pool.
    pub dns_answers: Family<RouteLabels, Counter>,
    /// Requests and queries a load-balancing rule matched, by load balancer and rule.
    pub rule_matches: Family<RuleLabels, Counter>,
    /// Routing snapshots an edge applied from a controller, and refused.
    pub snapshots_applied: Counter,
    pub snapshots_refused: Counter,
    /// From a snapshot's making at the controller to its application on this edge.
    pub snapshot_propagation: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            checks: Family::default(),
            check_duration: Family::new_with_constructor(latency),
            verdict_changes: Family::default(),
            proxy_requests: Family::default(),
            proxy_upstream_errors: Family::default(),
            proxy_duration: Family::new_with_constructor(latency),
            dns_queries: Family::default(),
            notifications_left_out: Counter::default(),
            health_writes_dropped: Counter::default(),
            pruned: Family::default(),
            results_refused: Family::default(),
            dns_answers: Family::default(),
            rule_matches: Family::default(),
            snapshots_applied: Counter::default(),
            snapshots_refused: Counter::default(),
            snapshot_propagation: latency(),
        }
    }
}

/// How much an exposition shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Only what concerns the installation (probe locations, DNS answers by code, verdict
    /// change counts, storage): nothing names a tenant's objects.
    Installation,
    /// Everything, for the operator's own metrics listener.
    Detailed,
}

/// A probe location at scrape time.
#[derive(Debug, Clone, Default)]
pub struct LocationState {
    pub region: String,
    pub name: String,
    pub silent: bool,
    pub seconds_since_contact: f64,
}

/// About how many bytes [`Metrics::render_chunks`] hands over at a time.
pub const CHUNK: usize = 64 * 1024;

/// A writer that hands its text over in pieces of about [`CHUNK`] bytes.
struct Chunks<'s> {
    buf: String,
    sink: &'s mut dyn FnMut(String) -> bool,
}

impl std::fmt::Write for Chunks<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.buf.push_str(s);
        if self.buf.len() >= CHUNK {
            let full = std::mem::replace(&mut self.buf, String::with_capacity(CHUNK + CHUNK / 8));
            if !(self.sink)(full) {
                return Err(std::fmt::Error);
            }
        }
        Ok(())
    }
}

/// What the engine says at scrape time.
#[derive(Clone, Default)]
pub struct Snapshot {
    /// The verdicts, visited while the exposition is written (see [`verdicts`]).
    pub verdicts: Option<Arc<dyn Verdicts>>,
    pub locations: Vec<LocationState>,
    /// Bytes the store takes on disk, when it could be read.
    pub store_bytes: Option<u64>,
    /// On an edge: the routing snapshot it serves.
    pub routing: Option<RoutingState>,
    /// The built-in agent's own series (`vantage_agent_…`: backlog, lateness), when it runs.
    pub agent: Option<Arc<AgentMetrics>>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("verdicts", &self.verdicts.as_ref().map(|_| ".."))
            .field("locations", &self.locations)
            .field("store_bytes", &self.store_bytes)
            .field("routing", &self.routing)
            .field("agent", &self.agent)
            .finish()
    }
}

/// An edge's routing snapshot at scrape time.
#[derive(Debug, Clone, Default)]
pub struct RoutingState {
    /// 0: none yet.
    pub version: u64,
    /// Since the snapshot was made at the controller.
    pub age_seconds: Option<f64>,
    /// Since a controller last answered.
    pub contact_seconds: Option<f64>,
}

fn flag(b: bool) -> i64 {
    i64::from(b)
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }

    /// Counts a snapshot applied `lag` seconds after it was made.
    pub fn snapshot_applied(&self, lag: f64) {
        self.snapshots_applied.inc();
        self.snapshot_propagation.observe(lag);
    }

    pub fn snapshot_refused(&self) {
        self.snapshots_refused.inc();
    }

    /// Counts one DNS answer with addresses.
    pub fn dns_answer(&self, load_balancer: &str, pool: &str) {
        self.dns_answers
            .get_or_create(&RouteLabels {
                load_balancer: load_balancer.to_owned(),
                pool: pool.to_owned(),
            })
            .inc();
    }

    /// Counts one request or query that `rule` of `load_balancer` matched.
    pub fn rule_match(&self, load_balancer: &str, rule: &str, via: &str) {
        self.rule_matches
            .get_or_create(&RuleLabels {
                load_balancer: load_balancer.to_owned(),
                rule: rule.to_owned(),
                via: via.to_owned(),
            })
            .inc();
    }

    /// Counts one judged check.
    pub fn check(&self, monitor: [u8; 16], location: &str, healthy: bool, seconds: Option<f64>) {
        self.checks
            .get_or_create(&CheckLabels {
                monitor: IdLabel(monitor),
                location: location.to_owned(),
                result: if healthy { "healthy" } else { "unhealthy" },
            })
            .inc();
        if let Some(s) = seconds {
            self.check_duration
                .get_or_create(&LocationLabels {
                    location: location.to_owned(),
                })
                .observe(s);
        }
    }

    /// Counts one verdict change of an origin or a pool.
    pub fn verdict_change(&self, kind: &str, healthy: Option<bool>) {
        let healthy = match healthy {
            Some(true) => "true",
            Some(false) => "false",
            None => "unknown",
        };
        self.verdict_changes
            .get_or_create(&ChangeLabels {
                kind: kind.to_owned(),
                healthy: healthy.to_owned(),
            })
            .inc();
    }

    /// Counts one DNS answer by its response code.
    pub fn dns_query(&self, rcode: &str) {
        self.dns_query_series(rcode).inc();
    }

    /// The counter of DNS answers with `rcode`, to keep and increment directly.
    pub fn dns_query_series(&self, rcode: &str) -> Counter {
        self.dns_queries
            .get_or_create(&DnsLabels {
                rcode: rcode.to_owned(),
            })
            .clone()
    }

    /// The text exposition, with the gauges from `snapshot`. [`Scope::Installation`] leaves
    /// out every series that names a tenant's objects (monitors, pools, origins, load
    /// balancers): what the API listener may show anyone.
    pub fn render(&self, snapshot: &Snapshot, scope: Scope) -> String {
        let mut out = String::new();
        if self.write(&mut out, snapshot, scope).is_err() {
            // Writing to a String cannot fail; keep the exposition well-formed regardless.
            out.clear();
            let _ = writeln!(out, "# EOF");
        }
        out
    }

    /// The same exposition in pieces of about [`CHUNK`] bytes, each handed to `chunk` as it
    /// fills, so a scrape of a large configuration never holds its whole text. `chunk`
    /// returns `false` to stop (the scraper went away); so does this, unless every piece was
    /// taken.
    pub fn render_chunks(
        &self,
        snapshot: &Snapshot,
        scope: Scope,
        chunk: &mut dyn FnMut(String) -> bool,
    ) -> bool {
        let mut chunks = Chunks {
            buf: String::with_capacity(CHUNK + CHUNK / 8),
            sink: chunk,
        };
        self.write(&mut chunks, snapshot, scope).is_ok() && (chunks.sink)(chunks.buf)
    }

    fn write(
        &self,
        out: &mut dyn std::fmt::Write,
        snapshot: &Snapshot,
        scope: Scope,
    ) -> std::fmt::Result {
        let detailed = scope == Scope::Detailed;
        let mut registry = Registry::with_prefix("vantage");
        if detailed {
            registry.register(
                "checks",
                "Health checks judged, by monitor, probe location and result",
                self.checks.clone(),
            );
        }
        registry.register(
            "check_duration_seconds",
            "Round trip of successful checks, by probe location",
            self.check_duration.clone(),
        );
        registry.register(
            "verdict_changes",
            "Changes of an origin's or a pool's verdict",
            self.verdict_changes.clone(),
        );
        if detailed {
            registry.register(
                "proxy_requests",
                "Proxied requests answered, by load balancer, pool and status code",
                self.proxy_requests.clone(),
            );
            registry.register(
                "proxy_upstream_errors",
                "Proxied requests that could not reach an origin, by load balancer, pool and the status it caused",
                self.proxy_upstream_errors.clone(),
            );
            registry.register(
                "proxy_request_duration_seconds",
                "Time from a proxied request to its response headers, by load balancer and pool",
                self.proxy_duration.clone(),
            );
            registry.register(
                "dns_answers",
                "DNS answers with addresses, by load balancer and pool",
                self.dns_answers.clone(),
            );
            registry.register(
                "rule_matches",
                "Proxied requests and DNS queries a load-balancing rule matched, by load balancer, rule and listener",
                self.rule_matches.clone(),
            );
        }
        registry.register(
            "dns_queries",
            "DNS queries answered, by response code (SLIPPED: sent truncated by response-rate limiting; DROPPED: not answered by it)",
            self.dns_queries.clone(),
        );

        registry.register(
            "notifications_left_out",
            "Alerts not queued because their destination already had the most notifications waiting",
            self.notifications_left_out.clone(),
        );
        registry.register(
            "health_writes_dropped",
            "Location states and events not queued for the store because it was too far behind (states are written again once it catches up)",
            self.health_writes_dropped.clone(),
        );
        registry.register(
            "retention_pruned",
            "Stored rows deleted by retention, by kind",
            self.pruned.clone(),
        );
        registry.register(
            "agent_results_refused",
            "Results from probe agents refused, by location and reason",
            self.results_refused.clone(),
        );
        if let Some(agent) = &snapshot.agent {
            agent.register(registry.sub_registry_with_prefix("agent"), detailed);
        }
        if let Some(r) = &snapshot.routing {
            registry.register(
                "routing_snapshots_applied",
                "Routing snapshots this edge applied from a controller",
                self.snapshots_applied.clone(),
            );
            registry.register(
                "routing_snapshots_refused",
                "Routing snapshots this edge refused (unparsable, invalid or not newer)",
                self.snapshots_refused.clone(),
            );
            registry.register(
                "routing_snapshot_propagation_seconds",
                "From a snapshot's making at the controller to its application here",
                self.snapshot_propagation.clone(),
            );
            let version = Gauge::<i64>::default();
            version.set(i64::try_from(r.version).unwrap_or(i64::MAX));
            registry.register(
                "routing_snapshot_version",
                "Version of the routing snapshot served (Unix microseconds of its making; 0: none)",
                version,
            );
            if let Some(age) = r.age_seconds {
                let g = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
                g.set(age);
                registry.register(
                    "routing_snapshot_age_seconds",
                    "Seconds since the routing snapshot served was made",
                    g,
                );
            }
            if let Some(contact) = r.contact_seconds {
                let g = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
                g.set(contact);
                registry.register(
                    "controller_contact_age_seconds",
                    "Seconds since a controller last answered this edge",
                    g,
                );
            }
        }
        if let Some(bytes) = snapshot.store_bytes {
            let g = Gauge::<i64>::default();
            g.set(i64::try_from(bytes).unwrap_or(i64::MAX));
            registry.register("store_bytes", "Bytes the store takes on disk", g);
        }

        let up = Family::<ProbeLocationLabels, Gauge>::default();
        let seen =
            Family::<ProbeLocationLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        for l in &snapshot.locations {
            let labels = ProbeLocationLabels {
                region: l.region.clone(),
                location: l.name.clone(),
            };
            up.get_or_create(&labels).set(flag(!l.silent));
            seen.get_or_create(&labels).set(l.seconds_since_contact);
        }
        registry.register(
            "probe_location_up",
            "1 while a probe location reports, 0 once silent",
            up,
        );
        registry.register(
            "probe_location_last_contact_seconds",
            "Seconds since a probe location was last heard from",
            seen,
        );

        prometheus_client::encoding::text::encode_registry(&mut &mut *out, &registry)?;
        if let (true, Some(verdicts)) = (detailed, &snapshot.verdicts) {
            verdicts::write(out, verdicts.as_ref())?;
        }
        prometheus_client::encoding::text::encode_eof(&mut &mut *out)
    }
}

#[cfg(test)]
mod tests {
    use super::verdicts::plain::{OriginState, PoolState};
    use super::*;

    /// A monitor id: its label is its 32 hex digits, as the API writes it.
    const M1: [u8; 16] = [
        0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0, 0, 0, 0, 0, 0, 0, 0xff,
    ];
    const M1_HEX: &str = "0123456789abcdef00000000000000ff";

    #[test]
    fn renders_counters_and_gauges() {
        let m = Metrics::new();
        m.check(M1, "WNAM/local", true, Some(0.012));
        m.check(M1, "WNAM/local", false, None);
        m.verdict_change("pool", Some(false));
        m.dns_query("NoError");
        m.dns_answer("www.example.com", "primary");
        m.snapshot_applied(0.004);
        let snapshot = Snapshot {
            verdicts: Some(Arc::new(vec![PoolState {
                id: "p1".into(),
                name: "primary".into(),
                healthy: Some(true),
                origins: vec![OriginState {
                    name: "a".into(),
                    address: "10.0.0.1".into(),
                    healthy: Some(false),
                    regions: vec![("WNAM".into(), Some(false)), ("ENAM".into(), None)],
                }],
            }])),
            locations: vec![LocationState {
                region: "WNAM".into(),
                name: "local".into(),
                silent: false,
                seconds_since_contact: 1.5,
            }],
            store_bytes: Some(4096),
            routing: Some(RoutingState {
                version: 1_700_000_000_000_000,
                age_seconds: Some(2.5),
                contact_seconds: Some(0.5),
            }),
            agent: None,
        };
        let text = m.render(&snapshot, Scope::Detailed);
        for line in [
            &format!(
                r#"vantage_checks_total{{monitor="{M1_HEX}",location="WNAM/local",result="healthy"}} 1"#
            ),
            &format!(
                r#"vantage_checks_total{{monitor="{M1_HEX}",location="WNAM/local",result="unhealthy"}} 1"#
            ),
            r#"vantage_check_duration_seconds_count{location="WNAM/local"} 1"#,
            r#"vantage_verdict_changes_total{kind="pool",healthy="false"} 1"#,
            r#"vantage_dns_queries_total{rcode="NoError"} 1"#,
            r#"vantage_pool_healthy{pool="primary",pool_id="p1"} 1"#,
            r#"vantage_origin_healthy{pool="primary",origin="a",address="10.0.0.1"} 0"#,
            r#"vantage_origin_region_healthy{pool="primary",origin="a",region="WNAM"} 0"#,
            r#"vantage_probe_location_up{region="WNAM",location="local"} 1"#,
            r#"vantage_dns_answers_total{load_balancer="www.example.com",pool="primary"} 1"#,
            r#"vantage_routing_snapshots_applied_total 1"#,
            r#"vantage_routing_snapshot_propagation_seconds_count 1"#,
            r#"vantage_routing_snapshot_version 1700000000000000"#,
            r#"vantage_routing_snapshot_age_seconds 2.5"#,
            r#"vantage_controller_contact_age_seconds 0.5"#,
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(
            !text.contains(r#"region="ENAM""#),
            "unknown verdicts are absent"
        );
        assert!(text.ends_with("# EOF\n"));
        assert!(text.contains(r#"vantage_store_bytes 4096"#));

        // What anyone may see names no tenant's objects.
        let public = m.render(&snapshot, Scope::Installation);
        for tenant in ["monitor=", "pool=", "origin=", "load_balancer="] {
            assert!(!public.contains(tenant), "{tenant} in\n{public}");
        }
        assert!(public.contains(r#"vantage_probe_location_up{region="WNAM",location="local"} 1"#));
        assert!(public.contains(r#"vantage_dns_queries_total{rcode="NoError"} 1"#));
    }

    #[test]
    fn a_large_exposition_comes_in_pieces_that_make_the_whole_and_can_be_stopped() {
        let m = Metrics::new();
        let pools: Vec<PoolState> = (0..40)
            .map(|p| PoolState {
                id: format!("{p:032x}"),
                name: format!("pool-{p}"),
                healthy: Some(p % 2 == 0),
                origins: (0..100)
                    .map(|o| OriginState {
                        name: format!("origin-{o}"),
                        address: format!("10.0.{p}.{o}"),
                        healthy: Some(o % 3 != 0),
                        regions: vec![("WNAM".into(), Some(true))],
                    })
                    .collect(),
            })
            .collect();
        let snapshot = Snapshot {
            verdicts: Some(Arc::new(pools)),
            ..Default::default()
        };
        let whole = m.render(&snapshot, Scope::Detailed);
        assert_eq!(whole.matches("vantage_origin_healthy{").count(), 4000);
        let mut pieces = Vec::new();
        assert!(m.render_chunks(&snapshot, Scope::Detailed, &mut |c| {
            pieces.push(c);
            true
        }));
        assert!(pieces.len() > 4, "{} pieces", pieces.len());
        assert!(pieces.iter().all(|c| c.len() < 2 * CHUNK));
        assert_eq!(pieces.concat(), whole);

        let mut taken = 0;
        assert!(!m.render_chunks(&snapshot, Scope::Detailed, &mut |_| {
            taken += 1;
            taken < 2
        }));
        assert_eq!(taken, 2, "nothing is written after the scraper went away");
    }

    #[test]
    fn the_built_in_agents_backlog_is_shown_with_the_servers_series() {
        let m = Metrics::new();
        let agent = Arc::new(AgentMetrics::default());
        agent.backlog.set(1234);
        agent.in_flight_limit.set(128);
        agent.late.inc();
        agent.check(M1, true);
        let snapshot = Snapshot {
            agent: Some(agent),
            ..Default::default()
        };
        let text = m.render(&snapshot, Scope::Detailed);
        for line in [
            "vantage_agent_backlog 1234",
            "vantage_agent_in_flight_limit 128",
            "vantage_agent_checks_late_total 1",
            &format!(r#"vantage_agent_checks_total{{monitor="{M1_HEX}",outcome="completed"}} 1"#),
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert_eq!(text.matches("# EOF").count(), 1, "one exposition");
        let public = m.render(&snapshot, Scope::Installation);
        assert!(public.contains("vantage_agent_backlog 1234"));
        assert!(!public.contains("monitor="), "{public}");
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AgentCheckLabels {
    pub monitor: IdLabel,
    /// `completed` (the check ran to a result the controller will judge) or `error`.
    pub outcome: &'static str,
}

/// A remote probe agent's own metrics (`vantage agent --metrics-listen`): what it ran, how
/// late, and whether the controller hears it. Verdicts are the controller's.
#[derive(Debug, Clone)]
pub struct AgentMetrics {
    pub checks: Family<AgentCheckLabels, Counter>,
    pub lateness: Histogram,
    pub results_dropped: Counter,
    pub controller_up: Gauge,
    pub targets: Gauge,
    /// Checks due and not yet started (this machine is behind while it stays above zero).
    pub backlog: Gauge,
    /// Checks that started more than a second after they were due.
    pub late: Counter,
    /// Checks run at once at most now: the ceiling, lower while the machine is the bottleneck.
    pub in_flight_limit: Gauge,
}

impl Default for AgentMetrics {
    fn default() -> Self {
        AgentMetrics {
            checks: Family::default(),
            // 0.1 ms to ~3 s.
            lateness: Histogram::new(exponential_buckets(0.0001, 2.0, 15)),
            results_dropped: Counter::default(),
            controller_up: Gauge::default(),
            targets: Gauge::default(),
            backlog: Gauge::default(),
            late: Counter::default(),
            in_flight_limit: Gauge::default(),
        }
    }
}

impl AgentMetrics {
    pub fn check(&self, monitor: [u8; 16], completed: bool) {
        self.checks
            .get_or_create(&AgentCheckLabels {
                monitor: IdLabel(monitor),
                outcome: if completed { "completed" } else { "error" },
            })
            .inc();
    }

    /// Registers the series in `registry`; the checks by monitor only when `detailed` (they
    /// name tenants' monitors).
    pub fn register(&self, registry: &mut Registry, detailed: bool) {
        if detailed {
            registry.register(
                "checks",
                "Checks run, by monitor and outcome (the controller judges them)",
                self.checks.clone(),
            );
        }

        registry.register(
            "check_lateness_seconds",
            "How late checks started against their schedule",
            self.lateness.clone(),
        );
        registry.register(
            "results_dropped",
            "Results dropped from a full buffer while the controller was unreachable",
            self.results_dropped.clone(),
        );
        registry.register(
            "controller_up",
            "1 while the controller accepts reports, 0 while it cannot be reached",
            self.controller_up.clone(),
        );
        registry.register(
            "targets",
            "Targets in the current assignment",
            self.targets.clone(),
        );
        registry.register(
            "in_flight_limit",
            "Checks this agent runs at once at most now: its ceiling (--max-in-flight), lower while this machine's cores are the bottleneck",
            self.in_flight_limit.clone(),
        );
        registry.register(
            "backlog",
            "Checks due and not yet started: above zero for long, this machine cannot run the offered rate",
            self.backlog.clone(),
        );
        registry.register(
            "checks_late",
            "Checks that started more than a second after they were due",
            self.late.clone(),
        );
    }

    pub fn render(&self) -> String {
        let mut registry = Registry::with_prefix("vantage_agent");
        self.register(&mut registry, true);
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
            out.clear();
            let _ = writeln!(out, "# EOF");
        }
        out
    }
}
