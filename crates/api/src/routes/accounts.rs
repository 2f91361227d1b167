//! `/accounts` and `/user/tokens/verify`.

use std::sync::Arc;

use axum::extract::State;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;
use vantage_core::auth::PrincipalKind;
use vantage_core::AccountId;
use vantage_wire::{account as wire_account, envelope, ApiError};

use super::{ok, ok_list, Reply};
use crate::extract::{Caller, Params, PathParams as Path};
use vantage_control::Controller;

/// The accounts the credential can see, so a client holding only a token can find its
/// account id.
pub async fn list(State(st): State<Arc<Controller>>, Caller(p): Caller, q: Params) -> Reply {
    let page = q.page(Some(20), 50)?;
    let c = st.catalog();
    let items = c
        .accounts()
        .filter(|a| {
            let zones: Vec<_> = c.zones_of(a.id).map(|z| z.id).collect();
            p.sees_account(a.id, &zones)
        })
        .collect::<Vec<_>>();
    ok_list(items, page, wire_account::render)
}

pub async fn get(
    State(st): State<Arc<Controller>>,
    Caller(p): Caller,
    Path(a): Path<String>,
) -> Reply {
    let id: AccountId = a.parse().map_err(|_| ApiError::no_route())?;
    let c = st.catalog();
    let zones: Vec<_> = c.zones_of(id).map(|z| z.id).collect();
    match c.account(id) {
        Some(acct) if p.sees_account(id, &zones) => ok(wire_account::render(acct)),
        _ => Err(ApiError::forbidden().into()),
    }
}

pub async fn verify_token(Caller(p): Caller) -> Reply {
    match p.kind {
        PrincipalKind::Token(id) => Ok(Json(envelope::success_with_message(
            json!({"id": id.to_string(), "status": "active"}),
            10000,
            "This API Token is valid and active",
        ))
        .into_response()),
        PrincipalKind::User(_) => Err(ApiError::invalid_token().into()),
    }
}
