//! Load-balancing rules (Cloudflare's custom rules): a condition on the request and what to
//! do when it holds — override some of the load balancer's fields for this request, answer
//! with a fixed response, or stop evaluating further rules.
//!
//! Evaluation is a pure function of the load balancer and one request's [`Facts`]: enabled
//! rules in ascending priority (array order breaks ties); every matching rule's overrides
//! apply on top of the ones before; a matching rule that terminates (any fixed response
//! does) ends the evaluation. The result is the load balancer steering then uses, so every
//! steering behaviour works under overrides exactly as without.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use super::{
    field, AffinityAttributes, AffinityAttributesDraft, LoadBalancerSpec, LocationMode, PoolLookup,
    PreferEcs, RandomSteering, SessionAffinity, SteeringPolicy,
};
use crate::choice::choose;
use crate::region::RegionCode;
use crate::violation::{in_range, Path, Violations};
use crate::PoolId;

mod condition;
mod fields;
mod lexer;

pub use condition::{Condition, Mode, MAX_CONDITION, MAX_DEPTH, MAX_PATTERNS, MAX_REGEX};
pub use fields::{DnsFacts, Facts, Field, HttpFacts, Scope, Type};

/// The most rules one load balancer may have.
pub const MAX_RULES: usize = 100;
/// The most `matches` patterns across one load balancer's rules: compiled patterns are the
/// one part of a rule that can be large (up to [`MAX_REGEX`] each), so their number is
/// bounded per load balancer, not only per condition.
pub const MAX_LB_PATTERNS: usize = 32;
/// Longest rule name, in characters (Cloudflare's limit).
pub const MAX_NAME: usize = 200;

/// What a matching rule answers instead of steering (proxied load balancers only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedResponse {
    pub status_code: u16,
    pub content_type: Option<String>,
    pub message_body: Option<String>,
    pub location: Option<String>,
}

/// The fields a rule may override, each as the load balancer's own field would be.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    pub failover_across_pools: Option<bool>,
    pub country_pools: Option<BTreeMap<String, Vec<PoolId>>>,
    pub default_pools: Option<Vec<PoolId>>,
    pub fallback_pool: Option<PoolId>,
    pub location_mode: Option<LocationMode>,
    pub prefer_ecs: Option<PreferEcs>,
    pub pop_pools: Option<BTreeMap<String, Vec<PoolId>>>,
    pub random_steering: Option<RandomSteering>,
    pub region_pools: Option<BTreeMap<RegionCode, Vec<PoolId>>>,
    pub session_affinity: Option<SessionAffinity>,
    pub session_affinity_attributes: Option<AffinityAttributes>,
    pub session_affinity_ttl: Option<u32>,
    pub steering_policy: Option<SteeringPolicy>,
    pub ttl: Option<u32>,
}

impl Overrides {
    pub fn is_empty(&self) -> bool {
        *self == Overrides::default()
    }

    /// Every pool these overrides name.
    pub fn pools(&self) -> impl Iterator<Item = &PoolId> {
        let maps = [&self.country_pools, &self.pop_pools]
            .into_iter()
            .flatten()
            .flat_map(|m| m.values().flatten());
        self.default_pools
            .iter()
            .flatten()
            .chain(self.fallback_pool.iter())
            .chain(maps)
            .chain(self.region_pools.iter().flat_map(|m| m.values().flatten()))
            .chain(
                self.random_steering
                    .iter()
                    .flat_map(|r| r.pool_weights.keys()),
            )
    }

    /// Writes these overrides onto `spec`.
    fn apply(&self, s: &mut LoadBalancerSpec) {
        fn set<T: Clone>(to: &mut T, from: &Option<T>) {
            if let Some(v) = from {
                to.clone_from(v);
            }
        }
        set(&mut s.failover_across_pools, &self.failover_across_pools);
        set(&mut s.country_pools, &self.country_pools);
        set(&mut s.default_pools, &self.default_pools);
        set(&mut s.fallback_pool, &self.fallback_pool);
        set(&mut s.location_mode, &self.location_mode);
        set(&mut s.prefer_ecs, &self.prefer_ecs);
        set(&mut s.pop_pools, &self.pop_pools);
        set(&mut s.random_steering, &self.random_steering);
        set(&mut s.region_pools, &self.region_pools);
        set(&mut s.session_affinity, &self.session_affinity);
        set(
            &mut s.session_affinity_attributes,
            &self.session_affinity_attributes,
        );
        set(&mut s.session_affinity_ttl, &self.session_affinity_ttl);
        set(&mut s.steering_policy, &self.steering_policy);
        set(&mut s.ttl, &self.ttl);
    }
}

