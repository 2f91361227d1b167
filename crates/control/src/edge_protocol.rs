//! The edge protocol (`/edge/v1`): how an edge follows a controller's routing snapshots.
//! Its messages are types of their own, versioned and pinned by golden files
//! (`tests/golden/edge/`), so the core's types can change without breaking a running edge.
//!
//! An edge long-polls [`SNAPSHOT_PATH`] with the version it holds (`?after=`); the controller
//! answers as soon as it has a newer one, or `304 Not Modified` after [`LONG_POLL`]. The
//! answer is a delta from the edge's version (`base`: the zones, every load balancer and
//! pool that differs, and the ids of those removed) when the controller still holds that
//! version, else the whole snapshot (first contact, a restarted controller, an edge far
//! behind). Each answer is serialized once per (base, version) and shared by every edge that
//! asks; BENCHMARKS.md has the sizes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use vantage_core::choice::Choice;
use vantage_core::pool::{LoadShedding, OriginSteeringPolicy, SheddingPolicy, Weight};
use vantage_core::region::RegionCode;
use vantage_core::routing::{
    authority, PoolRtt, Snapshot, SnapshotLoadBalancer, SnapshotPool, Upstream, ZoneView,
};
use vantage_core::steering::{OriginView, PoolView};
use vantage_core::{LoadBalancerId, PoolId, Timestamp, ZoneId};

pub const SNAPSHOT_PATH: &str = "/edge/v1/snapshot";

/// The protocol's version, sent by edges in [`VERSION_HEADER`] and by the controller in
/// every snapshot.
pub const VERSION: u32 = 1;
pub const VERSION_HEADER: &str = "vantage-edge-protocol";

/// How long a snapshot request waits for a newer version before answering 304.
pub const LONG_POLL: Duration = Duration::from_secs(25);

/// Whether a controller speaking [`VERSION`] serves an edge speaking `edge`; the refusal
/// names both versions and which side to upgrade.
pub fn accepts(edge: u32) -> Result<(), String> {
    if edge == VERSION {
        return Ok(());
    }
    let upgrade = if edge < VERSION {
        "the edge"
    } else {
        "the controller"
    };
    Err(format!(
        "this edge speaks edge protocol version {edge}; this controller speaks {VERSION}: upgrade {upgrade}"
    ))
}

