//! What a finished call leaves behind while its transactions linger.
//!
//! Once a call is over and none of its transactions has anything left to
//! send of its own — each is Completed, Confirmed or Accepted and only waits
//! out Timer D, I, J, K, L or M — all that is left to do is answer
//! retransmissions as those transactions would (RFC 3261 §17, RFC 6026
//! §7): a retransmitted BYE gets the same `200` again, a retransmitted
//! INVITE is absorbed (it must not start a new call), a retransmitted 2xx
//! or failure from a placed leg gets the same ACK again, a retransmitted
//! `200` to our BYE is absorbed.
//!
//! Keeping the whole call for that — its legs, dialogs, messages, task
//! and queue, tens of kilobytes — for 32 s made a finished call cost more
//! than a live one. [`Remains`] keeps only the rules, per leg: which
//! retransmission gets which bytes again, and until when. The engine
//! answers from it where the datagram was received; the call table drops
//! it once its last rule has run out ([`super::calls::Calls::sweep`]).
//!
//! Pure: [`Remains::answer`] takes the message and "now" and says what to
//! send.

use super::call::FarEnds;
use crate::sip::message::{Message, Method};
use crate::sip::transport::Peer;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Instant;

/// A finished call's remains: its legs' rules, and who may send to it.
#[derive(Debug)]
pub struct Remains {
    pub call: u64,
    /// Requests are taken only from the call's far ends, as while it ran.
    pub sources: Arc<FarEnds>,
    pub legs: Vec<LegRemains>,
    /// When the last rule runs out.
    pub until: Instant,
}

/// One leg's rules, under its Call-ID.
#[derive(Debug)]
pub struct LegRemains {
    pub call_id: Box<str>,
    pub rules: Vec<Rule>,
}

/// One lingering transaction: what a retransmission in it gets.
#[derive(Debug)]
pub struct Rule {
    /// The transaction's branch: the far end's for a request it sent, ours
    /// for a request we sent (its responses carry it back).
    pub branch: Box<str>,
    /// The request's method (a response's CSeq method).
    pub method: Method,
    pub reply: Reply,
    /// Where the answer goes (the peer the transaction was with).
    pub peer: Peer,
    pub until: Instant,
}

#[derive(Debug)]
pub enum Reply {
    /// A retransmitted request, absorbed: the caller's INVITE once its
    /// final response was acknowledged (§17.2.1 Confirmed; RFC 6026
    /// Accepted), a re-INVITE likewise.
    AbsorbRequest,
    /// A retransmitted request, answered again with the same final
    /// response (§17.2.2 Completed, Timer J).
    Resend(Bytes),
    /// A CANCEL of the caller's INVITE: `200` with our To tag (§9.2).
    CancelOk(Box<str>),
    /// A retransmitted final response to our request, absorbed (Timer K).
    AbsorbResponse,
    /// A retransmitted final response to our INVITE, ACKed again: a
    /// failure (Timer D, §17.1.1.2), or the 2xx of our dialog (Timer M,
    /// RFC 6026 §7.2; `remote_tag` is the far end's tag in it).
    Ack {
        ack: Bytes,
        success: bool,
        remote_tag: Option<Box<str>>,
    },
}

impl Reply {
    fn for_request(&self) -> bool {
        matches!(
            self,
            Reply::AbsorbRequest | Reply::Resend(_) | Reply::CancelOk(_)
        )
    }
}

/// What to do with a message for a finished call.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// Send these bytes there.
    Send(Peer, Bytes),
    /// Nothing: a retransmission absorbed, an ACK, a stray response.
    Absorbed,
    /// A new request in a dialog that is over: `481` (§12.2.2).
    NoDialog,
    /// Not the finished call's at all: an INVITE outside any dialog that
    /// is no retransmission of the call's own (a new call reusing the
    /// Call-ID).
    NotOurs,
}

impl Remains {
    /// The call's remains, or `None` if it left nothing to answer.
    pub fn new(call: u64, sources: Arc<FarEnds>, legs: Vec<LegRemains>) -> Option<Remains> {
        let until = legs.iter().flat_map(|l| &l.rules).map(|r| r.until).max()?;
        Some(Remains {
            call,
            sources,
            legs,
            until,
        })
    }

