//! The agent protocol's client end: how `vantage agent` fetches its assignment and reports
//! its facts to a controller across the network.

use std::time::Duration;

use anyhow::{bail, Context};
use vantage_core::health::Location;

use crate::agent_protocol::{
    Assignment, PreviewChecks, PreviewFacts, PreviewReport, Report, Reported, ASSIGNMENT_PATH,
    PREVIEW_CHECKS_PATH, RESULTS_PATH, VERSION, VERSION_HEADER,
};

/// An HTTP client of the controller at `base` (an http:// or https:// URL, returned without a
/// trailing slash), trusting `ca_pem` besides the system's roots: the agent's and the edge's.
pub(crate) fn controller_client(
    base: &str,
    ca_pem: Option<&[u8]>,
    connect: Duration,
    timeout: Duration,
) -> anyhow::Result<(reqwest::Client, String)> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(connect)
        .timeout(timeout);
    if let Some(pem) = ca_pem {
        builder = builder.add_root_certificate(
            reqwest::Certificate::from_pem(pem).context("the controller CA file")?,
        );
    }
    let base = base.trim_end_matches('/').to_owned();
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        bail!("--controller must be an http:// or https:// URL");
    }
    Ok((builder.build()?, base))
}

/// The controllers as seen from a remote agent (`vantage agent`): the agent protocol's
/// client end, over HTTP(S) with an agent token. With several controllers it talks to one at
/// a time and moves to the next when that one does not answer (or answers 5xx): the callers'
/// backoff and jitter pace the turns, and no restart is ever needed.
#[derive(Debug)]
pub struct Client {
    client: reqwest::Client,
    bases: Vec<String>,
    current: std::sync::atomic::AtomicUsize,
    token: String,
}

#[derive(serde::Deserialize)]
struct Envelope<T> {
    result: Option<T>,
    #[serde(default)]
    errors: Vec<serde_json::Value>,
}

impl Client {
    /// A client of the controllers at `bases` (http:// or https:// URLs, tried in turn);
    /// `ca_pem` adds a root certificate to trust for them.
    pub fn new(bases: &[String], token: String, ca_pem: Option<&[u8]>) -> anyhow::Result<Self> {
        let mut client = None;
        let mut checked = Vec::new();
        for base in bases {
            let (c, base) = controller_client(
                base,
                ca_pem,
                Duration::from_secs(5),
                Duration::from_secs(40),
            )?;
            client.get_or_insert(c);
            checked.push(base);
        }
        let Some(client) = client else {
            bail!("name at least one --controller");
        };
        Ok(Self {
            client,
            bases: checked,
            current: std::sync::atomic::AtomicUsize::new(0),
            token,
        })
    }

    /// The controller talked to now (for logs).
    pub fn base(&self) -> &str {
        let i = self.current.load(std::sync::atomic::Ordering::Relaxed);
        &self.bases[i % self.bases.len()]
    }

    /// Moves on to the next controller (after `failed` did not answer well).
    fn next_controller(&self, failed: &str) {
        if self.bases.len() > 1 {
            let i = self
                .current
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                + 1;
            let next = &self.bases[i % self.bases.len()];
            tracing::info!(failed, next = %next, "trying the next controller");
        }
    }

    /// Sends `build(base)` with the agent's token and protocol version; the envelope's
    /// result. A controller that cannot be reached or answers 5xx hands over to the next.
    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        build: impl FnOnce(&str) -> reqwest::RequestBuilder,
    ) -> anyhow::Result<T> {
        let base = self.base().to_owned();
        let sent = build(&base)
            .bearer_auth(&self.token)
            .header(VERSION_HEADER, VERSION)
            .send()
            .await;
        let resp = match sent {
            Ok(r) if !r.status().is_server_error() => r,
            Ok(r) => {
                self.next_controller(&base);
                bail!("controller {base} answered {}", r.status());
            }
            Err(e) => {
                self.next_controller(&base);
                return Err(e).with_context(|| format!("controller {base}"));
            }
        };
        let status = resp.status();
        let body: Envelope<T> = resp
            .json()
            .await
            .with_context(|| format!("controller answered {status}"))?;
        match body.result {
            Some(r) if status.is_success() => Ok(r),
            _ => bail!(
                "controller answered {status}: {}",
                serde_json::Value::Array(body.errors)
            ),
        }
    }

    /// The assignment once it moved past `held` (long-poll): a delta on it when the
    /// controller can make one.
    pub async fn assignment(
        &self,
        location: &Location,
        held: Option<super::Held>,
    ) -> anyhow::Result<Assignment> {
        let mut query = vec![
            ("region", location.region.code().to_owned()),
            ("location", location.name.clone()),
        ];
        if let Some(h) = held {
            query.push(("version", h.version.to_string()));
            if let Some(e) = h.epoch {
                query.push(("epoch", e.to_string()));
            }
        }
        self.send(|base| {
            self.client
                .get(format!("{base}{ASSIGNMENT_PATH}"))
                .query(&query)
        })
        .await
    }

    pub async fn report(&self, location: &Location, results: Vec<Reported>) -> anyhow::Result<()> {
        let report = Report {
            region: location.region.code().to_owned(),
            location: location.name.clone(),
            results,
        };
        self.send::<serde_json::Value>(|base| {
            self.client
                .post(format!("{base}{RESULTS_PATH}"))
                .json(&report)
        })
        .await
        .map(|_| ())
    }

    /// The checks previews ask of this location (long-poll).
    pub async fn preview_checks(&self, location: &Location) -> anyhow::Result<PreviewChecks> {
        let query = [
            ("region", location.region.code().to_owned()),
            ("location", location.name.clone()),
        ];
        self.send(|base| {
            self.client
                .get(format!("{base}{PREVIEW_CHECKS_PATH}"))
                .query(&query)
        })
        .await
    }

    /// Answers preview checks with their facts.
    pub async fn preview_results(&self, results: Vec<PreviewFacts>) -> anyhow::Result<()> {
        let report = PreviewReport { results };
        self.send::<serde_json::Value>(|base| {
            self.client
                .post(format!("{base}{PREVIEW_CHECKS_PATH}"))
                .json(&report)
        })
        .await
        .map(|_| ())
    }
}