/// One rule, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    pub condition: Condition,
    pub disabled: bool,
    pub priority: u32,
    /// Always true with a fixed response.
    pub terminates: bool,
    pub fixed_response: Option<FixedResponse>,
    pub overrides: Overrides,
}

impl Rule {
    /// How the rule is named in headers, metrics and logs: its name, else its position.
    pub fn label(&self, index: usize) -> Cow<'_, str> {
        if self.name.is_empty() {
            Cow::Owned(format!("#{index}"))
        } else {
            Cow::Borrowed(&self.name)
        }
    }
}

/// A load balancer's rules as given (array order, which the API echoes) and the order they
/// are evaluated in. Shared, so a spec cloned to apply overrides does not copy them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rules {
    list: Arc<[Rule]>,
    /// Indexes into `list` of the enabled rules, by ascending priority then array order.
    order: Arc<[usize]>,
    /// Some enabled rule reads the client's address.
    reads_client: bool,
}

impl Rules {
    pub fn new(list: Vec<Rule>) -> Rules {
        let mut order: Vec<usize> = (0..list.len()).filter(|i| !list[*i].disabled).collect();
        order.sort_by_key(|i| (list[*i].priority, *i));
        let reads_client = order.iter().any(|i| list[*i].condition.reads_client());
        Rules {
            list: list.into(),
            order: order.into(),
            reads_client,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Rule> {
        self.list.iter()
    }

    pub fn get(&self, index: usize) -> Option<&Rule> {
        self.list.get(index)
    }

    /// Whether an answer may depend on the client's address through a rule.
    pub fn read_client(&self) -> bool {
        self.reads_client
    }
}

/// The rules' verdict on one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Ruled<'s> {
    /// The load balancer to steer with: the original unless a matching rule overrode some of
    /// its fields.
    pub spec: Cow<'s, LoadBalancerSpec>,
    /// Answer this instead of steering.
    pub fixed: Option<&'s FixedResponse>,
    /// Indexes (array order) of the rules that matched, in evaluation order.
    pub matched: Vec<usize>,
}

impl<'s> Ruled<'s> {
    /// No rule applies: the load balancer as it is.
    pub fn none(spec: &'s LoadBalancerSpec) -> Ruled<'s> {
        Ruled {
            spec: Cow::Borrowed(spec),
            fixed: None,
            matched: Vec::new(),
        }
    }
}

impl LoadBalancerSpec {
    /// Evaluates the rules on one request.
    pub fn ruled<'s>(&'s self, facts: &Facts<'_>) -> Ruled<'s> {
        let mut out = Ruled::none(self);
        for &i in self.rules.order.iter() {
            let rule = &self.rules.list[i];
            if !rule.condition.matches(facts) {
                continue;
            }
            out.matched.push(i);
            if !rule.overrides.is_empty() {
                rule.overrides.apply(out.spec.to_mut());
            }
            if let Some(fixed) = &rule.fixed_response {
                out.fixed = Some(fixed);
            }
            if rule.terminates {
                break;
            }
        }
        out
    }
}

// ---- drafts and validation ----

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FixedResponseDraft {
    pub status_code: Option<i64>,
    pub content_type: Option<String>,
    pub message_body: Option<String>,
    pub location: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct OverridesDraft {
    pub failover_across_pools: Option<bool>,
    pub country_pools: Option<BTreeMap<String, Vec<String>>>,
    pub default_pools: Option<Vec<String>>,
    pub fallback_pool: Option<String>,
    pub location_mode: Option<String>,
    pub prefer_ecs: Option<String>,
    pub pop_pools: Option<BTreeMap<String, Vec<String>>>,
    /// Given at all (its fields may all be absent: then the defaults).
    pub random_steering: bool,
    pub random_default_weight: Option<f64>,
    pub random_pool_weights: Option<BTreeMap<String, f64>>,
    pub region_pools: Option<BTreeMap<String, Vec<String>>>,
    pub session_affinity: Option<String>,
    pub session_affinity_attributes: Option<AffinityAttributesDraft>,
    pub session_affinity_ttl: Option<i64>,
    pub steering_policy: Option<String>,
    pub ttl: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleDraft {
    pub name: Option<String>,
    pub condition: Option<String>,
    pub disabled: Option<bool>,
    pub priority: Option<i64>,
    pub terminates: Option<bool>,
    pub fixed_response: Option<FixedResponseDraft>,
    pub overrides: Option<OverridesDraft>,
}

/// A header value a client will receive: printable, no line breaks.
fn header_safe(s: &str) -> bool {
    s.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
}

fn text(v: &mut Violations, at: Path, raw: Option<String>, max: usize) -> Option<String> {
    let s = raw?;
    if s.chars().count() > max {
        let field = at.to_string();
        v.push(at, format!("{field} is longer than {max} characters"));
        return None;
    }
    Some(s)
}

fn fixed_response(v: &mut Violations, at: &Path, d: FixedResponseDraft) -> FixedResponse {
    let status = match d.status_code {
        None => {
            v.push(at.key("status_code"), "status_code is required");
            200
        }
        Some(code) => {
            let checked = in_range(&at.key("status_code"), "status_code", code, 200, 599);
            v.take(checked, 200) as u16
        }
    };
    let content_type = text(v, at.key("content_type"), d.content_type, 32);
    let location = text(v, at.key("location"), d.location, 2048);
    for (name, value) in [("content_type", &content_type), ("location", &location)] {
        if value.as_deref().is_some_and(|s| !header_safe(s)) {
            v.push(
                at.key(name),
                format!(
                    "{name} must be printable ASCII without line breaks (it is sent as a header)"
                ),
            );
        }
    }
    FixedResponse {
        status_code: status,
        content_type,
        message_body: text(v, at.key("message_body"), d.message_body, 1024),
        location,
    }
}

fn overrides(
    v: &mut Violations,
    at: &Path,
    d: OverridesDraft,
    lb_affinity: SessionAffinity,
    pools: &dyn PoolLookup,
) -> Overrides {
    let session_affinity = d.session_affinity.as_deref().map(|s| {
        choose(
            v,
            at.key("session_affinity"),
            Some(s),
            SessionAffinity::None,
        )
    });
    let affinity = session_affinity.unwrap_or(lb_affinity);
    if session_affinity == Some(SessionAffinity::Header) && d.session_affinity_attributes.is_none()
    {
        // The headers would otherwise be the load balancer's, chosen for another affinity.
        v.push(
            at.key("session_affinity_attributes"),
            "a rule that sets header session affinity must name its headers in session_affinity_attributes",
        );
    }
    Overrides {
        failover_across_pools: d.failover_across_pools,
        country_pools: d
            .country_pools
            .map(|m| field::country_pools(v, &at.key("country_pools"), Some(m), pools)),
        default_pools: d
            .default_pools
            .map(|p| field::default_pools(v, &at.key("default_pools"), p, pools)),
        fallback_pool: d.fallback_pool.and_then(|p| {
            field::fallback_pool(v, &at.key("fallback_pool"), Some(p.as_str()), pools)
        }),
        location_mode: d.location_mode.as_deref().map(|s| {
            choose(
                v,
                at.key("location_strategy").key("mode"),
                Some(s),
                LocationMode::Pop,
            )
        }),
        prefer_ecs: d.prefer_ecs.as_deref().map(|s| {
            choose(
                v,
                at.key("location_strategy").key("prefer_ecs"),
                Some(s),
                PreferEcs::Proximity,
            )
        }),
        pop_pools: d
            .pop_pools
            .map(|m| field::pop_pools(v, &at.key("pop_pools"), Some(m), pools)),
        random_steering: d.random_steering.then(|| {
            field::random_steering(
                v,
                &at.key("random_steering"),
                d.random_default_weight,
                d.random_pool_weights,
                pools,
            )
        }),
        region_pools: d
            .region_pools
            .map(|m| field::region_pools(v, &at.key("region_pools"), Some(m), pools)),
        session_affinity,
        session_affinity_attributes: d.session_affinity_attributes.map(|a| {
            field::affinity_attributes(v, &at.key("session_affinity_attributes"), affinity, a)
        }),
        session_affinity_ttl: d
            .session_affinity_ttl
            .map(|t| field::affinity_ttl(v, &at.key("session_affinity_ttl"), affinity, Some(t))),
        steering_policy: d
            .steering_policy
            .as_deref()
            .map(|s| choose(v, at.key("steering_policy"), Some(s), SteeringPolicy::Unset)),
        ttl: d.ttl.map(|t| field::ttl(v, &at.key("ttl"), Some(t))),
    }
}

/// Validates a load balancer's rules (`at` is the `rules` array). `lb_affinity` is the load
/// balancer's own session affinity (an override's TTL is checked against it unless the
/// override sets its own).
pub fn validate(
    v: &mut Violations,
    at: &Path,
    drafts: Vec<RuleDraft>,
    mode: Mode,
    lb_affinity: SessionAffinity,
    pools: &dyn PoolLookup,
) -> Rules {
    if drafts.len() > MAX_RULES {
        v.push(
            at.clone(),
            format!(
                "a load balancer has at most {MAX_RULES} rules, not {}",
                drafts.len()
            ),
        );
        return Rules::default();
    }
    // "If no value is provided for any rule the array order of the rules field will be used
    // to assign a priority" (Cloudflare's API schema).
    let positional = drafts.iter().all(|d| d.priority.is_none());
    let mut out = Vec::with_capacity(drafts.len());
    // Patterns compiled so far: once over the load balancer's budget, no further condition
    // is compiled (a refused document must not cost 100 rules' worth of regexes first).
    let mut patterns = 0usize;
    for (i, d) in drafts.into_iter().enumerate() {
        let here = at.index(i);
        let name = text(v, here.key("name"), d.name, MAX_NAME).unwrap_or_default();
        let source = d.condition.unwrap_or_default();
        let condition = if patterns > MAX_LB_PATTERNS {
            Condition::always(mode)
        } else {
            Condition::parse(&source, mode).unwrap_or_else(|e| {
                v.push(here.key("condition"), e);
                Condition::always(mode)
            })
        };
        patterns += condition.patterns();
        let priority = match d.priority {
            None if positional => i as u32,
            None => 0,
            Some(p) => {
                let checked =
                    in_range(&here.key("priority"), "priority", p, 0, i64::from(u32::MAX));
                v.take(checked, 0) as u32
            }
        };
        let fixed = d
            .fixed_response
            .map(|f| fixed_response(v, &here.key("fixed_response"), f));
        if fixed.is_some() && mode == Mode::DnsOnly {
            v.push(
                here.key("fixed_response"),
                "a fixed response needs a proxied load balancer: a DNS answer cannot carry one",
            );
        }
        if d.terminates == Some(false) && fixed.is_some() {
            v.push(
                here.key("terminates"),
                "a rule with a fixed response always terminates",
            );
        }
        let overrides = overrides(
            v,
            &here.key("overrides"),
            d.overrides.unwrap_or_default(),
            lb_affinity,
            pools,
        );
        out.push(Rule {
            name,
            condition,
            disabled: d.disabled.unwrap_or(false),
            priority,
            terminates: d.terminates.unwrap_or(false) || fixed.is_some(),
            fixed_response: fixed,
            overrides,
        });
    }
    if patterns > MAX_LB_PATTERNS {
        v.push(
            at.clone(),
            format!(
                "a load balancer's rules have at most {MAX_LB_PATTERNS} `matches` patterns in all"
            ),
        );
    }
    Rules::new(out)
}
