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
        StoreError::Conflict(detail) => {
            let mut err = ApiError::malformed(format!(
                "The change conflicts with a concurrent change ({detail}); retry it"
            ));
            err.errors[0].code = 1002;
            err
        }
        other => {
            tracing::error!(error = %other, "store failure");
            let mut err =
                ApiError::malformed("The change could not be stored; nothing was changed");
            err.status = 503;
            err.errors[0].code = 1000;
            err
        }
    }
}
