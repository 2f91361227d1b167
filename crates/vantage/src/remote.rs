//! `vantage agent`: a probe location on another machine, talking to the controller over
//! HTTP(S) with an agent token.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use vantage_control::agent_protocol::{
    Assignment, Report, Reported, ASSIGNMENT_PATH, RESULTS_PATH, VERSION, VERSION_HEADER,
};
use vantage_core::health::Location;
use vantage_core::region::RegionCode;
use vantage_probe::Prober;

#[derive(Debug, clap::Args)]
pub struct AgentArgs {
    /// The controller (`vantage serve`), e.g. `https://vantage.example:8080`.
    #[arg(long, env = "VANTAGE_CONTROLLER")]
    controller: String,
    /// An agent token (`vantage token create --agent`).
    #[arg(long, env = "VANTAGE_AGENT_TOKEN", hide_env_values = true)]
    token: String,
    /// This location's region (one of the 13 region codes).
    #[arg(long, env = "VANTAGE_REGION", value_parser = crate::serve::parse_region)]
    region: RegionCode,
    /// This location's name, unique per controller.
    #[arg(long, env = "VANTAGE_LOCATION", value_parser = crate::serve::parse_location)]
    location: String,
    /// Bind outgoing probe sockets to this address (multi-homed hosts).
    #[arg(long)]
    source_address: Option<IpAddr>,
    /// Extra CA certificates (PEM) that HTTPS checks trust.
    #[arg(long, env = "VANTAGE_PROBE_CA_FILE")]
    probe_ca_file: Option<PathBuf>,
    /// CA certificate (PEM) that signs the controller's certificate, for a private PKI.
    #[arg(long, env = "VANTAGE_CONTROLLER_CA_FILE")]
    controller_ca_file: Option<PathBuf>,
    /// Results kept while the controller is unreachable; beyond it the oldest are dropped.
    #[arg(long, default_value_t = 100_000)]
    buffer: usize,
    /// Serve this agent's Prometheus metrics at `/metrics` on this address.
    #[arg(long, env = "VANTAGE_METRICS_LISTEN")]
    metrics_listen: Option<std::net::SocketAddr>,
}

/// The controller as seen from a remote agent.
#[derive(Debug)]
pub struct Controller {
    client: reqwest::Client,
    base: String,
    token: String,
}

#[derive(serde::Deserialize)]
struct Envelope<T> {
    result: Option<T>,
    #[serde(default)]
    errors: Vec<serde_json::Value>,
}

impl Controller {
    fn new(args: &AgentArgs) -> anyhow::Result<Self> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(40));
        if let Some(path) = &args.controller_ca_file {
            let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            builder = builder.add_root_certificate(
                reqwest::Certificate::from_pem(&pem).context("the controller CA file")?,
            );
        }
        let base = args.controller.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("--controller must be an http:// or https:// URL");
        }
        Ok(Self {
            client: builder.build()?,
            base,
            token: args.token.clone(),
        })
    }

    async fn answer<T: serde::de::DeserializeOwned>(resp: reqwest::Response) -> anyhow::Result<T> {
        let status = resp.status();
        let body: Envelope<T> = resp
            .json()
            .await
            .with_context(|| format!("controller answered {status}"))?;
        match body.result {
            Some(r) if status.is_success() => Ok(r),
            _ => bail!(
                "controller answered {status}: {}",
                serde_json::Value::Array(body.errors)
            ),
        }
    }

    pub async fn assignment(
        &self,
        location: &Location,
        known: Option<u64>,
    ) -> anyhow::Result<Assignment> {
        let mut query = vec![
            ("region", location.region.code().to_owned()),
            ("location", location.name.clone()),
        ];
        if let Some(v) = known {
            query.push(("version", v.to_string()));
        }
        let resp = self
            .client
            .get(format!("{}{ASSIGNMENT_PATH}", self.base))
            .bearer_auth(&self.token)
            .header(VERSION_HEADER, VERSION)
            .query(&query)
            .send()
            .await?;
        Self::answer(resp).await
    }

    pub async fn report(&self, location: &Location, results: Vec<Reported>) -> anyhow::Result<()> {
        let report = Report {
            region: location.region.code().to_owned(),
            location: location.name.clone(),
            results,
        };
        let resp = self
            .client
            .post(format!("{}{RESULTS_PATH}", self.base))
            .bearer_auth(&self.token)
            .header(VERSION_HEADER, VERSION)
            .json(&report)
            .send()
            .await?;
        Self::answer::<serde_json::Value>(resp).await.map(|_| ())
    }
}

pub fn run(args: AgentArgs) -> anyhow::Result<()> {
    crate::serve::init_logging();
    let controller = Controller::new(&args)?;
    let location = Location {
        region: args.region,
        name: args.location.clone(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let prober = Prober::new(args.probe_ca_file.as_deref(), args.source_address).context("setting up the prober")?;
        tracing::info!(controller = %controller.base, %location, "agent starting");
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
                                [(axum::http::header::CONTENT_TYPE, vantage_metrics::CONTENT_TYPE)],
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
            () = crate::agent::run(crate::agent::Link::Remote(controller), prober, location, args.buffer, metrics) => {}
            () = crate::serve::shutdown_signal() => {}
        }
        Ok(())
    })
}
