//! `vantage serve`: the control plane.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use fs4::fs_std::FileExt;
use vantage_control::Controller;
use vantage_core::catalog::{Quota, Quotas};
use vantage_core::routing::RoutingTable;
use vantage_store::Store;
use vantage_store_sqlite::Durability;

use vantage_core::health::Location;
use vantage_core::region::RegionCode;
use vantage_probe::Prober;

use crate::bootstrap::{self, Seed};
use crate::process::{
    create_private_dir, init_logging, open_store, parse_location, parse_region, shutdown_signal,
    OpenedStore,
};
use crate::DataDir;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address of the API (port 0 picks a free port; the chosen address is logged).
    #[arg(long, env = "VANTAGE_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    #[command(flatten)]
    data: DataDir,
    /// fsync every commit, so answered writes survive power loss too (slower writes). Without
    /// it they survive a crash or kill of the process.
    #[arg(long, env = "VANTAGE_FSYNC")]
    fsync: bool,
    /// Region of the built-in probe agent (one of the 13 region codes).
    #[arg(long, env = "VANTAGE_REGION", default_value = "WNAM", value_parser = parse_region)]
    region: RegionCode,
    /// Name of the built-in probe location (unique per controller).
    #[arg(long, env = "VANTAGE_LOCATION", default_value = "local", value_parser = parse_location)]
    location: String,
    /// Do not run the built-in probe agent.
    #[arg(long)]
    no_agent: bool,
    /// Extra CA certificates (PEM) that HTTPS checks trust, besides the Mozilla roots.
    #[arg(long, env = "VANTAGE_PROBE_CA_FILE")]
    probe_ca_file: Option<PathBuf>,
    /// The built-in agent's checks in flight at most (it goes lower while this machine's
    /// cores are the bottleneck); beyond it checks wait and run late (logged, and
    /// `vantage_agent_backlog` on the metrics listener).
    #[arg(long, env = "VANTAGE_PROBE_MAX_IN_FLIGHT", default_value_t = vantage_control::agent::Capacity::IN_FLIGHT, value_parser = crate::process::in_flight_parser())]
    probe_max_in_flight: usize,
    /// Serve the detailed Prometheus metrics (every pool, origin, monitor and load balancer:
    /// names tenants' objects) at `/metrics` on this address, for the operator's scraper. The
    /// API's own `/metrics` shows only installation-wide series.
    #[arg(long, env = "VANTAGE_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, env = "VANTAGE_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, env = "VANTAGE_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    #[command(flatten)]
    dataplane: crate::dataplane::DataPlaneArgs,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    replicas: ReplicaArgs,
}

/// Several controllers on one PostgreSQL database (README: "Replicas").
#[derive(Debug, clap::Args)]
pub struct ReplicaArgs {
    /// The URL other controllers reach this one's API at, to hand it agents' results while it
    /// judges health (default: http:// and the address --listen bound).
    #[arg(long, env = "VANTAGE_ADVERTISE_URL")]
    advertise_url: Option<String>,
    /// Seconds the judge lease lasts unless renewed (renewed three times per lease): how long
    /// health may go unjudged when the judging controller dies.
    #[arg(long, env = "VANTAGE_JUDGE_LEASE", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    judge_lease: u64,
}

/// Installation-wide limits and allowances (README: "Limits").
#[derive(Debug, clap::Args)]
pub struct LimitArgs {
    /// Let webhooks point at loopback and link-local addresses (a receiver on this machine).
    /// Off, such URLs are refused when created and never posted to.
    #[arg(long, env = "VANTAGE_ALLOW_INTERNAL_WEBHOOKS")]
    allow_internal_webhooks: bool,
    /// Keep health events and the notification delivery log this many days.
    #[arg(long, env = "VANTAGE_RETENTION_DAYS", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3650))]
    retention_days: u32,
    /// Keep at most this many health events, and as many finished deliveries (the newest).
    #[arg(long, env = "VANTAGE_RETENTION_ROWS", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(100..))]
    retention_rows: u64,
    /// Previews one account may run at once (more: 429).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=1000))]
    max_previews_per_account: u64,
    /// Previews the installation runs at once (more: 429).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    max_previews: u64,
    /// Connections each listener (API, proxy, DNS over TCP) accepts at once; more are closed
    /// at once. Default: the descriptor limit, less a quarter kept for probes and the store,
    /// shared evenly among the listeners.
    #[arg(long, env = "VANTAGE_MAX_CONNECTIONS", value_parser = clap::value_parser!(u64).range(16..))]
    max_connections: Option<u64>,
    /// Forget a probe location silent this many seconds: it leaves the lists, its votes go.
    #[arg(long, env = "VANTAGE_FORGET_SILENT_AFTER", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(60..=31_536_000))]
    forget_silent_after: u64,
    /// The most objects of a kind one account may hold, as KIND=N (repeat, or comma-separate
    /// in the environment): zones, monitors, monitor_groups, pools, origins (over all its
    /// pools), load_balancers, webhooks, notification_policies. Kinds not named keep their
    /// defaults (README: "Limits").
    #[arg(long = "quota", env = "VANTAGE_QUOTA", value_delimiter = ',', value_name = "KIND=N", value_parser = parse_quota)]
    quotas: Vec<(Quota, u64)>,
}

