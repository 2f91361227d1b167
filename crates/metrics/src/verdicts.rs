//! The verdict gauges (`vantage_pool_healthy`, `vantage_origin_healthy`,
//! `vantage_origin_region_healthy`), written straight from the engine's view at scrape time.
//!
//! They are the only series that grow with the configuration: one per origin and one per
//! origin and region. Copied into `prometheus_client` label sets and encoded, 100,000 origins
//! cost about 70 MB for each scrape (their label strings three times over, the families' maps
//! and the growing text), which was most of a bulk load's peak memory. Here nothing is
//! copied: the view is visited once per family and each sample written as it is met, in the
//! same text `prometheus_client` writes (a unit test compares them).

use std::fmt::{self, Display, Write};

/// One known verdict the exposition shows (unknown verdicts are absent).
#[derive(Clone, Copy)]
pub enum Verdict<'a> {
    Pool {
        id: &'a dyn Display,
        name: &'a str,
        healthy: bool,
    },
    Origin {
        pool: &'a str,
        origin: &'a str,
        address: &'a str,
        healthy: bool,
    },
    Region {
        pool: &'a str,
        origin: &'a str,
        region: &'a dyn Display,
        healthy: bool,
    },
}

impl fmt::Debug for Verdict<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Pool { id, name, healthy } => write!(f, "pool {name} ({id}): {healthy}"),
            Verdict::Origin {
                pool,
                origin,
                address,
                healthy,
            } => write!(f, "origin {pool}/{origin} ({address}): {healthy}"),
            Verdict::Region {
                pool,
                origin,
                region,
                healthy,
            } => write!(f, "origin {pool}/{origin} in {region}: {healthy}"),
        }
    }
}

/// The verdicts at scrape time. [`Verdicts::visit`] is called once per family, so it must
/// visit the same verdicts each time: implement it over an immutable view.
pub trait Verdicts: Send + Sync {
    fn visit(&self, f: &mut dyn FnMut(Verdict<'_>));
}

impl Verdict<'_> {
    /// Its family's index in [`FAMILIES`].
    fn family(&self) -> usize {
        match self {
            Verdict::Pool { .. } => 0,
            Verdict::Origin { .. } => 1,
            Verdict::Region { .. } => 2,
        }
    }
}

/// Each family's name and help, in the order [`Verdict::family`] numbers them.
const FAMILIES: [(&str, &str); 3] = [
    (
        "vantage_pool_healthy",
        "1 when the pool is healthy, 0 when not (unknown pools are absent)",
    ),
    (
        "vantage_origin_healthy",
        "1 when the origin is healthy, 0 when not",
    ),
    (
        "vantage_origin_region_healthy",
        "An origin's verdict from one checking region (majority of its locations)",
    ),
];

/// Writes the three families of `verdicts` to `out`, each with its `HELP` and `TYPE` lines:
/// a family's samples must be together, so the verdicts are visited once per family.
pub(crate) fn write(out: &mut dyn Write, verdicts: &dyn Verdicts) -> fmt::Result {
    for (family, (name, help)) in FAMILIES.into_iter().enumerate() {
        writeln!(out, "# HELP {name} {help}.")?;
        writeln!(out, "# TYPE {name} gauge")?;
        let mut result = Ok(());
        verdicts.visit(&mut |v| {
            if result.is_ok() && v.family() == family {
                result = sample(out, name, v);
            }
        });
        result?;
    }
    Ok(())
}

fn sample(out: &mut dyn Write, family: &str, v: Verdict<'_>) -> fmt::Result {
    let (labels, healthy): (&[(&str, &dyn Display)], bool) = match &v {
        Verdict::Pool { id, name, healthy } => (&[("pool", name), ("pool_id", *id)], *healthy),
        Verdict::Origin {
            pool,
            origin,
            address,
            healthy,
        } => (
            &[("pool", pool), ("origin", origin), ("address", address)],
            *healthy,
        ),
        Verdict::Region {
            pool,
            origin,
            region,
            healthy,
        } => (
            &[("pool", pool), ("origin", origin), ("region", *region)],
            *healthy,
        ),
    };
    out.write_str(family)?;
    for (i, (label, value)) in labels.iter().enumerate() {
        out.write_char(if i == 0 { '{' } else { ',' })?;
        write!(out, "{label}=\"")?;
        write!(Escaped(&mut *out), "{value}")?;
        out.write_char('"')?;
    }
    writeln!(out, "}} {}", u8::from(healthy))
}

/// Escapes a label value as the text format requires: `\`, `"` and line feeds.
struct Escaped<'w>(&'w mut dyn Write);

impl Write for Escaped<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some(at) = rest.find(['\\', '"', '\n']) {
            self.0.write_str(&rest[..at])?;
            self.0.write_str(match rest.as_bytes()[at] {
                b'\\' => "\\\\",
                b'"' => "\\\"",
                _ => "\\n",
            })?;
            rest = &rest[at + 1..];
        }
        self.0.write_str(rest)
    }
}

/// Verdicts as plain values (`None`: unknown, not exported), for tests.
#[cfg(test)]
pub(crate) mod plain {
    use super::{Verdict, Verdicts};

    #[derive(Debug, Clone, Default)]
    pub struct PoolState {
        pub id: String,
        pub name: String,
        pub healthy: Option<bool>,
        pub origins: Vec<OriginState>,
    }

