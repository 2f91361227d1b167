//! The handlers monitors and pools share: both are account-scoped objects that are read,
//! replaced, merged, deleted and asked for their references the same way.

use std::fmt::Display;
use std::str::FromStr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::Extension;
use serde_json::{Map, Value};
use vantage_core::auth::Permission;
use vantage_core::catalog::{Catalog, Change, Outcome, Reference};
use vantage_core::health::PoolVerdicts;
use vantage_core::{AccountId, Timestamp};
use vantage_wire::{parse, reference, ApiError, Page};

use super::{account, deleted, object_id, ok, ok_list, stored, Reply};
use crate::extract::{Caller, JsonObject, PathParams as Path};
use crate::rendered::Rendered;
use vantage_control::Controller;

pub(crate) trait AccountObject: 'static {
    type Id: FromStr + Display + Copy + Send + Into<[u8; 16]> + 'static;
    /// The kind's name, for the rendered answers kept ([`crate::rendered`]).
    const KIND: &'static str;
    /// A validated complete document.
    type Spec: Clone + Send + 'static;

    /// Parses and validates a complete document; `st` carries installation policy (which
    /// webhook targets are allowed).
    fn parse(st: &Controller, doc: Value) -> Result<Self::Spec, ApiError>;
    /// The identifier made of a new id's bytes.
    fn id_from(bytes: [u8; 16]) -> Self::Id;
    fn create(
        c: &Catalog,
        account: AccountId,
        id: Self::Id,
        spec: Self::Spec,
        now: Timestamp,
    ) -> Outcome;
    /// The stored document alone: what a PATCH merges onto.
    fn current(c: &Catalog, account: AccountId, id: Self::Id) -> Option<Value>;
    /// The full response, with read-only fields such as health.
    fn render(st: &Controller, c: &Catalog, account: AccountId, id: Self::Id) -> Option<Value>;
    /// The health verdicts [`AccountObject::render`] shows, if it shows any: a kept rendering
    /// is current while they are the same.
    fn health(st: &Controller, id: Self::Id) -> Option<Arc<PoolVerdicts>> {
        let _ = (st, id);
        None
    }
    fn rendered(st: &Controller, change: Change) -> Option<Value>;
    fn replace(
        c: &Catalog,
        account: AccountId,
        id: Self::Id,
        spec: Self::Spec,
        now: Timestamp,
    ) -> Outcome;
    fn delete(c: &Catalog, account: AccountId, id: Self::Id) -> Outcome;
    fn references(c: &Catalog, account: AccountId, id: Self::Id) -> Option<Vec<Reference>>;
}

type Ids = Path<(String, String)>;

/// POST: a new object from a complete document.
pub async fn create<T: AccountObject>(
    State(st): State<Arc<Controller>>,
    Caller(p): Caller,
    Path(a): Path<String>,
    JsonObject(body): JsonObject,
) -> Reply {
    let account = account(&p, &a, Permission::MonitorsPoolsWrite)?;
    let spec = T::parse(&st, Value::Object(body))?;
    let id = T::id_from(st.fresh_id());
    let changes = super::commit(&st, move |c, now| {
        Ok(T::create(c, account, id, spec.clone(), now)?)
    })
    .await?;
    ok(stored(changes, |c| T::rendered(&st, c))?)
}

pub async fn get<T: AccountObject>(
    State(st): State<Arc<Controller>>,
    Extension(rendered): Extension<Arc<Rendered>>,
    Caller(p): Caller,
    Path((a, id)): Ids,
) -> Reply {
    let account = account(&p, &a, Permission::MonitorsPoolsRead)?;
    let id: T::Id = object_id(&id)?;
    // Both stamps are read before the object, so what is kept is never older than them.
    let generation = st.catalog_generation();
    let health = T::health(&st, id);
    let key = (T::KIND, *account.as_bytes(), id.into());
    if let Some(body) = rendered.get(&key, generation, health.as_ref()) {
        return Ok(json_bytes(body));
    }
    let value = T::render(&st, &st.catalog(), account, id).ok_or_else(ApiError::not_found)?;
    let doc = vantage_wire::envelope::success(value);
    match serde_json::to_vec(&doc) {
        Ok(body) => {
            let body = Bytes::from(body);
            rendered.put(key, generation, health, body.clone());
            Ok(json_bytes(body))
        }
        // A JSON tree always serializes; were it not to, it is answered as every other is.
        Err(_) => Ok(axum::Json(doc).into_response()),
    }
}

/// A JSON answer of bytes already rendered.
fn json_bytes(body: Bytes) -> axum::response::Response {
    use axum::http::header::{HeaderValue, CONTENT_TYPE};
    (
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    )
        .into_response()
}

async fn update<T: AccountObject>(
    st: Arc<Controller>,
    p: Caller,
    (a, id): (String, String),
    body: Map<String, Value>,
    merge: bool,
) -> Reply {
    let account = account(&p.0, &a, Permission::MonitorsPoolsWrite)?;
    let id: T::Id = object_id(&id)?;
    let policy = Arc::clone(&st);
    let changes = super::commit(&st, move |c, now| {
        let current = T::current(c, account, id).ok_or_else(ApiError::not_found)?;
        let doc = if merge {
            parse::merge(current, body.clone())
        } else {
            Value::Object(body.clone())
        };
        Ok(T::replace(c, account, id, T::parse(&policy, doc)?, now)?)
    })
    .await?;
    ok(stored(changes, |c| T::rendered(&st, c))?)
}

/// PUT: the body replaces the object; absent fields take their defaults.
pub async fn replace<T: AccountObject>(
    State(st): State<Arc<Controller>>,
    caller: Caller,
    Path(ids): Ids,
    JsonObject(body): JsonObject,
) -> Reply {
    update::<T>(st, caller, ids, body, false).await
}

/// PATCH: the body's fields are merged onto the object.
pub async fn patch<T: AccountObject>(
    State(st): State<Arc<Controller>>,
    caller: Caller,
    Path(ids): Ids,
    JsonObject(body): JsonObject,
) -> Reply {
    update::<T>(st, caller, ids, body, true).await
}

pub async fn delete<T: AccountObject>(
    State(st): State<Arc<Controller>>,
    Caller(p): Caller,
    Path((a, id)): Ids,
) -> Reply {
    let account = account(&p, &a, Permission::MonitorsPoolsWrite)?;
    let id: T::Id = object_id(&id)?;
    super::commit(&st, move |c, _| Ok(T::delete(c, account, id)?)).await?;
    deleted(id)
}

pub async fn references<T: AccountObject>(
    State(st): State<Arc<Controller>>,
    Caller(p): Caller,
    Path((a, id)): Ids,
) -> Reply {
    let account = account(&p, &a, Permission::MonitorsPoolsRead)?;
    let id: T::Id = object_id(&id)?;
    let refs = T::references(&st.catalog(), account, id).ok_or_else(ApiError::not_found)?;
    ok_list(&refs, Page::ALL, reference::render)
}