/// `KIND=N` of `--quota`.
fn parse_quota(s: &str) -> Result<(Quota, u64), String> {
    let kinds = || {
        Quota::ALL
            .iter()
            .map(|q| q.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (kind, n) = s
        .split_once('=')
        .ok_or_else(|| format!("expected KIND=N, where KIND is one of {}", kinds()))?;
    let quota = Quota::from_name(kind.trim())
        .ok_or_else(|| format!("no quota {kind:?}; the kinds are {}", kinds()))?;
    let n = n
        .trim()
        .parse()
        .map_err(|_| format!("{n:?} is not a whole number of {}", quota.name()))?;
    Ok((quota, n))
}

impl LimitArgs {
    fn installation(&self, builtin: Option<Location>) -> vantage_control::Installation {
        vantage_control::Installation {
            allow_internal_webhooks: self.allow_internal_webhooks,
            previews_per_account: usize::try_from(self.max_previews_per_account).unwrap_or(4),
            previews_total: usize::try_from(self.max_previews).unwrap_or(32),
            builtin_location: builtin,
            forget_silent_after_micros: i64::try_from(self.forget_silent_after)
                .unwrap_or(i64::MAX / 1_000_000)
                * 1_000_000,
            quotas: (self.quotas.iter()).fold(Quotas::default(), |q, &(kind, n)| q.with(kind, n)),
        }
    }

    fn retention(&self) -> vantage_store::Retention {
        vantage_store::Retention {
            max_age_micros: i64::from(self.retention_days) * 86_400 * 1_000_000,
            max_rows: usize::try_from(self.retention_rows).unwrap_or(usize::MAX),
        }
    }
}

/// How often retention runs (and once at start).
const PRUNE_EVERY: Duration = Duration::from_secs(600);

async fn prune(state: Arc<Controller>, retention: vantage_store::Retention) {
    let mut every = tokio::time::interval(PRUNE_EVERY);
    loop {
        every.tick().await;
        state.prune(retention);
    }
}

/// An API connection on which no byte moves this long is closed: longer than the agent
/// protocol's 25 s long-poll and the dashboard stream's keep-alive.
const API_IDLE: Duration = Duration::from_secs(60);

/// Raises this process's descriptor limit to the most it may have, and returns it. Every
/// connection, probe and file takes one; a low limit is the first thing a flood exhausts.
pub fn raise_descriptor_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the descriptor limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
        }
    }
}

/// How often the server looks for changes the CLI made to the store.
const RELOAD_EVERY: Duration = Duration::from_millis(500);

/// Holds the data directory for this process: two servers on one store would each believe
/// their in-memory catalog is the truth.
fn lock_data_dir(dir: &Path) -> anyhow::Result<std::fs::File> {
    let path: PathBuf = dir.join("serve.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock_exclusive() {
        Ok(true) => Ok(file),
        Ok(false) => bail!("another `vantage serve` is using {}", dir.display()),
        Err(e) => Err(e).with_context(|| format!("locking {}", path.display())),
    }
}

