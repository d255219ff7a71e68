//! The tokio edge of SIP: UDP and TCP sockets (RFC 3261 §18). It moves
//! bytes and nothing else: each received datagram or stream frame goes to a
//! [`Sink`] with the [`Peer`] it came from, and [`Transport::send`] writes
//! bytes back out. Parsing and every decision live above it.
//!
//! TCP frames are cut by Content-Length (a [`Framer`] per connection);
//! a connection whose framing breaks is closed, since nothing after a bad
//! length can be trusted (RFC 4475 `ncl`). Sends never wait: a full UDP
//! buffer or a slow TCP peer loses that message (the transaction layer
//! retransmits), never stalls the routing loop.
//!
//! A TCP peer cannot hold what others need ([`TcpLimits`]): connections are
//! capped in all and per source address, and a connection must deliver
//! whole messages in time — bytes that never complete one buy nothing.

use super::message::{Framer, MAX_MESSAGE_SIZE};
use bytes::{Bytes, BytesMut};
use dashmap::DashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};
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
    limits: TcpLimits,
    connections: DashMap<u64, mpsc::Sender<Bytes>>,
    /// Open connections per source (see [`source_of`]).
    sources: DashMap<IpAddr, Source>,
    /// Whether the global cap is refusing connections (logged once).
    refusing_all: AtomicBool,
    next_conn: AtomicU64,
    /// Sources the per-source cap does not apply to: the trunks (a
    /// carrier's SBC may hold many connections); the global cap still does.
    trusted: arc_swap::ArcSwap<Vec<IpAddr>>,
}

/// Per-connection outgoing queue: beyond this a slow peer loses messages.
const TCP_QUEUE: usize = 256;

/// Connections the kernel queues for us to accept. `TcpListener::bind`
/// asks for 128, which a burst of connects (a flood, or every phone after
/// a restart) overflows: the kernel then drops SYNs, and a phone's SYN
/// dropped waits a second or more to be sent again. We accept (or refuse)
/// queued connections in microseconds, so a deep queue costs nothing.
const LISTEN_BACKLOG: u32 = 1024;

/// Binds a TCP listener as `TcpListener::bind` does (`SO_REUSEADDR`, so a
/// restart need not wait out `TIME_WAIT`), with [`LISTEN_BACKLOG`].
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// What a TCP peer may hold. The defaults suit a hotline: phones and
/// trunks open a connection or two each and send whole messages at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpLimits {
    /// Open connections at most; more are closed at once, so idle sockets
    /// cannot exhaust file descriptors.
    pub max_connections: usize,
    /// Open connections from one source at most (an IPv4 address, an IPv6
    /// /64), so that one host cannot take all of `max_connections`.
    pub max_per_source: usize,
    /// A connection must deliver its first whole message this soon after
    /// it opens (keep-alives do not count)...
    pub first_message: Duration,
    /// ...each later message this soon after its first byte arrived (a
    /// web server's header time-out)...
    pub message: Duration,
    /// ...and between messages send something (a message or a CRLF
    /// keep-alive) at least this often. An hour covers the longest
    /// registration refresh we grant over TCP.
    pub idle: Duration,
}

impl Default for TcpLimits {
    fn default() -> Self {
        TcpLimits {
            max_connections: 4096,
            max_per_source: 256,
            first_message: Duration::from_secs(10),
            message: Duration::from_secs(10),
            idle: Duration::from_secs(3600),
        }
    }
}

/// One source's open connections, and the ones refused since it reached
/// the cap (its refusals are logged when they start and when they end).
#[derive(Default)]
struct Source {
    open: usize,
    refused: u64,
}

/// Whose share of the connections a peer uses: its IPv4 address, or its
/// IPv6 /64 (one host commonly holds a whole /64, so counting single
/// IPv6 addresses would cap nothing). An IPv4 peer seen on a dual-stack
/// socket (`::ffff:a.b.c.d`) counts as its IPv4 address.
fn source_of(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !(u64::MAX as u128))),
        v4 => v4,
    }
}

