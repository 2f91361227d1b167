//! Per-account quotas: how many objects of each kind one account may hold. Without them one
//! tenant could grow the store, the health engine and every agent's schedule without bound,
//! and so slow every other tenant down.
//!
//! The catalog counts each account's objects as changes apply (and as they are taken back),
//! so a command checks its quota in one lookup, against the changes of the commands grouped
//! before it. Only growth is refused: an account over a quota the operator lowered keeps what
//! it has, may change it and may delete, but may not add.

use crate::violation::{Path, Violation};

/// How many kinds of things are counted.
const KINDS: usize = 8;

/// A kind of thing an account holds, counted against its quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Quota {
    Zones,
    Monitors,
    MonitorGroups,
    Pools,
    /// Origins over all of the account's pools: what its checks are made of.
    Origins,
    LoadBalancers,
    Webhooks,
    NotificationPolicies,
}

impl Quota {
    pub const ALL: [Self; KINDS] = [
        Self::Zones,
        Self::Monitors,
        Self::MonitorGroups,
        Self::Pools,
        Self::Origins,
        Self::LoadBalancers,
        Self::Webhooks,
        Self::NotificationPolicies,
    ];

    /// The name the operator sets it by (`--quota NAME=N`) and messages use.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Zones => "zones",
            Self::Monitors => "monitors",
            Self::MonitorGroups => "monitor_groups",
            Self::Pools => "pools",
            Self::Origins => "origins",
            Self::LoadBalancers => "load_balancers",
            Self::Webhooks => "webhooks",
            Self::NotificationPolicies => "notification_policies",
        }
    }

    /// What an account may hold unless the operator says otherwise: far above what one
    /// tenant's configuration needs, far below what would crowd the others out.
    pub const fn default_limit(self) -> u64 {
        match self {
            Self::Zones => 1_000,
            Self::Monitors => 10_000,
            Self::MonitorGroups => 1_000,
            Self::Pools => 10_000,
            Self::Origins => 250_000,
            Self::LoadBalancers => 20_000,
            Self::Webhooks => 100,
            Self::NotificationPolicies => 1_000,
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|q| q.name() == name)
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// The most of each kind one account may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas([u64; KINDS]);

impl Default for Quotas {
    fn default() -> Self {
        Self(Quota::ALL.map(Quota::default_limit))
    }
}

impl Quotas {
    /// No quota at all: for benchmarks that build one account far past the defaults.
    pub const fn unlimited() -> Self {
        Self([u64::MAX; KINDS])
    }

    pub const fn limit(&self, quota: Quota) -> u64 {
        self.0[quota.index()]
    }

    #[must_use]
    pub const fn with(mut self, quota: Quota, limit: u64) -> Self {
        self.0[quota.index()] = limit;
        self
    }
}

/// How many of each kind one account holds, or one object counts for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage([u64; KINDS]);

impl Usage {
    pub const fn of(&self, quota: Quota) -> u64 {
        self.0[quota.index()]
    }

    /// One object of `quota`'s kind.
    pub(crate) const fn one(quota: Quota) -> Self {
        Self([0; KINDS]).plus(quota, 1)
    }

    #[must_use]
    pub(crate) const fn plus(mut self, quota: Quota, n: u64) -> Self {
        self.0[quota.index()] = self.0[quota.index()].saturating_add(n);
        self
    }

    pub(crate) fn add(&mut self, other: &Self) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a = a.saturating_add(b);
        }
    }

    pub(crate) fn subtract(&mut self, other: &Self) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a = a.saturating_sub(b);
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0 == [0; KINDS]
    }

    /// Refuses `more` on top of this usage where it grows a kind past its quota. `path` is
    /// where the request asks for that kind (the whole request for one new object).
    pub(crate) fn allows(
        &self,
        more: &Self,
        quotas: &Quotas,
        path: impl Fn(Quota) -> Path,
    ) -> Result<(), Violation> {
        for quota in Quota::ALL {
            let (now, asked, limit) = (self.of(quota), more.of(quota), quotas.limit(quota));
            if asked > 0 && now.saturating_add(asked) > limit {
                return Err(Violation::new(
                    path(quota),
                    format!(
                        "the account holds {now} {} and may hold at most {limit} (quota {}); \
                         this would add {asked}: delete some first, or ask the operator to \
                         raise the quota",
                        quota.name().replace('_', " "),
                        quota.name()
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_defaults_are_finite() {
        for q in Quota::ALL {
            assert_eq!(Quota::from_name(q.name()), Some(q));
            assert!(Quotas::default().limit(q) < u64::MAX);
        }
        assert_eq!(Quota::from_name("pool"), None);
    }

    #[test]
    fn only_growth_past_the_quota_is_refused() {
        let quotas = Quotas::default().with(Quota::Origins, 10);
        let held = Usage::default().plus(Quota::Origins, 8);
        let at = |_| Path::root().key("origins");
        assert!(held
            .allows(&Usage::default().plus(Quota::Origins, 2), &quotas, at)
            .is_ok());
        let refused = held
            .allows(&Usage::default().plus(Quota::Origins, 3), &quotas, at)
            .unwrap_err();
        assert_eq!(refused.path.to_pointer(), "/origins");
        assert!(
            refused.detail.contains("holds 8 origins"),
            "{}",
            refused.detail
        );
        assert!(refused.detail.contains("at most 10"), "{}", refused.detail);
        // Already over a lowered quota: adding nothing of that kind is allowed.
        let over = Usage::default().plus(Quota::Origins, 50);
        assert!(over
            .allows(&Usage::one(Quota::Monitors), &quotas, at)
            .is_ok());
    }
}
