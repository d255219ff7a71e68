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
    pub legs: Box<[LegRemains]>,
    /// When the last rule runs out.
    pub until: Instant,
}

/// One leg's rules, under its Call-ID.
#[derive(Debug)]
pub struct LegRemains {
    /// Shared with the call table's key for it.
    pub call_id: Arc<str>,
    /// The leg's far end, where answers go unless a rule names another.
    pub peer: Peer,
    pub rules: Box<[Rule]>,
}

/// One lingering transaction: what a retransmission in it gets.
#[derive(Debug)]
pub struct Rule {
    /// The transaction's branch: the far end's for a request it sent, ours
    /// for a request we sent (its responses carry it back).
    pub branch: Box<str>,
    /// The request's method (a response's CSeq method), as far as it
    /// tells transactions of one branch apart.
    pub method: TxMethod,
    pub reply: Reply,
    /// Where the answer goes when not the leg's peer (a request that came
    /// over another connection or from another of a trunk's ports).
    pub peer: Option<Box<Peer>>,
    pub until: Instant,
}

/// A transaction's method as matching needs it (§17.1.3, §17.2.3): the
/// branch identifies the transaction, except that a CANCEL shares its
/// INVITE's branch (and an ACK is never a transaction's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxMethod {
    Invite,
    Cancel,
    /// Any other method.
    Other,
}

impl TxMethod {
    pub fn of(method: &Method) -> TxMethod {
        match method {
            Method::Invite => TxMethod::Invite,
            Method::Cancel => TxMethod::Cancel,
            _ => TxMethod::Other,
        }
    }
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
    /// A retransmitted BYE: `200 OK` again, made from the retransmission
    /// itself as the first was made from the BYE (the same bytes, and no
    /// copy of them kept).
    ByeOk,
    /// The caller's INVITE: absorbed again once its final response was
    /// acknowledged, and a CANCEL of it (same branch) answered `200` with
    /// our To tag (§9.2).
    CallerInvite(Box<str>),
    /// A retransmitted final response to our request, absorbed (Timer K).
    AbsorbResponse,
    /// A retransmitted final response to our INVITE, ACKed again: a
    /// failure (Timer D, §17.1.1.2), or the 2xx of our dialog (Timer M,
    /// RFC 6026 §7.2; `remote_tag` is the far end's tag in it).
    Ack(Box<Reack>),
}

/// The ACK of a final response to our INVITE, to send again.
#[derive(Debug)]
pub struct Reack {
    pub ack: Bytes,
    /// It acknowledged a 2xx (else a failure).
    pub success: bool,
    /// The far end's tag in the 2xx.
    pub remote_tag: Option<Box<str>>,
}

impl Reply {
    fn for_request(&self) -> bool {
        matches!(
            self,
            Reply::AbsorbRequest | Reply::Resend(_) | Reply::ByeOk | Reply::CallerInvite(_)
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
            legs: legs.into_boxed_slice(),
            until,
        })
    }

    /// The Call-IDs the remains answer under.
    pub fn call_ids(&self) -> impl Iterator<Item = &Arc<str>> {
        let legs = &self.legs;
        legs.iter()
            .enumerate()
            .filter(|(i, l)| !legs[..*i].iter().any(|p| p.call_id == l.call_id))
            .map(|(_, l)| &l.call_id)
    }

    /// What `msg` (for one of the call's Call-IDs), from `from`, gets at
    /// `now`. A request's answer goes back where it came from, as the
    /// transaction answered it (§18.2.2); an ACK again to where the leg's
    /// responses come from.
    pub fn answer(&self, msg: &Message, from: Peer, now: Instant) -> Answer {
        let Some(call_id) = msg.call_id() else {
            return Answer::Absorbed;
        };
        let branch = msg.branch().unwrap_or("");
        let rules = self
            .legs
            .iter()
            .filter(|l| *l.call_id == *call_id.as_str())
            .flat_map(|l| {
                l.rules
                    .iter()
                    .map(move |r| (r, r.peer.as_deref().unwrap_or(&l.peer)))
            })
            .filter(|(r, _)| now < r.until && *r.branch == *branch);
        if let Some(method) = msg.method() {
            let tx = TxMethod::of(method);
            let rule = rules.filter(|(r, _)| r.reply.for_request()).find(|(r, _)| {
                r.method == tx
                    || (tx == TxMethod::Cancel && matches!(r.reply, Reply::CallerInvite(_)))
            });
            match rule.map(|(r, _)| (&r.reply, from)) {
                Some((Reply::AbsorbRequest, _)) => Answer::Absorbed,
                Some((Reply::Resend(bytes), peer)) => Answer::Send(peer, bytes.clone()),
                Some((Reply::ByeOk, peer)) => {
                    Answer::Send(peer, msg.response(200, "OK", None).encode())
                }
                Some((Reply::CallerInvite(tag), peer)) if tx == TxMethod::Cancel => {
                    Answer::Send(peer, msg.response(200, "OK", Some(tag)).encode())
                }
                Some((Reply::CallerInvite(_), _)) => Answer::Absorbed,
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
                .filter(|(r, _)| !r.reply.for_request())
                .find(|(r, _)| r.method == TxMethod::of(&method));
            match rule.map(|(r, peer)| (&r.reply, *peer)) {
                Some((Reply::Ack(reack), peer)) => {
                    let Reack {
                        ack,
                        success,
                        remote_tag,
                    } = &**reack;
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
                    + r.peer.as_ref().map_or(0, |_| std::mem::size_of::<Peer>())
                    + match &r.reply {
                        Reply::Resend(b) => b.len(),
                        Reply::Ack(r) => {
                            std::mem::size_of::<Reack>()
                                + r.ack.len()
                                + r.remote_tag.as_ref().map_or(0, |t| t.len())
                        }
                        Reply::CallerInvite(t) => t.len(),
                        Reply::AbsorbRequest | Reply::AbsorbResponse | Reply::ByeOk => 0,
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
