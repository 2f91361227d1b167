//! The data plane against abusive clients (and stalling origins), over real loopback
//! sockets: each test is one attack that used to work.

#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use vantage_core::catalog::{Catalog, Outcome};
use vantage_core::health::Engine;
use vantage_core::load_balancer::LoadBalancerDraft;
use vantage_core::pool::{OriginDraft, PoolDraft};
use vantage_core::routing::RoutingTable;
use vantage_core::zone::Overlap;
use vantage_core::{AccountId, LoadBalancerId, PoolId, Timestamp, ZoneId};
use vantage_dataplane::dns::{Dns, DnsConfig};
use vantage_dataplane::geo::GeoTable;
use vantage_dataplane::{Proxy, ProxyConfig};
use vantage_metrics::{Metrics, ProxyLabels};

/// How long any one step may take before the test calls it a hang; never a measure of speed.
const HANG: Duration = Duration::from_secs(60);

async fn guard<F: std::future::Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(HANG, f)
        .await
        .unwrap_or_else(|_| panic!("hung: {what}"))
}

/// Zone example.com: `www.example.com`, proxied, to one pool `p` of one origin, `origin`.
fn routes(origin: SocketAddr) -> Arc<ArcSwap<RoutingTable>> {
    routes_to(origin, None)
}

/// As [`routes`]; with `next`, a second pool `q` of that one origin is the fallback, and a
/// request whose connection to `origin` fails may fail over to it.
fn routes_to(origin: SocketAddr, next: Option<SocketAddr>) -> Arc<ArcSwap<RoutingTable>> {
    let now = Timestamp::from_unix_micros(1_700_000_000_000_000);
    let account = AccountId::from_bytes([1; 16]);
    let zone = ZoneId::from_bytes([2; 16]);
    let pool = PoolId::from_bytes([3; 16]);
    let mut c = Catalog::default();
    let apply = |c: &mut Catalog, command: &dyn Fn(&Catalog) -> Outcome| {
        for change in command(c).unwrap() {
            c.apply(change);
        }
    };
    apply(&mut c, &|c| c.create_account(account, "a".into(), now));
    apply(&mut c, &|c| {
        c.create_zone(account, zone, "example.com", Overlap::Refuse, now)
    });
    let mut add_pool = |id: PoolId, name: &str, origin: SocketAddr| {
        let (spec, monitor) = PoolDraft {
            name: Some(name.into()),
            origins: Some(vec![OriginDraft {
                name: Some("o".into()),
                address: Some(origin.ip().to_string()),
                port: Some(i64::from(origin.port())),
                ..Default::default()
            }]),
            ..Default::default()
        }
        .validate()
        .unwrap();
        apply(&mut c, &|c| {
            c.create_pool(account, id, spec.clone(), monitor.clone(), now)
        });
    };
    add_pool(pool, "p", origin);
    let fallback = next.map_or(pool, |next| {
        let q = PoolId::from_bytes([5; 16]);
        add_pool(q, "q", next);
        q
    });
    let lb = LoadBalancerDraft {
        name: Some("www.example.com".into()),
        default_pools: Some(vec![pool.to_string()]),
        fallback_pool: Some(fallback.to_string()),
        failover_across_pools: next.map(|_| true),
        proxied: Some(true),
        ..Default::default()
    };
    apply(&mut c, &|c| {
        c.create_load_balancer(zone, LoadBalancerId::from_bytes([4; 16]), lb.clone(), now)
    });
    let engine = Engine::new(&c.health_plan(), [], now);
    let table = RoutingTable::build(&c, &engine.view(), b"secret");
    Arc::new(ArcSwap::from_pointee(table))
}

async fn start_proxy(config: ProxyConfig, origin: SocketAddr) -> SocketAddr {
    start_proxy_on(config, routes(origin)).await
}

async fn start_proxy_on(config: ProxyConfig, routes: Arc<ArcSwap<RoutingTable>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let proxy = Arc::new(Proxy::new(routes, config));
    tokio::spawn(proxy.serve(listener, None, std::future::pending()));
    addr
}

