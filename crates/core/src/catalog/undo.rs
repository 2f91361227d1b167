//! Taking changes back. The writer checks a group of commands on the live catalog, each
//! against the changes of the ones before it, takes those changes back before anyone can read
//! them, and applies them for good once the store holds the whole group (group commit: one
//! transaction, one flush for many writes).

use std::collections::{BTreeMap, HashMap};

use super::quota::{Quota, Usage};
use super::{Catalog, Change};
use crate::account::Account;
use crate::auth::{Token, User};
use crate::load_balancer::LoadBalancer;
use crate::monitor::Monitor;
use crate::monitor_group::MonitorGroup;
use crate::notification::{Policy, Webhook};
use crate::pool::Pool;
use crate::zone::Zone;
use crate::{
    AccountId, LoadBalancerId, MonitorGroupId, MonitorId, PolicyId, PoolId, TokenId, UserId,
    WebhookId, ZoneId,
};

/// What one applied change replaced: the object under its id before, or none.
#[derive(Debug)]
#[must_use = "an undo not given back to the catalog leaves the change applied"]
pub struct Undo(Prior);

#[derive(Debug)]
enum Prior {
    Account(AccountId, Option<Account>),
    Zone(ZoneId, Option<Zone>),
    Monitor(MonitorId, Option<Monitor>),
    MonitorGroup(MonitorGroupId, Option<MonitorGroup>),
    Pool(PoolId, Option<Pool>),
    LoadBalancer(LoadBalancerId, Option<LoadBalancer>),
    Token(TokenId, Option<Token>),
    User(UserId, Option<User>),
    Webhook(WebhookId, Option<Webhook>),
    Policy(PolicyId, Option<Policy>),
}

fn put_back<K: Ord, V>(map: &mut BTreeMap<K, V>, id: K, prior: Option<V>) {
    match prior {
        Some(v) => map.insert(id, v),
        None => map.remove(&id),
    };
}

type PoolNames = HashMap<(AccountId, String), Vec<PoolId>>;

fn index_pool(names: &mut PoolNames, pool: &Pool) {
    names
        .entry((pool.account, pool.spec.name.clone()))
        .or_default()
        .push(pool.id);
}

fn unindex_pool(names: &mut PoolNames, pool: &Pool) {
    let key = (pool.account, pool.spec.name.clone());
    if let Some(ids) = names.get_mut(&key) {
        ids.retain(|id| *id != pool.id);
        if ids.is_empty() {
            names.remove(&key);
        }
    }
}

/// An object counted against its account's quotas, by kind and id.
#[derive(Debug, Clone, Copy)]
enum Counted {
    Zone(ZoneId),
    Monitor(MonitorId),
    MonitorGroup(MonitorGroupId),
    Pool(PoolId),
    LoadBalancer(LoadBalancerId),
    Webhook(WebhookId),
    Policy(PolicyId),
}

impl Change {
    fn counted(&self) -> Option<Counted> {
        Some(match self {
            Change::PutZone(z) => Counted::Zone(z.id),
            Change::DeleteZone(id) => Counted::Zone(*id),
            Change::PutMonitor(m) => Counted::Monitor(m.id),
            Change::DeleteMonitor(id) => Counted::Monitor(*id),
            Change::PutMonitorGroup(g) => Counted::MonitorGroup(g.id),
            Change::DeleteMonitorGroup(id) => Counted::MonitorGroup(*id),
            Change::PutPool(p) => Counted::Pool(p.id),
            Change::DeletePool(id) => Counted::Pool(*id),
            Change::PutLoadBalancer(lb) => Counted::LoadBalancer(lb.id),
            Change::DeleteLoadBalancer(id) => Counted::LoadBalancer(*id),
            Change::PutWebhook(w) => Counted::Webhook(w.id),
            Change::DeleteWebhook(id) => Counted::Webhook(*id),
            Change::PutPolicy(p) => Counted::Policy(p.id),
            Change::DeletePolicy(id) => Counted::Policy(*id),
            Change::PutAccount(_) | Change::PutToken(_) | Change::PutUser(_) => return None,
        })
    }
}

impl Prior {
    fn counted(&self) -> Option<Counted> {
        Some(match self {
            Prior::Zone(id, _) => Counted::Zone(*id),
            Prior::Monitor(id, _) => Counted::Monitor(*id),
            Prior::MonitorGroup(id, _) => Counted::MonitorGroup(*id),
            Prior::Pool(id, _) => Counted::Pool(*id),
            Prior::LoadBalancer(id, _) => Counted::LoadBalancer(*id),
            Prior::Webhook(id, _) => Counted::Webhook(*id),
            Prior::Policy(id, _) => Counted::Policy(*id),
            Prior::Account(..) | Prior::Token(..) | Prior::User(..) => return None,
        })
    }
}

impl Catalog {
    /// What the object under `counted` counts for, and against which account.
    fn footprint(&self, counted: Counted) -> Option<(AccountId, Usage)> {
        match counted {
            Counted::Zone(id) => self
                .zones
                .get(&id)
                .map(|z| (z.account, Usage::one(Quota::Zones))),
            Counted::Monitor(id) => {
                (self.monitors.get(&id)).map(|m| (m.account, Usage::one(Quota::Monitors)))
            }
            Counted::MonitorGroup(id) => (self.monitor_groups.get(&id))
                .map(|g| (g.account, Usage::one(Quota::MonitorGroups))),
            Counted::Pool(id) => self.pools.get(&id).map(|p| {
                let origins = super::count(p.spec.origins.len());
                (
                    p.account,
                    Usage::one(Quota::Pools).plus(Quota::Origins, origins),
                )
            }),
            // A load balancer counts for the account of its zone (zones outlive them).
            Counted::LoadBalancer(id) => {
                let lb = self.load_balancers.get(&id)?;
                let account = self.zones.get(&lb.zone)?.account;
                Some((account, Usage::one(Quota::LoadBalancers)))
            }
            Counted::Webhook(id) => {
                (self.webhooks.get(&id)).map(|w| (w.account, Usage::one(Quota::Webhooks)))
            }
            Counted::Policy(id) => (self.policies.get(&id))
                .map(|p| (p.account, Usage::one(Quota::NotificationPolicies))),
        }
    }

