//! Every failure leaves as Cloudflare's error envelope.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use vantage_store::StoreError;
use vantage_wire::ApiError;

/// An [`ApiError`] on its way out as an HTTP response.
#[derive(Debug)]
pub struct Failure(pub ApiError);

impl<E: Into<ApiError>> From<E> for Failure {
    fn from(e: E) -> Self {
        Self(e.into())
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::BAD_REQUEST);
        let mut resp = (status, Json(self.0.body())).into_response();
        if let Some(secs) = self.0.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

/// What every handler returns.
pub type Reply = Result<Response, Failure>;

/// A storage failure as the envelope: a uniqueness rule another writer broke is 400 (retry
/// it); anything else is 503 and nothing was changed. The one 5xx the API answers with.
pub(crate) fn store_failure(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict(detail) => ApiError::conflict(&detail),
        other => {
            tracing::error!(error = %other, "store failure");
            ApiError::not_stored()
        }
    }
}