/// Warns of zones not served and, on a first start, creates the default account and its
/// admin token. Its own copy of the catalog goes when it returns, before the controller loads
/// the one it keeps: held for the server's lifetime, it was 11 MB at 100,000 origins.
fn first_start(store: &dyn Store, seed: &Seed, dir: &Path) -> anyhow::Result<()> {
    let catalog = store.load_catalog()?;
    let served: std::collections::HashSet<_> = catalog.served_zones().map(|z| z.id).collect();
    for z in catalog.zones().filter(|z| !served.contains(&z.id)) {
        tracing::warn!(
            zone = %z.id,
            "zone {:?} overlaps an older zone of another account without the operator's \
             allowance; it is not served (recreate it with `vantage zone create --allow-overlap` \
             to delegate it)",
            z.name
        );
    }
    let (changes, generated) = bootstrap::plan(&catalog, seed, vantage_control::clock::now())?;
    if !changes.is_empty() {
        store.commit(&changes)?;
        tracing::info!("first start: created the default account and its admin token");
        if let Some(token) = generated {
            bootstrap::save_token(dir, &token)?;
            eprintln!(
                "vantage: admin API token (shown once; also saved to {}):\n\n    {token}\n",
                dir.join("bootstrap-token").display()
            );
        }
    }
    Ok(())
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    init_logging();
    let seed = Seed::from_env()?;
    let dir = &args.data.data_dir;
    create_private_dir(dir)?;
    let _lock = lock_data_dir(dir)?;
    let durability = if args.fsync {
        Durability::Power
    } else {
        Durability::Process
    };
    let store = match open_store(&args.data, durability)? {
        // The data directory's lock guards a SQLite store; controllers sharing a database take
        // turns judging health by its lease.
        OpenedStore::Postgres(pg) => {
            pg.join_controllers()?;
            tracing::info!(store = ?pg, "the catalog is kept in PostgreSQL");
            OpenedStore::Postgres(pg)
        }
        sqlite => sqlite,
    };
    let shared = matches!(store, OpenedStore::Postgres(_));
    let store = store.into_shared();

    first_start(store.as_ref(), &seed, dir)?;
    let descriptors = raise_descriptor_limit();
    let connections = args.limits.max_connections.map_or_else(
        || vantage_dataplane::limit::per_listener(descriptors, 1 + args.dataplane.listeners()),
        |n| usize::try_from(n).unwrap_or(usize::MAX),
    );
    tracing::info!(
        descriptors,
        connections_per_listener = connections,
        "descriptor budget: each listener accepts at most this many connections; the rest stays for probes and the store"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let agent = if args.no_agent {
        None
    } else {
        // ICMP sockets register with the runtime, so the prober is made inside it.
        let prober = {
            let _entered = runtime.enter();
            Prober::new(args.probe_ca_file.as_deref(), None)
                .context("setting up the probe agent")?
        };
        Some((
            prober,
            Location {
                region: args.region,
                name: args.location.clone(),
            },
            vantage_control::agent::Capacity {
                in_flight: args.probe_max_in_flight,
                ..Default::default()
            },
        ))
    };
    let (state, writer) = Controller::load(store)?;
    state.set_installation(
        args.limits
            .installation(agent.as_ref().map(|(_, l, _)| l.clone())),
    );
    let writer = std::thread::Builder::new()
        .name("vantage-writer".into())
        .spawn(move || writer.run())?;

    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(crate::tls::acceptor(cert, key)?),
        _ => None,
    };
    runtime.spawn(prune(Arc::clone(&state), args.limits.retention()));
    let replicas = shared.then_some(&args.replicas);
    let served = runtime.block_on(serve(
        args.metrics_listen,
        args.listen,
        state,
        agent,
        tls,
        &args.dataplane,
        dir,
        connections,
        replicas,
    ));
    drop(runtime);
    // Every state handle is gone with the runtime: the writer finishes queued work and exits,
    // and the store (the database connection) is closed with it.
    if writer.join().is_err() {
        tracing::error!("the writer thread panicked");
    }
    served
}

