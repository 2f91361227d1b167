//! HTTP and HTTPS checks: one fresh connection per hop, as real health checks do.

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::client::conn::http1;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use url::Url;
use vantage_core::health::{FailureReason, Outcome};

use crate::net::{connect, io_failure, resolve, Reset};
use crate::{Prober, Progress, Target};

/// How much of a body is searched for `expected_body`, and the most ever read.
pub(crate) const BODY_WINDOW: usize = 10 * 1024;
const MAX_HOPS: usize = 10;

/// One hop's destination.
struct Hop {
    https: bool,
    /// Where to connect: the origin's address, or a redirect's host when it names another.
    connect_host: String,
    port: u16,
    /// `Host` header and TLS server name.
    host: String,
    path_and_query: String,
}

fn hyper_failure(e: &hyper::Error) -> FailureReason {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return io_failure(io);
        }
        source = s.source();
    }
    if e.is_timeout() {
        FailureReason::HttpTimeout
    } else {
        FailureReason::HttpInvalidResponse
    }
}

fn host_only(host: &str) -> &str {
    // `Host: example.com:8443` names the server `example.com`.
    match host.rsplit_once(':') {
        Some((h, port)) if !h.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

pub(crate) async fn check(
    prober: &Prober,
    target: &Target<'_>,
    progress: &Progress,
) -> Result<Outcome, FailureReason> {
    let spec = target.spec;
    let mut hop = Hop {
        https: spec.kind == vantage_core::monitor::MonitorType::Https,
        connect_host: target.address.to_owned(),
        port: target.port(),
        host: target.host_header(),
        path_and_query: spec.path.clone(),
    };
    let mut hops = 0;
    loop {
        let (status, location, body_matched) = exchange(prober, target, &hop, progress).await?;
        let redirect = (300..400).contains(&status) && spec.follow_redirects && hops < MAX_HOPS;
        match (redirect, location) {
            (true, Some(location)) => {
                hops += 1;
                hop = next_hop(&hop, &location).ok_or(FailureReason::HttpInvalidResponse)?;
            }
            _ => {
                return Ok(Outcome::Http {
                    status,
                    body_matched,
                })
            }
        }
    }
}

/// Where a `Location` header leads. A redirect to the same host stays on this origin (a
/// check tests one origin, not whatever DNS says); one to another host resolves that host.
fn next_hop(current: &Hop, location: &str) -> Option<Hop> {
    let scheme = if current.https { "https" } else { "http" };
    let authority = if current.host.contains(':')
        && !current.host.starts_with('[')
        && current.host.parse::<std::net::Ipv6Addr>().is_ok()
    {
        format!("[{}]", current.host)
    } else {
        host_only(&current.host).to_owned()
    };
    let base = Url::parse(&format!(
        "{scheme}://{authority}:{}{}",
        current.port, current.path_and_query
    ))
    .ok()?;
    let next = base.join(location).ok()?;
    let https = match next.scheme() {
        "https" => true,
        "http" => false,
        _ => return None,
    };
    let host = next
        .host_str()?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = next.port_or_known_default()?;
    let same_host = host.eq_ignore_ascii_case(host_only(&current.host));
    let mut path_and_query = next.path().to_owned();
    if let Some(q) = next.query() {
        path_and_query.push('?');
        path_and_query.push_str(q);
    }
    let default_port = if https { 443 } else { 80 };
    Some(Hop {
        https,
        connect_host: if same_host {
            current.connect_host.clone()
        } else {
            host.clone()
        },
        port,
        host: if port == default_port {
            host
        } else {
            format!("{host}:{port}")
        },
        path_and_query,
    })
}

/// One request on a fresh connection: status, `Location`, and whether the expected body was
/// found in the first [`BODY_WINDOW`] bytes.
async fn exchange(
    prober: &Prober,
    target: &Target<'_>,
    hop: &Hop,
    progress: &Progress,
) -> Result<(u16, Option<String>, bool), FailureReason> {
    let addr = resolve(&hop.connect_host, hop.port, prober.source).await?;
    let tcp = connect(addr, prober.source, progress).await?;
    if hop.https {
        // The TLS client may write twice before it reads (its last handshake flight, then
        // the request): without this the second would wait for the first's ACK. Plain HTTP
        // writes its request once.
        let _ = tcp.set_nodelay(true);
        let tls = prober
            .tls
            .connect(tcp, host_only(&hop.host), target.spec.allow_insecure)
            .await?;
        request(tls, target, hop).await
    } else {
        request(Reset(tcp), target, hop).await
    }
}

async fn request<S>(
    stream: S,
    target: &Target<'_>,
    hop: &Hop,
) -> Result<(u16, Option<String>, bool), FailureReason>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let spec = target.spec;
    let (mut sender, conn) = http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
        .await
        .map_err(|e| hyper_failure(&e))?;
    let mut req = Request::builder()
        .method(spec.method.as_str())
        .uri(&hop.path_and_query);
    for (name, values) in &spec.header {
        if !name.eq_ignore_ascii_case("host") {
            for v in values {
                req = req.header(name.as_str(), v.as_str());
            }
        }
    }
    let req = req
        .header(http::header::HOST, &hop.host)
        .header(http::header::USER_AGENT, target.user_agent)
        .header(http::header::CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|_| FailureReason::Other)?;

    let expected = spec.expected_body.to_ascii_lowercase().into_bytes();
    let exchange = async move {
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| hyper_failure(&e))?;
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get(http::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if expected.is_empty() {
            return Ok((status, location, true));
        }
        let mut body = resp.into_body();
        let mut window: Vec<u8> = Vec::with_capacity(BODY_WINDOW.min(4096));
        while window.len() < BODY_WINDOW {
            match body.frame().await {
                None => break,
                Some(Err(e)) => return Err(hyper_failure(&e)),
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        let room = BODY_WINDOW - window.len();
                        window.extend(data.iter().take(room).map(u8::to_ascii_lowercase));
                        if contains(&window, &expected) {
                            return Ok((status, location, true));
                        }
                    }
                }
            }
        }
        // Never read further: the rest of a large body is dropped with the connection.
        Ok((status, location, contains(&window, &expected)))
    };
    // The connection is driven here rather than on a spawned task, so a check owns all of
    // its I/O and ends with it.
    tokio::pin!(exchange);
    tokio::pin!(conn);
    let mut conn_done = false;
    loop {
        tokio::select! {
            result = &mut exchange => return result,
            closed = &mut conn, if !conn_done => {
                conn_done = true;
                if let Err(e) = closed {
                    return Err(hyper_failure(&e));
                }
            }
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}
