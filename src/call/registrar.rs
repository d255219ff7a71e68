//! Where each seat (座席) can be reached, and whether it is on a call.
//!
//! Seats register their phones (RFC 3261 §10); the routing loop asks for a
//! free, registered seat and reserves it atomically, so two calls arriving
//! together never ring the same agent. Pure state with time passed in: the
//! REGISTER handling that authenticates and answers lives in the engine.

use crate::sip::transport::Peer;
use dashmap::DashMap;
use std::time::{Duration, Instant};

/// One contact a seat registered.
#[derive(Clone, Debug)]
pub struct Binding {
    /// The Contact URI, as the phone wrote it.
    pub uri: String,
    /// Where the REGISTER came from: requests go back there (the phone may
    /// sit behind NAT; its Contact host may be unreachable).
    pub peer: Peer,
    pub expires_at: Instant,
    /// Call-ID and CSeq of the REGISTER that made it (§10.3 step 7: an
    /// older CSeq on the same Call-ID is out of order).
    pub call_id: String,
    pub cseq: u32,
}

/// A requested change to one seat's bindings.
pub enum Update<'a> {
    /// `Contact: *` with `Expires: 0`: remove every binding.
    RemoveAll,
    /// Add, refresh (same URI) or remove (`expires == 0`) these contacts.
    Contacts(&'a [(String, u32)]),
}

#[derive(Debug, PartialEq, Eq)]
pub enum RegisterError {
    /// CSeq not higher than the binding's on the same Call-ID (§10.3).
    OutOfOrder,
}

#[derive(Default)]
pub struct Registrar {
    bindings: DashMap<String, Vec<Binding>>,
    /// seat id → call id of the call it is on.
    busy: DashMap<String, u64>,
    /// seat id → the call bridged to it now that would take its own
    /// INVITE as a consultation.
    bridged: DashMap<String, u64>,
}

impl Registrar {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies a REGISTER and returns the seat's live bindings with the
    /// seconds each has left, for the `200 OK` (§10.3 step 8).
    #[allow(clippy::too_many_arguments)]
    pub fn register(
        &self,
        seat: &str,
        update: Update<'_>,
        peer: Peer,
        call_id: &str,
        cseq: u32,
        max_contacts: usize,
        now: Instant,
    ) -> Result<Vec<(String, u32)>, RegisterError> {
        let mut entry = self.bindings.entry(seat.to_string()).or_default();
        let list = entry.value_mut();
        list.retain(|b| b.expires_at > now);
        if list.iter().any(|b| b.call_id == call_id && b.cseq >= cseq) {
            return Err(RegisterError::OutOfOrder);
        }
        match update {
            Update::RemoveAll => list.clear(),
            Update::Contacts(contacts) => {
                for (uri, expires) in contacts {
                    list.retain(|b| b.uri != *uri);
                    if *expires > 0 {
                        list.push(Binding {
                            uri: uri.clone(),
                            peer,
                            expires_at: now + Duration::from_secs(u64::from(*expires)),
                            call_id: call_id.to_string(),
                            cseq,
                        });
                    }
                }
                // At most `max_contacts`: the least recently registered
                // give way (the list is in that order), so a phone that
                // re-registers from ever new addresses cannot grow it.
                let excess = list.len().saturating_sub(max_contacts.max(1));
                list.drain(..excess);
            }
        }
        Ok(list
            .iter()
            .map(|b| (b.uri.clone(), remaining(b.expires_at, now)))
            .collect())
    }

    /// The seat's live bindings, newest first.
    pub fn lookup(&self, seat: &str, now: Instant) -> Vec<Binding> {
        let Some(list) = self.bindings.get(seat) else {
            return Vec::new();
        };
        let mut live: Vec<Binding> = list
            .iter()
            .filter(|b| b.expires_at > now)
            .cloned()
            .collect();
        live.sort_by_key(|b| std::cmp::Reverse(b.expires_at));
        live
    }

    pub fn is_registered(&self, seat: &str, now: Instant) -> bool {
        self.bindings
            .get(seat)
            .is_some_and(|l| l.iter().any(|b| b.expires_at > now))
    }