/// One routing snapshot as it travels and as an edge keeps it on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotV1 {
    pub protocol: u32,
    /// Grows with every snapshot (Unix microseconds of its making, at least).
    pub version: u64,
    /// On a delta, the version it applies to; absent on a whole snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<u64>,
    /// Every zone (also in a delta: they are few, and their serials move).
    pub zones: Vec<ZoneV1>,
    /// Every load balancer, or in a delta those added or changed.
    pub load_balancers: Vec<LoadBalancerV1>,
    /// Every pool a load balancer names, or in a delta those added or changed.
    pub pools: Vec<PoolV1>,
    /// In a delta: the ids gone since `base`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed_load_balancers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed_pools: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZoneV1 {
    pub id: String,
    pub name: String,
    pub serial: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadBalancerV1 {
    pub id: String,
    pub zone_id: String,
    /// The load balancer's configuration as Cloudflare's API renders it (every field, with
    /// its defaults); the edge validates it as the API validates a request body.
    pub config: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolV1 {
    pub id: String,
    pub name: String,
    pub enabled: bool,
    /// The pool's traffic verdict.
    pub healthy: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latitude: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longitude: Option<f64>,
    pub origin_steering: String,
    pub origins: Vec<OriginV1>,
    /// Probe RTT in ms from anywhere and per region (dynamic-latency pools only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rtt_ms_by_region: BTreeMap<String, f64>,
    /// Left out while the pool sheds nothing. An edge older than this field steers as if
    /// it were left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_shedding: Option<LoadSheddingV1>,
}

/// A pool's load shedding: percentages and `random`/`hash`, as Cloudflare's API spells them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadSheddingV1 {
    pub default_percent: f64,
    pub default_policy: String,
    pub session_percent: f64,
    pub session_policy: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OriginV1 {
    pub name: String,
    pub address: String,
    /// 0: the scheme's default.
    pub port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The origin's identity in affinity cookies (16 hex digits), keyed by the controller's
    /// secret, which edges never see.
    pub key: String,
    pub enabled: bool,
    /// The origin's traffic verdict.
    pub healthy: bool,
    pub weight: f64,
    /// When a disabled origin was disabled (µs since the epoch), for draining its sessions;
    /// left out otherwise. An edge older than this drains nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<i64>,
}

impl SnapshotV1 {
    pub fn from_core(s: &Snapshot) -> SnapshotV1 {
        SnapshotV1 {
            protocol: VERSION,
            version: s.version,
            base: None,
            removed_load_balancers: Vec::new(),
            removed_pools: Vec::new(),
            zones: s
                .zones
                .iter()
                .map(|z| ZoneV1 {
                    id: z.id.to_string(),
                    name: z.name.clone(),
                    serial: z.serial,
                })
                .collect(),
            load_balancers: s
                .load_balancers
                .iter()
                .map(|lb| LoadBalancerV1 {
                    id: lb.id.to_string(),
                    zone_id: lb.zone.to_string(),
                    config: vantage_wire::load_balancer::render_spec(&lb.spec),
                })
                .collect(),
            pools: s.pools.iter().map(|(id, p)| pool_v1(*id, p)).collect(),
        }
    }

    /// What changed from `from` to `to`: every zone, the load balancers and pools that
    /// differ, and the ids of those gone.
    pub fn delta(from: &Snapshot, to: &Snapshot) -> SnapshotV1 {
        let before: BTreeMap<LoadBalancerId, &Arc<SnapshotLoadBalancer>> =
            from.load_balancers.iter().map(|lb| (lb.id, lb)).collect();
        let same = |a: &Arc<SnapshotLoadBalancer>, b: &Arc<SnapshotLoadBalancer>| {
            Arc::ptr_eq(a, b) || a == b
        };
        let after: std::collections::BTreeSet<LoadBalancerId> =
            to.load_balancers.iter().map(|lb| lb.id).collect();
        let mut full = SnapshotV1::from_core(&Snapshot {
            version: to.version,
            zones: to.zones.clone(),
            load_balancers: to
                .load_balancers
                .iter()
                .filter(|lb| !before.get(&lb.id).is_some_and(|b| same(b, lb)))
                .cloned()
                .collect(),
            pools: to
                .pools
                .iter()
                .filter(|(id, p)| {
                    !from
                        .pools
                        .get(id)
                        .is_some_and(|b| Arc::ptr_eq(b, p) || b == *p)
                })
                .map(|(id, p)| (*id, Arc::clone(p)))
                .collect(),
            answers: Default::default(),
            verdicts: Default::default(),
        });
        full.base = Some(from.version);
        full.removed_load_balancers = before
            .keys()
            .filter(|id| !after.contains(id))
            .map(ToString::to_string)
            .collect();
        full.removed_pools = from
            .pools
            .keys()
            .filter(|id| !to.pools.contains_key(id))
            .map(ToString::to_string)
            .collect();
        full
    }

    /// The core's snapshot this message makes: a whole snapshot on its own, a delta on top of
    /// `held` (which must be its base). Every object it carries passes the checks the API
    /// applies; the error names the first that does not.
    pub fn apply_to(self, held: Option<&Snapshot>) -> Result<Snapshot, String> {
        let Some(base) = self.base else {
            return self.into_core();
        };
        let held = held
            .filter(|h| h.version == base)
            .ok_or_else(|| format!("a delta from version {base}, which this edge does not hold"))?;
        let removed_pools = self
            .removed_pools
            .iter()
            .map(|id| parse_id::<PoolId>(id, "pool"))
            .collect::<Result<std::collections::BTreeSet<_>, _>>()?;
        let removed_lbs = self
            .removed_load_balancers
            .iter()
            .map(|id| parse_id::<LoadBalancerId>(id, "load balancer"))
            .collect::<Result<std::collections::BTreeSet<_>, _>>()?;
        let mut pools = held.pools.clone();
        pools.retain(|id, _| !removed_pools.contains(id));
        let mut lbs: BTreeMap<LoadBalancerId, Arc<SnapshotLoadBalancer>> = held
            .load_balancers
            .iter()
            .filter(|lb| !removed_lbs.contains(&lb.id))
            .map(|lb| (lb.id, Arc::clone(lb)))
            .collect();
        let mut changed = self.parts()?;
        pools.extend(std::mem::take(&mut changed.pools));
        // A changed load balancer is validated against the pools as they are after the delta.
        for lb in changed.load_balancers(&pools)? {
            lbs.insert(lb.id, Arc::new(lb));
        }
        for lb in lbs.values() {
            if let Some(p) = lb
                .spec
                .referenced_pools()
                .into_iter()
                .find(|p| !pools.contains_key(p))
            {
                return Err(format!(
                    "load balancer {}: its pool {p} is not in the snapshot",
                    lb.id
                ));
            }
            if !changed.zones.iter().any(|z| z.id == lb.zone) {
                return Err(format!(
                    "load balancer {}: its zone {} is not in the snapshot",
                    lb.id, lb.zone
                ));
            }
        }
        let mut load_balancers: Vec<Arc<SnapshotLoadBalancer>> = lbs.into_values().collect();
        load_balancers.sort_by(|a, b| a.spec.name.cmp(&b.spec.name).then(a.id.cmp(&b.id)));
        Ok(Snapshot {
            version: changed.version,
            zones: changed.zones,
            load_balancers,
            pools,
            answers: Default::default(),
            verdicts: Default::default(),
        })
    }

    /// The core's snapshot, once every object passes the same checks the API applies; the
    /// error names the first object that does not.
    pub fn into_core(self) -> Result<Snapshot, String> {
        if self.base.is_some() {
            return Err("a delta cannot stand alone".into());
        }
        let parts = self.parts()?;
        let pools = parts.pools.clone();
        let load_balancers = parts
            .load_balancers(&pools)?
            .into_iter()
            .map(Arc::new)
            .collect();
        Ok(Snapshot {
            version: parts.version,
            zones: parts.zones,
            load_balancers,
            pools,
            answers: Default::default(),
            verdicts: Default::default(),
        })
    }

    /// Parses the zones and pools; the load balancers stay raw until the pools they may name
    /// are known.
    fn parts(self) -> Result<Parts, String> {
        if self.protocol != VERSION {
            return Err(format!(
                "snapshot of edge protocol {}, this edge reads {VERSION}",
                self.protocol
            ));
        }
        let mut zones = Vec::with_capacity(self.zones.len());
        for z in self.zones {
            let id: ZoneId = parse_id(&z.id, "zone")?;
            if vantage_core::name::normalize_zone_name(&z.name).as_deref() != Some(z.name.as_str())
            {
                return Err(format!("zone {id}: {:?} is not a host name", z.name));
            }
            zones.push(ZoneView {
                id,
                name: z.name,
                serial: z.serial,
            });
        }
        let mut pools = BTreeMap::new();
        for p in self.pools {
            let id: PoolId = parse_id(&p.id, "pool")?;
            let pool = pool_core(p).map_err(|e| format!("pool {id}: {e}"))?;
            pools.insert(id, Arc::new(pool));
        }
        Ok(Parts {
            version: self.version,
            zones,
            pools,
            load_balancers: self.load_balancers,
        })
    }
}

/// A message's zones and pools parsed, its load balancers not yet.
struct Parts {
    version: u64,
    zones: Vec<ZoneView>,
    pools: BTreeMap<PoolId, Arc<SnapshotPool>>,
    load_balancers: Vec<LoadBalancerV1>,
}

impl Parts {
    /// The load balancers, each validated as the API validates a body, its pools looked up in
    /// `pools`.
    fn load_balancers(
        &self,
        pools: &BTreeMap<PoolId, Arc<SnapshotPool>>,
    ) -> Result<Vec<SnapshotLoadBalancer>, String> {
        let zone_names: BTreeMap<ZoneId, &str> =
            self.zones.iter().map(|z| (z.id, z.name.as_str())).collect();
        let mut out = Vec::with_capacity(self.load_balancers.len());
        for lb in &self.load_balancers {
            let id: LoadBalancerId = parse_id(&lb.id, "load balancer")?;
            let zone: ZoneId = parse_id(&lb.zone_id, "zone")?;
            let zone_name = zone_names.get(&zone).ok_or_else(|| {
                format!("load balancer {id}: its zone {zone} is not in the snapshot")
            })?;
            let spec = vantage_wire::parse::typed::<vantage_wire::load_balancer::LoadBalancerIn>(
                lb.config.clone(),
            )
            .and_then(|d| d.into_draft())
            .map_err(|e| describe(&e))
            .and_then(|d| {
                d.validate(zone_name, &|p: PoolId| pools.contains_key(&p))
                    .map_err(|v| {
                        v.iter()
                            .map(|v| format!("{}: {}", v.path, v.detail))
                            .collect::<Vec<_>>()
                            .join("; ")
                    })
            })
            .map_err(|e| format!("load balancer {id}: {e}"))?;
            out.push(SnapshotLoadBalancer { id, zone, spec });
        }
        out.sort_by(|a, b| a.spec.name.cmp(&b.spec.name).then(a.id.cmp(&b.id)));
        Ok(out)
    }
}

fn describe(e: &vantage_wire::ApiError) -> String {
    e.errors
        .iter()
        .map(|e| match &e.pointer {
            Some(p) => format!("{p}: {}", e.message),
            None => e.message.clone(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn parse_id<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, String> {
    s.parse()
        .map_err(|_| format!("{s:?} is not a {what} identifier"))
}

fn pool_v1(id: PoolId, p: &SnapshotPool) -> PoolV1 {
    PoolV1 {
        id: id.to_string(),
        name: p.name.clone(),
        enabled: p.view.enabled,
        healthy: p.view.healthy,
        latitude: p.view.coordinates.map(|c| c.0),
        longitude: p.view.coordinates.map(|c| c.1),
        origin_steering: p.view.origin_steering.as_str().to_owned(),
        origins: p
            .view
            .origins
            .iter()
            .zip(&p.upstreams)
            .map(|(o, u)| OriginV1 {
                name: u.name.clone(),
                address: u.address.clone(),
                port: u
                    .authority
                    .rsplit_once(':')
                    .and_then(|(_, p)| p.parse().ok())
                    .unwrap_or(0),
                host: u.host.clone(),
                key: format!("{:016x}", u.key),
                enabled: o.enabled,
                healthy: o.healthy,
                weight: f64::from(o.weight.hundredths()) / 100.0,
                disabled_at: o.disabled_at.map(Timestamp::unix_micros),
            })
            .collect(),
        rtt_ms: p.rtt.anywhere,
        rtt_ms_by_region: p
            .rtt
            .by_region
            .iter()
            .map(|(r, ms)| (r.to_string(), *ms))
            .collect(),
        load_shedding: (p.view.shedding != LoadShedding::default()).then(|| {
            let s = &p.view.shedding;
            LoadSheddingV1 {
                default_percent: s.default_percent,
                default_policy: s.default_policy.as_str().to_owned(),
                session_percent: s.session_percent,
                session_policy: s.session_policy.as_str().to_owned(),
            }
        }),
    }
}

fn shedding_core(s: Option<LoadSheddingV1>) -> Result<LoadShedding, String> {
    let Some(s) = s else {
        return Ok(LoadShedding::default());
    };
    let policy = |name: &str| {
        SheddingPolicy::parse(name)
            .ok_or_else(|| format!("load shedding policy {name:?} is unknown"))
    };
    let percent = |p: f64| {
        if (0.0..=100.0).contains(&p) {
            Ok(p)
        } else {
            Err(format!("load shedding percent {p} is not in [0, 100]"))
        }
    };
    Ok(LoadShedding {
        default_percent: percent(s.default_percent)?,
        default_policy: policy(&s.default_policy)?,
        session_percent: percent(s.session_percent)?,
        session_policy: policy(&s.session_policy)?,
    })
}

fn pool_core(p: PoolV1) -> Result<SnapshotPool, String> {
    let origin_steering = OriginSteeringPolicy::parse(&p.origin_steering)
        .ok_or_else(|| format!("origin_steering {:?} is unknown", p.origin_steering))?;
    let coordinates = match (p.latitude, p.longitude) {
        (Some(lat), Some(lon))
            if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) =>
        {
            Some((lat, lon))
        }
        (None, None) => None,
        _ => return Err("latitude and longitude must come together and in range".into()),
    };
    let mut origins = Vec::with_capacity(p.origins.len());
    let mut upstreams = Vec::with_capacity(p.origins.len());
    for o in p.origins {
        let weight = Weight::from_f64(o.weight).ok_or_else(|| {
            format!(
                "origin {:?}: weight {} is not in [0, 1] in hundredths",
                o.name, o.weight
            )
        })?;
        let key = u64::from_str_radix(&o.key, 16)
            .ok()
            .filter(|_| o.key.len() == 16)
            .ok_or_else(|| format!("origin {:?}: key {:?} is not 16 hex digits", o.name, o.key))?;
        if !vantage_core::name::is_origin_address(&o.address) {
            return Err(format!(
                "origin {:?}: {:?} is not an address",
                o.name, o.address
            ));
        }
        origins.push(OriginView {
            enabled: o.enabled,
            healthy: o.healthy,
            weight,
            disabled_at: o.disabled_at.map(Timestamp::from_unix_micros),
        });
        upstreams.push(Upstream {
            authority: authority(&o.address, o.port).into(),
            name: o.name,
            key,
            address: o.address,
            host: o.host,
        });
    }
    let mut by_region = BTreeMap::new();
    for (r, ms) in p.rtt_ms_by_region {
        let region: RegionCode = r
            .parse()
            .map_err(|_| format!("{r:?} is not a region code"))?;
        by_region.insert(region, ms);
    }
    Ok(SnapshotPool {
        name: p.name,
        view: PoolView {
            enabled: p.enabled,
            healthy: p.healthy,
            coordinates,
            origin_steering,
            origins,
            shedding: shedding_core(p.load_shedding)?,
        },
        upstreams,
        rtt: PoolRtt {
            anywhere: p.rtt_ms,
            by_region,
        },
    })
}