#[allow(clippy::too_many_arguments)]
async fn serve(
    metrics_listen: Option<SocketAddr>,
    listen: SocketAddr,
    state: Arc<Controller>,
    agent: Option<(Prober, Location, vantage_control::agent::Capacity)>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    dataplane: &crate::dataplane::DataPlaneArgs,
    data_dir: &Path,
    connections: usize,
    replicas: Option<&ReplicaArgs>,
) -> anyhow::Result<()> {
    let dataplane = if dataplane.wanted() {
        Some(
            crate::dataplane::DataPlane::bind(dataplane, Arc::clone(&state.metrics), connections)
                .await?,
        )
    } else {
        None
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;

    // Bound before any probe runs: no monitor may point a check at these.
    let mut own = vec![listener.local_addr()?];
    own.extend(dataplane.iter().flat_map(|d| d.local_addrs()));
    let metrics = match metrics_listen {
        Some(addr) => {
            let (bound, task) = serve_metrics(addr, Arc::clone(&state)).await?;
            own.push(bound);
            Some(task)
        }
        None => None,
    };
    vantage_probe::exclude_own_listeners(own);
    let lease = match replicas {
        Some(r) => Some(take_first_turn(&state, r, listener.local_addr()?, tls.is_some()).await?),
        None => None,
    };
    // Routing snapshots are published whether or not this process serves traffic itself:
    // edges may follow it at any time.
    // Replicas share one (the first to start brings its own, so a store moved up from
    // SQLite keeps its cookies valid).
    let secret = {
        let local = crate::dataplane::affinity_secret(data_dir)?;
        let st = Arc::clone(&state);
        let shared = tokio::task::spawn_blocking(move || {
            st.shared_secret("affinity", &local)
                .map(|s| s.map_or(local, Arc::from))
        })
        .await?
        .context("reading the shared affinity secret")?;
        shared
    };
    let first = {
        let st = Arc::clone(&state);
        let secret = Arc::clone(&secret);
        tokio::task::spawn_blocking(move || st.publish_snapshot(&secret)).await?
    };
    let mut background = vec![
        tokio::spawn(vantage_control::drivers::publish_snapshots(
            Arc::clone(&state),
            secret,
        )),
        tokio::spawn(watch_store(Arc::clone(&state))),
        tokio::spawn(vantage_control::drivers::follow_config(Arc::clone(&state))),
        tokio::spawn(vantage_control::drivers::tick(Arc::clone(&state))),
        tokio::spawn(vantage_control::drivers::publish_health(Arc::clone(&state))),
        tokio::spawn(vantage_control::delivery::deliver(Arc::clone(&state))),
    ];
    if let Some(lease) = lease {
        background.push(lease);
        background.push(tokio::spawn(vantage_control::judge::follow_verdicts(
            Arc::clone(&state),
        )));
    }
    if let Some((prober, location, capacity)) = agent {
        state.set_preview_runner(Arc::new(vantage_control::agent::LocalPreviews {
            prober: prober.clone(),
            location: location.clone(),
        }));
        background.push(tokio::spawn(vantage_control::agent::run(
            vantage_control::agent::Link::Local(Arc::clone(&state)),
            prober,
            location,
            capacity,
            Some(state.agent_metrics()),
        )));
    }
    background.extend(metrics);
    let mut data_listeners = Vec::new();
    if let Some(dp) = dataplane {
        // The same path an edge takes: the published snapshot, seen from this region.
        let routes = dp.routes();
        let region = dp.region();
        routes.store(Arc::new(RoutingTable::new(&first, region)));
        background.push(tokio::spawn(vantage_control::drivers::follow_snapshots(
            Arc::clone(&state),
            routes,
            region,
        )));
        data_listeners = dp.start()?;
    }
    // Logged last: tests and scripts read the data plane's addresses before this line.
    let local = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!("listening on {local} ({scheme})");
    let app = vantage_api::router(Arc::clone(&state));
    crate::http::serve(
        listener,
        tls,
        app,
        vantage_dataplane::limit::ConnectionLimit::new(connections),
        API_IDLE,
        shutdown_signal(),
    )
    .await;
    // The data plane drains on the same signal; give it the time it allows itself.
    for task in data_listeners {
        let _ = tokio::time::timeout(Duration::from_secs(11), task).await;
    }
    for task in background {
        task.abort();
    }
    tracing::info!("stopped");
    Ok(())
}

/// How long a metrics scrape may leave a piece of the exposition unread before it is dropped.
const SCRAPE_STALL: Duration = Duration::from_secs(30);

/// Binds the operator's metrics listener and serves the detailed exposition there.
async fn serve_metrics(
    addr: SocketAddr,
    state: Arc<Controller>,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the metrics listener to {addr}"))?;
    let bound = listener.local_addr()?;
    tracing::info!("metrics serving on {bound}");
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let st = Arc::clone(&state);
            async move {
                // The exposition is sent as it is written, a piece at a time: at 100,000
                // origins the whole text and the copies made to write it were ~70 MB a scrape.
                let (tx, rx) = tokio::sync::mpsc::channel::<String>(4);
                let runtime = tokio::runtime::Handle::current();
                tokio::task::spawn_blocking(move || {
                    st.render_metrics_chunks(vantage_metrics::Scope::Detailed, &mut |chunk| {
                        // A scraper that stops reading is given up on, not waited for.
                        let sent = tokio::time::timeout(SCRAPE_STALL, tx.send(chunk));
                        matches!(runtime.block_on(sent), Ok(Ok(())))
                    })
                });
                let body = futures_util::stream::unfold(rx, |mut rx| async move {
                    let chunk = rx.recv().await?;
                    Some((Ok::<_, std::convert::Infallible>(chunk), rx))
                });
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        vantage_metrics::CONTENT_TYPE,
                    )],
                    axum::body::Body::from_stream(body),
                )
            }
        }),
    );
    let task = tokio::spawn(crate::http::serve(
        listener,
        None,
        app,
        vantage_dataplane::limit::ConnectionLimit::new(64),
        API_IDLE,
        std::future::pending(),
    ));
    Ok((bound, task))
}

