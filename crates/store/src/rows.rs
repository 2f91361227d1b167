//! Stored row documents, version 1: the shapes every store writes and reads, owned here
//! rather than borrowed from the core model.
//!
//! Rows outlive the binary that wrote them. The core's types are free to change (a field
//! renamed, an enum variant added); these are not. Each conversion below is an exhaustive
//! match or a struct literal, so a change to the core that the stored shape does not cover
//! fails to compile here instead of silently writing a new shape that old data no longer
//! loads as. The stored text of every kind is pinned by `store-sqlite/tests/golden/rows.json`.
//!
//! Changing a shape means a `v2` module beside this one and a store migration that rewrites
//! the rows (the migration number is the row version a store holds).
//!
//! Identifiers and timestamps are kept in their value types' canonical encodings (32 hex
//! digits, Unix microseconds): those encodings are the types' own contract, fixed since the
//! first schema.
//!
//! Field order matters for the probe-target and location documents: their text is a key in
//! the `location_states` table, so it must come out byte for byte as it always did.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use vantage_core::account::Account;
use vantage_core::auth::{self, AgentBinding, Grant, SecretDigest, Token, User};
use vantage_core::catalog::Change;
use vantage_core::health::check::{self, CheckResult};
use vantage_core::health::engine::{Event, LocationContact, OriginEvent};
use vantage_core::health::{
    Decided, DecidedOrigin, Location, LocationState, ProbeKey, RegionVerdicts, Verdict,
};
use vantage_core::load_balancer::{self as lb, AffinityAttributes, LoadBalancer, LoadBalancerSpec};
use vantage_core::monitor::{self, ExpectedCodes, Monitor, MonitorSpec};
use vantage_core::monitor_group::{Member, MonitorGroup, Role};
use vantage_core::notification::{
    self as note, Policy, PolicyFilters, PolicySpec, Webhook, WebhookSpec,
};
use vantage_core::pool::{
    self, LoadShedding, NotificationFilter, NotificationRule, OriginSpec, Pool, PoolSpec, Weight,
};
use vantage_core::region::{self, CheckRegions};
use vantage_core::routing::PoolRtt;
use vantage_core::rules::{Condition, FixedResponse, Mode, Overrides, Rule, Rules};
use vantage_core::zone::Zone;
use vantage_core::{
    AccountId, LoadBalancerId, MonitorGroupId, MonitorId, PolicyId, PoolId, Timestamp, TokenId,
    UserId, WebhookId, ZoneId,
};

use crate::StoreError;

/// A stored value that no longer makes a valid core value (edited by hand, or written by a
/// build with a bug); the store reports which row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadRow(pub String);

use vantage_core::mirror_enum as row_enum;

row_enum!(RegionRow <=> region::RegionCode {
    Wnam, Enam, Weu, Eeu, Nsam, Ssam, Oc, Me, Naf, Saf, Sas, Seas, Neas,
});
row_enum!(MonitorTypeRow <=> monitor::MonitorType { Http, Https, Tcp, UdpIcmp, IcmpPing, Smtp });
row_enum!(OriginSteeringRow <=> pool::OriginSteeringPolicy {
    Random, Hash, LeastOutstandingRequests, LeastConnections,
});
row_enum!(SheddingPolicyRow <=> pool::SheddingPolicy { Random, Hash });
row_enum!(SteeringPolicyRow <=> lb::SteeringPolicy {
    Unset, Off, Geo, Random, DynamicLatency, Proximity, LeastOutstandingRequests, LeastConnections,
});
row_enum!(SessionAffinityRow <=> lb::SessionAffinity { None, Cookie, IpCookie, Header });
row_enum!(SameSiteRow <=> lb::SameSite { Auto, Lax, None, Strict });
row_enum!(SecureRow <=> lb::Secure { Auto, Always, Never });
row_enum!(ZeroDowntimeFailoverRow <=> lb::ZeroDowntimeFailover { None, Temporary, Sticky });
row_enum!(LocationModeRow <=> lb::LocationMode { Pop, ResolverIp });
row_enum!(PreferEcsRow <=> lb::PreferEcs { Always, Never, Proximity, Geo });
row_enum!(EventSourceRow <=> note::EventSource { Pool, Origin });
row_enum!(NewHealthRow <=> note::NewHealth { Healthy, Unhealthy });
row_enum!(AlertTypeRow <=> note::AlertType { LoadBalancingHealth });
row_enum!(PermissionRow <=> auth::Permission {
    MonitorsPoolsRead, MonitorsPoolsWrite, LoadBalancersRead, LoadBalancersWrite, ZoneRead,
    ZoneWrite,
});
row_enum!(TokenStatusRow <=> auth::TokenStatus { Active, Disabled, Revoked });
row_enum!(TokenKindRow <=> auth::TokenKind { Api, Agent, Edge });
row_enum!(FailureReasonRow <=> check::FailureReason {
    None, TcpConnectionFailed, TcpTimeout, HttpTimeout, ResponseCodeMismatch,
    ResponseBodyMismatch, TlsUntrusted, TlsNameMismatch, TlsHandshake, NoRoute,
    NetworkUnreachable, ConnectionReset, DnsUnknownHost, HttpInvalidResponse, Other,
    LocalResources,
});

impl Default for TokenKindRow {
    /// Tokens stored before agents existed are API tokens.
    fn default() -> Self {
        Self::Api
    }
}

fn map<A, B: From<A>>(v: Vec<A>) -> Vec<B> {
    v.into_iter().map(B::from).collect()
}

/// A verdict is stored as `null` (unknown), `true` or `false`.
fn verdict(v: Option<bool>) -> Verdict {
    Verdict::from(v)
}

fn stored_verdict(v: Verdict) -> Option<bool> {
    v.known()
}

/// Hex text of a fixed number of bytes (token and key digests, salts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hex<const N: usize>(pub [u8; N]);

impl<const N: usize> Serialize for Hex<N> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0))
    }
}

impl<'de, const N: usize> Deserialize<'de> for Hex<N> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let mut out = [0u8; N];
        hex::decode_to_slice(s, &mut out).map_err(serde::de::Error::custom)?;
        Ok(Self(out))
    }
}

