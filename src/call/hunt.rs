//! Hunting: the targets a call tries in turn — the expert seat, then the
//! skilled seats; a trunk and its alternates; a sub-centre, then the 12345
//! seats — and how long each may ring.
//!
//! Kept apart from the call so the policy can change (the ACD offers seats
//! itself) without touching how legs are placed and joined. Pure: the
//! registrar is read, and a seat reserved, only when its turn comes.

use super::leg::Target;
use super::registrar::Registrar;
use crate::sip::transport::Peer;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub struct Hunt {
    targets: VecDeque<Target>,
    seat_ring: Duration,
    max_ring: Duration,
    /// The call waits in a queue once the targets are exhausted.
    then_queue: bool,
}

/// The next target that can take the call, with where to send its INVITE.
pub struct Next {
    pub target: Target,
    pub uri: String,
    pub peer: Peer,
    /// How long it may ring before the next is tried.
    pub ring: Duration,
}

impl Hunt {
    pub fn new(
        targets: Vec<Target>,
        seat_ring: Duration,
        max_ring: Duration,
        then_queue: bool,
    ) -> Hunt {
        Hunt {
            targets: targets.into(),
            seat_ring,
            max_ring,
            then_queue,
        }
    }

    /// The next target that can be tried now: a seat must be registered
    /// and free (it is reserved for `call` here); a trunk always can.
    pub fn next(&mut self, registrar: &Registrar, call: u64, now: Instant) -> Option<Next> {
        while let Some(target) = self.targets.pop_front() {
            let (uri, peer) = match &target {
                Target::Trunk { uri, peer, .. } => (uri.clone(), *peer),
                Target::Seat { id } => {
                    let Some(binding) = registrar.lookup(id, now).into_iter().next() else {
                        continue;
                    };
                    if !registrar.try_reserve(id, call) {
                        continue;
                    }
                    (binding.uri, binding.peer)
                }
            };
            // A trunk rings for the caller's whole patience, unless
            // something follows it (an alternate; a sub-centre's fallback to
            // the 12345 queue): then it has a seat's ring, and that gets its
            // turn.
            let ring = match target {
                Target::Trunk { .. } if self.targets.is_empty() && !self.then_queue => {
                    self.max_ring
                }
                _ => self.seat_ring,
            };
            return Some(Next {
                target,
                uri,
                peer,
                ring,
            });
        }
        None
    }

    /// No more targets: the caller left, or the call is over.
    pub fn clear(&mut self) {
        self.targets.clear();
    }
}
