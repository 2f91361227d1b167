//! The one controllable origin every integration test uses: a real HTTP/1.1 server on
//! loopback (keep-alive) that names itself and echoes what it was sent as JSON, can be killed
//! (the port then refuses connections) and revived on the same address, answers
//! `/status/NNN` with that status, and answers 503 to client addresses it is told to refuse
//! (a far-away network path failing, for one probe location).

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Origin {
    pub name: &'static str,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    refused: Arc<Mutex<HashSet<IpAddr>>>,
}

impl Origin {
    /// An origin on 127.0.0.1 and a free port.
    pub async fn start(name: &'static str) -> Origin {
        Self::on(name, "127.0.0.1").await
    }

    /// An origin on `ip` (another loopback address, say) and a free port.
    pub async fn on(name: &'static str, ip: &str) -> Origin {
        let listener = TcpListener::bind((ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, _) = watch::channel(false);
        let refused = Arc::default();
        serve(name, listener, stop.subscribe(), Arc::clone(&refused));
        Origin {
            name,
            addr,
            stop,
            refused,
        }
    }

    /// Answers 503 to requests from `client` from now on.
    pub fn refuse(&self, client: &str) {
        let ip: IpAddr = client.parse().unwrap();
        self.refused.lock().unwrap().insert(ip);
    }

    /// Closes the listener and every open connection: the port refuses connections.
    pub fn kill(&self) {
        self.stop.send_replace(true);
    }

    /// Listens again on the same address.
    pub async fn revive(&mut self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        let (stop, _) = watch::channel(false);
        serve(
            self.name,
            listener,
            stop.subscribe(),
            Arc::clone(&self.refused),
        );
        self.stop = stop;
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn ip(&self) -> String {
        self.addr.ip().to_string()
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.kill();
    }
}

fn serve(
    name: &'static str,
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
    refused: Arc<Mutex<HashSet<IpAddr>>>,
) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((s, peer)) = accepted else { return };
                    let refuse = refused.lock().unwrap().contains(&peer.ip());
                    tokio::spawn(connection(name, s, refuse, stop.clone()));
                }
                _ = stop.changed() => return,
            }
        }
    });
}

async fn connection(
    name: &'static str,
    s: TcpStream,
    refuse: bool,
    mut stop: watch::Receiver<bool>,
) {
    let (r, mut w) = s.into_split();
    let mut r = BufReader::new(r);
    loop {
        let mut first = String::new();
        tokio::select! {
            n = r.read_line(&mut first) => if !matches!(n, Ok(n) if n > 0) { return },
            _ = stop.changed() => return,
        }
        let mut headers = HashMap::new();
        loop {
            let mut line = String::new();
            if !matches!(r.read_line(&mut line).await, Ok(n) if n > 0) {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        if r.read_exact(&mut body).await.is_err() {
            return;
        }
        let path = first.split_whitespace().nth(1).unwrap_or("/");
        let status: u16 = match path.strip_prefix("/status/") {
            _ if refuse => 503,
            Some(code) => code.parse().unwrap_or(400),
            None => 200,
        };
        let h = |k: &str| headers.get(k).cloned().unwrap_or_default();
        let reply = json!({
            "origin": name,
            "request": first.trim_end(),
            "host": h("host"),
            "x-forwarded-for": h("x-forwarded-for"),
            "x-forwarded-proto": h("x-forwarded-proto"),
            "cf-connecting-ip": h("cf-connecting-ip"),
            "body_bytes": len,
        })
        .to_string();
        let out = format!(
            "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{reply}",
            if status == 200 { "OK" } else { "Status" },
            reply.len()
        );
        if w.write_all(out.as_bytes()).await.is_err() {
            return;
        }
    }
}
