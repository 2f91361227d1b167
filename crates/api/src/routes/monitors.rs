//! `/accounts/{account_id}/load_balancers/monitors` and `/search`.

use std::sync::Arc;

use axum::extract::State;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};
use vantage_core::auth::Permission;
use vantage_core::catalog::{Catalog, Change, Outcome, Reference, ReferenceType};
use vantage_core::monitor::{MonitorDraft, MonitorSpec};
use vantage_core::{AccountId, MonitorId, Timestamp};
use vantage_wire::{envelope, fields, monitor, parse, reference, ApiError, Page};

use super::account_object::AccountObject;
use super::{account, ok_list, Reply};
use crate::extract::{Caller, Params, PathParams as Path};
use vantage_control::Controller;

/// Parses and validates a complete monitor document.
pub(crate) fn spec_of(doc: Value) -> Result<MonitorSpec, ApiError> {
    fields::known::<monitor::MonitorIn>(&doc)?;
    let draft: MonitorDraft = parse::typed::<monitor::MonitorIn>(doc)?.into();
    Ok(draft.validate()?)
}

/// Monitors as account objects: the shared get/PUT/PATCH/DELETE/references handlers.
pub struct Monitors;

impl AccountObject for Monitors {
    const KIND: &'static str = "monitor";

    type Id = MonitorId;
    type Spec = MonitorSpec;

    fn parse(_: &Controller, doc: Value) -> Result<MonitorSpec, ApiError> {
        spec_of(doc)
    }

    fn id_from(bytes: [u8; 16]) -> MonitorId {
        MonitorId::from_bytes(bytes)
    }

    fn create(
        c: &Catalog,
        account: AccountId,
        id: MonitorId,
        spec: MonitorSpec,
        now: Timestamp,
    ) -> Outcome {
        c.create_monitor(account, id, spec, now)
    }

    fn current(c: &Catalog, account: AccountId, id: MonitorId) -> Option<Value> {
        c.monitor(account, id).map(monitor::render)
    }

    fn render(_: &Controller, c: &Catalog, account: AccountId, id: MonitorId) -> Option<Value> {
        Self::current(c, account, id)
    }

    fn rendered(_: &Controller, change: Change) -> Option<Value> {
        match change {
            Change::PutMonitor(m) => Some(monitor::render(&m)),
            _ => None,
        }
    }

    fn replace(
        c: &Catalog,
        account: AccountId,
        id: MonitorId,
        spec: MonitorSpec,
        now: Timestamp,
    ) -> Outcome {
        c.replace_monitor(account, id, spec, now)
    }

    fn delete(c: &Catalog, account: AccountId, id: MonitorId) -> Outcome {
        c.delete_monitor(account, id)
    }

    fn references(c: &Catalog, account: AccountId, id: MonitorId) -> Option<Vec<Reference>> {
        c.monitor(account, id).map(|m| c.monitor_references(m))
    }
}

pub async fn list(
    State(st): State<Arc<Controller>>,
    Caller(p): Caller,
    Path(a): Path<String>,
    q: Params,
) -> Reply {
    let account = account(&p, &a, Permission::MonitorsPoolsRead)?;
    let page = q.page(None, Page::MAX_PER_PAGE)?;
    ok_list(st.catalog().monitors_of(account), page, monitor::render)
}

/// `GET search`: resources whose name, description or origin address contains `query`, with
/// their references when `references` is `*`, `referral` or `referrer`.
pub async fn search(
    State(st): State<Arc<Controller>>,
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
