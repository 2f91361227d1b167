//! The agent protocol's messages, pinned: a field renamed or retyped here breaks agents and
//! controllers of other versions that are still running, so every change to these shapes
//! must show up as a diff of `tests/golden/*.json` (and, when it is not backward compatible,
//! as a new protocol version). Refresh with `VANTAGE_UPDATE_SNAPSHOT=1`.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use vantage_control::agent_protocol::{
    Assignment, Changes, Monitor, PreviewCheck, PreviewChecks, PreviewFacts, PreviewReport, Report,
    Reported, Target, VERSION,
};
use vantage_core::health::{Facts, FailureReason, Outcome, ProbeKey};
use vantage_core::monitor::MonitorDraft;
use vantage_core::monitor::MonitorSpec;
use vantage_core::{AccountId, MonitorId, Timestamp};

fn key() -> ProbeKey {
    ProbeKey {
        monitor: MonitorId::from_bytes([7; 16]),
        address: "192.0.2.10".into(),
        port: 8080,
        host: Some("www.example.com".into()),
    }
}

#[test]
fn the_assignment_message_is_pinned() {
    let spec = MonitorDraft {
        expected_codes: Some("2xx".into()),
        path: Some("/health".into()),
        ..Default::default()
    }
    .validate()
    .unwrap();
    let message = Assignment {
        version: 42,
        epoch: Some(7),
        monitors: BTreeMap::from([(
            key().monitor,
            Monitor {
                account: Some(AccountId::from_bytes([3; 16])),
                ..Monitor::from(&spec)
            },
        )]),
        targets: vec![Target {
            key: (&key()).into(),
            pools: vec!["primary".into()],
        }],
        changes: None,
    };
    common::pinned("assignment", &message);
    // A version 3 controller's message (no epoch) is still read: as a whole assignment.
    let mut older = serde_json::to_value(&message).unwrap();
    older.as_object_mut().unwrap().remove("epoch");
    let older: Assignment = serde_json::from_value(older).unwrap();
    assert_eq!((older.epoch, older.changes), (None, None));
    // A version 4 controller's monitors name no account: the agent reads them without.
    let mut v4 = serde_json::to_value(&message).unwrap();
    for m in v4["monitors"].as_object_mut().unwrap().values_mut() {
        m.as_object_mut().unwrap().remove("account");
    }
    let v4: Assignment = serde_json::from_value(v4).unwrap();
    assert_eq!(v4.monitors.values().next().unwrap().account, None);
    // A delta: what changed since version 41.
    let delta = Assignment {
        version: 43,
        changes: Some(Changes {
            since: 42,
            removed: vec![vantage_control::agent_protocol::TargetKey {
                address: "192.0.2.11".into(),
                ..(&key()).into()
            }],
        }),
        ..message.clone()
    };
    common::pinned("assignment_delta", &delta);
    // What the agent reads back is the core's value again.
    let back = message.monitors.into_values().next().unwrap();
    assert_eq!(MonitorSpec::try_from(back).unwrap(), spec);
    assert_eq!(ProbeKey::from(message.targets[0].key.clone()), key());
    let broken = Monitor {
        expected_codes: Some("2xx,banana".into()),
        ..Monitor::from(&spec)
    };
    let refused = MonitorSpec::try_from(broken).unwrap_err();
    assert!(refused.contains("2xx,banana"), "{refused}");
}

#[test]
fn the_results_message_is_pinned() {
    let facts = [
        Facts {
            outcome: Outcome::Http {
                status: 200,
                body_matched: true,
            },
            rtt_micros: Some(1_234),
        },
        Facts {
            outcome: Outcome::Error(FailureReason::TcpTimeout),
            rtt_micros: None,
        },
    ];
    let report = Report {
        region: "WEU".into(),
        location: "ams1".into(),
        results: vec![
            Reported {
                key: (&key()).into(),
                facts: (&facts[0]).into(),
                at: Timestamp::from_unix_micros(1_764_547_200_000_000),
            },
            Reported {
                key: (&key()).into(),
                facts: (&facts[1]).into(),
                at: Timestamp::from_unix_micros(1_764_547_260_000_000),
            },
        ],
    };
    common::pinned("results", &report);
    let back: Vec<Facts> = report.results.into_iter().map(|r| r.facts.into()).collect();
    assert_eq!(back, facts);
    assert_eq!(
        VERSION, 5,
        "a new version needs its golden messages reviewed"
    );
}

#[test]
fn the_preview_messages_are_pinned() {
    let spec = MonitorDraft {
        expected_codes: Some("200".into()),
        ..Default::default()
    }
    .validate()
    .unwrap();
    let checks = PreviewChecks {
        checks: vec![PreviewCheck {
            id: 17,
            monitor: Monitor::from(&spec),
            address: "192.0.2.10".into(),
            port: 0,
            host: Some("www.example.com".into()),
        }],
    };
    common::pinned("preview_checks", &checks);
    let facts = Facts {
        outcome: Outcome::Http {
            status: 503,
            body_matched: false,
        },
        rtt_micros: Some(2_500),
    };
    let report = PreviewReport {
        results: vec![PreviewFacts {
            id: 17,
            facts: (&facts).into(),
        }],
    };
    common::pinned("preview_results", &report);
    assert_eq!(Facts::from(report.results[0].facts.clone()), facts);
}
