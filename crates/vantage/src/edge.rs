//! `vantage edge`: the data plane alone (proxy and/or DNS), following one or more
//! controllers' routing snapshots over the edge protocol. No store, no API, no engine.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use vantage_control::edge::{client::Client, Edge, Status};

use crate::dataplane::{DataPlane, DataPlaneArgs};

#[derive(Debug, clap::Args)]
pub struct EdgeArgs {
    #[command(flatten)]
    controller: crate::process::ControllerArgs,
    /// An edge token (`vantage token create --edge`).
    #[arg(long, env = "VANTAGE_EDGE_TOKEN", hide_env_values = true)]
    token: String,
    /// Where the edge keeps the last routing snapshot it applied (mode 0600, checked with
    /// the edge token), to serve at once after a restart while no controller answers.
    #[arg(
        long,
        env = "VANTAGE_EDGE_SNAPSHOT",
        default_value = "./vantage-edge/snapshot"
    )]
    snapshot_file: PathBuf,
    /// Serve this edge's Prometheus metrics at `/metrics` on this address.
    #[arg(long, env = "VANTAGE_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// Also probe, as the location --location of --proxy-region, with this agent token
    /// (`vantage token create --agent`): one process both serves and votes, reporting to the
    /// first --controller.
    #[arg(long, env = "VANTAGE_AGENT_TOKEN", hide_env_values = true, requires_all = ["location", "proxy_region"])]
    agent_token: Option<String>,
    /// With --agent-token: this probe location's name, unique per controller.
    #[arg(long, env = "VANTAGE_LOCATION", requires = "agent_token", value_parser = crate::process::parse_location)]
    location: Option<String>,
    /// With --agent-token: extra CA certificates (PEM) that HTTPS checks trust, besides the
    /// Mozilla roots.
    #[arg(long, env = "VANTAGE_PROBE_CA_FILE", requires = "agent_token")]
    probe_ca_file: Option<PathBuf>,
    /// With --agent-token: checks in flight at most (the agent goes lower while this
    /// machine's cores are the bottleneck); beyond it checks wait and run late (logged, and
    /// `vantage_agent_backlog` on --metrics-listen).
    #[arg(long, env = "VANTAGE_PROBE_MAX_IN_FLIGHT", requires = "agent_token", default_value_t = vantage_control::agent::Capacity::IN_FLIGHT, value_parser = crate::process::in_flight_parser())]
    probe_max_in_flight: usize,
    #[command(flatten)]
    dataplane: DataPlaneArgs,
}

pub fn run(args: EdgeArgs) -> anyhow::Result<()> {
    crate::process::init_logging();
    if !args.dataplane.wanted() {
        bail!("an edge serves traffic: give --proxy-listen, --dns-listen or both");
    }
    let ca = args.controller.ca_pem()?;
    let controllers = args
        .controller
        .controllers
        .iter()
        .map(|c| Client::new(c, args.token.clone(), ca.as_deref()))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if let Some(dir) = args
        .snapshot_file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        crate::process::create_private_dir(dir)?;
    }
    let descriptors = crate::serve::raise_descriptor_limit();
    let connections =
        vantage_dataplane::limit::per_listener(descriptors, args.dataplane.listeners() + 1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let metrics = vantage_metrics::Metrics::new();
        let dataplane = DataPlane::bind(&args.dataplane, Arc::clone(&metrics), connections).await?;
        let edge = Arc::new(Edge::new(
            controllers,
            args.token.clone(),
            dataplane.region(),
            Some(args.snapshot_file.clone()),
            dataplane.routes(),
            Arc::clone(&metrics),
        ));
        // The last known routes first, so a restart during a controller outage serves at once.
        match edge.load_file() {
            Ok(Some(version)) => tracing::info!(
                version,
                age_seconds = edge
                    .status()
                    .age_seconds(vantage_control::clock::now().unix_micros()),
                "serving the routing snapshot kept in {} until a controller answers",
                args.snapshot_file.display()
            ),
            Ok(None) => tracing::info!("no routing snapshot kept yet; waiting for a controller"),
            Err(e) => tracing::error!("{e:#}; serving nothing until a controller answers"),
        }
        // With --agent-token its series (backlog, lateness, the in-flight limit) are the
        // edge's too.
        let agent_metrics = args
            .agent_token
            .is_some()
            .then(|| Arc::new(vantage_metrics::AgentMetrics::default()));
        if let Some(addr) = args.metrics_listen {
            serve_metrics(
                addr,
                Arc::clone(&metrics),
                edge.status(),
                agent_metrics.clone(),
            )
            .await?;
        }
        tracing::info!(
            controllers = %args.controller.controllers.join(", "),
            "edge following its controllers"
        );
        let mut own = dataplane.local_addrs();
        let agent = match (&args.agent_token, &args.location, dataplane.region()) {
            (Some(token), Some(name), Some(region)) => {
                let client = vantage_control::agent::client::Client::new(
                    &args.controller.controllers,
                    token.clone(),
                    ca.as_deref(),
                )?;
                let prober = vantage_probe::Prober::new(args.probe_ca_file.as_deref(), None)
                    .context("setting up the probe agent")?;
                let location = vantage_core::health::Location {
                    region,
                    name: name.clone(),
                };
                tracing::info!(%location, "probing too, as a probe location");
                Some(tokio::spawn(vantage_control::agent::run(
                    vantage_control::agent::Link::Remote(client),
                    prober,
                    location,
                    vantage_control::agent::Capacity {
                        in_flight: args.probe_max_in_flight,
                        ..vantage_control::agent::Capacity::default()
                    },
                    agent_metrics,
                )))
            }
            _ => None,
        };
        if let Some(addr) = args.metrics_listen {
            own.push(addr);
        }
        // No monitor may point this edge's probes at its own listeners.
        vantage_probe::exclude_own_listeners(own);
        let follower = tokio::spawn(Arc::clone(&edge).run());
        let listeners = dataplane.start()?;
        crate::process::shutdown_signal().await;
        follower.abort();
        if let Some(agent) = agent {
            agent.abort();
        }
        for task in listeners {
            let _ = tokio::time::timeout(Duration::from_secs(11), task).await;
        }
        tracing::info!("stopped");
        Ok(())
    })
}

async fn serve_metrics(
    addr: SocketAddr,
    metrics: Arc<vantage_metrics::Metrics>,
    status: Arc<Status>,
    agent: Option<Arc<vantage_metrics::AgentMetrics>>,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the metrics listener to {addr}"))?;
    tracing::info!("metrics serving on {}", listener.local_addr()?);
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let now = vantage_control::clock::now().unix_micros();
            let snapshot = vantage_metrics::Snapshot {
                routing: Some(vantage_metrics::RoutingState {
                    version: status.version(),
                    age_seconds: status.age_seconds(now),
                    contact_seconds: status.contact_seconds(now),
                }),
                agent: agent.clone(),
                ..Default::default()
            };
            let text = metrics.render(&snapshot, vantage_metrics::Scope::Detailed);
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        vantage_metrics::CONTENT_TYPE,
                    )],
                    text,
                )
            }
        }),
    );
    tokio::spawn(crate::http::serve(
        listener,
        None,
        app,
        vantage_dataplane::limit::ConnectionLimit::new(64),
        Duration::from_secs(60),
        std::future::pending(),
    ));
    Ok(())
}
