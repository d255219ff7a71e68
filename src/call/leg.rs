//! One leg of a call: one SIP dialog — the caller's, where we are the UAS,
//! or one we place to a seat or a trunk, where we are the UAC — with every
//! transaction in it.
//!
//! The leg speaks SIP; it decides nothing about the call. It answers what
//! SIP itself dictates (retransmissions, `100 Trying`, `200` to a BYE or a
//! CANCEL, the ACK of every final response to our INVITE, hanging up a
//! forked or late 2xx, `500` for a CSeq out of order) and reports the rest
//! as [`LegEvent`]s for the call's controller: the far end rings, answers,
//! refuses, hangs up, or sends an in-dialog request that the call must
//! answer or relay. Like the transaction machines under it, it is
//! sans-I/O: inputs carry "now", output is bytes to send
//! ([`Leg::poll_transmit`]) and events ([`Leg::poll_event`]), and
//! [`Leg::deadline`] is the only timing contract.
//!
//! RFC 3261: §9 CANCEL, §12 dialogs (in [`Dialog`]), §13 INVITE, §14
//! re-INVITE, §15 BYE, §17 transactions; RFC 6026 for 2xx handling.

use super::remains::{LegRemains, Reack, Reply, Rule, TxMethod, compact};
use crate::sip::dialog::Dialog;
use crate::sip::message::{Message, Method, Name, StartLine};
use crate::sip::transaction::{
    Action, ClientInvite, ClientNonInvite, Linger, ServerInvite, ServerNonInvite, State, Timers,
    Transport as Reliability,
};
use crate::sip::transport::Peer;
use bytes::Bytes;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

/// A leg's number within its call. The caller's leg of a call started by
/// an INVITE is [`LegId::CALLER`]; each leg placed gets the next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LegId(pub u32);

impl LegId {
    pub const CALLER: LegId = LegId(0);
}

impl std::fmt::Display for LegId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "leg {}", self.0)
    }
}

/// Where a placed leg goes.
#[derive(Clone, Debug)]
pub enum Target {
    /// Out over a trunk: the Request-URI, where to send it, and the
    /// addresses the trunk may send from (its requests in the dialog may
    /// come from any of them).
    Trunk {
        id: String,
        uri: String,
        peer: Peer,
        sources: Vec<IpAddr>,
    },
    /// A seat, if registered and free when its turn comes.
    Seat { id: String },
}

impl std::fmt::Display for Target {
    /// As an operator names it: `seat 8001`, `trunk emergency`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Seat { id } => write!(f, "seat {id}"),
            Target::Trunk { id, .. } => write!(f, "trunk {id}"),
        }
    }
}

/// Where a leg's INVITE stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LegState {
    /// No final answer yet; `early` once a provisional went either way.
    Setup { early: bool },
    /// Answered with a 2xx (sent, or received and ACKed).
    Answered,
    /// Refused, cancelled or hung up: only transactions linger.
    Ended,
}

/// What happened on a leg that the call's controller decides about.
#[derive(Debug)]
pub enum LegEvent {
    /// UAC: a provisional response above 100 (ringing, early media).
    Progress { code: u16, msg: Message },
    /// UAC: the first 2xx to our INVITE, ACKed.
    Answered { msg: Message },
    /// UAC: our INVITE ended without an answer: a final failure, Timer B,
    /// a transport error, or an early BYE from the far end. Also reported
    /// when we had given the leg up ourselves.
    Failed { code: u16, reason: String },
    /// UAC: not even `100 Trying` by the response deadline.
    Silent,
    /// UAS: the caller withdrew its INVITE (CANCEL, or BYE before the
    /// answer). The `487` is the call's to send.
    Cancelled,
    /// The far end hung up an answered leg (BYE, answered `200` already).
    HungUp,
    /// UAS: no ACK ever came for our 2xx (§13.3.1.4).
    AckTimeout,
    /// The caller's leg cannot be reached any more (transport error).
    Unreachable,
    /// An in-dialog request the call must answer ([`Leg::reply`]): a
    /// re-INVITE, UPDATE, INFO, OPTIONS, ... `tx` names its transaction.
    Request { tx: u32, msg: Message },
    /// The ACK of our 2xx to a re-INVITE (it may carry the SDP answer).
    Ack { msg: Message },
    /// A response to a request the call sent with [`Leg::request`]; `msg`
    /// is `None` when the transaction timed out or could not be sent.
    Response {
        tx: u32,
        code: u16,
        reason: String,
        msg: Option<Message>,
    },
}

/// Extra parts of a response or request: a body and headers.
#[derive(Default, Debug, Clone)]
pub struct Parts {
    pub body: Option<(String, Bytes)>,
    pub headers: Vec<(Name, String)>,
}

impl Parts {
    pub fn sdp(sdp: impl Into<Bytes>) -> Parts {
        Parts {
            body: Some(("application/sdp".into(), sdp.into())),
            headers: Vec::new(),
        }
    }

    /// The body of `msg`, as it came (relaying between legs).
    pub fn body_of(msg: &Message) -> Parts {
        let body = (!msg.body.is_empty()).then(|| {
            let ct = msg
                .header(&Name::ContentType)
                .map_or_else(|| "application/sdp".to_string(), |v| v.to_string());
            (ct, msg.body.clone())
        });
        Parts {
            body,
            headers: Vec::new(),
        }
    }

    pub fn header(mut self, name: Name, value: impl Into<String>) -> Parts {
        self.headers.push((name, value.into()));
        self
    }

    fn apply(&self, m: &mut Message) {
        for (name, value) in &self.headers {
            m.push(name.clone(), value.clone());
        }
        if let Some((ct, body)) = &self.body {
            m.set(Name::ContentType, ct.clone());
            m.body = body.clone();
        }
    }
}

enum Invite {
    /// The caller's INVITE, which we answer.
    Uas { tx: ServerInvite, cseq: u32 },
    /// Our INVITE to a target.
    Uac(Box<Uac>),
}

