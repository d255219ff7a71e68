//! The table of live calls: Call-ID → the call's task, shared by every
//! transport worker.
//!
//! Two properties matter and are pinned by the tests below:
//! - **One call per INVITE.** Two workers can receive the same INVITE (a
//!   retransmission) at once; claiming its Call-ID is one atomic step, so
//!   exactly one starts a call and the other hands its copy to that call.
//!   A call's task removes only its own entries when it ends, never a
//!   newer call's under the same Call-ID.
//! - **Control messages are never dropped where nothing would resend
//!   them.** A call's queue is unbounded for messages over TCP (no
//!   retransmission would repair a lost BYE) and for the engine's own
//!   events (an ICMP error, shutdown); only UDP messages beyond
//!   [`UDP_BACKLOG`] waiting are dropped — their sender retransmits, and
//!   a flood of them must not grow without bound.
//!
//! A call that is over but whose transactions still linger leaves its
//! task and takes far less room as [`Remains`], listed here under the
//! same Call-IDs until its last linger timer runs out.

use super::call::FarEnds;
use super::remains::Remains;
use crate::sip::message::Message;
use crate::sip::transport::Peer;
use dashmap::DashMap;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::mpsc;

/// UDP messages one call may have waiting before more are dropped.
pub const UDP_BACKLOG: usize = 64;

/// What a call's task is told.
pub enum Event {
    /// Boxed so a call's queue stays small.
    Message(Box<(Message, Peer)>),
    /// An ICMP error says nothing listens at this UDP address (§18.4).
    /// This and the other rare events are boxed too: each slot of the
    /// queue's blocks is as big as the biggest event.
    Unreachable(Box<std::net::SocketAddr>),
    /// The daemon is stopping: end the call cleanly (503, CANCEL, BYE).
    Terminate,
    /// A supervisor ends the call (the control API).
    Hangup,
    /// A supervisor's hand-off for the call (the control API), answered
    /// with whether it applied.
    Command(
        Box<(
            super::call::command::Command,
            tokio::sync::oneshot::Sender<Result<(), String>>,
        )>,
    ),
    /// The ACD's word for a waiting call.
    Acd(Box<super::queue::FromAcd>),
    /// The ticket store's answer for the call's ticket.
    Ticket(Box<crate::tickets::dialogue::Stored>),
    /// A new INVITE from the seat this call is joined to (authenticated):
    /// its consultation, and the seat's id.
    Consult(Box<(Message, Peer, String)>),
}

/// A call's entry: its queue, and who may send to it.
#[derive(Clone)]
pub struct CallHandle {
    /// The call's number: an entry is removed only by its own call.
    pub call: u64,
    tx: mpsc::UnboundedSender<Event>,
    /// Messages queued and not yet taken by the call's task.
    waiting: Arc<AtomicUsize>,
    /// Listed under the caller's Call-ID (each call counts once).
    pub primary: bool,
    /// The call's far ends: the only sources its requests may come from.
    /// The call's task keeps it current.
    pub sources: Arc<arc_swap::ArcSwap<FarEnds>>,
}

/// The receiving end of a call's queue, for its task.
pub struct Inbox {
    rx: mpsc::UnboundedReceiver<Event>,
    waiting: Arc<AtomicUsize>,
}

impl Inbox {
    pub async fn recv(&mut self) -> Option<Event> {
        let ev = self.rx.recv().await;
        if matches!(ev, Some(Event::Message(_))) {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
        }
        ev
    }

    /// Closes the queue — a message sent from now on comes back as
    /// [`Undelivered::Gone`] — and returns what was still in it.
    pub fn close(&mut self) -> Vec<Event> {
        use tokio::sync::mpsc::error::TryRecvError;
        self.rx.close();
        let mut left = Vec::new();
        // `Empty` after the close means a send is still on its way in (it
        // counted itself before the close): it is waited for, briefly.
        // `Disconnected` comes once nothing more can arrive.
        let mut spins = 0;
        loop {
            match self.rx.try_recv() {
                Ok(ev) => {
                    if matches!(ev, Event::Message(_)) {
                        self.waiting.fetch_sub(1, Ordering::Relaxed);
                    }
                    left.push(ev);
                }
                Err(TryRecvError::Empty) if spins < 10_000 => {
                    spins += 1;
                    std::thread::yield_now();
                }
                Err(_) => break,
            }
        }
        left
    }
}

/// Why a message did not reach its call.
#[derive(Debug)]
pub enum Undelivered {
    /// The call's task has ended (or left its remains): the message, back.
    Gone(Box<(Message, Peer)>),
    /// Too many UDP messages are waiting for it already.
    Backlog,
}

