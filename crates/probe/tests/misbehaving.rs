//! Every check against a real server on loopback that misbehaves in one particular way, with
//! the verdict and failure reason the core reaches from the prober's facts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use vantage_core::choice::Choice;
use vantage_core::health::check::{judge, CheckResult};
use vantage_core::monitor::{MonitorDraft, MonitorSpec};
use vantage_probe::{Prober, Target};

/// Starts a server that runs `handle` for every connection.
async fn serve<F, Fut>(handle: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = Arc::new(handle);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(handle(stream));
        }
    });
    addr
}

/// Reads a request head (up to the blank line).
async fn read_head(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).await.unwrap_or(0) == 0 {
            break;
        }
        buf.push(byte[0]);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

async fn respond(mut s: TcpStream, status: &str, body: &str) {
    read_head(&mut s).await;
    let resp = format!(
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = s.write_all(resp.as_bytes()).await;
}

fn monitor(json: &[(&str, &str)]) -> MonitorSpec {
    let mut d = MonitorDraft {
        expected_codes: Some("200".into()),
        timeout: Some(1),
        retries: Some(0),
        ..Default::default()
    };
    for (k, v) in json {
        match *k {
            "type" => d.kind = Some((*v).into()),
            "codes" => d.expected_codes = Some((*v).into()),
            "body" => d.expected_body = Some((*v).into()),
            "redirects" => d.follow_redirects = Some(*v == "true"),
            "insecure" => d.allow_insecure = Some(*v == "true"),
            "retries" => d.retries = Some(v.parse().unwrap()),
            "port" => d.port = Some(v.parse().unwrap()),
            "host" => d.header = Some([("Host".to_owned(), vec![(*v).to_owned()])].into()),
            "x-custom" => d.header = Some([("X-Custom".to_owned(), vec![(*v).to_owned()])].into()),
            other => panic!("{other}"),
        }
    }
    d.validate().unwrap()
}

async fn run(
    prober: &Prober,
    spec: &MonitorSpec,
    address: &str,
    port: u16,
    host: Option<&str>,
) -> CheckResult {
    let target = Target {
        spec,
        address,
        port,
        host,
        user_agent: "Vantage-Health-Check (pool: web)",
    };
    judge(spec, &prober.check(&target).await)
}

/// One check from a default prober against loopback.
async fn local(spec: &MonitorSpec, port: u16) -> CheckResult {
    run(&prober(), spec, "127.0.0.1", port, None).await
}

fn prober() -> Prober {
    Prober::new(None, None).unwrap()
}

fn assert_fails(r: &CheckResult, reason: &str) {
    assert!(!r.healthy, "expected a failure ({reason}), got {r:?}");
    assert_eq!(r.reason.as_str(), reason, "{r:?}");
}

#[tokio::test]
async fn healthy_answer_with_body_case_insensitive() {
    let addr = serve(|s| respond(s, "200 OK", "all systems GO")).await;
    let r = local(&monitor(&[("body", "systems go")]), addr.port()).await;
    assert!(r.healthy, "{r:?}");
    assert_eq!(
        (r.response_code, r.reason.as_str()),
        (Some(200), "No failures")
    );
    assert!(r.rtt_micros.is_some());
}

#[tokio::test]
async fn wrong_status() {
    let addr = serve(|s| respond(s, "503 Service Unavailable", "")).await;
    let r = local(&monitor(&[("codes", "2xx")]), addr.port()).await;
    assert_fails(&r, "Response code mismatch error");
    assert_eq!(r.response_code, Some(503));
}

#[tokio::test]
async fn missing_body_text() {
    let addr = serve(|s| respond(s, "200 OK", "maintenance")).await;
    let r = local(&monitor(&[("body", "ok")]), addr.port()).await;
    assert_fails(&r, "Response body mismatch error");
}

/// A server that reads the request head, then writes `pieces` with a write (and a yield)
/// each, so the check usually reads them apart, and closes.
async fn answer_in_pieces(pieces: &'static [&'static [u8]]) -> SocketAddr {
    serve(move |mut s| async move {
        read_head(&mut s).await;
        for piece in pieces {
            if s.write_all(piece).await.is_err() {
                return;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
}

#[tokio::test]
async fn interim_answers_and_chunked_bodies() {
    let addr = answer_in_pieces(&[
        b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nall S\r\n",
        b"6;ext=1\r\nYSTEMS\r\n4\r\n GO!\r\n0\r\n\r\n",
    ])
    .await;
    let r = local(&monitor(&[("body", "systems go")]), addr.port()).await;
    assert!(r.healthy, "{r:?}");
    assert_eq!(r.response_code, Some(200));
    let r = local(&monitor(&[("body", "absent")]), addr.port()).await;
    assert_fails(&r, "Response body mismatch error");
}

#[tokio::test]
async fn bodies_cut_short_or_misframed_are_invalid() {
    let short =
        answer_in_pieces(&[b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nten bytes."]).await;
    let r = local(&monitor(&[("body", "absent")]), short.port()).await;
    assert_fails(&r, "HTTP invalid response");
    // Found before the cut: the rest is never waited for.
    let r = local(&monitor(&[("body", "ten")]), short.port()).await;
    assert!(r.healthy, "{r:?}");
    let chunks =
        answer_in_pieces(&[b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"]).await;
    let r = local(&monitor(&[("body", "absent")]), chunks.port()).await;
    assert_fails(&r, "HTTP invalid response");
    // Until the close, when neither a length nor chunks frame it.
    let close = answer_in_pieces(&[b"HTTP/1.0 200 OK\r\n\r\nall ", b"systems go"]).await;
    assert!(
        local(&monitor(&[("body", "systems go")]), close.port())
            .await
            .healthy
    );
}

#[tokio::test]
async fn a_head_past_64_kib_is_invalid() {
    static HUGE: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
        let mut head = b"HTTP/1.1 200 OK\r\nX-Big: ".to_vec();
        head.resize(head.len() + 70 * 1024, b'a');
        head
    });
    let addr = serve(|mut s| async move {
        read_head(&mut s).await;
        let _ = s.write_all(&HUGE).await;
        // Held open until the check lets go: it must give up on the size, not on the end of
        // the stream (and before its timeout, or the reason would be a timeout).
        let _ = s.read(&mut [0u8; 1]).await;
    })
    .await;
    let r = local(&monitor(&[]), addr.port()).await;
    assert_fails(&r, "HTTP invalid response");
}

#[tokio::test]
async fn slow_answer_past_the_timeout() {
    let addr = serve(|mut s| async move {
        read_head(&mut s).await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .await;
    })
    .await;
    let r = local(&monitor(&[]), addr.port()).await;
    assert_fails(&r, "HTTP timeout occurred");
}

#[tokio::test]
async fn accepts_and_never_answers() {
    let addr = serve(|s| async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(s);
    })
    .await;
    let r = local(&monitor(&[]), addr.port()).await;
    assert_fails(&r, "HTTP timeout occurred");
}

#[tokio::test]
async fn resets_the_connection() {
    let addr = serve(|mut s| async move {
        read_head(&mut s).await;
        let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
        drop(s);
    })
    .await;
    let r = local(&monitor(&[]), addr.port()).await;
    assert_fails(&r, "Connection reset by peer");
}

/// What the server read after it answered: a reset, or an orderly end of stream.
async fn read_after_answer(kind: &str, answer: &'static str) -> std::io::Result<usize> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let addr = serve(move |mut s| {
        let tx = tx.clone();
        async move {
            if !answer.is_empty() {
                read_head(&mut s).await;
                s.write_all(answer.as_bytes()).await.unwrap();
            }
            let _ = tx.send(s.read(&mut [0u8; 64]).await);
        }
    })
    .await;
    let port = addr.port().to_string();
    local(&monitor(&[("type", kind), ("port", &port)]), 0).await;
    rx.recv().await.unwrap()
}

/// A check's connection ends with a reset, so neither side keeps a TIME_WAIT socket per
/// check; an orderly close would show here as the end of the stream (`Ok(0)`).
#[tokio::test]
async fn checks_end_their_connections_with_a_reset() {
    let http = read_after_answer(
        "http",
        "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(
        http.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionReset)
    );
    let tcp = read_after_answer("tcp", "").await;
    assert_eq!(
        tcp.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionReset)
    );
}

#[tokio::test]
async fn trickles_bytes_slowloris() {
    let addr = serve(|mut s| async move {
        read_head(&mut s).await;
        for b in b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n" {
            if s.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    let r = local(&monitor(&[]), addr.port()).await;
    assert_fails(&r, "HTTP timeout occurred");
}

#[tokio::test]
async fn a_1_gib_body_is_never_read_past_10_kib() {
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&sent);
    let addr = serve(move |mut s| {
        let sent = Arc::clone(&counter);
        async move {
            read_head(&mut s).await;
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1073741824\r\n\r\n")
                .await;
            let chunk = vec![b'a'; 64 * 1024];
            for _ in 0..(1 << 14) {
                if s.write_all(&chunk).await.is_err() {
                    return;
                }
                sent.fetch_add(chunk.len(), Ordering::Relaxed);
            }
        }
    })
    .await;
    let r = local(&monitor(&[("body", "needle")]), addr.port()).await;
    assert_fails(&r, "Response body mismatch error");
    // When the check returns, the server has pushed little more than socket buffers hold; a
    // prober that read on would have taken the whole gigabyte first.
    let pushed = sent.load(Ordering::Relaxed);
    assert!(
        pushed < 64 * 1024 * 1024,
        "the prober kept reading: {pushed} bytes sent"
    );
}

#[tokio::test]
async fn redirect_loop_stops_after_ten_hops() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = Arc::clone(&hits);
    let addr = serve(move |mut s| {
        let hits = Arc::clone(&h);
        async move {
            read_head(&mut s).await;
            hits.fetch_add(1, Ordering::Relaxed);
            let _ = s
                .write_all(b"HTTP/1.1 302 Found\r\nlocation: /again\r\ncontent-length: 0\r\n\r\n")
                .await;
        }
    })
    .await;
    let r = local(&monitor(&[("redirects", "true")]), addr.port()).await;
    assert_fails(&r, "Response code mismatch error");
    assert_eq!(r.response_code, Some(302));
    assert_eq!(
        hits.load(Ordering::Relaxed),
        11,
        "the first request and ten hops"
    );
}

#[tokio::test]
async fn redirects_followed_or_judged() {
    let addr = serve(|mut s| async move {
        let head = read_head(&mut s).await;
        let resp: &[u8] = if head.starts_with("GET /moved") {
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
        } else {
            b"HTTP/1.1 301 Moved\r\nlocation: /moved\r\ncontent-length: 0\r\n\r\n"
        };
        let _ = s.write_all(resp).await;
    })
    .await;
    assert!(
        local(&monitor(&[("redirects", "true")]), addr.port())
            .await
            .healthy
    );
    let r = local(&monitor(&[]), addr.port()).await;
    assert_fails(&r, "Response code mismatch error");
    assert!(
        local(&monitor(&[("codes", "3xx")]), addr.port())
            .await
            .healthy
    );
}

#[tokio::test]
async fn closed_port() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let r = local(&monitor(&[]), port).await;
    assert_fails(&r, "TCP connection failed");
    let tcp = monitor(&[("type", "tcp"), ("port", &port.to_string())]);
    assert_fails(&local(&tcp, 0).await, "TCP connection failed");
}

