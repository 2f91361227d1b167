//! The whole configuration as plain values, and every rule that spans objects: references
//! must resolve inside one account, names are unique, referenced objects cannot be deleted.
//!
//! Commands do not mutate: they check the catalog and return the [`Change`]s that would carry
//! them out. The shell persists those changes and only then [`Catalog::apply`]s them, so the
//! in-memory state never runs ahead of the store.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use crate::account::Account;
use crate::auth::{SecretDigest, Token, User};
use crate::load_balancer::{LoadBalancer, LoadBalancerDraft, LoadBalancerSpec};
use crate::monitor::{Monitor, MonitorSpec};
use crate::monitor_group::{MonitorGroup, MonitorGroupSpec};
use crate::notification::{Policy, PolicySpec, Webhook, WebhookSpec};
use crate::pool::{CheckRefs, Pool, PoolSpec};
use crate::violation::{Path, Violation, Violations};
use crate::zone::{ancestors, is_within, Overlap, Zone};
use crate::{
    AccountId, LoadBalancerId, MonitorGroupId, MonitorId, PolicyId, PoolId, Timestamp, TokenId,
    UserId, WebhookId, ZoneId,
};

pub mod quota;
mod undo;
pub use quota::{Quota, Quotas, Usage};
pub use undo::Undo;

/// One durable mutation.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    PutAccount(Account),
    PutZone(Zone),
    DeleteZone(ZoneId),
    PutMonitor(Monitor),
    DeleteMonitor(MonitorId),
    PutMonitorGroup(MonitorGroup),
    DeleteMonitorGroup(MonitorGroupId),
    PutPool(Pool),
    DeletePool(PoolId),
    PutLoadBalancer(LoadBalancer),
    DeleteLoadBalancer(LoadBalancerId),
    PutToken(Token),
    PutUser(User),
    PutWebhook(Webhook),
    DeleteWebhook(WebhookId),
    PutPolicy(Policy),
    DeletePolicy(PolicyId),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ResourceType {
    Monitor,
    MonitorGroup,
    Pool,
    LoadBalancer,
    NotificationPolicy,
}

