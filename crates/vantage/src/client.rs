//! A small client of a running server's API, for the commands people run at a terminal
//! (`status`, `apply`, `export`).

use std::path::PathBuf;

use anyhow::{bail, Context};
use reqwest::Method;
use serde_json::Value;

#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// The server's address.
    #[arg(long, env = "VANTAGE_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// An API token (default: the bootstrap token in --data-dir).
    #[arg(long, env = "VANTAGE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Where to find the bootstrap token when --token is not given.
    #[arg(long, env = "VANTAGE_DATA_DIR", default_value = "./vantage-data")]
    data_dir: PathBuf,
}

pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    pub fn new(args: &ServerArgs) -> anyhow::Result<Client> {
        let token = match &args.token {
            Some(t) => t.clone(),
            None => {
                let path = args.data_dir.join("bootstrap-token");
                std::fs::read_to_string(&path)
                    .with_context(|| format!("no --token and cannot read {}", path.display()))?
                    .trim()
                    .to_owned()
            }
        };
        Ok(Client {
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()?,
            base: args.url.trim_end_matches('/').to_owned(),
            token,
        })
    }

    /// Sends a request under `/client/v4`; an error answer fails with Cloudflare's message
    /// and pointer, except a 400 when `lenient` (pool health answers 400 until there is a
    /// verdict).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        lenient: bool,
    ) -> anyhow::Result<Value> {
        self.send(method, &format!("/client/v4{path}"), body, lenient)
            .await
    }

    /// The dashboard's state document (every load balancer, pool and origin with its state,
    /// as the server's core decided it).
    pub async fn dashboard_state(&self) -> anyhow::Result<Value> {
        let v = self
            .send(Method::GET, "/dashboard/v1/state", None, false)
            .await?;
        Ok(v["result"].clone())
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        lenient: bool,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut req = self
            .http
            .request(method.clone(), &url)
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("{method} {url}"))?;
        let status = resp.status();
        let v: Value = resp
            .json()
            .await
            .with_context(|| format!("{method} {url}: not JSON"))?;
        let tolerated = lenient && status.as_u16() == 400;
        if !(status.is_success() || tolerated) {
            let errors: Vec<String> = v["errors"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|e| {
                            let at = e["source"]["pointer"].as_str().unwrap_or("");
                            format!("{} {at}", e["message"].as_str().unwrap_or("failed"))
                        })
                        .collect()
                })
                .unwrap_or_default();
            bail!("{method} {path}: {status}: {}", errors.join("; "));
        }
        Ok(v)
    }

    pub async fn get(&self, path: &str, lenient: bool) -> anyhow::Result<Value> {
        self.call(Method::GET, path, None, lenient).await
    }

    /// Every page of a list.
    pub async fn list(&self, path: &str) -> anyhow::Result<Vec<Value>> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut out = Vec::new();
        for page in 1.. {
            let v = self
                .get(&format!("{path}{sep}per_page=50&page={page}"), false)
                .await?;
            out.extend(v["result"].as_array().cloned().unwrap_or_default());
            let total = v["result_info"]["total_pages"].as_u64().unwrap_or(1);
            if page >= total {
                break;
            }
        }
        Ok(out)
    }
}
