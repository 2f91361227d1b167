//! One check: the facts a prober reports, and the core's judgement of them.

use crate::monitor::MonitorSpec;

crate::string_enum!(
    /// Why a check failed, in Cloudflare's words.
    FailureReason {
        None = "No failures",
        TcpConnectionFailed = "TCP connection failed",
        TcpTimeout = "TCP timeout",
        HttpTimeout = "HTTP timeout occurred",
        ResponseCodeMismatch = "Response code mismatch error",
        ResponseBodyMismatch = "Response body mismatch error",
        TlsUntrusted = "TLS untrusted certificate error",
        TlsNameMismatch = "TLS name mismatch error",
        TlsHandshake = "TLS handshake failure",
        NoRoute = "No route to host error",
        NetworkUnreachable = "Network unreachable",
        ConnectionReset = "Connection reset by peer",
        DnsUnknownHost = "DNS unknown host",
        HttpInvalidResponse = "HTTP invalid response",
        Other = "Other failure",
        /// The prober's own machine could not run the check (out of descriptors, buffers or
        /// ports). Says nothing about the origin: never a vote (`Engine::admit` refuses it).
        LocalResources = "Local resources exhausted",
    }
);

/// What a prober saw. Probers report facts, never verdicts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// An HTTP(S) answer (the last one, after any redirects the prober was asked to follow).
    /// `body_matched`: `expected_body` occurs in the first 10 KiB (true when none is expected).
    Http { status: u16, body_matched: bool },
    /// The SMTP replies to `HELO` and `QUIT` (`quit` is `None` if it never came).
    Smtp { helo: u16, quit: Option<u16> },
    /// A TCP connection, an ICMP echo reply, or a UDP datagram that drew no port-unreachable.
    Reached,
    /// The check could not complete.
    Error(FailureReason),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub outcome: Outcome,
    /// Round-trip time of the successful exchange, microseconds.
    pub rtt_micros: Option<u64>,
}

/// One check's judgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    pub healthy: bool,
    pub reason: FailureReason,
    pub response_code: Option<u16>,
    pub rtt_micros: Option<u64>,
}

/// Judges a check's facts by its monitor (contract §5 rule 1).
pub fn judge(spec: &MonitorSpec, facts: &Facts) -> CheckResult {
    let fail = |reason, code| CheckResult {
        healthy: false,
        reason,
        response_code: code,
        rtt_micros: facts.rtt_micros,
    };
    match &facts.outcome {
        Outcome::Error(reason) => fail(*reason, None),
        Outcome::Http {
            status,
            body_matched,
        } => {
            let codes_ok = match &spec.expected_codes {
                Some(codes) => codes.matches(*status),
                None => (200..300).contains(status),
            };
            if !codes_ok {
                fail(FailureReason::ResponseCodeMismatch, Some(*status))
            } else if !body_matched {
                fail(FailureReason::ResponseBodyMismatch, Some(*status))
            } else {
                CheckResult {
                    healthy: true,
                    reason: FailureReason::None,
                    response_code: Some(*status),
                    rtt_micros: facts.rtt_micros,
                }
            }
        }
        Outcome::Smtp { helo, quit } => {
            if *helo != 250 {
                fail(FailureReason::ResponseCodeMismatch, Some(*helo))
            } else if *quit != Some(221) {
                fail(FailureReason::ResponseCodeMismatch, *quit)
            } else {
                CheckResult {
                    healthy: true,
                    reason: FailureReason::None,
                    response_code: Some(221),
                    rtt_micros: facts.rtt_micros,
                }
            }
        }
        Outcome::Reached => CheckResult {
            healthy: true,
            reason: FailureReason::None,
            response_code: None,
            rtt_micros: facts.rtt_micros,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::choice::Choice;
    use crate::monitor::MonitorDraft;

    fn spec(codes: &str) -> MonitorSpec {
        MonitorDraft {
            expected_codes: Some(codes.into()),
            ..Default::default()
        }
        .validate()
        .unwrap()
    }

    fn http(status: u16, body_matched: bool) -> Facts {
        Facts {
            outcome: Outcome::Http {
                status,
                body_matched,
            },
            rtt_micros: Some(1200),
        }
    }

    #[test]
    fn http_codes_then_body() {
        let s = spec("2xx,301");
        assert!(judge(&s, &http(204, true)).healthy);
        assert!(judge(&s, &http(301, true)).healthy);
        let r = judge(&s, &http(302, true));
        assert_eq!(
            (r.healthy, r.reason, r.response_code),
            (false, FailureReason::ResponseCodeMismatch, Some(302))
        );
        assert_eq!(
            judge(&s, &http(200, false)).reason,
            FailureReason::ResponseBodyMismatch
        );
    }

    #[test]
    fn smtp_needs_250_then_221() {
        let s = spec("200");
        let smtp = |helo, quit| Facts {
            outcome: Outcome::Smtp { helo, quit },
            rtt_micros: None,
        };
        assert!(judge(&s, &smtp(250, Some(221))).healthy);
        let r = judge(&s, &smtp(554, None));
        assert_eq!((r.healthy, r.response_code), (false, Some(554)));
        assert!(!judge(&s, &smtp(250, None)).healthy);
    }

    #[test]
    fn errors_keep_their_reason() {
        let r = judge(
            &spec("200"),
            &Facts {
                outcome: Outcome::Error(FailureReason::TlsNameMismatch),
                rtt_micros: None,
            },
        );
        assert_eq!(
            (r.healthy, r.reason.as_str()),
            (false, "TLS name mismatch error")
        );
    }
}
