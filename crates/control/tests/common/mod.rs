//! Golden files for the protocols' messages, shared by their tests.
#![allow(dead_code, clippy::unwrap_used)]

use serde::{de::DeserializeOwned, Serialize};

/// Pins `value` as `tests/golden/{name}.json` (rewritten with `VANTAGE_UPDATE_SNAPSHOT=1`),
/// and proves the pinned text reads back as the same value.
pub fn pinned<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
    name: &str,
    value: &T,
) {
    let text = serde_json::to_string_pretty(value).unwrap() + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.json"));
    if std::env::var_os("VANTAGE_UPDATE_SNAPSHOT").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let golden = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        golden == text,
        "{} changed; if on purpose, rerun with VANTAGE_UPDATE_SNAPSHOT=1 and bump the protocol version when old peers cannot read it",
        path.display()
    );
    let parsed: T = serde_json::from_str(&golden).unwrap();
    assert_eq!(&parsed, value, "the pinned message reads back as itself");
}
