//! Pools of origins and the rules that keep them well-formed.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::choice::choose;
use crate::monitor::Headers;
use crate::name::{is_header_value, is_origin_address, is_pool_name};
use crate::region::{CheckRegions, RegionCode};
use crate::violation::{in_range, Path, Violations};
use crate::{AccountId, MonitorGroupId, MonitorId, PoolId, Timestamp};

pub const MAX_ORIGINS: usize = 64;

/// An origin's share of traffic in hundredths (0..=100), so that `0.01` steps are exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Weight(u8);

impl Weight {
    pub const ONE: Weight = Weight(100);

    pub fn from_f64(w: f64) -> Option<Weight> {
        let hundredths = w * 100.0;
        let rounded = hundredths.round();
        ((0.0..=1.0).contains(&w) && (hundredths - rounded).abs() < 1e-6)
            .then_some(Weight(rounded as u8))
    }

    /// `None` beyond 100 (a whole share).
    pub fn from_hundredths(h: u8) -> Option<Weight> {
        (h <= 100).then_some(Weight(h))
    }

    pub fn hundredths(self) -> u8 {
        self.0
    }

    pub fn as_f64(self) -> f64 {
        f64::from(self.0) / 100.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginSpec {
    pub name: String,
    pub address: String,
    pub enabled: bool,
    pub weight: Weight,
    pub port: u16,
    /// The `Host` override, the only header an origin may carry.
    pub host: Option<String>,
    /// When the origin was last disabled, kept while it stays disabled (set by the catalog,
    /// never by a client): a load balancer's `drain_duration` counts from it.
    pub disabled_at: Option<Timestamp>,
}

crate::string_enum!(OriginSteeringPolicy {
    Random = "random",
    Hash = "hash",
    LeastOutstandingRequests = "least_outstanding_requests",
    LeastConnections = "least_connections",
});

crate::string_enum!(SheddingPolicy {
    Random = "random",
    Hash = "hash",
});

#[derive(Debug, Clone, PartialEq)]
pub struct LoadShedding {
    pub default_percent: f64,
    pub default_policy: SheddingPolicy,
    pub session_percent: f64,
    pub session_policy: SheddingPolicy,
}

impl Default for LoadShedding {
    fn default() -> Self {
        Self {
            default_percent: 0.0,
            default_policy: SheddingPolicy::Random,
            session_percent: 0.0,
            session_policy: SheddingPolicy::Hash,
        }
    }
}

/// Which health notifications a pool sends: `disable` silences one kind; `healthy` limits it
/// to changes towards that state (`None`: both directions).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NotificationRule {
    pub disable: bool,
    pub healthy: Option<bool>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NotificationFilter {
    pub origin: NotificationRule,
    pub pool: NotificationRule,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PoolSpec {
    pub name: String,
    pub origins: Vec<OriginSpec>,
    pub minimum_origins: u16,
    pub monitor: Option<MonitorId>,
    /// Judged by a monitor group instead of `monitor` (never both).
    pub monitor_group: Option<MonitorGroupId>,
    pub check_regions: CheckRegions,
    pub enabled: bool,
    pub description: String,
    pub coordinates: Option<(f64, f64)>,
    pub origin_steering: OriginSteeringPolicy,
    pub load_shedding: LoadShedding,
    pub notification_email: String,
    /// `None` when the client set it to `null`.
    pub notification_filter: Option<NotificationFilter>,
}

/// What judges a pool, as the draft names it: resolved against the catalog, which knows
/// whether the monitor or group exists in the account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckRefs {
    pub monitor: Option<String>,
    pub monitor_group: Option<String>,
}

impl CheckRefs {
    pub fn monitor(id: impl ToString) -> CheckRefs {
        CheckRefs {
            monitor: Some(id.to_string()),
            monitor_group: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    pub id: PoolId,
    pub account: AccountId,
    pub spec: PoolSpec,
    pub created_on: Timestamp,
    pub modified_on: Timestamp,
    /// When the pool was last disabled; kept while it stays disabled.
    pub disabled_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct OriginDraft {
    pub name: Option<String>,
    pub address: Option<String>,
    pub enabled: Option<bool>,
    pub weight: Option<f64>,
    pub port: Option<i64>,
    pub header: Option<Headers>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadSheddingDraft {
    pub default_percent: Option<f64>,
    pub default_policy: Option<String>,
    pub session_percent: Option<f64>,
    pub session_policy: Option<String>,
}

/// A field whose `null` means something other than its absence.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Field<T> {
    #[default]
    Absent,
    Null,
    Value(T),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PoolDraft {
    pub name: Option<String>,
    pub origins: Option<Vec<OriginDraft>>,
    pub minimum_origins: Option<i64>,
    /// The monitor id as given; its existence is checked against the catalog.
    pub monitor: Option<String>,
    /// The monitor group id as given, likewise.
    pub monitor_group: Option<String>,
    pub check_regions: Option<Vec<String>>,
    pub enabled: Option<bool>,
    pub description: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub origin_steering_policy: Option<String>,
    pub load_shedding: Option<LoadSheddingDraft>,
    pub notification_email: Option<String>,
    pub notification_filter: Field<NotificationFilter>,
}

fn percent(v: &mut Violations, path: Path, name: &str, raw: Option<f64>) -> f64 {
    let value = raw.unwrap_or(0.0);
    let checked = in_range(&path, name, value, 0.0, 100.0);
    v.take(checked, 0.0)
}

/// The longest origin name accepted, in characters.
pub const MAX_ORIGIN_NAME: usize = 256;

impl OriginDraft {
    fn validate(self, v: &mut Violations, at: &Path) -> OriginSpec {
        let name = self.name.unwrap_or_default();
        if name.is_empty() {
            v.push(at.key("name"), "origin name is required");
        } else if name.chars().any(char::is_control) || name.chars().count() > MAX_ORIGIN_NAME {
            // Names reach terminals (`vantage status`), logs and metric labels: a control
            // character there could forge output in front of an operator.
            v.push(
                at.key("name"),
                format!(
                    "origin name must be 1-{MAX_ORIGIN_NAME} characters without control characters"
                ),
            );
        }
        let address = self.address.unwrap_or_default();
        if !is_origin_address(&address) {
            v.push(
                at.key("address"),
                format!("address {address:?} is not an IP address or host name"),
            );
        }
        let weight = match self.weight {
            None => Weight::ONE,
            Some(w) => Weight::from_f64(w).unwrap_or_else(|| {
                v.push(
                    at.key("weight"),
                    "weight must be between 0 and 1 in steps of 0.01",
                );
                Weight::ONE
            }),
        };
        let port = self.port.unwrap_or(0);
        let port = match u16::try_from(port) {
            Ok(p) => p,
            Err(_) => {
                v.push(at.key("port"), "port is not in range [0, 65535]");
                0
            }
        };
        let mut host = None;
        for (name, values) in self.header.unwrap_or_default() {
            let hp = at.key("header").key(name.clone());
            if !name.eq_ignore_ascii_case("host") {
                v.push(
                    hp,
                    format!("only the Host header can be set on an origin, not {name:?}"),
                );
            } else if values.len() != 1 {
                v.push(hp, "the Host header takes exactly one value");
            } else if !is_header_value(&values[0]) || values[0].is_empty() {
                v.push(
                    hp.index(0),
                    "the Host header value must be a non-empty header value",
                );
            } else {
                host = values.into_iter().next();
            }
        }
        OriginSpec {
            name,
            address,
            enabled: self.enabled.unwrap_or(true),
            weight,
            port,
            host,
            disabled_at: None,
        }
    }
}

impl PoolDraft {
    /// Applies defaults and every rule that concerns the pool alone; the caller resolves the
    /// monitor reference and name uniqueness against the catalog.
    pub fn validate(self) -> Result<(PoolSpec, CheckRefs), Violations> {
        let root = Path::root();
        let mut v = Violations::default();

        let name = self.name.unwrap_or_default();
        if name.is_empty() {
            v.push(root.key("name"), "name is required");
        } else if !is_pool_name(&name) {
            v.push(
                root.key("name"),
                "name may contain only letters, digits, \"_\" and \"-\"",
            );
        }

        let drafts = self.origins.unwrap_or_default();
        if drafts.is_empty() || drafts.len() > MAX_ORIGINS {
            v.push(
                root.key("origins"),
                format!("origins must have between 1 and {MAX_ORIGINS} entries"),
            );
        }
        let origins_path = root.key("origins");
        let origins: Vec<OriginSpec> = drafts
            .into_iter()
            .enumerate()
            .map(|(i, o)| o.validate(&mut v, &origins_path.index(i)))
            .collect();
        let mut seen = BTreeSet::new();
        for (i, o) in origins.iter().enumerate() {
            if !o.name.is_empty() && !seen.insert(o.name.as_str()) {
                v.push(
                    origins_path.index(i).key("name"),
                    format!("origin name {:?} is used twice in this pool", o.name),
                );
            }
        }

        let minimum_origins = self.minimum_origins.unwrap_or(1);
        let checked = in_range(
            &root.key("minimum_origins"),
            "minimum_origins",
            minimum_origins,
            1,
            MAX_ORIGINS as i64,
        );
        let minimum_origins = v.take(checked, 1) as u16;

        let check_regions = match self.check_regions {
            None => CheckRegions::AllLocations,
            Some(list) if list.len() == 1 && list[0] == "ALL_REGIONS" => CheckRegions::AllRegions,
            Some(list) => {
                let mut regions = Vec::new();
                for (i, code) in list.iter().enumerate() {
                    match code.parse::<RegionCode>() {
                        Ok(r) if !regions.contains(&r) => regions.push(r),
                        Ok(_) => {}
                        Err(_) => v.push(
                            root.key("check_regions").index(i),
                            format!("{code:?} is not a region code (or ALL_REGIONS alone)"),
                        ),
                    }
                }
                if list.is_empty() {
                    v.push(
                        root.key("check_regions"),
                        "check_regions must name at least one region, or be null",
                    );
                }
                CheckRegions::Regions(regions)
            }
        };

        let coordinates = match (self.latitude, self.longitude) {
            (None, None) => None,
            (Some(lat), Some(lon)) => {
                let lat = in_range(&root.key("latitude"), "latitude", lat, -90.0, 90.0);
                let lat = v.take(lat, 0.0);
                let lon = in_range(&root.key("longitude"), "longitude", lon, -180.0, 180.0);
                let lon = v.take(lon, 0.0);
                Some((lat, lon))
            }
            (Some(_), None) => {
                v.push(
                    root.key("longitude"),
                    "latitude and longitude must be given together",
                );
                None
            }
            (None, Some(_)) => {
                v.push(
                    root.key("latitude"),
                    "latitude and longitude must be given together",
                );
                None
            }
        };

        let origin_steering = choose(
            &mut v,
            root.key("origin_steering").key("policy"),
            self.origin_steering_policy.as_deref(),
            OriginSteeringPolicy::Random,
        );

        let ls = self.load_shedding.unwrap_or_default();
        let lsp = root.key("load_shedding");
        let load_shedding = LoadShedding {
            default_percent: percent(
                &mut v,
                lsp.key("default_percent"),
                "default_percent",
                ls.default_percent,
            ),
            default_policy: choose(
                &mut v,
                lsp.key("default_policy"),
                ls.default_policy.as_deref(),
                SheddingPolicy::Random,
            ),
            session_percent: percent(
                &mut v,
                lsp.key("session_percent"),
                "session_percent",
                ls.session_percent,
            ),
            session_policy: choose(
                &mut v,
                lsp.key("session_policy"),
                ls.session_policy.as_deref(),
                SheddingPolicy::Hash,
            ),
        };

        // Sessions are pinned to a client, so only a draw by client address sheds the same
        // ones every time (Cloudflare allows `hash` alone for them).
        if load_shedding.session_percent > 0.0
            && load_shedding.session_policy != SheddingPolicy::Hash
        {
            v.push(
                lsp.key("session_policy"),
                "session_policy must be \"hash\": sessions are shed by client address",
            );
        }
        let notification_filter = match self.notification_filter {
            Field::Absent => Some(NotificationFilter::default()),
            Field::Null => None,
            Field::Value(f) => Some(f),
        };

        let description = self.description.unwrap_or_default();
        if description.chars().count() > crate::monitor::MAX_DESCRIPTION {
            v.push(
                root.key("description"),
                "description is longer than 1024 characters",
            );
        }

        let spec = PoolSpec {
            name,
            origins,
            minimum_origins,
            monitor: None,
            monitor_group: None,
            check_regions,
            enabled: self.enabled.unwrap_or(true),
            description,
            coordinates,
            origin_steering,
            load_shedding,
            notification_email: self.notification_email.unwrap_or_default(),
            notification_filter,
        };
        let checks = CheckRefs {
            monitor: self.monitor.filter(|m| !m.is_empty()),
            monitor_group: self.monitor_group.filter(|m| !m.is_empty()),
        };
        if checks.monitor.is_some() && checks.monitor_group.is_some() {
            v.push(
                root.key("monitor_group"),
                "a pool is judged by a monitor or by a monitor group, not both",
            );
        }
        v.finish((spec, checks))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(name: &str, address: &str) -> OriginDraft {
        OriginDraft {
            name: Some(name.into()),
            address: Some(address.into()),
            ..Default::default()
        }
    }

    fn draft() -> PoolDraft {
        PoolDraft {
            name: Some("primary".into()),
            origins: Some(vec![
                origin("a", "192.0.2.1"),
                origin("b", "origin.example.com"),
            ]),
            ..Default::default()
        }
    }

    fn pointers(err: Violations) -> Vec<String> {
        err.iter().map(|v| v.path.to_pointer()).collect()
    }

    #[test]
    fn origin_names_refuse_control_characters() {
        for bad in ["a\u{1b}[2Kb", "line\nforged", &"x".repeat(257)] {
            let mut d = draft();
            d.origins = Some(vec![origin(bad, "192.0.2.1")]);
            assert_eq!(pointers(d.validate().unwrap_err()), ["/origins/0/name"]);
        }
        let mut d = draft();
        d.origins = Some(vec![origin("café ✔", "192.0.2.1")]);
        assert!(d.validate().is_ok(), "non-ASCII text is fine");
    }

    #[test]
    fn defaults() {
        let (spec, checks) = draft().validate().unwrap();
        assert_eq!(checks, CheckRefs::default());
        assert_eq!(spec.minimum_origins, 1);
        assert_eq!(spec.check_regions, CheckRegions::AllLocations);
        assert!(spec.enabled);
        assert_eq!(spec.origins[0].weight, Weight::ONE);
        assert_eq!(
            spec.notification_filter,
            Some(NotificationFilter::default())
        );
        assert_eq!(spec.load_shedding, LoadShedding::default());
    }

    #[test]
    fn origin_rules_with_pointers() {
        let mut d = draft();
        d.origins = Some(vec![
            OriginDraft {
                weight: Some(0.505),
                ..origin("a", "300.1.1.1")
            },
            OriginDraft {
                header: Some([("X-Foo".to_owned(), vec!["1".to_owned()])].into()),
                ..origin("a", "::1")
            },
        ]);
        d.latitude = Some(10.0);
        d.check_regions = Some(vec!["WEU".into(), "MARS".into()]);
        assert_eq!(
            pointers(d.validate().unwrap_err()),
            [
                "/origins/0/address",
                "/origins/0/weight",
                "/origins/1/header/X-Foo",
                "/origins/1/name",
                "/check_regions/1",
                "/longitude"
            ]
        );
    }

    #[test]
    fn weights_in_hundredths() {
        assert_eq!(Weight::from_f64(0.01).map(Weight::hundredths), Some(1));
        assert_eq!(Weight::from_f64(0.29).map(Weight::hundredths), Some(29));
        assert_eq!(Weight::from_f64(1.01), None);
        assert_eq!(Weight::from_f64(-0.0).map(Weight::hundredths), Some(0));
    }
}
