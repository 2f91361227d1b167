//! The HTTP proxy: a request's Host picks a proxied load balancer from the current routing
//! snapshot, the core steers it to an origin, and hyper carries it there over a pooled
//! connection, streaming both ways. A request whose connection to the origin cannot be made
//! is retried once where the core says (zero-downtime failover).
//!
//! What an origin learns about the client comes from the proxy, never from the client: the
//! headers origins commonly trust for the client's address or place are *overwritten* with
//! what Vantage saw, as `CF-Connecting-IP` always was (`True-Client-IP` and `X-Real-IP`:
//! the peer's address; `Forwarded`: one element, `for` and `proto` of this hop;
//! `CF-IPCountry`: the client's country from the geo file, `XX` when it has none).
//! Overwriting rather than stripping keeps origins that read them working, and an origin
//! that trusts them is then right to. `X-Forwarded-For` alone is appended to, as every
//! proxy does; its last element is ours.
//!
//! Clients are held to: request headers of at most `ProxyConfig::max_header_bytes` (431),
//! counted as HTTP/2 does (name + value + 32 per field) for either version, with HTTP/1.1's
//! raw head also capped at that size by hyper's read buffer (431, then the connection
//! closes); exactly one `Host` (400); a well-formed body (400 when it breaks, not the 502 of
//! an origin's failure). Origins are held to `body_idle_timeout` between pieces of a
//! response body: a stalled one has its client's response aborted mid-stream (the client
//! must not take a truncated body for a whole one) and counts as an upstream error.

use std::borrow::Cow;
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri, Version};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use vantage_core::load_balancer::{LoadBalancerSpec, SessionAffinity, SteeringPolicy};
use vantage_core::pool::OriginSteeringPolicy;
use vantage_core::routing::{normalize_host, Keep, Refused, Route, RoutingTable};
use vantage_core::rules::{Facts, FixedResponse, HttpFacts, Ruled};

use crate::affinity::{self, Sessions};
use crate::geo::{self, GeoTable, Locality};
use crate::load::Load;
use crate::upstream::{Failure, Upstreams};
use vantage_core::{LoadBalancerId, PoolId};
use vantage_metrics::{
    CounterHandle, HistogramHandle, Metrics, ProxyLabels, RouteLabels, RuleLabels,
};

pub use crate::upstream::Body;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A response body on its way to a client: the proxy's own pages, and origins' bodies under
/// the idle timeout (whose expiry is an error of its own, not one of hyper's).
type Reply = UnsyncBoxBody<Bytes, BoxError>;

/// How the proxy behaves; the binary fills it from flags.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub locality: Locality,
    /// Client networks → country/region, refining `locality` per request.
    pub geo: Option<Arc<GeoTable>>,
    /// Establishing a connection to an origin (then 522).
    pub connect_timeout: Duration,
    /// From sending a request to the origin's response headers (then 524).
    pub response_timeout: Duration,
    /// Keep-alive of idle pooled connections to origins.
    pub idle_timeout: Duration,
    /// The longest wait for the next piece of an origin's response body, once its headers
    /// came; then the client's response is aborted.
    pub body_idle_timeout: Duration,
    /// The most request header bytes a client may send (431 beyond), counted as HTTP/2
    /// does: name + value + 32 per field. HTTP/1.1's raw head (request line included) is
    /// capped at the same size, or 8 KiB if that is more.
    pub max_header_bytes: usize,
    /// Client connections open at once, shared by every worker; one more is closed at once.
    pub connections: crate::limit::ConnectionLimit,
    /// A client connection on which no byte moves this long is closed. It must outlast
    /// `response_timeout`, during which a client legitimately waits in silence.
    pub client_idle_timeout: Duration,
    pub metrics: Arc<Metrics>,
    /// Answer `Vantage-Debug: rules` with the rules that matched (`Vantage-Rules-Matched`).
    /// Off by default: rule names are the operator's, not every client's.
    pub rules_debug: bool,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            locality: Locality::default(),
            geo: None,
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(100),
            // Shorter than the keep-alive of common origin servers (nginx 75 s, Apache and
            // Node 5 s is the exception), so reuse rarely races an origin's close.
            idle_timeout: Duration::from_secs(15),
            // Cloudflare's 524 window.
            body_idle_timeout: Duration::from_secs(100),
            // What nginx's default large_client_header_buffers (4 × 8k) admits.
            max_header_bytes: 32 * 1024,
            connections: crate::limit::ConnectionLimit::new(10_000),
            client_idle_timeout: Duration::from_secs(120),
            metrics: Metrics::new(),
            rules_debug: false,
        }
    }
}