#[tokio::test]
async fn tcp_monitor_on_an_open_port() {
    let addr = serve(|s| async move { drop(s) }).await;
    let tcp = monitor(&[("type", "tcp"), ("port", &addr.port().to_string())]);
    assert!(local(&tcp, 0).await.healthy);
}

#[tokio::test]
async fn unresolvable_host_name() {
    let r = run(&prober(), &monitor(&[]), "no-such-origin.invalid", 80, None).await;
    assert_fails(&r, "DNS unknown host");
}

#[tokio::test]
async fn retries_happen_at_once_within_one_check() {
    let conns = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&conns);
    let addr = serve(move |s| {
        let n = c.fetch_add(1, Ordering::Relaxed);
        async move {
            if n == 0 {
                tokio::time::sleep(Duration::from_secs(5)).await; // the first attempt times out
            } else {
                respond(s, "200 OK", "").await;
            }
        }
    })
    .await;
    let r = local(&monitor(&[("retries", "1")]), addr.port()).await;
    assert!(r.healthy, "{r:?}");
    assert_eq!(conns.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn host_user_agent_and_headers_are_sent() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let addr = serve(move |mut s| {
        let tx = tx.clone();
        async move {
            let head = read_head(&mut s).await;
            let _ = tx.send(head);
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                .await;
        }
    })
    .await;
    let spec = monitor(&[("x-custom", "yes")]);
    assert!(
        run(
            &prober(),
            &spec,
            "127.0.0.1",
            addr.port(),
            Some("origin.example")
        )
        .await
        .healthy
    );
    let head = rx.recv().await.unwrap().to_ascii_lowercase();
    assert!(head.contains("host: origin.example\r\n"), "{head}");
    assert!(
        head.contains("user-agent: vantage-health-check (pool: web)"),
        "{head}"
    );
    assert!(head.contains("x-custom: yes"), "{head}");
    let spec = monitor(&[("host", "from-monitor.example")]);
    assert!(local(&spec, addr.port()).await.healthy);
    assert!(rx
        .recv()
        .await
        .unwrap()
        .to_ascii_lowercase()
        .contains("host: from-monitor.example\r\n"));
}

