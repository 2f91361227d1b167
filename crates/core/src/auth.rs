//! Who may do what: API tokens, global keys, permissions and the decision itself.
//!
//! Secrets never reach the core: the shell hashes a presented secret and the core only
//! compares digests' owners and grants.

use serde::{Deserialize, Serialize};

use crate::{AccountId, Timestamp, TokenId, UserId, ZoneId};

crate::string_enum!(
    /// Cloudflare's permission-group names for what Vantage serves.
    Permission {
        MonitorsPoolsRead = "Load Balancing: Monitors and Pools Read",
        MonitorsPoolsWrite = "Load Balancing: Monitors and Pools Write",
        LoadBalancersRead = "Load Balancers Read",
        LoadBalancersWrite = "Load Balancers Write",
        ZoneRead = "Zone Read",
        ZoneWrite = "Zone Write",
    }
);

impl Permission {
    /// The permission that also grants this one (write implies read).
    pub const fn implied_by(self) -> Permission {
        match self {
            Self::MonitorsPoolsRead | Self::MonitorsPoolsWrite => Self::MonitorsPoolsWrite,
            Self::LoadBalancersRead | Self::LoadBalancersWrite => Self::LoadBalancersWrite,
            Self::ZoneRead | Self::ZoneWrite => Self::ZoneWrite,
        }
    }

    /// Permissions that make sense on a single zone (the rest are account-wide).
    pub const fn is_zone_scoped(self) -> bool {
        matches!(
            self,
            Self::LoadBalancersRead | Self::LoadBalancersWrite | Self::ZoneRead | Self::ZoneWrite
        )
    }
}

/// What a grant covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Resource {
    /// The account and every zone in it.
    Account(AccountId),
    /// One zone only.
    Zone(ZoneId),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub resource: Resource,
    pub permissions: Vec<Permission>,
}

/// SHA-256 of a secret. Only digests are stored; the shell computes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecretDigest(pub [u8; 32]);

crate::string_enum!(TokenStatus {
    Active = "active",
    Disabled = "disabled",
    Revoked = "revoked",
});

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub id: TokenId,
    pub name: String,
    pub digest: SecretDigest,
    pub status: TokenStatus,
    pub grants: Vec<Grant>,
    pub issued_on: Timestamp,
    pub modified_on: Timestamp,
    pub expires_on: Option<Timestamp>,
    /// What the token is for; tokens stored before agents existed are API tokens.
    pub kind: TokenKind,
    /// For an agent token: the one probe location it speaks for. Agent tokens stored before
    /// bindings existed have none and are refused until replaced.
    pub agent: Option<AgentBinding>,
}

/// What an agent token may do: report as exactly one location, and (when `accounts` is not
/// empty) probe only those accounts' pools — so an agent never receives the monitor headers,
/// often credentials, of accounts it does not serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentBinding {
    pub location: crate::health::Location,
    pub accounts: Vec<AccountId>,
}

impl AgentBinding {
    /// The accounts it is limited to, `None` for all.
    pub fn accounts(&self) -> Option<&[AccountId]> {
        (!self.accounts.is_empty()).then_some(self.accounts.as_slice())
    }
}

crate::string_enum!(
    /// API tokens act on accounts through `/client/v4`; agent tokens only let a probe agent
    /// fetch its assignment and report results; edge tokens only let an edge read routing
    /// snapshots (`/edge/v1`). None works in another's place.
    #[derive(Default)]
    TokenKind {
        #[default]
        Api = "api",
        Agent = "agent",
        Edge = "edge",
    }
);

impl Token {
    pub fn is_usable(&self, now: Timestamp) -> bool {
        self.status == TokenStatus::Active && self.expires_on.is_none_or(|e| now < e)
    }
}

/// A user with a global API key: every permission on the accounts it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    /// Lower case.
    pub email: String,
    /// SHA-256 of `salt || key`.
    pub key_digest: SecretDigest,
    pub key_salt: [u8; 16],
    pub accounts: Vec<AccountId>,
    pub created_on: Timestamp,
}

/// Whom a request acts for, once its credential has been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub kind: PrincipalKind,
    pub grants: Vec<Grant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    Token(TokenId),
    User(UserId),
}

/// The object a request touches, located in its account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Account(AccountId),
    Zone { zone: ZoneId, account: AccountId },
}

impl Principal {
    pub fn for_user(user: &User) -> Self {
        let grants = user
            .accounts
            .iter()
            .map(|a| Grant {
                resource: Resource::Account(*a),
                permissions: Permission::ALL_PERMISSIONS.to_vec(),
            })
            .collect();
        Self {
            kind: PrincipalKind::User(user.id),
            grants,
        }
    }