struct Uac {
    tx: ClientInvite,
    target: Target,
    /// Until the first response (any, `100` included) arrives.
    response_deadline: Option<Instant>,
    /// We gave the leg up (rang out, the caller left, another answered):
    /// a late 2xx is ACKed and hung up.
    abandoned: bool,
    /// A CANCEL waits for the first provisional (§9.1).
    cancel_pending: bool,
    /// When we stop waiting for a final response after our CANCEL
    /// (§9.1: 64·T1; a far end may never send its 487).
    cancel_deadline: Option<Instant>,
    given_up: bool,
    /// A 2xx was taken: the dialog is confirmed (§12.1.2).
    confirmed: bool,
    /// Where its responses came from, when not the peer (a trunk
    /// answering from another port): its requests may come from there.
    latched: Option<SocketAddr>,
    /// The last ACK we sent for this INVITE's final response (a failure's,
    /// hop by hop; or the 2xx's): sent again for a retransmission of it
    /// once the call is over and only its remains answer.
    ack: Option<Bytes>,
}

enum ServerTx {
    Invite(ServerInvite),
    NonInvite(ServerNonInvite),
}

enum ClientTx {
    Invite(ClientInvite),
    NonInvite(ClientNonInvite),
}

/// An in-dialog request from the far end, with its transaction.
struct Server {
    key: u32,
    peer: Peer,
    branch: String,
    method: Method,
    request: Message,
    tx: ServerTx,
}

/// Why we sent an in-dialog request: the leg's own (BYE, CANCEL), or the
/// call's, whose responses go up as events.
#[derive(PartialEq, Eq)]
enum Purpose {
    Own,
    Call,
}

struct Client {
    key: u32,
    peer: Peer,
    branch: String,
    method: Method,
    /// A re-INVITE, kept to ACK its answers.
    request: Option<Message>,
    tx: ClientTx,
    purpose: Purpose,
}

pub struct Leg {
    pub id: LegId,
    /// The call's number, for the log and the ids we make.
    call: u64,
    pub peer: Peer,
    pub dialog: Dialog,
    /// The INVITE that opened the leg (ours or the caller's); stripped to
    /// what responses copy once the leg is answered or over.
    invite: Message,
    branch: String,
    state: LegState,
    invite_tx: Invite,
    servers: Vec<Server>,
    clients: Vec<Client>,
    timers: Timers,
    /// Our `host:port`, for Via and Contact.
    local: String,
    next_key: u32,
    transmit: VecDeque<(Peer, Bytes)>,
    events: VecDeque<LegEvent>,
}

fn reliability(peer: Peer) -> Reliability {
    if peer.is_reliable() {
        Reliability::Reliable
    } else {
        Reliability::Unreliable
    }
}