impl ResourceType {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Monitor => "monitor",
            Self::MonitorGroup => "monitor_group",
            Self::Pool => "pool",
            Self::LoadBalancer => "load_balancer",
            Self::NotificationPolicy => "notification_policy",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ReferenceType {
    /// An object that points at the one asked about.
    Referrer,
    /// An object the one asked about points at.
    Referral,
}

impl ReferenceType {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Referrer => "referrer",
            Self::Referral => "referral",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Reference {
    pub reference_type: ReferenceType,
    pub resource_type: ResourceType,
    pub resource_id: String,
    pub resource_name: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CatalogError {
    /// The object does not exist, or belongs to another account (indistinguishable on purpose).
    NotFound,
    Invalid(Violations),
    /// Deleting would leave these objects pointing at nothing.
    Referenced(Vec<Reference>),
}

impl From<Violations> for CatalogError {
    fn from(v: Violations) -> Self {
        Self::Invalid(v)
    }
}

pub type Outcome = Result<Vec<Change>, CatalogError>;

#[derive(Debug, Clone, Default)]
pub struct Catalog {
    accounts: BTreeMap<AccountId, Account>,
    zones: BTreeMap<ZoneId, Zone>,
    monitors: BTreeMap<MonitorId, Monitor>,
    monitor_groups: BTreeMap<MonitorGroupId, MonitorGroup>,
    pools: BTreeMap<PoolId, Pool>,
    load_balancers: BTreeMap<LoadBalancerId, LoadBalancer>,
    tokens: BTreeMap<TokenId, Token>,
    users: BTreeMap<UserId, User>,
    token_by_digest: HashMap<SecretDigest, TokenId>,
    /// Pools by account and name: a new pool's name is checked in one lookup, not by visiting
    /// every pool (the writer checks a group of commands under the catalog's write lock).
    /// Several ids only if a store written before names were unique holds duplicates.
    pool_names: HashMap<(AccountId, String), Vec<PoolId>>,
    webhooks: BTreeMap<WebhookId, Webhook>,
    policies: BTreeMap<PolicyId, Policy>,
    /// What each account holds, kept as changes apply (see [`quota`]).
    usage: HashMap<AccountId, Usage>,
    quotas: Quotas,
}

fn name_taken(field: &str, name: &str) -> Violations {
    Violation::new(
        Path::root().key(field),
        format!("{field} {name:?} is already in use"),
    )
    .into()
}

impl Catalog {
    pub fn apply(&mut self, change: Change) {
        drop(self.apply_undoable(change));
    }

    // ----- quotas ------------------------------------------------------------------------

    /// Sets the quotas commands are checked against (the operator's `--quota`; the defaults
    /// until set).
    pub fn set_quotas(&mut self, quotas: Quotas) {
        self.quotas = quotas;
    }

    pub fn quotas(&self) -> Quotas {
        self.quotas
    }

    /// What `account` holds of each kind counted against its quotas.
    pub fn usage(&self, account: AccountId) -> Usage {
        self.usage.get(&account).copied().unwrap_or_default()
    }

    /// Refuses `more` where it would grow `account` past a quota; `path` says where the
    /// request asks for each kind.
    fn within_quotas(
        &self,
        account: AccountId,
        more: Usage,
        path: impl Fn(Quota) -> Path,
    ) -> Result<(), CatalogError> {
        self.usage(account)
            .allows(&more, &self.quotas, path)
            .map_err(|v| CatalogError::Invalid(v.into()))
    }

    /// One more object of `quota`'s kind in `account`.
    fn one_more(&self, account: AccountId, quota: Quota) -> Result<(), CatalogError> {
        self.within_quotas(account, Usage::one(quota), |_| Path::root())
    }

    // ----- notifications -----------------------------------------------------------------

    pub fn webhooks_of(&self, account: AccountId) -> impl Iterator<Item = &Webhook> {
        self.webhooks.values().filter(move |w| w.account == account)
    }

    pub fn webhook(&self, account: AccountId, id: WebhookId) -> Option<&Webhook> {
        self.webhooks.get(&id).filter(|w| w.account == account)
    }

    pub fn policies_of(&self, account: AccountId) -> impl Iterator<Item = &Policy> {
        self.policies.values().filter(move |p| p.account == account)
    }

    pub fn policy(&self, account: AccountId, id: PolicyId) -> Option<&Policy> {
        self.policies.get(&id).filter(|p| p.account == account)
    }

    pub fn create_webhook(
        &self,
        account: AccountId,
        id: WebhookId,
        spec: WebhookSpec,
        now: Timestamp,
    ) -> Outcome {
        self.one_more(account, Quota::Webhooks)?;
        Ok(vec![Change::PutWebhook(Webhook {
            id,
            account,
            spec,
            created_on: now,
            modified_on: now,
        })])
    }

    pub fn replace_webhook(
        &self,
        account: AccountId,
        id: WebhookId,
        spec: WebhookSpec,
        now: Timestamp,
    ) -> Outcome {
        let old = self.webhook(account, id).ok_or(CatalogError::NotFound)?;
        Ok(vec![Change::PutWebhook(Webhook {
            spec,
            modified_on: now,
            ..old.clone()
        })])
    }

    /// The policies that send to a webhook.
    pub fn webhook_references(&self, w: &Webhook) -> Vec<Reference> {
        self.policies_of(w.account)
            .filter(|p| p.spec.webhooks.contains(&w.id))
            .map(|p| Reference {
                reference_type: ReferenceType::Referrer,
                resource_type: ResourceType::NotificationPolicy,
                resource_id: p.id.to_string(),
                resource_name: p.spec.name.clone(),
            })
            .collect()
    }

    pub fn delete_webhook(&self, account: AccountId, id: WebhookId) -> Outcome {
        let w = self.webhook(account, id).ok_or(CatalogError::NotFound)?;
        unreferenced(self.webhook_references(w))?;
        Ok(vec![Change::DeleteWebhook(id)])
    }

    /// A policy's destinations and pools must be the account's own.
    fn check_policy(&self, account: AccountId, spec: &PolicySpec) -> Result<(), CatalogError> {
        let mut v = Violations::default();
        for (i, w) in spec.webhooks.iter().enumerate() {
            if self.webhook(account, *w).is_none() {
                v.push(
                    Path::root().key("mechanisms").key("webhooks").index(i),
                    format!("webhook destination {w} does not exist"),
                );
            }
        }
        for (i, p) in spec.filters.pool_id.iter().enumerate() {
            if self.pool(account, *p).is_none() {
                v.push(
                    Path::root().key("filters").key("pool_id").index(i),
                    format!("pool {p} does not exist"),
                );
            }
        }
        v.finish(()).map_err(CatalogError::Invalid)
    }

    pub fn create_policy(
        &self,
        account: AccountId,
        id: PolicyId,
        spec: PolicySpec,
        now: Timestamp,
    ) -> Outcome {
        self.check_policy(account, &spec)?;
        self.one_more(account, Quota::NotificationPolicies)?;
        Ok(vec![Change::PutPolicy(Policy {
            id,
            account,
            spec,
            created_on: now,
            modified_on: now,
        })])
    }

    pub fn replace_policy(
        &self,
        account: AccountId,
        id: PolicyId,
        spec: PolicySpec,
        now: Timestamp,
    ) -> Outcome {
        let old = self.policy(account, id).ok_or(CatalogError::NotFound)?;
        self.check_policy(account, &spec)?;
        Ok(vec![Change::PutPolicy(Policy {
            spec,
            modified_on: now,
            ..old.clone()
        })])
    }

    pub fn delete_policy(&self, account: AccountId, id: PolicyId) -> Outcome {
        self.policy(account, id).ok_or(CatalogError::NotFound)?;
        Ok(vec![Change::DeletePolicy(id)])
    }

    /// Every policy, for matching events (each event names its account).
    pub fn all_policies(&self) -> impl Iterator<Item = &Policy> {
        self.policies.values()
    }

    pub fn any_webhook(&self, id: WebhookId) -> Option<&Webhook> {
        self.webhooks.get(&id)
    }

    // ----- reads -------------------------------------------------------------------------

    pub fn accounts(&self) -> impl Iterator<Item = &Account> {
        self.accounts.values()
    }

    pub fn account(&self, id: AccountId) -> Option<&Account> {
        self.accounts.get(&id)
    }

    pub fn zones(&self) -> impl Iterator<Item = &Zone> {
        self.zones.values()
    }

    pub fn zone(&self, id: ZoneId) -> Option<&Zone> {
        self.zones.get(&id)
    }

    pub fn zones_of(&self, account: AccountId) -> impl Iterator<Item = &Zone> {
        self.zones.values().filter(move |z| z.account == account)
    }

    /// The zone of `account` a load balancer named `name` belongs in: the most specific of
    /// its zones the name (or, for `*.x`, `x`) falls in.
    pub fn zone_for_name(&self, account: AccountId, name: &str) -> Option<&Zone> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let bare = name.strip_prefix("*.").unwrap_or(&name);
        self.zones_of(account)
            .filter(|z| is_within(bare, &z.name))
            .max_by_key(|z| z.name.len())
    }

    /// Load balancer `id` if it is `account`'s (in any of its zones).
    pub fn account_load_balancer(
        &self,
        account: AccountId,
        id: LoadBalancerId,
    ) -> Option<&LoadBalancer> {
        self.load_balancers
            .get(&id)
            .filter(|lb| self.zone(lb.zone).is_some_and(|z| z.account == account))
    }

    /// An account's load balancers, across its zones, in id order.
    pub fn load_balancers_of_account(
        &self,
        account: AccountId,
    ) -> impl Iterator<Item = &LoadBalancer> {
        self.load_balancers
            .values()
            .filter(move |lb| self.zone(lb.zone).is_some_and(|z| z.account == account))
    }

    pub fn monitors_of(&self, account: AccountId) -> impl Iterator<Item = &Monitor> {
        self.monitors.values().filter(move |m| m.account == account)
    }

    /// The monitor, if it exists in `account`.
    pub fn monitor(&self, account: AccountId, id: MonitorId) -> Option<&Monitor> {
        self.monitors.get(&id).filter(|m| m.account == account)
    }

    pub fn all_pools(&self) -> impl Iterator<Item = &Pool> {
        self.pools.values()
    }

    /// A monitor by id, whichever account owns it (for the health engine, which serves all).
    /// What the health engine judges: every pool, with its monitor when it has one.
    pub fn health_plan(&self) -> crate::health::HealthPlan {
        crate::health::HealthPlan {
            pools: self.planned_pools().collect(),
        }
    }

    /// The pools of [`Catalog::health_plan`], one at a time: the engine follows them without
    /// the whole plan ever being in memory at once (at 100,000 origins, tens of megabytes).
    pub fn planned_pools(&self) -> impl Iterator<Item = crate::health::plan::PlannedPool> + '_ {
        use crate::health::plan::{PlannedCheck, PlannedPool};
        let mut shared: HashMap<MonitorId, Arc<MonitorSpec>> = HashMap::new();
        let mut spec_of = move |m: MonitorId| {
            let monitor = self.any_monitor(m)?;
            let spec = shared
                .entry(m)
                .or_insert_with(|| Arc::new(monitor.spec.clone()));
            Some(Arc::clone(spec))
        };
        self.all_pools().map(move |p| {
            let group = p
                .spec
                .monitor_group
                .and_then(|g| self.monitor_groups.get(&g));
            let checks: Vec<PlannedCheck> = match group {
                Some(g) => g
                    .enabled_members()
                    .filter_map(|m| {
                        Some(PlannedCheck {
                            monitor: m.monitor,
                            spec: spec_of(m.monitor)?,
                            role: m.role,
                        })
                    })
                    .collect(),
                None => p
                    .spec
                    .monitor
                    .and_then(|m| Some(PlannedCheck::sole(m, spec_of(m)?)))
                    .into_iter()
                    .collect(),
            };
            PlannedPool::of(p, checks, group.is_some())
        })
    }

    pub fn any_monitor(&self, id: MonitorId) -> Option<&Monitor> {
        self.monitors.get(&id)
    }