/// An origin that reads the whole request, then answers 200 with the request's header lines
/// (`name: value`) and `body-bytes: N`.
async fn echo_origin() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let service = hyper::service::service_fn(
                |req: http::Request<hyper::body::Incoming>| async move {
                    let mut text = String::new();
                    for (name, value) in req.headers() {
                        text.push_str(&format!("{name}: {}\n", value.to_str().unwrap_or("?")));
                    }
                    let body = req.into_body().collect().await?.to_bytes();
                    text.push_str(&format!("body-bytes: {}\n", body.len()));
                    Ok::<_, hyper::Error>(http::Response::new(Full::new(Bytes::from(text))))
                },
            );
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// Sends raw bytes as one HTTP/1.1 client and reads until the proxy closes; the status and
/// everything received.
async fn raw_http1(proxy: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match guard("reading the proxy's answer", stream.read(&mut buf)).await {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    (status, text)
}

fn get_with(headers: &str) -> Vec<u8> {
    format!("GET / HTTP/1.1\r\nHost: www.example.com\r\n{headers}Connection: close\r\n\r\n")
        .into_bytes()
}

async fn http2_status(proxy: SocketAddr, name: &str, value: String) -> u16 {
    let stream = TcpStream::connect(proxy).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = http::Request::builder()
        .uri("http://www.example.com/")
        .header(name, value)
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = guard("an HTTP/2 answer", sender.send_request(req))
        .await
        .unwrap();
    response.status().as_u16()
}

#[tokio::test]
async fn client_address_and_country_headers_are_the_proxy_s_own() {
    let origin = echo_origin().await;
    let config = ProxyConfig {
        geo: Some(Arc::new(GeoTable::parse("127.0.0.0/8 DE\n").unwrap())),
        ..Default::default()
    };
    let proxy = start_proxy(config, origin).await;
    let spoofed = "True-Client-IP: 6.6.6.6\r\nX-Real-IP: 6.6.6.6\r\n\
                   Forwarded: for=6.6.6.6;proto=https\r\nForwarded: for=7.7.7.7\r\n\
                   CF-IPCountry: US\r\nCF-Connecting-IP: 6.6.6.6\r\n";
    let (status, text) = raw_http1(proxy, &get_with(spoofed)).await;
    assert_eq!(status, 200, "{text}");
    let seen: Vec<&str> = text.lines().collect();
    for expected in [
        "true-client-ip: 127.0.0.1",
        "x-real-ip: 127.0.0.1",
        "forwarded: for=127.0.0.1;proto=http",
        "cf-ipcountry: DE",
        "cf-connecting-ip: 127.0.0.1",
    ] {
        assert!(seen.contains(&expected), "{expected:?} not in {text}");
    }
    assert!(!text.contains("6.6.6.6") && !text.contains("7.7.7.7") && !text.contains(": US"));
}

#[tokio::test]
async fn oversized_request_headers_get_431_over_http1_and_http2() {
    let origin = echo_origin().await;
    let config = ProxyConfig::default();
    assert_eq!(config.max_header_bytes, 32 * 1024);
    let proxy = start_proxy(config, origin).await;

    // Within the limit: served.
    let fine = format!("X-Big: {}\r\n", "a".repeat(20 * 1024));
    assert_eq!(raw_http1(proxy, &get_with(&fine)).await.0, 200);
    assert_eq!(
        http2_status(proxy, "x-big", "a".repeat(20 * 1024)).await,
        200
    );

    // One field past the limit: hyper answers 431 before the request is parsed.
    let huge = format!("X-Big: {}\r\n", "a".repeat(40 * 1024));
    let (status, text) = raw_http1(proxy, &get_with(&huge)).await;
    assert_eq!(status, 431, "{text}");
    assert_eq!(
        http2_status(proxy, "x-big", "a".repeat(40 * 1024)).await,
        431
    );

    // Many fields whose raw head fits in hyper's buffer but whose list, counted as HTTP/2
    // counts it, does not: the proxy's own check answers.
    let many: String = (0..97)
        .map(|i| format!("X-{i:02}: {}\r\n", "b".repeat(320)))
        .collect();
    let request = get_with(&many);
    assert!(request.len() < 32 * 1024);
    let (status, text) = raw_http1(proxy, &request).await;
    assert_eq!(status, 431, "{text}");
    assert!(text.contains("error code: 431"), "{text}");
}

#[tokio::test]
async fn two_host_headers_are_a_bad_request() {
    let origin = echo_origin().await;
    let proxy = start_proxy(ProxyConfig::default(), origin).await;
    let (status, text) = raw_http1(proxy, &get_with("Host: admin.internal\r\n")).await;
    assert_eq!(status, 400, "{text}");
    assert!(
        !text.contains("body-bytes"),
        "nothing reached the origin: {text}"
    );
    let (status, _) = raw_http1(proxy, &get_with("")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_malformed_chunked_body_is_the_client_s_fault() {
    let origin = echo_origin().await;
    let metrics = Metrics::new();
    let config = ProxyConfig {
        metrics: Arc::clone(&metrics),
        ..Default::default()
    };
    let proxy = start_proxy(config, origin).await;
    let post = |body: &str| {
        format!(
            "POST / HTTP/1.1\r\nHost: www.example.com\r\nTransfer-Encoding: chunked\r\n\
             Connection: close\r\n\r\n{body}"
        )
        .into_bytes()
    };
    let (status, text) = raw_http1(proxy, &post("5\r\nhello\r\n0\r\n\r\n")).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("body-bytes: 5"), "{text}");

    let (status, text) = raw_http1(proxy, &post("5\r\nhello\r\nzz\r\nhello\r\n0\r\n\r\n")).await;
    assert_eq!(status, 400, "{text}");
    let upstream_errors: u64 = ["400", "502"]
        .iter()
        .map(|code| {
            metrics
                .proxy_upstream_errors
                .get_or_create(&ProxyLabels {
                    load_balancer: "www.example.com".into(),
                    pool: "p".into(),
                    code: (*code).into(),
                })
                .get()
        })
        .sum();
    assert_eq!(upstream_errors, 0, "the origin did nothing wrong");
}

#[tokio::test]
async fn a_stalled_response_body_is_aborted_and_counted() {
    // An origin that sends its headers and one chunk, then nothing, holding the connection.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = listener.local_addr().unwrap();
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "the proxy hung up before sending its request");
            head.extend_from_slice(&buf[..n]);
        }
        stream
            .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
            .await
            .unwrap();
        // Returns when the proxy lets go of the connection.
        let _ = stream.read(&mut buf).await;
        let _ = closed_tx.send(());
    });
    let metrics = Metrics::new();
    let config = ProxyConfig {
        body_idle_timeout: Duration::from_millis(300),
        metrics: Arc::clone(&metrics),
        ..Default::default()
    };
    let proxy = start_proxy(config, origin).await;
    let (status, text) = raw_http1(proxy, &get_with("")).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("hello"), "what came was streamed: {text}");
    assert!(
        !text.ends_with("0\r\n\r\n"),
        "the client must not see a complete body: {text:?}"
    );
    guard("the proxy closing the origin connection", closed_rx)
        .await
        .unwrap();
    let stalled = metrics
        .proxy_upstream_errors
        .get_or_create(&ProxyLabels {
            load_balancer: "www.example.com".into(),
            pool: "p".into(),
            code: "200".into(),
        })
        .get();
    assert_eq!(stalled, 1);
}