impl Transport {
    /// Binds the sockets with the default [`TcpLimits`];
    /// [`Transport::run`] starts receiving.
    pub async fn bind(
        udp: Option<SocketAddr>,
        tcp: Option<SocketAddr>,
    ) -> std::io::Result<(Transport, Option<TcpListener>)> {
        Transport::bind_with(udp, tcp, TcpLimits::default()).await
    }

    /// [`Transport::bind`] with the given limits on TCP peers.
    pub async fn bind_with(
        udp: Option<SocketAddr>,
        tcp: Option<SocketAddr>,
        limits: TcpLimits,
    ) -> std::io::Result<(Transport, Option<TcpListener>)> {
        let udp = match udp {
            Some(a) => {
                let socket = UdpSocket::bind(a).await?;
                match enlarge_buffers(&socket, UDP_BUFFER) {
                    Ok((rcv, snd)) => {
                        tracing::debug!(receive = rcv, send = snd, "SIP UDP socket buffers")
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "SIP UDP socket buffers left at the system default")
                    }
                }
                if let Err(e) = icmp::enable(&socket) {
                    tracing::warn!(error = %e, "ICMP errors will not be seen: unreachable peers are found only by time-outs");
                }
                Some(Arc::new(socket))
            }
            None => None,
        };
        let listener = match tcp {
            Some(a) => Some(listen(a)?),
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
                    limits,
                    connections: DashMap::new(),
                    sources: DashMap::new(),
                    trusted: arc_swap::ArcSwap::from_pointee(Vec::new()),
                    refusing_all: AtomicBool::new(false),
                    next_conn: AtomicU64::new(1),
                }),
            },
            listener,
        ))
    }

    /// The addresses the per-source TCP cap spares (the trunks'), replaced
    /// whole at each table load.
    pub fn set_trusted_sources(&self, ips: Vec<IpAddr>) {
        let ips = ips.into_iter().map(|ip| ip.to_canonical()).collect();
        self.inner.trusted.store(Arc::new(ips));
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
                let mut errors = crate::log_limit::AcceptErrors::default();
                loop {
                    match listener.accept().await {
                        Ok((stream, from)) => match this.inner.admit(from) {
                            // Dropping the stream closes it.
                            None => drop(stream),
                            Some(slot) => {
                                errors.succeeded();
                                this.adopt(stream, from, slot, sink.clone());
                            }
                        },
                        Err(e) => {
                            // Out of descriptors, say: back off, and log once
                            // an interval, not once a failure.
                            let failure = errors.failed(std::time::Instant::now());
                            if let Some(suppressed) = failure.log {
                                tracing::warn!(error = %e, suppressed, "tcp accept failed");
                            }
                            tokio::time::sleep(failure.pause).await;
                        }
                    }
                }
            });
        }
    }

    fn adopt(&self, stream: TcpStream, from: SocketAddr, slot: Slot, sink: Arc<dyn Sink>) -> Peer {
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
            let _slot = slot;
            let mut buf = BytesMut::with_capacity(8192);
            let mut framer = Framer::default();
            let mut liveness = Liveness::new(inner.limits, Instant::now());
            'read: loop {
                let (deadline, why) = liveness.deadline();
                let deadline = tokio::time::Instant::from_std(deadline);
                match tokio::time::timeout_at(deadline, reader.read_buf(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => break,
                    Ok(Ok(_)) => {}
                    Err(_) => {
                        tracing::debug!(peer = %from, reason = why, "closing TCP connection");
                        break;
                    }
                }
                let now = Instant::now();
                loop {
                    match framer.frame_length(&buf) {
                        Ok(Some(n)) => {
                            let frame = buf.split_to(n).freeze();
                            let keepalive = frame.iter().all(|b| matches!(b, b'\r' | b'\n'));
                            liveness.framed(now, keepalive);
                            if !keepalive {
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
                liveness.buffered(now, !buf.is_empty());
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

impl Inner {
    /// Whether a connection from `from` may open: the global and the
    /// per-source caps. Refusals are logged when they start, not each one
    /// (a flood would flood the log too).
    fn admit(self: &Arc<Self>, from: SocketAddr) -> Option<Slot> {
        if self.connections.len() >= self.limits.max_connections {
            if !self.refusing_all.swap(true, Ordering::Relaxed) {
                tracing::warn!(from = %from, limit = self.limits.max_connections, "too many TCP connections; refusing new ones");
            }
            return None;
        }
        if self.refusing_all.swap(false, Ordering::Relaxed) {
            tracing::info!("TCP connections below the limit again; accepting new ones");
        }
        if self.limits.max_per_source == 0 {
            return None;
        }
        let source = source_of(from.ip());
        // An entry exists only while its source has a connection open, so
        // a flood from many addresses leaves nothing behind.
        let mut entry = self.sources.entry(source).or_default();
        if entry.open >= self.limits.max_per_source
            && !self.trusted.load().contains(&from.ip().to_canonical())
        {
            if entry.refused == 0 {
                tracing::warn!(source = %source, limit = self.limits.max_per_source, "too many TCP connections from one source; refusing more from it");
            }
            entry.refused += 1;
            return None;
        }
        entry.open += 1;
        Some(Slot {
            inner: self.clone(),
            source,
        })
    }
}

/// A connection's place in its source's count, given back when the
/// connection ends, however it ends.
struct Slot {
    inner: Arc<Inner>,
    source: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let dashmap::Entry::Occupied(mut e) = self.inner.sources.entry(self.source) {
            let s = e.get_mut();
            s.open -= 1;
            if s.refused > 0 {
                tracing::info!(source = %self.source, refused = s.refused, "TCP connections from the source below the limit again");
                s.refused = 0;
            }
            if s.open == 0 {
                e.remove();
            }
        }
    }
}

/// When a TCP connection must next make progress, or be closed. Sans-I/O:
/// told what the reader framed and when, it answers with a deadline.
///
/// Only whole frames count as progress. Before the first message the
/// deadline is `first_message` after opening; while a message is arriving,
/// `message` after its first byte; between messages, `idle` after the
/// last frame (a message or a CRLF keep-alive, RFC 5626 §4.4.1). So a peer
/// trickling bytes holds a connection for seconds, not the idle hour.
#[derive(Debug)]
struct Liveness {
    limits: TcpLimits,
    opened: Instant,
    /// Whether a message (not a keep-alive) has come whole.
    delivered: bool,
    /// When the first byte of the message now arriving came.
    message_began: Option<Instant>,
    last_frame: Instant,
}

impl Liveness {
    fn new(limits: TcpLimits, now: Instant) -> Self {
        Liveness {
            limits,
            opened: now,
            delivered: false,
            message_began: None,
            last_frame: now,
        }
    }

    /// A whole frame was read at `now`.
    fn framed(&mut self, now: Instant, keepalive: bool) {
        self.delivered |= !keepalive;
        self.message_began = None;
        self.last_frame = now;
    }

    /// After the frames of a read at `now`: whether part of another is
    /// buffered (a keep-alive never is: it is a frame as soon as it comes).
    fn buffered(&mut self, now: Instant, pending: bool) {
        if !pending {
            self.message_began = None;
        } else if self.message_began.is_none() {
            self.message_began = Some(now);
        }
    }

    /// The next deadline, and what it is for (for the log).
    fn deadline(&self) -> (Instant, &'static str) {
        let mut next = match self.message_began {
            Some(began) => (began + self.limits.message, "message not completed in time"),
            None => (self.last_frame + self.limits.idle, "idle"),
        };
        let first = self.opened + self.limits.first_message;
        if !self.delivered && first < next.0 {
            next = (first, "no first message in time");
        }
        next
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

/// The receive and send buffers asked for the SIP UDP socket. The system
/// default (about 208 KiB on Linux) holds a few milliseconds of datagrams
/// at thousands of calls a second: any pause of the receiving tasks then
/// drops datagrams, whose retransmissions add load until the gateway
/// collapses. The kernel caps the size at `net.core.rmem_max` /
/// `wmem_max`, which the operator may raise.
const UDP_BUFFER: usize = 4 << 20;

/// Asks for `bytes` of receive and send buffer on `socket`; the sizes the
/// kernel granted (as it reports them: twice what it counts, see socket(7)).
#[cfg(unix)]
fn enlarge_buffers(socket: &UdpSocket, bytes: usize) -> std::io::Result<(usize, usize)> {
    use std::os::fd::AsRawFd;
    let fd = socket.as_raw_fd();
    let size = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    let mut granted = [0usize; 2];
    for (i, name) in [libc::SO_RCVBUF, libc::SO_SNDBUF].into_iter().enumerate() {
        // SAFETY: a valid descriptor, and an int option of the right size.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                name,
                (&size as *const libc::c_int).cast(),
                len,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut got: libc::c_int = 0;
        let mut got_len = len;
        // SAFETY: as above, with room for the int the kernel writes.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                name,
                (&mut got as *mut libc::c_int).cast(),
                &mut got_len,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        granted[i] = usize::try_from(got).unwrap_or(0);
    }
    Ok((granted[0], granted[1]))
}

#[cfg(not(unix))]
fn enlarge_buffers(_: &UdpSocket, _: usize) -> std::io::Result<(usize, usize)> {
    Err(std::io::Error::other("not supported on this system"))
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
    use std::net::SocketAddr;
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
                && let Some(addr) = crate::sockaddr::from_storage(&name)
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[test]
    fn only_whole_frames_keep_a_connection_alive() {
        let limits = TcpLimits {
            first_message: Duration::from_secs(10),
            message: Duration::from_secs(5),
            idle: Duration::from_secs(3600),
            ..TcpLimits::default()
        };
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut l = Liveness::new(limits, t0);
        assert_eq!(l.deadline().0, at(10));
        // Its first byte starts the message's clock too: whichever ends
        // first.
        l.buffered(at(1), true);
        assert_eq!(l.deadline().0, at(6));
        l.buffered(at(6), true);
        assert_eq!(l.deadline().0, at(6));
        let mut l = Liveness::new(limits, t0);
        l.buffered(at(7), true);
        assert_eq!(l.deadline(), (at(10), "no first message in time"));
        // Keep-alives are no first message.
        let mut l = Liveness::new(limits, t0);
        l.framed(at(2), true);
        l.buffered(at(2), false);
        assert_eq!(l.deadline(), (at(10), "no first message in time"));
        // A whole message: the idle hour from then.
        l.framed(at(3), false);
        l.buffered(at(3), false);
        assert_eq!(l.deadline(), (at(3603), "idle"));
        // A keep-alive restarts the idle hour.
        l.framed(at(100), true);
        l.buffered(at(100), false);
        assert_eq!(l.deadline().0, at(3700));
        // A message begun must end within its deadline, however its bytes
        // are spaced.
        l.buffered(at(200), true);
        l.buffered(at(204), true);
        assert_eq!(l.deadline(), (at(205), "message not completed in time"));
        l.framed(at(204), false);
        l.buffered(at(204), false);
        assert_eq!(l.deadline().0, at(3804));
        // A read ending one message and beginning the next starts the
        // next one's clock.
        l.framed(at(300), false);
        l.buffered(at(300), true);
        assert_eq!(l.deadline().0, at(305));
    }

    #[test]
    fn a_source_is_an_ipv4_address_or_an_ipv6_slash_64() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(source_of(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(source_of(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(source_of(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(
            source_of(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")),
            ip("2001:db8:1:2::")
        );
        assert_ne!(source_of(ip("2001:db8:1:3::1")), ip("2001:db8:1:2::"));
    }

    /// Counts what the transport hands up.
    #[derive(Default)]
    struct Count {
        received: std::sync::Mutex<Vec<Bytes>>,
    }

    impl Sink for Count {
        fn received(&self, bytes: Bytes, _: Peer) {
            self.received.lock().unwrap().push(bytes);
        }
        fn framing_lost(&self, _: Peer, _: &'static str) {}
    }

    const OPTIONS: &[u8] = b"OPTIONS sip:h SIP/2.0\r\nContent-Length: 0\r\n\r\n";

    async fn start(limits: TcpLimits) -> (SocketAddr, Arc<Count>) {
        let (addr, sink, _) = start_transport(limits).await;
        (addr, sink)
    }

    async fn start_transport(limits: TcpLimits) -> (SocketAddr, Arc<Count>, Transport) {
        let (transport, listener) =
            Transport::bind_with(None, Some("127.0.0.1:0".parse().unwrap()), limits)
                .await
                .unwrap();
        let sink = Arc::new(Count::default());
        transport.run(listener, sink.clone(), 1);
        (transport.tcp_local().unwrap(), sink, transport)
    }

    #[tokio::test]
    async fn a_trunks_address_is_spared_the_per_source_cap() {
        let (addr, _, transport) = start_transport(TcpLimits {
            max_per_source: 1,
            ..TcpLimits::default()
        })
        .await;
        transport.set_trusted_sources(vec!["127.0.0.3".parse().unwrap()]);
        let mut held = Vec::new();
        for _ in 0..4 {
            let mut s = connect_from("127.0.0.3", addr).await;
            assert!(!closed_within(&mut s, Duration::from_millis(100)).await);
            held.push(s);
        }
        let _one = connect_from("127.0.0.4", addr).await;
        let mut two = connect_from("127.0.0.4", addr).await;
        assert!(closed_within(&mut two, Duration::from_secs(5)).await);
    }

    async fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
        socket.connect(to).await.unwrap()
    }

    /// Whether the transport closes `stream` within `limit`.
    async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
        let mut buf = [0u8; 64];
        tokio::time::timeout(limit, async {
            while !matches!(stream.read(&mut buf).await, Ok(0) | Err(_)) {}
        })
        .await
        .is_ok()
    }

    #[tokio::test]
    async fn connections_beyond_a_sources_share_are_closed_and_the_share_is_given_back() {
        let (addr, _) = start(TcpLimits {
            max_per_source: 2,
            ..TcpLimits::default()
        })
        .await;
        let mut first = connect_from("127.0.0.1", addr).await;
        let mut second = connect_from("127.0.0.1", addr).await;
        let mut third = connect_from("127.0.0.1", addr).await;
        assert!(closed_within(&mut third, Duration::from_secs(5)).await);
        // Another source has its own share.
        let mut other = connect_from("127.0.0.2", addr).await;
        assert!(!closed_within(&mut other, Duration::from_millis(200)).await);
        // A connection that ends gives its place back.
        drop(first);
        let mut again = None;
        for _ in 0..50 {
            let mut s = connect_from("127.0.0.1", addr).await;
            if !closed_within(&mut s, Duration::from_millis(100)).await {
                again = Some(s);
                break;
            }
        }
        assert!(
            again.is_some(),
            "the closed connection's place was never given back"
        );
        assert!(!closed_within(&mut second, Duration::from_millis(10)).await);
        first = connect_from("127.0.0.1", addr).await;
        assert!(closed_within(&mut first, Duration::from_secs(5)).await);
    }

    #[tokio::test]
    async fn after_a_whole_message_the_short_deadlines_no_longer_apply() {
        let short = Duration::from_millis(200);
        let (addr, sink) = start(TcpLimits {
            first_message: short,
            message: short,
            ..TcpLimits::default()
        })
        .await;
        let mut stream = connect_from("127.0.0.1", addr).await;
        stream.write_all(OPTIONS).await.unwrap();
        // Silent for several times the short deadlines, between messages.
        assert!(!closed_within(&mut stream, 5 * short).await);
        stream.write_all(b"\r\n\r\n").await.unwrap();
        stream.write_all(OPTIONS).await.unwrap();
        // Half a message, then silence: closed by the message deadline.
        stream.write_all(&OPTIONS[..20]).await.unwrap();
        assert!(closed_within(&mut stream, Duration::from_secs(5)).await);
        assert_eq!(sink.received.lock().unwrap().len(), 2);
    }
}
