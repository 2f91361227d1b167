//! A real `vantage serve` process on a free loopback port with its own data directory.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod dataplane;
pub mod dns;
pub mod edge;
pub mod origin;
pub mod webhook;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::Value;

pub const TOKEN: &str = "vantage-test-admin-token_0123456789abcdefghijklmnopqrstuv";
pub const EMAIL: &str = "ops@example.com";
pub const KEY: &str = "global-key-0123456789abcdefghijklmnopqrstuvwxyz";
/// The agent token servers started by [`replica`] bootstrap, for the location `WEU/ams`.
pub const AGENT_TOKEN: &str = "vantage-test-agent-token_0123456789abcdefghijklmnopqrs";

/// A replica on the PostgreSQL database `url` (the test's own cluster) in `dir`, with the
/// judge lease `lease` (seconds) and `extra` flags; bootstrapped with the admin token and an
/// agent token for `WEU/ams` ([`AGENT_TOKEN`]).
pub fn replica(dir: &Path, url: &str, lease: &str, extra: &[&str]) -> Server {
    let mut flags = vec!["--store", url, "--judge-lease", lease];
    flags.extend_from_slice(extra);
    Server::start_with(
        dir,
        &[
            ("VANTAGE_BOOTSTRAP_TOKEN", TOKEN),
            ("VANTAGE_BOOTSTRAP_AGENT_TOKEN", AGENT_TOKEN),
            ("VANTAGE_BOOTSTRAP_AGENT_LOCATION", "WEU/ams"),
        ],
        &flags,
    )
    .expect("a replica starts")
}

