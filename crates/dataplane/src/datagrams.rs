//! Datagrams in batches. On Linux one `recvmmsg` takes every datagram already queued on the
//! socket (up to [`BATCH`]) and one `sendmmsg` sends their answers, as NSD does: under load a
//! reader wakes once per burst, not once per query, and wakes its client once per batch of
//! answers (profiled: the wake-ups and the context switches they cause were the largest
//! cost). Elsewhere, one system call per datagram.

use std::io;
use std::net::{SocketAddr, UdpSocket};

/// Datagrams taken in one system call at most.
pub const BATCH: usize = 32;
/// The largest datagram read whole; a longer one is cut to this (no query is near it).
const SIZE: usize = 4096;

/// Receive buffers for one reader thread.
#[derive(Debug)]
pub struct Receiver {
    buffers: Vec<[u8; SIZE]>,
    /// Length and sender of each datagram of the last batch, in order.
    got: Vec<(usize, SocketAddr)>,
    #[cfg(target_os = "linux")]
    headers: nix::sys::socket::MultiHeaders<nix::sys::socket::SockaddrStorage>,
}

impl Default for Receiver {
    fn default() -> Self {
        Receiver {
            buffers: vec![[0; SIZE]; BATCH],
            got: Vec::with_capacity(BATCH),
            #[cfg(target_os = "linux")]
            headers: nix::sys::socket::MultiHeaders::preallocate(BATCH, None),
        }
    }
}