fn query(id: u16, name: &str, rtype: RecordType) -> Vec<u8> {
    let mut q = Message::new(id, MessageType::Query, OpCode::Query);
    q.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    q.to_vec().unwrap()
}

fn dns_with(config: DnsConfig) -> Dns {
    Dns::new(routes("127.0.0.1:80".parse().unwrap()), config)
}

#[test]
fn zone_transfers_are_refused() {
    let dns = dns_with(DnsConfig::default());
    let client: IpAddr = [192, 0, 2, 1].into();
    for (udp, rtype) in [
        (false, RecordType::AXFR),
        (false, RecordType::IXFR),
        (true, RecordType::IXFR),
    ] {
        let out = dns
            .answer(&query(9, "example.com.", rtype), client, udp)
            .unwrap();
        let r = Message::from_vec(&out).unwrap();
        assert_eq!(r.response_code, ResponseCode::Refused, "{rtype}");
        assert!(r.answers.is_empty());
    }
    let out = dns
        .answer(&query(9, "example.com.", RecordType::SOA), client, false)
        .unwrap();
    assert_eq!(
        Message::from_vec(&out).unwrap().response_code,
        ResponseCode::NoError
    );
}

#[test]
fn udp_answers_are_rate_limited_per_network_with_every_second_one_truncated() {
    let metrics = Metrics::new();
    let dns = dns_with(DnsConfig {
        proxy_addresses: vec![[192, 0, 2, 80].into()],
        metrics: Arc::clone(&metrics),
        ..Default::default()
    });
    let now = Instant::now();
    let mut full = 0;
    let mut slipped = 0;
    let mut dropped = 0;
    for i in 0..30u16 {
        // Spread over the /24, as a forged flood would be.
        let client = IpAddr::from([198, 51, 100, u8::try_from(i).unwrap()]);
        let packet = query(i, "www.example.com.", RecordType::A);
        match dns.answer_udp(&packet, client, now) {
            None => dropped += 1,
            Some(out) => {
                let r = Message::from_vec(&out).unwrap();
                assert_eq!(r.id, i);
                assert_eq!(r.queries.len(), 1, "the question is echoed");
                if r.truncation {
                    assert!(r.answers.is_empty());
                    assert!(out.len() <= packet.len(), "no amplification");
                    slipped += 1;
                } else {
                    assert_eq!(r.answers.len(), 1);
                    assert_eq!(
                        r.answers[0].data,
                        RData::A(hickory_proto::rr::rdata::A::new(192, 0, 2, 80))
                    );
                    full += 1;
                }
            }
        }
    }
    assert_eq!((full, slipped, dropped), (20, 5, 5));
    assert_eq!(metrics.dns_query_series("SLIPPED").get(), 5);
    assert_eq!(metrics.dns_query_series("DROPPED").get(), 5);
    assert_eq!(metrics.dns_query_series("NOERROR").get(), 20);

    // Another network is not affected, nor is the same one over TCP.
    let other = dns.answer_udp(
        &query(1, "www.example.com.", RecordType::A),
        [198, 51, 101, 1].into(),
        now,
    );
    assert!(!Message::from_vec(&other.unwrap()).unwrap().truncation);
    let tcp = dns.answer(
        &query(1, "www.example.com.", RecordType::A),
        [198, 51, 100, 1].into(),
        false,
    );
    assert_eq!(Message::from_vec(&tcp.unwrap()).unwrap().answers.len(), 1);

    // A second later the network's bucket is full again.
    let later = now + Duration::from_secs(1);
    let sent = (0..25)
        .filter_map(|i| {
            dns.answer_udp(
                &query(i, "www.example.com.", RecordType::A),
                [198, 51, 100, 7].into(),
                later,
            )
        })
        .filter(|out| !Message::from_vec(out).unwrap().truncation)
        .count();
    assert_eq!(sent, 20);

    // Zero turns the limit off.
    let unlimited = dns_with(DnsConfig {
        rrl_rate: 0,
        ..Default::default()
    });
    let client: IpAddr = [198, 51, 100, 1].into();
    assert!((0..500u16).all(|i| {
        let out = unlimited.answer_udp(&query(i, "www.example.com.", RecordType::A), client, now);
        out.is_some_and(|o| !Message::from_vec(&o).unwrap().truncation)
    }));
}