    /// Seats with at least one live binding.
    pub fn registered_count(&self, now: Instant) -> usize {
        self.bindings
            .iter()
            .filter(|e| e.value().iter().any(|b| b.expires_at > now))
            .count()
    }

    /// The seat with a live binding registered from `addr`, if any: a
    /// request from there is that seat's phone, not a trunk's.
    pub fn seat_at(&self, addr: std::net::SocketAddr, now: Instant) -> Option<String> {
        self.bindings.iter().find_map(|e| {
            e.value()
                .iter()
                .any(|b| b.peer.addr == addr && b.expires_at > now)
                .then(|| e.key().clone())
        })
    }

    /// Drops every binding reached through `peer` (a closed TCP
    /// connection); returns how many.
    pub fn forget_peer(&self, peer: Peer) -> usize {
        let mut dropped = 0;
        for mut entry in self.bindings.iter_mut() {
            let before = entry.len();
            entry.retain(|b| b.peer != peer);
            dropped += before - entry.len();
        }
        dropped
    }

    /// Marks the seat busy with `call` if it is free. Atomic per seat.
    pub fn try_reserve(&self, seat: &str, call: u64) -> bool {
        match self.busy.entry(seat.to_string()) {
            dashmap::Entry::Occupied(_) => false,
            dashmap::Entry::Vacant(v) => {
                v.insert(call);
                true
            }
        }
    }

    /// Frees the seat if `call` holds it.
    pub fn release(&self, seat: &str, call: u64) {
        self.busy.remove_if(seat, |_, holder| *holder == call);
    }

    /// Frees every seat `call` holds: for a call's task as it ends,
    /// whatever state it ends in (a panic included).
    pub fn release_call(&self, call: u64) {
        self.busy.retain(|_, holder| *holder != call);
        self.bridged.retain(|_, holder| *holder != call);
    }

    /// Seat `seat` talks to `call` (`Some`), or no longer does (`None`):
    /// an INVITE of its own now is a consultation for that call.
    pub fn set_bridged(&self, seat: &str, call: u64, bridged: bool) {
        if bridged {
            self.bridged.insert(seat.to_string(), call);
        } else {
            self.bridged.remove_if(seat, |_, holder| *holder == call);
        }
    }

    /// The call that would take the seat's own INVITE as a consultation.
    pub fn bridged_to(&self, seat: &str) -> Option<u64> {
        self.bridged.get(seat).map(|h| *h)
    }

    pub fn is_busy(&self, seat: &str) -> bool {
        self.busy.contains_key(seat)
    }
}

