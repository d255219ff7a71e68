//! The tokio edge of SIP: UDP and TCP sockets (RFC 3261 §18). It moves
//! bytes and nothing else: each received datagram or stream frame goes to a
//! [`Sink`] with the [`Peer`] it came from, and [`Transport::send`] writes
//! bytes back out. Parsing and every decision live above it.
//!
//! TCP frames are cut by Content-Length ([`super::message::frame_length`]);
//! a connection whose framing breaks is closed, since nothing after a bad
//! length can be trusted (RFC 4475 `ncl`). Sends never wait: a full UDP
//! buffer or a slow TCP peer loses that message (the transaction layer
//! retransmits), never stalls the routing loop.

use super::message::{MAX_MESSAGE_SIZE, frame_length};
use bytes::{Bytes, BytesMut};
use dashmap::DashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio_util_shim::CancelOnDrop;

/// Where a message came from or goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Peer {
    pub addr: SocketAddr,
    /// `None` for UDP; the connection's id for TCP.
    pub conn: Option<u64>,
}

impl Peer {
    pub fn udp(addr: SocketAddr) -> Self {
        Peer { addr, conn: None }
    }

    pub fn is_reliable(&self) -> bool {
        self.conn.is_some()
    }

    pub fn transport_name(&self) -> &'static str {
        if self.conn.is_some() { "TCP" } else { "UDP" }
    }
}

/// What receives messages from the sockets.
pub trait Sink: Send + Sync + 'static {
    fn received(&self, bytes: Bytes, peer: Peer);
    /// A TCP connection was closed because its framing broke.
    fn framing_lost(&self, peer: Peer, reason: &'static str);
    /// A TCP connection closed (for any reason): nothing sent to `peer`
    /// can arrive any more.
    fn connection_closed(&self, _peer: Peer) {}
    /// An ICMP error came back for a datagram we sent to `addr` (port or
    /// host unreachable): nothing listens there (§18.4).
    fn unreachable(&self, _addr: SocketAddr) {}
}

/// The gateway's sockets. Cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct Transport {
    inner: Arc<Inner>,
}

struct Inner {
    udp: Option<Arc<UdpSocket>>,
    /// Told of ICMP errors found while sending.
    sink: std::sync::OnceLock<Arc<dyn Sink>>,
    tcp_local: Option<SocketAddr>,
    connections: DashMap<u64, mpsc::Sender<Bytes>>,
    next_conn: AtomicU64,
}

/// Per-connection outgoing queue: beyond this a slow peer loses messages.
const TCP_QUEUE: usize = 256;

/// Open TCP connections at most; more are closed at once, so idle sockets
/// cannot exhaust file descriptors.
const MAX_TCP_CONNECTIONS: usize = 4096;

/// A connection must send its first message this soon...
const FIRST_MESSAGE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// ...and then something (a message or a CRLF keep-alive) at least this
/// often. An hour covers the longest registration refresh we grant.
const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3600);

impl Transport {
    /// Binds the sockets; [`Transport::run`] starts receiving.
    pub async fn bind(
        udp: Option<SocketAddr>,
        tcp: Option<SocketAddr>,
    ) -> std::io::Result<(Transport, Option<TcpListener>)> {
        let udp = match udp {
            Some(a) => {
                let socket = UdpSocket::bind(a).await?;
                if let Err(e) = icmp::enable(&socket) {
                    tracing::warn!(error = %e, "ICMP errors will not be seen: unreachable peers are found only by time-outs");
                }
                Some(Arc::new(socket))
            }
            None => None,
        };
        let listener = match tcp {
            Some(a) => Some(TcpListener::bind(a).await?),
            None => None,
        };
        let tcp_local = match &listener {
            Some(l) => Some(l.local_addr()?),
            None => None,
        };
        Ok((
            Transport {
                inner: Arc::new(Inner {
                    udp,
                    sink: std::sync::OnceLock::new(),
                    tcp_local,
                    connections: DashMap::new(),
                    next_conn: AtomicU64::new(1),
                }),
            },
            listener,
        ))
    }

