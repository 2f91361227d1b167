//! Pooled HTTP/1.1 connections to origins. A connection is checked out for one request and
//! comes back to its origin's idle list when the response body has been read to the end, so a
//! streaming response never blocks the next request; idle connections are reused newest
//! first and forgotten after the idle timeout. Connecting happens before a request is built
//! into a connection, so a request whose origin cannot be reached is handed back intact for
//! the retry.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::load::InFlight;

/// A request body on its way to an origin (and an origin's response, as it arrives).
pub type Body = http_body_util::combinators::UnsyncBoxBody<bytes::Bytes, hyper::Error>;

/// Idle connections kept per origin; beyond it, returned connections are closed.
const MAX_IDLE_PER_ORIGIN: usize = 512;

/// Why a request did not reach an origin, as the Cloudflare status a client sees. Whether it
/// was sent shows in what comes back with it: the request itself when it never left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    pub status: u16,
}

impl Failure {
    fn connect(e: &std::io::Error) -> Failure {
        let status = match e.kind() {
            std::io::ErrorKind::ConnectionRefused => 521,
            std::io::ErrorKind::TimedOut => 522,
            _ => 523,
        };
        Failure { status }
    }
}

/// Oldest first: reuse takes from the back, expiry drops from the front.
type Idle = std::collections::VecDeque<(SendRequest<Body>, Instant)>;

#[derive(Debug)]
pub struct Upstreams {
    idle: Mutex<HashMap<Arc<str>, Idle>>,
    connect_timeout: Duration,
    idle_timeout: Duration,
}

impl Upstreams {
    pub fn new(connect_timeout: Duration, idle_timeout: Duration) -> Upstreams {
        Upstreams {
            idle: Mutex::new(HashMap::new()),
            connect_timeout,
            idle_timeout,
        }
    }

    fn take_idle(&self, authority: &str) -> Option<SendRequest<Body>> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = idle.get_mut(authority)?;
        while let Some((sender, since)) = list.pop_back() {
            if since.elapsed() < self.idle_timeout && !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }

    fn give_back(&self, authority: &Arc<str>, sender: SendRequest<Body>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = match idle.get_mut(authority) {
            Some(list) => list,
            None => idle.entry(Arc::clone(authority)).or_default(),
        };
        // Connections idle too long are closed here, oldest first.
        while list
            .front()
            .is_some_and(|(_, since)| since.elapsed() >= self.idle_timeout)
        {
            list.pop_front();
        }
        if list.len() < MAX_IDLE_PER_ORIGIN {
            list.push_back((sender, Instant::now()));
        }
    }

