//! Taking changes back. The writer checks a group of commands on the live catalog, each
//! against the changes of the ones before it, takes those changes back before anyone can read
//! them, and applies them for good once the store holds the whole group (group commit: one
//! transaction, one flush for many writes).

use std::collections::{BTreeMap, HashMap};

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

impl Catalog {
    /// Applies `change` and returns how to take it back with [`Catalog::undo`]. Undos given
    /// back in reverse order restore the catalog exactly.
    pub fn apply_undoable(&mut self, change: Change) -> Undo {
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