#[tokio::test]
async fn a_tcp_client_that_never_reads_its_answers_is_cut_off() {
    let dns = Arc::new(dns_with(DnsConfig {
        tcp_idle_timeout: Duration::from_millis(200),
        ..Default::default()
    }));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(dns.serve_tcp(listener, std::future::pending()));

    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    let one = query(1, "example.com.", RecordType::ANY);
    let mut batch = Vec::new();
    for _ in 0..256 {
        batch.extend_from_slice(&u16::try_from(one.len()).unwrap().to_be_bytes());
        batch.extend_from_slice(&one);
    }
    // Queries and never a read: the answers back up until the server gives up on writing
    // and resets the connection, which fails a write here.
    guard(
        "the server cutting off a client that does not read",
        async { while stream.write_all(&batch).await.is_ok() {} },
    )
    .await;
}

/// Requests one after another reach the origin over one pooled connection, and a pooled
/// connection the origin closed while idle is replaced without the client seeing it.
#[tokio::test]
async fn origin_connections_are_reused_and_replaced_when_closed() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = listener.local_addr().unwrap();
    let (accepted_tx, mut accepted) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let (stop_tx, stop) = tokio::sync::oneshot::channel::<()>();
            let (closed_tx, closed) = tokio::sync::oneshot::channel::<()>();
            accepted_tx.send((stop_tx, closed)).unwrap();
            let service = hyper::service::service_fn(|_req| async {
                Ok::<_, hyper::Error>(http::Response::new(Full::new(Bytes::from("ok"))))
            });
            tokio::spawn(async move {
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service);
                // The origin closes this connection when told to, and says when it has.
                tokio::select! {
                    _ = conn => {}
                    _ = stop => {}
                }
                let _ = closed_tx.send(());
            });
        }
    });
    let proxy = start_proxy(ProxyConfig::default(), origin).await;
    let mut client = kept_alive(proxy).await;
    let mut get = || {
        let req = http::Request::get("/")
            .header("host", "www.example.com")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let sent = client.send_request(req);
        async move {
            let resp = guard("a proxied answer", sent).await.unwrap();
            let status = resp.status().as_u16();
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            (status, body)
        }
    };
    for _ in 0..20 {
        assert_eq!(get().await, (200, Bytes::from("ok")));
    }
    let (stop, closed) = guard("the first connection", accepted.recv())
        .await
        .unwrap();
    assert!(
        accepted.try_recv().is_err(),
        "a second origin connection was made"
    );
    // The origin closes the idle pooled connection: the next request gets a new one.
    stop.send(()).unwrap();
    guard("the origin's close", closed).await.unwrap();
    assert_eq!(get().await, (200, Bytes::from("ok")));
    guard("a new connection", accepted.recv()).await.unwrap();
}

