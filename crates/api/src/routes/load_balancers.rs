//! `/zones/{zone_id}/load_balancers`, and the same objects at
//! `/accounts/{account_id}/load_balancers` (Cloudflare's TypeScript SDK addresses them so
//! from 7.1 on). A load balancer always belongs to a zone: created under the account, it
//! goes to the account's zone that its name falls in (the most specific one).

use std::sync::Arc;

use axum::extract::State;
use serde_json::{Map, Value};
use vantage_core::auth::Permission;
use vantage_core::catalog::Change;
use vantage_core::load_balancer::LoadBalancerDraft;
use vantage_core::{LoadBalancerId, ZoneId};
use vantage_wire::{fields, load_balancer, parse, ApiError, Page};

use super::{deleted, ok, ok_list, zone, Reply};
use crate::extract::{Caller, JsonObject, Params, PathParams as Path};
use vantage_control::Controller;

fn draft_of(doc: Value) -> Result<LoadBalancerDraft, ApiError> {
    fields::known::<load_balancer::LoadBalancerIn>(&doc)?;
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
    let (zone_id, _) = zone(&p, &st.catalog(), &z, Permission::LoadBalancersRead)?;
    render_one(&st, zone_id, super::object_id(&id)?)
}

fn render_one(st: &Controller, zone_id: ZoneId, id: LoadBalancerId) -> Reply {
    let c = st.catalog();
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
    create_in(&st, zone_id, body).await
}

async fn create_in(st: &Arc<Controller>, zone_id: ZoneId, body: Map<String, Value>) -> Reply {
    let draft = draft_of(Value::Object(body))?;
    let id = LoadBalancerId::from_bytes(st.fresh_id());
    let changes = super::commit(st, move |c, now| {
        Ok(c.create_load_balancer(zone_id, id, draft.clone(), now)?)
    })
    .await?;
    render_stored(st, changes)
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
    update_in(st, zone_id, id, body, merge).await
}

async fn update_in(
    st: Arc<Controller>,
    zone_id: ZoneId,
    id: LoadBalancerId,
    body: Map<String, Value>,
    merge: bool,
) -> Reply {
    let changes = super::commit(&st, move |c, now| {
        let old = c
            .load_balancer(zone_id, id)
            .ok_or_else(ApiError::not_found)?;
        let zone = c.zone(zone_id).ok_or_else(ApiError::not_found)?;
        let doc = if merge {
            parse::merge(load_balancer::render(old, zone), body.clone())
        } else {
            Value::Object(body.clone())
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
    delete_in(&st, zone_id, super::object_id(&id)?).await
}

async fn delete_in(st: &Arc<Controller>, zone_id: ZoneId, id: LoadBalancerId) -> Reply {
    super::commit(st, move |c, _| Ok(c.delete_load_balancer(zone_id, id)?)).await?;
    deleted(id)
}

/// The zone of load balancer `id` of the account in the path, once the caller holds
/// `needed` on the account.
fn in_account(
    st: &Controller,
    p: &vantage_core::auth::Principal,
    a: &str,
    id: &str,
    needed: Permission,
) -> Result<(ZoneId, LoadBalancerId), ApiError> {
    let account = super::account(p, a, needed)?;
    let id: LoadBalancerId = super::object_id(id)?;
    let c = st.catalog();
    let lb = c
        .account_load_balancer(account, id)
        .ok_or_else(ApiError::not_found)?;
    Ok((lb.zone, id))
}

pub async fn account_list(
    State(st): State<Arc<Controller>>,
    Caller(p): Caller,
    Path(a): Path<String>,
    q: Params,
) -> Reply {
    let account = super::account(&p, &a, Permission::LoadBalancersRead)?;
    let page = q.page(None, Page::MAX_PER_PAGE)?;
    let c = st.catalog();
    let all = c
        .load_balancers_of_account(account)
        .filter_map(|lb| Some((lb, c.zone(lb.zone)?)));
    ok_list(all, page, |(lb, z)| load_balancer::render(lb, z))
}

pub async fn account_get(
    State(st): State<Arc<Controller>>,
    Caller(p): Caller,
    Path((a, id)): Path<(String, String)>,
) -> Reply {
    let (zone_id, id) = in_account(&st, &p, &a, &id, Permission::LoadBalancersRead)?;
    render_one(&st, zone_id, id)
}

/// POST under the account: the load balancer goes to the account's zone its name falls in
/// (the longest zone name it ends with); a name in none of them is refused at `/name`.
pub async fn account_create(
    State(st): State<Arc<Controller>>,
    Caller(p): Caller,
    Path(a): Path<String>,
    JsonObject(body): JsonObject,
) -> Reply {
    let account = super::account(&p, &a, Permission::LoadBalancersWrite)?;
    let name = body.get("name").and_then(Value::as_str).unwrap_or("");
    let zone_id = st.catalog().zone_for_name(account, name).map(|z| z.id);
    let Some(zone_id) = zone_id else {
        // Validation first, so a document with other problems reports all of them.
        draft_of(Value::Object(body.clone()))?;
        return Err(ApiError::field(
            "/name",
            "name must fall in one of this account's zones (a load balancer belongs to the zone its name is in)",
        )
        .into());
    };
    create_in(&st, zone_id, body).await
}

pub async fn account_replace(
    State(st): State<Arc<Controller>>,
    Caller(p): Caller,
    Path((a, id)): Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> Reply {
    let (zone_id, id) = in_account(&st, &p, &a, &id, Permission::LoadBalancersWrite)?;
    update_in(st, zone_id, id, body, false).await
}

pub async fn account_patch(
    State(st): State<Arc<Controller>>,
    Caller(p): Caller,
    Path((a, id)): Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> Reply {
    let (zone_id, id) = in_account(&st, &p, &a, &id, Permission::LoadBalancersWrite)?;
    update_in(st, zone_id, id, body, true).await
}

pub async fn account_delete(
    State(st): State<Arc<Controller>>,
    Caller(p): Caller,
    Path((a, id)): Path<(String, String)>,
) -> Reply {
    let (zone_id, id) = in_account(&st, &p, &a, &id, Permission::LoadBalancersWrite)?;
    delete_in(&st, zone_id, id).await
}