/// The proxy's shared state: the snapshot it reads, the upstream connection pool, in-flight
/// counts and header sessions.
#[derive(Debug)]
pub struct Proxy {
    routes: Arc<ArcSwap<RoutingTable>>,
    config: ProxyConfig,
    upstreams: Arc<Upstreams>,
    /// Shared by every worker: load counts and header sessions are per data plane.
    load: Arc<Load>,
    sessions: Arc<Sessions>,
    /// This worker's handles on its metric series, so a request never builds label strings.
    series: std::sync::Mutex<HashMap<SeriesKey, Series>>,
    /// The same for rule matches, by load balancer and rule index, with the names the
    /// series was made for (a renamed load balancer or rule gets a new one).
    rule_series: std::sync::Mutex<HashMap<(LoadBalancerId, usize), RuleSeries>>,
}

type SeriesKey = (Option<LoadBalancerId>, Option<PoolId>, u16);

#[derive(Debug)]
struct RuleSeries {
    load_balancer: String,
    rule: String,
    counter: CounterHandle,
}
type Series = (CounterHandle, HistogramHandle);

/// Which load balancer and pool answered, attached to a response for the metrics.
#[derive(Debug, Clone)]
struct Served {
    route: Arc<Route>,
    pool: Option<PoolId>,
    upstream_error: bool,
}

fn tag(
    mut r: Response<Reply>,
    route: &Arc<Route>,
    pool: Option<PoolId>,
    upstream_error: bool,
) -> Response<Reply> {
    r.extensions_mut().insert(Served {
        route: Arc::clone(route),
        pool,
        upstream_error,
    });
    r
}

/// A response the proxy answers itself: `status` (502 if it is no status), the body, and
/// its content type.
fn reply(status: u16, body: impl Into<Bytes>, content_type: HeaderValue) -> Response<Reply> {
    let mut r = Response::new(
        Full::new(body.into())
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    r.headers_mut().insert(header::CONTENT_TYPE, content_type);
    r
}

fn page(status: u16, message: &str) -> Response<Reply> {
    reply(
        status,
        format!("error code: {status}\n{message}\n"),
        HeaderValue::from_static("text/plain; charset=utf-8"),
    )
}

/// The size of a header list as HTTP/2 counts it (RFC 9113 §6.5.2), so that one limit
/// means the same for either version.
fn header_list_size(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 32)
        .sum()
}

/// The client's request body broke off or could not be parsed (a malformed chunk, a reset
/// stream): the client's fault, not the origin's.
fn client_body_error() -> Response<Reply> {
    page(400, "The request body was malformed or cut short.")
}

/// The `load_balancer` and `pool` labels of a response's series.
fn label_names(route: Option<&Route>, pool: Option<PoolId>) -> (String, String) {
    let lb = route.map_or("", |r| r.spec.name.as_str());
    let pool = route
        .zip(pool)
        .and_then(|(r, p)| r.pool_names.get(&p))
        .map_or("", String::as_str);
    (lb.to_owned(), pool.to_owned())
}

fn count_upstream_error(metrics: &Metrics, route: &Route, pool: Option<PoolId>, code: u16) {
    let (load_balancer, pool) = label_names(Some(route), pool);
    metrics
        .proxy_upstream_errors
        .get_or_create(&ProxyLabels {
            load_balancer,
            pool,
            code: code.to_string(),
        })
        .inc();
}

/// A client's request body on its way to an origin, noting whether it failed: the origin
/// request then fails too, and the two must not be confused.
struct Watched {
    body: Incoming,
    failed: Arc<AtomicBool>,
}