    /// The Call-IDs the remains answer under.
    pub fn call_ids(&self) -> impl Iterator<Item = &str> {
        let mut seen: Vec<&str> = Vec::new();
        self.legs.iter().filter_map(move |l| {
            let id = &*l.call_id;
            (!seen.contains(&id)).then(|| {
                seen.push(id);
                id
            })
        })
    }

    /// What `msg` (for one of the call's Call-IDs) gets at `now`.
    pub fn answer(&self, msg: &Message, now: Instant) -> Answer {
        let Some(call_id) = msg.call_id() else {
            return Answer::Absorbed;
        };
        let via = msg.top_via();
        let branch = via.as_ref().and_then(|v| v.branch.as_deref()).unwrap_or("");
        let rules = self
            .legs
            .iter()
            .filter(|l| *l.call_id == *call_id.as_str())
            .flat_map(|l| &l.rules)
            .filter(|r| now < r.until && *r.branch == *branch);
        if let Some(method) = msg.method() {
            let rule = rules
                .filter(|r| r.reply.for_request())
                .find(|r| r.method == *method);
            match rule.map(|r| (&r.reply, r.peer)) {
                Some((Reply::AbsorbRequest, _)) => Answer::Absorbed,
                Some((Reply::Resend(bytes), peer)) => Answer::Send(peer, bytes.clone()),
                Some((Reply::CancelOk(tag), peer)) => {
                    Answer::Send(peer, msg.response(200, "OK", Some(tag)).encode())
                }
                Some(_) => Answer::Absorbed,
                // §17.2.3: an ACK matching nothing is absorbed.
                None if *method == Method::Ack => Answer::Absorbed,
                None if *method == Method::Invite && msg.to().is_none_or(|t| t.tag().is_none()) => {
                    Answer::NotOurs
                }
                None => Answer::NoDialog,
            }
        } else {
            let (Some(code), Some(method)) = (msg.code(), msg.cseq().map(|c| c.1)) else {
                return Answer::Absorbed;
            };
            let rule = rules
                .filter(|r| !r.reply.for_request())
                .find(|r| r.method == method);
            match rule.map(|r| (&r.reply, r.peer)) {
                Some((
                    Reply::Ack {
                        ack,
                        success,
                        remote_tag,
                    },
                    peer,
                )) => {
                    let is_2xx = (200..300).contains(&code);
                    let tag = msg.to().and_then(|t| t.tag().map(str::to_string));
                    let again = if *success {
                        is_2xx && tag.as_deref() == remote_tag.as_deref()
                    } else {
                        code >= 300
                    };
                    if again {
                        Answer::Send(peer, ack.clone())
                    } else {
                        // A 2xx from another fork after the call is over:
                        // its sender gives up after 64·T1.
                        tracing::debug!(
                            call = self.call,
                            code,
                            "late response for a finished call; dropped"
                        );
                        Answer::Absorbed
                    }
                }
                _ => Answer::Absorbed,
            }
        }
    }

    /// The bytes the remains hold, roughly (for the figures).
    pub fn held_bytes(&self) -> usize {
        let rules: usize = self
            .legs
            .iter()
            .flat_map(|l| &l.rules)
            .map(|r| {
                std::mem::size_of::<Rule>()
                    + r.branch.len()
                    + match &r.reply {
                        Reply::Resend(b) => b.len(),
                        Reply::Ack {
                            ack, remote_tag, ..
                        } => ack.len() + remote_tag.as_ref().map_or(0, |t| t.len()),
                        Reply::CancelOk(t) => t.len(),
                        Reply::AbsorbRequest | Reply::AbsorbResponse => 0,
                    }
            })
            .sum();
        let legs: usize = self
            .legs
            .iter()
            .map(|l| std::mem::size_of::<LegRemains>() + l.call_id.len())
            .sum();
        std::mem::size_of::<Remains>() + rules + legs
    }
}

/// A copy of `bytes` in an allocation of its own size: an encoded
/// message's buffer is made with room to spare, and the remains keep it
/// for half a minute.
pub fn compact(bytes: &Bytes) -> Bytes {
    Bytes::copy_from_slice(bytes)
}
