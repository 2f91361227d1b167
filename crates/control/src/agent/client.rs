//! The agent protocol's client end: how `vantage agent` fetches its assignment and reports
//! its facts to a controller across the network.

use std::time::Duration;

use anyhow::{bail, Context};
use vantage_core::health::Location;

use crate::agent_protocol::{
    Assignment, Report, Reported, ASSIGNMENT_PATH, RESULTS_PATH, VERSION, VERSION_HEADER,
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

/// The controller as seen from a remote agent (`vantage agent`): the agent protocol's
/// client end, over HTTP(S) with an agent token.
#[derive(Debug)]
pub struct Client {
    client: reqwest::Client,
    base: String,
    token: String,
}

#[derive(serde::Deserialize)]
struct Envelope<T> {
    result: Option<T>,
    #[serde(default)]
    errors: Vec<serde_json::Value>,
}

impl Client {
    /// A client of the controller at `base` (an http:// or https:// URL); `ca_pem` adds a
    /// root certificate to trust for it.
    pub fn new(base: &str, token: String, ca_pem: Option<&[u8]>) -> anyhow::Result<Self> {
        let (client, base) = controller_client(
            base,
            ca_pem,
            Duration::from_secs(5),
            Duration::from_secs(40),
        )?;
        Ok(Self {
            client,
            base,
            token,
        })
    }

    /// The controller's base URL (for logs).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends `request` with the agent's token and protocol version; the envelope's result.
    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> anyhow::Result<T> {
        let resp = request
            .bearer_auth(&self.token)
            .header(VERSION_HEADER, VERSION)
            .send()
            .await?;
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

    pub async fn assignment(
        &self,
        location: &Location,
        known: Option<u64>,
    ) -> anyhow::Result<Assignment> {
        let mut query = vec![
            ("region", location.region.code().to_owned()),
            ("location", location.name.clone()),
        ];
        if let Some(v) = known {
            query.push(("version", v.to_string()));
        }
        let request = self.client.get(format!("{}{ASSIGNMENT_PATH}", self.base));
        self.send(request.query(&query)).await
    }

    pub async fn report(&self, location: &Location, results: Vec<Reported>) -> anyhow::Result<()> {
        let report = Report {
            region: location.region.code().to_owned(),
            location: location.name.clone(),
            results,
        };
        let request = self.client.post(format!("{}{RESULTS_PATH}", self.base));
        self.send::<serde_json::Value>(request.json(&report))
            .await
            .map(|_| ())
    }
}