impl Leg {
    /// The caller's leg, for an INVITE that arrived from `peer`.
    pub fn incoming(
        id: LegId,
        call: u64,
        invite: Message,
        peer: Peer,
        timers: Timers,
        local: String,
        now: Instant,
    ) -> Leg {
        let branch = invite.branch().unwrap_or_default().to_string();
        let dialog = Dialog::uas(&invite, tag(call, id.0), format!("sip:{}", peer.addr));
        let cseq = invite.cseq().map_or(0, |c| c.0);
        Leg {
            id,
            call,
            peer,
            dialog,
            invite,
            branch,
            state: LegState::Setup { early: false },
            invite_tx: Invite::Uas {
                tx: ServerInvite::new(reliability(peer), timers, now),
                cseq,
            },
            servers: Vec::new(),
            clients: Vec::new(),
            timers,
            local,
            next_key: 0,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// A leg we place: `invite` (built by [`Leg::invite_for`] and given its
    /// body by the call) goes out to `peer` at once.
    #[allow(clippy::too_many_arguments)]
    pub fn outgoing(
        id: LegId,
        call: u64,
        target: Target,
        invite: Message,
        dialog: Dialog,
        branch: String,
        peer: Peer,
        timers: Timers,
        local: String,
        response_timeout: std::time::Duration,
        now: Instant,
    ) -> Leg {
        let bytes = invite.encode();
        let tx = ClientInvite::new(bytes.clone(), reliability(peer), timers, now);
        let mut leg = Leg {
            id,
            call,
            peer,
            dialog,
            invite,
            branch,
            state: LegState::Setup { early: false },
            invite_tx: Invite::Uac(Box::new(Uac {
                tx,
                target,
                response_deadline: Some(now + response_timeout),
                abandoned: false,
                cancel_pending: false,
                cancel_deadline: None,
                given_up: false,
                confirmed: false,
                latched: None,
                ack: None,
            })),
            servers: Vec::new(),
            clients: Vec::new(),
            timers,
            local,
            next_key: 0,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
        };
        leg.transmit.push_back((peer, bytes));
        leg
    }

    /// The INVITE for a leg to `uri` from `caller` (a number, for our
    /// From): its dialog and branch, with our Via, Contact and Allow. The
    /// call adds the body.
    pub fn invite_for(
        call: u64,
        id: LegId,
        uri: &str,
        caller: &str,
        max_forwards: &str,
        peer: Peer,
        local: &str,
    ) -> (Message, Dialog, String) {
        // Unguessable: a Call-ID is all it takes to address a call's task.
        let call_id = format!("{:016x}{:08x}@hotline", random_u64(), id.0);
        let branch = new_branch(call, id.0);
        let local_uri = format!("sip:{}@{local}", sanitize_user(caller));
        let dialog = Dialog::uac(call_id.clone(), &local_uri, tag(call, id.0), uri);
        let mut invite = Message::request(Method::Invite, uri.to_string());
        invite
            .push(
                Name::Via,
                format!(
                    "SIP/2.0/{} {local};branch={branch};rport",
                    peer.transport_name()
                ),
            )
            .push(Name::MaxForwards, max_forwards.to_string())
            .push(Name::From, dialog.local_addr().to_string())
            .push(Name::To, dialog.remote_addr().to_string())
            .push(Name::CallId, call_id)
            .push(Name::CSeq, "1 INVITE")
            .push(Name::Contact, format!("<sip:hotline@{local}>"))
            .push(Name::Allow, ALLOW);
        (invite, dialog, branch)
    }

    // ── What the call reads ──────────────────────────────────────────────

    pub fn state(&self) -> LegState {
        self.state
    }

    pub fn is_answered(&self) -> bool {
        self.state == LegState::Answered
    }

    /// The caller's INVITE, or ours.
    pub fn invite(&self) -> &Message {
        &self.invite
    }

    /// The target of a leg we placed.
    pub fn target(&self) -> Option<&Target> {
        match &self.invite_tx {
            Invite::Uac(u) => Some(&u.target),
            Invite::Uas { .. } => None,
        }
    }

    /// The seat a placed leg rings or talks to.
    pub fn seat(&self) -> Option<&str> {
        match self.target() {
            Some(Target::Seat { id }) => Some(id),
            _ => None,
        }
    }

    /// Whether a provisional response arrived for our INVITE (or we sent
    /// one to the caller).
    pub fn is_early(&self) -> bool {
        matches!(self.state, LegState::Setup { early: true })
    }

    /// Whether we gave this placed leg up.
    pub fn is_abandoned(&self) -> bool {
        matches!(&self.invite_tx, Invite::Uac(u) if u.abandoned)
    }

    /// The addresses (and ports) the far end sends from: its peer, and
    /// for a placed leg the address its responses came from.
    pub fn far_ends(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        let latched = match &self.invite_tx {
            Invite::Uac(u) => u.latched,
            Invite::Uas { .. } => None,
        };
        std::iter::once(self.peer.addr).chain(latched)
    }

    /// Whether a request for this leg's Call-ID really is in its dialog:
    /// the caller's INVITE, its ACK and CANCEL by branch (they carry no
    /// tag of ours yet), anything else by both tags (§12.2.2).
    pub fn matches(&self, msg: &Message) -> bool {
        let Some(method) = msg.method() else {
            return false;
        };
        let branch = msg.branch().unwrap_or_default().to_string();
        if matches!(self.invite_tx, Invite::Uas { .. })
            && branch == self.branch
            && matches!(method, Method::Invite | Method::Ack | Method::Cancel)
        {
            return true;
        }
        self.dialog.has_tags_of(msg)
    }

    /// Nothing more will happen on this leg: its INVITE and every
    /// transaction in it have ended.
    pub fn is_done(&self) -> bool {
        let invite_done = match &self.invite_tx {
            Invite::Uas { tx, .. } => tx.is_terminated(),
            Invite::Uac(u) => u.tx.is_terminated() || u.given_up,
        };
        invite_done
            && self.servers.iter().all(|s| s.is_terminated())
            && self.clients.iter().all(|c| c.is_terminated())
    }

    /// What the leg leaves for a finished call's remains: a rule for each
    /// transaction that only waits out a linger timer, or `None` while any
    /// of them still acts on its own (retransmits, awaits an answer or an
    /// ACK), or while a re-INVITE of ours lingers (its ACKs are not kept).
    pub fn remains(&self) -> Option<LegRemains> {
        let mut rules = Vec::new();
        let leg_peer = self.peer;
        let rule = |branch: &str, method: Method, reply: Reply, peer: Peer, until: Instant| Rule {
            branch: branch.into(),
            method: TxMethod::of(&method),
            reply,
            peer: (peer != leg_peer).then(|| Box::new(peer)),
            until,
        };
        match &self.invite_tx {
            Invite::Uas { tx, .. } => match tx.linger() {
                Linger::Active => return None,
                Linger::Over => {}
                Linger::Absorbing(until) => {
                    let tag = Reply::CallerInvite(self.dialog.local_tag.as_str().into());
                    rules.push(rule(&self.branch, Method::Invite, tag, self.peer, until));
                }
            },
            Invite::Uac(u) if u.given_up => {}
            Invite::Uac(u) => match u.tx.linger() {
                Linger::Active => return None,
                Linger::Over => {}
                Linger::Absorbing(until) => {
                    let reply = match &u.ack {
                        Some(ack) => Reply::Ack(Box::new(Reack {
                            ack: compact(ack),
                            success: u.tx.state() == State::Accepted,
                            remote_tag: self.dialog.remote_tag.as_deref().map(Into::into),
                        })),
                        None => Reply::AbsorbResponse,
                    };
                    rules.push(rule(&self.branch, Method::Invite, reply, self.peer, until));
                }
            },
        }
        for s in &self.servers {
            let until = match s.linger() {
                Linger::Active => return None,
                Linger::Over => continue,
                Linger::Absorbing(until) => until,
            };
            let reply = match &s.tx {
                ServerTx::Invite(_) => Reply::AbsorbRequest,
                // Answered by the leg itself, always `200 OK` made from it.
                ServerTx::NonInvite(_) if s.method == Method::Bye => Reply::ByeOk,
                ServerTx::NonInvite(tx) => Reply::Resend(compact(tx.final_response()?)),
            };
            rules.push(rule(&s.branch, s.method.clone(), reply, s.peer, until));
        }
        for c in &self.clients {
            match &c.tx {
                ClientTx::NonInvite(tx) => match tx.linger() {
                    Linger::Active => return None,
                    Linger::Over => {}
                    Linger::Absorbing(until) => rules.push(rule(
                        &c.branch,
                        c.method.clone(),
                        Reply::AbsorbResponse,
                        c.peer,
                        until,
                    )),
                },
                ClientTx::Invite(tx) if tx.is_terminated() => {}
                ClientTx::Invite(_) => return None,
            }
        }
        Some(LegRemains {
            call_id: self.dialog.call_id.as_str().into(),
            peer: self.peer,
            rules: rules.into_boxed_slice(),
        })
    }

    pub fn deadline(&self) -> Option<Instant> {
        let mut d: Option<Instant> = None;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                d = Some(d.map_or(t, |d| d.min(t)));
            }
        };
        match &self.invite_tx {
            Invite::Uas { tx, .. } => consider(tx.deadline()),
            Invite::Uac(u) if !u.given_up => {
                consider(u.tx.deadline());
                if !u.tx.is_terminated() {
                    consider(u.cancel_deadline);
                }
                if self.state == (LegState::Setup { early: false }) && !u.abandoned {
                    consider(u.response_deadline);
                }
            }
            Invite::Uac(_) => {}
        }
        for s in &self.servers {
            consider(s.deadline());
        }
        for c in &self.clients {
            consider(c.deadline());
        }
        d
    }

    /// Bytes to send, in order.
    pub fn poll_transmit(&mut self) -> Option<(Peer, Bytes)> {
        self.transmit.pop_front()
    }

    /// What happened, in order.
    pub fn poll_event(&mut self) -> Option<LegEvent> {
        self.events.pop_front()
    }

    // ── What the call tells the leg ─────────────────────────────────────