impl HttpBody for Watched {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if let Poll::Ready(Some(Err(_))) = &polled {
            self.failed.store(true, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// An origin's response body stalled for longer than the idle timeout.
#[derive(Debug, thiserror::Error)]
#[error("the origin sent nothing of the response body for {0:?}")]
struct BodyStalled(Duration);

/// Where an origin's stalled body is counted: as an upstream error of the pool that
/// answered, under the status its client already got.
struct Stalled {
    metrics: Arc<Metrics>,
    route: Arc<Route>,
    pool: PoolId,
    code: u16,
}

/// An origin's response body, streamed as it comes, failing when the origin sends nothing
/// for `idle` while the client is waiting for more. The clock runs only while this body is
/// polled and has nothing: a client too slow to take what is there stalls nothing.
struct Idle {
    body: Body,
    idle: Duration,
    /// Made on the first wait, so a body that is all there needs no timer.
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Whether `deadline` is for the current wait, not a past one.
    waiting: bool,
    stalled: Option<Stalled>,
}

impl Idle {
    fn new(body: Body, idle: Duration, stalled: Stalled) -> Idle {
        Idle {
            body,
            idle,
            deadline: None,
            waiting: false,
            stalled: Some(stalled),
        }
    }
}

impl HttpBody for Idle {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.waiting = false;
                return Poll::Ready(frame.map(|f| f.map_err(BoxError::from)));
            }
            Poll::Pending => {}
        }
        let at = tokio::time::Instant::now() + this.idle;
        let deadline = match &mut this.deadline {
            Some(d) => {
                if !this.waiting {
                    d.as_mut().reset(at);
                }
                d
            }
            None => this.deadline.insert(Box::pin(tokio::time::sleep_until(at))),
        };
        this.waiting = true;
        if deadline.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        if let Some(s) = this.stalled.take() {
            tracing::debug!(
                load_balancer = %s.route.spec.name,
                "origin response body stalled; aborting"
            );
            count_upstream_error(&s.metrics, &s.route, Some(s.pool), s.code);
        }
        Poll::Ready(Some(Err(BodyStalled(this.idle).into())))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Headers that describe one hop, never forwarded (RFC 9110 §7.6.1), plus any the
/// `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named {
        headers.remove(n);
    }
    for n in [
        header::CONNECTION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::PROXY_AUTHORIZATION,
        KEEP_ALIVE,
        PROXY_CONNECTION,
    ] {
        headers.remove(n);
    }
}

const RULES_MATCHED: HeaderName = HeaderName::from_static("vantage-rules-matched");

/// The rules that matched, for the debug header: their names (a name that cannot be a header
/// value by its position, `#3`), or `none`.
fn matched_header(route: &Route, matched: &[usize]) -> HeaderValue {
    let labels: Vec<String> = matched
        .iter()
        .map(|&i| {
            let label = route
                .spec
                .rules
                .get(i)
                .map(|r| r.label(i))
                .unwrap_or_default();
            if HeaderValue::from_str(&label).is_ok() && !label.contains(',') {
                label.into_owned()
            } else {
                format!("#{i}")
            }
        })
        .collect();
    let text = if labels.is_empty() {
        "none".to_owned()
    } else {
        labels.join(", ")
    };
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("none"))
}

/// A rule's fixed response, answered without touching an origin.
fn fixed_response(f: &FixedResponse) -> Response<Reply> {
    // Content type and location were checked header-safe with the rule; one that still is
    // not a header value falls back to the default, or is left out.
    let content_type = f
        .content_type
        .as_deref()
        .and_then(|c| HeaderValue::from_str(c).ok())
        .unwrap_or(HeaderValue::from_static("text/plain"));
    let mut r = reply(
        f.status_code,
        f.message_body.clone().unwrap_or_default(),
        content_type,
    );
    if let Some(v) = f
        .location
        .as_deref()
        .and_then(|l| HeaderValue::from_str(l).ok())
    {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// What a rule's condition can read of a proxied request.
fn request_facts<'a>(
    req: &'a Request<Incoming>,
    host: &'a str,
    route: &'a Route,
    client: IpAddr,
    locality: &'a Locality,
) -> Facts<'a> {
    let version = match req.version() {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    };
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    Facts {
        name: &route.spec.name,
        region: locality.region.map(|r| r.code()),
        ip: Some(client),
        http: Some(HttpFacts {
            method: req.method().as_str(),
            host: normalize_host(host),
            uri: req.uri().path_and_query().map_or("/", |p| p.as_str()),
            version,
            headers: req
                .headers()
                .iter()
                .map(|(n, v)| {
                    (
                        Cow::Borrowed(n.as_str()),
                        String::from_utf8_lossy(v.as_bytes()),
                    )
                })
                .collect(),
            timestamp,
        }),
        dns: None,
    }
}

