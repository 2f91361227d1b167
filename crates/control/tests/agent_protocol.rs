//! The agent protocol's messages, pinned: a field renamed or retyped here breaks agents and
//! controllers of other versions that are still running, so every change to these shapes
//! must show up as a diff of `tests/golden/*.json` (and, when it is not backward compatible,
//! as a new protocol version). Refresh with `VANTAGE_UPDATE_SNAPSHOT=1`.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use vantage_control::agent_protocol::{Assignment, Report, Reported, Target, VERSION};
use vantage_core::health::{Facts, FailureReason, Outcome, ProbeKey};
use vantage_core::monitor::MonitorDraft;
use vantage_core::{MonitorId, Timestamp};

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
        monitors: BTreeMap::from([(key().monitor, spec)]),
        targets: vec![Target {
            key: key(),
            pools: vec!["primary".into()],
        }],
    };
    common::pinned("assignment", &message);
}

#[test]
fn the_results_message_is_pinned() {
    let report = Report {
        region: "WEU".into(),
        location: "ams1".into(),
        results: vec![
            Reported {
                key: key(),
                facts: Facts {
                    outcome: Outcome::Http {
                        status: 200,
                        body_matched: true,
                    },
                    rtt_micros: Some(1_234),
                },
                at: Timestamp::from_unix_micros(1_764_547_200_000_000),
            },
            Reported {
                key: key(),
                facts: Facts {
                    outcome: Outcome::Error(FailureReason::TcpTimeout),
                    rtt_micros: None,
                },
                at: Timestamp::from_unix_micros(1_764_547_260_000_000),
            },
        ],
    };
    common::pinned("results", &report);
    assert_eq!(
        VERSION, 2,
        "a new version needs its golden messages reviewed"
    );
}
