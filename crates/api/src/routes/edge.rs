//! The edge protocol (`/edge/v1`), outside the Cloudflare surface: edges long-poll for the
//! routing snapshot, and the controller lists the edges it has heard from. Only edge tokens
//! pass `/edge/v1`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use serde_json::{json, Value};
use vantage_core::auth::Permission;
use vantage_core::region::RegionCode;
use vantage_wire::{time, ApiError, Page};

use super::{account, ok_list, Reply};
use crate::extract::{Caller, Params, PathParams as Path};
use vantage_control::edge_protocol::{accepts, LONG_POLL, VERSION_HEADER};
use vantage_control::Controller;

/// `GET /edge/v1/snapshot?after=V&region=R`: the routing snapshot as soon as one newer than
/// `V` is published (at once if it already is), else `304 Not Modified` after the long poll.
pub async fn snapshot(State(st): State<Arc<Controller>>, headers: HeaderMap, q: Params) -> Reply {
    accepts(super::agent::protocol_version(&headers, VERSION_HEADER)?)
        .map_err(ApiError::malformed)?;
    let (token, name) = crate::auth::authenticate_edge(&headers, &st.catalog(), st.now())?;
    let after: u64 = match q.get("after") {
        None => 0,
        Some(v) => v.parse().map_err(|_| {
            ApiError::field(
                "/after",
                "after must be a snapshot version (a whole number)",
            )
        })?,
    };
    let region: Option<RegionCode> = q
        .get("region")
        .map(|r| {
            r.parse()
                .map_err(|_| ApiError::field("/region", format!("{r:?} is not a region code")))
        })
        .transpose()?;
    let mut changes = st.snapshot_changes();
    st.edge_contact(token, &name, region, after, true);
    let newer = async {
        while *changes.borrow_and_update() <= after {
            if changes.changed().await.is_err() {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(LONG_POLL, newer).await;
    st.edge_contact(token, &name, region, after, false);
    let st2 = Arc::clone(&st);
    let (version, bytes) = tokio::task::spawn_blocking(move || st2.snapshot_answer(after))
        .await
        .map_err(|_| ApiError::failed("The routing snapshot"))?;
    if version <= after {
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    }
    let mut resp = (StatusCode::OK, bytes.to_vec()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

/// `GET .../load_balancers/edges` (a Vantage extension, beside `probe_locations`): every
/// edge heard from in the last day, with its region, the snapshot version it holds and its
/// last contact.
pub async fn list(
    State(st): State<Arc<Controller>>,
    Caller(p): Caller,
    Path(a): Path<String>,
) -> Reply {
    account(&p, &a, Permission::LoadBalancersRead)?;
    let items: Vec<Value> = st
        .edges()
        .into_iter()
        .map(|e| {
            json!({
                "name": e.name,
                "region": e.region.map(|r| r.code()),
                "snapshot_version": e.version,
                "current": e.current,
                "last_seen": time::format(e.last_contact),
                "state": if e.connected { "connected" } else { "disconnected" },
            })
        })
        .collect();
    ok_list(items, Page::ALL, |v| v)
}