fn remaining(at: Instant, now: Instant) -> u32 {
    at.saturating_duration_since(now)
        .as_secs()
        .min(u64::from(u32::MAX)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> Peer {
        Peer::udp("127.0.0.1:5070".parse().unwrap())
    }

    #[test]
    fn a_binding_lives_until_it_expires() {
        let r = Registrar::new();
        let t0 = Instant::now();
        let c = [("sip:8001@127.0.0.1:5070".to_string(), 60)];
        let live = r
            .register("8001", Update::Contacts(&c), peer(), "a", 1, 10, t0)
            .unwrap();
        assert_eq!(live, vec![("sip:8001@127.0.0.1:5070".to_string(), 60)]);
        assert!(r.is_registered("8001", t0 + Duration::from_secs(59)));
        assert!(!r.is_registered("8001", t0 + Duration::from_secs(60)));
        assert_eq!(r.registered_count(t0), 1);
    }

    #[test]
    fn several_contacts_and_unregistering_one_or_all() {
        let r = Registrar::new();
        let t0 = Instant::now();
        let two = [("sip:a@h".to_string(), 60), ("sip:b@h".to_string(), 120)];
        assert_eq!(
            r.register("8001", Update::Contacts(&two), peer(), "c", 1, 10, t0)
                .unwrap()
                .len(),
            2
        );
        let drop_a = [("sip:a@h".to_string(), 0)];
        let live = r
            .register("8001", Update::Contacts(&drop_a), peer(), "c", 2, 10, t0)
            .unwrap();
        assert_eq!(live, vec![("sip:b@h".to_string(), 120)]);
        let live = r
            .register("8001", Update::RemoveAll, peer(), "c", 3, 10, t0)
            .unwrap();
        assert!(live.is_empty());
        assert!(!r.is_registered("8001", t0));
    }

    #[test]
    fn a_seat_keeps_at_most_its_cap_of_contacts_the_newest() {
        let r = Registrar::new();
        let t0 = Instant::now();
        // A phone re-registering from a new address each time (or an
        // attacker with the password): the oldest give way.
        for n in 0..25u32 {
            let c = [(format!("sip:8001@10.0.0.{n}:5060"), 600)];
            let live = r
                .register("8001", Update::Contacts(&c), peer(), "c", n + 1, 10, t0)
                .unwrap();
            assert!(live.len() <= 10);
        }
        let live = r.lookup("8001", t0);
        assert_eq!(live.len(), 10);
        assert!(live.iter().any(|b| b.uri == "sip:8001@10.0.0.24:5060"));
        assert!(!live.iter().any(|b| b.uri == "sip:8001@10.0.0.14:5060"));
        // A refresh moves a contact to the newest end.
        let keep = [("sip:8001@10.0.0.15:5060".to_string(), 600)];
        r.register("8001", Update::Contacts(&keep), peer(), "c", 26, 10, t0)
            .unwrap();
        let other = [("sip:8001@10.0.0.99:5060".to_string(), 600)];
        r.register("8001", Update::Contacts(&other), peer(), "c", 27, 10, t0)
            .unwrap();
        let live = r.lookup("8001", t0);
        assert!(live.iter().any(|b| b.uri == "sip:8001@10.0.0.15:5060"));
        assert!(!live.iter().any(|b| b.uri == "sip:8001@10.0.0.16:5060"));
    }

    #[test]
    fn an_out_of_order_register_is_refused() {
        let r = Registrar::new();
        let t0 = Instant::now();
        let c = [("sip:a@h".to_string(), 60)];
        r.register("8001", Update::Contacts(&c), peer(), "c", 5, 10, t0)
            .unwrap();
        assert_eq!(
            r.register("8001", Update::Contacts(&c), peer(), "c", 5, 10, t0),
            Err(RegisterError::OutOfOrder)
        );
        // A different Call-ID (the phone rebooted) is not out of order.
        assert!(
            r.register("8001", Update::Contacts(&c), peer(), "d", 1, 10, t0)
                .is_ok()
        );
    }

    #[test]
    fn bindings_through_a_closed_connection_are_forgotten() {
        let r = Registrar::new();
        let t0 = Instant::now();
        let tcp = Peer {
            addr: "127.0.0.1:6000".parse().unwrap(),
            conn: Some(7),
        };
        let c = [("sip:8001@h".to_string(), 60)];
        r.register("8001", Update::Contacts(&c), tcp, "a", 1, 10, t0)
            .unwrap();
        r.register("8002", Update::Contacts(&c), peer(), "b", 1, 10, t0)
            .unwrap();
        assert_eq!(r.forget_peer(tcp), 1);
        assert!(!r.is_registered("8001", t0));
        assert!(r.is_registered("8002", t0));
    }

    #[test]
    fn a_seat_is_reserved_by_one_call_at_a_time() {
        let r = Registrar::new();
        assert!(r.try_reserve("8001", 1));
        assert!(!r.try_reserve("8001", 2));
        r.release("8001", 2); // not the holder: no effect
        assert!(r.is_busy("8001"));
        r.release("8001", 1);
        assert!(r.try_reserve("8001", 2));
    }

    #[test]
    fn a_call_that_ends_frees_every_seat_it_holds_and_no_other() {
        let r = Registrar::new();
        assert!(r.try_reserve("8001", 1));
        assert!(r.try_reserve("8002", 1));
        assert!(r.try_reserve("8003", 2));
        r.release_call(1);
        assert!(!r.is_busy("8001") && !r.is_busy("8002"));
        assert!(r.is_busy("8003"));
    }
}