fn uses_load(spec: &LoadBalancerSpec, route: &Route) -> bool {
    matches!(
        spec.steering_policy,
        SteeringPolicy::LeastOutstandingRequests | SteeringPolicy::LeastConnections
    ) || route.pools.values().any(|p| {
        matches!(
            p.origin_steering,
            OriginSteeringPolicy::LeastOutstandingRequests | OriginSteeringPolicy::LeastConnections
        )
    })
}

impl Proxy {
    pub fn new(routes: Arc<ArcSwap<RoutingTable>>, config: ProxyConfig) -> Proxy {
        let upstreams = Arc::new(Upstreams::new(config.connect_timeout, config.idle_timeout));
        Proxy {
            routes,
            config,
            upstreams,
            load: Arc::default(),
            sessions: Arc::default(),
            series: std::sync::Mutex::default(),
            rule_series: std::sync::Mutex::default(),
        }
    }

    /// A proxy for another worker thread: the same snapshot, load counts and sessions, its
    /// own connections to origins (a connection stays with the thread that drives it).
    pub fn worker(&self) -> Proxy {
        Proxy {
            routes: Arc::clone(&self.routes),
            config: self.config.clone(),
            upstreams: Arc::new(Upstreams::new(
                self.config.connect_timeout,
                self.config.idle_timeout,
            )),
            load: Arc::clone(&self.load),
            sessions: Arc::clone(&self.sessions),
            series: std::sync::Mutex::default(),
            rule_series: std::sync::Mutex::default(),
        }
    }

