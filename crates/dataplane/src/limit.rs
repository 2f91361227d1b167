//! What one client can hold: a listener accepts at most so many connections at once (one
//! over is closed at once and counted), and a connection on which nothing moves for a while
//! is closed. Together they bound the descriptors any flood of idle or slow connections can
//! take, so the API, the other listeners and the probes always have theirs.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// A cap on a listener's open connections, shared by every worker of that listener.
#[derive(Debug, Clone)]
pub struct ConnectionLimit {
    permits: Arc<Semaphore>,
    max: usize,
    refused: Arc<AtomicU64>,
}

impl ConnectionLimit {
    pub fn new(max: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max)),
            max,
            refused: Arc::default(),
        }
    }

    /// A place for one more connection, or `None` at the cap (the caller closes it).
    pub fn admit(&self) -> Option<OwnedSemaphorePermit> {
        let permit = Arc::clone(&self.permits).try_acquire_owned().ok();
        if permit.is_none() {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        permit
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Connections closed at once because the listener was full.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

/// A stream that fails with `TimedOut` once neither a byte was read nor one written for
/// `idle`, and holds its listener's place until dropped.
#[derive(Debug)]
pub struct Guarded<S> {
    inner: S,
    idle: Duration,
    /// Fires at the latest at `last_progress + idle`; re-armed lazily when it fires early.
    deadline: Pin<Box<Sleep>>,
    last_progress: Instant,
    _place: Option<OwnedSemaphorePermit>,
}

impl<S> Guarded<S> {
    pub fn new(inner: S, idle: Duration, place: Option<OwnedSemaphorePermit>) -> Self {
        Self {
            inner,
            idle,
            deadline: Box::pin(tokio::time::sleep(idle)),
            last_progress: Instant::now(),
            _place: place,
        }
    }

    /// Notes progress. Re-arming the timer on every read and write would cost a timer-wheel
    /// update per packet on the proxy's hot path; noting the time is enough, and the timer
    /// is moved only when it fires.
    fn progressed(&mut self) {
        self.last_progress = Instant::now();
    }

    /// `Pending` from the inner stream becomes `TimedOut` once nothing moved for `idle`.
    fn stalled<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        loop {
            match self.deadline.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(()) => {
                    let due = self.last_progress + self.idle;
                    if Instant::now() >= due {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "no progress on the connection",
                        )));
                    }
                    self.deadline.as_mut().reset(due);
                }
            }
        }
    }
}

use std::future::Future as _;

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    self.progressed();
                }
                Poll::Ready(r)
            }
            Poll::Pending => self.stalled(cx),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Ready(r) => {
                if matches!(r, Ok(n) if n > 0) {
                    self.progressed();
                }
                Poll::Ready(r)
            }
            Poll::Pending => self.stalled(cx),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(r) => {
                if matches!(r, Ok(n) if n > 0) {
                    self.progressed();
                }
                Poll::Ready(r)
            }
            Poll::Pending => self.stalled(cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Ready(r) => Poll::Ready(r),
            Poll::Pending => self.stalled(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// How the descriptors this process may open are shared: a quarter (at least 1,024) stays
/// for probes, the store and outgoing connections; the rest is split evenly among the
/// listeners that accept connections.
pub fn per_listener(descriptors: u64, listeners: usize) -> usize {
    let reserve = (descriptors / 4).max(1024);
    let shared = descriptors.saturating_sub(reserve);
    let each = shared / u64::try_from(listeners.max(1)).unwrap_or(1);
    usize::try_from(each.max(16)).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn a_full_listener_refuses_and_counts() {
        let limit = ConnectionLimit::new(2);
        let a = limit.admit();
        let b = limit.admit();
        assert!(a.is_some() && b.is_some());
        assert!(limit.admit().is_none());
        assert_eq!(limit.refused(), 1);
        drop(a);
        assert!(
            limit.admit().is_some(),
            "a closed connection frees its place"
        );
    }

    #[test]
    fn descriptors_keep_a_reserve() {
        assert_eq!(per_listener(20_000, 3), 5_000);
        assert_eq!(per_listener(1_024, 2), 16, "never zero");
        assert_eq!(per_listener(1_048_576, 1), 786_432);
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_stream_times_out_and_a_busy_one_does_not() {
        let (client, server) = tokio::io::duplex(64);
        let mut guarded = Guarded::new(server, Duration::from_secs(10), None);
        let mut client = client;
        let mut buf = [0u8; 8];
        // Bytes every 6 s keep it alive past 10 s.
        for _ in 0..3 {
            tokio::time::advance(Duration::from_secs(6)).await;
            client.write_all(b"x").await.unwrap();
            assert_eq!(guarded.read(&mut buf).await.unwrap(), 1);
        }
        let err = guarded.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
}
