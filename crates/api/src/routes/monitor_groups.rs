//! `/accounts/{account_id}/load_balancers/monitor_groups`.

use std::sync::Arc;

use axum::extract::State;
use serde_json::Value;
use vantage_core::auth::Permission;
use vantage_core::catalog::{Catalog, Change, Outcome, Reference};
use vantage_core::monitor_group::{MonitorGroupDraft, MonitorGroupSpec};
use vantage_core::{AccountId, MonitorGroupId, Timestamp};
use vantage_wire::{fields, monitor_group, parse, ApiError, Page};

use super::account_object::AccountObject;
use super::{account, ok_list, Reply};
use crate::extract::{Caller, Params, PathParams as Path};
use vantage_control::Controller;

/// Monitor groups as account objects: the shared get/PUT/PATCH/DELETE/references handlers.
pub struct MonitorGroups;

impl AccountObject for MonitorGroups {
    const KIND: &'static str = "monitor_group";

    type Id = MonitorGroupId;
    type Spec = MonitorGroupSpec;

    fn parse(_: &Controller, doc: Value) -> Result<MonitorGroupSpec, ApiError> {
        fields::known::<monitor_group::MonitorGroupIn>(&doc)?;
        let draft: MonitorGroupDraft = parse::typed::<monitor_group::MonitorGroupIn>(doc)?.into();
        Ok(draft.validate()?)
    }

    fn id_from(bytes: [u8; 16]) -> MonitorGroupId {
        MonitorGroupId::from_bytes(bytes)
    }

    fn create(
        c: &Catalog,
        account: AccountId,
        id: MonitorGroupId,
        spec: MonitorGroupSpec,
        now: Timestamp,
    ) -> Outcome {
        c.create_monitor_group(account, id, spec, now)
    }

    fn current(c: &Catalog, account: AccountId, id: MonitorGroupId) -> Option<Value> {
        c.monitor_group(account, id).map(monitor_group::render)
    }

    fn render(
        _: &Controller,
        c: &Catalog,
        account: AccountId,
        id: MonitorGroupId,
    ) -> Option<Value> {
        Self::current(c, account, id)
    }

    fn rendered(_: &Controller, change: Change) -> Option<Value> {
        match change {
            Change::PutMonitorGroup(g) => Some(monitor_group::render(&g)),
            _ => None,
        }
    }

    fn replace(
        c: &Catalog,
        account: AccountId,
        id: MonitorGroupId,
        spec: MonitorGroupSpec,
        now: Timestamp,
    ) -> Outcome {
        c.replace_monitor_group(account, id, spec, now)
    }

    fn delete(c: &Catalog, account: AccountId, id: MonitorGroupId) -> Outcome {
        c.delete_monitor_group(account, id)
    }

    fn references(c: &Catalog, account: AccountId, id: MonitorGroupId) -> Option<Vec<Reference>> {
        c.monitor_group(account, id)
            .map(|g| c.monitor_group_references(g))
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
    ok_list(
        st.catalog().monitor_groups_of(account),
        page,
        monitor_group::render,
    )
}