    pub fn udp_local(&self) -> Option<SocketAddr> {
        self.inner.udp.as_ref().and_then(|s| s.local_addr().ok())
    }

    pub fn tcp_local(&self) -> Option<SocketAddr> {
        self.inner.tcp_local
    }

    /// Starts the receive tasks: `udp_workers` tasks reading the UDP socket
    /// side by side, and the TCP accept loop.
    pub fn run(&self, listener: Option<TcpListener>, sink: Arc<dyn Sink>, udp_workers: usize) {
        let _ = self.inner.sink.set(sink.clone());
        if let Some(socket) = &self.inner.udp {
            for _ in 0..udp_workers.max(1) {
                let socket = socket.clone();
                let sink = sink.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; MAX_MESSAGE_SIZE + 1];
                    loop {
                        match socket.recv_from(&mut buf).await {
                            Ok((n, from)) => {
                                deliver(&*sink, Bytes::copy_from_slice(&buf[..n]), Peer::udp(from))
                            }
                            // A pending ICMP error surfaces here; the queue
                            // says for which destination.
                            Err(e) => {
                                tracing::debug!(error = %e, "udp receive error");
                                for addr in icmp::drain(&socket).unreachable {
                                    sink.unreachable(addr);
                                }
                            }
                        }
                    }
                });
            }
        }
        if let Some(listener) = listener {
            let this = self.clone();
            tokio::spawn(async move {
                loop {
                    match listener.accept().await {
                        Ok((stream, from)) => {
                            if this.inner.connections.len() >= MAX_TCP_CONNECTIONS {
                                tracing::warn!(from = %from, "too many TCP connections; closing the new one");
                                drop(stream);
                                continue;
                            }
                            this.adopt(stream, from, sink.clone());
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "tcp accept failed");
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        }
                    }
                }
            });
        }
    }

    fn adopt(&self, stream: TcpStream, from: SocketAddr, sink: Arc<dyn Sink>) -> Peer {
        let id = self.inner.next_conn.fetch_add(1, Ordering::Relaxed);
        let peer = Peer {
            addr: from,
            conn: Some(id),
        };
        let (tx, mut rx) = mpsc::channel::<Bytes>(TCP_QUEUE);
        self.inner.connections.insert(id, tx);
        let (mut reader, mut writer) = stream.into_split();
        let writer_task = tokio::spawn(async move {
            while let Some(bytes) = rx.recv().await {
                if writer.write_all(&bytes).await.is_err() {
                    break;
                }
            }
        });
        let guard = CancelOnDrop(writer_task);
        let inner = self.inner.clone();
        tokio::spawn(async move {
            let _guard = guard;
            let mut buf = BytesMut::with_capacity(8192);
            let mut timeout = FIRST_MESSAGE_TIMEOUT;
            'read: loop {
                match tokio::time::timeout(timeout, reader.read_buf(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => break,
                    Ok(Ok(_)) => timeout = IDLE_TIMEOUT,
                    Err(_) => {
                        tracing::debug!(peer = %from, "closing idle TCP connection");
                        break;
                    }
                }
                loop {
                    match frame_length(&buf) {
                        Ok(Some(n)) => {
                            let frame = buf.split_to(n).freeze();
                            if !frame.iter().all(|b| matches!(b, b'\r' | b'\n')) {
                                deliver(&*sink, frame, peer);
                            }
                        }
                        Ok(None) => break,
                        Err(reason) => {
                            sink.framing_lost(peer, reason);
                            break 'read;
                        }
                    }
                }
            }
            inner.connections.remove(&id);
            sink.connection_closed(peer);
        });
        peer
    }

    /// Sends without waiting. UDP goes to `peer.addr`; TCP to the
    /// connection, or is lost if it has closed.
    /// Returns false on a transport error (§18.4): the connection is gone,
    /// or the system refused the datagram for a reason other than a full
    /// buffer (which the transaction's retransmissions cover).
    pub fn send(&self, peer: Peer, bytes: Bytes) -> bool {
        match peer.conn {
            None => {
                let Some(socket) = &self.inner.udp else {
                    return false;
                };
                match socket.try_send_to(&bytes, peer.addr) {
                    Ok(_) => true,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        tracing::debug!(to = %peer.addr, "udp send buffer full; message lost");
                        true
                    }
                    Err(e) => {
                        // Possibly an earlier datagram's ICMP error (any kind:
                        // unreachable, too big, ...), reported on this send
                        // whatever its destination: take the queued errors,
                        // tell whom the unreachable ones were for, and send
                        // this one again. Only its own failure counts.
                        let drained = icmp::drain(socket);
                        if let Some(sink) = self.inner.sink.get() {
                            for addr in &drained.unreachable {
                                sink.unreachable(*addr);
                            }
                        }
                        if drained.count == 0 && !icmp::is_pending_error(&e) {
                            tracing::debug!(to = %peer.addr, error = %e, "udp send failed");
                            return false;
                        }
                        match socket.try_send_to(&bytes, peer.addr) {
                            Ok(_) => true,
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => true,
                            Err(e) => {
                                tracing::debug!(to = %peer.addr, error = %e, "udp send failed");
                                false
                            }
                        }
                    }
                }
            }
            Some(id) => match self.inner.connections.get(&id) {
                None => {
                    tracing::debug!(to = %peer.addr, "tcp send failed: connection gone");
                    false
                }
                Some(tx) => match tx.try_send(bytes) {
                    Ok(()) => true,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        tracing::debug!(to = %peer.addr, "tcp send queue full; message lost");
                        true
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                },
            },
        }
    }
}