    /// Serves clients on `listener` (TLS when `tls` is given) until `shutdown` resolves,
    /// then lets requests in flight finish for up to 10 s.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        tls: Option<TlsAcceptor>,
        shutdown: impl Future<Output = ()>,
    ) {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        let header_bytes = self.config.max_header_bytes;
        // hyper answers 431 itself when a head outgrows the read buffer (its floor is 8 KiB).
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(30))
            .max_buf_size(header_bytes.max(8 * 1024));
        // h2 answers 431 from a header list that *reaches* its setting; one more byte makes
        // it refuse exactly what `handle` would.
        builder.http2().max_header_list_size(
            u32::try_from(header_bytes.saturating_add(1)).unwrap_or(u32::MAX),
        );
        let graceful = GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = crate::accept(&listener, "proxy") => accepted,
                () = &mut shutdown => break,
            };
            let Some(place) = self.config.connections.admit() else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let idle = self
                .config
                .client_idle_timeout
                .max(self.config.response_timeout);
            let stream = crate::limit::Guarded::new(stream, idle, Some(place));
            let proxy = self.clone();
            let https = tls.is_some();
            let peer = Arc::new(Peer::new(peer, https, self.config.geo.as_deref()));
            let service = hyper::service::service_fn(move |req| {
                let proxy = proxy.clone();
                let peer = Arc::clone(&peer);
                async move {
                    let started = Instant::now();
                    let mut response = proxy.handle(req, &peer).await;
                    proxy.observe(&mut response, started);
                    Ok::<_, Infallible>(response)
                }
            });
            match &tls {
                None => {
                    let conn = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .into_owned();
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        let _ = conn.await;
                    });
                }
                Some(acceptor) => {
                    let acceptor = acceptor.clone();
                    let builder = builder.clone();
                    let watcher = graceful.watcher();
                    tokio::spawn(async move {
                        let handshake =
                            tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream));
                        let Ok(Ok(stream)) = handshake.await else {
                            return;
                        };
                        let conn = builder
                            .serve_connection(TokioIo::new(stream), service)
                            .into_owned();
                        let _ = watcher.watch(conn).await;
                    });
                }
            }
        }
        drop(listener);
        let _ = tokio::time::timeout(Duration::from_secs(10), graceful.shutdown()).await;
    }

    /// Answers one client request.
    async fn handle(&self, req: Request<Incoming>, peer: &Peer) -> Response<Reply> {
        if header_list_size(req.headers()) > self.config.max_header_bytes {
            return page(431, "The request's header fields are too large.");
        }
        // With two, the proxy and an origin (or a cache on the way) could each believe a
        // different one.
        if req.headers().get_all(header::HOST).iter().nth(1).is_some() {
            return page(400, "The request has more than one Host header.");
        }
        // HTTP/2 clients name the host in `:authority` (the URI), HTTP/1.1 in `Host`.
        let host = req
            .uri()
            .authority()
            .map(|a| a.as_str().to_owned())
            .or_else(|| {
                req.headers()
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_owned)
            });
        let Some(host) = host else {
            return page(400, "The request names no host.");
        };
        if req.method() == http::Method::CONNECT {
            return page(405, "CONNECT is not proxied.");
        }
        if looped(req.headers()) {
            return page(508, "The request came back to this proxy (CDN-Loop).");
        }
        let route = {
            let table = self.routes.load();
            table.route(&normalize_host(&host)).cloned()
        };
        let Some(route) = route else {
            return page(404, "No proxied load balancer serves this host name.");
        };
        match route.proxy_gate() {
            Ok(()) => {}
            Err(Refused::NotProxied) => {
                return page(404, "No proxied load balancer serves this host name.");
            }
            Err(Refused::Disabled) => {
                let r = page(530, "The load balancer for this host name is disabled.");
                return tag(r, &route, None, false);
            }
        }
        let client_ip = peer.ip;
        let mut ctx = geo::context(
            &self.config.locality,
            self.config.geo.as_deref(),
            Some(client_ip),
        );
        ctx.random = rand::random();
        // Only a presented pin to a disabled origin reads it (draining), but it is cheap.
        ctx.now = vantage_core::Timestamp::from_unix_micros(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX)),
        );
        let ruled = if route.spec.rules.is_empty() {
            Ruled::none(&route.spec)
        } else {
            let facts = request_facts(&req, &host, &route, client_ip, &self.config.locality);
            route.spec.ruled(&facts)
        };
        self.count_rules(&route, &ruled.matched);
        let debug = (self.config.rules_debug
            && req
                .headers()
                .get("vantage-debug")
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"rules")))
        .then(|| matched_header(&route, &ruled.matched));
        if let Some(fixed) = ruled.fixed {
            let mut r = fixed_response(fixed);
            if let Some(h) = debug {
                r.headers_mut().insert(RULES_MATCHED, h);
            }
            return tag(r, &route, None, false);
        }
        let spec = ruled.spec;
        if uses_load(&spec, &route) {
            self.load.fill(&route, &mut ctx);
        }

        let affinity_mode = spec.session_affinity;
        let now = Instant::now();
        let session_key = match affinity_mode {
            SessionAffinity::Header => {
                affinity::header_key(req.headers(), &spec.session_affinity_attributes)
            }
            _ => None,
        };
        let pin_in = match affinity_mode {
            SessionAffinity::Cookie | SessionAffinity::IpCookie => {
                affinity::cookie_pin(req.headers())
            }
            SessionAffinity::Header => {
                session_key.and_then(|k| self.sessions.get(route.id, k, now))
            }
            SessionAffinity::None => None,
        };
        let session = route.session(spec, ctx, client_ip, pin_in, session_key.is_some());
        let Some(target) = session.target() else {
            let mut r = page(530, "No pool of this load balancer can take the request.");
            if let Some(h) = debug {
                r.headers_mut().insert(RULES_MATCHED, h);
            }
            return tag(r, &route, None, false);
        };

        let (parts, body) = req.into_parts();
        let mut headers = parts.headers;
        strip_hop_by_hop(&mut headers);
        forwarded(&mut headers, peer, &host);
        let client_host = headers.get(header::HOST).cloned();
        let body_failed = Arc::new(AtomicBool::new(false));
        let body = Watched {
            body,
            failed: Arc::clone(&body_failed),
        };
        let mut upstream_req = Request::new(body.boxed_unsync());
        *upstream_req.method_mut() = parts.method.clone();
        *upstream_req.uri_mut() = parts
            .uri
            .path_and_query()
            .and_then(|p| Uri::try_from(p.as_str()).ok())
            .unwrap_or_else(|| Uri::from_static("/"));
        *upstream_req.version_mut() = Version::HTTP_11;
        *upstream_req.headers_mut() = headers;
        let tracked = uses_load(session.spec(), &route);
        let (response, used) = match self
            .send(&route, target, upstream_req, &client_host, tracked)
            .await
        {
            Ok(r) => (r, target),
            Err(_) if body_failed.load(Ordering::Relaxed) => {
                return tag(client_body_error(), &route, Some(target.0), false);
            }
            Err((failure, back)) => {
                // Only a request that never left comes back; then any method may go elsewhere.
                let again = back.and_then(|req| Some((session.retry(target)?, req)));
                let Some((second, req)) = again else {
                    let r = page(failure.status, "The origin could not be reached.");
                    return tag(r, &route, Some(target.0), true);
                };
                tracing::debug!(status = failure.status, "retrying on another origin");
                match self.send(&route, second, req, &client_host, tracked).await {
                    Ok(r) => (r, second),
                    Err(_) if body_failed.load(Ordering::Relaxed) => {
                        return tag(client_body_error(), &route, Some(second.0), false);
                    }
                    Err((f, _)) => {
                        let r = page(f.status, "The origin could not be reached.");
                        return tag(r, &route, Some(second.0), true);
                    }
                }
            }
        };
        let stalled = Stalled {
            metrics: Arc::clone(&self.config.metrics),
            route: Arc::clone(&route),
            pool: used.0,
            code: response.status().as_u16(),
        };
        let idle = self.config.body_idle_timeout;
        let mut response = response.map(|body| Idle::new(body, idle, stalled).boxed_unsync());
        if let Some(h) = debug {
            response.headers_mut().insert(RULES_MATCHED, h);
        }
        let spec = session.spec();
        match session.keep(used) {
            Keep::SetCookie(pin) => {
                let cookie = affinity::set_cookie(
                    pin,
                    spec.session_affinity_ttl,
                    &spec.session_affinity_attributes,
                    peer.https,
                );
                if let Ok(v) = HeaderValue::from_str(&cookie) {
                    response.headers_mut().append(header::SET_COOKIE, v);
                }
            }
            Keep::Remember(pin) => {
                if let Some(k) = session_key {
                    let ttl = Duration::from_secs(u64::from(spec.session_affinity_ttl));
                    self.sessions.put(route.id, k, pin, now, ttl);
                }
            }
            Keep::Nothing => {}
        }
        tag(response, &route, Some(used.0), false)
    }

    /// Counts the rules a request matched, through this worker's handles on their series.
    fn count_rules(&self, route: &Route, matched: &[usize]) {
        if matched.is_empty() {
            return;
        }
        let rules = &route.spec.rules;
        let mut series = self.rule_series.lock().unwrap_or_else(|p| p.into_inner());
        for &i in matched {
            let Some(rule) = rules.get(i) else { continue };
            let current =
                |s: &RuleSeries| s.load_balancer == route.spec.name && s.rule == rule.name;
            let entry = series.entry((route.id, i));
            let slot = match entry {
                std::collections::hash_map::Entry::Occupied(o) if current(o.get()) => o.into_mut(),
                other => {
                    let counter = self
                        .config
                        .metrics
                        .rule_matches
                        .get_or_create(&RuleLabels {
                            load_balancer: route.spec.name.clone(),
                            rule: rule.label(i).into_owned(),
                            via: "proxy".to_owned(),
                        })
                        .clone();
                    let made = RuleSeries {
                        load_balancer: route.spec.name.clone(),
                        rule: rule.name.clone(),
                        counter,
                    };
                    match other {
                        std::collections::hash_map::Entry::Occupied(mut o) => {
                            o.insert(made);
                            o.into_mut()
                        }
                        std::collections::hash_map::Entry::Vacant(v) => v.insert(made),
                    }
                }
            };
            slot.counter.inc();
        }
    }

    /// Counts a response in the metrics, by load balancer, pool and status.
    fn observe(&self, response: &mut Response<Reply>, started: Instant) {
        let served = response.extensions_mut().remove::<Served>();
        let code = response.status().as_u16();
        let key = (
            served.as_ref().map(|s| s.route.id),
            served.as_ref().and_then(|s| s.pool),
            code,
        );
        let names = || {
            label_names(
                served.as_ref().map(|s| &*s.route),
                served.as_ref().and_then(|s| s.pool),
            )
        };
        let (counter, histogram) = {
            let mut series = self.series.lock().unwrap_or_else(|p| p.into_inner());
            series
                .entry(key)
                .or_insert_with(|| {
                    let (load_balancer, pool) = names();
                    let m = &self.config.metrics;
                    let counter = m
                        .proxy_requests
                        .get_or_create(&ProxyLabels {
                            load_balancer: load_balancer.clone(),
                            pool: pool.clone(),
                            code: code.to_string(),
                        })
                        .clone();
                    let histogram = m
                        .proxy_duration
                        .get_or_create(&RouteLabels {
                            load_balancer,
                            pool,
                        })
                        .clone();
                    (counter, histogram)
                })
                .clone()
        };
        counter.inc();
        histogram.observe(started.elapsed().as_secs_f64());
        if let Some(s) = served.as_ref().filter(|s| s.upstream_error) {
            count_upstream_error(&self.config.metrics, &s.route, s.pool, code);
        }
    }

    /// Sends one attempt to the origin `(pool, index)`, with its `Host` (the origin's own,
    /// else the client's), and returns the response, streaming. The request comes back with
    /// the failure when it never left.
    async fn send(
        &self,
        route: &Route,
        (pool, origin): (vantage_core::PoolId, usize),
        mut req: Request<Body>,
        client_host: &Option<HeaderValue>,
        tracked: bool,
    ) -> Result<Response<Body>, (Failure, Option<Request<Body>>)> {
        let Some(up) = route.upstream(pool, origin) else {
            return Err((Failure { status: 502 }, Some(req)));
        };
        let host = up
            .host
            .as_deref()
            .and_then(|h| HeaderValue::from_str(h).ok())
            .or_else(|| client_host.clone());
        if let Some(h) = host {
            req.headers_mut().insert(header::HOST, h);
        }
        // Counted until the response body is done (least-outstanding steering).
        let in_flight = tracked.then(|| self.load.start(pool, up.key));
        let sent = self.upstreams.send(&up.authority, req, in_flight);
        let response = match tokio::time::timeout(self.config.response_timeout, sent).await {
            Ok(r) => r?,
            Err(_) => {
                return Err((Failure { status: 524 }, None));
            }
        };
        let (mut parts, body) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        // The client's connection has its own version; an HTTP/1.0 origin must not set it.
        parts.version = Version::default();
        Ok(Response::from_parts(parts, body))
    }
}

