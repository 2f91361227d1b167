//! Health routes: pool health (contract §6), previews and the health event history.

use std::sync::Arc;
use vantage_core::health::Verdict;

use axum::extract::State;
use serde_json::json;
use serde_json::Value;
use vantage_core::auth::{Permission, Target};
use vantage_core::pool::Pool;
use vantage_core::{AccountId, MonitorId, PoolId};
use vantage_store::EventFilter;
use vantage_wire::{time, ApiError, Page};

use super::{account, object_id, ok, ok_list, Reply};
use crate::extract::{Caller, JsonObject, Params, PathParams as Path};
use crate::routes::monitors::spec_of;
use vantage_control::Controller;

/// The headers that carry a caller's credentials, handed on as they came.
const CREDENTIAL_HEADERS: [&str; 4] = [
    "authorization",
    "x-auth-email",
    "x-auth-key",
    "x-auth-user-service-key",
];

pub async fn pool_health(
    State(st): State<Arc<Controller>>,
    Caller(p): Caller,
    Path((a, id)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
) -> Reply {
    let account = account(&p, &a, Permission::MonitorsPoolsRead)?;
    let id: PoolId = object_id(&id)?;
    if !st.judges() {
        // The verdicts here are the judge's already; each location's latest check is known
        // first hand only there (states are stored when they change, not per check). Asked
        // with the caller's own credentials; any answer but a 200 (the judge's catalog is
        // behind, it is unreachable) falls back to this replica's.
        let credentials: Vec<(&'static str, String)> = CREDENTIAL_HEADERS
            .iter()
            .filter_map(|h| Some((*h, headers.get(*h)?.to_str().ok()?.to_owned())))
            .collect();
        let path = format!("/client/v4/accounts/{account}/load_balancers/pools/{id}/health");
        if let Ok((200, answer)) = st.ask_judge(&path, &credentials).await {
            return Ok(axum::response::IntoResponse::into_response(axum::Json(
                answer,
            )));
        }
    }
    let c = st.catalog();
    let pool = c.pool(account, id).ok_or_else(ApiError::not_found)?;
    match st.pool_health(id) {
        // Cloudflare's answer for a pool without a monitor or without verdicts yet.
        Some(h) if h.healthy.is_known() => ok(vantage_wire::health::render_pool_health(pool, &h)),
        _ => Err(ApiError::health_unavailable().into()),
    }
}

/// `{preview_id, pools: {id: name}}` at once; the checks run in the background and
/// `GET preview/{id}` shows what is known so far.
async fn previewed(
    st: &Arc<Controller>,
    account: AccountId,
    body: serde_json::Map<String, Value>,
    pools: Vec<Pool>,
) -> Reply {
    let spec = spec_of(Value::Object(body))?;
    let names: serde_json::Map<String, Value> = pools
        .iter()
        .map(|p| (p.id.to_string(), json!(p.spec.name)))
        .collect();
    let id = st
        .run_preview(account, spec, pools)
        .map_err(preview_failure)?;
    ok(json!({"preview_id": id, "pools": names}))
}

/// `POST monitors/{id}/preview`: the candidate monitor against every pool using monitor `id`.
pub async fn preview_monitor(
    State(st): State<Arc<Controller>>,
    Caller(p): Caller,
    Path((a, id)): Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> Reply {
    let account = account(&p, &a, Permission::MonitorsPoolsWrite)?;
    let id: MonitorId = object_id(&id)?;
    let pools: Vec<Pool> = {
        let c = st.catalog();
        c.monitor(account, id).ok_or_else(ApiError::not_found)?;
        c.pools_of(account)
            .filter(|p| p.spec.monitor == Some(id))
            .cloned()
            .collect()
    };
    previewed(&st, account, body, pools).await
}

/// `POST pools/{id}/preview`: the candidate monitor against pool `id`.
pub async fn preview_pool(
    State(st): State<Arc<Controller>>,
    Caller(p): Caller,
    Path((a, id)): Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> Reply {
    let account = account(&p, &a, Permission::MonitorsPoolsWrite)?;
    let id: PoolId = object_id(&id)?;
    let pool = st
        .catalog()
        .pool(account, id)
        .cloned()
        .ok_or_else(ApiError::not_found)?;
    previewed(&st, account, body, vec![pool]).await
}

pub async fn preview_result(
    State(st): State<Arc<Controller>>,
    Caller(p): Caller,
    Path((a, id)): Path<(String, String)>,
) -> Reply {
    let account = account(&p, &a, Permission::MonitorsPoolsRead)?;
    ok(st
        .preview_result(&id, account)
        .ok_or_else(ApiError::not_found)?)
}

/// `GET .../load_balancers/probe_locations` (a Vantage extension): every probe location the
/// controller has heard from, with its region, last contact and state.
pub async fn probe_locations(
    State(st): State<Arc<Controller>>,
    Caller(p): Caller,
    Path(a): Path<String>,
) -> Reply {
    account(&p, &a, Permission::MonitorsPoolsRead)?;
    let items: Vec<Value> = st
        .probe_locations()
        .into_iter()
        .map(|(l, c)| {
            json!({
                "region": l.region.code(),
                "location": l.name,
                "last_seen": time::format(c.last_seen),
                "state": if c.silent { "silent" } else { "active" },
            })
        })
        .collect();
    ok_list(items, Page::ALL, |v| v)
}

/// The most events one request returns (the newest ones).
const MAX_EVENTS: usize = 1000;

fn flag(q: &Params, key: &str) -> Result<Option<bool>, ApiError> {
    match q.get(key).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(_) => Err(ApiError::field(
            &format!("/{key}"),
            format!("{key} must be true or false"),
        )),
    }
}

/// `GET /user/load_balancing_analytics/events`: verdict changes of the pools the caller may
/// read, oldest first, filtered by time, pool and origin.
pub async fn events(State(st): State<Arc<Controller>>, Caller(p): Caller, q: Params) -> Reply {
    let mut filter = EventFilter {
        limit: MAX_EVENTS,
        ..Default::default()
    };
    for key in ["since", "until"] {
        if let Some(v) = q.get(key).filter(|v| !v.is_empty()) {
            let t = time::parse(v).ok_or_else(|| {
                ApiError::field(
                    &format!("/{key}"),
                    format!("{key} must be an RFC 3339 time"),
                )
            })?;
            if key == "since" {
                filter.since = Some(t);
            } else {
                filter.until = Some(t);
            }
        }
    }
    let (origin_healthy, pool_healthy) = (flag(&q, "origin_healthy")?, flag(&q, "pool_healthy")?);
    let pool_id = match q.get("pool_id").filter(|v| !v.is_empty()) {
        Some(v) => Some(
            v.parse::<PoolId>()
                .map_err(|_| ApiError::field("/pool_id", "pool_id is not a pool identifier"))?,
        ),
        None => None,
    };
    let pool_name = q
        .get("pool_name")
        .filter(|v| !v.is_empty())
        .map(str::to_owned);
    let origin_name = q
        .get("origin_name")
        .filter(|v| !v.is_empty())
        .map(str::to_owned);
    let page = q.page(None, Page::MAX_PER_PAGE)?;
    // Only pools the caller may read, narrowed by the pool filters.
    let visible: Vec<PoolId> = st
        .catalog()
        .all_pools()
        .filter(|pool| p.allows(Permission::MonitorsPoolsRead, Target::Account(pool.account)))
        .filter(|pool| pool_id.is_none_or(|id| id == pool.id))
        .filter(|pool| pool_name.as_deref().is_none_or(|n| n == pool.spec.name))
        .map(|pool| pool.id)
        .collect();
    filter.pools = Some(visible);
    let store = Arc::clone(&st);
    let found = tokio::task::spawn_blocking(move || store.stored_events(&filter))
        .await
        .map_err(|_| ApiError::storage_unavailable("The event history"))?
        .map_err(|_| ApiError::storage_unavailable("The event history"))?;
    let matching: Vec<_> = found
        .into_iter()
        .filter(|(_, e)| pool_healthy.is_none_or(|h| e.pool_healthy == Verdict::of(h)))
        .filter(|(_, e)| {
            (origin_name.is_none() && origin_healthy.is_none())
                || e.origins.iter().any(|o| {
                    origin_name.as_deref().is_none_or(|n| n == o.name)
                        && origin_healthy.is_none_or(|h| o.healthy == Verdict::of(h))
                })
        })
        .collect();
    ok_list(matching, page, |(seq, e)| {
        vantage_wire::health::render_event(seq, &e)
    })
}

/// Why a preview did not start, as the envelope.
fn preview_failure(e: vantage_control::preview::PreviewError) -> ApiError {
    use vantage_control::preview::PreviewError;
    match e {
        PreviewError::NoLocations => ApiError::unavailable("Preview"),
        PreviewError::Busy {
            message,
            retry_after,
        } => ApiError::rate_limited(message, retry_after),
    }
}
