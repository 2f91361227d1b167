//! `/zones`.

use std::sync::Arc;

use axum::extract::State;
use serde_json::Value;
use vantage_core::auth::{Permission, Target};
use vantage_core::catalog::Change;
use vantage_core::zone::Overlap;
use vantage_core::{AccountId, ZoneId};
use vantage_wire::{parse, zone as wire_zone, ApiError};

use super::{deleted, ok, ok_list, zone, Reply};
use crate::auth::require;
use crate::extract::{Caller, JsonObject, Params, PathParams as Path};
use vantage_control::Controller;

/// Zones are paged like Cloudflare's (20 a page by default, at most 50), which the SDKs'
/// auto-pagination expects.
pub async fn list(State(st): State<Arc<Controller>>, Caller(p): Caller, q: Params) -> Reply {
    let page = q.page(Some(20), 50)?;
    let name = q.get("name").map(str::to_ascii_lowercase);
    let account_filter = q.get("account.id").filter(|s| !s.is_empty());
    let c = st.catalog();
    let items = c
        .zones()
        .filter(|z| {
            p.allows(
                Permission::ZoneRead,
                Target::Zone {
                    zone: z.id,
                    account: z.account,
                },
            )
        })
        .filter(|z| name.as_deref().is_none_or(|n| z.name == n))
        .filter(|z| account_filter.is_none_or(|a| z.account.to_string() == a))
        .collect::<Vec<_>>();
    ok_list(items, page, |z| wire_zone::render(z, c.account(z.account)))
}

pub async fn get(
    State(st): State<Arc<Controller>>,
    Caller(p): Caller,
    Path(z): Path<String>,
) -> Reply {
    let c = st.catalog();
    let (id, account) = zone(&p, &c, &z, Permission::ZoneRead)?;
    let z = c.zone(id).ok_or_else(ApiError::not_found)?;
    ok(wire_zone::render(z, c.account(account)))
}

pub async fn create(
    State(st): State<Arc<Controller>>,
    Caller(p): Caller,
    JsonObject(body): JsonObject,
) -> Reply {
    let input: wire_zone::ZoneIn = parse::typed(Value::Object(body))?;
    let account: AccountId = match input.account.and_then(|a| a.id) {
        Some(raw) => raw.parse().map_err(|_| {
            ApiError::field(
                "/account/id",
                format!("{raw:?} is not an account identifier"),
            )
        })?,
        None => {
            // With exactly one account in reach, the account may be left out.
            let c = st.catalog();
            let mut mine = c
                .accounts()
                .filter(|a| p.allows(Permission::ZoneWrite, Target::Account(a.id)));
            match (mine.next(), mine.next()) {
                (Some(a), None) => a.id,
                _ => return Err(ApiError::field("/account/id", "account.id is required").into()),
            }
        }
    };
    require(&p, Permission::ZoneWrite, Target::Account(account))?;
    let name = input.name.unwrap_or_default();
    let id = ZoneId::from_bytes(st.fresh_id());
    let changes = super::commit(&st, move |c, now| {
        Ok(c.create_zone(account, id, &name, Overlap::Refuse, now)?)
    })
    .await?;
    let z = super::stored(changes, |c| match c {
        Change::PutZone(z) => Some(z),
        _ => None,
    })?;
    let c = st.catalog();
    ok(wire_zone::render(&z, c.account(z.account)))
}

pub async fn delete(
    State(st): State<Arc<Controller>>,
    Caller(p): Caller,
    Path(z): Path<String>,
) -> Reply {
    let (id, _) = zone(&p, &st.catalog(), &z, Permission::ZoneWrite)?;
    super::commit(&st, move |c, _| Ok(c.delete_zone(id)?)).await?;
    deleted(id)
}
