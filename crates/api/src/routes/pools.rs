//! `/accounts/{account_id}/load_balancers/pools`.

use std::sync::Arc;

use axum::extract::{Path, State};
use serde_json::{Map, Value};
use vantage_core::auth::Permission;
use vantage_core::catalog::{Catalog, Change};
use vantage_core::pool::{Pool, PoolDraft, PoolSpec};
use vantage_core::{AccountId, MonitorId, PoolId};
use vantage_wire::{parse, pool, reference, ApiError, Page};

use super::{account, deleted, ok, ok_list, stored, Reply};
use crate::extract::{Caller, JsonObject, Params};
use crate::secrets::random_bytes;
use crate::state::AppState;

/// Parses and validates a complete pool document; the monitor reference is resolved later,
/// against the catalog.
fn spec_of(doc: Value) -> Result<(PoolSpec, Option<String>), ApiError> {
    let draft: PoolDraft = parse::typed::<pool::PoolIn>(doc)?.into();
    Ok(draft.validate()?)
}

fn put_pool(c: Change) -> Option<Value> {
    match c {
        Change::PutPool(p) => Some(pool::render(&p)),
        _ => None,
    }
}

/// The account's pools (only those using `monitor`, if given), rendered in ascending name
/// order as Cloudflare lists them.
fn by_name(c: &Catalog, account: AccountId, monitor: Option<MonitorId>) -> Vec<Value> {
    let mut pools: Vec<&Pool> =
        c.pools_of(account).filter(|p| monitor.is_none() || p.spec.monitor == monitor).collect();
    pools.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
    pools.into_iter().map(pool::render).collect()
}

pub async fn list(
    State(st): State<Arc<AppState>>,
    Caller(p): Caller,
    Path(a): Path<String>,
    q: Params,
) -> Reply {
    let account = account(&p, &a, Permission::MonitorsPoolsRead)?;
    let monitor: Option<MonitorId> = match q.get("monitor") {
        None | Some("") => None,
        Some(raw) => Some(raw.parse().map_err(|_| {
            ApiError::field("/monitor", format!("{raw:?} is not a monitor identifier"))
        })?),
    };
    let page = q.page(None, Page::MAX_PER_PAGE)?;
    ok_list(by_name(&st.catalog(), account, monitor), page)
}

pub async fn get(
    State(st): State<Arc<AppState>>,
    Caller(p): Caller,
    Path((a, id)): Path<(String, String)>,
) -> Reply {
    let account = account(&p, &a, Permission::MonitorsPoolsRead)?;
    let id: PoolId = super::object_id(&id)?;
    let c = st.catalog();
    ok(pool::render(
        c.pool(account, id).ok_or_else(ApiError::not_found)?,
    ))
}

pub async fn create(
    State(st): State<Arc<AppState>>,
    Caller(p): Caller,
    Path(a): Path<String>,
    JsonObject(body): JsonObject,
) -> Reply {
    let account = account(&p, &a, Permission::MonitorsPoolsWrite)?;
    let (spec, monitor) = spec_of(Value::Object(body))?;
    let id = PoolId::from_bytes(random_bytes());
    let changes = st
        .commit(move |c, now| Ok(c.create_pool(account, id, spec, monitor, now)?))
        .await?;
    ok(stored(changes, put_pool)?)
}

async fn update(
    st: Arc<AppState>,
    p: Caller,
    a: String,
    id: String,
    body: Map<String, Value>,
    merge: bool,
) -> Reply {
    let account = account(&p.0, &a, Permission::MonitorsPoolsWrite)?;
    let id: PoolId = super::object_id(&id)?;
    let changes = st
        .commit(move |c, now| {
            let old = c.pool(account, id).ok_or_else(ApiError::not_found)?;
            let doc = if merge {
                parse::merge(pool::render(old), body)
            } else {
                Value::Object(body)
            };
            let (spec, monitor) = spec_of(doc)?;
            Ok(c.replace_pool(account, id, spec, monitor, now)?)
        })
        .await?;
    ok(stored(changes, put_pool)?)
}

pub async fn replace(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    Path((a, id)): Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> Reply {
    update(st, caller, a, id, body, false).await
}

pub async fn patch(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    Path((a, id)): Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> Reply {
    update(st, caller, a, id, body, true).await
}

/// `PATCH pools`: sets `notification_email` on every pool of the account, the only field
/// Cloudflare allows here.
pub async fn bulk_patch(
    State(st): State<Arc<AppState>>,
    Caller(p): Caller,
    Path(a): Path<String>,
    JsonObject(body): JsonObject,
) -> Reply {
    let account = account(&p, &a, Permission::MonitorsPoolsWrite)?;
    if let Some(other) = body.keys().find(|k| *k != "notification_email") {
        return Err(ApiError::field(
            &format!("/{other}"),
            format!("only notification_email can be set on all pools, not {other}"),
        )
        .into());
    }
    let email = match body.get("notification_email") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => {
            return Err(ApiError::field(
                "/notification_email",
                format!(
                    "notification_email must be a string, not {}",
                    parse::json_kind(other)
                ),
            )
            .into())
        }
    };
    st.commit(move |c, now| Ok(c.set_notification_email(account, &email, now)?))
        .await?;
    ok_list(by_name(&st.catalog(), account, None), Page::ALL)
}

pub async fn delete(
    State(st): State<Arc<AppState>>,
    Caller(p): Caller,
    Path((a, id)): Path<(String, String)>,
) -> Reply {
    let account = account(&p, &a, Permission::MonitorsPoolsWrite)?;
    let id: PoolId = super::object_id(&id)?;
    st.commit(move |c, _| Ok(c.delete_pool(account, id)?))
        .await?;
    deleted(id)
}

pub async fn references(
    State(st): State<Arc<AppState>>,
    Caller(p): Caller,
    Path((a, id)): Path<(String, String)>,
) -> Reply {
    let account = account(&p, &a, Permission::MonitorsPoolsRead)?;
    let id: PoolId = super::object_id(&id)?;
    let c = st.catalog();
    let pool = c.pool(account, id).ok_or_else(ApiError::not_found)?;
    ok_list(
        c.pool_references(pool)
            .iter()
            .map(reference::render)
            .collect(),
        Page::ALL,
    )
}
