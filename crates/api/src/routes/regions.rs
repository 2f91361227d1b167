//! `/accounts/{account_id}/load_balancers/regions`.

use std::sync::Arc;

use axum::extract::State;
use serde_json::{json, Value};
use vantage_core::auth::Permission;
use vantage_core::region::RegionCode;
use vantage_wire::{region, ApiError};

use super::{account, ok, Reply};
use crate::extract::{Caller, Params, PathParams as Path};
use vantage_control::Controller;

pub async fn list(
    State(_): State<Arc<Controller>>,
    Caller(p): Caller,
    Path(a): Path<String>,
    q: Params,
) -> Reply {
    account(&p, &a, Permission::MonitorsPoolsRead)?;
    let country = q
        .get("country_code_a2")
        .or_else(|| q.get("country_code"))
        .filter(|s| !s.is_empty());
    let subdivision = q
        .get("subdivision_code_a2")
        .or_else(|| q.get("subdivision_code"))
        .filter(|s| !s.is_empty());
    let regions: Vec<Value> = RegionCode::ALL
        .into_iter()
        .filter_map(|r| {
            let mut countries = r.countries();
            if let Some(cc) = country {
                countries.retain(|c| c.code.eq_ignore_ascii_case(cc));
                if let Some(sd) = subdivision {
                    // A whole country stays; a split one keeps only the matching subdivision.
                    countries.retain_mut(|c| {
                        if c.subdivisions.is_empty() {
                            return true;
                        }
                        c.subdivisions.retain(|s| s.code.eq_ignore_ascii_case(sd));
                        !c.subdivisions.is_empty()
                    });
                }
                if countries.is_empty() {
                    return None;
                }
            }
            Some(region::render(r, &countries))
        })
        .collect();
    ok(json!({"iso_standard": region::ISO_STANDARD, "regions": regions}))
}

pub async fn get(Caller(p): Caller, Path((a, id)): Path<(String, String)>) -> Reply {
    account(&p, &a, Permission::MonitorsPoolsRead)?;
    let r: RegionCode = id.parse().map_err(|_| ApiError::not_found())?;
    ok(
        json!({"iso_standard": region::ISO_STANDARD, "regions": [region::render(r, &r.countries())]}),
    )
}