    pub fn for_token(token: &Token) -> Self {
        Self {
            kind: PrincipalKind::Token(token.id),
            grants: token.grants.clone(),
        }
    }

    /// Whether `needed` is granted on `target`. An account grant covers the account's zones;
    /// a zone grant covers only that zone and only zone-scoped permissions.
    pub fn allows(&self, needed: Permission, target: Target) -> bool {
        self.grants.iter().any(|g| {
            let covers = match (g.resource, target) {
                (Resource::Account(a), Target::Account(t)) => a == t,
                (Resource::Account(a), Target::Zone { account, .. }) => a == account,
                (Resource::Zone(z), Target::Zone { zone, .. }) => {
                    z == zone && needed.is_zone_scoped()
                }
                (Resource::Zone(_), Target::Account(_)) => false,
            };
            covers
                && g.permissions
                    .iter()
                    .any(|p| *p == needed || *p == needed.implied_by())
        })
    }

    /// Whether the principal holds anything at all on `account` (directly or on one of the
    /// given zones of it); used to decide which accounts a listing shows.
    pub fn sees_account(&self, account: AccountId, zones_of_account: &[ZoneId]) -> bool {
        self.grants.iter().any(|g| match g.resource {
            Resource::Account(a) => a == account,
            Resource::Zone(z) => zones_of_account.contains(&z),
        })
    }
}

impl Permission {
    pub const ALL_PERMISSIONS: [Permission; 6] = [
        Self::MonitorsPoolsRead,
        Self::MonitorsPoolsWrite,
        Self::LoadBalancersRead,
        Self::LoadBalancersWrite,
        Self::ZoneRead,
        Self::ZoneWrite,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: AccountId = AccountId::from_bytes([1; 16]);
    const B: AccountId = AccountId::from_bytes([2; 16]);
    const Z: ZoneId = ZoneId::from_bytes([3; 16]);
    const Z2: ZoneId = ZoneId::from_bytes([4; 16]);

    fn principal(grants: Vec<Grant>) -> Principal {
        Principal {
            kind: PrincipalKind::Token(TokenId::from_bytes([0; 16])),
            grants,
        }
    }

    #[test]
    fn write_implies_read_but_not_the_reverse() {
        let p = principal(vec![Grant {
            resource: Resource::Account(A),
            permissions: vec![Permission::MonitorsPoolsWrite],
        }]);
        assert!(p.allows(Permission::MonitorsPoolsRead, Target::Account(A)));
        assert!(p.allows(Permission::MonitorsPoolsWrite, Target::Account(A)));
        let r = principal(vec![Grant {
            resource: Resource::Account(A),
            permissions: vec![Permission::MonitorsPoolsRead],
        }]);
        assert!(!r.allows(Permission::MonitorsPoolsWrite, Target::Account(A)));
    }

    #[test]
    fn grants_are_bound_to_their_account_and_zone() {
        let p = principal(vec![Grant {
            resource: Resource::Zone(Z),
            permissions: vec![Permission::LoadBalancersWrite],
        }]);
        assert!(p.allows(
            Permission::LoadBalancersRead,
            Target::Zone {
                zone: Z,
                account: A
            }
        ));
        assert!(!p.allows(
            Permission::LoadBalancersRead,
            Target::Zone {
                zone: Z2,
                account: A
            }
        ));
        assert!(!p.allows(Permission::MonitorsPoolsRead, Target::Account(A)));
        let a = principal(vec![Grant {
            resource: Resource::Account(A),
            permissions: vec![Permission::LoadBalancersRead],
        }]);
        assert!(a.allows(
            Permission::LoadBalancersRead,
            Target::Zone {
                zone: Z2,
                account: A
            }
        ));
        assert!(!a.allows(
            Permission::LoadBalancersRead,
            Target::Zone {
                zone: Z2,
                account: B
            }
        ));
        assert!(!a.allows(Permission::MonitorsPoolsRead, Target::Account(B)));
    }

    #[test]
    fn expired_and_revoked_tokens_are_unusable() {
        let t = Token {
            id: TokenId::from_bytes([0; 16]),
            name: "t".into(),
            digest: SecretDigest([0; 32]),
            status: TokenStatus::Active,
            grants: vec![],
            issued_on: Timestamp::from_unix_micros(0),
            modified_on: Timestamp::from_unix_micros(0),
            expires_on: Some(Timestamp::from_unix_micros(100)),
            kind: TokenKind::Api,
            agent: None,
        };
        assert!(t.is_usable(Timestamp::from_unix_micros(99)));
        assert!(!t.is_usable(Timestamp::from_unix_micros(100)));
        assert!(!Token {
            status: TokenStatus::Revoked,
            expires_on: None,
            ..t
        }
        .is_usable(Timestamp::from_unix_micros(0)));
    }
}