    /// Answers the caller's INVITE (UAS). Above 100 the response carries
    /// our Contact and the INVITE's Record-Route (§12.1.1).
    pub fn respond(&mut self, code: u16, reason: &str, parts: Parts, now: Instant) {
        let Invite::Uas { tx, .. } = &mut self.invite_tx else {
            return;
        };
        let mut resp = self
            .invite
            .response(code, reason, Some(&self.dialog.local_tag));
        if code > 100 {
            resp.push(Name::Contact, format!("<sip:hotline@{}>", self.local));
            for rr in self.dialog.route_set() {
                resp.push(Name::RecordRoute, rr.clone());
            }
        }
        parts.apply(&mut resp);
        if let Some(Action::Transmit(bytes)) = tx.send_response(code, resp.encode(), now) {
            self.transmit.push_back((self.peer, bytes));
        }
        match code {
            101..=199 => {
                if let LegState::Setup { .. } = self.state {
                    self.state = LegState::Setup { early: true };
                }
            }
            200..=299 => self.state = LegState::Answered,
            300.. => {
                self.state = LegState::Ended;
                keep_response_fields(&mut self.invite);
            }
            _ => {}
        }
    }

    /// Gives up a placed leg that has not answered (§9.1): CANCEL once it
    /// has sent a provisional (held until then); a late 2xx is ACKed and
    /// hung up.
    pub fn cancel(&mut self, now: Instant) {
        let Invite::Uac(u) = &mut self.invite_tx else {
            return;
        };
        let LegState::Setup { early } = self.state else {
            return;
        };
        if u.abandoned {
            return;
        }
        u.abandoned = true;
        if early {
            self.send_cancel(now);
        } else {
            u.cancel_pending = true;
        }
    }

    /// Hangs up an answered leg (BYE, §15).
    pub fn hang_up(&mut self, now: Instant) {
        self.hang_up_with(Parts::default(), now);
    }

    /// Hangs up an answered leg with a BYE carrying `parts` (a `Reason`
    /// header, RFC 3326, saying why we ended the call).
    pub fn hang_up_with(&mut self, parts: Parts, now: Instant) {
        if self.state != LegState::Answered {
            return;
        }
        self.state = LegState::Ended;
        self.send_own(Method::Bye, parts, now);
    }

    /// Sends a request in the dialog for the call (a relayed INFO, a
    /// re-INVITE); its responses come back as [`LegEvent::Response`].
    pub fn request(&mut self, method: Method, parts: Parts, now: Instant) -> u32 {
        let n = self.dialog.next_cseq();
        let branch = new_branch(self.call, self.id.0);
        let mut m = self.dialog.request(
            method.clone(),
            n,
            &self.local,
            self.peer.transport_name(),
            &branch,
        );
        parts.apply(&mut m);
        let bytes = m.encode();
        self.transmit.push_back((self.peer, bytes.clone()));
        let key = self.key();
        let tx = match method {
            Method::Invite => ClientTx::Invite(ClientInvite::new(
                bytes,
                reliability(self.peer),
                self.timers,
                now,
            )),
            _ => ClientTx::NonInvite(ClientNonInvite::new(
                bytes,
                reliability(self.peer),
                self.timers,
                now,
            )),
        };
        self.clients.push(Client {
            key,
            peer: self.peer,
            branch,
            request: (method == Method::Invite).then_some(m),
            method,
            tx,
            purpose: Purpose::Call,
        });
        key
    }

    /// Answers the in-dialog request `tx` ([`LegEvent::Request`]); a 2xx
    /// carries our Contact.
    pub fn reply(&mut self, tx: u32, code: u16, reason: &str, parts: Parts, now: Instant) {
        let local = self.local.clone();
        let Some(s) = self.servers.iter_mut().find(|s| s.key == tx) else {
            return;
        };
        let mut resp = s.request.response(code, reason, None);
        if (200..300).contains(&code) {
            resp.push(Name::Contact, format!("<sip:hotline@{local}>"));
        }
        parts.apply(&mut resp);
        let peer = s.peer;
        if let Some(Action::Transmit(bytes)) = s.send_response(code, resp.encode(), now) {
            self.transmit.push_back((peer, bytes));
        }
    }

    /// The method and CSeq of the in-dialog request `tx`, while it is open.
    pub fn request_cseq(&self, tx: u32) -> Option<u32> {
        self.servers
            .iter()
            .find(|s| s.key == tx)
            .and_then(|s| s.request.cseq().map(|c| c.0))
    }

    /// The call is over: a re-INVITE still waiting for our answer gets
    /// `487` (§15.1.2), another request `481`, and our own pending
    /// re-INVITEs are let go.
    pub fn close_pending(&mut self, now: Instant) {
        for s in &mut self.servers {
            // A relayed request still waiting for the other leg's answer
            // is answered here: it will not come (the call is over).
            let (code, reason) = match &s.tx {
                ServerTx::Invite(tx) if tx.state() == State::Proceeding => {
                    (487, "Request Terminated")
                }
                ServerTx::NonInvite(tx)
                    if matches!(tx.state(), State::Trying | State::Proceeding) =>
                {
                    (481, "Call/Transaction Does Not Exist")
                }
                _ => continue,
            };
            let resp = s.request.response(code, reason, None).encode();
            if let Some(Action::Transmit(bytes)) = s.send_response(code, resp, now) {
                self.transmit.push_back((s.peer, bytes));
            }
        }
        self.clients.retain(|c| {
            !(matches!(c.tx, ClientTx::Invite(_)) && c.purpose == Purpose::Call)
                || c.is_terminated()
        });
        keep_response_fields(&mut self.invite);
    }

    /// Abandons whatever is still open (the call's linger cap ran out).
    pub fn abandon(&mut self) {
        if let Invite::Uac(u) = &mut self.invite_tx {
            u.given_up = true;
        }
        self.state = LegState::Ended;
        self.servers.clear();
        self.clients.clear();
    }

    // ── Inputs from the network and the clock ────────────────────────────

    /// A message in this leg's dialog (its Call-ID, matched by the call)
    /// from `peer`.
    pub fn on_message(&mut self, msg: Message, peer: Peer, now: Instant) {
        if msg.is_request() {
            self.on_request(msg, peer, now);
        } else {
            self.on_response(msg, peer, now);
        }
    }