    async fn connect(&self, authority: &str) -> Result<SendRequest<Body>, Failure> {
        let stream = tokio::time::timeout(self.connect_timeout, TcpStream::connect(authority))
            .await
            .map_err(|_| Failure { status: 522 })?
            .map_err(|e| Failure::connect(&e))?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| Failure { status: 502 })?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "origin connection ended");
            }
        });
        Ok(sender)
    }

    /// A ready connection to `authority`: an idle one that is ready right now (one still
    /// busy — its origin answered before the request body was sent — is let go, never waited
    /// for), else a new one.
    async fn checkout(&self, authority: &str) -> Result<(SendRequest<Body>, bool), Failure> {
        while let Some(mut sender) = self.take_idle(authority) {
            let ready =
                std::future::poll_fn(|cx| Poll::Ready(sender.poll_ready(cx).is_ready())).await;
            if ready && sender.is_ready() {
                return Ok((sender, true));
            }
        }
        self.connect(authority).await.map(|s| (s, false))
    }

    /// Sends `req` (origin-form URI, `Host` set) to `authority`. When no connection can be
    /// made, the request comes back with the failure, unsent. A pooled connection that the
    /// origin closed before the request was written is replaced once, transparently; so is
    /// one that failed after it was written but before any answer, when the request is safe
    /// to send again (an idempotent method, no body), as nginx and HAProxy do: an origin
    /// closing an idle connection just as it is reused is a race, not a failure.
    pub async fn send(
        self: &Arc<Self>,
        authority: &Arc<str>,
        req: Request<Body>,
        in_flight: Option<InFlight>,
    ) -> Result<Response<Body>, (Failure, Option<Request<Body>>)> {
        let (mut sender, mut pooled) = match self.checkout(authority).await {
            Ok(s) => s,
            Err(f) => return Err((f, Some(req))),
        };
        let mut replay = pooled.then(|| Replay::of(&req)).flatten();
        let mut req = req;
        let response = loop {
            match sender.try_send_request(req).await {
                Ok(r) => break r,
                Err(mut e) => {
                    // A request never written may go anywhere: once more here, or to another
                    // origin. One written may only be replayed here, on a new connection.
                    let (back, written) = match e.take_message() {
                        Some(back) => (Some(back), false),
                        None if pooled && closed_before_answer(e.error()) => {
                            (replay.take().map(Replay::again), true)
                        }
                        None => (None, true),
                    };
                    match back {
                        Some(back) if pooled => {
                            req = back;
                            pooled = false;
                            sender = match self.connect(authority).await {
                                Ok(s) => s,
                                Err(f) => return Err((f, (!written).then_some(req))),
                            };
                        }
                        // Only a request never written comes back here: a replay needs a
                        // pooled connection.
                        back => {
                            tracing::debug!(origin = &**authority, error = %e.into_error(), "upstream request failed");
                            return Err((Failure { status: 502 }, back));
                        }
                    }
                }
            }
        };
        let (parts, body) = response.into_parts();
        let body = Recycle {
            body,
            home: Some((Arc::clone(self), Arc::clone(authority), sender)),
            _in_flight: in_flight,
        };
        Ok(Response::from_parts(parts, Body::new(body)))
    }
}

/// Whether a written request's connection ended before any answer began: the origin closed
/// or reset it. Anything else (a malformed answer, a timeout) is the origin's answer.
fn closed_before_answer(e: &hyper::Error) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
    let io = std::error::Error::source(e).and_then(|s| s.downcast_ref::<std::io::Error>());
    e.is_incomplete_message()
        || io
            .is_some_and(|io| matches!(io.kind(), ConnectionReset | BrokenPipe | ConnectionAborted))
}

/// What it takes to send a request again after its connection failed before any answer:
/// only a request without a body whose method is idempotent (RFC 9110 §9.2.2) can be.
struct Replay {
    method: http::Method,
    uri: http::Uri,
    version: http::Version,
    headers: http::HeaderMap,
}

impl Replay {
    fn of(req: &Request<Body>) -> Option<Replay> {
        use http::Method;
        let idempotent = matches!(
            *req.method(),
            Method::GET
                | Method::HEAD
                | Method::OPTIONS
                | Method::TRACE
                | Method::PUT
                | Method::DELETE
        );
        (idempotent && req.body().is_end_stream()).then(|| Replay {
            method: req.method().clone(),
            uri: req.uri().clone(),
            version: req.version(),
            headers: req.headers().clone(),
        })
    }

    fn again(self) -> Request<Body> {
        use http_body_util::BodyExt;
        let empty = http_body_util::Empty::new().map_err(|never| match never {});
        let mut req = Request::new(empty.boxed_unsync());
        *req.method_mut() = self.method;
        *req.uri_mut() = self.uri;
        *req.version_mut() = self.version;
        *req.headers_mut() = self.headers;
        req
    }
}

/// A response body that returns its connection to the pool once read to the end (and closes
/// it when dropped early: the rest of the body would still be on the wire).
struct Recycle {
    body: Incoming,
    home: Option<(Arc<Upstreams>, Arc<str>, SendRequest<Body>)>,
    _in_flight: Option<InFlight>,
}

impl Recycle {
    fn finish(&mut self) {
        if let Some((pool, authority, sender)) = self.home.take() {
            pool.give_back(&authority, sender);
        }
    }
}

impl HttpBody for Recycle {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.finish(),
            Poll::Ready(Some(Ok(_))) if self.body.is_end_stream() => self.finish(),
            Poll::Ready(Some(Err(_))) => self.home = None,
            _ => {}
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

impl Drop for Recycle {
    fn drop(&mut self) {
        if self.body.is_end_stream() {
            self.finish();
        }
    }
}
