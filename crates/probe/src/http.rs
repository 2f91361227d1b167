//! HTTP and HTTPS checks: one fresh connection per hop, as real health checks do.

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use url::Url;
use vantage_core::health::{FailureReason, Outcome};

use crate::http1;
use crate::net::{connect, resolve, Reset};
use crate::{Prober, Progress, Target};

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
        let answer = exchange(prober, target, &hop, progress).await?;
        let status = answer.status;
        let redirect = (300..400).contains(&status) && spec.follow_redirects && hops < MAX_HOPS;
        match (redirect, answer.location) {
            (true, Some(location)) => {
                hops += 1;
                hop = next_hop(&hop, &location).ok_or(FailureReason::HttpInvalidResponse)?;
            }
            _ => {
                return Ok(Outcome::Http {
                    status,
                    body_matched: answer.body_matched,
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

/// One request on a fresh connection.
async fn exchange(
    prober: &Prober,
    target: &Target<'_>,
    hop: &Hop,
    progress: &Progress,
) -> Result<http1::Answer, FailureReason> {
    let addr = resolve(&hop.connect_host, hop.port, prober.source).await?;
    let tcp = connect(addr, prober.source, progress).await?;
    if hop.https {
        // The TLS client may write twice before it reads (its last handshake flight, then
        // the request): without this the second would wait for the first's ACK. Plain HTTP
        // writes its request once.
        let _ = tcp.set_nodelay(true);
        let tls = prober
            .tls
            .connect(Reset(tcp), host_only(&hop.host), target.spec.allow_insecure)
            .await?;
        request(tls, target, hop).await
    } else {
        request(Reset(tcp), target, hop).await
    }
}

async fn request<S>(
    mut stream: S,
    target: &Target<'_>,
    hop: &Hop,
) -> Result<http1::Answer, FailureReason>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let spec = target.spec;
    let request = http1::Request {
        method: &spec.method,
        path_and_query: &hop.path_and_query,
        host: &hop.host,
        user_agent: target.user_agent,
        headers: &spec.header,
    };
    let expected = spec.expected_body.to_ascii_lowercase().into_bytes();
    let answer = http1::exchange(&mut stream, &request, &expected).await?;
    // Ends TLS with close_notify when it can be written at once: the answer is in hand, and a
    // peer that stopped reading must not turn it into a timeout. The TCP connection's close
    // is the drop's reset, under TLS too ([`Reset`]).
    tokio::select! {
        biased;
        _ = stream.shutdown() => {}
        () = std::future::ready(()) => {}
    }
    Ok(answer)
}