    pub fn pools_of(&self, account: AccountId) -> impl Iterator<Item = &Pool> {
        self.pools.values().filter(move |p| p.account == account)
    }

    pub fn pool(&self, account: AccountId, id: PoolId) -> Option<&Pool> {
        self.pools.get(&id).filter(|p| p.account == account)
    }

    pub fn load_balancers_of(&self, zone: ZoneId) -> impl Iterator<Item = &LoadBalancer> {
        self.load_balancers
            .values()
            .filter(move |lb| lb.zone == zone)
    }

    pub fn load_balancer(&self, zone: ZoneId, id: LoadBalancerId) -> Option<&LoadBalancer> {
        self.load_balancers.get(&id).filter(|lb| lb.zone == zone)
    }

    pub fn all_load_balancers(&self) -> impl Iterator<Item = &LoadBalancer> {
        self.load_balancers.values()
    }

    pub fn tokens(&self) -> impl Iterator<Item = &Token> {
        self.tokens.values()
    }

    pub fn token(&self, id: TokenId) -> Option<&Token> {
        self.tokens.get(&id)
    }

    pub fn token_by_digest(&self, digest: &SecretDigest) -> Option<&Token> {
        self.token_by_digest
            .get(digest)
            .and_then(|id| self.tokens.get(id))
    }

    pub fn user_by_email(&self, email: &str) -> Option<&User> {
        self.users
            .values()
            .find(|u| u.email.eq_ignore_ascii_case(email))
    }

    /// Everything that points at `monitor` (pools and monitor groups) — its referrers.
    pub fn monitor_references(&self, monitor: &Monitor) -> Vec<Reference> {
        let mut out: Vec<Reference> = self
            .pools_of(monitor.account)
            .filter(|p| p.spec.monitor == Some(monitor.id))
            .map(|p| {
                reference(
                    ReferenceType::Referrer,
                    ResourceType::Pool,
                    p.id.to_string(),
                    &p.spec.name,
                )
            })
            .collect();
        out.extend(
            self.monitor_groups_of(monitor.account)
                .filter(|g| g.members.iter().any(|m| m.monitor == monitor.id))
                .map(|g| group_reference(ReferenceType::Referrer, g)),
        );
        out.sort();
        out
    }

    /// A group's monitors (referrals) and the pools it judges (referrers).
    pub fn monitor_group_references(&self, group: &MonitorGroup) -> Vec<Reference> {
        let mut out: Vec<Reference> = group
            .members
            .iter()
            .filter_map(|m| self.monitor(group.account, m.monitor))
            .map(|m| monitor_reference(ReferenceType::Referral, m))
            .collect();
        out.extend(
            self.pools_of(group.account)
                .filter(|p| p.spec.monitor_group == Some(group.id))
                .map(|p| {
                    reference(
                        ReferenceType::Referrer,
                        ResourceType::Pool,
                        p.id.to_string(),
                        &p.spec.name,
                    )
                }),
        );
        out.sort();
        out
    }

    /// The pool's monitor (referral) and the load balancers that use it (referrers).
    pub fn pool_references(&self, pool: &Pool) -> Vec<Reference> {
        let mut out = Vec::new();
        if let Some(m) = pool
            .spec
            .monitor
            .and_then(|m| self.monitor(pool.account, m))
        {
            out.push(monitor_reference(ReferenceType::Referral, m));
        }
        if let Some(g) = pool
            .spec
            .monitor_group
            .and_then(|g| self.monitor_group(pool.account, g))
        {
            out.push(group_reference(ReferenceType::Referral, g));
        }
        out.extend(self.load_balancers_using(pool).map(|lb| {
            reference(
                ReferenceType::Referrer,
                ResourceType::LoadBalancer,
                lb.id.to_string(),
                &lb.spec.name,
            )
        }));
        out.sort();
        out
    }

    /// The pools a load balancer points at (its referrals).
    pub fn load_balancer_references(&self, lb: &LoadBalancer) -> Vec<Reference> {
        let mut out: Vec<Reference> = lb
            .spec
            .referenced_pools()
            .into_iter()
            .filter_map(|id| self.pools.get(&id))
            .map(|p| {
                reference(
                    ReferenceType::Referral,
                    ResourceType::Pool,
                    p.id.to_string(),
                    &p.spec.name,
                )
            })
            .collect();
        out.sort();
        out
    }

    /// The references of the object `id` of kind `kind` in `account` (empty if none).
    pub fn references_of(
        &self,
        account: AccountId,
        kind: ResourceType,
        id: &str,
    ) -> Vec<Reference> {
        match kind {
            ResourceType::Monitor => id
                .parse()
                .ok()
                .and_then(|m| self.monitor(account, m))
                .map(|m| self.monitor_references(m))
                .unwrap_or_default(),
            ResourceType::MonitorGroup => id
                .parse()
                .ok()
                .and_then(|g| self.monitor_group(account, g))
                .map(|g| self.monitor_group_references(g))
                .unwrap_or_default(),
            ResourceType::Pool => id
                .parse()
                .ok()
                .and_then(|p| self.pool(account, p))
                .map(|p| self.pool_references(p))
                .unwrap_or_default(),
            ResourceType::LoadBalancer => id
                .parse()
                .ok()
                .and_then(|lb| self.load_balancers.get(&lb))
                .filter(|lb| self.zone(lb.zone).is_some_and(|z| z.account == account))
                .map(|lb| self.load_balancer_references(lb))
                .unwrap_or_default(),
            ResourceType::NotificationPolicy => Vec::new(),
        }
    }

    fn load_balancers_using<'a>(
        &'a self,
        pool: &'a Pool,
    ) -> impl Iterator<Item = &'a LoadBalancer> + 'a {
        self.load_balancers
            .values()
            .filter(move |lb| lb.spec.referenced_pools().contains(&pool.id))
    }

    // ----- commands ----------------------------------------------------------------------

    pub fn create_account(&self, id: AccountId, name: String, now: Timestamp) -> Outcome {
        if !crate::account::is_account_name(&name) {
            let v = Violation::new(
                Path::root().key("name"),
                "name must be 1-100 printable characters",
            );
            return Err(CatalogError::Invalid(v.into()));
        }
        Ok(vec![Change::PutAccount(Account {
            id,
            name,
            created_on: now,
        })])
    }

    /// Creates a zone. A name that equals, contains or falls inside a zone of another account
    /// is refused unless the installation operator allows it (`overlap`): one tenant must
    /// never capture another's names, and the message names no zone of the other account.
    /// Checks an agent token's binding before it is created: the accounts exist, and no
    /// other usable agent token speaks for a location of the same name (in any region) — a
    /// name is one location, and one location is one vote.
    pub fn check_agent_binding(
        &self,
        binding: &crate::auth::AgentBinding,
        now: Timestamp,
    ) -> Result<(), CatalogError> {
        if let Some(a) = binding
            .accounts
            .iter()
            .find(|a| !self.accounts.contains_key(a))
        {
            return Err(CatalogError::Invalid(
                Violation::new(Path::root().key("accounts"), format!("no account {a}")).into(),
            ));
        }
        let taken = self.tokens.values().any(|t| {
            t.is_usable(now)
                && t.agent
                    .as_ref()
                    .is_some_and(|b| b.location.name == binding.location.name)
        });
        if taken {
            return Err(CatalogError::Invalid(
                Violation::new(
                    Path::root().key("location"),
                    format!(
                        "location {:?} already has an active agent token; revoke it first",
                        binding.location.name
                    ),
                )
                .into(),
            ));
        }
        Ok(())
    }

