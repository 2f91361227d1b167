//! `vantage check URL`: one health check with monitor semantics, like curl for health. The
//! flags are a monitor's fields, validated by the same core rules as the API; the prober runs
//! the check and the core judges it, exactly as for a configured monitor.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use vantage_core::choice::Choice;
use vantage_core::health::check::judge;
use vantage_core::health::Outcome;
use vantage_core::monitor::{Headers, MonitorDraft};
use vantage_probe::{Prober, Target};

use crate::Output;

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// What to check: `http(s)://host[:port]/path?query`, or `host[:port]` with --type
    /// tcp, smtp, icmp or udp_icmp.
    target: String,
    /// Monitor type (default: the URL's scheme).
    #[arg(long = "type")]
    kind: Option<String>,
    #[arg(long, default_value = "GET")]
    method: String,
    /// Status codes that pass: `200`, `2xx`, …
    #[arg(long, default_value = "2xx")]
    expected_codes: String,
    /// A string the first 10 KiB of the body must contain (case-insensitive).
    #[arg(long)]
    expected_body: Option<String>,
    /// A request header `Name: value` (repeatable).
    #[arg(long = "header", short = 'H')]
    headers: Vec<String>,
    /// Seconds to wait for the check.
    #[arg(long, default_value_t = 5)]
    timeout: i64,
    /// Immediate retries when the check cannot complete.
    #[arg(long, default_value_t = 0)]
    retries: i64,
    #[arg(long)]
    follow_redirects: bool,
    /// Accept any certificate.
    #[arg(long)]
    allow_insecure: bool,
    /// Extra CA certificates (PEM) to trust.
    #[arg(long)]
    probe_ca_file: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "text")]
    output: Output,
}

/// Where to send the check, from the target argument.
struct Endpoint {
    kind: String,
    address: String,
    port: u16,
    path: String,
}

fn endpoint(args: &CheckArgs) -> anyhow::Result<Endpoint> {
    if args.target.contains("://") {
        let url = url::Url::parse(&args.target)
            .with_context(|| format!("{:?} is not a URL", args.target))?;
        let host = url
            .host_str()
            .with_context(|| format!("{:?} names no host", args.target))?;
        let mut path = url.path().to_owned();
        if let Some(q) = url.query() {
            path = format!("{path}?{q}");
        }
        Ok(Endpoint {
            kind: args.kind.clone().unwrap_or_else(|| url.scheme().to_owned()),
            address: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port: url.port().unwrap_or(0),
            path,
        })
    } else {
        let kind = args
            .kind
            .clone()
            .context("give a URL, or --type with host[:port]")?;
        let (address, port) = match args.target.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') || h.starts_with('[') => (
                h.trim_start_matches('[').trim_end_matches(']').to_owned(),
                p.parse::<u16>()
                    .with_context(|| format!("{p:?} is not a port"))?,
            ),
            _ => (args.target.clone(), 0),
        };
        Ok(Endpoint {
            kind,
            address,
            port,
            path: "/".to_owned(),
        })
    }
}

/// Runs the check; the exit code says the verdict (0 healthy, 1 unhealthy).
pub fn run(args: CheckArgs) -> anyhow::Result<bool> {
    let target = endpoint(&args)?;
    let mut header = Headers::new();
    for h in &args.headers {
        let (k, v) = h
            .split_once(':')
            .with_context(|| format!("header {h:?} is not `Name: value`"))?;
        header
            .entry(k.trim().to_owned())
            .or_default()
            .push(v.trim().to_owned());
    }
    let http = matches!(target.kind.as_str(), "http" | "https");
    let draft = MonitorDraft {
        kind: Some(target.kind.clone()),
        method: http.then(|| args.method.clone()),
        path: http.then(|| target.path.clone()),
        header: (!header.is_empty()).then_some(header),
        port: Some(i64::from(target.port)),
        timeout: Some(args.timeout),
        retries: Some(args.retries),
        // Only the check is run; the interval just has to be valid for these settings.
        interval: Some(((args.retries.max(0) + 1) * args.timeout.max(1) + 1).max(60)),
        expected_codes: http.then(|| args.expected_codes.clone()),
        expected_body: args.expected_body.clone(),
        follow_redirects: Some(args.follow_redirects),
        allow_insecure: Some(args.allow_insecure),
        ..MonitorDraft::default()
    };
    let spec = draft.validate().map_err(|violations| {
        let lines: Vec<String> = violations
            .iter()
            .map(|v| {
                let field = v.path.to_string();
                format!(
                    "--{}: {}",
                    field.trim_start_matches('/').replace('_', "-"),
                    v.detail
                )
            })
            .collect();
        anyhow::anyhow!("invalid check:\n  {}", lines.join("\n  "))
    })?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (facts, took) = runtime.block_on(async {
        let prober = Prober::new(args.probe_ca_file.as_deref(), None)?;
        let started = Instant::now();
        let facts = prober
            .check(&Target {
                spec: &spec,
                address: &target.address,
                port: 0,
                host: None,
                user_agent: "vantage-check",
            })
            .await;
        anyhow::Ok((facts, started.elapsed()))
    })?;
    let result = judge(&spec, &facts);
    let code = result.response_code.or(match facts.outcome {
        Outcome::Smtp { helo, .. } => Some(helo),
        _ => None,
    });
    let rtt_ms = result.rtt_micros.map(|us| us as f64 / 1000.0);
    match args.output {
        Output::Json => {
            let v = serde_json::json!({
                "target": args.target,
                "type": target.kind,
                "healthy": result.healthy,
                "failure_reason": result.reason.as_str(),
                "response_code": code,
                "rtt_ms": rtt_ms,
                "took_ms": took.as_secs_f64() * 1000.0,
            });
            println!("{v}");
        }
        Output::Text => {
            let paint = crate::paint::Paint::stdout();
            let verdict = if result.healthy {
                paint.green("✔ healthy")
            } else {
                paint.red("✘ unhealthy")
            };
            println!("{verdict}  {}", args.target);
            let mut details = Vec::new();
            if !result.healthy {
                details.push(paint.bold(result.reason.as_str()));
            }
            if let Some(c) = code {
                details.push(format!("status {c}"));
            }
            if let Some(ms) = rtt_ms {
                details.push(format!("rtt {ms:.1} ms"));
            }
            details.push(format!("took {:.1} ms", took.as_secs_f64() * 1000.0));
            println!("  {}", details.join(" · "));
        }
    }
    Ok(result.healthy)
}