    pub fn on_timer(&mut self, now: Instant) {
        match &mut self.invite_tx {
            Invite::Uas { tx, .. } => match tx.on_timer(now) {
                Some(Action::Transmit(bytes)) => self.transmit.push_back((self.peer, bytes)),
                // Still answered: the call ends the session with a BYE
                // (§13.3.1.4).
                Some(Action::AckTimeout) if self.state == LegState::Answered => {
                    self.events.push_back(LegEvent::AckTimeout);
                }
                _ => {}
            },
            Invite::Uac(u) => {
                match u.tx.on_timer(now) {
                    Some(Action::Transmit(bytes)) => self.transmit.push_back((self.peer, bytes)),
                    // Timer B: the target never answered at all (§17.1.1.2).
                    Some(Action::Timeout) | Some(Action::TransportError) => {
                        self.fail(408, "Request Timeout");
                    }
                    _ => {}
                }
                let Invite::Uac(u) = &mut self.invite_tx else {
                    unreachable!()
                };
                if u.cancel_deadline.is_some_and(|d| now >= d) && !u.tx.is_terminated() {
                    tracing::info!(
                        call = self.call,
                        leg = self.id.0,
                        "no final response to our CANCEL; giving up on the leg"
                    );
                    u.given_up = true;
                    u.cancel_deadline = None;
                    self.state = LegState::Ended;
                }
                if self.state == (LegState::Setup { early: false })
                    && !u.abandoned
                    && u.response_deadline.is_some_and(|d| now >= d)
                {
                    // Nothing at all, not even 100 Trying: the phone or trunk
                    // is gone.
                    u.response_deadline = None;
                    self.events.push_back(LegEvent::Silent);
                }
            }
        }
        for i in 0..self.servers.len() {
            let peer = self.servers[i].peer;
            if let Some(Action::Transmit(bytes)) = self.servers[i].on_timer(now) {
                self.transmit.push_back((peer, bytes));
            }
        }
        for i in 0..self.clients.len() {
            let peer = self.clients[i].peer;
            match self.clients[i].on_timer(now) {
                Some(Action::Transmit(bytes)) => self.transmit.push_back((peer, bytes)),
                Some(Action::Timeout) | Some(Action::TransportError) => {
                    self.client_failed(i, 408, "Request Timeout");
                }
                _ => {}
            }
        }
        self.gc();
    }

    /// Sending to `peer` failed at the transport (§8.1.3.1, §17.1.4,
    /// §17.2.4): what goes there fails at once.
    pub fn on_transport_error(&mut self, peer: Peer, now: Instant) {
        for i in 0..self.clients.len() {
            if self.clients[i].peer == peer && !self.clients[i].is_terminated() {
                self.clients[i].on_transport_error(now);
                self.client_failed(i, 503, "Service Unavailable (the far end is unreachable)");
            }
        }
        for s in self.servers.iter_mut().filter(|s| s.peer == peer) {
            s.on_transport_error(now);
        }
        if self.peer != peer {
            self.gc();
            return;
        }
        match &mut self.invite_tx {
            Invite::Uac(u) => {
                let answered = self.state == LegState::Answered;
                if u.tx.on_transport_error(now).is_some() && !answered {
                    self.fail(503, "Service Unavailable (target unreachable)");
                }
            }
            Invite::Uas { tx, .. } => {
                if tx.on_transport_error(now).is_some() {
                    self.events.push_back(LegEvent::Unreachable);
                }
            }
        }
        self.gc();
    }

    /// An ICMP error says nothing listens at `addr` (§18.4) for some
    /// datagram sent there — which one is not known, and an ICMP error is
    /// easily forged. So only what still waits for its first answer fails:
    /// our INVITE before even a `100`, a request with no response yet.
    pub fn on_unreachable(&mut self, addr: SocketAddr, now: Instant) {
        for i in 0..self.clients.len() {
            let c = &self.clients[i];
            if c.peer.addr == addr
                && !c.peer.is_reliable()
                && matches!(c.state(), State::Calling | State::Trying)
            {
                self.clients[i].on_transport_error(now);
                self.client_failed(i, 503, "Service Unavailable (the far end is unreachable)");
            }
        }
        if let Invite::Uac(u) = &mut self.invite_tx
            && self.peer.addr == addr
            && !self.peer.is_reliable()
            && self.state == (LegState::Setup { early: false })
            && !u.tx.is_terminated()
            && u.tx.on_transport_error(now).is_some()
        {
            tracing::info!(call = self.call, to = %addr, "target unreachable (ICMP)");
            self.fail(503, "Service Unavailable (target unreachable)");
        }
        self.gc();
    }

    // ── Requests from the far end ────────────────────────────────────────

    fn on_request(&mut self, msg: Message, peer: Peer, now: Instant) {
        let Some(method) = msg.method().cloned() else {
            return;
        };
        let branch = msg.branch().unwrap_or_default().to_string();
        if let Invite::Uas { tx, cseq } = &mut self.invite_tx {
            let initial = branch == self.branch;
            match method {
                Method::Invite if initial => {
                    // A retransmitted initial INVITE.
                    if let Some(Action::Transmit(bytes)) = tx.on_request(now) {
                        self.transmit.push_back((self.peer, bytes));
                    }
                    return;
                }
                Method::Ack if initial => {
                    tx.on_ack(now); // ACK of a non-2xx final
                    return;
                }
                Method::Ack if msg.cseq().is_some_and(|c| c.0 == *cseq) => {
                    tx.on_ack_2xx(now);
                    return;
                }
                Method::Cancel if initial => {
                    // §9.2: the 200 carries the To tag the 487 will carry.
                    let ok = msg
                        .response(200, "OK", Some(&self.dialog.local_tag))
                        .encode();
                    self.transmit.push_back((peer, ok));
                    if let LegState::Setup { .. } = self.state {
                        self.events.push_back(LegEvent::Cancelled);
                    }
                    return;
                }
                _ => {}
            }
        }
        match method {
            Method::Ack => {
                self.on_ack(&msg, now);
                return;
            }
            Method::Cancel => {
                // §9.2: a CANCEL matching no INVITE transaction.
                let resp = msg.response(481, "Call/Transaction Does Not Exist", None);
                self.transmit.push_back((peer, resp.encode()));
                return;
            }
            _ => {}
        }
        // Retransmission of a request we already have a transaction for.
        if let Some(s) = self
            .servers
            .iter_mut()
            .find(|s| s.branch == branch && s.method == method)
        {
            if let Some(Action::Transmit(bytes)) = s.on_request(now) {
                self.transmit.push_back((peer, bytes));
            }
            return;
        }
        // §12.2.2: a new request's CSeq must exceed the last one the far
        // end used in this dialog.
        let cseq = msg.cseq().map_or(0, |c| c.0);
        if !self.dialog.accept_remote_cseq(cseq) {
            let resp = msg.response(500, "Server Internal Error (CSeq out of order)", None);
            self.transmit.push_back((peer, resp.encode()));
            return;
        }
        let tx = match method {
            Method::Invite => {
                ServerTx::Invite(ServerInvite::new(reliability(peer), self.timers, now))
            }
            _ => ServerTx::NonInvite(ServerNonInvite::new(reliability(peer), self.timers, now)),
        };
        let key = self.key();
        self.servers.push(Server {
            key,
            peer,
            branch,
            method: method.clone(),
            request: msg.clone(),
            tx,
        });
        if method == Method::Invite {
            let trying = msg.response(100, "Trying", None);
            self.reply_raw(key, 100, trying, now);
        }
        if method == Method::Bye {
            let ok = msg.response(200, "OK", None);
            self.reply_raw(key, 200, ok, now);
            self.on_bye(now);
            return;
        }
        self.events.push_back(LegEvent::Request { tx: key, msg });
    }