    /// The locations usable agent tokens speak for, with the accounts each may probe.
    pub fn agent_locations(
        &self,
        now: Timestamp,
    ) -> impl Iterator<Item = &crate::auth::AgentBinding> {
        self.tokens
            .values()
            .filter(move |t| t.is_usable(now))
            .filter_map(|t| t.agent.as_ref())
    }

    pub fn create_zone(
        &self,
        account: AccountId,
        id: ZoneId,
        raw_name: &str,
        overlap: Overlap,
        now: Timestamp,
    ) -> Outcome {
        if !self.accounts.contains_key(&account) {
            return Err(CatalogError::NotFound);
        }
        let Some(name) = crate::name::normalize_zone_name(raw_name) else {
            return Err(CatalogError::Invalid(
                Violation::new(
                    Path::root().key("name"),
                    format!("{raw_name:?} is not a valid zone name"),
                )
                .into(),
            ));
        };
        if self.zones.values().any(|z| z.name == name) {
            return Err(CatalogError::Invalid(name_taken("name", &name)));
        }
        let overlaps = self.zones.values().any(|z| {
            z.account != account && (is_within(&name, &z.name) || is_within(&z.name, &name))
        });
        if overlaps && overlap == Overlap::Refuse {
            return Err(CatalogError::Invalid(
                Violation::new(
                    Path::root().key("name"),
                    format!(
                        "zone {name:?} overlaps a zone of another account; only the \
                         installation operator can allow that (vantage zone create --allow-overlap)"
                    ),
                )
                .into(),
            ));
        }
        self.one_more(account, Quota::Zones)?;
        Ok(vec![Change::PutZone(Zone {
            id,
            account,
            name,
            created_on: now,
            modified_on: now,
            overlap_allowed: overlaps,
        })])
    }

    /// The zones the data plane serves. Of two zones of different accounts where one is, or
    /// is inside, the other, the younger is left out unless the operator allowed the overlap
    /// when creating it: a store written before overlaps were refused can hold such pairs,
    /// and the older claim must keep its traffic. Zones of one account may nest freely.
    pub fn served_zones(&self) -> impl Iterator<Item = &Zone> {
        let by_name: HashMap<&str, &Zone> =
            self.zones.values().map(|z| (z.name.as_str(), z)).collect();
        let older = |a: &Zone, b: &Zone| (a.created_on, a.id) < (b.created_on, b.id);
        let mut shadowed: HashSet<ZoneId> = HashSet::new();
        for inner in self.zones.values() {
            for outer in ancestors(&inner.name).filter_map(|n| by_name.get(n)) {
                if outer.account == inner.account {
                    continue;
                }
                let younger = if older(outer, inner) { inner } else { outer };
                if !younger.overlap_allowed {
                    shadowed.insert(younger.id);
                }
            }
        }
        self.zones
            .values()
            .filter(move |z| !shadowed.contains(&z.id))
    }

    pub fn delete_zone(&self, id: ZoneId) -> Outcome {
        if !self.zones.contains_key(&id) {
            return Err(CatalogError::NotFound);
        }
        let mut refs: Vec<Reference> = self
            .load_balancers_of(id)
            .map(|lb| {
                reference(
                    ReferenceType::Referrer,
                    ResourceType::LoadBalancer,
                    lb.id.to_string(),
                    &lb.spec.name,
                )
            })
            .collect();
        if !refs.is_empty() {
            refs.sort();
            return Err(CatalogError::Referenced(refs));
        }
        Ok(vec![Change::DeleteZone(id)])
    }

    pub fn create_monitor(
        &self,
        account: AccountId,
        id: MonitorId,
        spec: MonitorSpec,
        now: Timestamp,
    ) -> Outcome {
        self.one_more(account, Quota::Monitors)?;
        Ok(vec![Change::PutMonitor(Monitor {
            id,
            account,
            spec,
            created_on: now,
            modified_on: now,
        })])
    }

    pub fn replace_monitor(
        &self,
        account: AccountId,
        id: MonitorId,
        spec: MonitorSpec,
        now: Timestamp,
    ) -> Outcome {
        let old = self.monitor(account, id).ok_or(CatalogError::NotFound)?;
        Ok(vec![Change::PutMonitor(Monitor {
            spec,
            modified_on: now,
            ..old.clone()
        })])
    }

    pub fn delete_monitor(&self, account: AccountId, id: MonitorId) -> Outcome {
        let m = self.monitor(account, id).ok_or(CatalogError::NotFound)?;
        unreferenced(self.monitor_references(m))?;
        Ok(vec![Change::DeleteMonitor(id)])
    }

    pub fn monitor_groups_of(&self, account: AccountId) -> impl Iterator<Item = &MonitorGroup> {
        self.monitor_groups
            .values()
            .filter(move |g| g.account == account)
    }

    pub fn monitor_group(&self, account: AccountId, id: MonitorGroupId) -> Option<&MonitorGroup> {
        self.monitor_groups
            .get(&id)
            .filter(|g| g.account == account)
    }

    /// Every member must be a monitor of the account.
    fn check_monitor_group(
        &self,
        account: AccountId,
        spec: &MonitorGroupSpec,
    ) -> Result<(), CatalogError> {
        let mut v = Violations::default();
        for (i, m) in spec.members.iter().enumerate() {
            if self.monitor(account, m.monitor).is_none() {
                v.push(
                    Path::root().key("members").index(i).key("monitor_id"),
                    format!("monitor {} does not exist in this account", m.monitor),
                );
            }
        }
        v.finish(()).map_err(CatalogError::Invalid)
    }

    pub fn create_monitor_group(
        &self,
        account: AccountId,
        id: MonitorGroupId,
        spec: MonitorGroupSpec,
        now: Timestamp,
    ) -> Outcome {
        self.check_monitor_group(account, &spec)?;
        self.one_more(account, Quota::MonitorGroups)?;
        Ok(vec![Change::PutMonitorGroup(MonitorGroup {
            id,
            account,
            description: spec.description,
            members: MonitorGroup::stamp(&[], &spec.members, now),
            created_on: now,
            modified_on: now,
        })])
    }

    pub fn replace_monitor_group(
        &self,
        account: AccountId,
        id: MonitorGroupId,
        spec: MonitorGroupSpec,
        now: Timestamp,
    ) -> Outcome {
        let old = self
            .monitor_group(account, id)
            .ok_or(CatalogError::NotFound)?;
        self.check_monitor_group(account, &spec)?;
        Ok(vec![Change::PutMonitorGroup(MonitorGroup {
            description: spec.description,
            members: MonitorGroup::stamp(&old.members, &spec.members, now),
            modified_on: now,
            ..old.clone()
        })])
    }