impl Receiver {
    /// Waits for a datagram on `socket` (blocking, up to its read timeout), takes it and
    /// every other one already queued, and returns them with their senders. Empty datagrams
    /// and those without an IP sender are left out: nothing can be answered to them.
    pub fn receive<'a>(
        &'a mut self,
        socket: &UdpSocket,
    ) -> io::Result<impl Iterator<Item = (&'a [u8], SocketAddr)> + 'a> {
        self.got.clear();
        self.fill(socket)?;
        Ok(self
            .got
            .iter()
            .zip(&self.buffers)
            .filter(|((len, _), _)| *len > 0)
            .map(|(&(len, from), buffer)| (&buffer[..len.min(SIZE)], from)))
    }

    #[cfg(target_os = "linux")]
    fn fill(&mut self, socket: &UdpSocket) -> io::Result<()> {
        use nix::sys::socket::{recvmmsg, MsgFlags};
        use std::io::IoSliceMut;
        use std::os::fd::AsRawFd;

        let mut slices: Vec<[IoSliceMut<'_>; 1]> = self
            .buffers
            .iter_mut()
            .map(|b| [IoSliceMut::new(&mut b[..])])
            .collect();
        // MSG_WAITFORONE: block for the first datagram only, then take what is queued.
        let received = recvmmsg(
            socket.as_raw_fd(),
            &mut self.headers,
            slices.iter_mut(),
            MsgFlags::MSG_WAITFORONE,
            None,
        )
        .map_err(io::Error::from)?;
        for message in received {
            let from = message.address.and_then(|a| {
                if let Some(v4) = a.as_sockaddr_in() {
                    Some(SocketAddr::V4((*v4).into()))
                } else {
                    a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
                }
            });
            // A datagram with no IP sender keeps its slot, empty (left out by `receive`), so
            // the others stay matched to their buffers.
            self.got.push(match from {
                Some(from) => (message.bytes, from),
                None => (0, SocketAddr::from(([0, 0, 0, 0], 0))),
            });
        }
        Ok(())
    }

    #[cfg(not(target_os = "linux"))]
    fn fill(&mut self, socket: &UdpSocket) -> io::Result<()> {
        let (len, from) = socket.recv_from(&mut self.buffers[0])?;
        self.got.push((len, from));
        Ok(())
    }
}

/// Send buffers for one thread's answers.
#[derive(Debug)]
pub struct Sender {
    #[cfg(target_os = "linux")]
    headers: nix::sys::socket::MultiHeaders<nix::sys::socket::SockaddrStorage>,
}

impl Default for Sender {
    fn default() -> Self {
        Sender {
            #[cfg(target_os = "linux")]
            headers: nix::sys::socket::MultiHeaders::preallocate(BATCH, None),
        }
    }
}

impl Sender {
    /// Sends each datagram to its address. One that cannot be sent (a forged sender's port
    /// 0, a broadcast address) is skipped; the others still go.
    #[cfg(target_os = "linux")]
    pub fn send(&mut self, socket: &UdpSocket, datagrams: &[(Vec<u8>, SocketAddr)]) {
        use nix::sys::socket::{sendmmsg, ControlMessage, MsgFlags, SockaddrStorage};
        use std::io::IoSlice;
        use std::os::fd::AsRawFd;

        let mut rest = datagrams;
        while !rest.is_empty() {
            let batch = &rest[..rest.len().min(BATCH)];
            let slices: Vec<[IoSlice<'_>; 1]> =
                batch.iter().map(|(d, _)| [IoSlice::new(d)]).collect();
            let addresses: Vec<Option<SockaddrStorage>> = batch
                .iter()
                .map(|(_, to)| Some(SockaddrStorage::from(*to)))
                .collect();
            let sent = sendmmsg(
                socket.as_raw_fd(),
                &mut self.headers,
                &slices,
                &addresses,
                [] as [ControlMessage<'_>; 0],
                MsgFlags::empty(),
            )
            // Counting the results is the only way nix tells how many went.
            .map_or(0, |r| r.count());
            // The kernel stops at the first datagram it refuses: skip that one.
            let skip = if sent < batch.len() { 1 } else { 0 };
            rest = &rest[sent + skip..];
        }
    }

    #[cfg(not(target_os = "linux"))]
    pub fn send(&mut self, socket: &UdpSocket, datagrams: &[(Vec<u8>, SocketAddr)]) {
        for (datagram, to) in datagrams {
            let _ = socket.send_to(datagram, to);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket whose reads fail after a while instead of hanging the test.
    fn receiver() -> UdpSocket {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        socket
    }

    #[test]
    fn one_call_takes_every_queued_datagram_with_its_sender() {
        let server = receiver();
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = server.local_addr().unwrap();
        a.send_to(b"first", to).unwrap();
        b.send_to(b"second, longer", to).unwrap();
        b.send_to(b"", to).unwrap(); // nothing to answer: left out
        a.send_to(b"third", to).unwrap();
        let mut receiver = Receiver::default();
        let mut seen = Vec::new();
        // Loopback delivers synchronously, so all three are queued before the first call;
        // other platforms take one per call.
        while seen.len() < 3 {
            for (packet, from) in receiver.receive(&server).unwrap() {
                seen.push((packet.to_vec(), from));
            }
            if cfg!(target_os = "linux") {
                assert_eq!(seen.len(), 3, "one call takes all that is queued");
            }
        }
        let (a, b) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        assert_eq!(
            seen,
            vec![
                (b"first".to_vec(), a),
                (b"second, longer".to_vec(), b),
                (b"third".to_vec(), a)
            ]
        );
    }

    #[test]
    fn a_datagram_the_kernel_refuses_does_not_stop_the_others() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (a, b) = (receiver(), receiver());
        let (to_a, to_b) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        // Port 0 is what a forged query may carry; the kernel refuses to send there.
        let refused = SocketAddr::from(([127, 0, 0, 1], 0));
        let mut datagrams = vec![(b"to a".to_vec(), to_a), (b"refused".to_vec(), refused)];
        datagrams.extend((0..BATCH).map(|i| (format!("to b {i}").into_bytes(), to_b)));
        Sender::default().send(&server, &datagrams);
        let mut buf = [0u8; 64];
        let (n, _) = a.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"to a");
        for i in 0..BATCH {
            let (n, _) = b.recv_from(&mut buf).unwrap();
            assert_eq!(
                &buf[..n],
                format!("to b {i}").as_bytes(),
                "past the batch size too"
            );
        }
    }
}
