//! Region JSON.

use serde_json::{json, Value};
use vantage_core::region::{Country, RegionCode};

pub const ISO_STANDARD: &str =
    "Country and subdivision codes follow ISO 3166-1 alpha-2 and ISO 3166-2";

fn render_country(c: &Country) -> Value {
    let mut v = json!({"country_code_a2": c.code, "country_name": c.name});
    if !c.subdivisions.is_empty() {
        v["country_subdivisions"] = c
            .subdivisions
            .iter()
            .map(|s| json!({"subdivision_code_a2": s.code, "subdivision_name": s.name}))
            .collect();
    }
    v
}

pub fn render(region: RegionCode, countries: &[Country]) -> Value {
    json!({
        "region_code": region.code(),
        "region_name": region.name(),
        "countries": countries.iter().map(render_country).collect::<Vec<_>>(),
    })
}
