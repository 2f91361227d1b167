//! `/accounts/{account_id}/alerting/v3/…`: webhook destinations, notification policies and
//! the delivery history, as Cloudflare's alerting API has them. Access follows the load
//! balancing permissions (Monitors and Pools read/write), since these alerts are about pools.

use std::sync::Arc;

use axum::extract::State;
use serde_json::Value;
use vantage_core::auth::Permission;
use vantage_core::catalog::{Catalog, Change, Outcome, Reference};
use vantage_core::notification::{PolicyDraft, PolicySpec, WebhookDraft, WebhookSpec};
use vantage_core::{AccountId, PolicyId, Timestamp, WebhookId};
use vantage_wire::notification as wire;
use vantage_wire::{parse, ApiError, Page};

use super::account_object::AccountObject;
use super::{account, ok_list, Reply};
use crate::extract::{Caller, Params, PathParams as Path};
use vantage_control::Controller;

pub struct Webhooks;

impl AccountObject for Webhooks {
    const KIND: &'static str = "webhook";

    type Id = WebhookId;
    type Spec = WebhookSpec;

    fn parse(st: &Controller, doc: Value) -> Result<WebhookSpec, ApiError> {
        let draft: WebhookDraft = parse::typed::<wire::WebhookIn>(doc)?.into();
        let spec = draft.validate()?;
        if let Some(why) = st.forbidden_webhook(&spec.url) {
            return Err(ApiError::field(
                "/url",
                format!(
                    "url points inside this installation ({why}); an operator can allow that \
                     with `vantage serve --allow-internal-webhooks`"
                ),
            ));
        }
        Ok(spec)
    }

    fn id_from(bytes: [u8; 16]) -> WebhookId {
        WebhookId::from_bytes(bytes)
    }

    fn create(c: &Catalog, a: AccountId, id: WebhookId, s: WebhookSpec, now: Timestamp) -> Outcome {
        c.create_webhook(a, id, s, now)
    }

    fn current(c: &Catalog, a: AccountId, id: WebhookId) -> Option<Value> {
        c.webhook(a, id).map(wire::render_webhook)
    }

    fn render(_: &Controller, c: &Catalog, a: AccountId, id: WebhookId) -> Option<Value> {
        Self::current(c, a, id)
    }

    fn rendered(_: &Controller, change: Change) -> Option<Value> {
        match change {
            Change::PutWebhook(w) => Some(wire::render_webhook(&w)),
            _ => None,
        }
    }

    fn replace(
        c: &Catalog,
        a: AccountId,
        id: WebhookId,
        s: WebhookSpec,
        now: Timestamp,
    ) -> Outcome {
        c.replace_webhook(a, id, s, now)
    }

    fn delete(c: &Catalog, a: AccountId, id: WebhookId) -> Outcome {
        c.delete_webhook(a, id)
    }

    fn references(c: &Catalog, a: AccountId, id: WebhookId) -> Option<Vec<Reference>> {
        c.webhook(a, id).map(|w| c.webhook_references(w))
    }
}

pub struct Policies;

impl AccountObject for Policies {
    const KIND: &'static str = "policy";

    type Id = PolicyId;
    type Spec = PolicySpec;

    fn parse(_: &Controller, doc: Value) -> Result<PolicySpec, ApiError> {
        let draft: PolicyDraft = parse::typed::<wire::PolicyIn>(doc)?.into();
        Ok(draft.validate()?)
    }

    fn id_from(bytes: [u8; 16]) -> PolicyId {
        PolicyId::from_bytes(bytes)
    }

    fn create(c: &Catalog, a: AccountId, id: PolicyId, s: PolicySpec, now: Timestamp) -> Outcome {
        c.create_policy(a, id, s, now)
    }

    fn current(c: &Catalog, a: AccountId, id: PolicyId) -> Option<Value> {
        c.policy(a, id).map(wire::render_policy)
    }

    fn render(_: &Controller, c: &Catalog, a: AccountId, id: PolicyId) -> Option<Value> {
        Self::current(c, a, id)
    }

    fn rendered(_: &Controller, change: Change) -> Option<Value> {
        match change {
            Change::PutPolicy(p) => Some(wire::render_policy(&p)),
            _ => None,
        }
    }

    fn replace(c: &Catalog, a: AccountId, id: PolicyId, s: PolicySpec, now: Timestamp) -> Outcome {
        c.replace_policy(a, id, s, now)
    }

    fn delete(c: &Catalog, a: AccountId, id: PolicyId) -> Outcome {
        c.delete_policy(a, id)
    }

    fn references(c: &Catalog, a: AccountId, id: PolicyId) -> Option<Vec<Reference>> {
        c.policy(a, id).map(|_| Vec::new())
    }
}

pub async fn list_webhooks(
    State(st): State<Arc<Controller>>,
    Caller(p): Caller,
    Path(a): Path<String>,
    q: Params,
) -> Reply {
    let account = account(&p, &a, Permission::MonitorsPoolsRead)?;
    let page = q.page(None, Page::MAX_PER_PAGE)?;
    let c = st.catalog();
    let all: Vec<_> = c.webhooks_of(account).collect();
    ok_list(all, page, wire::render_webhook)
}

pub async fn list_policies(
    State(st): State<Arc<Controller>>,
    Caller(p): Caller,
    Path(a): Path<String>,
    q: Params,
) -> Reply {
    let account = account(&p, &a, Permission::MonitorsPoolsRead)?;
    let page = q.page(None, Page::MAX_PER_PAGE)?;
    let c = st.catalog();
    let all: Vec<_> = c.policies_of(account).collect();
    ok_list(all, page, wire::render_policy)
}

/// The delivery log, newest first: paged as Cloudflare pages it (`per_page` 25 by default, at
/// most 1,000; a page past the end is empty), filtered to alerts newer than `since` and older
/// than `before` (RFC 3339). The newest 100,000 of the account are searched (the retention
/// keeps no more by default).
pub async fn history(
    State(st): State<Arc<Controller>>,
    Caller(p): Caller,
    Path(a): Path<String>,
    q: Params,
) -> Reply {
    let account = account(&p, &a, Permission::MonitorsPoolsRead)?;
    let page = q.page(Some(25), Page::MAX_PER_PAGE)?;
    let instant = |key: &str| -> Result<Option<vantage_core::Timestamp>, ApiError> {
        match q.get(key) {
            None | Some("") => Ok(None),
            Some(raw) => vantage_wire::time::parse(raw).map(Some).ok_or_else(|| {
                ApiError::field(
                    &format!("/{key}"),
                    format!("{key} must be an RFC 3339 time"),
                )
            }),
        }
    };
    let (since, before) = (instant("since")?, instant("before")?);
    let deliveries = tokio::task::spawn_blocking(move || st.deliveries(account, 100_000))
        .await
        .map_err(|_| ApiError::storage_unavailable("The notification history"))?
        .map_err(|_| ApiError::storage_unavailable("The notification history"))?;
    let matching: Vec<_> = deliveries
        .iter()
        .filter(|d| since.is_none_or(|s| d.item.at > s))
        .filter(|d| before.is_none_or(|b| d.item.at < b))
        .collect();
    ok_list(matching, page, wire::render_delivery)
}
