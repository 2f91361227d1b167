//! The probe-agent protocol (`/agent/v1`), outside the Cloudflare surface. Agents fetch
//! their assignment by long-polling and report facts in batches; only agent tokens pass.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::{json, Value};
use vantage_core::health::Location;
use vantage_core::region::RegionCode;
use vantage_wire::{parse, ApiError};

use super::{ok, Reply};
use crate::agent_protocol::{Assignment, Report};
use crate::extract::{JsonObject, Params};
use crate::state::{now, AppState};

/// How long an assignment request waits for a change before answering unchanged.
const LONG_POLL: Duration = Duration::from_secs(25);

fn location(region: &str, name: &str) -> Result<Location, ApiError> {
    let region: RegionCode = region
        .parse()
        .map_err(|_| ApiError::field("/region", format!("{region:?} is not a region code")))?;
    if !Location::is_valid_name(name) {
        return Err(ApiError::field(
            "/location",
            "location must be 1-63 characters of letters, digits, '-', '_' and '.'",
        ));
    }
    Ok(Location {
        region,
        name: name.to_owned(),
    })
}

fn authorize(st: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    crate::auth::authenticate_agent(headers, &st.catalog(), now())
}

fn contact(st: &AppState, loc: &Location) -> Result<(), ApiError> {
    st.heartbeat(loc)
        .map_err(|why| ApiError::field("/location", why))
}

/// `GET /agent/v1/assignment?region=&location=&version=`: answers at once if the assignment
/// moved past `version`, else when it does, else after [`LONG_POLL`].
pub async fn assignment(State(st): State<Arc<AppState>>, headers: HeaderMap, q: Params) -> Reply {
    authorize(&st, &headers)?;
    let loc = location(
        q.get("region").unwrap_or(""),
        q.get("location").unwrap_or(""),
    )?;
    contact(&st, &loc)?;
    let known: Option<u64> = q.get("version").and_then(|v| v.parse().ok());
    let mut changes = st.assignment_changes();
    if known == Some(*changes.borrow_and_update()) {
        let _ = tokio::time::timeout(LONG_POLL, changes.changed()).await;
    }
    let message = Assignment::from_engine(st.assignment_version(), st.assignment(loc.region));
    let body =
        serde_json::to_value(message).map_err(|_| ApiError::unavailable("The assignment"))?;
    ok(body)
}

/// `POST /agent/v1/results`: a batch of check facts from one location.
pub async fn results(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> Reply {
    authorize(&st, &headers)?;
    let report: Report = parse::typed(Value::Object(body))?;
    let loc = location(&report.region, &report.location)?;
    contact(&st, &loc)?;
    let accepted = report.results.len();
    let st2 = Arc::clone(&st);
    tokio::task::spawn_blocking(move || {
        for r in report.results {
            st2.record(&loc, &r.key, &r.facts, r.at);
        }
    })
    .await
    .map_err(|_| ApiError::unavailable("Result ingestion"))?;
    ok(json!({"accepted": accepted}))
}