    fn reply_raw(&mut self, key: u32, code: u16, resp: Message, now: Instant) {
        if let Some(s) = self.servers.iter_mut().find(|s| s.key == key) {
            let peer = s.peer;
            if let Some(Action::Transmit(bytes)) = s.send_response(code, resp.encode(), now) {
                self.transmit.push_back((peer, bytes));
            }
        }
    }

    /// A BYE, answered `200` already.
    fn on_bye(&mut self, now: Instant) {
        tracing::debug!(call = self.call, leg = self.id.0, "hang-up");
        match (&mut self.invite_tx, self.state) {
            (_, LegState::Answered) => {
                self.state = LegState::Ended;
                self.events.push_back(LegEvent::HungUp);
            }
            // The caller hangs up while the call is set up (§15.1.2): the
            // same as a CANCEL.
            (Invite::Uas { .. }, LegState::Setup { .. }) => {
                self.events.push_back(LegEvent::Cancelled);
            }
            // An early-dialog BYE from a target (§15: a callee must not
            // send one): a refusal. Its INVITE is cancelled so it ends.
            (Invite::Uac(u), LegState::Setup { .. }) => {
                let abandoned = u.abandoned;
                self.cancel(now);
                if !abandoned {
                    self.state = LegState::Ended;
                    self.events.push_back(LegEvent::Failed {
                        code: 480,
                        reason: "Temporarily Unavailable".into(),
                    });
                }
            }
            (_, LegState::Ended) => {}
        }
    }

    /// An ACK other than the initial INVITE's: for our 2xx to a
    /// re-INVITE.
    fn on_ack(&mut self, msg: &Message, now: Instant) {
        let cseq = msg.cseq().map(|c| c.0);
        let mut ours = false;
        for s in &mut self.servers {
            if s.method == Method::Invite
                && s.request.cseq().map(|c| c.0) == cseq
                && let ServerTx::Invite(tx) = &mut s.tx
            {
                tx.on_ack_2xx(now);
                tx.on_ack(now);
                ours = true;
            }
        }
        if ours || cseq.is_some() {
            self.events.push_back(LegEvent::Ack { msg: msg.clone() });
        }
    }

    // ── Responses to our requests ────────────────────────────────────────

    fn on_response(&mut self, msg: Message, peer: Peer, now: Instant) {
        let Some(code) = msg.code() else { return };
        let branch = msg.branch().unwrap_or_default().to_string();
        let method = msg.cseq().map(|c| c.1);
        if method == Some(Method::Invite) && branch == self.branch {
            if let Invite::Uac(u) = &mut self.invite_tx
                && peer.addr != self.peer.addr
                && u.latched.is_none()
            {
                // The far end answers our INVITE from another port: its
                // in-dialog requests will come from there.
                u.latched = Some(peer.addr);
            }
            self.on_invite_response(msg, code, now);
            return;
        }
        let Some(i) = self
            .clients
            .iter()
            .position(|c| c.branch == branch && Some(&c.method) == method.as_ref())
        else {
            return;
        };
        let action = self.clients[i].on_response(code, now);
        let delivered = matches!(action, Some(Action::Deliver) | Some(Action::DeliverAndAck));
        if matches!(action, Some(Action::SendAck) | Some(Action::DeliverAndAck))
            && let Some(request) = &self.clients[i].request
        {
            // Non-2xx to a re-INVITE: ACK it hop by hop.
            let ack = ack_for_failure(request, &msg);
            self.transmit
                .push_back((self.clients[i].peer, ack.encode()));
        }
        if (200..300).contains(&code) && self.clients[i].method == Method::Invite {
            // 2xx to a re-INVITE: ACK it ourselves (§13.2.2.4).
            let cseq = self.clients[i]
                .request
                .as_ref()
                .and_then(|r| r.cseq())
                .map_or(1, |c| c.0);
            let ack = self.dialog.request(
                Method::Ack,
                cseq,
                &self.local,
                self.peer.transport_name(),
                &new_branch(self.call, self.id.0),
            );
            self.transmit.push_back((self.peer, ack.encode()));
        }
        if delivered && code > 100 && self.clients[i].purpose == Purpose::Call {
            let tx = self.clients[i].key;
            self.events.push_back(LegEvent::Response {
                tx,
                code,
                reason: reason_of(&msg),
                msg: Some(msg),
            });
        }
        self.gc();
    }