mod tls {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    use tokio_rustls::TlsAcceptor;

    fn acceptor(cert: CertificateDer<'static>, key: PrivateKeyDer<'static>) -> TlsAcceptor {
        let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
        TlsAcceptor::from(Arc::new(cfg))
    }

    async fn https_server(
        cert: CertificateDer<'static>,
        key: PrivateKeyDer<'static>,
    ) -> SocketAddr {
        let acceptor = acceptor(cert, key);
        serve(move |s| {
            let acceptor = acceptor.clone();
            async move {
                let Ok(mut tls) = acceptor.accept(s).await else {
                    return;
                };
                let mut buf = vec![0u8; 4096];
                let _ = tls.read(&mut buf).await;
                let _ = tls
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await;
                let _ = tls.shutdown().await;
            }
        })
        .await
    }

    fn key_der(k: &KeyPair) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(k.serialize_der()))
    }

    /// An HTTPS check ends TLS with close_notify, then its connection with a reset, as a
    /// plain one does: read on the server's TCP side, what follows the alert is the end.
    #[tokio::test]
    async fn ends_with_close_notify_then_a_reset() {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let acceptor = acceptor(cert.der().clone(), key_der(&key));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let addr = serve(move |s| {
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            async move {
                let mut tls = acceptor.accept(s).await.unwrap();
                let mut buf = vec![0u8; 4096];
                let _ = tls.read(&mut buf).await;
                tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await
                    .unwrap();
                let (mut tcp, _) = tls.into_inner();
                let mut alert = 0;
                let end = loop {
                    match tcp.read(&mut buf).await {
                        Ok(0) => break Ok(0),
                        Ok(n) => alert += n,
                        Err(e) => break Err(e.kind()),
                    }
                };
                let _ = tx.send((alert, end));
            }
        })
        .await;
        let spec = monitor(&[("type", "https"), ("insecure", "true")]);
        assert!(local(&spec, addr.port()).await.healthy);
        let (alert, end) = rx.recv().await.unwrap();
        assert!(alert > 0, "no close_notify before the end");
        assert_eq!(end, Err(std::io::ErrorKind::ConnectionReset));
    }

    #[tokio::test]
    async fn self_signed_with_and_without_allow_insecure() {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let addr = https_server(cert.der().clone(), key_der(&key)).await;
        let strict = monitor(&[("type", "https")]);
        assert_fails(
            &run(
                &prober(),
                &strict,
                "127.0.0.1",
                addr.port(),
                Some("localhost"),
            )
            .await,
            "TLS untrusted certificate error",
        );
        let insecure = monitor(&[("type", "https"), ("insecure", "true")]);
        assert!(
            run(
                &prober(),
                &insecure,
                "127.0.0.1",
                addr.port(),
                Some("localhost")
            )
            .await
            .healthy
        );
    }

    #[tokio::test]
    async fn trusted_certificate_with_the_wrong_host_name() {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &ca)
            .unwrap();
        let addr = https_server(leaf.der().clone(), key_der(&leaf_key)).await;

        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        let prober = Prober::new(Some(&ca_file), None).unwrap();
        let spec = monitor(&[("type", "https")]);
        assert!(
            run(&prober, &spec, "127.0.0.1", addr.port(), Some("localhost"))
                .await
                .healthy,
            "the CA file is trusted"
        );
        assert_fails(
            &run(
                &prober,
                &spec,
                "127.0.0.1",
                addr.port(),
                Some("wrong.example"),
            )
            .await,
            "TLS name mismatch error",
        );
        assert_fails(
            &run(
                &super::prober(),
                &spec,
                "127.0.0.1",
                addr.port(),
                Some("localhost"),
            )
            .await,
            "TLS untrusted certificate error",
        );
    }

    #[tokio::test]
    async fn plain_http_to_a_tls_port_is_an_invalid_response() {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let addr = https_server(cert.der().clone(), key_der(&key)).await;
        let r = local(&monitor(&[]), addr.port()).await;
        assert!(!r.healthy);
    }
}

