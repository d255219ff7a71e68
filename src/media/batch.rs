//! Taking what a media socket has queued in one system call.
//!
//! A session used to read a ready socket until the kernel said "nothing
//! more" (`EAGAIN`): two reads for every packet, since a leg sends one
//! every 20 ms. [`RecvBatch::recv`] asks for up to [`BATCH`] datagrams at
//! once (`recvmmsg`); when fewer come, the socket is empty, and the
//! runtime is told so without a second read. The buffers are one per
//! thread, not one per call: a session takes and handles its packets
//! without yielding in between ([`with_batch`]).

use std::cell::RefCell;
use std::io;
use std::mem::{MaybeUninit, size_of, zeroed};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// The most datagrams taken in one call.
pub const BATCH: usize = 8;
/// The largest datagram kept whole (RTP of 20 ms G.711 is 172 bytes; a
/// longer one is cut to this, as the single read before cut it).
pub const DATAGRAM: usize = 2048;

/// Room for one batch: the datagrams, their lengths and senders.
pub struct RecvBatch {
    bufs: Box<[[u8; DATAGRAM]; BATCH]>,
    lens: [usize; BATCH],
    from: [SocketAddr; BATCH],
}

impl Default for RecvBatch {
    fn default() -> Self {
        RecvBatch {
            bufs: Box::new([[0; DATAGRAM]; BATCH]),
            lens: [0; BATCH],
            from: [SocketAddr::from(([0, 0, 0, 0], 0)); BATCH],
        }
    }
}

impl RecvBatch {
    /// Takes up to [`BATCH`] datagrams `socket` has queued, without
    /// waiting: how many (0 when none was there). A short batch means
    /// the queue is empty: the socket's readiness is cleared, so its next
    /// datagram wakes the task that polls it.
    pub fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        let fd = socket.as_raw_fd();
        let mut got = 0;
        let r = socket.try_io(Interest::READABLE, || {
            got = self.recvmmsg(fd)?;
            if got < BATCH {
                // Drained: reported as "would block" so the runtime
                // clears readiness; what came is in `self`.
                Err(io::ErrorKind::WouldBlock.into())
            } else {
                Ok(())
            }
        });
        match r {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => Err(e),
            _ => Ok(got),
        }
    }

    /// Datagram `k` of the last batch (its bytes, writable for an in-place
    /// restamp) and who sent it.
    pub fn get(&mut self, k: usize) -> (&mut [u8], SocketAddr) {
        (&mut self.bufs[k][..self.lens[k]], self.from[k])
    }

    fn recvmmsg(&mut self, fd: i32) -> io::Result<usize> {
        // SAFETY: plain C structs, all zeros is a valid value of each.
        let mut names: [libc::sockaddr_storage; BATCH] = unsafe { zeroed() };
        let mut iovs: [MaybeUninit<libc::iovec>; BATCH] = [MaybeUninit::uninit(); BATCH];
        let mut msgs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        for k in 0..BATCH {
            iovs[k].write(libc::iovec {
                iov_base: self.bufs[k].as_mut_ptr().cast(),
                iov_len: DATAGRAM,
            });
            let h = &mut msgs[k].msg_hdr;
            h.msg_name = (&mut names[k] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = iovs[k].as_mut_ptr();
            h.msg_iovlen = 1;
        }
        // SAFETY: every header points at a live buffer, name and iovec of
        // this frame or of `self`, with their true lengths.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                msgs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        for k in 0..n {
            self.lens[k] = (msgs[k].msg_len as usize).min(DATAGRAM);
            self.from[k] = crate::sockaddr::from_storage(&names[k]).unwrap_or(self.from[k]);
        }
        Ok(n)
    }
}

thread_local! {
    static BATCH_ROOM: RefCell<RecvBatch> = RefCell::default();
}

/// Runs `f` with this thread's batch room. `f` must not yield (it is not
/// async): the room is the thread's, shared by every session on it.
pub fn with_batch<R>(f: impl FnOnce(&mut RecvBatch) -> R) -> R {
    BATCH_ROOM.with_borrow_mut(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_batch_takes_what_is_queued_and_then_nothing() {
        let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = rx.local_addr().unwrap();
        for k in 0..(BATCH as u8 + 3) {
            tx.send_to(&[k; 5][..(k as usize % 5) + 1], to)
                .await
                .unwrap();
        }
        rx.readable().await.unwrap();
        // Loopback delivers at once; what was sent is queued.
        let mut b = RecvBatch::default();
        let mut seen = Vec::new();
        loop {
            let n = b.recv(&rx).unwrap();
            for k in 0..n {
                let (bytes, from) = b.get(k);
                assert_eq!(from, tx.local_addr().unwrap());
                seen.push(bytes.to_vec());
            }
            if n < BATCH {
                break;
            }
        }
        let want: Vec<Vec<u8>> = (0..(BATCH as u8 + 3))
            .map(|k| vec![k; (k as usize % 5) + 1])
            .collect();
        assert_eq!(seen, want);
        // Drained: readiness cleared, and a new datagram wakes a waiter.
        assert_eq!(b.recv(&rx).unwrap(), 0);
        tx.send_to(b"late", to).await.unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(2), rx.readable())
            .await
            .expect("woken by the next datagram")
            .unwrap();
        assert_eq!(b.recv(&rx).unwrap(), 1);
        assert_eq!(b.get(0).0, b"late");
    }

    #[tokio::test]
    async fn a_sender_over_ipv6_is_read_back() {
        let Ok(rx) = UdpSocket::bind("[::1]:0").await else {
            return; // no IPv6 loopback on this machine
        };
        let tx = UdpSocket::bind("[::1]:0").await.unwrap();
        tx.send_to(b"v6", rx.local_addr().unwrap()).await.unwrap();
        rx.readable().await.unwrap();
        let mut b = RecvBatch::default();
        assert_eq!(b.recv(&rx).unwrap(), 1);
        let (bytes, from) = b.get(0);
        assert_eq!(bytes, b"v6");
        assert_eq!(from, tx.local_addr().unwrap());
    }
}