    /// Moves the counts from what the object counted for before a change to what it counts
    /// for after.
    fn recount(&mut self, before: Option<(AccountId, Usage)>, counted: Counted) {
        let after = self.footprint(counted);
        if let Some((account, usage)) = before {
            let held = self.usage.entry(account).or_default();
            held.subtract(&usage);
            if held.is_empty() {
                self.usage.remove(&account);
            }
        }
        if let Some((account, usage)) = after {
            self.usage.entry(account).or_default().add(&usage);
        }
    }

    /// Applies `change` and returns how to take it back with [`Catalog::undo`]. Undos given
    /// back in reverse order restore the catalog exactly.
    pub fn apply_undoable(&mut self, change: Change) -> Undo {
        let counted = change.counted();
        let before = counted.and_then(|c| self.footprint(c));
        let undo = self.apply_uncounted(change);
        if let Some(counted) = counted {
            self.recount(before, counted);
        }
        undo
    }

    fn apply_uncounted(&mut self, change: Change) -> Undo {
        Undo(match change {
            Change::PutAccount(a) => Prior::Account(a.id, self.accounts.insert(a.id, a)),
            Change::PutZone(z) => Prior::Zone(z.id, self.zones.insert(z.id, z)),
            Change::DeleteZone(id) => Prior::Zone(id, self.zones.remove(&id)),
            Change::PutMonitor(m) => Prior::Monitor(m.id, self.monitors.insert(m.id, m)),
            Change::DeleteMonitor(id) => Prior::Monitor(id, self.monitors.remove(&id)),
            Change::PutMonitorGroup(g) => {
                Prior::MonitorGroup(g.id, self.monitor_groups.insert(g.id, g))
            }
            Change::DeleteMonitorGroup(id) => {
                Prior::MonitorGroup(id, self.monitor_groups.remove(&id))
            }
            Change::PutPool(p) => {
                if let Some(old) = self.pools.get(&p.id) {
                    unindex_pool(&mut self.pool_names, old);
                }
                index_pool(&mut self.pool_names, &p);
                Prior::Pool(p.id, self.pools.insert(p.id, p))
            }
            Change::DeletePool(id) => {
                let prior = self.pools.remove(&id);
                if let Some(old) = &prior {
                    unindex_pool(&mut self.pool_names, old);
                }
                Prior::Pool(id, prior)
            }
            Change::PutLoadBalancer(lb) => {
                Prior::LoadBalancer(lb.id, self.load_balancers.insert(lb.id, lb))
            }
            Change::DeleteLoadBalancer(id) => {
                Prior::LoadBalancer(id, self.load_balancers.remove(&id))
            }
            Change::PutToken(t) => {
                let id = t.id;
                self.token_by_digest.insert(t.digest, id);
                let prior = self.tokens.insert(id, t);
                if let Some(old) = &prior {
                    if self.tokens[&id].digest != old.digest {
                        self.token_by_digest.remove(&old.digest);
                    }
                }
                Prior::Token(id, prior)
            }
            Change::PutUser(u) => Prior::User(u.id, self.users.insert(u.id, u)),
            Change::PutWebhook(w) => Prior::Webhook(w.id, self.webhooks.insert(w.id, w)),
            Change::DeleteWebhook(id) => Prior::Webhook(id, self.webhooks.remove(&id)),
            Change::PutPolicy(p) => Prior::Policy(p.id, self.policies.insert(p.id, p)),
            Change::DeletePolicy(id) => Prior::Policy(id, self.policies.remove(&id)),
        })
    }

    /// Takes back the change `undo` came from; give undos back newest first.
    pub fn undo(&mut self, undo: Undo) {
        let counted = undo.0.counted();
        let before = counted.and_then(|c| self.footprint(c));
        self.undo_uncounted(undo);
        if let Some(counted) = counted {
            self.recount(before, counted);
        }
    }

    fn undo_uncounted(&mut self, undo: Undo) {
        match undo.0 {
            Prior::Account(id, p) => put_back(&mut self.accounts, id, p),
            Prior::Zone(id, p) => put_back(&mut self.zones, id, p),
            Prior::Monitor(id, p) => put_back(&mut self.monitors, id, p),
            Prior::MonitorGroup(id, p) => put_back(&mut self.monitor_groups, id, p),
            Prior::Pool(id, p) => {
                if let Some(now) = self.pools.get(&id) {
                    unindex_pool(&mut self.pool_names, now);
                }
                if let Some(old) = &p {
                    index_pool(&mut self.pool_names, old);
                }
                put_back(&mut self.pools, id, p);
            }
            Prior::LoadBalancer(id, p) => put_back(&mut self.load_balancers, id, p),
            Prior::Token(id, p) => {
                if let Some(now) = self.tokens.get(&id) {
                    self.token_by_digest.remove(&now.digest);
                }
                if let Some(old) = &p {
                    self.token_by_digest.insert(old.digest, id);
                }
                put_back(&mut self.tokens, id, p);
            }
            Prior::User(id, p) => put_back(&mut self.users, id, p),
            Prior::Webhook(id, p) => put_back(&mut self.webhooks, id, p),
            Prior::Policy(id, p) => put_back(&mut self.policies, id, p),
        }
    }
}
