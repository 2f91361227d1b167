//! The API in-process: the real router over an in-memory store, driven request by request
//! with `oneshot` — no sockets, no processes, so the rules of the HTTP layer (credential
//! precedence, envelopes, PATCH merge, paging) are tested where they live and run fast.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use axum::body::Body;
use http::{Method, Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;
use vantage_control::secrets::token_digest;
use vantage_control::Controller;
use vantage_core::auth::{Grant, Permission, Resource, Token, TokenKind, TokenStatus};
use vantage_core::catalog::Catalog;
use vantage_core::{AccountId, Timestamp, TokenId};
use vantage_store::memory::MemoryStore;
use vantage_store::Store;

const TOKEN: &str = "in-process-test-token_0123456789abcdefghijklmnopqrstu";
const ACCOUNT: AccountId = AccountId::from_bytes([1; 16]);

/// An API with one account and an admin token for it, its writer running.
fn api() -> axum::Router {
    let (state, writer) = Controller::load(seeded()).unwrap();
    std::thread::spawn(move || writer.run());
    vantage_api::router(state)
}

/// A store holding one account and an admin token.
fn seeded() -> Arc<MemoryStore> {
    let store = Arc::new(MemoryStore::default());
    let now = Timestamp::from_unix_micros(1_764_547_200_000_000);
    let mut changes = Catalog::default()
        .create_account(ACCOUNT, "acme".into(), now)
        .unwrap();
    changes.push(vantage_core::catalog::Change::PutToken(Token {
        id: TokenId::from_bytes([2; 16]),
        name: "admin".into(),
        digest: token_digest(TOKEN),
        status: TokenStatus::Active,
        grants: vec![Grant {
            resource: Resource::Account(ACCOUNT),
            permissions: Permission::ALL_PERMISSIONS.to_vec(),
        }],
        issued_on: now,
        modified_on: now,
        expires_on: None,
        kind: TokenKind::Api,
        agent: None,
    }));
    store.commit(&changes).unwrap();
    store
}

async fn call(
    app: &axum::Router,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(format!("/client/v4{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let body = match body {
        Some(b) => {
            req = req.header("content-type", "application/json");
            Body::from(b.to_string())
        }
        None => Body::empty(),
    };
    let resp = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

async fn as_admin(
    app: &axum::Router,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    call(app, method, path, &[("authorization", &bearer())], body).await
}

fn code(v: &Value) -> i64 {
    v["errors"][0]["code"].as_i64().unwrap_or(-1)
}

#[tokio::test]
async fn the_authorization_header_takes_precedence_and_every_failure_is_an_envelope() {
    let app = api();
    let path = format!("/accounts/{ACCOUNT}/load_balancers/monitors");
    let (st, v) = call(&app, Method::GET, &path, &[], None).await;
    assert_eq!((st.as_u16(), code(&v)), (400, 9106), "no credentials");
    // A bad bearer token is not rescued by other credentials beside it.
    let (st, v) = call(
        &app,
        Method::GET,
        &path,
        &[
            (
                "authorization",
                "Bearer not-the-token-0123456789abcdefghijklmnopqrstuvwx",
            ),
            ("x-auth-email", "ops@example.com"),
            (
                "x-auth-key",
                "global-key-0123456789abcdefghijklmnopqrstuvwxyz",
            ),
        ],
        None,
    )
    .await;
    assert_eq!(st, 403, "{v}");
    assert_eq!(v["success"], false);
    let (st, v) = as_admin(&app, Method::GET, "/no/such/route", None).await;
    assert_eq!((st.as_u16(), code(&v)), (404, 7003));
    let (st, v) = as_admin(&app, Method::DELETE, &path, None).await;
    assert_eq!((st.as_u16(), code(&v)), (405, 10405));
    let (st, v) = as_admin(
        &app,
        Method::POST,
        &path,
        Some(json!({"interval": "often"})),
    )
    .await;
    assert_eq!(st, 400);
    assert_eq!(v["errors"][0]["source"]["pointer"], "/interval", "{v}");
}

#[tokio::test]
async fn patch_merges_onto_the_stored_object() {
    let app = api();
    let pools = format!("/accounts/{ACCOUNT}/load_balancers/pools");
    let (st, created) = as_admin(
        &app,
        Method::POST,
        &pools,
        Some(json!({"name": "web", "description": "first", "minimum_origins": 2,
                    "origins": [{"name": "a", "address": "192.0.2.1"}, {"name": "b", "address": "192.0.2.2"}]})),
    )
    .await;
    assert_eq!(st, 200, "{created}");
    let id = created["result"]["id"].as_str().unwrap();
    let read = || async {
        as_admin(&app, Method::GET, &format!("{pools}/{id}"), None)
            .await
            .1
    };
    // Read twice: the second answer is the rendering kept, the same bytes.
    assert_eq!(read().await, read().await);
    assert_eq!(read().await["result"]["description"], "first");
    let (st, patched) = as_admin(
        &app,
        Method::PATCH,
        &format!("{pools}/{id}"),
        Some(json!({"description": "second"})),
    )
    .await;
    assert_eq!(st, 200, "{patched}");
    let r = &patched["result"];
    assert_eq!(r["description"], "second");
    assert_eq!(r["minimum_origins"], 2, "fields the PATCH left out stay");
    assert_eq!(r["origins"].as_array().unwrap().len(), 2);
    assert_eq!(read().await["result"], *r, "a read after a write shows it");
    // PUT replaces: what it leaves out takes its default.
    let (st, put) = as_admin(
        &app,
        Method::PUT,
        &format!("{pools}/{id}"),
        Some(json!({"name": "web", "origins": [{"name": "a", "address": "192.0.2.1"}]})),
    )
    .await;
    assert_eq!(st, 200, "{put}");
    assert_eq!(put["result"]["minimum_origins"], 1);
    assert_eq!(put["result"]["description"], "");
    assert_eq!(read().await["result"], put["result"]);
}

#[tokio::test]
async fn lists_page_and_a_page_past_the_end_is_empty() {
    let app = api();
    let monitors = format!("/accounts/{ACCOUNT}/load_balancers/monitors");
    for i in 0..3 {
        let (st, v) = as_admin(
            &app,
            Method::POST,
            &monitors,
            Some(json!({"expected_codes": "200", "description": format!("m{i}")})),
        )
        .await;
        assert_eq!(st, 200, "{v}");
    }
    let (_, page2) = as_admin(
        &app,
        Method::GET,
        &format!("{monitors}?per_page=2&page=2"),
        None,
    )
    .await;
    assert_eq!(page2["result"].as_array().unwrap().len(), 1);
    assert_eq!(
        page2["result_info"],
        json!({"page": 2, "per_page": 2, "count": 1, "total_count": 3, "total_pages": 2})
    );
    let (_, past) = as_admin(
        &app,
        Method::GET,
        &format!("{monitors}?per_page=2&page=9"),
        None,
    )
    .await;
    assert_eq!(past["result"], json!([]));
}

/// Every list answers a page past its end with an empty page (SDKs' auto-pagination stops
/// there), and pages the alert history like the rest.
#[tokio::test]
async fn every_list_has_an_end() {
    let app = api();
    let (st, z) = as_admin(
        &app,
        Method::POST,
        "/zones",
        Some(json!({"name": "example.com"})),
    )
    .await;
    assert_eq!(st, 200, "{z}");
    let zone = z["result"]["id"].as_str().unwrap().to_owned();
    let a = ACCOUNT.to_string();
    let lists = [
        "/accounts".to_owned(),
        "/zones".to_owned(),
        format!("/zones/{zone}/load_balancers"),
        format!("/accounts/{a}/load_balancers/monitors"),
        format!("/accounts/{a}/load_balancers/pools"),
        format!("/accounts/{a}/alerting/v3/destinations/webhooks"),
        format!("/accounts/{a}/alerting/v3/policies"),
        format!("/accounts/{a}/alerting/v3/history"),
    ];
    for list in &lists {
        let (st, v) = as_admin(
            &app,
            Method::GET,
            &format!("{list}?page=99&per_page=5"),
            None,
        )
        .await;
        assert_eq!(st, 200, "{list}: {v}");
        assert_eq!(v["result"], json!([]), "{list}: {v}");
        assert_eq!(v["result_info"]["page"], 99, "{list}: {v}");
    }
    let history = format!("/accounts/{a}/alerting/v3/history");
    let (st, v) = as_admin(
        &app,
        Method::GET,
        &format!("{history}?since=yesterday"),
        None,
    )
    .await;
    assert_eq!(
        (st.as_u16(), v["errors"][0]["source"]["pointer"].as_str()),
        (400, Some("/since"))
    );
    let (_, v) = as_admin(&app, Method::GET, &history, None).await;
    assert_eq!(
        v["result_info"]["per_page"], 25,
        "Cloudflare's default page size"
    );
}

/// The controller's clock and id source are its own to replace: with a clock standing still
/// and ids counted, a created object is exactly predictable.
#[tokio::test]
async fn ids_and_time_come_from_the_controller() {
    use vantage_control::clock::ManualClock;
    use vantage_control::ids::SequentialIds;
    let at = Timestamp::from_unix_micros(1_800_000_000_000_000);
    let (state, writer) = Controller::load_with(
        seeded(),
        Arc::new(ManualClock::at(at)),
        Arc::new(SequentialIds::new(*b"vantage\0")),
    )
    .unwrap();
    std::thread::spawn(move || writer.run());
    let app = vantage_api::router(state);
    let monitor = json!({"type": "tcp", "port": 80});
    let path = format!("/accounts/{ACCOUNT}/load_balancers/monitors");
    let (status, v) = as_admin(&app, Method::POST, &path, Some(monitor.clone())).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["result"]["id"], "76616e74616765000000000000000001");
    assert_eq!(v["result"]["created_on"], "2027-01-15T08:00:00.000000Z");
    let (_, v) = as_admin(&app, Method::POST, &path, Some(monitor)).await;
    assert_eq!(v["result"]["id"], "76616e74616765000000000000000002");
}

/// Load balancers addressed by account (as Cloudflare's TypeScript SDK does from 7.1 on) are
/// the zone's own objects: created in the zone their name falls in, listed, read, changed
/// and deleted under either path; a name in none of the account's zones is refused at /name.
#[tokio::test]
async fn load_balancers_are_served_by_account_too() {
    let app = api();
    let (st, z) = as_admin(
        &app,
        Method::POST,
        "/zones",
        Some(json!({"name": "example.com", "account": {"id": ACCOUNT.to_string()}})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{z}");
    let zone = z["result"]["id"].as_str().unwrap().to_owned();
    let (_, sub) = as_admin(
        &app,
        Method::POST,
        "/zones",
        Some(json!({"name": "eu.example.com", "account": {"id": ACCOUNT.to_string()}})),
    )
    .await;
    let sub = sub["result"]["id"].as_str().unwrap().to_owned();
    let (_, pool) = as_admin(
        &app,
        Method::POST,
        &format!("/accounts/{ACCOUNT}/load_balancers/pools"),
        Some(json!({"name": "p", "origins": [{"name": "o", "address": "192.0.2.1"}]})),
    )
    .await;
    let pool = pool["result"]["id"].as_str().unwrap().to_owned();
    let lbs = format!("/accounts/{ACCOUNT}/load_balancers");
    let doc = |name: &str| json!({"name": name, "default_pools": [pool], "fallback_pool": pool});

    let (st, lb) = as_admin(&app, Method::POST, &lbs, Some(doc("www.eu.example.com"))).await;
    assert_eq!(st, StatusCode::OK, "{lb}");
    assert_eq!(
        lb["result"]["zone_name"], "eu.example.com",
        "the most specific zone"
    );
    let id = lb["result"]["id"].as_str().unwrap().to_owned();
    let (_, top) = as_admin(&app, Method::POST, &lbs, Some(doc("www.example.com"))).await;
    assert_eq!(top["result"]["zone_name"], "example.com");

    let (_, list) = as_admin(&app, Method::GET, &lbs, None).await;
    assert_eq!(list["result"].as_array().map(Vec::len), Some(2), "{list}");
    let (_, in_zone) = as_admin(
        &app,
        Method::GET,
        &format!("/zones/{sub}/load_balancers/{id}"),
        None,
    )
    .await;
    assert_eq!(in_zone["result"]["name"], "www.eu.example.com");

    let one = format!("{lbs}/{id}");
    let (st, patched) = as_admin(
        &app,
        Method::PATCH,
        &one,
        Some(json!({"description": "eu"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{patched}");
    let (_, read) = as_admin(&app, Method::GET, &one, None).await;
    assert_eq!(read["result"]["description"], "eu");
    assert_eq!(
        read["result"]["default_pools"],
        json!([pool]),
        "PATCH kept the rest"
    );

    let (st, v) = as_admin(&app, Method::POST, &lbs, Some(doc("www.example.org"))).await;
    assert_eq!(
        (st, v["errors"][0]["source"]["pointer"].as_str()),
        (StatusCode::BAD_REQUEST, Some("/name")),
        "{v}"
    );
    let (st, _) = as_admin(
        &app,
        Method::GET,
        &format!("{lbs}/{}", "0".repeat(32)),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    let (st, _) = as_admin(&app, Method::DELETE, &one, None).await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = as_admin(
        &app,
        Method::GET,
        &format!("/zones/{sub}/load_balancers/{id}"),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "gone under the zone too");
    let _ = zone;
}
