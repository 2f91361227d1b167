//! Resolving, connecting and naming network failures.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use tokio::net::{TcpSocket, TcpStream};
use vantage_core::health::{FailureReason, Outcome};

use crate::{Progress, Target};

/// Resolves `host` (an IP literal or a name) to one address, preferring the family of the
/// source address when one is set.
pub(crate) async fn resolve(
    host: &str,
    port: u16,
    source: Option<IpAddr>,
) -> Result<SocketAddr, FailureReason> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((bare, port))
        .await
        .map_err(|_| FailureReason::DnsUnknownHost)?
        .collect();
    let preferred = addrs
        .iter()
        .find(|a| source.is_none_or(|s| s.is_ipv4() == a.is_ipv4()));
    preferred
        .or(addrs.first())
        .copied()
        .ok_or(FailureReason::DnsUnknownHost)
}

/// Errors of this machine, not of the path to the origin: out of descriptors (EMFILE,
/// ENFILE), buffers or memory (ENOBUFS, ENOMEM), or local ports (EADDRNOTAVAIL); Linux numbers.
fn is_local(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(24 | 23 | 105 | 12 | 99))
}

/// The failure reason for an I/O error while connecting.
pub(crate) fn connect_failure(e: &io::Error) -> FailureReason {
    if is_local(e) {
        return FailureReason::LocalResources;
    }
    match e.kind() {
        io::ErrorKind::TimedOut => FailureReason::TcpTimeout,
        io::ErrorKind::HostUnreachable => FailureReason::NoRoute,
        io::ErrorKind::NetworkUnreachable => FailureReason::NetworkUnreachable,
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => {
            FailureReason::ConnectionReset
        }
        _ => FailureReason::TcpConnectionFailed,
    }
}

/// The failure reason for an I/O error once connected.
pub(crate) fn io_failure(e: &io::Error) -> FailureReason {
    match e.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => FailureReason::ConnectionReset,
        io::ErrorKind::TimedOut => FailureReason::HttpTimeout,
        io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData => {
            FailureReason::HttpInvalidResponse
        }
        _ => FailureReason::Other,
    }
}

/// This process's own listeners (the API, metrics, the proxy, DNS): never probed, so no
/// tenant's monitor or preview can make the controller knock on its own doors and read the
/// answer back as an oracle.
static OWN_LISTENERS: std::sync::OnceLock<Vec<SocketAddr>> = std::sync::OnceLock::new();

/// Declares this process's listening addresses (once, at start).
pub fn exclude_own_listeners(addrs: Vec<SocketAddr>) {
    let _ = OWN_LISTENERS.set(addrs);
}

/// Whether `addr` reaches one of this process's listeners: the same port on the same
/// address, or on any loopback address when the listener is bound to all of them.
fn is_own_listener(addr: SocketAddr) -> bool {
    OWN_LISTENERS.get().is_some_and(|own| {
        own.iter().any(|l| {
            l.port() == addr.port()
                && (l.ip() == addr.ip()
                    || (l.ip().is_unspecified()
                        && (addr.ip().is_loopback() || addr.ip().is_unspecified())))
        })
    })
}

pub(crate) async fn connect(
    addr: SocketAddr,
    source: Option<IpAddr>,
    progress: &Progress,
) -> Result<TcpStream, FailureReason> {
    if is_own_listener(addr) {
        return Err(FailureReason::TcpConnectionFailed);
    }
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| connect_failure(&e))?;
    // Closed with a reset (see [`Reset`]): a timed-out or dropped check ends the same way.
    socket2::SockRef::from(&socket)
        .set_linger(Some(Duration::ZERO))
        .map_err(|e| connect_failure(&e))?;
    if let Some(ip) = source.filter(|ip| ip.is_ipv4() == addr.is_ipv4()) {
        socket
            .bind(SocketAddr::new(ip, 0))
            .map_err(|e| connect_failure(&e))?;
    }
    let stream = socket
        .connect(addr)
        .await
        .map_err(|e| connect_failure(&e))?;
    progress.connected();
    Ok(stream)
}

/// A check's TCP connection under HTTP or TLS: it ends with a reset when dropped, never
/// with an orderly shutdown first. A check has its answer by then, and at thousands of
/// checks a second an orderly close leaves a TIME_WAIT socket per check on whichever side
/// closed first (a minute each on Linux, the prober's side for a TCP check) and costs a FIN
/// round trip more; HAProxy's checks end their connections the same way. Nothing is lost:
/// the request was read before the answer came.
pub(crate) struct Reset(pub(crate) TcpStream);

impl AsyncRead for Reset {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Reset {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The close is the drop's reset (SO_LINGER 0, set at connect).
        Poll::Ready(Ok(()))
    }
}

pub(crate) async fn tcp_check(
    source: Option<IpAddr>,
    target: &Target<'_>,
    progress: &Progress,
) -> Result<Outcome, FailureReason> {
    let addr = resolve(target.address, target.port(), source).await?;
    connect(addr, source, progress).await?;
    Ok(Outcome::Reached)
}
