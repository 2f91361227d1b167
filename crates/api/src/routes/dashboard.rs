//! The web dashboard: one page embedded in the binary (`GET /`), one aggregated state document
//! (`GET /dashboard/v1/state`: everything the page shows, in one request, computed from the
//! catalog and the engine), and a change stream (`GET /dashboard/v1/stream`, server-sent
//! events) that tells the page when to fetch the state again. Both data routes take the same
//! credentials as the API and show only what the caller may read.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use serde_json::{json, Value};
use vantage_core::auth::{Permission, Target};
use vantage_core::choice::Choice;
use vantage_core::health::verdict::PoolState;
use vantage_core::health::Verdict;
use vantage_core::routing::RoutingTable;
use vantage_core::steering;
use vantage_store::EventFilter;
use vantage_wire::{health as wire_health, time, ApiError};

use super::{ok, Reply};
use crate::extract::Caller;
use vantage_control::Controller;

const PAGE: &str = include_str!("../../assets/dashboard.html");

pub async fn page() -> Response {
    (
        [
            (header::CACHE_CONTROL, "no-cache"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
            ),
        ],
        Html(PAGE),
    )
        .into_response()
}

/// How many recent events the page shows.
const EVENTS: usize = 50;

pub async fn state(State(st): State<Arc<Controller>>, Caller(p): Caller) -> Reply {
    let (doc, pools) = {
        let st = Arc::clone(&st);
        let p = p.clone();
        tokio::task::spawn_blocking(move || dashboard(&st, &p))
            .await
            .map_err(|_| ApiError::failed("The dashboard"))?
    };
    let filter = EventFilter {
        limit: EVENTS,
        pools: Some(pools),
        ..Default::default()
    };
    let events = tokio::task::spawn_blocking(move || st.stored_events(&filter))
        .await
        .map_err(|_| ApiError::storage_unavailable("The event history"))?
        .map_err(|_| ApiError::storage_unavailable("The event history"))?;
    let mut doc = doc;
    doc["events"] = events
        .iter()
        .rev()
        .map(|(seq, e)| wire_health::render_event(*seq, e))
        .collect();
    ok(doc)
}