/// Hands a message up. A bug that panics on one message must not end the
/// receive loop (and with it SIP for every caller): the panic is caught,
/// logged, and the loop goes on.
fn deliver(sink: &dyn Sink, bytes: Bytes, peer: Peer) {
    let outcome =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sink.received(bytes, peer)));
    if outcome.is_err() {
        tracing::error!(from = %peer.addr, "message handling panicked; message dropped");
    }
}

/// What `icmp::drain` took from the socket's error queue.
#[derive(Debug, Default)]
struct Drained {
    /// Errors taken, of any kind.
    count: usize,
    /// The destinations of those that say "unreachable".
    unreachable: Vec<SocketAddr>,
}

/// ICMP errors on the unconnected UDP socket. Linux reports them for such
/// a socket only with `IP_RECVERR` (`IPV6_RECVERR`): each is queued with
/// the destination of the datagram that caused it (ip(7)), and sets the
/// socket's pending error, which the next receive or send returns.
#[cfg(target_os = "linux")]
mod icmp {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
    use std::os::fd::AsRawFd;
    use tokio::net::UdpSocket;

    pub fn enable(socket: &UdpSocket) -> std::io::Result<()> {
        let on: libc::c_int = 1;
        let (level, name) = match socket.local_addr()? {
            SocketAddr::V4(_) => (libc::IPPROTO_IP, libc::IP_RECVERR),
            SocketAddr::V6(_) => (libc::IPPROTO_IPV6, libc::IPV6_RECVERR),
        };
        // SAFETY: a valid descriptor, and an int option of the right size.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                level,
                name,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    /// Whether a send failed only because an earlier datagram drew an ICMP
    /// error (the socket's pending error, returned by whatever call is
    /// next).
    pub fn is_pending_error(e: &std::io::Error) -> bool {
        matches!(
            e.raw_os_error(),
            Some(libc::ECONNREFUSED | libc::EHOSTUNREACH | libc::ENETUNREACH | libc::EHOSTDOWN)
        )
    }

    /// Takes every queued ICMP error (at most 64 at a time): how many,
    /// and the destinations they say are unreachable (port, host or
    /// network).
    pub fn drain(socket: &UdpSocket) -> super::Drained {
        let mut out = super::Drained::default();
        for _ in 0..64 {
            let mut name: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
            let mut data = [0u8; 64];
            let mut control = [0u64; 64];
            let mut iov = libc::iovec {
                iov_base: data.as_mut_ptr().cast(),
                iov_len: data.len(),
            };
            // SAFETY: every pointer refers to a live local buffer of the
            // length given.
            let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
            msg.msg_name = (&mut name as *mut libc::sockaddr_storage).cast();
            msg.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = std::mem::size_of_val(&control) as _;
            let n = unsafe {
                libc::recvmsg(
                    socket.as_raw_fd(),
                    &mut msg,
                    libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT,
                )
            };
            if n < 0 {
                break;
            }
            out.count += 1;
            if unreachable_errno(&msg)
                && let Some(addr) = sockaddr(&name)
            {
                out.unreachable.push(addr);
            }
        }
        out
    }

    /// Whether the message's extended error is an ICMP "unreachable".
    fn unreachable_errno(msg: &libc::msghdr) -> bool {
        // SAFETY: the kernel filled the control buffer; the CMSG macros
        // walk it within msg_controllen.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(msg);
            while !cmsg.is_null() {
                let c = &*cmsg;
                let ours = (c.cmsg_level == libc::IPPROTO_IP && c.cmsg_type == libc::IP_RECVERR)
                    || (c.cmsg_level == libc::IPPROTO_IPV6 && c.cmsg_type == libc::IPV6_RECVERR);
                if ours {
                    let err: libc::sock_extended_err =
                        std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                    let icmp = err.ee_origin == libc::SO_EE_ORIGIN_ICMP
                        || err.ee_origin == libc::SO_EE_ORIGIN_ICMP6;
                    return icmp
                        && matches!(
                            err.ee_errno as i32,
                            libc::ECONNREFUSED
                                | libc::EHOSTUNREACH
                                | libc::ENETUNREACH
                                | libc::EHOSTDOWN
                        );
                }
                cmsg = libc::CMSG_NXTHDR(msg, cmsg);
            }
        }
        false
    }