// ---- accounts, zones, users, tokens ----

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRow {
    pub id: AccountId,
    pub name: String,
    pub created_on: Timestamp,
}

impl From<&Account> for AccountRow {
    fn from(a: &Account) -> Self {
        Self {
            id: a.id,
            name: a.name.clone(),
            created_on: a.created_on,
        }
    }
}

impl From<AccountRow> for Account {
    fn from(r: AccountRow) -> Self {
        Self {
            id: r.id,
            name: r.name,
            created_on: r.created_on,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneRow {
    pub id: ZoneId,
    pub account: AccountId,
    pub name: String,
    pub created_on: Timestamp,
    pub modified_on: Timestamp,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub overlap_allowed: bool,
}

impl From<&Zone> for ZoneRow {
    fn from(z: &Zone) -> Self {
        Self {
            id: z.id,
            account: z.account,
            name: z.name.clone(),
            created_on: z.created_on,
            modified_on: z.modified_on,
            overlap_allowed: z.overlap_allowed,
        }
    }
}

impl From<ZoneRow> for Zone {
    fn from(r: ZoneRow) -> Self {
        Self {
            id: r.id,
            account: r.account,
            name: r.name,
            created_on: r.created_on,
            modified_on: r.modified_on,
            overlap_allowed: r.overlap_allowed,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRow {
    pub id: UserId,
    pub email: String,
    pub key_digest: Hex<32>,
    pub key_salt: Hex<16>,
    pub accounts: Vec<AccountId>,
    pub created_on: Timestamp,
}

impl From<&User> for UserRow {
    fn from(u: &User) -> Self {
        Self {
            id: u.id,
            email: u.email.clone(),
            key_digest: Hex(u.key_digest.0),
            key_salt: Hex(u.key_salt),
            accounts: u.accounts.clone(),
            created_on: u.created_on,
        }
    }
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        Self {
            id: r.id,
            email: r.email,
            key_digest: SecretDigest(r.key_digest.0),
            key_salt: r.key_salt.0,
            accounts: r.accounts,
            created_on: r.created_on,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResourceRow {
    Account(AccountId),
    Zone(ZoneId),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantRow {
    pub resource: ResourceRow,
    pub permissions: Vec<PermissionRow>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LocationRow {
    pub region: RegionRow,
    pub name: String,
}

impl From<&Location> for LocationRow {
    fn from(l: &Location) -> Self {
        Self {
            region: l.region.into(),
            name: l.name.clone(),
        }
    }
}

impl From<LocationRow> for Location {
    fn from(r: LocationRow) -> Self {
        Self {
            region: r.region.into(),
            name: r.name,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentBindingRow {
    pub location: LocationRow,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<AccountId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRow {
    pub id: TokenId,
    pub name: String,
    pub digest: Hex<32>,
    pub status: TokenStatusRow,
    pub grants: Vec<GrantRow>,
    pub issued_on: Timestamp,
    pub modified_on: Timestamp,
    pub expires_on: Option<Timestamp>,
    #[serde(default)]
    pub kind: TokenKindRow,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentBindingRow>,
}

impl From<&Token> for TokenRow {
    fn from(t: &Token) -> Self {
        Self {
            id: t.id,
            name: t.name.clone(),
            digest: Hex(t.digest.0),
            status: t.status.into(),
            grants: t
                .grants
                .iter()
                .map(|g| GrantRow {
                    resource: match g.resource {
                        auth::Resource::Account(a) => ResourceRow::Account(a),
                        auth::Resource::Zone(z) => ResourceRow::Zone(z),
                    },
                    permissions: g.permissions.iter().map(|&p| p.into()).collect(),
                })
                .collect(),
            issued_on: t.issued_on,
            modified_on: t.modified_on,
            expires_on: t.expires_on,
            kind: t.kind.into(),
            agent: t.agent.as_ref().map(|b| AgentBindingRow {
                location: (&b.location).into(),
                accounts: b.accounts.clone(),
            }),
        }
    }
}

impl From<TokenRow> for Token {
    fn from(r: TokenRow) -> Self {
        Self {
            id: r.id,
            name: r.name,
            digest: SecretDigest(r.digest.0),
            status: r.status.into(),
            grants: r
                .grants
                .into_iter()
                .map(|g| Grant {
                    resource: match g.resource {
                        ResourceRow::Account(a) => auth::Resource::Account(a),
                        ResourceRow::Zone(z) => auth::Resource::Zone(z),
                    },
                    permissions: map(g.permissions),
                })
                .collect(),
            issued_on: r.issued_on,
            modified_on: r.modified_on,
            expires_on: r.expires_on,
            kind: r.kind.into(),
            agent: r.agent.map(|b| AgentBinding {
                location: b.location.into(),
                accounts: b.accounts,
            }),
        }
    }
}

// ---- monitor groups ----

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRow {
    pub monitor: MonitorId,
    pub enabled: bool,
    pub must_be_healthy: bool,
    pub monitoring_only: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorGroupRow {
    pub id: MonitorGroupId,
    pub account: AccountId,
    pub description: String,
    pub members: Vec<MemberRow>,
    pub created_on: Timestamp,
    pub modified_on: Timestamp,
}

impl From<&MonitorGroup> for MonitorGroupRow {
    fn from(g: &MonitorGroup) -> Self {
        Self {
            id: g.id,
            account: g.account,
            description: g.description.clone(),
            members: g
                .members
                .iter()
                .map(|m| MemberRow {
                    monitor: m.monitor,
                    enabled: m.enabled,
                    must_be_healthy: m.role.must_be_healthy,
                    monitoring_only: m.role.monitoring_only,
                    created_at: m.created_at,
                    updated_at: m.updated_at,
                })
                .collect(),
            created_on: g.created_on,
            modified_on: g.modified_on,
        }
    }
}

impl From<MonitorGroupRow> for MonitorGroup {
    fn from(r: MonitorGroupRow) -> Self {
        Self {
            id: r.id,
            account: r.account,
            description: r.description,
            members: r
                .members
                .into_iter()
                .map(|m| Member {
                    monitor: m.monitor,
                    enabled: m.enabled,
                    role: Role {
                        must_be_healthy: m.must_be_healthy,
                        monitoring_only: m.monitoring_only,
                    },
                    created_at: m.created_at,
                    updated_at: m.updated_at,
                })
                .collect(),
            created_on: r.created_on,
            modified_on: r.modified_on,
        }
    }
}

// ---- monitors ----

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorSpecRow {
    pub kind: MonitorTypeRow,
    /// Added with case-insensitive types; absent when the type was written in lower case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind_as_written: Option<String>,
    pub method: String,
    pub path: String,
    pub header: BTreeMap<String, Vec<String>>,
    pub port: u16,
    pub timeout: u8,
    pub retries: u8,
    pub interval: u16,
    pub expected_codes: Option<String>,
    pub expected_body: String,
    pub follow_redirects: bool,
    pub allow_insecure: bool,
    pub consecutive_up: u8,
    pub consecutive_down: u8,
    pub probe_zone: String,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorRow {
    pub id: MonitorId,
    pub account: AccountId,
    pub spec: MonitorSpecRow,
    pub created_on: Timestamp,
    pub modified_on: Timestamp,
}

impl From<&Monitor> for MonitorRow {
    fn from(m: &Monitor) -> Self {
        let s = &m.spec;
        Self {
            id: m.id,
            account: m.account,
            spec: MonitorSpecRow {
                kind: s.kind.into(),
                kind_as_written: s.kind_as_written.clone(),
                method: s.method.clone(),
                path: s.path.clone(),
                header: s.header.clone(),
                port: s.port,
                timeout: s.timeout,
                retries: s.retries,
                interval: s.interval,
                expected_codes: s.expected_codes.as_ref().map(ToString::to_string),
                expected_body: s.expected_body.clone(),
                follow_redirects: s.follow_redirects,
                allow_insecure: s.allow_insecure,
                consecutive_up: s.consecutive_up,
                consecutive_down: s.consecutive_down,
                probe_zone: s.probe_zone.clone(),
                description: s.description.clone(),
            },
            created_on: m.created_on,
            modified_on: m.modified_on,
        }
    }
}

impl TryFrom<MonitorRow> for Monitor {
    type Error = BadRow;

    fn try_from(r: MonitorRow) -> Result<Self, BadRow> {
        let s = r.spec;
        let expected_codes = match s.expected_codes {
            None => None,
            Some(raw) => Some(
                ExpectedCodes::parse(&raw)
                    .ok_or_else(|| BadRow(format!("expected_codes {raw:?} does not parse")))?,
            ),
        };
        Ok(Self {
            id: r.id,
            account: r.account,
            spec: MonitorSpec {
                kind: s.kind.into(),
                kind_as_written: s.kind_as_written,
                method: s.method,
                path: s.path,
                header: s.header,
                port: s.port,
                timeout: s.timeout,
                retries: s.retries,
                interval: s.interval,
                expected_codes,
                expected_body: s.expected_body,
                follow_redirects: s.follow_redirects,
                allow_insecure: s.allow_insecure,
                consecutive_up: s.consecutive_up,
                consecutive_down: s.consecutive_down,
                probe_zone: s.probe_zone,
                description: s.description,
            },
            created_on: r.created_on,
            modified_on: r.modified_on,
        })
    }
}

// ---- pools ----

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginRow {
    pub name: String,
    pub address: String,
    pub enabled: bool,
    /// Hundredths of the traffic share, 0..=100.
    pub weight: u8,
    pub port: u16,
    pub host: Option<String>,
    /// Added with draining; absent on enabled origins and rows written before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CheckRegionsRow {
    AllLocations,
    AllRegions,
    Regions(Vec<RegionRow>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadSheddingRow {
    pub default_percent: f64,
    pub default_policy: SheddingPolicyRow,
    pub session_percent: f64,
    pub session_policy: SheddingPolicyRow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationRuleRow {
    pub disable: bool,
    pub healthy: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationFilterRow {
    pub origin: NotificationRuleRow,
    pub pool: NotificationRuleRow,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolSpecRow {
    pub name: String,
    pub origins: Vec<OriginRow>,
    pub minimum_origins: u16,
    pub monitor: Option<MonitorId>,
    /// Added with monitor groups; rows without it have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor_group: Option<MonitorGroupId>,
    pub check_regions: CheckRegionsRow,
    pub enabled: bool,
    pub description: String,
    pub coordinates: Option<(f64, f64)>,
    pub origin_steering: OriginSteeringRow,
    pub load_shedding: LoadSheddingRow,
    pub notification_email: String,
    pub notification_filter: Option<NotificationFilterRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolRow {
    pub id: PoolId,
    pub account: AccountId,
    pub spec: PoolSpecRow,
    pub created_on: Timestamp,
    pub modified_on: Timestamp,
    pub disabled_at: Option<Timestamp>,
}

fn rule_row(r: NotificationRule) -> NotificationRuleRow {
    NotificationRuleRow {
        disable: r.disable,
        healthy: r.healthy,
    }
}

fn rule(r: NotificationRuleRow) -> NotificationRule {
    NotificationRule {
        disable: r.disable,
        healthy: r.healthy,
    }
}

impl From<&Pool> for PoolRow {
    fn from(p: &Pool) -> Self {
        let s = &p.spec;
        Self {
            id: p.id,
            account: p.account,
            spec: PoolSpecRow {
                name: s.name.clone(),
                origins: s
                    .origins
                    .iter()
                    .map(|o| OriginRow {
                        name: o.name.clone(),
                        address: o.address.clone(),
                        enabled: o.enabled,
                        weight: o.weight.hundredths(),
                        port: o.port,
                        host: o.host.clone(),
                        disabled_at: o.disabled_at,
                    })
                    .collect(),
                minimum_origins: s.minimum_origins,
                monitor: s.monitor,
                monitor_group: s.monitor_group,
                check_regions: match &s.check_regions {
                    CheckRegions::AllLocations => CheckRegionsRow::AllLocations,
                    CheckRegions::AllRegions => CheckRegionsRow::AllRegions,
                    CheckRegions::Regions(r) => {
                        CheckRegionsRow::Regions(r.iter().map(|&c| c.into()).collect())
                    }
                },
                enabled: s.enabled,
                description: s.description.clone(),
                coordinates: s.coordinates,
                origin_steering: s.origin_steering.into(),
                load_shedding: LoadSheddingRow {
                    default_percent: s.load_shedding.default_percent,
                    default_policy: s.load_shedding.default_policy.into(),
                    session_percent: s.load_shedding.session_percent,
                    session_policy: s.load_shedding.session_policy.into(),
                },
                notification_email: s.notification_email.clone(),
                notification_filter: s.notification_filter.map(|f| NotificationFilterRow {
                    origin: rule_row(f.origin),
                    pool: rule_row(f.pool),
                }),
            },
            created_on: p.created_on,
            modified_on: p.modified_on,
            disabled_at: p.disabled_at,
        }
    }
}

impl TryFrom<PoolRow> for Pool {
    type Error = BadRow;

    fn try_from(r: PoolRow) -> Result<Self, BadRow> {
        let s = r.spec;
        let origins = s
            .origins
            .into_iter()
            .map(|o| {
                let weight = Weight::from_hundredths(o.weight).ok_or_else(|| {
                    BadRow(format!("origin {:?} has weight {}", o.name, o.weight))
                })?;
                Ok(OriginSpec {
                    name: o.name,
                    address: o.address,
                    enabled: o.enabled,
                    weight,
                    port: o.port,
                    host: o.host,
                    disabled_at: o.disabled_at,
                })
            })
            .collect::<Result<_, BadRow>>()?;
        Ok(Self {
            id: r.id,
            account: r.account,
            spec: PoolSpec {
                name: s.name,
                origins,
                minimum_origins: s.minimum_origins,
                monitor: s.monitor,
                monitor_group: s.monitor_group,
                check_regions: match s.check_regions {
                    CheckRegionsRow::AllLocations => CheckRegions::AllLocations,
                    CheckRegionsRow::AllRegions => CheckRegions::AllRegions,
                    CheckRegionsRow::Regions(r) => CheckRegions::Regions(map(r)),
                },
                enabled: s.enabled,
                description: s.description,
                coordinates: s.coordinates,
                origin_steering: s.origin_steering.into(),
                load_shedding: LoadShedding {
                    default_percent: s.load_shedding.default_percent,
                    default_policy: s.load_shedding.default_policy.into(),
                    session_percent: s.load_shedding.session_percent,
                    session_policy: s.load_shedding.session_policy.into(),
                },
                notification_email: s.notification_email,
                notification_filter: s.notification_filter.map(|f| NotificationFilter {
                    origin: rule(f.origin),
                    pool: rule(f.pool),
                }),
            },
            created_on: r.created_on,
            modified_on: r.modified_on,
            disabled_at: r.disabled_at,
        })
    }
}

// ---- load balancers ----

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RandomSteeringRow {
    pub default_weight: f64,
    pub pool_weights: BTreeMap<PoolId, f64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AffinityAttributesRow {
    pub samesite: SameSiteRow,
    pub secure: SecureRow,
    pub zero_downtime_failover: ZeroDowntimeFailoverRow,
    pub drain_duration: u32,
    pub headers: Vec<String>,
    pub require_all_headers: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadBalancerSpecRow {
    pub name: String,
    pub default_pools: Vec<PoolId>,
    pub fallback_pool: PoolId,
    pub region_pools: BTreeMap<RegionRow, Vec<PoolId>>,
    pub country_pools: BTreeMap<String, Vec<PoolId>>,
    pub pop_pools: BTreeMap<String, Vec<PoolId>>,
    pub steering_policy: SteeringPolicyRow,
    pub random_steering: RandomSteeringRow,
    pub failover_across_pools: bool,
    pub location_mode: LocationModeRow,
    pub prefer_ecs: PreferEcsRow,
    pub session_affinity: SessionAffinityRow,
    pub session_affinity_ttl: u32,
    pub session_affinity_attributes: AffinityAttributesRow,
    pub proxied: bool,
    pub ttl: u32,
    pub enabled: bool,
    /// JSON text of the rules, `[RuleRow]` (text, so rows written before rules were
    /// validated keep their shape).
    pub rules: String,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadBalancerRow {
    pub id: LoadBalancerId,
    pub zone: ZoneId,
    pub spec: LoadBalancerSpecRow,
    pub created_on: Timestamp,
    pub modified_on: Timestamp,
}

impl From<&LoadBalancer> for LoadBalancerRow {
    fn from(l: &LoadBalancer) -> Self {
        let s = &l.spec;
        Self {
            id: l.id,
            zone: l.zone,
            spec: LoadBalancerSpecRow {
                name: s.name.clone(),
                default_pools: s.default_pools.clone(),
                fallback_pool: s.fallback_pool,
                region_pools: s
                    .region_pools
                    .iter()
                    .map(|(&r, p)| (r.into(), p.clone()))
                    .collect(),
                country_pools: s.country_pools.clone(),
                pop_pools: s.pop_pools.clone(),
                steering_policy: s.steering_policy.into(),
                random_steering: RandomSteeringRow {
                    default_weight: s.random_steering.default_weight,
                    pool_weights: s.random_steering.pool_weights.clone(),
                },
                failover_across_pools: s.failover_across_pools,
                location_mode: s.location_mode.into(),
                prefer_ecs: s.prefer_ecs.into(),
                session_affinity: s.session_affinity.into(),
                session_affinity_ttl: s.session_affinity_ttl,
                session_affinity_attributes: attributes_row(&s.session_affinity_attributes),
                proxied: s.proxied,
                ttl: s.ttl,
                enabled: s.enabled,
                rules: rules_text(&s.rules),
                description: s.description.clone(),
            },
            created_on: l.created_on,
            modified_on: l.modified_on,
        }
    }
}

impl From<LoadBalancerRow> for LoadBalancer {
    fn from(r: LoadBalancerRow) -> Self {
        let s = r.spec;
        let mode = if s.proxied {
            Mode::Proxied
        } else {
            Mode::DnsOnly
        };
        // Rules stored before they were validated (they were echoed, never applied) may not
        // read back: the load balancer loads without them, as it always behaved, and says so.
        let rules = read_rules(&s.rules, mode).unwrap_or_else(|e| {
            tracing::warn!(load_balancer = %r.id, name = %s.name, error = %e,
                "stored rules cannot be read and are left out; set them again through the API");
            Rules::default()
        });
        Self {
            id: r.id,
            zone: r.zone,
            spec: LoadBalancerSpec {
                name: s.name,
                default_pools: s.default_pools,
                fallback_pool: s.fallback_pool,
                region_pools: s
                    .region_pools
                    .into_iter()
                    .map(|(r, p)| (r.into(), p))
                    .collect(),
                country_pools: s.country_pools,
                pop_pools: s.pop_pools,
                steering_policy: s.steering_policy.into(),
                random_steering: lb::RandomSteering {
                    default_weight: s.random_steering.default_weight,
                    pool_weights: s.random_steering.pool_weights,
                },
                failover_across_pools: s.failover_across_pools,
                location_mode: s.location_mode.into(),
                prefer_ecs: s.prefer_ecs.into(),
                session_affinity: s.session_affinity.into(),
                session_affinity_ttl: s.session_affinity_ttl,
                session_affinity_attributes: attributes_of(s.session_affinity_attributes),
                proxied: s.proxied,
                ttl: s.ttl,
                enabled: s.enabled,
                rules,
                description: s.description,
            },
            created_on: r.created_on,
            modified_on: r.modified_on,
        }
    }
}

// ---- load-balancing rules ----

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleRow {
    pub name: String,
    pub condition: String,
    pub disabled: bool,
    pub priority: u32,
    pub terminates: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_response: Option<FixedResponseRow>,
    pub overrides: OverridesRow,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixedResponseRow {
    pub status_code: u16,
    pub content_type: Option<String>,
    pub message_body: Option<String>,
    pub location: Option<String>,
}

/// Only the overridden fields are written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OverridesRow {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failover_across_pools: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country_pools: Option<BTreeMap<String, Vec<PoolId>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_pools: Option<Vec<PoolId>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_pool: Option<PoolId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location_mode: Option<LocationModeRow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefer_ecs: Option<PreferEcsRow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pop_pools: Option<BTreeMap<String, Vec<PoolId>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub random_steering: Option<RandomSteeringRow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region_pools: Option<BTreeMap<RegionRow, Vec<PoolId>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_affinity: Option<SessionAffinityRow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_affinity_attributes: Option<AffinityAttributesRow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_affinity_ttl: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steering_policy: Option<SteeringPolicyRow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
}

fn attributes_row(a: &AffinityAttributes) -> AffinityAttributesRow {
    AffinityAttributesRow {
        samesite: a.samesite.into(),
        secure: a.secure.into(),
        zero_downtime_failover: a.zero_downtime_failover.into(),
        drain_duration: a.drain_duration,
        headers: a.headers.clone(),
        require_all_headers: a.require_all_headers,
    }
}

fn attributes_of(a: AffinityAttributesRow) -> AffinityAttributes {
    AffinityAttributes {
        samesite: a.samesite.into(),
        secure: a.secure.into(),
        zero_downtime_failover: a.zero_downtime_failover.into(),
        drain_duration: a.drain_duration,
        headers: a.headers,
        require_all_headers: a.require_all_headers,
    }
}

impl From<&Rule> for RuleRow {
    fn from(r: &Rule) -> Self {
        let o = &r.overrides;
        RuleRow {
            name: r.name.clone(),
            condition: r.condition.source().to_owned(),
            disabled: r.disabled,
            priority: r.priority,
            terminates: r.terminates,
            fixed_response: r.fixed_response.as_ref().map(|f| FixedResponseRow {
                status_code: f.status_code,
                content_type: f.content_type.clone(),
                message_body: f.message_body.clone(),
                location: f.location.clone(),
            }),
            overrides: OverridesRow {
                failover_across_pools: o.failover_across_pools,
                country_pools: o.country_pools.clone(),
                default_pools: o.default_pools.clone(),
                fallback_pool: o.fallback_pool,
                location_mode: o.location_mode.map(Into::into),
                prefer_ecs: o.prefer_ecs.map(Into::into),
                pop_pools: o.pop_pools.clone(),
                random_steering: o.random_steering.as_ref().map(|r| RandomSteeringRow {
                    default_weight: r.default_weight,
                    pool_weights: r.pool_weights.clone(),
                }),
                region_pools: o
                    .region_pools
                    .as_ref()
                    .map(|m| m.iter().map(|(&r, p)| (r.into(), p.clone())).collect()),
                session_affinity: o.session_affinity.map(Into::into),
                session_affinity_attributes: o
                    .session_affinity_attributes
                    .as_ref()
                    .map(attributes_row),
                session_affinity_ttl: o.session_affinity_ttl,
                steering_policy: o.steering_policy.map(Into::into),
                ttl: o.ttl,
            },
        }
    }
}

impl RuleRow {
    fn into_rule(self, mode: Mode) -> Result<Rule, BadRow> {
        let o = self.overrides;
        let condition = Condition::parse(&self.condition, mode)
            .map_err(|e| BadRow(format!("rule {:?}: condition: {e}", self.name)))?;
        Ok(Rule {
            name: self.name,
            condition,
            disabled: self.disabled,
            priority: self.priority,
            terminates: self.terminates,
            fixed_response: self.fixed_response.map(|f| FixedResponse {
                status_code: f.status_code,
                content_type: f.content_type,
                message_body: f.message_body,
                location: f.location,
            }),
            overrides: Overrides {
                failover_across_pools: o.failover_across_pools,
                country_pools: o.country_pools,
                default_pools: o.default_pools,
                fallback_pool: o.fallback_pool,
                location_mode: o.location_mode.map(Into::into),
                prefer_ecs: o.prefer_ecs.map(Into::into),
                pop_pools: o.pop_pools,
                random_steering: o.random_steering.map(|r| lb::RandomSteering {
                    default_weight: r.default_weight,
                    pool_weights: r.pool_weights,
                }),
                region_pools: o
                    .region_pools
                    .map(|m| m.into_iter().map(|(r, p)| (r.into(), p)).collect()),
                session_affinity: o.session_affinity.map(Into::into),
                session_affinity_attributes: o.session_affinity_attributes.map(attributes_of),
                session_affinity_ttl: o.session_affinity_ttl,
                steering_policy: o.steering_policy.map(Into::into),
                ttl: o.ttl,
            },
        })
    }
}

fn rules_text(rules: &Rules) -> String {
    let rows: Vec<RuleRow> = rules.iter().map(RuleRow::from).collect();
    serde_json::to_string(&rows).unwrap_or_else(|_| "[]".to_owned())
}

/// A load balancer's stored rules, each condition parsed again for its mode.
pub fn read_rules(text: &str, mode: Mode) -> Result<Rules, BadRow> {
    let rows: Vec<RuleRow> =
        serde_json::from_str(text).map_err(|e| BadRow(format!("rules: {e}")))?;
    let rules = rows
        .into_iter()
        .map(|r| r.into_rule(mode))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Rules::new(rules))
}

// ---- notifications ----

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookSpecRow {
    pub name: String,
    pub url: String,
    pub secret: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookRow {
    pub id: WebhookId,
    pub account: AccountId,
    pub spec: WebhookSpecRow,
    pub created_on: Timestamp,
    pub modified_on: Timestamp,
}

impl From<&Webhook> for WebhookRow {
    fn from(w: &Webhook) -> Self {
        Self {
            id: w.id,
            account: w.account,
            spec: WebhookSpecRow {
                name: w.spec.name.clone(),
                url: w.spec.url.clone(),
                secret: w.spec.secret.clone(),
            },
            created_on: w.created_on,
            modified_on: w.modified_on,
        }
    }
}

impl From<WebhookRow> for Webhook {
    fn from(r: WebhookRow) -> Self {
        Self {
            id: r.id,
            account: r.account,
            spec: WebhookSpec {
                name: r.spec.name,
                url: r.spec.url,
                secret: r.spec.secret,
            },
            created_on: r.created_on,
            modified_on: r.modified_on,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyFiltersRow {
    pub pool_id: Vec<PoolId>,
    pub event_source: Vec<EventSourceRow>,
    pub new_health: Vec<NewHealthRow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicySpecRow {
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub alert_type: AlertTypeRow,
    pub webhooks: Vec<WebhookId>,
    pub filters: PolicyFiltersRow,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRow {
    pub id: PolicyId,
    pub account: AccountId,
    pub spec: PolicySpecRow,
    pub created_on: Timestamp,
    pub modified_on: Timestamp,
}

impl From<&Policy> for PolicyRow {
    fn from(p: &Policy) -> Self {
        let s = &p.spec;
        Self {
            id: p.id,
            account: p.account,
            spec: PolicySpecRow {
                name: s.name.clone(),
                description: s.description.clone(),
                enabled: s.enabled,
                alert_type: s.alert_type.into(),
                webhooks: s.webhooks.clone(),
                filters: PolicyFiltersRow {
                    pool_id: s.filters.pool_id.clone(),
                    event_source: s.filters.event_source.iter().map(|&e| e.into()).collect(),
                    new_health: s.filters.new_health.iter().map(|&h| h.into()).collect(),
                },
            },
            created_on: p.created_on,
            modified_on: p.modified_on,
        }
    }
}

impl From<PolicyRow> for Policy {
    fn from(r: PolicyRow) -> Self {
        let s = r.spec;
        Self {
            id: r.id,
            account: r.account,
            spec: PolicySpec {
                name: s.name,
                description: s.description,
                enabled: s.enabled,
                alert_type: s.alert_type.into(),
                webhooks: s.webhooks,
                filters: PolicyFilters {
                    pool_id: s.filters.pool_id,
                    event_source: map(s.filters.event_source),
                    new_health: map(s.filters.new_health),
                },
            },
            created_on: r.created_on,
            modified_on: r.modified_on,
        }
    }
}

// ---- health ----

/// A probe target; its text is a key of the `location_states` table (keep the field order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeKeyRow {
    pub monitor: MonitorId,
    pub address: String,
    pub port: u16,
    pub host: Option<String>,
}

impl From<&ProbeKey> for ProbeKeyRow {
    fn from(k: &ProbeKey) -> Self {
        Self {
            monitor: k.monitor,
            address: k.address.clone(),
            port: k.port,
            host: k.host.clone(),
        }
    }
}

impl From<ProbeKeyRow> for ProbeKey {
    fn from(r: ProbeKeyRow) -> Self {
        Self {
            monitor: r.monitor,
            address: r.address,
            port: r.port,
            host: r.host,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResultRow {
    pub healthy: bool,
    pub reason: FailureReasonRow,
    pub response_code: Option<u16>,
    pub rtt_micros: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocationStateRow {
    pub verdict: Option<bool>,
    pub streak: u32,
    pub last: Option<CheckResultRow>,
    pub last_at: Option<Timestamp>,
}

impl From<&LocationState> for LocationStateRow {
    fn from(s: &LocationState) -> Self {
        Self {
            verdict: stored_verdict(s.verdict),
            streak: s.streak,
            last: s.last.as_ref().map(|c| CheckResultRow {
                healthy: c.healthy,
                reason: c.reason.into(),
                response_code: c.response_code,
                rtt_micros: c.rtt_micros,
            }),
            last_at: s.last_at,
        }
    }
}

impl From<LocationStateRow> for LocationState {
    /// Smoothed latency is not stored: it starts again from the next samples.
    fn from(r: LocationStateRow) -> Self {
        Self {
            verdict: verdict(r.verdict),
            streak: r.streak,
            last: r.last.map(|c| CheckResult {
                healthy: c.healthy,
                reason: c.reason.into(),
                response_code: c.response_code,
                rtt_micros: c.rtt_micros,
            }),
            last_at: r.last_at,
            latency: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginEventRow {
    pub name: String,
    pub address: String,
    pub enabled: bool,
    pub healthy: Option<bool>,
    #[serde(default)]
    pub was: Option<bool>,
    pub reason: FailureReasonRow,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRow {
    pub at: Timestamp,
    pub account: AccountId,
    pub pool: PoolId,
    pub pool_name: String,
    pub pool_healthy: Option<bool>,
    /// Absent in events stored before it was recorded: unknown.
    #[serde(default)]
    pub pool_was: Option<bool>,
    pub pool_changed: bool,
    pub minimum_origins: u16,
    pub origins: Vec<OriginEventRow>,
}

impl From<&Event> for EventRow {
    fn from(e: &Event) -> Self {
        Self {
            at: e.at,
            account: e.account,
            pool: e.pool,
            pool_name: e.pool_name.clone(),
            pool_healthy: stored_verdict(e.pool_healthy),
            pool_was: stored_verdict(e.pool_was),
            pool_changed: e.pool_changed,
            minimum_origins: e.minimum_origins,
            origins: e
                .origins
                .iter()
                .map(|o| OriginEventRow {
                    name: o.name.clone(),
                    address: o.address.clone(),
                    enabled: o.enabled,
                    healthy: stored_verdict(o.healthy),
                    was: stored_verdict(o.was),
                    reason: o.reason.into(),
                })
                .collect(),
        }
    }
}

impl From<EventRow> for Event {
    fn from(r: EventRow) -> Self {
        Self {
            at: r.at,
            account: r.account,
            pool: r.pool,
            pool_name: r.pool_name,
            pool_healthy: verdict(r.pool_healthy),
            pool_was: verdict(r.pool_was),
            pool_changed: r.pool_changed,
            minimum_origins: r.minimum_origins,
            origins: r
                .origins
                .into_iter()
                .map(|o| OriginEvent {
                    name: o.name,
                    address: o.address,
                    enabled: o.enabled,
                    healthy: verdict(o.healthy),
                    was: verdict(o.was),
                    reason: o.reason.into(),
                })
                .collect(),
        }
    }
}

/// A region's verdict, as a pool or an origin has one per checking region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionVerdictRow {
    pub region: RegionRow,
    pub healthy: Option<bool>,
}

fn region_rows(regions: &RegionVerdicts) -> Vec<RegionVerdictRow> {
    regions
        .iter()
        .map(|(r, v)| RegionVerdictRow {
            region: (*r).into(),
            healthy: stored_verdict(*v),
        })
        .collect()
}

fn region_verdicts(rows: Vec<RegionVerdictRow>) -> RegionVerdicts {
    rows.into_iter()
        .map(|r| (r.region.into(), verdict(r.healthy)))
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecidedOriginRow {
    pub name: String,
    pub healthy: Option<bool>,
    pub reason: FailureReasonRow,
    pub regions: Vec<RegionVerdictRow>,
}

/// A pool's verdicts as the judging controller published them for its followers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecidedRow {
    pub pool: PoolId,
    pub healthy: Option<bool>,
    pub regions: Vec<RegionVerdictRow>,
    pub origins: Vec<DecidedOriginRow>,
}

impl From<&Decided> for DecidedRow {
    fn from(d: &Decided) -> Self {
        Self {
            pool: d.pool,
            healthy: stored_verdict(d.healthy),
            regions: region_rows(&d.regions),
            origins: d
                .origins
                .iter()
                .map(|o| DecidedOriginRow {
                    name: o.name.clone(),
                    healthy: stored_verdict(o.healthy),
                    reason: o.reason.into(),
                    regions: region_rows(&o.regions),
                })
                .collect(),
        }
    }
}

impl From<DecidedRow> for Decided {
    fn from(r: DecidedRow) -> Self {
        Self {
            pool: r.pool,
            healthy: verdict(r.healthy),
            regions: region_verdicts(r.regions),
            origins: r
                .origins
                .into_iter()
                .map(|o| DecidedOrigin {
                    name: o.name,
                    healthy: verdict(o.healthy),
                    reason: o.reason.into(),
                    regions: region_verdicts(o.regions),
                })
                .collect(),
        }
    }
}

/// A probe location's last contact, as the judge publishes it for its followers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactRow {
    pub location: LocationRow,
    pub last_seen: Timestamp,
    pub silent: bool,
}

/// Every location's contact as stored text (one document).
pub fn encode_contacts(contacts: &[(Location, LocationContact)]) -> Result<String, StoreError> {
    let rows: Vec<ContactRow> = contacts
        .iter()
        .map(|(l, c)| ContactRow {
            location: l.into(),
            last_seen: c.last_seen,
            silent: c.silent,
        })
        .collect();
    to_text(&rows)
}

/// Contacts read back from their stored text.
pub fn decode_contacts(text: &str) -> Result<Vec<(Location, LocationContact)>, StoreError> {
    let rows: Vec<ContactRow> = from_text("judge_documents", "contacts", text)?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                r.location.into(),
                LocationContact {
                    last_seen: r.last_seen,
                    silent: r.silent,
                },
            )
        })
        .collect())
}

/// A pool's RTTs in ms, as the judge published them for dynamic latency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolRttRow {
    pub pool: PoolId,
    pub anywhere: Option<f64>,
    pub by_region: Vec<(RegionRow, f64)>,
}

/// Every pool's RTTs as stored text (one document).
pub fn encode_rtts(rtts: &[(PoolId, PoolRtt)]) -> Result<String, StoreError> {
    let rows: Vec<PoolRttRow> = rtts
        .iter()
        .map(|(pool, r)| PoolRttRow {
            pool: *pool,
            anywhere: r.anywhere,
            by_region: r.by_region.iter().map(|(k, v)| ((*k).into(), *v)).collect(),
        })
        .collect();
    to_text(&rows)
}

/// Pools' RTTs read back from their stored text.
pub fn decode_rtts(text: &str) -> Result<Vec<(PoolId, PoolRtt)>, StoreError> {
    let rows: Vec<PoolRttRow> = from_text("judge_documents", "pool_rtts", text)?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                r.pool,
                PoolRtt {
                    anywhere: r.anywhere,
                    by_region: r
                        .by_region
                        .into_iter()
                        .map(|(k, v)| (k.into(), v))
                        .collect(),
                },
            )
        })
        .collect())
}

// ---- the catalog's objects as stored text ----

/// What a change does to the stored rows: puts one object's document, or deletes a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowWrite {
    Put {
        kind: &'static str,
        id: String,
        text: String,
    },
    Delete {
        kind: &'static str,
        id: String,
    },
}

/// The row a change writes.
pub fn encode(change: &Change) -> Result<RowWrite, StoreError> {
    let put = |kind, id: String, text| {
        Ok(RowWrite::Put {
            kind,
            id,
            text: text?,
        })
    };
    let delete = |kind, id: String| Ok(RowWrite::Delete { kind, id });
    match change {
        Change::PutAccount(a) => put("accounts", a.id.to_string(), to_text(&AccountRow::from(a))),
        Change::PutUser(u) => put("users", u.id.to_string(), to_text(&UserRow::from(u))),
        Change::PutToken(t) => put("tokens", t.id.to_string(), to_text(&TokenRow::from(t))),
        Change::PutZone(z) => put("zones", z.id.to_string(), to_text(&ZoneRow::from(z))),
        Change::PutMonitor(m) => put("monitors", m.id.to_string(), to_text(&MonitorRow::from(m))),
        Change::PutMonitorGroup(g) => put(
            "monitor_groups",
            g.id.to_string(),
            to_text(&MonitorGroupRow::from(g)),
        ),
        Change::PutPool(p) => put("pools", p.id.to_string(), to_text(&PoolRow::from(p))),
        Change::PutLoadBalancer(l) => put(
            "load_balancers",
            l.id.to_string(),
            to_text(&LoadBalancerRow::from(l)),
        ),
        Change::PutWebhook(w) => put("webhooks", w.id.to_string(), to_text(&WebhookRow::from(w))),
        Change::PutPolicy(p) => put("policies", p.id.to_string(), to_text(&PolicyRow::from(p))),
        Change::DeleteZone(id) => delete("zones", id.to_string()),
        Change::DeleteMonitor(id) => delete("monitors", id.to_string()),
        Change::DeleteMonitorGroup(id) => delete("monitor_groups", id.to_string()),
        Change::DeletePool(id) => delete("pools", id.to_string()),
        Change::DeleteLoadBalancer(id) => delete("load_balancers", id.to_string()),
        Change::DeleteWebhook(id) => delete("webhooks", id.to_string()),
        Change::DeletePolicy(id) => delete("policies", id.to_string()),
    }
}

/// The change that puts the object stored as `text` in the table of `kind` (one of
/// [`crate::KINDS`]); `id` names the row in the error.
pub fn decode_object(kind: &str, id: &str, text: &str) -> Result<Change, StoreError> {
    let bad =
        |e: BadRow| StoreError::Unusable(format!("stored {kind} row {id} cannot be read: {e}"));
    Ok(match kind {
        "accounts" => Change::PutAccount(from_text::<AccountRow>(kind, id, text)?.into()),
        "users" => Change::PutUser(from_text::<UserRow>(kind, id, text)?.into()),
        "tokens" => Change::PutToken(from_text::<TokenRow>(kind, id, text)?.into()),
        "zones" => Change::PutZone(from_text::<ZoneRow>(kind, id, text)?.into()),
        "monitors" => Change::PutMonitor(
            from_text::<MonitorRow>(kind, id, text)?
                .try_into()
                .map_err(bad)?,
        ),
        "monitor_groups" => {
            Change::PutMonitorGroup(from_text::<MonitorGroupRow>(kind, id, text)?.into())
        }
        "pools" => Change::PutPool(
            from_text::<PoolRow>(kind, id, text)?
                .try_into()
                .map_err(bad)?,
        ),
        "load_balancers" => {
            Change::PutLoadBalancer(from_text::<LoadBalancerRow>(kind, id, text)?.into())
        }
        "webhooks" => Change::PutWebhook(from_text::<WebhookRow>(kind, id, text)?.into()),
        "policies" => Change::PutPolicy(from_text::<PolicyRow>(kind, id, text)?.into()),
        _ => {
            return Err(StoreError::Unusable(format!(
                "no kind of stored object is called {kind}"
            )))
        }
    })
}

/// The text of a row document.
pub fn to_text<R: Serialize>(row: &R) -> Result<String, StoreError> {
    serde_json::to_string(row).map_err(|e| StoreError::Io(format!("encoding a row: {e}")))
}

/// A row document read back; a row that does not parse makes the store unusable, naming it.
pub fn from_text<R: serde::de::DeserializeOwned>(
    table: &str,
    id: &str,
    text: &str,
) -> Result<R, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Unusable(format!("stored {table} row {id} cannot be read: {e}")))
}

// ---- health rows as stored text ----

/// A location state as its three stored texts: probe target, location, document. The first
/// two are the row's key, so their text must always come out the same.
pub fn encode_state(
    key: &ProbeKey,
    location: &Location,
    state: &LocationState,
) -> Result<(String, String, String), StoreError> {
    Ok((
        to_text(&ProbeKeyRow::from(key))?,
        encode_location(location)?,
        to_text(&LocationStateRow::from(state))?,
    ))
}

/// A location state read back from its three stored texts.
pub fn decode_state(
    target: &str,
    location: &str,
    doc: &str,
) -> Result<(ProbeKey, Location, LocationState), StoreError> {
    let place: LocationRow = from_text("location_states", target, location)?;
    let state: LocationStateRow = from_text("location_states", target, doc)?;
    Ok((decode_target(target)?, place.into(), state.into()))
}

/// A stored probe target's text read back.
pub fn decode_target(target: &str) -> Result<ProbeKey, StoreError> {
    Ok(from_text::<ProbeKeyRow>("location_states", target, target)?.into())
}

/// A location's stored text (a key of the location states).
pub fn encode_location(location: &Location) -> Result<String, StoreError> {
    to_text(&LocationRow::from(location))
}

pub fn encode_event(event: &Event) -> Result<String, StoreError> {
    to_text(&EventRow::from(event))
}

/// Health event `seq`, read back from its stored text.
pub fn decode_event(seq: i64, text: &str) -> Result<Event, StoreError> {
    Ok(from_text::<EventRow>("health_events", &seq.to_string(), text)?.into())
}

/// A pool's published verdicts as stored text.
pub fn encode_decided(decided: &Decided) -> Result<String, StoreError> {
    to_text(&DecidedRow::from(decided))
}

/// Published verdicts read back (`pool` names the row in an error).
pub fn decode_decided(pool: &str, text: &str) -> Result<Decided, StoreError> {
    Ok(from_text::<DecidedRow>("pool_verdicts", pool, text)?.into())
}