/// A `vantage agent` in `WEU/location` knowing `controllers`, killed when dropped.
pub fn spawn_agent(controllers: &[String], token: &str, location: &str) -> KillOnDrop {
    let mut cmd = Command::new(bin());
    cmd.arg("agent");
    for c in controllers {
        cmd.args(["--controller", c]);
    }
    let child = cmd
        .args(["--token", token, "--region", "WEU", "--location", location])
        .env("VANTAGE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    KillOnDrop(child)
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_vantage")
}

pub struct Server {
    child: Child,
    pub addr: String,
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    /// In replica mode ([`REPLICAS_ENV`]): the replica that judges, beside this one.
    judge: Option<Box<Server>>,
    pub stderr: mpsc::Receiver<String>,
    /// Everything logged up to and including the `listening on` line.
    pub startup_log: String,
    pub http: reqwest::Client,
}

/// Waits for `cond` to hold, polling; panics with `what` after `limit`.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !cond().await {
        assert!(start.elapsed() < limit, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Server {
    pub fn start() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let mut s = Self::start_in(
            &dir,
            &[
                ("VANTAGE_BOOTSTRAP_TOKEN", TOKEN),
                ("VANTAGE_BOOTSTRAP_EMAIL", EMAIL),
                ("VANTAGE_BOOTSTRAP_KEY", KEY),
            ],
        )
        .expect("server starts");
        s._tmp = Some(tmp);
        s
    }

    /// Starts a bootstrapped server in a fresh directory with extra `serve` flags.
    pub fn start_flags(flags: &[&str]) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let mut s = Self::start_with(&dir, &[("VANTAGE_BOOTSTRAP_TOKEN", TOKEN)], flags)
            .expect("server starts");
        s._tmp = Some(tmp);
        s
    }

    /// The address a startup log line `"{what} serving on ADDR"` names.
    pub fn serving(&self, what: &str) -> std::net::SocketAddr {
        let marker = format!("{what} serving on ");
        self.startup_log
            .lines()
            .find_map(|l| l.split(&marker).nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no {marker:?} in the startup log:\n{}", self.startup_log))
            .parse()
            .unwrap()
    }

    /// Creates a token with the CLI (while the server runs) and waits until the server
    /// accepts it; returns the secret.
    pub async fn cli_token(&self, account: &str, name: &str, permission: &str) -> String {
        let token = self.cli(&[
            "token",
            "create",
            "--name",
            name,
            "--account",
            account,
            "--permission",
            permission,
        ]);
        eventually(
            Duration::from_secs(10),
            "the server sees the new token",
            || async {
                self.call_as(&token, Method::GET, "/user/tokens/verify", None)
                    .await
                    .0
                    == StatusCode::OK
            },
        )
        .await;
        token
    }

    /// Creates a zone and returns its id.
    pub async fn zone(&self, account: &str, name: &str) -> String {
        let body = serde_json::json!({"name": name, "account": {"id": account}});
        let (st, v) = self.call(Method::POST, "/zones", Some(body)).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        v["result"]["id"].as_str().unwrap().to_owned()
    }

    /// Creates a fast HTTP monitor (every 5 s, 1 s timeout, no retries, expecting 200) in
    /// `account` and returns its id.
    pub async fn fast_monitor(&self, account: &str) -> String {
        self.create(
            &format!("/accounts/{account}/load_balancers/monitors"),
            serde_json::json!({"type": "http", "expected_codes": "200", "interval": 5, "timeout": 1, "retries": 0}),
        )
        .await
    }

    /// Creates an object under `path` and returns its id.
    pub async fn create(&self, path: &str, body: Value) -> String {
        let (st, v) = self.call(Method::POST, path, Some(body)).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        v["result"]["id"].as_str().unwrap().to_owned()
    }

    /// Starts a server on `dir`; `Err(stderr)` if it exits before listening.
    pub fn start_in(dir: &Path, env: &[(&str, &str)]) -> Result<Self, String> {
        Self::start_with(dir, env, &[])
    }

    /// Starts a server on `dir` with extra `serve` flags. In replica mode ([`REPLICAS_ENV`])
    /// and without a `--store` of the test's own, two replicas start on a database of their
    /// own instead: one that judges, then this one, which follows it.
    pub fn start_with(dir: &Path, env: &[(&str, &str)], flags: &[&str]) -> Result<Self, String> {
        let Some(url) = replica_store(dir, flags) else {
            return Self::start_one(dir, env, flags);
        };
        let mut with_store: Vec<&str> = flags.to_vec();
        // A short lease: after a restart, the replica that judged before is dead and its
        // lease must lapse before anyone judges again.
        with_store.extend(["--store", url.as_str(), "--judge-lease", "3"]);
        // The judge listens wherever it likes: the test's fixed addresses are the follower's.
        let judge_flags = without_fixed_listeners(&with_store);
        let judge = Self::start_one(&judge_dir(dir), env, &judge_flags)?;
        let mut follower = Self::start_one(dir, env, &with_store)?;
        if !follower.startup_log.contains("this one follows") {
            return Err(follower.startup_log.clone());
        }
        follower.judge = Some(Box::new(judge));
        Ok(follower)
    }

    fn start_one(dir: &Path, env: &[(&str, &str)], flags: &[&str]) -> Result<Self, String> {
        let mut cmd = Command::new(bin());
        cmd.arg("serve");
        if !flags.contains(&"--listen") {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        cmd.arg("--data-dir").arg(dir).args(flags);
        cmd.env_remove("VANTAGE_BOOTSTRAP_TOKEN")
            .env("VANTAGE_LOG", "info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = String::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    seen.push_str(&line);
                    seen.push('\n');
                    if let Some(rest) = line.split("listening on ").nth(1) {
                        let addr = rest
                            .split_whitespace()
                            .next()
                            .unwrap_or_default()
                            .to_owned();
                        return Ok(Self {
                            child,
                            addr,
                            dir: dir.to_owned(),
                            _tmp: None,
                            judge: None,
                            stderr: rx,
                            startup_log: seen,
                            http: reqwest::Client::new(),
                        });
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(seen);
                }
            }
        }
    }

    /// The process that judges health: this one, or in replica mode the replica beside it
    /// (probing, verdict and check metrics are counted there).
    pub fn judging(&self) -> &Server {
        self.judge.as_deref().unwrap_or(self)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}/client/v4{path}", self.addr)
    }

    /// Sends `body` (if any) with the admin token.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call_as(TOKEN, method, path, body).await
    }

    pub async fn call_as(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let json = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("non-JSON answer {status}: {text}"));
        (status, json)
    }

    /// The body of an unauthenticated GET of `url` (metrics and the like), as text.
    pub async fn text(&self, url: &str) -> String {
        self.http
            .get(url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The raw body bytes of a GET.
    pub async fn get_bytes(&self, path: &str) -> Vec<u8> {
        self.http
            .get(self.url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .to_vec()
    }

    pub async fn account_id(&self) -> String {
        let (s, v) = self.call(Method::GET, "/accounts", None).await;
        assert_eq!(s, 200, "{v}");
        v["result"][0]["id"].as_str().unwrap().to_owned()
    }

    /// Runs the CLI on this server's data directory and returns its stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        cli_on(&self.dir, args)
    }

    pub fn sigkill(mut self) -> (PathBuf, Option<tempfile::TempDir>) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        (self.dir.clone(), self._tmp.take())
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child process (an agent, say) killed when the test ends, however it ends.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Set (to any database URL of a running PostgreSQL test cluster, as `scripts/test` does), the
/// suites' servers run as two replicas on a fresh database of that cluster, and the test talks
/// to the one that follows: the same black-box tests, through a replica that does not judge.
pub const REPLICAS_ENV: &str = "VANTAGE_TEST_REPLICAS";

/// The databases of replica-mode servers, by data directory: a server restarted on the same
/// directory finds its data again.
static REPLICA_STORES: std::sync::Mutex<Vec<(PathBuf, String)>> = std::sync::Mutex::new(Vec::new());

/// In replica mode, the database for a server on `dir` (created on first use); `None` outside
/// it, or when the test chose its own store.
fn replica_store(dir: &Path, flags: &[&str]) -> Option<String> {
    let cluster = std::env::var(REPLICAS_ENV).ok().filter(|u| !u.is_empty())?;
    if flags.contains(&"--store") {
        return None;
    }
    let mut known = REPLICA_STORES.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, url)) = known.iter().find(|(d, _)| d == dir) {
        return Some(url.clone());
    }
    let name = format!("t{}", hex_id());
    let url = vantage_store_postgres::testing::create_database(&cluster, &name);
    known.push((dir.to_owned(), url.clone()));
    Some(url)
}

