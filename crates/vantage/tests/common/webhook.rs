//! A real webhook receiver on loopback: what it got, and how often it was asked.

use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One request the receiver got: the `cf-webhook-auth` header and the JSON body.
#[derive(Debug, Clone)]
pub struct Received {
    pub auth: String,
    pub body: Value,
}

/// A webhook receiver that answers 500 to its first `fail_first` requests, then 200.
pub async fn receiver(fail_first: usize) -> (String, Arc<Mutex<Vec<Received>>>, Arc<Mutex<usize>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::new(Mutex::new(0usize));
    let (g, n) = (got.clone(), seen.clone());
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let (g, n) = (g.clone(), n.clone());
            tokio::spawn(async move {
                let (r, mut w) = s.into_split();
                let mut r = BufReader::new(r);
                let (mut len, mut auth) = (0usize, String::new());
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim_end().to_owned();
                    if line.is_empty() {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':') {
                        match k.to_ascii_lowercase().as_str() {
                            "content-length" => len = v.trim().parse().unwrap_or(0),
                            "cf-webhook-auth" => auth = v.trim().to_owned(),
                            _ => {}
                        }
                    }
                }
                let mut body = vec![0u8; len];
                r.read_exact(&mut body).await.unwrap();
                let index = {
                    let mut n = n.lock().unwrap();
                    *n += 1;
                    *n
                };
                let status = if index <= fail_first {
                    "500 Internal Server Error"
                } else {
                    g.lock().unwrap().push(Received {
                        auth,
                        body: serde_json::from_slice(&body).unwrap(),
                    });
                    "200 OK"
                };
                let _ = w
                    .write_all(
                        format!(
                            "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        )
                        .as_bytes(),
                    )
                    .await;
            });
        }
    });
    (url, got, seen)
}

pub fn events(got: &Arc<Mutex<Vec<Received>>>, alert_event: &str) -> Vec<Received> {
    got.lock()
        .unwrap()
        .iter()
        .filter(|r| r.body["alert_event"] == alert_event)
        .cloned()
        .collect()
}