    /// Refused while a pool is judged by the group.
    pub fn delete_monitor_group(&self, account: AccountId, id: MonitorGroupId) -> Outcome {
        let g = self
            .monitor_group(account, id)
            .ok_or(CatalogError::NotFound)?;
        unreferenced(self.monitor_group_references(g))?;
        Ok(vec![Change::DeleteMonitorGroup(id)])
    }

    /// Resolves the monitor or monitor group a pool draft names and checks the pool name is
    /// free.
    fn finish_pool(
        &self,
        account: AccountId,
        self_id: Option<PoolId>,
        mut spec: PoolSpec,
        checks: CheckRefs,
    ) -> Result<PoolSpec, CatalogError> {
        let mut v = Violations::default();
        if let Some(raw) = checks.monitor {
            match raw.parse::<MonitorId>() {
                Ok(id) if self.monitor(account, id).is_some() => spec.monitor = Some(id),
                _ => v.push(
                    Path::root().key("monitor"),
                    format!("monitor {raw:?} does not exist in this account"),
                ),
            }
        }
        if let Some(raw) = checks.monitor_group {
            match raw.parse::<MonitorGroupId>() {
                Ok(id) if self.monitor_group(account, id).is_some() => {
                    spec.monitor_group = Some(id);
                }
                _ => v.push(
                    Path::root().key("monitor_group"),
                    format!("monitor group {raw:?} does not exist in this account"),
                ),
            }
        }
        if self
            .pool_names
            .get(&(account, spec.name.clone()))
            .is_some_and(|ids| ids.iter().any(|id| Some(*id) != self_id))
        {
            return Err(CatalogError::Invalid(name_taken("name", &spec.name)));
        }
        v.finish(spec).map_err(CatalogError::Invalid)
    }

    pub fn create_pool(
        &self,
        account: AccountId,
        id: PoolId,
        spec: PoolSpec,
        checks: CheckRefs,
        now: Timestamp,
    ) -> Outcome {
        let mut spec = self.finish_pool(account, None, spec, checks)?;
        let origins = count(spec.origins.len());
        let more = Usage::one(Quota::Pools).plus(Quota::Origins, origins);
        self.within_quotas(account, more, origins_at)?;
        stamp_disabled_origins(&mut spec, &[], now);
        let disabled_at = (!spec.enabled).then_some(now);
        Ok(vec![Change::PutPool(Pool {
            id,
            account,
            spec,
            created_on: now,
            modified_on: now,
            disabled_at,
        })])
    }

    pub fn replace_pool(
        &self,
        account: AccountId,
        id: PoolId,
        spec: PoolSpec,
        checks: CheckRefs,
        now: Timestamp,
    ) -> Outcome {
        let old = self.pool(account, id).ok_or(CatalogError::NotFound)?;
        let mut spec = self.finish_pool(account, Some(id), spec, checks)?;
        let added = count(spec.origins.len()).saturating_sub(count(old.spec.origins.len()));
        let more = Usage::default().plus(Quota::Origins, added);
        self.within_quotas(account, more, origins_at)?;
        stamp_disabled_origins(&mut spec, &old.spec.origins, now);
        let disabled_at = match (old.spec.enabled, spec.enabled) {
            (_, true) => None,
            (true, false) => Some(now),
            (false, false) => old.disabled_at,
        };
        Ok(vec![Change::PutPool(Pool {
            spec,
            modified_on: now,
            disabled_at,
            ..old.clone()
        })])
    }

    /// `PATCH pools`: sets `notification_email` on every pool of the account.
    pub fn set_notification_email(
        &self,
        account: AccountId,
        email: &str,
        now: Timestamp,
    ) -> Outcome {
        Ok(self
            .pools_of(account)
            .map(|p| {
                let mut p = p.clone();
                p.spec.notification_email = email.to_owned();
                p.modified_on = now;
                Change::PutPool(p)
            })
            .collect())
    }

    pub fn delete_pool(&self, account: AccountId, id: PoolId) -> Outcome {
        let pool = self.pool(account, id).ok_or(CatalogError::NotFound)?;
        unreferenced(self.pool_references(pool))?;
        Ok(vec![Change::DeletePool(id)])
    }

    /// Validates a load balancer draft against its zone: pool references resolve inside the
    /// zone's account and the hostname is unique in the zone.
    pub fn check_load_balancer(
        &self,
        zone: ZoneId,
        self_id: Option<LoadBalancerId>,
        draft: LoadBalancerDraft,
    ) -> Result<LoadBalancerSpec, CatalogError> {
        let z = self.zones.get(&zone).ok_or(CatalogError::NotFound)?;
        let exists = |id: PoolId| self.pool(z.account, id).is_some();
        let spec = draft.validate(&z.name, &exists)?;
        if self
            .load_balancers_of(zone)
            .any(|lb| lb.spec.name == spec.name && Some(lb.id) != self_id)
        {
            return Err(CatalogError::Invalid(name_taken("name", &spec.name)));
        }
        // A name inside a more specific zone belongs to that zone: it would never be served
        // from here (and that zone may be another account's, which is not named).
        let bare = spec.name.strip_prefix("*.").unwrap_or(&spec.name);
        let nested = ancestors(bare)
            .chain(std::iter::once(bare))
            .filter(|n| n.len() > z.name.len())
            .any(|n| self.zones.values().any(|other| other.name == n));
        if nested {
            return Err(CatalogError::Invalid(
                Violation::new(
                    Path::root().key("name"),
                    format!(
                        "{:?} belongs to a more specific zone than {:?}; it would never be served",
                        spec.name, z.name
                    ),
                )
                .into(),
            ));
        }
        Ok(spec)
    }

    pub fn create_load_balancer(
        &self,
        zone: ZoneId,
        id: LoadBalancerId,
        draft: LoadBalancerDraft,
        now: Timestamp,
    ) -> Outcome {
        let spec = self.check_load_balancer(zone, None, draft)?;
        let account = self.zones.get(&zone).ok_or(CatalogError::NotFound)?.account;
        self.one_more(account, Quota::LoadBalancers)?;
        Ok(vec![Change::PutLoadBalancer(LoadBalancer {
            id,
            zone,
            spec,
            created_on: now,
            modified_on: now,
        })])
    }

    pub fn replace_load_balancer(
        &self,
        zone: ZoneId,
        id: LoadBalancerId,
        draft: LoadBalancerDraft,
        now: Timestamp,
    ) -> Outcome {
        let old = self.load_balancer(zone, id).ok_or(CatalogError::NotFound)?;
        let spec = self.check_load_balancer(zone, Some(id), draft)?;
        Ok(vec![Change::PutLoadBalancer(LoadBalancer {
            spec,
            modified_on: now,
            ..old.clone()
        })])
    }

    pub fn delete_load_balancer(&self, zone: ZoneId, id: LoadBalancerId) -> Outcome {
        self.load_balancer(zone, id).ok_or(CatalogError::NotFound)?;
        Ok(vec![Change::DeleteLoadBalancer(id)])
    }