    #[derive(Debug, Clone, Default)]
    pub struct OriginState {
        pub name: String,
        pub address: String,
        pub healthy: Option<bool>,
        /// Per checking region.
        pub regions: Vec<(String, Option<bool>)>,
    }

    impl Verdicts for Vec<PoolState> {
        fn visit(&self, f: &mut dyn FnMut(Verdict<'_>)) {
            for p in self {
                if let Some(healthy) = p.healthy {
                    f(Verdict::Pool {
                        id: &p.id,
                        name: &p.name,
                        healthy,
                    });
                }
                for o in &p.origins {
                    if let Some(healthy) = o.healthy {
                        f(Verdict::Origin {
                            pool: &p.name,
                            origin: &o.name,
                            address: &o.address,
                            healthy,
                        });
                    }
                    for (region, healthy) in &o.regions {
                        if let Some(healthy) = *healthy {
                            f(Verdict::Region {
                                pool: &p.name,
                                origin: &o.name,
                                region,
                                healthy,
                            });
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::encoding::EncodeLabelSet;
    use prometheus_client::metrics::family::Family as Series;
    use prometheus_client::metrics::gauge::Gauge;
    use prometheus_client::registry::Registry;

    use super::plain::{OriginState, PoolState};
    use super::*;

    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct PoolLabels {
        pool: String,
        pool_id: String,
    }

    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct OriginLabels {
        pool: String,
        origin: String,
        address: String,
    }

    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct RegionLabels {
        pool: String,
        origin: String,
        region: String,
    }

    /// A family of one gauge: `labels` at the known verdict `healthy`.
    fn one<L>(labels: L, healthy: Option<bool>) -> Series<L, Gauge>
    where
        L: Clone + std::hash::Hash + Eq + prometheus_client::encoding::EncodeLabelSet,
    {
        let family = Series::<L, Gauge>::default();
        family
            .get_or_create(&labels)
            .set(i64::from(healthy.expect("a known verdict")));
        family
    }

    /// What `prometheus_client` writes for the same verdicts (one sample per family, so its
    /// map's order cannot differ from the visit's).
    fn reference(p: &PoolState) -> String {
        let o = &p.origins[0];
        let (region, in_region) = &o.regions[0];
        let mut registry = Registry::with_prefix("vantage");
        let pools = one(
            PoolLabels {
                pool: p.name.clone(),
                pool_id: p.id.clone(),
            },
            p.healthy,
        );
        let origins = one(
            OriginLabels {
                pool: p.name.clone(),
                origin: o.name.clone(),
                address: o.address.clone(),
            },
            o.healthy,
        );
        let regions = one(
            RegionLabels {
                pool: p.name.clone(),
                origin: o.name.clone(),
                region: region.clone(),
            },
            *in_region,
        );
        registry.register("pool_healthy", FAMILIES[0].1, pools);
        registry.register("origin_healthy", FAMILIES[1].1, origins);
        registry.register("origin_region_healthy", FAMILIES[2].1, regions);
        let mut out = String::new();
        prometheus_client::encoding::text::encode_registry(&mut out, &registry).unwrap();
        out
    }

    #[test]
    fn the_same_text_as_prometheus_client_with_label_values_escaped() {
        let pools = vec![PoolState {
            id: "0123abcd".into(),
            name: "a \"quoted\" \\ pool\nname".into(),
            healthy: Some(true),
            origins: vec![OriginState {
                name: "ørigin \\".into(),
                address: "10.0.0.1".into(),
                healthy: Some(false),
                regions: vec![("WNAM".into(), Some(true))],
            }],
        }];
        let mut out = String::new();
        write(&mut out, &pools).unwrap();
        assert_eq!(out, reference(&pools[0]));
        assert!(
            out.contains(r#"pool="a \"quoted\" \\ pool\nname""#),
            "{out}"
        );
    }

    #[test]
    fn unknown_verdicts_are_absent_and_every_known_one_is_written_once() {
        let origin = |name: &str, healthy| OriginState {
            name: name.into(),
            address: "192.0.2.1".into(),
            healthy,
            regions: vec![("WNAM".into(), healthy), ("ENAM".into(), None)],
        };
        let pools = vec![
            PoolState {
                id: "p1".into(),
                name: "one".into(),
                healthy: None,
                origins: vec![origin("a", Some(true)), origin("b", None)],
            },
            PoolState {
                id: "p2".into(),
                name: "two".into(),
                healthy: Some(false),
                origins: vec![origin("c", Some(false))],
            },
        ];
        let mut out = String::new();
        write(&mut out, &pools).unwrap();
        let samples: Vec<&str> = out.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            samples,
            [
                r#"vantage_pool_healthy{pool="two",pool_id="p2"} 0"#,
                r#"vantage_origin_healthy{pool="one",origin="a",address="192.0.2.1"} 1"#,
                r#"vantage_origin_healthy{pool="two",origin="c",address="192.0.2.1"} 0"#,
                r#"vantage_origin_region_healthy{pool="one",origin="a",region="WNAM"} 1"#,
                r#"vantage_origin_region_healthy{pool="two",origin="c",region="WNAM"} 0"#,
            ]
        );
    }
}