    fn sockaddr(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
        match s.ss_family as i32 {
            libc::AF_INET => {
                // SAFETY: the family says it is a sockaddr_in.
                let a: &libc::sockaddr_in =
                    unsafe { &*(s as *const _ as *const libc::sockaddr_in) };
                Some(SocketAddr::V4(SocketAddrV4::new(
                    Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                    u16::from_be(a.sin_port),
                )))
            }
            libc::AF_INET6 => {
                // SAFETY: the family says it is a sockaddr_in6.
                let a: &libc::sockaddr_in6 =
                    unsafe { &*(s as *const _ as *const libc::sockaddr_in6) };
                Some(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(a.sin6_addr.s6_addr),
                    u16::from_be(a.sin6_port),
                    a.sin6_flowinfo,
                    a.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[tokio::test]
        async fn a_datagram_to_a_closed_port_comes_back_as_that_address_unreachable() {
            let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            enable(&socket).unwrap();
            // A port nothing listens on: bind one, learn it, close it.
            let closed = std::net::UdpSocket::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap();
            socket.send_to(b"OPTIONS", closed).await.unwrap();
            let mut found = Vec::new();
            for _ in 0..100 {
                found = drain(&socket).unreachable;
                if !found.is_empty() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            assert_eq!(found, vec![closed]);
        }
    }
}

/// Elsewhere ICMP errors are not read: unreachable peers are found by
/// time-outs only.
#[cfg(not(target_os = "linux"))]
mod icmp {
    use tokio::net::UdpSocket;

    pub fn enable(_: &UdpSocket) -> std::io::Result<()> {
        Err(std::io::Error::other("not supported on this system"))
    }

    pub fn is_pending_error(_: &std::io::Error) -> bool {
        false
    }

    pub fn drain(_: &UdpSocket) -> super::Drained {
        super::Drained::default()
    }
}

mod tokio_util_shim {
    /// Aborts a task when the owner goes away (the writer of a closed
    /// connection).
    pub struct CancelOnDrop(pub tokio::task::JoinHandle<()>);

    impl Drop for CancelOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
}
