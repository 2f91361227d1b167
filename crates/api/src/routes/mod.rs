//! The route table and the helpers every handler shares.

use std::str::FromStr;
use std::sync::Arc;

use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;
use vantage_control::{CommitError, Controller};
use vantage_core::auth::{Permission, Principal, Target};
use vantage_core::catalog::{Catalog, Change};
use vantage_core::{AccountId, ZoneId};
use vantage_wire::{envelope, ApiError, Page};

use crate::auth::require;
use crate::failure::Failure;
pub(crate) use crate::failure::Reply;

mod account_object;
mod accounts;
pub mod agent;
mod dashboard;
mod edge;
mod health;
mod load_balancers;
mod monitor_groups;
mod monitors;
mod notifications;
mod pools;
mod regions;
mod zones;

use account_object as object;
use monitor_groups::MonitorGroups;
use monitors::Monitors;
use notifications::{Policies, Webhooks};
use pools::Pools;

/// Every route of the control plane.
pub fn router(state: Arc<Controller>) -> Router {
    const LB: &str = "/client/v4/accounts/{account_id}/load_balancers";
    const ALERTING: &str = "/client/v4/accounts/{account_id}/alerting/v3";
    let r = Router::new()
        .route("/metrics", get(metrics))
        .route(
            "/client/v4/openapi.json",
            get(|| async { Json(crate::openapi::document()) }),
        )
        .route("/", get(dashboard::page))
        .route("/dashboard/v1/state", get(dashboard::state))
        .route("/dashboard/v1/stream", get(dashboard::stream))
        .route("/dashboard/v1/rtt/{pool_id}", get(dashboard::rtt))
        .route(
            &format!("{ALERTING}/destinations/webhooks"),
            get(notifications::list_webhooks).post(object::create::<Webhooks>),
        )
        .route(
            &format!("{ALERTING}/destinations/webhooks/{{id}}"),
            get(object::get::<Webhooks>)
                .put(object::replace::<Webhooks>)
                .delete(object::delete::<Webhooks>),
        )
        .route(
            &format!("{ALERTING}/policies"),
            get(notifications::list_policies).post(object::create::<Policies>),
        )
        .route(
            &format!("{ALERTING}/policies/{{id}}"),
            get(object::get::<Policies>)
                .put(object::replace::<Policies>)
                .delete(object::delete::<Policies>),
        )
        .route(&format!("{ALERTING}/history"), get(notifications::history))
        .route("/client/v4/accounts", get(accounts::list))
        .route("/client/v4/accounts/{account_id}", get(accounts::get))
        .route("/client/v4/user/tokens/verify", get(accounts::verify_token))
        .route("/client/v4/zones", get(zones::list).post(zones::create))
        .route(
            "/client/v4/zones/{zone_id}",
            get(zones::get).delete(zones::delete),
        )
        .route(
            "/client/v4/zones/{zone_id}/load_balancers",
            get(load_balancers::list).post(load_balancers::create),
        )
        .route(
            "/client/v4/zones/{zone_id}/load_balancers/{lb_id}",
            get(load_balancers::get)
                .put(load_balancers::replace)
                .patch(load_balancers::patch)
                .delete(load_balancers::delete),
        )
        .route(
            LB,
            get(load_balancers::account_list).post(load_balancers::account_create),
        )
        .route(
            &format!("{LB}/{{lb_id}}"),
            get(load_balancers::account_get)
                .put(load_balancers::account_replace)
                .patch(load_balancers::account_patch)
                .delete(load_balancers::account_delete),
        )
        .route(
            &format!("{LB}/monitors"),
            get(monitors::list).post(object::create::<Monitors>),
        )
        .route(
            &format!("{LB}/monitors/{{monitor_id}}"),
            get(object::get::<Monitors>)
                .put(object::replace::<Monitors>)
                .patch(object::patch::<Monitors>)
                .delete(object::delete::<Monitors>),
        )
        .route(
            &format!("{LB}/monitors/{{monitor_id}}/references"),
            get(object::references::<Monitors>),
        )
        .route(
            &format!("{LB}/monitors/{{monitor_id}}/preview"),
            axum::routing::post(health::preview_monitor),
        )
        .route(
            &format!("{LB}/monitor_groups"),
            get(monitor_groups::list).post(object::create::<MonitorGroups>),
        )
        .route(
            &format!("{LB}/monitor_groups/{{monitor_group_id}}"),
            get(object::get::<MonitorGroups>)
                .put(object::replace::<MonitorGroups>)
                .patch(object::patch::<MonitorGroups>)
                .delete(object::delete::<MonitorGroups>),
        )
        .route(
            &format!("{LB}/monitor_groups/{{monitor_group_id}}/references"),
            get(object::references::<MonitorGroups>),
        )
        .route(
            &format!("{LB}/pools"),
            get(pools::list)
                .post(object::create::<Pools>)
                .patch(pools::bulk_patch),
        )
        .route(
            &format!("{LB}/pools/{{pool_id}}"),
            get(object::get::<Pools>)
                .put(object::replace::<Pools>)
                .patch(object::patch::<Pools>)
                .delete(object::delete::<Pools>),
        )
        .route(
            &format!("{LB}/pools/{{pool_id}}/references"),
            get(object::references::<Pools>),
        )
        .route(
            &format!("{LB}/pools/{{pool_id}}/health"),
            get(health::pool_health),
        )
        .route(
            &format!("{LB}/pools/{{pool_id}}/preview"),
            axum::routing::post(health::preview_pool),
        )
        .route(
            &format!("{LB}/preview/{{preview_id}}"),
            get(health::preview_result),
        )
        .route(&format!("{LB}/regions"), get(regions::list))
        .route(&format!("{LB}/regions/{{region_id}}"), get(regions::get))
        .route(&format!("{LB}/search"), get(monitors::search))
        .route(
            &format!("{LB}/probe_locations"),
            get(health::probe_locations),
        )
        .route(
            "/client/v4/user/load_balancing_analytics/events",
            get(health::events),
        )
        .route(&format!("{LB}/edges"), get(edge::list))
        .route(
            vantage_control::edge_protocol::SNAPSHOT_PATH,
            get(edge::snapshot),
        )
        .route("/agent/v1/assignment", get(agent::assignment))
        .route("/agent/v1/results", axum::routing::post(agent::results))
        .route(
            "/agent/v1/preview_checks",
            get(agent::preview_checks).post(agent::preview_results),
        )
        .fallback(|| async { Failure(ApiError::no_route()) })
        .method_not_allowed_fallback(|| async { Failure(ApiError::method_not_allowed()) })
        .layer(axum::middleware::map_response(security_headers))
        .layer(axum::Extension(Arc::new(
            crate::rendered::Rendered::default(),
        )));
    r.with_state(state)
}

