//! An edge follows controllers: it long-polls each `--controller` in turn for a routing
//! snapshot newer than the one it holds, applies it atomically to the data plane's
//! `ArcSwap<RoutingTable>` (exactly what the built-in data plane does), and keeps it in a
//! file so that a restart during a controller outage serves the last known routes at once.
//! Requests never wait on a controller: the proxy and DNS only load the table.

pub mod client;
pub mod file;

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use vantage_core::region::RegionCode;
use vantage_core::routing::{RoutingTable, Snapshot};

use crate::edge_protocol::SnapshotV1;
use client::Client;

/// Reconnection backoff: doubling from the first, capped so that an edge catches up within
/// a second of a controller's return; each wait is jittered down to half.
const BACKOFF_FIRST: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_millis(800);

/// The snapshot file is rewritten at most this often.
const KEEP_EVERY: Duration = Duration::from_secs(1);

/// What an edge holds, for its metrics and logs.
#[derive(Debug, Default)]
pub struct Status {
    /// The applied snapshot's version (Unix µs of its making; 0: none).
    version: AtomicU64,
    /// When a controller last answered (Unix µs; 0: never).
    contact: AtomicI64,
}

impl Status {
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Seconds since the applied snapshot was made, at `now` (Unix µs).
    pub fn age_seconds(&self, now: i64) -> Option<f64> {
        let v = i64::try_from(self.version()).ok().filter(|v| *v > 0)?;
        Some((now - v).max(0) as f64 / 1e6)
    }

    /// Seconds since a controller last answered, at `now`.
    pub fn contact_seconds(&self, now: i64) -> Option<f64> {
        let c = self.contact.load(Ordering::Acquire);
        (c > 0).then(|| (now - c).max(0) as f64 / 1e6)
    }
}

/// An edge's follower.
#[derive(Debug)]
pub struct Edge {
    controllers: Vec<Client>,
    token: String,
    region: Option<RegionCode>,
    file: Option<PathBuf>,
    routes: Arc<ArcSwap<RoutingTable>>,
    status: Arc<Status>,
    metrics: Arc<vantage_metrics::Metrics>,
    /// The snapshot applied (deltas apply on top of it).
    held: std::sync::Mutex<Option<Arc<Snapshot>>>,
    /// The latest snapshot to keep in the file, for the writer.
    unsaved: tokio::sync::watch::Sender<Option<Arc<Snapshot>>>,
}

/// Where a snapshot came from (for logs).
#[derive(Debug, Clone, Copy)]
enum Source<'a> {
    File(&'a std::path::Path),
    Controller(&'a str),
}

impl std::fmt::Display for Source<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::File(p) => write!(f, "the snapshot file {}", p.display()),
            Source::Controller(c) => write!(f, "controller {c}"),
        }
    }
}

impl Edge {
    /// An edge in `region` following `controllers` (tried in turn) with `token`, keeping
    /// its snapshot in `file`, publishing into `routes`.
    pub fn new(
        controllers: Vec<Client>,
        token: String,
        region: Option<RegionCode>,
        file: Option<PathBuf>,
        routes: Arc<ArcSwap<RoutingTable>>,
        metrics: Arc<vantage_metrics::Metrics>,
    ) -> Edge {
        Edge {
            controllers,
            token,
            region,
            file,
            routes,
            status: Arc::default(),
            metrics,
            held: std::sync::Mutex::new(None),
            unsaved: tokio::sync::watch::Sender::new(None),
        }
    }

    pub fn status(&self) -> Arc<Status> {
        Arc::clone(&self.status)
    }

    /// Serves the snapshot file's routes, if there is a file. `Err`: the file exists but is
    /// refused (edited, another edge's, or not a valid snapshot) — nothing was applied.
    pub fn load_file(&self) -> anyhow::Result<Option<u64>> {
        let Some(path) = &self.file else {
            return Ok(None);
        };
        let body = file::read(path, &self.token)
            .map_err(|e| anyhow::anyhow!("refusing the snapshot file {}: {e:#}", path.display()))?;
        let Some(body) = body else {
            return Ok(None);
        };
        let version = self
            .apply(&body, Source::File(path))
            .map_err(|e| anyhow::anyhow!("refusing the snapshot file {}: {e}", path.display()))?;
        Ok(Some(version))
    }

    /// Parses, checks and applies one snapshot; its version, or why it was refused.
    fn apply(&self, body: &[u8], source: Source<'_>) -> Result<u64, String> {
        let started = std::time::Instant::now();
        let wire: SnapshotV1 =
            serde_json::from_slice(body).map_err(|e| format!("it does not parse: {e}"))?;
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let version = held.as_ref().map_or(0, |h| h.version);
        if wire.version <= version {
            return Err(format!(
                "its version {} is not newer than the one held ({version})",
                wire.version
            ));
        }
        let delta = wire.base.is_some();
        let snapshot = Arc::new(wire.apply_to(held.as_deref())?);
        let before = self.routes.load_full();
        let table = RoutingTable::next(
            held.as_deref().map(|h| (&*before, h)),
            &snapshot,
            self.region,
        );
        self.routes.store(Arc::new(table));
        *held = Some(Arc::clone(&snapshot));
        drop(held);
        self.status
            .version
            .store(snapshot.version, Ordering::Release);
        if matches!(source, Source::Controller(_)) {
            self.unsaved.send_replace(Some(Arc::clone(&snapshot)));
        }
        let now = crate::clock::now().unix_micros();
        let lag = (now - i64::try_from(snapshot.version).unwrap_or(i64::MAX)).max(0);
        if matches!(source, Source::Controller(_)) {
            self.metrics.snapshot_applied(lag as f64 / 1e6);
        }
        tracing::info!(
            version = snapshot.version,
            lag_ms = lag as f64 / 1e3,
            apply_ms = started.elapsed().as_secs_f64() * 1e3,
            bytes = body.len(),
            delta,
            load_balancers = snapshot.load_balancers.len(),
            "applied the routing snapshot from {source}"
        );
        Ok(snapshot.version)
    }

