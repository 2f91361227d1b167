//! `/accounts/{account_id}/load_balancers/monitors` and `/search`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Map, Value};
use vantage_core::auth::Permission;
use vantage_core::catalog::{Change, ReferenceType};
use vantage_core::monitor::{MonitorDraft, MonitorSpec};
use vantage_core::MonitorId;
use vantage_wire::{envelope, monitor, parse, reference, ApiError, Page};

use super::{account, deleted, ok, ok_list, stored, Reply};
use crate::extract::{Caller, JsonObject, Params};
use crate::secrets::random_bytes;
use crate::state::AppState;

/// Parses and validates a complete monitor document.
pub(crate) fn spec_of(doc: Value) -> Result<MonitorSpec, ApiError> {
    let draft: MonitorDraft = parse::typed::<monitor::MonitorIn>(doc)?.into();
    Ok(draft.validate()?)
}

fn put_monitor(c: Change) -> Option<Value> {
    match c {
        Change::PutMonitor(m) => Some(monitor::render(&m)),
        _ => None,
    }
}

pub async fn list(
    State(st): State<Arc<AppState>>,
    Caller(p): Caller,
    Path(a): Path<String>,
    q: Params,
) -> Reply {
    let account = account(&p, &a, Permission::MonitorsPoolsRead)?;
    let page = q.page(None, Page::MAX_PER_PAGE)?;
    let items = st
        .catalog()
        .monitors_of(account)
        .map(monitor::render)
        .collect();
    ok_list(items, page)
}

pub async fn get(
    State(st): State<Arc<AppState>>,
    Caller(p): Caller,
    Path((a, id)): Path<(String, String)>,
) -> Reply {
    let account = account(&p, &a, Permission::MonitorsPoolsRead)?;
    let id: MonitorId = super::object_id(&id)?;
    let c = st.catalog();
    let m = c.monitor(account, id).ok_or_else(ApiError::not_found)?;
    ok(monitor::render(m))
}

pub async fn create(
    State(st): State<Arc<AppState>>,
    Caller(p): Caller,
    Path(a): Path<String>,
    JsonObject(body): JsonObject,
) -> Reply {
    let account = account(&p, &a, Permission::MonitorsPoolsWrite)?;
    let spec = spec_of(Value::Object(body))?;
    let id = MonitorId::from_bytes(random_bytes());
    let changes = st
        .commit(move |c, now| Ok(c.create_monitor(account, id, spec, now)?))
        .await?;
    ok(stored(changes, put_monitor)?)
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
    let id: MonitorId = super::object_id(&id)?;
    let changes = st
        .commit(move |c, now| {
            let old = c.monitor(account, id).ok_or_else(ApiError::not_found)?;
            let doc = if merge {
                parse::merge(monitor::render(old), body)
            } else {
                Value::Object(body)
            };
            Ok(c.replace_monitor(account, id, spec_of(doc)?, now)?)
        })
        .await?;
    ok(stored(changes, put_monitor)?)
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

pub async fn delete(
    State(st): State<Arc<AppState>>,
    Caller(p): Caller,
    Path((a, id)): Path<(String, String)>,
) -> Reply {
    let account = account(&p, &a, Permission::MonitorsPoolsWrite)?;
    let id: MonitorId = super::object_id(&id)?;
    st.commit(move |c, _| Ok(c.delete_monitor(account, id)?))
        .await?;
    deleted(id)
}

pub async fn references(
    State(st): State<Arc<AppState>>,
    Caller(p): Caller,
    Path((a, id)): Path<(String, String)>,
) -> Reply {
    let account = account(&p, &a, Permission::MonitorsPoolsRead)?;
    let id: MonitorId = super::object_id(&id)?;
    let c = st.catalog();
    let m = c.monitor(account, id).ok_or_else(ApiError::not_found)?;
    ok_list(
        c.monitor_references(m)
            .iter()
            .map(reference::render)
            .collect(),
        Page::ALL,
    )
}

/// `GET search`: resources whose name, description or origin address contains `query`, with
/// their references when `references` is `*`, `referral` or `referrer`.
pub async fn search(
    State(st): State<Arc<AppState>>,
    Caller(p): Caller,
    Path(a): Path<String>,
    q: Params,
) -> Reply {
    let account = account(&p, &a, Permission::MonitorsPoolsRead)?;
    let query = q
        .get("query")
        .or_else(|| q.get("search_params[query]"))
        .unwrap_or("")
        .to_owned();
    let wanted = q
        .get("references")
        .or_else(|| q.get("search_params[references]"))
        .unwrap_or("");
    let filter: Option<Option<ReferenceType>> = match wanted {
        "" => None,
        "*" => Some(None),
        "referral" => Some(Some(ReferenceType::Referral)),
        "referrer" => Some(Some(ReferenceType::Referrer)),
        other => {
            return Err(ApiError::field(
                "/references",
                format!(
                    "references must be \"\", \"*\", \"referral\" or \"referrer\", not {other:?}"
                ),
            )
            .into())
        }
    };
    let page = q.page(Some(25), Page::MAX_PER_PAGE)?;
    let c = st.catalog();
    let resources: Vec<Value> = c
        .search(account, &query)
        .into_iter()
        .map(|(kind, id, name)| {
            let refs: Vec<Value> = match filter {
                None => vec![],
                Some(want) => c
                    .references_of(account, kind, &id)
                    .iter()
                    .filter(|r| want.is_none_or(|w| r.reference_type == w))
                    .map(reference::render)
                    .collect(),
            };
            json!({"resource_id": id, "resource_name": name, "resource_type": kind.as_str(), "references": refs})
        })
        .collect();
    let (resources, info) = page.apply(resources);
    Ok(Json(envelope::success_paged(
        json!({"resources": resources}),
        info,
    ))
    .into_response())
}
