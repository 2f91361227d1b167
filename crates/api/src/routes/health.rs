//! Health routes: pool health, previews and health events.
//!
//! Probing arrives with the health engine. Until then these routes validate their input
//! exactly as they will and answer truthfully: no verdicts exist, so pool health is
//! "unavailable" (Cloudflare's own answer for a pool without health data), previews cannot
//! run, and the event history is empty.

use std::sync::Arc;

use axum::extract::State;
use serde_json::Value;
use vantage_core::auth::Permission;
use vantage_core::{MonitorId, PoolId};
use vantage_wire::{time, ApiError, Page};

use super::{account, object_id, ok_list, Reply};
use crate::extract::{Caller, JsonObject, Params, PathParams as Path};
use crate::routes::monitors::spec_of;
use crate::state::AppState;

pub async fn pool_health(
    State(st): State<Arc<AppState>>,
    Caller(p): Caller,
    Path((a, id)): Path<(String, String)>,
) -> Reply {
    let account = account(&p, &a, Permission::MonitorsPoolsRead)?;
    let id: PoolId = object_id(&id)?;
    st.catalog()
        .pool(account, id)
        .ok_or_else(ApiError::not_found)?;
    Err(ApiError::health_unavailable().into())
}

pub async fn preview_monitor(
    State(st): State<Arc<AppState>>,
    Caller(p): Caller,
    Path((a, id)): Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> Reply {
    let account = account(&p, &a, Permission::MonitorsPoolsWrite)?;
    let id: MonitorId = object_id(&id)?;
    st.catalog()
        .monitor(account, id)
        .ok_or_else(ApiError::not_found)?;
    spec_of(Value::Object(body))?;
    Err(ApiError::unavailable("Monitor preview").into())
}

pub async fn preview_pool(
    State(st): State<Arc<AppState>>,
    Caller(p): Caller,
    Path((a, id)): Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> Reply {
    let account = account(&p, &a, Permission::MonitorsPoolsWrite)?;
    let id: PoolId = object_id(&id)?;
    st.catalog()
        .pool(account, id)
        .ok_or_else(ApiError::not_found)?;
    spec_of(Value::Object(body))?;
    Err(ApiError::unavailable("Pool preview").into())
}

/// No preview has ever run, so every preview id is unknown.
pub async fn preview_result(Caller(p): Caller, Path((a, _)): Path<(String, String)>) -> Reply {
    account(&p, &a, Permission::MonitorsPoolsRead)?;
    Err(ApiError::not_found().into())
}

/// Validates the filters, then lists the (so far empty) history of health changes.
pub async fn events(Caller(_): Caller, q: Params) -> Reply {
    for key in ["since", "until"] {
        if let Some(v) = q.get(key).filter(|v| !v.is_empty()) {
            time::parse(v).ok_or_else(|| {
                ApiError::field(
                    &format!("/{key}"),
                    format!("{key} must be an RFC 3339 time"),
                )
            })?;
        }
    }
    for key in ["origin_healthy", "pool_healthy"] {
        if let Some(v) = q.get(key).filter(|v| !v.is_empty()) {
            if v != "true" && v != "false" {
                return Err(ApiError::field(
                    &format!("/{key}"),
                    format!("{key} must be true or false"),
                )
                .into());
            }
        }
    }
    if let Some(v) = q.get("pool_id").filter(|v| !v.is_empty()) {
        v.parse::<PoolId>()
            .map_err(|_| ApiError::field("/pool_id", "pool_id is not a pool identifier"))?;
    }
    ok_list(
        Vec::<Value>::new(),
        q.page(None, Page::MAX_PER_PAGE)?,
        |v| v,
    )
}