impl CallHandle {
    /// A new call's handle and inbox, first seen from `peer`.
    pub fn new(call: u64, peer: Peer) -> (CallHandle, Inbox) {
        let (tx, rx) = mpsc::unbounded_channel();
        let waiting = Arc::new(AtomicUsize::new(0));
        let handle = CallHandle {
            call,
            tx,
            waiting: waiting.clone(),
            primary: true,
            sources: Arc::new(arc_swap::ArcSwap::from_pointee(FarEnds {
                addrs: vec![peer.addr],
                hosts: Vec::new(),
            })),
        };
        (handle, Inbox { rx, waiting })
    }

    /// The same call, listed under another leg's Call-ID.
    pub fn for_leg(&self) -> CallHandle {
        CallHandle {
            primary: false,
            ..self.clone()
        }
    }

    /// Queues a message from `peer` for the call.
    pub fn deliver(&self, msg: Message, peer: Peer) -> Result<(), Undelivered> {
        if !peer.is_reliable() && self.waiting.load(Ordering::Relaxed) >= UDP_BACKLOG {
            return Err(Undelivered::Backlog);
        }
        self.waiting.fetch_add(1, Ordering::Relaxed);
        self.tx
            .send(Event::Message(Box::new((msg, peer))))
            .map_err(|e| {
                self.waiting.fetch_sub(1, Ordering::Relaxed);
                let Event::Message(m) = e.0 else {
                    unreachable!("a message was sent")
                };
                Undelivered::Gone(m)
            })
    }

    /// Tells the call something of the engine's own (never dropped).
    pub fn notify(&self, ev: Event) -> bool {
        self.tx.send(ev).is_ok()
    }
}

#[derive(Default)]
pub struct Calls {
    map: DashMap<String, CallHandle>,
    /// Finished calls' remains, by each of their Call-IDs.
    ended: DashMap<Arc<str>, Arc<Remains>>,
    /// The same, in the order they were listed, for [`Calls::sweep`].
    expiry: Mutex<VecDeque<Arc<Remains>>>,
}

impl Calls {
    pub fn get(&self, call_id: &str) -> Option<CallHandle> {
        self.map.get(call_id).map(|h| h.clone())
    }

    /// Claims `call_id` for a new call in one step. If another call holds
    /// it already (the same INVITE received twice at once), that call's
    /// handle comes back instead and nothing changes.
    pub fn claim(&self, call_id: &str, handle: CallHandle) -> Result<(), CallHandle> {
        match self.map.entry(call_id.to_string()) {
            dashmap::Entry::Occupied(e) => Err(e.get().clone()),
            dashmap::Entry::Vacant(v) => {
                v.insert(handle);
                Ok(())
            }
        }
    }

    /// Lists a leg's Call-ID (unguessable, ours) for the call.
    pub fn bind(&self, call_id: String, handle: CallHandle) {
        self.map.insert(call_id, handle);
    }

    /// Removes `call_id` if, and only if, call `call` holds it.
    pub fn release(&self, call_id: &str, call: u64) {
        self.map.remove_if(call_id, |_, h| h.call == call);
    }

    /// Lists a finished call's remains under its Call-IDs (a live call
    /// listed under one of them keeps precedence in [`Calls::get`]).
    pub fn leave(&self, remains: Remains) {
        let remains = Arc::new(remains);
        let mut expiry = self.expiry.lock().unwrap_or_else(|e| e.into_inner());
        for id in remains.call_ids() {
            self.ended.insert(id.clone(), remains.clone());
        }
        expiry.push_back(remains);
    }

    /// A finished call's remains listed under `call_id`, still lingering.
    pub fn finished(&self, call_id: &str, now: Instant) -> Option<Arc<Remains>> {
        self.ended
            .get(call_id)
            .map(|r| r.clone())
            .filter(|r| now < r.until)
    }

    /// Drops the remains whose last rule ran out by `now`. They are
    /// swept in the order they were listed: one that lingers longer than
    /// those after it holds them back until it goes (by no more than the
    /// longest linger, 64·T1).
    pub fn sweep(&self, now: Instant) -> usize {
        let mut expiry = self.expiry.lock().unwrap_or_else(|e| e.into_inner());
        let mut swept = 0;
        while let Some(first) = expiry.front()
            && first.until <= now
        {
            let Some(gone) = expiry.pop_front() else {
                break;
            };
            for id in gone.call_ids() {
                if self
                    .ended
                    .remove_if(&**id, |_, r| r.call == gone.call)
                    .is_some()
                {
                    swept += 1;
                }
            }
        }
        swept
    }

    /// Finished calls' remains listed (one per Call-ID).
    pub fn lingering(&self) -> usize {
        self.ended.len()
    }

