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
}

/// The gateway's sockets. Cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct Transport {
    inner: Arc<Inner>,
}

struct Inner {
    udp: Option<Arc<UdpSocket>>,
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
            Some(a) => Some(Arc::new(UdpSocket::bind(a).await?)),
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
                            // ICMP port unreachable surfaces here on some
                            // systems; it is not fatal to the socket.
                            Err(e) => tracing::debug!(error = %e, "udp receive error"),
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
                        tracing::debug!(to = %peer.addr, error = %e, "udp send failed");
                        false
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
