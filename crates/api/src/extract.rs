//! Request extractors whose every rejection is a Cloudflare error envelope.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::header::CONTENT_LENGTH;
use axum::http::request::Parts;
use http_body_util::BodyExt;
use serde_json::{Map, Value};
use vantage_core::auth::Principal;
use vantage_wire::{parse, ApiError};

use crate::failure::Failure;
use crate::BODY_LIMIT;
use vantage_control::Controller;

/// A request body that must be one JSON object, at most [`BODY_LIMIT`] bytes.
#[derive(Debug)]
pub struct JsonObject(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = Failure;

    async fn from_request(req: Request<Body>, state: &S) -> Result<Self, Failure> {
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        Ok(Self(parse::object(&bytes)?))
    }
}

/// A request body of at most [`BODY_LIMIT`] bytes, not parsed yet: for a handler that may
/// hand it on as it came (a follower forwarding results) or parse it straight into its type
/// ([`parse::typed_body`]).
#[derive(Debug)]
pub struct RawBody(pub Vec<u8>);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = Failure;

    async fn from_request(req: Request<Body>, _: &S) -> Result<Self, Failure> {
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > DRAIN_LIMIT as u64) {
            return Err(ApiError::too_large(BODY_LIMIT).into());
        }
        Ok(Self(read_limited(req.into_body()).await?))
    }
}

/// How much of an oversize body is read and discarded so the client, still sending, can read
/// the 413 instead of a broken connection. Beyond this the connection is simply closed.
const DRAIN_LIMIT: usize = 8 * BODY_LIMIT;

async fn read_limited(mut body: Body) -> Result<Vec<u8>, ApiError> {
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| ApiError::malformed("The request body could not be read"))?;
        let Some(data) = frame.data_ref() else {
            continue;
        };
        seen = seen.saturating_add(data.len());
        if seen <= BODY_LIMIT {
            buf.extend_from_slice(data);
        } else if seen > DRAIN_LIMIT {
            break;
        }
    }
    if seen > BODY_LIMIT {
        return Err(ApiError::too_large(BODY_LIMIT));
    }
    Ok(buf)
}

/// Query parameters as a map; a malformed query string is a 400/1001.
#[derive(Debug, Default)]
pub struct Params(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Failure> {
        match Query::<HashMap<String, String>>::from_request_parts(parts, state).await {
            Ok(Query(map)) => Ok(Self(map)),
            Err(_) => Err(ApiError::malformed("The query string is malformed").into()),
        }
    }
}

impl Params {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// `page`/`per_page`, validated; `default_per_page` of `None` lists everything.
    pub fn page(
        &self,
        default_per_page: Option<usize>,
        max: usize,
    ) -> Result<vantage_wire::Page, ApiError> {
        let number = |key: &str| -> Result<Option<usize>, ApiError> {
            match self.get(key) {
                None | Some("") => Ok(None),
                Some(v) => v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .map(Some)
                    .ok_or_else(|| {
                        ApiError::field(
                            &format!("/{key}"),
                            format!("{key} must be a positive integer"),
                        )
                    }),
            }
        };
        let page = number("page")?.unwrap_or(1);
        let per_page = match (number("per_page")?, default_per_page) {
            (Some(n), _) if n > max => {
                return Err(ApiError::field(
                    "/per_page",
                    format!("per_page is not in range [1, {max}]"),
                ))
            }
            (Some(n), _) => n,
            (None, Some(d)) => d,
            (None, None) => usize::MAX,
        };
        Ok(vantage_wire::Page { page, per_page })
    }
}

/// Path parameters; a path that cannot be decoded (say, `%FF` where text belongs) routes
/// nowhere, with the envelope rather than axum's plain-text rejection.
#[derive(Debug)]
pub struct PathParams<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> FromRequestParts<S> for PathParams<T> {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Failure> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Self(v)),
            Err(_) => Err(ApiError::no_route().into()),
        }
    }
}

/// The authenticated caller.
#[derive(Debug)]
pub struct Caller(pub Principal);

impl FromRequestParts<Arc<Controller>> for Caller {
    type Rejection = Failure;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<Controller>,
    ) -> Result<Self, Failure> {
        let catalog = state.catalog();
        crate::auth::authenticate(&parts.headers, &catalog, state.now())
            .map(Caller)
            .map_err(Failure)
    }
}
