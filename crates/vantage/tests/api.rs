//! The control plane through its real HTTP interface: objects, semantics, errors, auth.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{error_code, pointer, Server};
use reqwest::Method;
use serde_json::{json, Value};

async fn monitor(s: &Server, a: &str, body: Value) -> Value {
    let (st, v) = s
        .call(
            Method::POST,
            &format!("/accounts/{a}/load_balancers/monitors"),
            Some(body),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    v["result"].clone()
}

async fn pool(s: &Server, a: &str, body: Value) -> Value {
    let (st, v) = s
        .call(
            Method::POST,
            &format!("/accounts/{a}/load_balancers/pools"),
            Some(body),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    v["result"].clone()
}

fn pool_body(name: &str, monitor: Option<&str>) -> Value {
    let mut b = json!({"name": name, "origins": [
        {"name": "a", "address": "192.0.2.10"},
        {"name": "b", "address": "origin-b.example.com", "weight": 0.5, "header": {"Host": ["b.example.com"]}}
    ]});
    if let Some(m) = monitor {
        b["monitor"] = json!(m);
    }
    b
}

async fn zone(s: &Server, name: &str) -> String {
    let (st, v) = s
        .call(Method::POST, "/zones", Some(json!({"name": name})))
        .await;
    assert_eq!(st, 200, "{v}");
    v["result"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn monitor_lifecycle_put_replaces_patch_merges() {
    let s = Server::start();
    let a = s.account_id().await;
    let m = monitor(&s, &a, json!({"type": "https", "expected_codes": "2xx", "path": "/health", "description": "web", "retries": 1})).await;
    for (k, v) in [
        ("method", json!("GET")),
        ("port", json!(0)),
        ("timeout", json!(5)),
        ("interval", json!(60)),
        ("follow_redirects", json!(false)),
        ("consecutive_up", json!(0)),
        ("probe_zone", json!("")),
        ("header", json!({})),
    ] {
        assert_eq!(m[k], v, "default of {k}");
    }
    let id = m["id"].as_str().unwrap();
    let path = format!("/accounts/{a}/load_balancers/monitors/{id}");

    let (st, patched) = s
        .call(Method::PATCH, &path, Some(json!({"interval": 30})))
        .await;
    assert_eq!(st, 200, "{patched}");
    let p = &patched["result"];
    assert_eq!(
        (
            p["interval"].as_i64(),
            p["path"].as_str(),
            p["retries"].as_i64()
        ),
        (Some(30), Some("/health"), Some(1))
    );
    assert_eq!(p["created_on"], m["created_on"]);
    assert_ne!(p["modified_on"], m["modified_on"]);

    let (st, put) = s
        .call(
            Method::PUT,
            &path,
            Some(json!({"type": "http", "expected_codes": "200"})),
        )
        .await;
    assert_eq!(st, 200, "{put}");
    assert_eq!(
        (
            put["result"]["path"].as_str(),
            put["result"]["retries"].as_i64()
        ),
        (Some("/"), Some(2)),
        "PUT resets to defaults"
    );
    assert_eq!(put["result"]["description"], "");

    let (_, list) = s
        .call(
            Method::GET,
            &format!("/accounts/{a}/load_balancers/monitors"),
            None,
        )
        .await;
    assert_eq!(list["result"].as_array().unwrap().len(), 1);
    assert_eq!(list["result_info"]["total_count"], 1);

    let (st, del) = s.call(Method::DELETE, &path, None).await;
    assert_eq!((st.as_u16(), del["result"]["id"].as_str()), (200, Some(id)));
    let (st, v) = s.call(Method::GET, &path, None).await;
    assert_eq!((st.as_u16(), error_code(&v)), (404, 1003));
}

#[tokio::test]
async fn pools_references_and_refused_deletes() {
    let s = Server::start();
    let a = s.account_id().await;
    let m = monitor(&s, &a, json!({"expected_codes": "200"})).await;
    let mid = m["id"].as_str().unwrap();
    let p = pool(&s, &a, pool_body("primary", Some(mid))).await;
    let pid = p["id"].as_str().unwrap();
    assert_eq!(p["minimum_origins"], 1);
    assert_eq!(p["check_regions"], Value::Null);
    assert_eq!(p["origin_steering"], json!({"policy": "random"}));
    assert_eq!(p["origins"][0]["weight"], 1.0);
    assert_eq!(
        p["origins"][1]["header"],
        json!({"Host": ["b.example.com"]})
    );
    pool(&s, &a, pool_body("unmonitored", None)).await;

    let (_, filtered) = s
        .call(
            Method::GET,
            &format!("/accounts/{a}/load_balancers/pools?monitor={mid}"),
            None,
        )
        .await;
    let names: Vec<&str> = filtered["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["primary"]);

    let (_, refs) = s
        .call(
            Method::GET,
            &format!("/accounts/{a}/load_balancers/monitors/{mid}/references"),
            None,
        )
        .await;
    assert_eq!(
        refs["result"],
        json!([{"reference_type": "referrer", "resource_id": pid, "resource_name": "primary", "resource_type": "pool"}])
    );

    let (st, v) = s
        .call(
            Method::DELETE,
            &format!("/accounts/{a}/load_balancers/monitors/{mid}"),
            None,
        )
        .await;
    assert_eq!((st.as_u16(), error_code(&v)), (400, 1004));
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("primary"),
        "{v}"
    );

    let z = zone(&s, "example.com").await;
    let (st, lb) = s
        .call(
            Method::POST,
            &format!("/zones/{z}/load_balancers"),
            Some(json!({"name": "www.example.com", "default_pools": [pid], "fallback_pool": pid})),
        )
        .await;
    assert_eq!(st, 200, "{lb}");
    let (_, prefs) = s
        .call(
            Method::GET,
            &format!("/accounts/{a}/load_balancers/pools/{pid}/references"),
            None,
        )
        .await;
    let kinds = common::reference_kinds(&prefs);
    assert_eq!(
        kinds,
        [("referrer", "load_balancer"), ("referral", "monitor")]
    );
    let (st, v) = s
        .call(
            Method::DELETE,
            &format!("/accounts/{a}/load_balancers/pools/{pid}"),
            None,
        )
        .await;
    assert_eq!((st.as_u16(), error_code(&v)), (400, 1004));

    let (st, bulk) = s
        .call(
            Method::PATCH,
            &format!("/accounts/{a}/load_balancers/pools"),
            Some(json!({"notification_email": "ops@example.com"})),
        )
        .await;
    assert_eq!(st, 200, "{bulk}");
    assert!(bulk["result"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["notification_email"] == "ops@example.com"));
    let (st, v) = s
        .call(
            Method::PATCH,
            &format!("/accounts/{a}/load_balancers/pools"),
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!((st.as_u16(), pointer(&v)), (400, "/name"));

    let (_, found) = s
        .call(
            Method::GET,
            &format!("/accounts/{a}/load_balancers/search?query=origin-b&references=*"),
            None,
        )
        .await;
    let res = &found["result"]["resources"];
    assert_eq!(res.as_array().unwrap().len(), 2, "{found}");
}

#[tokio::test]
async fn load_balancer_lifecycle_and_validation() {
    let s = Server::start();
    let a = s.account_id().await;
    let p1 = pool(&s, &a, pool_body("p1", None)).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let p2 = pool(&s, &a, pool_body("p2", None)).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let z = zone(&s, "Example.ORG").await;
    let base = format!("/zones/{z}/load_balancers");
    let (st, v) = s.call(Method::POST, &base, Some(json!({"name": "lb.example.org", "default_pools": [p1, "ffffffffffffffffffffffffffffffff"], "fallback_pool": p2}))).await;
    assert_eq!(
        (st.as_u16(), error_code(&v), pointer(&v)),
        (400, 1002, "/default_pools/1")
    );
    let (st, v) = s
        .call(
            Method::POST,
            &base,
            Some(json!({"name": "lb.example.com", "default_pools": [p1], "fallback_pool": p2})),
        )
        .await;
    assert_eq!((st.as_u16(), pointer(&v)), (400, "/name"));

    let (st, v) = s
        .call(
            Method::POST,
            &base,
            Some(json!({"name": "LB.example.org", "default_pools": [p1, p2], "fallback_pool": p2})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let lb = &v["result"];
    assert_eq!(
        (lb["name"].as_str(), lb["zone_name"].as_str()),
        (Some("lb.example.org"), Some("example.org"))
    );
    for (k, want) in [
        ("steering_policy", json!("")),
        ("proxied", json!(false)),
        ("ttl", json!(30)),
        ("enabled", json!(true)),
        ("session_affinity", json!("none")),
        ("rules", json!([])),
        ("adaptive_routing", json!({"failover_across_pools": false})),
    ] {
        assert_eq!(lb[k], want, "default of {k}");
    }
    let id = lb["id"].as_str().unwrap();
    let (st, v) = s
        .call(
            Method::PATCH,
            &format!("{base}/{id}"),
            Some(json!({"steering_policy": "random", "random_steering": {"default_weight": 0.3}})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        (
            v["result"]["steering_policy"].as_str(),
            v["result"]["default_pools"].as_array().unwrap().len()
        ),
        (Some("random"), 2)
    );
    let (st, v) = s
        .call(
            Method::PATCH,
            &format!("{base}/{id}"),
            Some(json!({"steering_policy": "fastest"})),
        )
        .await;
    assert_eq!((st.as_u16(), pointer(&v)), (400, "/steering_policy"));
    let (st, v) = s
        .call(
            Method::POST,
            &base,
            Some(json!({"name": "lb.example.org", "default_pools": [p1], "fallback_pool": p1})),
        )
        .await;
    assert_eq!(
        (st.as_u16(), pointer(&v)),
        (400, "/name"),
        "names are unique in a zone"
    );

    let (st, v) = s.call(Method::DELETE, &format!("/zones/{z}"), None).await;
    assert_eq!(
        (st.as_u16(), error_code(&v)),
        (400, 1004),
        "a zone with load balancers is kept"
    );
    let (st, _) = s.call(Method::DELETE, &format!("{base}/{id}"), None).await;
    assert_eq!(st, 200);
    let (_, list) = s.call(Method::GET, &base, None).await;
    assert_eq!(list["result"], json!([]));
}

#[tokio::test]
async fn bad_input_gets_the_envelope_and_writes_nothing() {
    let s = Server::start();
    let a = s.account_id().await;
    let monitors = s.url(&format!("/accounts/{a}/load_balancers/monitors"));
    let post_raw = |body: Vec<u8>| {
        s.http
            .post(&monitors)
            .bearer_auth(common::TOKEN)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    let r = post_raw(b"{\"type\": ".to_vec()).await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(&r.json().await.unwrap()), 1001);
    let r = post_raw(b"[1,2]".to_vec()).await.unwrap();
    assert_eq!(error_code(&r.json().await.unwrap()), 1001);
    let r = post_raw(vec![b' '; 2 * 1024 * 1024]).await.unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(error_code(&r.json().await.unwrap()), 1005);

    let (st, v) = s
        .call(
            Method::POST,
            &format!("/accounts/{a}/load_balancers/monitors"),
            Some(json!({"expected_codes": "2xx", "timeout": "five"})),
        )
        .await;
    assert_eq!(
        (st.as_u16(), error_code(&v), pointer(&v)),
        (400, 1002, "/timeout")
    );
    let (st, v) = s.call(Method::POST, &format!("/accounts/{a}/load_balancers/pools"), Some(json!({"name": "bad", "origins": [{"name": "a", "address": "192.0.2.1", "port": 70000}]}))).await;
    assert_eq!((st.as_u16(), pointer(&v)), (400, "/origins/0/port"));
    let (st, v) = s
        .call(
            Method::POST,
            &format!("/accounts/{a}/load_balancers/pools"),
            Some(json!({"name": "bad", "origins": [], "minimum_origins": 0})),
        )
        .await;
    assert_eq!(st, 400);
    let pointers: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["source"]["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(pointers, ["/origins", "/minimum_origins"]);
    assert!(v["errors"][0]["message"]
        .as_str()
        .unwrap()
        .ends_with(": validation failed"));

    for path in ["monitors", "pools"] {
        let (_, list) = s
            .call(
                Method::GET,
                &format!("/accounts/{a}/load_balancers/{path}"),
                None,
            )
            .await;
        assert_eq!(list["result"], json!([]), "nothing was written to {path}");
    }

    let (st, v) = s
        .call(
            Method::GET,
            &format!("/accounts/{a}/load_balancers/pools/0123456789abcdef0123456789abcdef"),
            None,
        )
        .await;
    assert_eq!((st.as_u16(), error_code(&v)), (404, 1003));
    let (st, v) = s.call(Method::GET, "/no/such/route", None).await;
    assert_eq!((st.as_u16(), error_code(&v)), (404, 7003));
    let (st, v) = s
        .call(
            Method::DELETE,
            &format!("/accounts/{a}/load_balancers/regions"),
            None,
        )
        .await;
    assert_eq!((st.as_u16(), error_code(&v)), (405, 10405));
}

#[tokio::test]
async fn credentials_and_permissions() {
    let s = Server::start();
    let a = s.account_id().await;
    let path = s.url(&format!("/accounts/{a}/load_balancers/monitors"));

    let r = s.http.get(&path).send().await.unwrap();
    assert_eq!(
        (r.status().as_u16(), error_code(&r.json().await.unwrap())),
        (400, 9106)
    );
    let r = s
        .http
        .get(&path)
        .header("authorization", "Bearer short")
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (
            error_code(&v),
            v["errors"][0]["error_chain"][0]["code"].as_i64()
        ),
        (6003, Some(6111))
    );
    let (st, v) = s
        .call_as(
            &"x".repeat(48),
            Method::GET,
            &format!("/accounts/{a}/load_balancers/monitors"),
            None,
        )
        .await;
    assert_eq!((st.as_u16(), error_code(&v)), (403, 9109));

    let r = s
        .http
        .get(&path)
        .header("x-auth-email", common::EMAIL)
        .header("x-auth-key", common::KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "global key works");
    let r = s
        .http
        .get(&path)
        .header("x-auth-email", common::EMAIL)
        .header("x-auth-key", "k".repeat(40))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), error_code(&r.json().await.unwrap())),
        (403, 9103)
    );
    let r = s
        .http
        .get(&path)
        .header("x-auth-email", "nobody")
        .header("x-auth-key", common::KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["errors"][0]["error_chain"][0]["code"],
        6102
    );

    let (st, v) = s.call(Method::GET, "/user/tokens/verify", None).await;
    assert_eq!(
        (st.as_u16(), v["result"]["status"].as_str()),
        (200, Some("active"))
    );

    // A read-only token made with the CLI while the server runs.
    let ro = s
        .cli_token(&a, "ro", "Load Balancing: Monitors and Pools Read")
        .await;
    let (st, _) = s
        .call_as(
            &ro,
            Method::GET,
            &format!("/accounts/{a}/load_balancers/monitors"),
            None,
        )
        .await;
    assert_eq!(st, 200);
    let (st, v) = s
        .call_as(
            &ro,
            Method::POST,
            &format!("/accounts/{a}/load_balancers/monitors"),
            Some(json!({"expected_codes": "200"})),
        )
        .await;
    assert_eq!((st.as_u16(), error_code(&v)), (403, 10000));
    let (st, _) = s.call_as(&ro, Method::GET, "/zones", None).await;
    assert_eq!(
        st, 200,
        "listing zones needs no zone permission; it shows only visible zones"
    );

    // Another account's token sees nothing of this one.
    let other = s.cli(&["account", "create", "--name", "other"]);
    let foreign = s.cli_token(&other, "f", "all").await;
    let mine = pool(&s, &a, pool_body("mine", None)).await;
    let (st, v) = s
        .call_as(
            &foreign,
            Method::GET,
            &format!("/accounts/{a}/load_balancers/pools"),
            None,
        )
        .await;
    assert_eq!((st.as_u16(), error_code(&v)), (403, 10000));
    let (st, v) = s
        .call_as(
            &foreign,
            Method::GET,
            &format!(
                "/accounts/{other}/load_balancers/pools/{}",
                mine["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(
        (st.as_u16(), error_code(&v)),
        (404, 1003),
        "a foreign pool id is not found in the caller's account"
    );
    let (_, accounts) = s.call_as(&foreign, Method::GET, "/accounts", None).await;
    assert_eq!(accounts["result"].as_array().unwrap().len(), 1);
    assert_eq!(accounts["result"][0]["id"].as_str(), Some(other.as_str()));

    // Revocation takes effect without a restart.
    let list: Value = serde_json::from_str(&s.cli(&["token", "list", "--output", "json"])).unwrap();
    let ro_id = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ro")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        !list.to_string().contains(&ro),
        "token list never shows secrets"
    );
    s.cli(&["token", "revoke", &ro_id]);
    common::eventually(
        std::time::Duration::from_secs(10),
        "the revoked token is refused",
        || async {
            s.call_as(&ro, Method::GET, "/user/tokens/verify", None)
                .await
                .0
                == 403
        },
    )
    .await;
}

#[tokio::test]
async fn concurrent_patches_lose_no_update() {
    let s = Server::start();
    let a = s.account_id().await;
    let m = monitor(&s, &a, json!({"expected_codes": "200"})).await;
    let path = format!(
        "/accounts/{a}/load_balancers/monitors/{}",
        m["id"].as_str().unwrap()
    );
    let patches = [
        json!({"description": "d"}),
        json!({"path": "/p"}),
        json!({"expected_body": "ok"}),
        json!({"retries": 1}),
        json!({"consecutive_up": 3}),
        json!({"consecutive_down": 4}),
        json!({"follow_redirects": true}),
        json!({"method": "HEAD"}),
        json!({"header": {"X-A": ["1"]}}),
        json!({"interval": 120}),
    ];
    let results = futures_join(
        patches
            .iter()
            .map(|p| s.call(Method::PATCH, &path, Some(p.clone()))),
    )
    .await;
    assert!(results.iter().all(|(st, _)| *st == 200));
    let (_, v) = s.call(Method::GET, &path, None).await;
    for p in &patches {
        let (k, want) = p.as_object().unwrap().iter().next().unwrap();
        assert_eq!(&v["result"][k], want, "update of {k} survived");
    }
}

async fn futures_join<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let handles: Vec<_> = futs.collect();
    let mut out = Vec::new();
    // Polled together on one task: the requests are in flight at the same time.
    let mut pinned: Vec<_> = handles.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if done[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => done[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.extend(done.into_iter().map(Option::unwrap));
    out
}

#[tokio::test]
async fn regions_and_health_routes_answer_truthfully() {
    let s = Server::start();
    let a = s.account_id().await;
    let (st, v) = s
        .call(
            Method::GET,
            &format!("/accounts/{a}/load_balancers/regions"),
            None,
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(v["result"]["regions"].as_array().unwrap().len(), 13);
    let (_, v) = s
        .call(
            Method::GET,
            &format!("/accounts/{a}/load_balancers/regions?country_code_a2=US&subdivision_code=CA"),
            None,
        )
        .await;
    let codes: Vec<&str> = v["result"]["regions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["region_code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["WNAM"]);
    let (st, v) = s
        .call(
            Method::GET,
            &format!("/accounts/{a}/load_balancers/regions/WEU"),
            None,
        )
        .await;
    assert_eq!(
        (
            st.as_u16(),
            v["result"]["regions"][0]["region_code"].as_str()
        ),
        (200, Some("WEU"))
    );

    let p = pool(&s, &a, pool_body("p", None)).await;
    let (st, v) = s
        .call(
            Method::GET,
            &format!(
                "/accounts/{a}/load_balancers/pools/{}/health",
                p["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(
        (
            st.as_u16(),
            error_code(&v),
            v["errors"][0]["message"].as_str()
        ),
        (400, 1002, Some("Health info unavailable"))
    );
    let (st, v) = s
        .call(
            Method::GET,
            "/user/load_balancing_analytics/events?since=yesterday",
            None,
        )
        .await;
    assert_eq!((st.as_u16(), pointer(&v)), (400, "/since"));
    let (st, v) = s
        .call(Method::GET, "/user/load_balancing_analytics/events", None)
        .await;
    assert_eq!((st.as_u16(), v["result"].clone()), (200, json!([])));
}

#[tokio::test]
async fn the_dashboard_is_served_and_its_data_needs_credentials() {
    let s = Server::start();
    let page = s
        .http
        .get(format!("http://{}/", s.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(page.text().await.unwrap().contains("/dashboard/v1/state"));

    let state = format!("http://{}/dashboard/v1/state", s.addr);
    let anonymous = s.http.get(&state).send().await.unwrap();
    assert!(anonymous.status().is_client_error());
    let v: Value = anonymous.json().await.unwrap();
    assert_eq!(v["success"], false, "an envelope, not a page");

    // The change stream tells the page when something changed.
    let mut stream = s
        .http
        .get(format!("http://{}/dashboard/v1/stream", s.addr))
        .bearer_auth(common::TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let a = s.account_id().await;
    let (st, _) = s
        .call(
            Method::POST,
            &format!("/accounts/{a}/load_balancers/pools"),
            Some(json!({"name": "p", "origins": [{"name": "o", "address": "192.0.2.1"}]})),
        )
        .await;
    assert_eq!(st, 200);
    let mut seen = String::new();
    while !seen.contains("event: changed") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
            .await
            .expect("a change event within 10 s")
            .unwrap()
            .expect("the stream stays open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }

    let v: Value = s
        .http
        .get(&state)
        .bearer_auth(common::TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["result"]["pools"][0]["name"], "p");
    assert_eq!(
        v["result"]["pools"][0]["state"], "Healthy",
        "no monitor: up"
    );
}

#[tokio::test]
async fn every_operation_in_the_openapi_document_is_routed() {
    let s = Server::start();
    let doc: Value = s
        .http
        .get(s.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 25, "{}", paths.len());
    for (path, ops) in paths {
        let concrete = path
            .split('/')
            .map(|seg| {
                if seg.starts_with('{') {
                    "0123456789abcdef0123456789abcdef"
                } else {
                    seg
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        for method in ops.as_object().unwrap().keys() {
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let resp = s
                .http
                .request(m, s.url(&concrete))
                .bearer_auth(common::TOKEN)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let v: Value = resp.json().await.unwrap();
            assert_ne!(status, 405, "{method} {path} is not routed");
            assert_ne!(error_code(&v), 7003, "{method} {path} is not routed: {v}");
            assert!(status < 500, "{method} {path}: {status} {v}");
        }
    }
}

/// Hardening of the HTTP surface: a credential header sent twice is malformed (proxies
/// disagree on which copy wins), every answer carries the anti-sniffing and anti-framing
/// headers, and the scheme of `Authorization` is case-insensitive on the agent protocol too.
#[tokio::test]
async fn duplicate_credentials_are_refused_and_answers_are_not_framable() {
    let s = Server::start();
    let a = s.account_id().await;
    let path = s.url(&format!("/accounts/{a}/load_balancers/monitors"));
    let r = s
        .http
        .get(&path)
        .header("authorization", format!("Bearer {}", common::TOKEN))
        .header(
            "authorization",
            "Bearer someone-elses-token-0123456789abcdefghijklmno",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (
            error_code(&v),
            v["errors"][0]["error_chain"][0]["code"].as_i64()
        ),
        (6003, Some(6111)),
        "{v}"
    );

    let r = s
        .http
        .get(&path)
        .header("authorization", format!("bearer {}", common::TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "any case of the scheme");
    for header in [
        "x-content-type-options",
        "x-frame-options",
        "content-security-policy",
    ] {
        assert!(
            r.headers().contains_key(header),
            "{header} on an API answer"
        );
    }
    let page = s
        .http
        .get(format!("http://{}/", s.addr))
        .send()
        .await
        .unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");

    // The agent protocol takes `bearer` too: an API token is then refused as the wrong kind
    // (403), not as a malformed header (400).
    let r = s
        .http
        .get(format!(
            "http://{}/agent/v1/assignment?region=WEU&location=x",
            s.addr
        ))
        .header("authorization", format!("bearer {}", common::TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}
