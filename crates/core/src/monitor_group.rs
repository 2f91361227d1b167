//! Monitor groups, as Cloudflare defines them: several monitors that judge each origin of a
//! pool together. Each member monitor probes every origin as a pool's own monitor would; the
//! origin's verdict is [`crate::health::verdict::group_verdict`] over the members' verdicts.

use crate::violation::{Path, Violations};
use crate::{AccountId, MonitorGroupId, MonitorId, Timestamp};

/// The most members a group may have: each one probes every origin of every pool using the
/// group from every checking location, so a member costs as much as a pool's monitor.
pub const MAX_MEMBERS: usize = 16;
/// The longest description accepted, in characters.
pub const MAX_DESCRIPTION: usize = 1024;

/// What one member's verdict counts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Role {
    /// Its failure alone makes the origin unhealthy.
    pub must_be_healthy: bool,
    /// Probed and shown, but never counted.
    pub monitoring_only: bool,
}

impl Role {
    /// A pool's own monitor: the one vote there is.
    pub const SOLE: Role = Role {
        must_be_healthy: false,
        monitoring_only: false,
    };

    /// Whether it votes in the quorum.
    pub const fn counts(self) -> bool {
        !self.monitoring_only
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub monitor: MonitorId,
    /// A disabled member sends no probe and has no say.
    pub enabled: bool,
    pub role: Role,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorGroupSpec {
    pub description: String,
    pub members: Vec<MemberSpec>,
}

/// A member as validated, before the catalog stamps its times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberSpec {
    pub monitor: MonitorId,
    pub enabled: bool,
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorGroup {
    pub id: MonitorGroupId,
    pub account: AccountId,
    pub description: String,
    pub members: Vec<Member>,
    pub created_on: Timestamp,
    pub modified_on: Timestamp,
}

impl MonitorGroup {
    /// The members that send probes.
    pub fn enabled_members(&self) -> impl Iterator<Item = &Member> {
        self.members.iter().filter(|m| m.enabled)
    }

    /// The members with `now` as the time of every change: a member already in the group
    /// with the same settings keeps its times, a changed one keeps `created_at`.
    pub fn stamp(before: &[Member], spec: &[MemberSpec], now: Timestamp) -> Vec<Member> {
        spec.iter()
            .map(|m| match before.iter().find(|b| b.monitor == m.monitor) {
                Some(b) if b.enabled == m.enabled && b.role == m.role => b.clone(),
                Some(b) => Member {
                    monitor: m.monitor,
                    enabled: m.enabled,
                    role: m.role,
                    created_at: b.created_at,
                    updated_at: now,
                },
                None => Member {
                    monitor: m.monitor,
                    enabled: m.enabled,
                    role: m.role,
                    created_at: now,
                    updated_at: now,
                },
            })
            .collect()
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemberDraft {
    pub monitor_id: Option<String>,
    pub enabled: Option<bool>,
    pub monitoring_only: Option<bool>,
    pub must_be_healthy: Option<bool>,
}

/// A group as a client described it: every field optional, values unchecked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MonitorGroupDraft {
    pub description: Option<String>,
    pub members: Option<Vec<MemberDraft>>,
}

impl MonitorGroupDraft {
    /// Checks everything that does not need the catalog (whether each monitor exists in the
    /// account is the catalog's to say). Defaults as Cloudflare's examples set them: a
    /// member is enabled, votes, and has no veto.
    pub fn validate(self) -> Result<MonitorGroupSpec, Violations> {
        let root = Path::root();
        let mut v = Violations::default();
        let description = self.description.unwrap_or_default();
        if description.chars().count() > MAX_DESCRIPTION {
            v.push(
                root.key("description"),
                format!("description is longer than {MAX_DESCRIPTION} characters"),
            );
        }
        let drafts = match self.members {
            Some(m) if !m.is_empty() => m,
            _ => {
                v.push(
                    root.key("members"),
                    "a monitor group needs at least one member",
                );
                Vec::new()
            }
        };
        if drafts.len() > MAX_MEMBERS {
            v.push(
                root.key("members"),
                format!("a monitor group has at most {MAX_MEMBERS} members"),
            );
        }
        let mut members: Vec<MemberSpec> = Vec::with_capacity(drafts.len());
        for (i, d) in drafts.into_iter().enumerate() {
            let at = root.key("members").index(i);
            let raw = d.monitor_id.unwrap_or_default();
            let Ok(monitor) = raw.parse::<MonitorId>() else {
                v.push(
                    at.key("monitor_id"),
                    if raw.is_empty() {
                        "monitor_id is required".to_owned()
                    } else {
                        format!("monitor_id {raw:?} is not a monitor identifier")
                    },
                );
                continue;
            };
            if members.iter().any(|m| m.monitor == monitor) {
                v.push(
                    at.key("monitor_id"),
                    format!("monitor {monitor} is already a member of this group"),
                );
                continue;
            }
            let role = Role {
                must_be_healthy: d.must_be_healthy.unwrap_or(false),
                monitoring_only: d.monitoring_only.unwrap_or(false),
            };
            if role.must_be_healthy && role.monitoring_only {
                v.push(
                    at.key("must_be_healthy"),
                    "a monitoring-only member has no say in health, so it cannot also be one that must be healthy",
                );
            }
            members.push(MemberSpec {
                monitor,
                enabled: d.enabled.unwrap_or(true),
                role,
            });
        }
        if !members.is_empty() && !members.iter().any(|m| m.enabled && m.role.counts()) {
            v.push(
                root.key("members"),
                "at least one member must be enabled and not monitoring-only, or the group can never judge an origin",
            );
        }
        v.finish(MonitorGroupSpec {
            description,
            members,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M1: &str = "0123456789abcdef0123456789abcdef";
    const M2: &str = "fedcba9876543210fedcba9876543210";

    fn member(id: &str) -> MemberDraft {
        MemberDraft {
            monitor_id: Some(id.into()),
            ..Default::default()
        }
    }

    fn pointers(d: MonitorGroupDraft) -> Vec<String> {
        d.validate()
            .unwrap_err()
            .iter()
            .map(|v| v.path.to_pointer())
            .collect()
    }

    #[test]
    fn defaults_make_a_voting_enabled_member() {
        let spec = MonitorGroupDraft {
            members: Some(vec![member(M1)]),
            ..Default::default()
        }
        .validate()
        .unwrap();
        assert_eq!(spec.description, "");
        assert_eq!(spec.members[0].role, Role::SOLE);
        assert!(spec.members[0].enabled);
    }

    #[test]
    fn refuses_what_could_never_judge_or_means_nothing() {
        assert_eq!(pointers(MonitorGroupDraft::default()), ["/members"]);
        let dup = MonitorGroupDraft {
            members: Some(vec![member(M1), member(M1)]),
            ..Default::default()
        };
        assert_eq!(pointers(dup), ["/members/1/monitor_id"]);
        let contradiction = MonitorGroupDraft {
            members: Some(vec![
                member(M1),
                MemberDraft {
                    must_be_healthy: Some(true),
                    monitoring_only: Some(true),
                    ..member(M2)
                },
            ]),
            ..Default::default()
        };
        assert_eq!(pointers(contradiction), ["/members/1/must_be_healthy"]);
        let silent = MonitorGroupDraft {
            members: Some(vec![
                MemberDraft {
                    enabled: Some(false),
                    ..member(M1)
                },
                MemberDraft {
                    monitoring_only: Some(true),
                    ..member(M2)
                },
            ]),
            ..Default::default()
        };
        assert_eq!(pointers(silent), ["/members"]);
        let bad = MonitorGroupDraft {
            members: Some(vec![member("nope"), MemberDraft::default()]),
            ..Default::default()
        };
        assert_eq!(
            pointers(bad),
            ["/members/0/monitor_id", "/members/1/monitor_id"]
        );
        let many = MonitorGroupDraft {
            members: Some(
                (0..=MAX_MEMBERS)
                    .map(|i| member(&format!("{i:032x}")))
                    .collect(),
            ),
            ..Default::default()
        };
        assert_eq!(pointers(many), ["/members"]);
    }

    #[test]
    fn stamping_keeps_times_of_unchanged_members() {
        let t = |s| Timestamp::from_unix_micros(s);
        let spec = |must| {
            vec![MemberSpec {
                monitor: M1.parse().unwrap(),
                enabled: true,
                role: Role {
                    must_be_healthy: must,
                    monitoring_only: false,
                },
            }]
        };
        let first = MonitorGroup::stamp(&[], &spec(false), t(1));
        assert_eq!(MonitorGroup::stamp(&first, &spec(false), t(2)), first);
        let changed = MonitorGroup::stamp(&first, &spec(true), t(3));
        assert_eq!((changed[0].created_at, changed[0].updated_at), (t(1), t(3)));
    }
}