    /// Each call once (a call is listed under each leg's Call-ID), or
    /// those that `which` selects.
    pub fn primaries(&self, which: impl Fn(&CallHandle) -> bool) -> Vec<CallHandle> {
        self.map
            .iter()
            .filter(|e| e.value().primary && which(e.value()))
            .map(|e| e.value().clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::net::SocketAddr;

    fn peer() -> Peer {
        Peer::udp(SocketAddr::from(([192, 0, 2, 1], 5060)))
    }

    fn tcp_peer() -> Peer {
        Peer {
            addr: SocketAddr::from(([192, 0, 2, 1], 40000)),
            conn: Some(7),
        }
    }

    fn bye() -> Message {
        Message::parse(Bytes::from_static(
            b"BYE sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKa\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: c\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
        ))
        .unwrap()
    }

    fn remains(call: u64, call_id: &str, until: std::time::Instant) -> Remains {
        use super::super::remains::{LegRemains, Reply, Rule};
        let rule = Rule {
            branch: "z9hG4bKa".into(),
            method: super::super::remains::TxMethod::Other,
            reply: Reply::AbsorbRequest,
            peer: None,
            until,
        };
        let legs = vec![LegRemains {
            call_id: call_id.into(),
            peer: peer(),
            rules: vec![rule].into_boxed_slice(),
        }];
        Remains::new(call, Arc::new(FarEnds::default()), legs).expect("a rule")
    }

    #[test]
    fn remains_are_found_until_they_run_out_and_swept_without_touching_a_newer_calls() {
        let calls = Calls::default();
        let t0 = std::time::Instant::now();
        let s = std::time::Duration::from_secs;
        calls.leave(remains(1, "x", t0 + s(32)));
        calls.leave(remains(2, "y", t0 + s(5)));
        assert_eq!(calls.lingering(), 2);
        assert_eq!(calls.finished("x", t0).map(|r| r.call), Some(1));
        assert!(calls.finished("x", t0 + s(32)).is_none(), "ran out");
        // Swept in the order listed: "y" waits behind "x".
        assert_eq!(calls.sweep(t0 + s(6)), 0);
        assert!(calls.finished("y", t0 + s(6)).is_none());
        // A new call under "x" leaves its own remains before the old run out.
        calls.leave(remains(3, "x", t0 + s(60)));
        assert_eq!(calls.sweep(t0 + s(33)), 1, "only y: x is call 3's now");
        assert_eq!(calls.finished("x", t0 + s(33)).map(|r| r.call), Some(3));
        assert_eq!(calls.sweep(t0 + s(60)), 1);
        assert_eq!(calls.lingering(), 0);
    }

    #[test]
    fn a_closed_inbox_gives_back_what_it_held_and_refuses_the_rest() {
        let (handle, mut inbox) = CallHandle::new(1, peer());
        for _ in 0..UDP_BACKLOG {
            handle.deliver(bye(), peer()).unwrap();
        }
        let left = inbox.close();
        assert_eq!(left.len(), UDP_BACKLOG);
        // Counted out as they were taken: what comes now is refused as
        // gone (and answered by the remains), not as a full backlog.
        assert!(matches!(
            handle.deliver(bye(), peer()),
            Err(Undelivered::Gone(_))
        ));
    }

    #[test]
    fn one_invite_received_by_many_workers_at_once_starts_one_call() {
        let calls = Arc::new(Calls::default());
        let started = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|n| {
                let (calls, started) = (calls.clone(), started.clone());
                std::thread::spawn(move || {
                    let (handle, _inbox) = CallHandle::new(n, peer());
                    if calls.claim("same-invite", handle).is_ok() {
                        started.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(started.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn the_loser_gets_the_winners_call_and_a_call_removes_only_its_own_entry() {
        let calls = Calls::default();
        let (first, _a) = CallHandle::new(1, peer());
        let (second, _b) = CallHandle::new(2, peer());
        assert!(calls.claim("x", first).is_ok());
        let winner = calls.claim("x", second).expect_err("taken");
        assert_eq!(winner.call, 1);
        // Call 2's cleanup must not remove call 1's entry.
        calls.release("x", 2);
        assert_eq!(calls.get("x").map(|h| h.call), Some(1));
        calls.release("x", 1);
        assert!(calls.get("x").is_none());
    }

    #[test]
    fn udp_messages_beyond_the_backlog_are_dropped_but_tcp_and_engine_events_never() {
        let (handle, mut inbox) = CallHandle::new(1, peer());
        for _ in 0..UDP_BACKLOG {
            handle.deliver(bye(), peer()).unwrap();
        }
        assert!(matches!(
            handle.deliver(bye(), peer()),
            Err(Undelivered::Backlog)
        ));
        for _ in 0..1000 {
            handle.deliver(bye(), tcp_peer()).unwrap();
        }
        assert!(handle.notify(Event::Terminate));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let got = rt.block_on(async {
            let mut n = 0;
            while let Ok(Some(ev)) =
                tokio::time::timeout(std::time::Duration::from_millis(10), inbox.recv()).await
            {
                n += 1;
                if matches!(ev, Event::Terminate) {
                    break;
                }
            }
            n
        });
        assert_eq!(got, UDP_BACKLOG + 1000 + 1);
        // Taken: room for UDP again.
        assert!(handle.deliver(bye(), peer()).is_ok());
    }
}