/// What an origin of [`origin_closing_on_second_request`] does after its first connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Later {
    /// Every later connection answers `ok`.
    Answers,
    /// Every later connection closes on its first request as well.
    Closes,
    /// It stops listening before the first connection closes: no later connection is made.
    Refuses,
}

/// An origin that answers the first request on its first connection, then reads the second
/// and closes without a word (as an origin closing an idle connection just as it is reused
/// looks); later connections go as `later` says. Counts the connections it accepted.
async fn origin_closing_on_second_request(
    later: Later,
) -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    async fn read_head(stream: &mut TcpStream) -> bool {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        true
    }
    async fn serve(mut stream: TcpStream, nth: usize, later: Later, listener: Option<TcpListener>) {
        let mut answered = 0;
        while read_head(&mut stream).await {
            if (nth == 0 && answered == 1) || (nth > 0 && later == Later::Closes) {
                // The listener goes first, so the proxy's next connection is refused.
                drop(listener);
                return;
            }
            let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
            stream.write_all(ok).await.unwrap();
            answered += 1;
        }
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let nth = count.fetch_add(1, Ordering::SeqCst);
            if later == Later::Refuses {
                serve(stream, nth, later, Some(listener)).await;
                return;
            }
            tokio::spawn(serve(stream, nth, later, None));
        }
    });
    (addr, accepted)
}