fn hex_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    format!("{:016x}", h.finish())
}

fn judge_dir(dir: &Path) -> PathBuf {
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("data");
    dir.with_file_name(format!("{name}-judge"))
}

/// `flags` for the judge replica beside the follower that has the test's addresses: its API
/// and metrics on free ports, and no data plane (the follower serves the test's traffic).
fn without_fixed_listeners<'a>(flags: &[&'a str]) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut it = flags.iter();
    while let Some(f) = it.next() {
        match *f {
            "--listen" | "--metrics-listen" => {
                let _ = it.next();
                out.extend([*f, "127.0.0.1:0"]);
            }
            "--proxy-listen" | "--dns-listen" => {
                let _ = it.next();
            }
            _ => out.push(*f),
        }
    }
    out
}

/// Whether this run's servers are replicas ([`REPLICAS_ENV`]): a test of what only one
/// process on one machine can show (a locked SQLite file, its own listeners) says so and
/// stops.
pub fn replica_mode(test: &str) -> bool {
    let on = std::env::var(REPLICAS_ENV).is_ok_and(|u| !u.is_empty());
    if on {
        eprintln!("{test}: not run against replicas (it tests one process on one machine)");
    }
    on
}

/// The CLI with `args` on `dir`, on the server's store (the replicas' database in replica
/// mode).
pub fn cli_args(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args(args).arg("--data-dir").arg(dir);
    let known = REPLICA_STORES.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, url)) = known.iter().find(|(d, _)| d == dir) {
        cmd.args(["--store", url]);
    }
    cmd
}

pub fn cli_on(dir: &Path, args: &[&str]) -> String {
    let out = cli_args(dir, args).output().unwrap();
    assert!(
        out.status.success(),
        "vantage {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

pub fn error_code(v: &Value) -> i64 {
    v["errors"][0]["code"].as_i64().unwrap_or(-1)
}

pub fn pointer(v: &Value) -> &str {
    v["errors"][0]["source"]["pointer"].as_str().unwrap_or("")
}

/// `(reference_type, resource_type)` of each reference in a references answer, in order.
pub fn reference_kinds(v: &Value) -> Vec<(&str, &str)> {
    v["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["reference_type"].as_str().unwrap(),
                r["resource_type"].as_str().unwrap(),
            )
        })
        .collect()
}