mod smtp {
    use super::*;

    async fn smtp_server(greeting: &'static str) -> SocketAddr {
        serve(move |mut s| async move {
            let _ = s.write_all(greeting.as_bytes()).await;
            let mut buf = [0u8; 256];
            loop {
                let n = s.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    return;
                }
                let line = String::from_utf8_lossy(&buf[..n]).to_ascii_uppercase();
                let reply: &[u8] = if line.starts_with("HELO") {
                    b"250 hello\r\n"
                } else {
                    b"221 bye\r\n"
                };
                let _ = s.write_all(reply).await;
            }
        })
        .await
    }

    /// Like an HTTP check's, an SMTP check's connection ends with a reset once `QUIT` is
    /// answered, not with an orderly close first.
    #[tokio::test]
    async fn ends_with_a_reset_after_quit() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let addr = serve(move |mut s| {
            let tx = tx.clone();
            async move {
                s.write_all(b"220 ready\r\n").await.unwrap();
                let mut buf = [0u8; 256];
                for reply in [&b"250 hello\r\n"[..], b"221 bye\r\n"] {
                    let _ = s.read(&mut buf).await;
                    s.write_all(reply).await.unwrap();
                }
                let _ = tx.send(s.read(&mut buf).await.map_err(|e| e.kind()));
            }
        })
        .await;
        let spec = monitor(&[("type", "smtp"), ("port", &addr.port().to_string())]);
        assert!(local(&spec, 0).await.healthy);
        assert_eq!(
            rx.recv().await.unwrap(),
            Err(std::io::ErrorKind::ConnectionReset)
        );
    }

    #[tokio::test]
    async fn healthy_and_refusing_servers() {
        let good = smtp_server("220-mail.example ESMTP\r\n220 ready\r\n").await;
        let spec = monitor(&[("type", "smtp"), ("port", &good.port().to_string())]);
        assert!(local(&spec, 0).await.healthy);

        let refusing = smtp_server("554 no service here\r\n").await;
        let spec = monitor(&[("type", "smtp"), ("port", &refusing.port().to_string())]);
        let r = local(&spec, 0).await;
        assert_fails(&r, "Response code mismatch error");
        assert_eq!(r.response_code, Some(554));
    }
}