/// One client connection to `proxy`, kept alive across requests.
async fn kept_alive(proxy: SocketAddr) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect(proxy).await.unwrap();
    let (client, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

/// A request through the proxy on a kept-alive client connection: the status.
async fn through(
    client: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    method: &str,
    body: &'static str,
) -> u16 {
    let req = http::Request::builder()
        .method(method)
        .uri("/")
        .header("host", "www.example.com")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let resp = guard("a proxied answer", client.send_request(req))
        .await
        .unwrap();
    let status = resp.status().as_u16();
    resp.into_body().collect().await.unwrap();
    status
}

/// A pooled connection that fails after the request was written and before any answer: a
/// GET without a body is sent again on a new connection and the client never sees the
/// failure; a POST (not idempotent: the origin may have acted on it) or a request with a body
/// is answered 502, never sent twice; a GET whose second connection fails too is not sent a
/// third time; and one whose second connection cannot be made gets 521 (origin down).
#[tokio::test]
async fn an_idempotent_request_is_sent_again_when_its_reused_connection_fails() {
    use std::sync::atomic::Ordering;
    for (method, body, later, status, connections) in [
        ("GET", "", Later::Answers, 200, 2),
        ("HEAD", "", Later::Answers, 200, 2),
        ("POST", "x", Later::Answers, 502, 1),
        ("POST", "", Later::Answers, 502, 1),
        ("PUT", "x", Later::Answers, 502, 1),
        ("GET", "", Later::Closes, 502, 2),
        ("GET", "", Later::Refuses, 521, 1),
    ] {
        let (origin, accepted) = origin_closing_on_second_request(later).await;
        let proxy = start_proxy(ProxyConfig::default(), origin).await;
        let mut client = kept_alive(proxy).await;
        assert_eq!(through(&mut client, "GET", "").await, 200);
        let case = format!("{method} {body:?} then {later:?}");
        assert_eq!(through(&mut client, method, body).await, status, "{case}");
        assert_eq!(accepted.load(Ordering::SeqCst), connections, "{case}");
    }
}

/// A request written to an origin is never handed to another, even where a failed connection
/// may fail over to the next pool: the origin may have acted on it. Only a connection never
/// made fails over (the control case, which shows the failover is live).
#[tokio::test]
async fn a_written_request_never_goes_to_another_origin() {
    use std::sync::atomic::Ordering;
    // Port 1 (tcpmux): privileged and served by nothing here, so the connection is refused.
    let unreachable: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let (next, next_accepted) = origin_closing_on_second_request(Later::Answers).await;
    let proxy = start_proxy_on(ProxyConfig::default(), routes_to(unreachable, Some(next))).await;
    let mut client = kept_alive(proxy).await;
    assert_eq!(through(&mut client, "GET", "").await, 200, "failed over");
    assert_eq!(next_accepted.load(Ordering::SeqCst), 1);

    for (method, body, later, status, connections) in [
        ("POST", "x", Later::Answers, 502, 1),
        ("GET", "", Later::Closes, 502, 2),
        ("GET", "", Later::Refuses, 521, 1),
        ("GET", "", Later::Answers, 200, 2),
    ] {
        let (origin, accepted) = origin_closing_on_second_request(later).await;
        let (next, next_accepted) = origin_closing_on_second_request(Later::Answers).await;
        let proxy = start_proxy_on(ProxyConfig::default(), routes_to(origin, Some(next))).await;
        let mut client = kept_alive(proxy).await;
        assert_eq!(through(&mut client, "GET", "").await, 200);
        let case = format!("{method} {body:?} then {later:?}");
        assert_eq!(through(&mut client, method, body).await, status, "{case}");
        assert_eq!(
            next_accepted.load(Ordering::SeqCst),
            0,
            "{case}: the next pool's origin was reached"
        );
        assert_eq!(accepted.load(Ordering::SeqCst), connections, "{case}");
    }
}
