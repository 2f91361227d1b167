//! The OpenAPI document is generated from the code; this snapshot makes every change to it a
//! visible diff. Refresh with `VANTAGE_UPDATE_SNAPSHOT=1 cargo test -p vantage-api --test openapi`.
#![allow(clippy::unwrap_used)]

#[test]
fn the_openapi_document_matches_its_snapshot() {
    let doc = serde_json::to_string_pretty(&vantage_api::openapi::document()).unwrap() + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    if std::env::var_os("VANTAGE_UPDATE_SNAPSHOT").is_some() {
        std::fs::write(&path, &doc).unwrap();
    }
    let snapshot = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        snapshot == doc,
        "crates/api/openapi.json is out of date; rerun with VANTAGE_UPDATE_SNAPSHOT=1 and review the diff"
    );
    let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
    assert_eq!(v["openapi"], "3.1.0");
    let pool = &v["components"]["schemas"]["PoolIn"]["properties"];
    assert!(
        pool["origins"].is_object() && pool["minimum_origins"].is_object(),
        "{pool}"
    );
}