    fn on_invite_response(&mut self, msg: Message, code: u16, now: Instant) {
        let Invite::Uac(u) = &mut self.invite_tx else {
            return;
        };
        let action = u.tx.on_response(code, now);
        if matches!(action, Some(Action::SendAck) | Some(Action::DeliverAndAck)) {
            let ack = ack_for_failure(&self.invite, &msg).encode();
            u.ack = Some(ack.clone());
            self.transmit.push_back((self.peer, ack));
        }
        u.response_deadline = None;
        let delivered = matches!(action, Some(Action::Deliver) | Some(Action::DeliverAndAck));
        if (100..200).contains(&code) {
            if !delivered {
                return;
            }
            if let LegState::Setup { .. } = self.state {
                self.state = LegState::Setup { early: true };
            }
            self.dialog.learn_early(&msg);
            let Invite::Uac(u) = &mut self.invite_tx else {
                return;
            };
            if u.cancel_pending {
                self.send_cancel(now);
                return;
            }
            if code > 100 && !u.abandoned {
                self.events.push_back(LegEvent::Progress { code, msg });
            }
        } else if (200..300).contains(&code) {
            let Invite::Uac(u) = &mut self.invite_tx else {
                return;
            };
            let answered = u.confirmed;
            // A second dialog from a forking far end (§13.2.2.4): ACK it
            // and hang it up; the leg stays on the first.
            if answered && self.dialog.is_other_dialog(&msg) {
                tracing::info!(
                    call = self.call,
                    "second answer from a forking far end; hanging it up"
                );
                let fork = self.dialog.fork(&msg);
                let transport = self.peer.transport_name();
                let ack_branch = new_branch(self.call, self.id.0);
                let ack = fork.request(Method::Ack, 1, &self.local, transport, &ack_branch);
                self.transmit.push_back((self.peer, ack.encode()));
                let bye_branch = new_branch(self.call, self.id.0);
                let bye = fork.request(Method::Bye, 2, &self.local, transport, &bye_branch);
                self.push_own(Method::Bye, bye, bye_branch, now);
                return;
            }
            // Learn the dialog from the first 2xx (§12.1.2); a
            // retransmitted one is ACKed again (RFC 6026 §7.2).
            if !answered {
                self.dialog.learn(&msg);
            }
            let ack = self
                .dialog
                .request(
                    Method::Ack,
                    1,
                    &self.local,
                    self.peer.transport_name(),
                    &new_branch(self.call, self.id.0),
                )
                .encode();
            self.transmit.push_back((self.peer, ack.clone()));
            let Invite::Uac(u) = &mut self.invite_tx else {
                return;
            };
            u.ack = Some(ack);
            if answered {
                return;
            }
            u.confirmed = true;
            if u.abandoned {
                // Answered after we gave up on it (§9.1 race): hang up.
                self.state = LegState::Answered;
                self.hang_up(now);
                return;
            }
            self.state = LegState::Answered;
            keep_response_fields(&mut self.invite);
            self.events.push_back(LegEvent::Answered { msg });
        } else if delivered {
            let reason = reason_of(&msg);
            self.fail(code, &reason);
        }
    }

    /// Our INVITE ended without an answer.
    fn fail(&mut self, code: u16, reason: &str) {
        if !matches!(self.state, LegState::Setup { .. }) {
            return;
        }
        self.state = LegState::Ended;
        keep_response_fields(&mut self.invite);
        self.events.push_back(LegEvent::Failed {
            code,
            reason: reason.to_string(),
        });
    }

    fn client_failed(&mut self, i: usize, code: u16, reason: &str) {
        if self.clients[i].purpose == Purpose::Call {
            let tx = self.clients[i].key;
            self.events.push_back(LegEvent::Response {
                tx,
                code,
                reason: reason.to_string(),
                msg: None,
            });
        }
    }

    // ── Our own requests ─────────────────────────────────────────────────

    /// The CANCEL for our INVITE (§9.1): the INVITE's Request-URI, Call-ID,
    /// From, To, Via (so its branch) and CSeq number.
    fn send_cancel(&mut self, now: Instant) {
        let Invite::Uac(u) = &mut self.invite_tx else {
            return;
        };
        u.cancel_pending = false;
        u.cancel_deadline = Some(now + self.timers.timeout());
        let uri = match &self.invite.start {
            StartLine::Request { uri, .. } => uri.to_string(),
            StartLine::Response { .. } => "sip:invalid".to_string(),
        };
        let mut cancel = Message::request(Method::Cancel, uri);
        for h in &self.invite.headers {
            if matches!(
                h.name,
                Name::Via | Name::From | Name::To | Name::CallId | Name::MaxForwards
            ) {
                cancel.headers.push(h.clone());
            }
        }
        cancel.push(Name::CSeq, "1 CANCEL");
        let branch = self.branch.clone();
        self.push_own(Method::Cancel, cancel, branch, now);
    }

    /// A request of the leg's own in its dialog (BYE).
    fn send_own(&mut self, method: Method, parts: Parts, now: Instant) {
        let n = self.dialog.next_cseq();
        let branch = new_branch(self.call, self.id.0);
        let mut m = self.dialog.request(
            method.clone(),
            n,
            &self.local,
            self.peer.transport_name(),
            &branch,
        );
        parts.apply(&mut m);
        self.push_own(method, m, branch, now);
    }

    fn push_own(&mut self, method: Method, m: Message, branch: String, now: Instant) {
        let bytes = m.encode();
        self.transmit.push_back((self.peer, bytes.clone()));
        let key = self.key();
        self.clients.push(Client {
            key,
            peer: self.peer,
            branch,
            method,
            request: None,
            tx: ClientTx::NonInvite(ClientNonInvite::new(
                bytes,
                reliability(self.peer),
                self.timers,
                now,
            )),
            purpose: Purpose::Own,
        });
    }

    fn key(&mut self) -> u32 {
        self.next_key += 1;
        self.next_key
    }

    fn gc(&mut self) {
        self.servers.retain(|s| !s.is_terminated());
        self.clients.retain(|c| !c.is_terminated());
    }
}

impl Server {
    fn linger(&self) -> Linger {
        match &self.tx {
            ServerTx::Invite(t) => t.linger(),
            ServerTx::NonInvite(t) => t.linger(),
        }
    }

    fn on_transport_error(&mut self, now: Instant) {
        let _ = match &mut self.tx {
            ServerTx::Invite(t) => t.on_transport_error(now),
            ServerTx::NonInvite(t) => t.on_transport_error(now),
        };
    }

    fn is_terminated(&self) -> bool {
        match &self.tx {
            ServerTx::Invite(t) => t.is_terminated(),
            ServerTx::NonInvite(t) => t.is_terminated(),
        }
    }

    fn deadline(&self) -> Option<Instant> {
        match &self.tx {
            ServerTx::Invite(t) => t.deadline(),
            ServerTx::NonInvite(t) => t.deadline(),
        }
    }

