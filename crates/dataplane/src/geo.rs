//! Where a request comes from: the data plane's own locality, refined per client by an
//! optional CIDR → country/region file (longest prefix wins).

use std::collections::HashMap;
use std::net::IpAddr;

use vantage_core::region::RegionCode;
use vantage_core::steering::Context;

/// The data plane's configured place (`--proxy-pop`, `--proxy-country`, `--proxy-region`,
/// `--proxy-coordinates`).
#[derive(Debug, Clone, Default)]
pub struct Locality {
    pub pop: Option<String>,
    pub country: Option<String>,
    pub region: Option<RegionCode>,
    pub coordinates: Option<(f64, f64)>,
}

#[derive(Debug, Clone, PartialEq)]
struct Place {
    country: String,
    region: Option<RegionCode>,
}

/// Client networks by prefix length, so a lookup is one hash probe per length present.
#[derive(Debug, Default)]
pub struct GeoTable {
    v4: Vec<(u8, HashMap<u32, Place>)>,
    v6: Vec<(u8, HashMap<u128, Place>)>,
}

#[derive(Debug, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct GeoError {
    pub line: usize,
    pub message: String,
}

fn mask4(ip: u32, len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        ip & (u32::MAX << (32 - u32::from(len)))
    }
}

fn mask6(ip: u128, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        ip & (u128::MAX << (128 - u32::from(len)))
    }
}

impl GeoTable {
    /// Parses lines of `CIDR COUNTRY [REGION]` (ISO 3166-1 alpha-2, a Cloudflare region
    /// code); `#` starts a comment. The region defaults to the country's.
    pub fn parse(text: &str) -> Result<GeoTable, GeoError> {
        let mut v4: HashMap<u8, HashMap<u32, Place>> = HashMap::new();
        let mut v6: HashMap<u8, HashMap<u128, Place>> = HashMap::new();
        for (n, raw) in text.lines().enumerate() {
            let err = |message: String| GeoError {
                line: n + 1,
                message,
            };
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut words = line.split_whitespace();
            let cidr = words.next().unwrap_or("");
            let country = words
                .next()
                .ok_or_else(|| err("expected `CIDR COUNTRY [REGION]`".into()))?
                .to_ascii_uppercase();
            if !RegionCode::is_known_country(&country) {
                return Err(err(format!("unknown country code {country:?}")));
            }
            let region = match words.next() {
                Some(r) => Some(
                    r.parse::<RegionCode>()
                        .map_err(|_| err(format!("unknown region code {r:?}")))?,
                ),
                None => RegionCode::of_place(&country, None),
            };
            let (addr, len) = cidr
                .split_once('/')
                .ok_or_else(|| err(format!("{cidr:?} is not a CIDR block")))?;
            let ip: IpAddr = addr
                .parse()
                .map_err(|_| err(format!("{addr:?} is not an IP address")))?;
            let len: u8 = len
                .parse()
                .map_err(|_| err(format!("{len:?} is not a prefix length")))?;
            let place = Place { country, region };
            match ip {
                IpAddr::V4(a) if len <= 32 => {
                    v4.entry(len)
                        .or_default()
                        .insert(mask4(a.into(), len), place);
                }
                IpAddr::V6(a) if len <= 128 => {
                    v6.entry(len)
                        .or_default()
                        .insert(mask6(a.into(), len), place);
                }
                _ => return Err(err(format!("prefix length {len} is too long"))),
            }
        }
        let mut v4: Vec<_> = v4.into_iter().collect();
        let mut v6: Vec<_> = v6.into_iter().collect();
        v4.sort_by_key(|e| std::cmp::Reverse(e.0));
        v6.sort_by_key(|e| std::cmp::Reverse(e.0));
        Ok(GeoTable { v4, v6 })
    }

    fn lookup(&self, ip: IpAddr) -> Option<&Place> {
        match ip {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.v4.iter().find_map(|(len, m)| m.get(&mask4(a, *len)))
            }
            IpAddr::V6(a) => {
                if let Some(v4) = a.to_ipv4_mapped() {
                    return self.lookup(IpAddr::V4(v4));
                }
                let a = u128::from(a);
                self.v6.iter().find_map(|(len, m)| m.get(&mask6(a, *len)))
            }
        }
    }
}

/// The steering context for a client: its country and region from the table when listed,
/// else the data plane's own.
pub fn context(locality: &Locality, table: Option<&GeoTable>, client: Option<IpAddr>) -> Context {
    let place = client.and_then(|ip| table?.lookup(ip));
    let (country, region) = match place {
        Some(p) => (Some(p.country.clone()), p.region.or(locality.region)),
        None => (locality.country.clone(), locality.region),
    };
    Context {
        client_ip: client,
        pop: locality.pop.clone(),
        country,
        region,
        here: locality.coordinates,
        ..Context::default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn longest_prefix_wins_and_errors_name_the_line() {
        let t = GeoTable::parse(
            "# test\n10.0.0.0/8 US\n10.1.0.0/16 DE WEU\n2001:db8::/32 JP\n0.0.0.0/0 BR # default\n",
        )
        .unwrap();
        let here = Locality::default();
        let ctx = |ip: &str| context(&here, Some(&t), Some(ip.parse().unwrap()));
        assert_eq!(ctx("10.2.3.4").country.as_deref(), Some("US"));
        assert_eq!(ctx("10.1.3.4").country.as_deref(), Some("DE"));
        assert_eq!(ctx("10.1.3.4").region, Some("WEU".parse().unwrap()));
        assert_eq!(ctx("2001:db8::1").country.as_deref(), Some("JP"));
        assert_eq!(ctx("::ffff:10.1.0.1").country.as_deref(), Some("DE"));
        assert_eq!(ctx("192.0.2.1").country.as_deref(), Some("BR"));
        assert_eq!(ctx("2002::1").country, None);
        let e = GeoTable::parse("10.0.0.0/8 US\n10.0.0.0/33 US\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(GeoTable::parse("10.0.0.0/8 XX\n").is_err());
    }
}