/// Every answer, the dashboard's included: no content sniffing (an error message echoing
/// input is never run as a script), never framed by another site (no clickjacking of the
/// signed-in dashboard), and no URL leaked as a referrer.
async fn security_headers(mut response: axum::response::Response) -> axum::response::Response {
    use axum::http::header::{
        HeaderValue, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
    };
    let h = response.headers_mut();
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.entry(axum::http::header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static("frame-ancestors 'none'"));
    response
}

/// Runs `command` through the controller's writer (again, when another replica committed
/// first); its refusal or a storage failure comes back as the envelope (see
/// `failure::store_failure`).
pub(crate) async fn commit<F>(st: &Controller, command: F) -> Result<Vec<Change>, ApiError>
where
    F: FnMut(&Catalog, vantage_core::Timestamp) -> Result<Vec<Change>, ApiError> + Send + 'static,
{
    st.commit(command).await.map_err(|e| match e {
        CommitError::Command(e) => e,
        CommitError::Store(e) => crate::failure::store_failure(e),
    })
}

pub(crate) fn ok(result: Value) -> Reply {
    Ok(Json(envelope::success(result)).into_response())
}

/// A page of `items`, rendering only what the page shows.
pub(crate) fn ok_list<T>(
    items: impl IntoIterator<Item = T>,
    page: Page,
    render: impl Fn(T) -> Value,
) -> Reply {
    let (items, info) = page.apply(items.into_iter().collect());
    let rendered = items.into_iter().map(render).collect();
    Ok(Json(envelope::success_list(rendered, info)).into_response())
}

pub(crate) fn deleted(id: impl ToString) -> Reply {
    Ok(Json(envelope::deleted(id)).into_response())
}

/// An object identifier from the path; one that cannot be an identifier names nothing.
pub(crate) fn object_id<T: FromStr>(raw: &str) -> Result<T, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found())
}

/// The account in the path, once `principal` is known to hold `needed` on it. Another
/// account, or one that does not exist, is 403 alike.
pub(crate) fn account(
    principal: &Principal,
    raw: &str,
    needed: Permission,
) -> Result<AccountId, ApiError> {
    let id: AccountId = raw.parse().map_err(|_| ApiError::no_route())?;
    require(principal, needed, Target::Account(id))?;
    Ok(id)
}

/// The zone in the path and its account, once `principal` is known to hold `needed` on it.
pub(crate) fn zone(
    principal: &Principal,
    catalog: &Catalog,
    raw: &str,
    needed: Permission,
) -> Result<(ZoneId, AccountId), ApiError> {
    let id: ZoneId = object_id(raw)?;
    let z = catalog.zone(id).ok_or_else(ApiError::not_found)?;
    require(
        principal,
        needed,
        Target::Zone {
            zone: id,
            account: z.account,
        },
    )?;
    Ok((id, z.account))
}

/// The object a command stored, picked out of its changes.
pub(crate) fn stored<T>(
    changes: Vec<Change>,
    pick: impl Fn(Change) -> Option<T>,
) -> Result<T, Failure> {
    changes
        .into_iter()
        .find_map(pick)
        .ok_or_else(|| Failure(ApiError::not_found()))
}

/// The installation's metrics for anyone who reaches the API: probe locations, DNS answers,
/// verdict change counts, storage. Nothing here names a tenant's objects.
async fn metrics(
    axum::extract::State(st): axum::extract::State<Arc<Controller>>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    // The API listener is reachable by tenants: series naming their objects are served only
    // on the operator's own listener (`serve --metrics-listen`).
    match tokio::task::spawn_blocking(move || {
        st.render_metrics(vantage_metrics::Scope::Installation)
    })
    .await
    {
        Ok(text) => (
            [(
                axum::http::header::CONTENT_TYPE,
                vantage_metrics::CONTENT_TYPE,
            )],
            text,
        )
            .into_response(),
        Err(_) => Failure(ApiError::failed("Metrics")).into_response(),
    }
}