    /// Follows the controllers until the process ends: long-polls one, and on any failure
    /// moves to the next after a jittered backoff, keeping the routes it holds.
    pub async fn run(self: Arc<Self>) {
        if let Some(path) = self.file.clone() {
            tokio::spawn(keep(path, self.token.clone(), self.unsaved.subscribe()));
        }
        let mut i = 0;
        let mut backoff = BACKOFF_FIRST;
        let mut failing = false;
        loop {
            let controller = &self.controllers[i % self.controllers.len()];
            match controller
                .newer_than(self.status.version(), self.region)
                .await
            {
                Ok(answer) => {
                    self.status
                        .contact
                        .store(crate::clock::now().unix_micros(), Ordering::Release);
                    if failing {
                        tracing::info!(
                            controller = controller.base(),
                            "controller reachable again"
                        );
                        failing = false;
                    }
                    backoff = BACKOFF_FIRST;
                    if let Some(body) = answer {
                        if !self.take(body, controller.base()).await {
                            // The same refused snapshot would come straight back.
                            tokio::time::sleep(BACKOFF_MAX).await;
                        }
                    }
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(
                            controller = controller.base(),
                            error = %format!("{e:#}"),
                            version = self.status.version(),
                            "controller unreachable; serving the snapshot held and trying the next"
                        );
                        failing = true;
                    }
                    i += 1;
                    let jittered = backoff.mul_f64(0.5 + rand::random::<f64>() * 0.5);
                    tokio::time::sleep(jittered).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    /// Applies a snapshot a controller sent; false when refused.
    async fn take(self: &Arc<Self>, body: Vec<u8>, controller: &str) -> bool {
        let edge = Arc::clone(self);
        let base = controller.to_owned();
        let applied =
            tokio::task::spawn_blocking(move || edge.apply(&body, Source::Controller(&base))).await;
        match applied {
            Ok(Ok(_)) => true,
            Ok(Err(why)) => {
                self.metrics.snapshot_refused();
                tracing::error!(controller, "refused a routing snapshot: {why}");
                false
            }
            Err(e) => {
                tracing::error!(error = %e, "applying a snapshot failed");
                false
            }
        }
    }
}

/// Keeps the latest applied snapshot in `path`, whole (deltas included), off the request
/// path: one write at a time, always of the newest snapshot, at most every [`KEEP_EVERY`].
async fn keep(
    path: PathBuf,
    token: String,
    mut unsaved: tokio::sync::watch::Receiver<Option<Arc<Snapshot>>>,
) {
    while unsaved.changed().await.is_ok() {
        let Some(snapshot) = unsaved.borrow_and_update().clone() else {
            continue;
        };
        let (path, token) = (path.clone(), token.clone());
        let written = tokio::task::spawn_blocking(move || {
            let body = serde_json::to_vec(&SnapshotV1::from_core(&snapshot))?;
            file::write(&path, &token, &body)?;
            anyhow::Ok(snapshot.version)
        })
        .await;
        match written {
            Ok(Ok(version)) => tracing::debug!(version, "kept the routing snapshot in the file"),
            Ok(Err(e)) => {
                tracing::warn!(error = %format!("{e:#}"), "keeping the snapshot file failed")
            }
            Err(e) => tracing::warn!(error = %e, "keeping the snapshot file failed"),
        }
        // A large snapshot is costly to write whole; under a burst of changes the file
        // follows at most once a second (the routes in memory follow every change).
        tokio::time::sleep(KEEP_EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(version: u64) -> Vec<u8> {
        let snapshot = Snapshot {
            version,
            zones: vec![vantage_core::routing::ZoneView {
                id: vantage_core::ZoneId::from_bytes([1; 16]),
                name: "example.com".into(),
                serial: 1,
            }],
            ..Snapshot::default()
        };
        serde_json::to_vec(&SnapshotV1::from_core(&snapshot)).unwrap()
    }

    #[test]
    fn only_a_newer_valid_snapshot_is_applied() {
        let routes = Arc::new(ArcSwap::from_pointee(RoutingTable::default()));
        let edge = Edge::new(
            Vec::new(),
            "t".into(),
            None,
            None,
            Arc::clone(&routes),
            Arc::default(),
        );
        let from = Source::Controller("c");
        assert_eq!(edge.apply(&body(20), from), Ok(20));
        assert!(routes.load().zone_of("www.example.com").is_some());
        let served = routes.load_full();
        let older = edge.apply(&body(10), from).unwrap_err();
        assert!(older.contains("not newer"), "{older}");
        let same = edge.apply(&body(20), from).unwrap_err();
        assert!(same.contains("not newer"), "{same}");
        let garbage = edge.apply(b"{\"protocol\": 1", from).unwrap_err();
        assert!(garbage.contains("does not parse"), "{garbage}");
        assert!(
            Arc::ptr_eq(&served, &routes.load_full()),
            "nothing refused was applied"
        );
        assert_eq!(edge.status().version(), 20);
    }
}