mod icmp {
    use super::*;

    /// Opening an ICMP socket needs privileges; where the system refuses, the check must fail
    /// with a reason instead of crashing, and where it allows, loopback answers.
    fn icmp_allowed() -> bool {
        use socket2::{Domain, Protocol, Socket, Type};
        Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)).is_ok()
            || Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::ICMPV4)).is_ok()
    }

    #[tokio::test]
    async fn ping_loopback() {
        let spec = monitor(&[("type", "icmp_ping")]);
        let r = local(&spec, 0).await;
        if icmp_allowed() {
            assert!(r.healthy, "{r:?}");
        } else {
            assert_fails(&r, "Other failure");
        }
    }

    #[tokio::test]
    async fn udp_icmp_open_and_closed_ports() {
        let open = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let closed_port = {
            let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            s.local_addr().unwrap().port()
        };
        let open_spec = monitor(&[
            ("type", "udp_icmp"),
            ("port", &open.local_addr().unwrap().port().to_string()),
        ]);
        let closed_spec = monitor(&[("type", "udp_icmp"), ("port", &closed_port.to_string())]);
        let (o, c) = (local(&open_spec, 0).await, local(&closed_spec, 0).await);
        if icmp_allowed() {
            assert!(o.healthy, "{o:?}");
            assert!(!c.healthy, "a port-unreachable answer means down: {c:?}");
        } else {
            assert!(!o.healthy && !c.healthy);
        }
    }
}
