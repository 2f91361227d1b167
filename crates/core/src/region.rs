//! Cloudflare's thirteen load-balancing regions and the geography behind them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::region_map::{COUNTRIES, SUBDIVISIONS};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RegionCode {
    Wnam,
    Enam,
    Weu,
    Eeu,
    Nsam,
    Ssam,
    Oc,
    Me,
    Naf,
    Saf,
    Sas,
    Seas,
    Neas,
}

impl RegionCode {
    pub const ALL: [RegionCode; 13] = [
        Self::Wnam,
        Self::Enam,
        Self::Weu,
        Self::Eeu,
        Self::Nsam,
        Self::Ssam,
        Self::Oc,
        Self::Me,
        Self::Naf,
        Self::Saf,
        Self::Sas,
        Self::Seas,
        Self::Neas,
    ];

    pub const fn code(self) -> &'static str {
        match self {
            Self::Wnam => "WNAM",
            Self::Enam => "ENAM",
            Self::Weu => "WEU",
            Self::Eeu => "EEU",
            Self::Nsam => "NSAM",
            Self::Ssam => "SSAM",
            Self::Oc => "OC",
            Self::Me => "ME",
            Self::Naf => "NAF",
            Self::Saf => "SAF",
            Self::Sas => "SAS",
            Self::Seas => "SEAS",
            Self::Neas => "NEAS",
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Self::Wnam => "Western North America",
            Self::Enam => "Eastern North America",
            Self::Weu => "Western Europe",
            Self::Eeu => "Eastern Europe",
            Self::Nsam => "Northern South America",
            Self::Ssam => "Southern South America",
            Self::Oc => "Oceania",
            Self::Me => "Middle East",
            Self::Naf => "Northern Africa",
            Self::Saf => "Southern Africa",
            Self::Sas => "Southern Asia",
            Self::Seas => "South East Asia",
            Self::Neas => "North East Asia",
        }
    }

    /// The countries of this region, in code order; a country split across regions is listed
    /// with the subdivisions that belong here.
    pub fn countries(self) -> Vec<Country> {
        let mut out: Vec<Country> = COUNTRIES
            .iter()
            .filter(|(_, _, r)| *r == self)
            .map(|(code, name, _)| Country {
                code,
                name,
                subdivisions: Vec::new(),
            })
            .collect();
        for (code, name, sub_code, sub_name, region) in SUBDIVISIONS {
            if *region != self {
                continue;
            }
            let sub = Subdivision {
                code: sub_code,
                name: sub_name,
            };
            match out.iter_mut().find(|c| c.code == *code) {
                Some(c) => c.subdivisions.push(sub),
                None => out.push(Country {
                    code,
                    name,
                    subdivisions: vec![sub],
                }),
            }
        }
        out.sort_by_key(|c| c.code);
        out
    }

    /// The region a client in `country` (ISO 3166-1 alpha-2) and optionally `subdivision`
    /// (ISO 3166-2 without the country prefix) is steered by. `None` for unknown places, and
    /// for a split country when the subdivision does not settle it.
    pub fn of_place(country: &str, subdivision: Option<&str>) -> Option<RegionCode> {
        let country = country.to_ascii_uppercase();
        if let Some((_, _, r)) = COUNTRIES.iter().find(|(c, _, _)| *c == country) {
            return Some(*r);
        }
        let sub = subdivision?.to_ascii_uppercase();
        SUBDIVISIONS
            .iter()
            .find(|(c, _, s, _, _)| *c == country && *s == sub)
            .map(|(_, _, _, _, r)| *r)
    }

    /// Whether `country` (alpha-2, upper case) is a country Vantage knows.
    pub fn is_known_country(country: &str) -> bool {
        COUNTRIES.iter().any(|(c, _, _)| *c == country)
            || SUBDIVISIONS.iter().any(|(c, _, _, _, _)| *c == country)
    }
}

impl fmt::Display for RegionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown region code")]
pub struct UnknownRegion;

impl FromStr for RegionCode {
    type Err = UnknownRegion;
    fn from_str(s: &str) -> Result<Self, UnknownRegion> {
        Self::ALL
            .into_iter()
            // Any case, as clients and Terraform configurations write them; rendered upper.
            .find(|r| r.code().eq_ignore_ascii_case(s))
            .ok_or(UnknownRegion)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Country {
    pub code: &'static str,
    pub name: &'static str,
    pub subdivisions: Vec<Subdivision>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subdivision {
    pub code: &'static str,
    pub name: &'static str,
}

/// Which probe locations judge a pool's origins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CheckRegions {
    /// `null` on the wire: every probe location votes directly ("All Data Centers").
    AllLocations,
    /// `["ALL_REGIONS"]`: every region votes, each by the majority of its locations.
    AllRegions,
    /// Only these regions vote (deduplicated, in the order given).
    Regions(Vec<RegionCode>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for r in RegionCode::ALL {
            assert_eq!(r.code().parse::<RegionCode>(), Ok(r));
        }
        assert_eq!("ALL_REGIONS".parse::<RegionCode>(), Err(UnknownRegion));
        assert_eq!("weu".parse::<RegionCode>(), Ok(RegionCode::Weu));
        assert_eq!("WEUX".parse::<RegionCode>(), Err(UnknownRegion));
    }

    #[test]
    fn every_country_maps_somewhere() {
        for (code, _, region) in COUNTRIES {
            assert_eq!(RegionCode::of_place(code, None), Some(*region));
            assert!(
                !SUBDIVISIONS.iter().any(|(c, ..)| c == code),
                "{code} is both whole and split"
            );
        }
        for (code, _, sub, _, region) in SUBDIVISIONS {
            assert_eq!(RegionCode::of_place(code, Some(sub)), Some(*region));
        }
        assert_eq!(RegionCode::of_place("DE", None), Some(RegionCode::Weu));
        assert_eq!(RegionCode::of_place("ZZ", None), None);
    }

    #[test]
    fn every_region_has_countries() {
        for r in RegionCode::ALL {
            assert!(!r.countries().is_empty(), "{r} has no countries");
        }
    }
}