/// The far end of a client connection, worked out once per connection.
#[derive(Debug, Clone)]
struct Peer {
    ip: IpAddr,
    /// `ip` as a header value, for `X-Forwarded-For`, `CF-Connecting-IP`, `True-Client-IP`
    /// and `X-Real-IP`.
    header: HeaderValue,
    /// This hop's `Forwarded` element.
    forwarded: HeaderValue,
    /// `CF-IPCountry`: the client's country in the geo file, else `XX` (as Cloudflare
    /// sends for no data). Never the data plane's own country: that is not the client's.
    country: HeaderValue,
    https: bool,
}

impl Peer {
    fn new(addr: SocketAddr, https: bool, table: Option<&GeoTable>) -> Peer {
        let ip = match addr.ip() {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        let header = HeaderValue::from_str(&ip.to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
        let proto = if https { "https" } else { "http" };
        // RFC 7239 §6: an IPv6 node is bracketed, and then quoted.
        let node = match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("\"[{v6}]\""),
        };
        let forwarded = HeaderValue::from_str(&format!("for={node};proto={proto}"))
            .unwrap_or_else(|_| HeaderValue::from_static("for=unknown"));
        let country = geo::context(&Locality::default(), table, Some(ip))
            .country
            .and_then(|c| HeaderValue::from_str(&c).ok())
            .unwrap_or_else(|| HeaderValue::from_static("XX"));
        Peer {
            ip,
            header,
            forwarded,
            country,
            https,
        }
    }
}

const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
const CDN_LOOP: HeaderName = HeaderName::from_static("cdn-loop");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const CF_CONNECTING_IP: HeaderName = HeaderName::from_static("cf-connecting-ip");
const TRUE_CLIENT_IP: HeaderName = HeaderName::from_static("true-client-ip");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
const CF_IPCOUNTRY: HeaderName = HeaderName::from_static("cf-ipcountry");

/// Adds what the origin needs to know about the client: `X-Forwarded-For` (appended),
/// `X-Forwarded-Proto`, `CF-Connecting-IP`, `True-Client-IP`, `X-Real-IP`, `Forwarded` and
/// `CF-IPCountry` (set by us, never trusted from the client), the `Host` the request was
/// routed by, and our `CDN-Loop` token.
fn forwarded(headers: &mut HeaderMap, peer: &Peer, host: &str) {
    let xff = match headers.get(&X_FORWARDED_FOR) {
        Some(before) => {
            let mut joined = Vec::with_capacity(before.len() + 2 + peer.header.len());
            joined.extend_from_slice(before.as_bytes());
            joined.extend_from_slice(b", ");
            joined.extend_from_slice(peer.header.as_bytes());
            HeaderValue::from_bytes(&joined).unwrap_or_else(|_| peer.header.clone())
        }
        None => peer.header.clone(),
    };
    headers.insert(X_FORWARDED_FOR, xff);
    headers.insert(
        X_FORWARDED_PROTO,
        HeaderValue::from_static(if peer.https { "https" } else { "http" }),
    );
    headers.insert(CF_CONNECTING_IP, peer.header.clone());
    headers.insert(TRUE_CLIENT_IP, peer.header.clone());
    headers.insert(X_REAL_IP, peer.header.clone());
    headers.insert(header::FORWARDED, peer.forwarded.clone());
    headers.insert(CF_IPCOUNTRY, peer.country.clone());
    // The name the request was routed by, whatever else the client put in `Host`: an origin
    // serving several names must see the one this load balancer stands for.
    if let Ok(v) = HeaderValue::from_str(host) {
        headers.insert(header::HOST, v);
    }
    headers.append(CDN_LOOP, HeaderValue::from_static(LOOP_TOKEN));
}

/// Vantage's token in `CDN-Loop` (RFC 8586): a request that already carries it came through
/// this proxy before, so an origin pointing back at the proxy cannot make it recurse.
const LOOP_TOKEN: &str = "vantage";

fn looped(headers: &HeaderMap) -> bool {
    headers
        .get_all(CDN_LOOP)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| {
            t.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case(LOOP_TOKEN))
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_dropped_and_client_headers_added() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("close, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-forwarded-for", HeaderValue::from_static("192.0.2.1"));
        h.insert("cf-connecting-ip", HeaderValue::from_static("6.6.6.6"));
        for spoofed in ["true-client-ip", "x-real-ip"] {
            h.insert(spoofed, HeaderValue::from_static("6.6.6.6"));
        }
        h.insert(
            "forwarded",
            HeaderValue::from_static("for=6.6.6.6;proto=https"),
        );
        h.append("forwarded", HeaderValue::from_static("for=7.7.7.7"));
        h.insert("cf-ipcountry", HeaderValue::from_static("US"));
        h.insert("accept", HeaderValue::from_static("*/*"));
        strip_hop_by_hop(&mut h);
        h.insert(header::HOST, HeaderValue::from_static("admin.internal"));
        let peer = Peer::new("[::ffff:198.51.100.7]:4242".parse().unwrap(), true, None);
        assert!(!looped(&h));
        forwarded(&mut h, &peer, "www.example.com");
        assert!(
            looped(&h),
            "the forwarded request carries our CDN-Loop token"
        );
        assert!(h.get("x-secret").is_none() && h.get("keep-alive").is_none());
        assert!(h.get(header::CONNECTION).is_none());
        assert_eq!(h["x-forwarded-for"], "192.0.2.1, 198.51.100.7");
        assert_eq!(h["cf-connecting-ip"], "198.51.100.7");
        assert_eq!(h["true-client-ip"], "198.51.100.7");
        assert_eq!(h["x-real-ip"], "198.51.100.7");
        assert_eq!(h.get_all("forwarded").iter().count(), 1);
        assert_eq!(h["forwarded"], "for=198.51.100.7;proto=https");
        assert_eq!(h["cf-ipcountry"], "XX", "no geo file: no country");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h[header::HOST], "www.example.com");
        assert_eq!(h["accept"], "*/*");
    }

    #[test]
    fn the_client_country_comes_from_the_geo_file_and_ipv6_is_quoted() {
        let table = GeoTable::parse("2001:db8::/32 JP\n").unwrap();
        let peer = Peer::new("[2001:db8::7]:4242".parse().unwrap(), false, Some(&table));
        let mut h = HeaderMap::new();
        h.insert("cf-ipcountry", HeaderValue::from_static("US"));
        forwarded(&mut h, &peer, "www.example.com");
        assert_eq!(h["cf-ipcountry"], "JP");
        assert_eq!(h["forwarded"], "for=\"[2001:db8::7]\";proto=http");
        assert_eq!(h["x-real-ip"], "2001:db8::7");
        let elsewhere = Peer::new("[2001:db9::7]:4242".parse().unwrap(), false, Some(&table));
        assert_eq!(elsewhere.country, "XX");
    }

    #[test]
    fn header_lists_are_measured_as_http2_does() {
        let mut h = HeaderMap::new();
        h.insert("ab", HeaderValue::from_static("xyz"));
        h.append("ab", HeaderValue::from_static("q"));
        assert_eq!(header_list_size(&h), (2 + 3 + 32) + (2 + 1 + 32));
    }
}
