//! The probe-agent protocol (`/agent/v1`), outside the Cloudflare surface. Agents fetch
//! their assignment by long-polling and report facts in batches; only agent tokens pass.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use serde_json::{json, Value};
use vantage_core::auth::AgentBinding;
use vantage_core::choice::Choice;
use vantage_core::health::Location;
use vantage_core::region::RegionCode;
use vantage_wire::{parse, ApiError};

use super::{ok, Reply};
use crate::extract::{JsonObject, Params, RawBody};
use vantage_control::agent_protocol::{
    accepts, PreviewChecks, PreviewReport, Report, VERSION_HEADER,
};
use vantage_control::Controller;

/// How long an assignment request waits for a change before answering unchanged.
const LONG_POLL: Duration = Duration::from_secs(25);

/// The protocol version a request states in `header` (1 when it states none: peers from
/// before the header).
pub(crate) fn protocol_version(headers: &HeaderMap, header: &str) -> Result<u32, ApiError> {
    match headers.get(header) {
        None => Ok(1),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u32>().ok())
            .ok_or_else(|| ApiError::malformed(format!("{header} must be a number"))),
    }
}

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

/// The location an agent token speaks for, once the request proves it may: the token is an
/// active agent token, the location it names (if any) is the one the token is bound to, and
/// it is not the built-in agent's.
fn authorize(
    st: &Controller,
    headers: &HeaderMap,
    region: Option<&str>,
    name: Option<&str>,
) -> Result<(Location, AgentBinding), ApiError> {
    accepts(protocol_version(headers, VERSION_HEADER)?).map_err(ApiError::malformed)?;
    let binding = crate::auth::authenticate_agent(headers, &st.catalog(), st.now())?;
    if let (Some(region), Some(name)) = (region, name) {
        let claimed = location(region, name)?;
        if claimed != binding.location {
            return Err(ApiError::agent_location(format!(
                "this agent token is bound to {}; it cannot report as {claimed}",
                binding.location
            )));
        }
    }
    if st.installation().builtin_location.as_ref() == Some(&binding.location) {
        return Err(ApiError::agent_location(format!(
            "{} is this controller's built-in probe location; bind the token to another name",
            binding.location
        )));
    }
    let loc = binding.location.clone();
    st.heartbeat(&loc)
        .map_err(|why| ApiError::field("/location", why))?;
    Ok((loc, binding))
}

/// `GET /agent/v1/assignment?region=&location=&version=&epoch=`: answers at once if the
/// assignment moved past `version` (of `epoch`, when named), else when it does, else after
/// [`LONG_POLL`]. With both named (protocol version 4), the answer is a delta on them when
/// the controller can make one. `region` and `location` may be left out: the token names them.
pub async fn assignment(State(st): State<Arc<Controller>>, headers: HeaderMap, q: Params) -> Reply {
    let (loc, binding) = authorize(&st, &headers, q.get("region"), q.get("location"))?;
    let number = |name: &str| {
        q.get(name)
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    ApiError::field(
                        &format!("/{name}"),
                        format!("{name} {v:?} is not a whole number"),
                    )
                })
            })
            .transpose()
    };
    let (version, epoch) = (number("version")?, number("epoch")?);
    let unchanged = |(e, v): (u64, u64)| version == Some(v) && epoch.is_none_or(|k| k == e);
    let mut changes = st.assignment_changes();
    changes.borrow_and_update();
    if unchanged(st.assignment_at()) {
        let _ = tokio::time::timeout(LONG_POLL, async {
            // Woken by every re-plan; only one that moved the assignment answers.
            while unchanged(st.assignment_at()) && changes.changed().await.is_ok() {}
        })
        .await;
    }
    let message = st.assignment_message(loc.region, binding.accounts(), epoch.zip(version));
    let body = serde_json::to_value(message).map_err(|_| ApiError::failed("The assignment"))?;
    ok(body)
}

/// `POST /agent/v1/results`: a batch of check facts from one location. Each result is
/// admitted or refused by the core; refusals are answered by reason and counted.
pub async fn results(
    State(st): State<Arc<Controller>>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Reply {
    if !st.judges() {
        // The agent's credentials are checked here and again by the judge, which takes it.
        authorize(&st, &headers, None, None)?;
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let version = headers.get(VERSION_HEADER).and_then(|v| v.to_str().ok());
        let (status, answer) = st
            .forward_results(body, auth, version)
            .await
            .map_err(|why| ApiError::judge_unreachable(&why))?;
        return Ok((
            axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::BAD_GATEWAY),
            axum::Json(answer),
        )
            .into_response());
    }
    let report: Report = parse::typed_body(&body)?;
    let (loc, binding) = authorize(
        &st,
        &headers,
        Some(report.region.as_str()),
        Some(report.location.as_str()),
    )?;
    let st2 = Arc::clone(&st);
    let (accepted, refused) = tokio::task::spawn_blocking(move || {
        let mut refused: BTreeMap<&'static str, usize> = BTreeMap::new();
        let mut accepted = 0usize;
        for r in report.results {
            match st2.record(
                &loc,
                binding.accounts(),
                &r.key.into(),
                &r.facts.into(),
                r.at,
            ) {
                Ok(()) => accepted += 1,
                Err(why) => *refused.entry(why.as_str()).or_default() += 1,
            }
        }
        (accepted, refused)
    })
    .await
    .map_err(|_| ApiError::failed("Result ingestion"))?;
    ok(json!({"accepted": accepted, "refused": refused}))
}

/// `GET /agent/v1/preview_checks`: the checks previews ask of this location, at once if any
/// wait, else as soon as one is queued, else (none) after [`LONG_POLL`]. Asking is also what
/// makes the location one previews run from.
pub async fn preview_checks(
    State(st): State<Arc<Controller>>,
    headers: HeaderMap,
    q: Params,
) -> Reply {
    let (loc, binding) = authorize(&st, &headers, q.get("region"), q.get("location"))?;
    let remote = st.remote_previews();
    let mut queued = remote.poll(&loc, binding.accounts(), st.now());
    queued.borrow_and_update();
    let mut checks = remote.take(&loc, binding.accounts());
    if checks.is_empty() {
        let _ = tokio::time::timeout(LONG_POLL, async {
            while queued.changed().await.is_ok() {
                checks = remote.take(&loc, binding.accounts());
                if !checks.is_empty() {
                    return;
                }
            }
        })
        .await;
    }
    let body = serde_json::to_value(PreviewChecks { checks })
        .map_err(|_| ApiError::failed("The preview checks"))?;
    ok(body)
}

/// `POST /agent/v1/preview_checks`: facts of the checks this location was handed. An id it
/// was not handed (another location's, or one given up on) is counted as refused.
pub async fn preview_results(
    State(st): State<Arc<Controller>>,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> Reply {
    let report: PreviewReport = parse::typed(Value::Object(body))?;
    let (loc, _) = authorize(&st, &headers, None, None)?;
    let mut accepted = 0usize;
    let mut refused = 0usize;
    for r in report.results {
        if st.remote_previews().answer(&loc, r.id, r.facts.into()) {
            accepted += 1;
        } else {
            refused += 1;
        }
    }
    ok(json!({"accepted": accepted, "refused": refused}))
}