/// Server-sent events: `changed` after any configuration or verdict change (at most four a
/// second), and a keep-alive comment every 15 s.
pub async fn stream(State(st): State<Arc<Controller>>, Caller(_): Caller) -> Response {
    let config = st.assignment_changes();
    let verdicts = st.verdict_changes();
    let events = futures_util::stream::unfold((config, verdicts), |(mut c, mut v)| async move {
        tokio::select! {
            r = c.changed() => r.ok()?,
            r = v.changed() => r.ok()?,
        }
        // Coalesce a burst of changes into one refresh.
        tokio::time::sleep(Duration::from_millis(250)).await;
        c.borrow_and_update();
        v.borrow_and_update();
        let event = SseEvent::default().event("changed").data("{}");
        Some((Ok::<_, Infallible>(event), (c, v)))
    });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// The RTT history of a pool's origins: `{origin name: [[unix seconds, ms], …]}`.
pub async fn rtt(
    State(st): State<Arc<Controller>>,
    Caller(p): Caller,
    crate::extract::PathParams(pool): crate::extract::PathParams<String>,
) -> Reply {
    let id: vantage_core::PoolId = pool.parse().map_err(|_| ApiError::not_found())?;
    let account = st
        .catalog()
        .all_pools()
        .find(|x| x.id == id)
        .map(|x| x.account)
        .ok_or_else(ApiError::not_found)?;
    if !p.allows(Permission::MonitorsPoolsRead, Target::Account(account)) {
        return Err(ApiError::not_found().into());
    }
    let targets = st.engine().origin_targets(id);
    let out: serde_json::Map<String, Value> = targets
        .into_iter()
        .map(|(name, key)| {
            let series: Vec<Value> = key
                .map(|k| st.rtt_series(&k))
                .unwrap_or_default()
                .into_iter()
                .map(|(t, us)| json!([t, f64::from(us) / 1000.0]))
                .collect();
            (name, Value::Array(series))
        })
        .collect();
    ok(Value::Object(out))
}

/// Everything the dashboard shows that the caller may read, and the pools it covers
/// (blocking: reads every visible pool's verdicts).
fn dashboard(
    st: &Controller,
    p: &vantage_core::auth::Principal,
) -> (Value, Vec<vantage_core::PoolId>) {
    let health = st.health_view();
    let c = st.catalog();
    let readable_pool = |account| p.allows(Permission::MonitorsPoolsRead, Target::Account(account));
    let mut pool_ids = Vec::new();
    let pools: Vec<Value> = c
        .all_pools()
        .filter(|pool| readable_pool(pool.account))
        .map(|pool| {
            pool_ids.push(pool.id);
            let verdicts = health.pool(pool.id);
            let group = pool
                .spec
                .monitor_group
                .and_then(|g| c.monitor_group(pool.account, g));
            // Each member's verdict per origin: the view holds only the group's.
            let members = group
                .and_then(|_| st.engine().pool_health(pool.id))
                .map(|h| h.origins)
                .unwrap_or_default();
            let member_name = |m: vantage_core::MonitorId| {
                c.monitor(pool.account, m)
                    .map(|m| m.spec.description.clone())
                    .filter(|d| !d.is_empty())
                    .unwrap_or_else(|| m.to_string())
            };
            let origins: Vec<Value> = pool
                .spec
                .origins
                .iter()
                .enumerate()
                .map(|(i, o)| {
                    let v = verdicts.and_then(|v| v.origins.get(i));
                    let healthy = v.map_or(Verdict::Unknown, |v| v.healthy);
                    let monitored = verdicts.is_some_and(|v| v.monitored);
                    json!({
                        "name": o.name,
                        "address": o.address,
                        "enabled": o.enabled,
                        "weight": o.weight.as_f64(),
                        "healthy": healthy,
                        "failure_reason": v.filter(|v| v.healthy.is_unhealthy()).map(|v| v.reason.as_str()),
                        "rtt_ms": v.and_then(|v| v.latency(|k| st.latency_ms(k))),
                        "regions": v.filter(|_| monitored).map(|v| v.regions.iter().map(|(r, x)| (r.code().to_owned(), json!(x))).collect::<serde_json::Map<_, _>>()),
                        "members": members.get(i).map(|h| h.members.iter().map(|m| json!({
                            "monitor": member_name(m.monitor),
                            "healthy": m.healthy,
                            "failure_reason": m.healthy.is_unhealthy().then(|| m.reason.as_str()),
                            "must_be_healthy": m.role.must_be_healthy,
                            "monitoring_only": m.role.monitoring_only,
                        })).collect::<Vec<_>>()),
                    })
                })
                .collect();
            let state = verdicts.map_or(PoolState::Unknown, |v| v.state()).as_str();
            json!({
                "id": pool.id.to_string(),
                "name": pool.spec.name,
                "account": pool.account.to_string(),
                "monitored": pool.spec.monitor.is_some() || group.is_some(),
                "monitor_group": group.map(|g| if g.description.is_empty() { g.id.to_string() } else { g.description.clone() }),
                "minimum_origins": pool.spec.minimum_origins,
                "state": state,
                "origins": origins,
            })
        })
        .collect();
    // Which pools take traffic is the core's steering over the data plane's own view.
    let table = RoutingTable::build(&c, &health, &[]);
    let mut routes: Vec<_> = table.routes().collect();
    routes.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
    let load_balancers: Vec<Value> = routes
        .into_iter()
        .filter(|r| {
            c.zone(r.zone).is_some_and(|z| {
                p.allows(
                    Permission::LoadBalancersRead,
                    Target::Zone {
                        zone: z.id,
                        account: z.account,
                    },
                )
            })
        })
        .map(|r| {
            let s = &r.spec;
            json!({
                "id": r.id.to_string(),
                "name": s.name,
                "zone": c.zone(r.zone).map(|z| z.name.as_str()),
                "enabled": s.enabled,
                "proxied": s.proxied,
                "steering_policy": s.steering_policy.as_str(),
                "default_pools": s.default_pools.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "fallback_pool": s.fallback_pool.to_string(),
                "serving": steering::serving(s, &r.pools).iter().map(ToString::to_string).collect::<Vec<_>>(),
                "rules": vantage_wire::load_balancer::render_rules(&s.rules),
            })
        })
        .collect();
    let locations: Vec<Value> = st
        .probe_locations()
        .into_iter()
        .map(|(l, contact)| {
            json!({
                "region": l.region.code(),
                "location": l.name,
                "last_seen": time::format(contact.last_seen),
                "silent": contact.silent,
            })
        })
        .collect();
    let edges: Vec<Value> = st
        .edges()
        .into_iter()
        .map(|e| {
            json!({
                "name": e.name,
                "region": e.region.map(|r| r.code()),
                "last_seen": time::format(e.last_contact),
                "current": e.current,
                "connected": e.connected,
            })
        })
        .collect();
    let doc = json!({
        "generated": time::format(st.now()),
        "load_balancers": load_balancers,
        "pools": pools,
        "locations": locations,
        "edges": edges,
    });
    (doc, pool_ids)
}
