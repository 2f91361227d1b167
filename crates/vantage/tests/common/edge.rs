//! A real `vantage edge` process (DNS and the proxy on one loopback address), started and
//! read from its log.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// One `vantage edge` process and what it logged.
pub struct EdgeProc {
    child: Child,
    pub dns: SocketAddr,
    pub proxy: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl EdgeProc {
    /// Starts an edge serving DNS and the proxy on `ip`, following `controller`, keeping its
    /// snapshot in `file`; returns once both listeners are bound (or `Err(log)`).
    pub fn start(controller: &str, token: &str, ip: &str, file: &Path) -> Result<EdgeProc, String> {
        Self::start_with(controller, token, ip, file, &[])
    }

    pub fn start_with(
        controller: &str,
        token: &str,
        ip: &str,
        file: &Path,
        extra: &[&str],
    ) -> Result<EdgeProc, String> {
        let mut child = Command::new(super::bin())
            .args([
                "edge",
                "--controller",
                controller,
                "--token",
                token,
                "--proxy-listen",
                &format!("{ip}:0"),
                "--dns-listen",
                &format!("{ip}:0"),
                "--proxy-region",
                "WEU",
                "--dns-nameserver",
                "ns1.example.com=127.0.0.2",
                "--dns-nameserver",
                "ns2.example.com=127.0.0.3",
                "--dns-rrl-rate",
                "0",
            ])
            .arg("--snapshot-file")
            .arg(file)
            .args(extra)
            .env("VANTAGE_LOG", "info,vantage_control::edge=debug")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let kept = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                kept.lock().unwrap().push_str(&line);
                kept.lock().unwrap().push('\n');
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let (mut dns, mut proxy) = (None, None);
        let addr_after = |line: &str, marker: &str| -> Option<SocketAddr> {
            line.split(marker)
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        };
        while dns.is_none() || proxy.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                let _ = child.kill();
                let _ = child.wait();
                return Err(log.lock().unwrap().clone());
            };
            dns = dns.or_else(|| addr_after(&line, "dns serving on "));
            proxy = proxy.or_else(|| addr_after(&line, "proxy serving on "));
        }
        Ok(EdgeProc {
            child,
            dns: dns.unwrap(),
            proxy: proxy.unwrap(),
            log,
        })
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Whether the snapshot applied last is the one kept in the file.
    pub fn kept_current(&self) -> bool {
        let log = self.log();
        let version = |line: &str| {
            line.split("version=")
                .nth(1)
                .and_then(|v| v.split_whitespace().next())
                .map(str::to_owned)
        };
        let applied = log
            .lines()
            .rev()
            .find(|l| l.contains("applied the routing snapshot"))
            .and_then(version);
        applied.is_some()
            && log
                .lines()
                .filter(|l| l.contains("kept the routing snapshot in the file"))
                .any(|l| version(l) == applied)
    }

    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for EdgeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The origin that served a proxied request for `host` through `edge` (the test origins answer
/// with their name).
pub async fn proxied(http: &reqwest::Client, edge: &EdgeProc, host: &str) -> Option<String> {
    let r = http
        .get(format!("http://{}/", edge.proxy))
        .header("host", host)
        .send()
        .await
        .ok()?;
    let v: serde_json::Value = r.json().await.ok()?;
    v["origin"].as_str().map(str::to_owned)
}
