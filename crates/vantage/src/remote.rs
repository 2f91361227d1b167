//! `vantage agent`: a probe location on another machine, talking to the controller over
//! HTTP(S) with an agent token.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context;
use vantage_control::agent::{self, client::Client, Link};
use vantage_core::health::Location;
use vantage_core::region::RegionCode;
use vantage_probe::Prober;

#[derive(Debug, clap::Args)]
pub struct AgentArgs {
    #[command(flatten)]
    controller: crate::process::ControllerArgs,
    /// An agent token (`vantage token create --agent`).
    #[arg(long, env = "VANTAGE_AGENT_TOKEN", hide_env_values = true)]
    token: String,
    /// This location's region (one of the 13 region codes).
    #[arg(long, env = "VANTAGE_REGION", value_parser = crate::process::parse_region)]
    region: RegionCode,
    /// This location's name, unique per controller.
    #[arg(long, env = "VANTAGE_LOCATION", value_parser = crate::process::parse_location)]
    location: String,
    /// Bind outgoing probe sockets to this address (multi-homed hosts).
    #[arg(long)]
    source_address: Option<IpAddr>,
    /// Extra CA certificates (PEM) that HTTPS checks trust.
    #[arg(long, env = "VANTAGE_PROBE_CA_FILE")]
    probe_ca_file: Option<PathBuf>,
    /// Results kept while the controller is unreachable; beyond it the oldest are dropped.
    #[arg(long, default_value_t = agent::Capacity::BUFFER)]
    buffer: usize,
    /// Checks in flight at most (the agent goes lower while this machine's cores are the
    /// bottleneck); beyond it checks wait and run late (logged, and `vantage_agent_backlog`
    /// on --metrics-listen).
    #[arg(long, env = "VANTAGE_PROBE_MAX_IN_FLIGHT", default_value_t = agent::Capacity::IN_FLIGHT, value_parser = crate::process::in_flight_parser())]
    max_in_flight: usize,
    /// Serve this agent's Prometheus metrics at `/metrics` on this address.
    #[arg(long, env = "VANTAGE_METRICS_LISTEN")]
    metrics_listen: Option<std::net::SocketAddr>,
}

pub fn run(args: AgentArgs) -> anyhow::Result<()> {
    crate::process::init_logging();
    let ca = args.controller.ca_pem()?;
    let controller = Client::new(
        &args.controller.controllers,
        args.token.clone(),
        ca.as_deref(),
    )?;
    let location = Location {
        region: args.region,
        name: args.location.clone(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let prober = Prober::new(args.probe_ca_file.as_deref(), args.source_address)
            .context("setting up the prober")?;
        tracing::info!(controller = %controller.base(), %location, "agent starting");
        let metrics = match args.metrics_listen {
            Some(addr) => {
                let metrics = std::sync::Arc::new(vantage_metrics::AgentMetrics::default());
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding the metrics listener to {addr}"))?;
                tracing::info!("metrics serving on {}", listener.local_addr()?);
                let m = std::sync::Arc::clone(&metrics);
                let app = axum::Router::new().route(
                    "/metrics",
                    axum::routing::get(move || {
                        let m = std::sync::Arc::clone(&m);
                        async move {
                            (
                                [(
                                    axum::http::header::CONTENT_TYPE,
                                    vantage_metrics::CONTENT_TYPE,
                                )],
                                m.render(),
                            )
                        }
                    }),
                );
                tokio::spawn(async move {
                    if let Err(e) = axum::serve(listener, app).await {
                        tracing::warn!(error = %e, "metrics listener stopped");
                    }
                });
                Some(metrics)
            }
            None => None,
        };
        tokio::select! {
            () = agent::run(Link::Remote(controller), prober, location, agent::Capacity { in_flight: args.max_in_flight, buffer: args.buffer }, metrics) => {}
            () = crate::process::shutdown_signal() => {}
        }
        Ok(())
    })
}