    /// Case-insensitive search over names, descriptions and origin addresses.
    pub fn search(&self, account: AccountId, query: &str) -> Vec<(ResourceType, String, String)> {
        let q = query.to_lowercase();
        let hit = |s: &str| q.is_empty() || s.to_lowercase().contains(&q);
        let mut out = Vec::new();
        for m in self.monitors_of(account) {
            if hit(&m.spec.description) || hit(&m.id.to_string()) {
                out.push((
                    ResourceType::Monitor,
                    m.id.to_string(),
                    m.spec.description.clone(),
                ));
            }
        }
        for g in self.monitor_groups_of(account) {
            if hit(&g.description) || hit(&g.id.to_string()) {
                out.push((
                    ResourceType::MonitorGroup,
                    g.id.to_string(),
                    g.description.clone(),
                ));
            }
        }
        for p in self.pools_of(account) {
            if hit(&p.spec.name)
                || hit(&p.spec.description)
                || p.spec
                    .origins
                    .iter()
                    .any(|o| hit(&o.address) || hit(&o.name))
            {
                out.push((ResourceType::Pool, p.id.to_string(), p.spec.name.clone()));
            }
        }
        for z in self.zones_of(account) {
            for lb in self.load_balancers_of(z.id) {
                if hit(&lb.spec.name) || hit(&lb.spec.description) {
                    out.push((
                        ResourceType::LoadBalancer,
                        lb.id.to_string(),
                        lb.spec.name.clone(),
                    ));
                }
            }
        }
        out
    }
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Where a pool request asks for origins, and for the pool itself.
fn origins_at(quota: Quota) -> Path {
    match quota {
        Quota::Origins => Path::root().key("origins"),
        _ => Path::root(),
    }
}

fn reference(
    reference_type: ReferenceType,
    resource_type: ResourceType,
    id: String,
    name: &str,
) -> Reference {
    Reference {
        reference_type,
        resource_type,
        resource_id: id,
        resource_name: name.to_owned(),
    }
}

/// Refuses a deletion while anything refers to the object; what it refers to does not count.
fn unreferenced(refs: Vec<Reference>) -> Result<(), CatalogError> {
    let referrers: Vec<Reference> = refs
        .into_iter()
        .filter(|r| r.reference_type == ReferenceType::Referrer)
        .collect();
    match referrers.is_empty() {
        true => Ok(()),
        false => Err(CatalogError::Referenced(referrers)),
    }
}

/// Sets when each disabled origin was disabled: kept from `before` (by name) while it stays
/// disabled, `now` when it was enabled before or is new.
fn stamp_disabled_origins(spec: &mut PoolSpec, before: &[crate::pool::OriginSpec], now: Timestamp) {
    for o in &mut spec.origins {
        o.disabled_at = (!o.enabled).then(|| {
            before
                .iter()
                .find(|b| b.name == o.name && !b.enabled)
                .and_then(|b| b.disabled_at)
                .unwrap_or(now)
        });
    }
}

/// A monitor as a reference names it: its description, else its id.
fn monitor_reference(reference_type: ReferenceType, m: &Monitor) -> Reference {
    let name = if m.spec.description.is_empty() {
        m.id.to_string()
    } else {
        m.spec.description.clone()
    };
    reference(
        reference_type,
        ResourceType::Monitor,
        m.id.to_string(),
        &name,
    )
}

/// A monitor group as a reference names it, the same way.
fn group_reference(reference_type: ReferenceType, g: &MonitorGroup) -> Reference {
    let name = if g.description.is_empty() {
        g.id.to_string()
    } else {
        g.description.clone()
    };
    reference(
        reference_type,
        ResourceType::MonitorGroup,
        g.id.to_string(),
        &name,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::MonitorDraft;
    use crate::pool::{OriginDraft, PoolDraft};

    const A: AccountId = AccountId::from_bytes([1; 16]);
    const B: AccountId = AccountId::from_bytes([2; 16]);
    const T0: Timestamp = Timestamp::from_unix_micros(1_000_000);
    const T1: Timestamp = Timestamp::from_unix_micros(2_000_000);

    fn applied(c: &mut Catalog, command: impl FnOnce(&Catalog) -> Outcome) {
        for ch in command(c).unwrap() {
            c.apply(ch);
        }
    }

    fn setup() -> (Catalog, MonitorId, PoolId, ZoneId) {
        let mut c = Catalog::default();
        applied(&mut c, |c| c.create_account(A, "a".into(), T0));
        applied(&mut c, |c| c.create_account(B, "b".into(), T0));
        let z = ZoneId::from_bytes([9; 16]);
        applied(&mut c, |c| {
            c.create_zone(A, z, "Example.COM.", Overlap::Refuse, T0)
        });
        let m = MonitorId::from_bytes([3; 16]);
        let spec = MonitorDraft {
            expected_codes: Some("2xx".into()),
            ..Default::default()
        }
        .validate()
        .unwrap();
        applied(&mut c, |c| c.create_monitor(A, m, spec, T0));
        let p = PoolId::from_bytes([4; 16]);
        let (spec, mon) = pool_draft("p1").validate().unwrap();
        assert_eq!(mon, CheckRefs::default());
        applied(&mut c, |c| {
            c.create_pool(A, p, spec, CheckRefs::monitor(m), T0)
        });
        (c, m, p, z)
    }

    fn pool_draft(name: &str) -> PoolDraft {
        PoolDraft {
            name: Some(name.into()),
            origins: Some(vec![OriginDraft {
                name: Some("o".into()),
                address: Some("192.0.2.1".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }
    }

    fn lb_draft(p: PoolId) -> LoadBalancerDraft {
        LoadBalancerDraft {
            name: Some("www.example.com".into()),
            default_pools: Some(vec![p.to_string()]),
            fallback_pool: Some(p.to_string()),
            ..Default::default()
        }
    }

    #[test]
    fn zone_names_are_normalised_and_unique() {
        let (c, ..) = setup();
        assert_eq!(c.zones().next().unwrap().name, "example.com");
        assert!(matches!(
            c.create_zone(
                B,
                ZoneId::from_bytes([8; 16]),
                "EXAMPLE.com",
                Overlap::Refuse,
                T0
            ),
            Err(CatalogError::Invalid(_))
        ));
    }

    #[test]
    fn zones_of_other_accounts_cannot_overlap() {
        let (mut c, _, p, z) = setup();
        let id = ZoneId::from_bytes([8; 16]);
        applied(&mut c, |c| {
            c.create_zone(
                A,
                ZoneId::from_bytes([7; 16]),
                "shop.example.org",
                Overlap::Refuse,
                T0,
            )
        });
        // Inside, equal to, and containing a zone of account A.
        for name in [
            "www.example.com",
            "a.b.example.com",
            "EXAMPLE.com",
            "example.org",
        ] {
            let Err(CatalogError::Invalid(v)) = c.create_zone(B, id, name, Overlap::Refuse, T0)
            else {
                panic!("{name} was accepted");
            };
            assert_eq!(v.into_vec()[0].path.to_pointer(), "/name", "{name}");
        }
        // Not overlapping: a sibling, or a name that merely ends in the same letters.
        for name in ["example.net", "badexample.com"] {
            assert!(c.create_zone(B, id, name, Overlap::Refuse, T0).is_ok());
        }
        // The same account may nest its own zones.
        assert!(c
            .create_zone(A, id, "sub.example.com", Overlap::Refuse, T0)
            .is_ok());
        // The operator may delegate; the zone records that it did.
        let changes = c
            .create_zone(B, id, "shop.example.com", Overlap::AllowedByOperator, T1)
            .unwrap();
        assert!(matches!(&changes[0], Change::PutZone(z) if z.overlap_allowed));
        for ch in changes {
            c.apply(ch);
        }
        // The parent's load balancers cannot take names of the nested zone any more.
        let mut lb = lb_draft(p);
        lb.name = Some("api.shop.example.com".into());
        assert!(matches!(
            c.create_load_balancer(z, LoadBalancerId::from_bytes([5; 16]), lb, T0),
            Err(CatalogError::Invalid(_))
        ));
        let served: Vec<&str> = c.served_zones().map(|z| z.name.as_str()).collect();
        assert_eq!(served.len(), 3, "{served:?}");
    }

    #[test]
    fn an_overlap_stored_before_it_was_refused_is_not_served() {
        // Older stores may hold overlapping zones of two accounts: the older claim keeps its
        // names whichever way round they nest.
        let (mut c, ..) = setup();
        let zone = |id: u8, account, name: &str, at| Zone {
            id: ZoneId::from_bytes([id; 16]),
            account,
            name: name.into(),
            created_on: at,
            modified_on: at,
            overlap_allowed: false,
        };
        c.apply(Change::PutZone(zone(20, B, "www.example.com", T1)));
        c.apply(Change::PutZone(zone(21, B, "example.net", T0)));
        c.apply(Change::PutZone(zone(22, A, "api.example.net", T1)));
        let mut served: Vec<&str> = c.served_zones().map(|z| z.name.as_str()).collect();
        served.sort_unstable();
        assert_eq!(served, ["example.com", "example.net"]);
    }

    #[test]
    fn pool_monitor_must_be_in_the_same_account() {
        let (c, m, ..) = setup();
        let (spec, _) = pool_draft("other").validate().unwrap();
        let err = c
            .create_pool(
                B,
                PoolId::from_bytes([5; 16]),
                spec,
                CheckRefs::monitor(m),
                T0,
            )
            .unwrap_err();
        let CatalogError::Invalid(v) = err else {
            panic!("{err:?}")
        };
        assert_eq!(v.iter().next().unwrap().path.to_pointer(), "/monitor");
    }

    #[test]
    fn pool_names_unique_per_account_only() {
        let (c, ..) = setup();
        let (spec, _) = pool_draft("p1").validate().unwrap();
        assert!(c
            .create_pool(
                A,
                PoolId::from_bytes([5; 16]),
                spec.clone(),
                CheckRefs::default(),
                T0
            )
            .is_err());
        assert!(c
            .create_pool(
                B,
                PoolId::from_bytes([5; 16]),
                spec,
                CheckRefs::default(),
                T0
            )
            .is_ok());
    }

    #[test]
    fn referenced_objects_cannot_be_deleted() {
        let (mut c, m, p, z) = setup();
        let refs = match c.delete_monitor(A, m) {
            Err(CatalogError::Referenced(r)) => r,
            other => panic!("{other:?}"),
        };
        assert_eq!(refs[0].resource_id, p.to_string());
        assert_eq!(refs[0].reference_type, ReferenceType::Referrer);

        let lb = LoadBalancerId::from_bytes([6; 16]);
        applied(&mut c, |c| c.create_load_balancer(z, lb, lb_draft(p), T0));
        assert!(
            matches!(c.delete_pool(A, p), Err(CatalogError::Referenced(r)) if r[0].resource_type == ResourceType::LoadBalancer)
        );
        assert!(matches!(c.delete_zone(z), Err(CatalogError::Referenced(_))));
        applied(&mut c, |c| c.delete_load_balancer(z, lb));
        applied(&mut c, |c| c.delete_pool(A, p));
        applied(&mut c, |c| c.delete_monitor(A, m));
        applied(&mut c, |c| c.delete_zone(z));
    }

    #[test]
    fn other_accounts_objects_are_not_found() {
        let (c, m, p, _) = setup();
        assert!(c.monitor(B, m).is_none());
        assert_eq!(c.delete_pool(B, p), Err(CatalogError::NotFound));
        let spec = c.monitor(A, m).unwrap().spec.clone();
        assert_eq!(
            c.replace_monitor(B, m, spec, T1),
            Err(CatalogError::NotFound)
        );
    }

    #[test]
    fn replace_keeps_created_on_and_tracks_disabled_at() {
        let (mut c, m, p, _) = setup();
        let (mut spec, _) = pool_draft("p1").validate().unwrap();
        spec.enabled = false;
        applied(&mut c, |c| {
            c.replace_pool(A, p, spec.clone(), CheckRefs::monitor(m), T1)
        });
        let pool = c.pool(A, p).unwrap();
        assert_eq!(
            (pool.created_on, pool.modified_on, pool.disabled_at),
            (T0, T1, Some(T1))
        );
        spec.enabled = true;
        applied(&mut c, |c| {
            c.replace_pool(A, p, spec, CheckRefs::default(), T1)
        });
        assert_eq!(c.pool(A, p).unwrap().disabled_at, None);
        assert_eq!(c.pool(A, p).unwrap().spec.monitor, None);
    }

    #[test]
    fn load_balancer_pools_must_be_in_the_zone_account() {
        let (c, _, _, z) = setup();
        let foreign = PoolId::from_bytes([7; 16]);
        assert!(matches!(
            c.create_load_balancer(
                z,
                LoadBalancerId::from_bytes([6; 16]),
                lb_draft(foreign),
                T0
            ),
            Err(CatalogError::Invalid(_))
        ));
    }

    /// Everything a catalog holds, in a stable order (its token index included).
    fn contents(c: &Catalog) -> String {
        let mut digests: Vec<_> = c.token_by_digest.iter().map(|(d, t)| (d.0, *t)).collect();
        digests.sort();
        format!(
            "{:?}{:?}{:?}{:?}{:?}{:?}{:?}{:?}{:?}{:?}{digests:?}",
            c.accounts,
            c.zones,
            c.monitors,
            c.monitor_groups,
            (c.pools.clone(), {
                let mut names: Vec<_> = c.pool_names.iter().collect();
                names.sort();
                format!("{names:?}")
            }),
            c.load_balancers,
            c.tokens,
            c.users,
            c.webhooks,
            c.policies
        )
    }

    #[test]
    fn pool_names_are_unique_per_account_and_freed_by_renames_and_deletes() {
        let (mut c, m, p, _) = setup();
        let other = PoolId::from_bytes([6; 16]);
        let named = |name: &str| pool_draft(name).validate().unwrap().0;
        let create = |c: &Catalog, account, name: &str| {
            c.create_pool(account, other, named(name), CheckRefs::default(), T1)
        };
        assert!(create(&c, A, "p1").is_err(), "taken in this account");
        assert!(
            create(&c, B, "p1").is_ok(),
            "another account's names are its own"
        );
        // A pool replaced under its own name keeps it.
        applied(&mut c, |c| {
            c.replace_pool(A, p, named("p1"), CheckRefs::monitor(m), T1)
        });
        assert!(create(&c, A, "p1").is_err());
        applied(&mut c, |c| {
            c.replace_pool(A, p, named("p2"), CheckRefs::monitor(m), T1)
        });
        assert!(create(&c, A, "p1").is_ok(), "a rename frees the old name");
        assert!(create(&c, A, "p2").is_err());
        applied(&mut c, |c| c.delete_pool(A, p));
        assert!(create(&c, A, "p2").is_ok(), "a delete frees the name");
    }

    #[test]
    fn undos_given_back_newest_first_restore_the_catalog() {
        use crate::auth::{SecretDigest, TokenKind, TokenStatus};
        let (mut c, m, p, z) = setup();
        let token = |digest: u8| Token {
            id: TokenId::from_bytes([5; 16]),
            name: "t".into(),
            digest: SecretDigest([digest; 32]),
            status: TokenStatus::Active,
            grants: vec![],
            issued_on: T0,
            modified_on: T0,
            expires_on: None,
            kind: TokenKind::Api,
            agent: None,
        };
        applied(&mut c, |_| Ok(vec![Change::PutToken(token(1))]));
        let before = contents(&c);
        let second = PoolId::from_bytes([6; 16]);
        let (spec, _) = pool_draft("p2").validate().unwrap();
        let mut changes = c
            .create_pool(A, second, spec, CheckRefs::monitor(m), T1)
            .unwrap();
        changes.extend([
            Change::DeletePool(p),
            Change::DeleteZone(z),
            Change::PutToken(token(2)),
            Change::DeletePool(second),
            Change::DeleteMonitor(m),
        ]);
        let undos: Vec<Undo> = changes.into_iter().map(|ch| c.apply_undoable(ch)).collect();
        assert_ne!(contents(&c), before);
        assert!(c.token_by_digest(&SecretDigest([1; 32])).is_none());
        for undo in undos.into_iter().rev() {
            c.undo(undo);
        }
        assert_eq!(contents(&c), before);
        assert!(c.token_by_digest(&SecretDigest([2; 32])).is_none());
        assert_eq!(
            c.token_by_digest(&SecretDigest([1; 32])).unwrap().id,
            token(1).id
        );
    }

    fn pool_of(name: &str, origins: usize) -> PoolSpec {
        let draft = PoolDraft {
            name: Some(name.into()),
            origins: Some(
                (0..origins)
                    .map(|i| OriginDraft {
                        name: Some(format!("o{i}")),
                        address: Some(format!("192.0.2.{}", i + 1)),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        };
        draft.validate().unwrap().0
    }

    fn pointer(outcome: Outcome) -> String {
        match outcome {
            Err(CatalogError::Invalid(v)) => v.into_vec()[0].path.to_pointer(),
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn quotas_count_each_account_and_refuse_only_growth() {
        let (mut c, _, p, z) = setup();
        assert_eq!(c.usage(A).of(Quota::Pools), 1);
        assert_eq!(c.usage(A).of(Quota::Origins), 1);
        assert_eq!(c.usage(A).of(Quota::Monitors), 1);
        assert_eq!(c.usage(A).of(Quota::Zones), 1);
        assert_eq!(c.usage(B), Usage::default());
        c.set_quotas(
            Quotas::default()
                .with(Quota::Pools, 2)
                .with(Quota::Origins, 4)
                .with(Quota::LoadBalancers, 1),
        );
        // Three more origins fit; four do not, and the refusal points at them.
        let p2 = PoolId::from_bytes([5; 16]);
        let four = pool_of("p2", 4);
        assert_eq!(
            pointer(c.create_pool(A, p2, four, CheckRefs::default(), T1)),
            "/origins"
        );
        applied(&mut c, |c| {
            c.create_pool(A, p2, pool_of("p2", 3), CheckRefs::default(), T1)
        });
        assert_eq!(c.usage(A).of(Quota::Origins), 4);
        // A third pool is one too many, with origins to spare.
        c.set_quotas(c.quotas().with(Quota::Origins, 100));
        let p3 = PoolId::from_bytes([6; 16]);
        let refused = c.create_pool(A, p3, pool_of("p3", 1), CheckRefs::default(), T1);
        assert_eq!(pointer(refused), "");
        c.set_quotas(c.quotas().with(Quota::Origins, 4));
        // Growing a pool is refused; shrinking and keeping are not.
        let grown = c.replace_pool(A, p, pool_of("p1", 2), CheckRefs::default(), T1);
        assert_eq!(pointer(grown), "/origins");
        applied(&mut c, |c| {
            c.replace_pool(A, p2, pool_of("p2", 1), CheckRefs::default(), T1)
        });
        assert_eq!(c.usage(A).of(Quota::Origins), 2);
        // Another account's usage is its own.
        applied(&mut c, |c| {
            c.create_pool(B, p3, pool_of("p3", 4), CheckRefs::default(), T1)
        });
        assert_eq!(c.usage(B).of(Quota::Origins), 4);
        assert_eq!(c.usage(A).of(Quota::Origins), 2);
        // Load balancers count for their zone's account.
        let lb = LoadBalancerId::from_bytes([7; 16]);
        applied(&mut c, |c| c.create_load_balancer(z, lb, lb_draft(p), T1));
        assert_eq!(c.usage(A).of(Quota::LoadBalancers), 1);
        let mut second = lb_draft(p);
        second.name = Some("api.example.com".into());
        let lb2 = LoadBalancerId::from_bytes([8; 16]);
        assert!(c.create_load_balancer(z, lb2, second, T1).is_err());
        applied(&mut c, |c| c.delete_load_balancer(z, lb));
        assert_eq!(c.usage(A).of(Quota::LoadBalancers), 0);
        // Over a lowered quota, deleting still works and frees room.
        c.set_quotas(Quotas::default().with(Quota::Pools, 1));
        applied(&mut c, |c| c.delete_pool(A, p2));
        assert_eq!(c.usage(A).of(Quota::Pools), 1);
        assert_eq!(c.usage(A).of(Quota::Origins), 1);
    }

    #[test]
    fn undone_changes_give_their_counts_back() {
        let (mut c, m, p, _) = setup();
        let before = c.usage(A);
        let p2 = PoolId::from_bytes([5; 16]);
        let mut undos = Vec::new();
        let changes = c
            .create_pool(A, p2, pool_of("p2", 3), CheckRefs::monitor(m), T1)
            .unwrap()
            .into_iter()
            .chain(
                c.replace_pool(A, p, pool_of("p1", 5), CheckRefs::default(), T1)
                    .unwrap(),
            );
        for change in changes {
            undos.push(c.apply_undoable(change));
        }
        assert_eq!(c.usage(A).of(Quota::Origins), 1 + 3 + 4);
        for undo in undos.into_iter().rev() {
            c.undo(undo);
        }
        assert_eq!(c.usage(A), before);
    }
}