/// Takes this controller's first turn at the judge lease (before anything probes, so it knows
/// whether it judges) and returns the task that keeps taking turns.
async fn take_first_turn(
    state: &Arc<Controller>,
    replicas: &ReplicaArgs,
    bound: SocketAddr,
    tls: bool,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let scheme = if tls { "https" } else { "http" };
    let address = replicas
        .advertise_url
        .clone()
        .unwrap_or_else(|| format!("{scheme}://{bound}"));
    if bound.ip().is_unspecified() && replicas.advertise_url.is_none() {
        tracing::warn!(%address, "listening on every address: set --advertise-url so the other controllers can reach this one");
    }
    let holder = hex::encode(vantage_control::secrets::random_bytes());
    let lease = std::time::Duration::from_secs(replicas.judge_lease);
    let first = {
        let (st, h, a) = (Arc::clone(state), holder.clone(), address.clone());
        tokio::task::spawn_blocking(move || {
            st.take_turn(&h, &a, lease)?;
            st.follow_judge()
        })
        .await?
    };
    first.context("taking a first turn at the judge lease")?;
    if state.judges() {
        tracing::info!(%address, "this controller judges health (it holds the judge lease)");
    } else {
        tracing::info!(
            judge = state.judge_address().unwrap_or_default(),
            "another controller judges health; this one follows and serves"
        );
    }
    Ok(tokio::spawn(vantage_control::judge::follow_lease(
        Arc::clone(state),
        holder,
        address,
        lease,
    )))
}

/// Picks up tokens, accounts and zones the CLI wrote to the store while the server runs.
async fn watch_store(state: Arc<Controller>) {
    let mut tick = tokio::time::interval(RELOAD_EVERY);
    // A database says when it was written to (LISTEN/NOTIFY): reload at once then. The
    // periodic look stays, so a notification missed while reconnecting costs at most a tick.
    let changed = Arc::new(tokio::sync::Notify::new());
    {
        let changed = Arc::clone(&changed);
        state.on_external_change(Box::new(move || changed.notify_one()));
    }
    // An unreachable store (a database restarting) is said once, and its return once: not
    // twice a second for as long as it lasts.
    let mut failing = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = changed.notified() => {}
        }
        let st = Arc::clone(&state);
        let outcome = tokio::task::spawn_blocking(move || st.reload_if_changed()).await;
        match outcome {
            Ok(Ok(reloaded)) => {
                if std::mem::take(&mut failing) {
                    tracing::info!("the store answers again");
                }
                if reloaded {
                    tracing::info!("reloaded the catalog after an external change");
                }
            }
            Ok(Err(e)) => {
                if !std::mem::replace(&mut failing, true) {
                    tracing::warn!(error = %e, "checking the store for external changes failed; writes fail until it answers");
                }
            }
            Err(e) => tracing::warn!(error = %e, "store watcher job failed"),
        }
    }
}
