//! The controller's side of the edge protocol: the published routing snapshot and the last
//! few before it (an edge holding one of those gets a delta), each answer serialized once and
//! shared by every edge that asks, and the edges that follow.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use vantage_core::region::RegionCode;
use vantage_core::routing::Snapshot;
use vantage_core::{Timestamp, TokenId};

use crate::edge_protocol::SnapshotV1;
use crate::Controller;

/// Snapshots kept to make deltas from: an edge further behind gets the whole snapshot.
const HISTORY: usize = 16;

/// An edge is forgotten this long after its last request (its token may be gone).
const FORGET_AFTER_MICROS: i64 = 24 * 3_600 * 1_000_000;

/// Serialized answers of one snapshot version, by base version.
type Answers = (u64, HashMap<u64, Arc<[u8]>>);

#[derive(Debug)]
pub(crate) struct Routing {
    snapshot: ArcSwap<Snapshot>,
    version: tokio::sync::watch::Sender<u64>,
    /// The last published snapshots, oldest first.
    history: Mutex<VecDeque<Arc<Snapshot>>>,
    /// Answers for the current version, serialized on first request, by the base version
    /// they are a delta from (0: the whole snapshot).
    answers: Mutex<Answers>,
    edges: Mutex<BTreeMap<TokenId, Edge>>,
}

impl Default for Routing {
    fn default() -> Self {
        Routing {
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            version: tokio::sync::watch::Sender::new(0),
            history: Mutex::new(VecDeque::new()),
            answers: Mutex::new((0, HashMap::new())),
            edges: Mutex::new(BTreeMap::new()),
        }
    }
}

/// An edge that asked within this long counts as connected: it asks again at once after an
/// answer, and at least once per long poll.
const CONNECTED_WITHIN_MICROS: i64 =
    (crate::edge_protocol::LONG_POLL.as_secs() as i64 + 10) * 1_000_000;

/// An edge as the controller last heard from it.
#[derive(Debug, Clone, PartialEq)]
struct Edge {
    /// Its token's name.
    name: String,
    region: Option<RegionCode>,
    /// The snapshot version it said it holds (0: none yet).
    version: u64,
    last_contact: Timestamp,
    /// Waiting for a newer snapshot right now.
    waiting: bool,
}

/// An edge as the listings show it.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeState {
    /// Its token's name.
    pub name: String,
    pub region: Option<RegionCode>,
    /// The snapshot version it said it holds (0: none yet).
    pub version: u64,
    /// It holds the snapshot published now.
    pub current: bool,
    pub last_contact: Timestamp,
    /// Waiting for a newer snapshot, or asked recently enough to be.
    pub connected: bool,
}

impl Controller {
    /// The routing snapshot as last published.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.routing.snapshot.load_full()
    }

    /// Changes of the published snapshot (its version), for followers.
    pub fn snapshot_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.routing.version.subscribe()
    }

    /// Builds the next snapshot from the catalog and the published verdicts and publishes it
    /// unless it steers exactly as the one published (blocking: it walks every load
    /// balancer). `secret` keys the origin identities in affinity cookies.
    pub fn publish_snapshot(&self, secret: &[u8]) -> Arc<Snapshot> {
        let regions: Vec<RegionCode> = {
            let mut r: Vec<RegionCode> = self
                .probe_locations()
                .into_iter()
                .map(|(l, _)| l.region)
                .collect();
            r.sort();
            r.dedup();
            r
        };
        let previous = self.snapshot();
        let started = std::time::Instant::now();
        // A follower steers dynamic latency by the judge's RTTs: its engine measures none.
        let given = (!self.judges()).then(|| self.judges_rtts());
        let next = {
            let catalog = self.catalog();
            let health = self.health_view();
            let engine = self.engine();
            let latency =
                |key: &vantage_core::health::ProbeKey, region| engine.latency_ms(key, region);
            let rtts = match &given {
                Some(given) => vantage_core::routing::Rtts::Given(given),
                None => vantage_core::routing::Rtts::Measured(&latency),
            };
            Snapshot::build(
                &catalog,
                &health,
                rtts,
                &regions,
                secret,
                Some(&previous),
                self.now(),
            )
        };
        if given.is_none() {
            self.hand_rtts_on(next.pool_rtts());
        }
        tracing::debug!(
            build_ms = started.elapsed().as_secs_f64() * 1e3,
            load_balancers = next.load_balancers.len(),
            "built a routing snapshot"
        );
        if previous.version > 0 && next.same_routes(&previous) {
            // Nothing for followers to fetch (the periodic rebuild found no RTT moved).
            return previous;
        }
        let next = Arc::new(next);
        {
            let mut history = self
                .routing
                .history
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            history.push_back(Arc::clone(&next));
            while history.len() > HISTORY {
                history.pop_front();
            }
        }
        self.routing.snapshot.store(Arc::clone(&next));
        self.routing.version.send_replace(next.version);
        next
    }

    /// The answer for an edge holding version `after` (0: none), in the edge protocol: a
    /// delta when this controller still holds `after`, else the whole snapshot. Serialized
    /// once per (base, version) and shared (blocking: the first one serializes).
    pub fn snapshot_answer(&self, after: u64) -> (u64, Arc<[u8]>) {
        let current = self.snapshot();
        let from = (after != 0 && after < current.version)
            .then(|| {
                let history = self
                    .routing
                    .history
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                history.iter().find(|s| s.version == after).cloned()
            })
            .flatten();
        let base = from.as_ref().map_or(0, |s| s.version);
        let mut answers = self
            .routing
            .answers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if answers.0 != current.version {
            *answers = (current.version, HashMap::new());
        }
        if let Some(bytes) = answers.1.get(&base) {
            return (current.version, Arc::clone(bytes));
        }
        let message = match &from {
            Some(from) => SnapshotV1::delta(from, &current),
            None => SnapshotV1::from_core(&current),
        };
        let bytes: Arc<[u8]> = serde_json::to_vec(&message).unwrap_or_default().into();
        answers.1.insert(base, Arc::clone(&bytes));
        (current.version, bytes)
    }

    /// Records a request of an edge (`waiting`: it now waits for a newer snapshot).
    pub fn edge_contact(
        &self,
        token: TokenId,
        name: &str,
        region: Option<RegionCode>,
        version: u64,
        waiting: bool,
    ) {
        let now = self.now();
        let mut edges = self.routing.edges.lock().unwrap_or_else(|e| e.into_inner());
        edges.retain(|_, e| now.unix_micros() - e.last_contact.unix_micros() < FORGET_AFTER_MICROS);
        edges.insert(
            token,
            Edge {
                name: name.to_owned(),
                region,
                version,
                last_contact: now,
                waiting,
            },
        );
    }

    /// Every edge heard from in the last day, by name.
    pub fn edges(&self) -> Vec<EdgeState> {
        let now = self.now().unix_micros();
        let current = self.snapshot().version;
        let mut list: Vec<EdgeState> = self
            .routing
            .edges
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|e| EdgeState {
                name: e.name.clone(),
                region: e.region,
                version: e.version,
                current: e.version == current,
                last_contact: e.last_contact,
                connected: e.waiting
                    || now - e.last_contact.unix_micros() < CONNECTED_WITHIN_MICROS,
            })
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }
}
