//! `/accounts/{account_id}/load_balancers/pools`.

use std::sync::Arc;

use axum::extract::State;
use serde_json::Value;
use vantage_core::auth::Permission;
use vantage_core::catalog::{Catalog, Change, Outcome, Reference};
use vantage_core::pool::{CheckRefs, Pool, PoolDraft, PoolSpec};
use vantage_core::{AccountId, MonitorId, PoolId, Timestamp};
use vantage_wire::{fields, parse, pool, ApiError, Page};

use super::account_object::AccountObject;
use super::{account, ok_list, Reply};
use crate::extract::{Caller, JsonObject, Params, PathParams as Path};
use vantage_control::Controller;

/// Parses and validates a complete pool document; the monitor or group reference is resolved later,
/// against the catalog.
fn spec_of(doc: Value) -> Result<(PoolSpec, CheckRefs), ApiError> {
    fields::known::<pool::PoolIn>(&doc)?;
    let draft: PoolDraft = parse::typed::<pool::PoolIn>(doc)?.into();
    Ok(draft.validate()?)
}

/// Pools as account objects: the shared get/PUT/PATCH/DELETE/references handlers.
pub struct Pools;

impl AccountObject for Pools {
    const KIND: &'static str = "pool";

    type Id = PoolId;
    /// The spec and the monitor or group reference, resolved against the catalog on commit.
    type Spec = (PoolSpec, CheckRefs);

    fn parse(_: &Controller, doc: Value) -> Result<Self::Spec, ApiError> {
        spec_of(doc)
    }

    fn id_from(bytes: [u8; 16]) -> PoolId {
        PoolId::from_bytes(bytes)
    }

    fn create(
        c: &Catalog,
        account: AccountId,
        id: PoolId,
        (spec, checks): Self::Spec,
        now: Timestamp,
    ) -> Outcome {
        c.create_pool(account, id, spec, checks, now)
    }

    fn current(c: &Catalog, account: AccountId, id: PoolId) -> Option<Value> {
        c.pool(account, id).map(pool::render)
    }

    fn render(st: &Controller, c: &Catalog, account: AccountId, id: PoolId) -> Option<Value> {
        c.pool(account, id).map(|p| with_health(st, p))
    }

    fn health(st: &Controller, id: PoolId) -> Option<Arc<vantage_core::health::PoolVerdicts>> {
        st.health_view().pool(id).cloned()
    }

    fn rendered(st: &Controller, change: Change) -> Option<Value> {
        match change {
            Change::PutPool(p) => Some(with_health(st, &p)),
            _ => None,
        }
    }

    fn replace(
        c: &Catalog,
        account: AccountId,
        id: PoolId,
        (spec, checks): Self::Spec,
        now: Timestamp,
    ) -> Outcome {
        c.replace_pool(account, id, spec, checks, now)
    }

    fn delete(c: &Catalog, account: AccountId, id: PoolId) -> Outcome {
        c.delete_pool(account, id)
    }

    fn references(c: &Catalog, account: AccountId, id: PoolId) -> Option<Vec<Reference>> {
        c.pool(account, id).map(|p| c.pool_references(p))
    }
}

/// A pool with its current verdicts.
pub(crate) fn with_health(st: &Controller, p: &Pool) -> Value {
    let mut v = pool::render(p);
    let health = st.health_view();
    if let Some(h) = health.pool(p.id).filter(|h| h.monitored) {
        vantage_wire::health::decorate_pool(&mut v, h);
    }
    v
}

/// The account's pools (only those using `monitor`, if given), in ascending name
/// order as Cloudflare lists them.
fn by_name(c: &Catalog, account: AccountId, monitor: Option<MonitorId>) -> Vec<&Pool> {
    let mut pools: Vec<&Pool> = c
        .pools_of(account)
        .filter(|p| monitor.is_none() || p.spec.monitor == monitor)
        .collect();
    pools.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
    pools
}

pub async fn list(
    State(st): State<Arc<Controller>>,
    Caller(p): Caller,
    Path(a): Path<String>,
    q: Params,
) -> Reply {
    let account = account(&p, &a, Permission::MonitorsPoolsRead)?;
    let monitor: Option<MonitorId> = match q.get("monitor") {
        None | Some("") => None,
        Some(raw) => Some(raw.parse().map_err(|_| {
            ApiError::field("/monitor", format!("{raw:?} is not a monitor identifier"))
        })?),
    };
    let page = q.page(None, Page::MAX_PER_PAGE)?;
    ok_list(by_name(&st.catalog(), account, monitor), page, |p| {
        with_health(&st, p)
    })
}

/// `PATCH pools`: sets `notification_email` on every pool of the account, the only field
/// Cloudflare allows here.
pub async fn bulk_patch(
    State(st): State<Arc<Controller>>,
    Caller(p): Caller,
    Path(a): Path<String>,
    JsonObject(body): JsonObject,
) -> Reply {
    let account = account(&p, &a, Permission::MonitorsPoolsWrite)?;
    if let Some(other) = body.keys().find(|k| *k != "notification_email") {
        return Err(ApiError::field(
            &format!("/{other}"),
            format!("only notification_email can be set on all pools, not {other}"),
        )
        .into());
    }
    let email = match body.get("notification_email") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => {
            return Err(ApiError::field(
                "/notification_email",
                format!(
                    "notification_email must be a string, not {}",
                    parse::json_kind(other)
                ),
            )
            .into())
        }
    };
    super::commit(&st, move |c, now| {
        Ok(c.set_notification_email(account, &email, now)?)
    })
    .await?;
    ok_list(by_name(&st.catalog(), account, None), Page::ALL, |p| {
        with_health(&st, p)
    })
}
