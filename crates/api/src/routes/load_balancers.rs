//! `/zones/{zone_id}/load_balancers`.

use std::sync::Arc;

use axum::extract::State;
use serde_json::{Map, Value};
use vantage_core::auth::Permission;
use vantage_core::catalog::Change;
use vantage_core::load_balancer::LoadBalancerDraft;
use vantage_core::LoadBalancerId;
use vantage_wire::{load_balancer, parse, ApiError, Page};

use super::{deleted, ok, ok_list, zone, Reply};
use crate::extract::{Caller, JsonObject, Params, PathParams as Path};
use vantage_control::Controller;

fn draft_of(doc: Value) -> Result<LoadBalancerDraft, ApiError> {
    parse::typed::<load_balancer::LoadBalancerIn>(doc)?.into_draft()
}

/// Renders the load balancer a command stored, with its zone's name.
fn render_stored(st: &Controller, changes: Vec<Change>) -> Reply {
    let lb = super::stored(changes, |c| match c {
        Change::PutLoadBalancer(lb) => Some(lb),
        _ => None,
    })?;
    let c = st.catalog();
    let z = c.zone(lb.zone).ok_or_else(ApiError::not_found)?;
    ok(load_balancer::render(&lb, z))
}

pub async fn list(
    State(st): State<Arc<Controller>>,
    Caller(p): Caller,
    Path(z): Path<String>,
    q: Params,
) -> Reply {
    let c = st.catalog();
    let (zone_id, _) = zone(&p, &c, &z, Permission::LoadBalancersRead)?;
    let page = q.page(None, Page::MAX_PER_PAGE)?;
    let z = c.zone(zone_id).ok_or_else(ApiError::not_found)?;
    ok_list(c.load_balancers_of(zone_id), page, |lb| {
        load_balancer::render(lb, z)
    })
}

pub async fn get(
    State(st): State<Arc<Controller>>,
    Caller(p): Caller,
    Path((z, id)): Path<(String, String)>,
) -> Reply {
    let c = st.catalog();
    let (zone_id, _) = zone(&p, &c, &z, Permission::LoadBalancersRead)?;
    let id: LoadBalancerId = super::object_id(&id)?;
    let lb = c
        .load_balancer(zone_id, id)
        .ok_or_else(ApiError::not_found)?;
    let z = c.zone(zone_id).ok_or_else(ApiError::not_found)?;
    ok(load_balancer::render(lb, z))
}

pub async fn create(
    State(st): State<Arc<Controller>>,
    Caller(p): Caller,
    Path(z): Path<String>,
    JsonObject(body): JsonObject,
) -> Reply {
    let (zone_id, _) = zone(&p, &st.catalog(), &z, Permission::LoadBalancersWrite)?;
    let draft = draft_of(Value::Object(body))?;
    let id = LoadBalancerId::from_bytes(st.fresh_id());
    let changes = super::commit(&st, move |c, now| {
        Ok(c.create_load_balancer(zone_id, id, draft, now)?)
    })
    .await?;
    render_stored(&st, changes)
}

async fn update(
    st: Arc<Controller>,
    p: Caller,
    z: String,
    id: String,
    body: Map<String, Value>,
    merge: bool,
) -> Reply {
    let (zone_id, _) = zone(&p.0, &st.catalog(), &z, Permission::LoadBalancersWrite)?;
    let id: LoadBalancerId = super::object_id(&id)?;
    let changes = super::commit(&st, move |c, now| {
        let old = c
            .load_balancer(zone_id, id)
            .ok_or_else(ApiError::not_found)?;
        let zone = c.zone(zone_id).ok_or_else(ApiError::not_found)?;
        let doc = if merge {
            parse::merge(load_balancer::render(old, zone), body)
        } else {
            Value::Object(body)
        };
        Ok(c.replace_load_balancer(zone_id, id, draft_of(doc)?, now)?)
    })
    .await?;
    render_stored(&st, changes)
}

pub async fn replace(
    State(st): State<Arc<Controller>>,
    caller: Caller,
    Path((z, id)): Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> Reply {
    update(st, caller, z, id, body, false).await
}

pub async fn patch(
    State(st): State<Arc<Controller>>,
    caller: Caller,
    Path((z, id)): Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> Reply {
    update(st, caller, z, id, body, true).await
}

pub async fn delete(
    State(st): State<Arc<Controller>>,
    Caller(p): Caller,
    Path((z, id)): Path<(String, String)>,
) -> Reply {
    let (zone_id, _) = zone(&p, &st.catalog(), &z, Permission::LoadBalancersWrite)?;
    let id: LoadBalancerId = super::object_id(&id)?;
    super::commit(&st, move |c, _| Ok(c.delete_load_balancer(zone_id, id)?)).await?;
    deleted(id)
}
