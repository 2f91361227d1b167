//! What a follower asks of the judge over HTTP: agents' results handed on as they came, and
//! reads only the judge knows first hand, with the caller's own credentials.

use std::time::Duration;

use serde_json::Value;

use crate::Controller;

impl Controller {
    /// Hands an agent's batch of results to the judge as it came (the judge parses and
    /// checks it), with the agent's own credentials and protocol version: the judge's answer,
    /// or why it could not be reached.
    pub async fn forward_results(
        &self,
        body: Vec<u8>,
        authorization: &str,
        version: Option<&str>,
    ) -> Result<(u16, Value), String> {
        let mut headers = vec![("authorization", authorization.to_owned())];
        if let Some(v) = version {
            headers.push((crate::agent_protocol::VERSION_HEADER, v.to_owned()));
        }
        self.to_judge(
            reqwest::Method::POST,
            crate::agent_protocol::RESULTS_PATH,
            &headers,
            Some(body),
        )
        .await
    }

    /// Asks the judge for `path` (an API read) with the caller's own credentials: what only
    /// the judge knows first hand, such as each location's latest check.
    pub async fn ask_judge(
        &self,
        path: &str,
        credentials: &[(&'static str, String)],
    ) -> Result<(u16, Value), String> {
        self.to_judge(reqwest::Method::GET, path, credentials, None)
            .await
    }

    async fn to_judge(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&'static str, String)],
        body: Option<Vec<u8>>,
    ) -> Result<(u16, Value), String> {
        let address = self
            .judge_address()
            .ok_or("no judge is known yet; try again")?;
        let client = self.role.client.get_or_init(|| {
            reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default()
        });
        // A read falls back to this replica's own answer: it must not wait long for a judge
        // that died.
        let patience = if method == reqwest::Method::GET {
            Duration::from_secs(2)
        } else {
            Duration::from_secs(10)
        };
        let mut request = client
            .request(method, format!("{}{path}", address.trim_end_matches('/')))
            .timeout(patience);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let answer = request
            .send()
            .await
            .map_err(|e| format!("the judge at {address} cannot be reached: {e}"))?;
        let status = answer.status().as_u16();
        let value = answer
            .json::<Value>()
            .await
            .map_err(|e| format!("the judge at {address} answered {status} without JSON: {e}"))?;
        Ok((status, value))
    }
}