    fn on_timer(&mut self, now: Instant) -> Option<Action> {
        match &mut self.tx {
            ServerTx::Invite(t) => t.on_timer(now),
            ServerTx::NonInvite(t) => t.on_timer(now),
        }
    }

    fn on_request(&mut self, now: Instant) -> Option<Action> {
        match &mut self.tx {
            ServerTx::Invite(t) => t.on_request(now),
            ServerTx::NonInvite(t) => t.on_request(now),
        }
    }

    fn send_response(&mut self, code: u16, bytes: Bytes, now: Instant) -> Option<Action> {
        if code >= 200 {
            // Answered: retransmissions reuse the bytes; a late ACK needs
            // only the fields a response copies.
            keep_response_fields(&mut self.request);
        }
        match &mut self.tx {
            ServerTx::Invite(t) => t.send_response(code, bytes, now),
            ServerTx::NonInvite(t) => t.send_response(code, bytes, now),
        }
    }
}

impl Client {
    fn state(&self) -> State {
        match &self.tx {
            ClientTx::Invite(t) => t.state(),
            ClientTx::NonInvite(t) => t.state(),
        }
    }

    fn on_transport_error(&mut self, now: Instant) {
        let _ = match &mut self.tx {
            ClientTx::Invite(t) => t.on_transport_error(now),
            ClientTx::NonInvite(t) => t.on_transport_error(now),
        };
    }

    fn is_terminated(&self) -> bool {
        match &self.tx {
            ClientTx::Invite(t) => t.is_terminated(),
            ClientTx::NonInvite(t) => t.is_terminated(),
        }
    }

    fn deadline(&self) -> Option<Instant> {
        match &self.tx {
            ClientTx::Invite(t) => t.deadline(),
            ClientTx::NonInvite(t) => t.deadline(),
        }
    }

    fn on_timer(&mut self, now: Instant) -> Option<Action> {
        match &mut self.tx {
            ClientTx::Invite(t) => t.on_timer(now),
            ClientTx::NonInvite(t) => t.on_timer(now),
        }
    }

    fn on_response(&mut self, code: u16, now: Instant) -> Option<Action> {
        match &mut self.tx {
            ClientTx::Invite(t) => t.on_response(code, now),
            ClientTx::NonInvite(t) => t.on_response(code, now),
        }
    }
}

/// Methods we take part in; sent in Allow (and with 405).
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, REGISTER";

/// Strips a request down to what [`Message::response`] copies (§8.2.6.2),
/// and what a CANCEL or an ACK of ours repeats from our INVITE
/// (Max-Forwards, Route: §9.1, §17.1.1.3), releasing its body and the
/// datagram it was parsed from.
pub fn keep_response_fields(msg: &mut Message) {
    msg.headers.retain(|h| {
        matches!(
            h.name,
            Name::Via
                | Name::From
                | Name::To
                | Name::CallId
                | Name::CSeq
                | Name::MaxForwards
                | Name::Route
        )
    });
    for h in &mut msg.headers {
        h.value = bytesstr::BytesStr::from(h.value.as_str().to_owned());
    }
    msg.headers.shrink_to_fit();
    msg.body = Bytes::new();
}

/// The ACK for a non-2xx final response (§17.1.1.3): same branch, Call-ID,
/// From and Request-URI as the INVITE, To from the response, CSeq ACK.
pub fn ack_for_failure(invite: &Message, response: &Message) -> Message {
    let uri = match &invite.start {
        StartLine::Request { uri, .. } => uri.clone(),
        StartLine::Response { .. } => "sip:invalid".into(),
    };
    let mut ack = Message::request(Method::Ack, uri);
    if let Some(via) = invite.header(&Name::Via) {
        ack.push(Name::Via, via.clone());
    }
    for name in [Name::MaxForwards, Name::From, Name::CallId] {
        if let Some(v) = invite.header(&name) {
            ack.push(name, v.clone());
        }
    }
    if let Some(to) = response.header(&Name::To) {
        ack.push(Name::To, to.clone());
    }
    for r in invite.headers_named(&Name::Route) {
        ack.push(Name::Route, r.clone());
    }
    let n = invite.cseq().map_or(1, |c| c.0);
    ack.push(Name::CSeq, format!("{n} ACK"));
    ack
}

pub fn reason_of(msg: &Message) -> String {
    match &msg.start {
        StartLine::Response { reason, .. } => reason.to_string(),
        StartLine::Request { .. } => String::new(),
    }
}

/// Keeps a caller number safe to put in a SIP URI user part.
fn sanitize_user(user: &str) -> String {
    let clean: String = user
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "+-.*#".contains(*c))
        .collect();
    if clean.is_empty() {
        "anonymous".to_string()
    } else {
        clean
    }
}

fn tag(call: u64, n: u32) -> String {
    format!("{call:x}{n:x}{:016x}", random_u64())
}

fn new_branch(call: u64, n: u32) -> String {
    format!("z9hG4bK{call:x}.{n}.{:016x}", random_u64())
}

pub fn random_u64() -> u64 {
    (u64::from(random_u32()) << 32) | u64::from(random_u32())
}

/// Tags, branches and our Call-IDs carry 64 random bits (RFC 3261 §19.3
/// asks for 32): in-dialog requests are accepted only with the right tags,
/// so the tags are what keeps a stranger from hanging up a call. A failing
/// system RNG falls back to the clock.
pub fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    random_bytes(&mut b);
    u32::from_le_bytes(b)
}

/// Random bytes from the system's generator, drawn 256 at a time into a
/// per-thread pool: a call needs a dozen tags and branches, and one
/// `getrandom` system call each showed in the load profile.
fn random_bytes(out: &mut [u8]) {
    use std::cell::RefCell;
    thread_local! {
        static POOL: RefCell<([u8; 256], usize)> = const { RefCell::new(([0; 256], 256)) };
    }
    POOL.with(|pool| {
        let (buf, used) = &mut *pool.borrow_mut();
        for byte in out.iter_mut() {
            if *used == buf.len() {
                if getrandom::fill(buf).is_err() {
                    // No system generator: the clock still keeps values
                    // unique, though no longer unguessable.
                    let nanos = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_nanos());
                    for (i, b) in buf.iter_mut().enumerate() {
                        *b = (nanos >> ((i % 16) * 8)) as u8 ^ i as u8;
                    }
                }
                *used = 0;
            }
            *byte = buf[*used];
            *used += 1;
        }
    });
}
