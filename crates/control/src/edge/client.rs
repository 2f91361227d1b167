//! The edge protocol's client end: how `vantage edge` asks a controller for a newer routing
//! snapshot.

use std::time::Duration;

use anyhow::bail;
use vantage_core::region::RegionCode;

use crate::edge_protocol::{LONG_POLL, SNAPSHOT_PATH, VERSION, VERSION_HEADER};

/// One controller as an edge sees it, over HTTP(S) with an edge token.
#[derive(Debug)]
pub struct Client {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    /// A client of the controller at `base` (an http:// or https:// URL); `ca_pem` adds a
    /// root certificate to trust for it.
    pub fn new(base: &str, token: String, ca_pem: Option<&[u8]>) -> anyhow::Result<Self> {
        // A short connect timeout: an unreachable controller is skipped for the next one
        // quickly, so an edge catches up soon after any of them returns.
        let (client, base) = crate::agent::client::controller_client(
            base,
            ca_pem,
            Duration::from_secs(2),
            LONG_POLL + Duration::from_secs(10),
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

    /// Waits for a snapshot newer than `after`: its bytes, or `None` when the controller had
    /// none newer within its long poll.
    pub async fn newer_than(
        &self,
        after: u64,
        region: Option<RegionCode>,
    ) -> anyhow::Result<Option<Vec<u8>>> {
        let mut query = vec![("after", after.to_string())];
        if let Some(r) = region {
            query.push(("region", r.to_string()));
        }
        let resp = self
            .client
            .get(format!("{}{SNAPSHOT_PATH}", self.base))
            .query(&query)
            .bearer_auth(&self.token)
            .header(VERSION_HEADER, VERSION)
            .send()
            .await?;
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(None);
        }
        let body = resp.bytes().await?;
        if !status.is_success() {
            bail!(
                "controller answered {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(512)])
            );
        }
        Ok(Some(body.to_vec()))
    }
}
