//! One SIP dialog (RFC 3261 §12): the state two user agents share for the
//! life of a call leg — Call-ID, both tags, the far end's target and route
//! set, and both CSeq sequences — and the one place requests inside it are
//! built and matched.
//!
//! Every leg of a call has exactly one, whether we are its UAS (a caller's
//! INVITE) or its UAC (a seat, a trunk, later a callback): building a BYE,
//! an ACK or a relayed re-INVITE is the same code for all of them. Pure
//! data, no transport: the caller of [`Dialog::request`] names the
//! transport for the Via.

use super::message::{Message, Method, Name, NameAddr};

#[derive(Clone, Debug)]
pub struct Dialog {
    pub call_id: String,
    /// Our tag: in To when we are the UAS, in From when the UAC.
    pub local_tag: String,
    /// The far end's tag, once known (a UAC learns it from a response).
    pub remote_tag: Option<String>,
    /// What we send as From: our URI with our tag.
    local_addr: String,
    /// What we send as To: the far end's URI, with its tag once known.
    remote_addr: String,
    /// Where requests go: the far end's Contact (§12.1.1, §12.1.2).
    remote_target: String,
    /// Record-Route as our Route set, in the order requests carry it.
    route_set: Vec<String>,
    local_cseq: u32,
    /// The highest CSeq the far end has used (§12.2.2).
    remote_cseq: Option<u32>,
}

impl Dialog {
    /// The dialog an incoming INVITE opens, we its UAS (§12.1.1): our tag
    /// goes into the To we answer with. `fallback_target` is where requests
    /// go when the INVITE has no usable Contact (its source address).
    pub fn uas(invite: &Message, local_tag: String, fallback_target: String) -> Dialog {
        let header = |name: &Name| invite.header(name).map(|v| v.to_string());
        let to = header(&Name::To).unwrap_or_default();
        Dialog {
            call_id: invite.call_id().map(|c| c.to_string()).unwrap_or_default(),
            remote_tag: invite.from().and_then(|f| f.tag().map(str::to_string)),
            local_addr: format!("{to};tag={local_tag}"),
            local_tag,
            remote_addr: header(&Name::From).unwrap_or_default(),
            remote_target: contact_uri(invite).unwrap_or(fallback_target),
            // §12.1.1: the UAS keeps Record-Route in its order.
            route_set: invite
                .headers_named(&Name::RecordRoute)
                .map(|v| v.to_string())
                .collect(),
            local_cseq: 0,
            remote_cseq: invite.cseq().map(|c| c.0),
        }
    }

    /// The dialog of an INVITE we send to `remote_uri` from `local_uri`
    /// (§12.1.2); its CSeq 1 is the INVITE's.
    pub fn uac(call_id: String, local_uri: &str, local_tag: String, remote_uri: &str) -> Dialog {
        Dialog {
            call_id,
            local_addr: format!("<{local_uri}>;tag={local_tag}"),
            local_tag,
            remote_tag: None,
            remote_addr: format!("<{remote_uri}>"),
            remote_target: remote_uri.to_string(),
            route_set: Vec::new(),
            local_cseq: 1,
            remote_cseq: None,
        }
    }

    /// The From we send.
    pub fn local_addr(&self) -> &str {
        &self.local_addr
    }

    /// Record-Route as we keep it; a UAS echoes it in its responses
    /// (§12.1.1).
    pub fn route_set(&self) -> &[String] {
        &self.route_set
    }

    /// The To we send.
    pub fn remote_addr(&self) -> &str {
        &self.remote_addr
    }

    /// A provisional response to our INVITE: the early dialog's tag, so
    /// the far end's requests in it (an early BYE) are recognised (§12.1).
    pub fn learn_early(&mut self, resp: &Message) {
        if self.remote_tag.is_none() {
            self.remote_tag = resp.to().and_then(|t| t.tag().map(str::to_string));
        }
    }

    /// The 2xx that confirms the dialog (§12.1.2): the far end's tag, its
    /// Contact as the target, Record-Route reversed as the route set.
    pub fn learn(&mut self, resp: &Message) {
        if let Some(to) = resp.to()
            && let Some(t) = to.tag()
        {
            self.remote_tag = Some(t.to_string());
            self.remote_addr = resp
                .header(&Name::To)
                .map(|v| v.to_string())
                .unwrap_or_default();
        }
        if let Some(uri) = contact_uri(resp) {
            self.remote_target = uri;
        }
        let mut routes: Vec<String> = resp
            .headers_named(&Name::RecordRoute)
            .map(|v| v.to_string())
            .collect();
        routes.reverse();
        self.route_set = routes;
    }

    /// Another dialog that a forking far end opened with `resp` on our
    /// INVITE (§13.2.2.4): ours to ACK and hang up.
    pub fn fork(&self, resp: &Message) -> Dialog {
        let mut fork = self.clone();
        fork.remote_tag = None;
        fork.learn(resp);
        fork
    }

    /// Whether a 2xx belongs to another dialog than the one confirmed.
    pub fn is_other_dialog(&self, resp: &Message) -> bool {
        resp.to().and_then(|t| t.tag()) != self.remote_tag.as_deref()
    }

    /// The CSeq of our next request in the dialog.
    pub fn next_cseq(&mut self) -> u32 {
        self.local_cseq += 1;
        self.local_cseq
    }

    /// §12.2.2: a new request from the far end must carry a CSeq above
    /// the last; true (and remembered) when it does.
    pub fn accept_remote_cseq(&mut self, cseq: u32) -> bool {
        if self.remote_cseq.is_some_and(|last| cseq <= last) {
            return false;
        }
        self.remote_cseq = Some(cseq);
        true
    }

    /// Whether an in-dialog request carries this dialog's tags: ours in
    /// To and the far end's in From (§12.2.2). A Call-ID alone proves
    /// nothing.
    pub fn has_tags_of(&self, msg: &Message) -> bool {
        let to_tag = msg.to().and_then(|t| t.tag().map(str::to_string));
        let from_tag = msg.from().and_then(|f| f.tag().map(str::to_string));
        to_tag.as_deref() == Some(self.local_tag.as_str())
            && from_tag.is_some()
            && from_tag == self.remote_tag
    }

    /// A request in this dialog (§12.2.1.1), CSeq `cseq` (the INVITE's for
    /// an ACK, [`Dialog::next_cseq`] otherwise). `local` is our
    /// `host:port` for Via and Contact, `transport` the Via's (`UDP`).
    pub fn request(
        &self,
        method: Method,
        cseq: u32,
        local: &str,
        transport: &str,
        branch: &str,
    ) -> Message {
        let mut m = Message::request(method.clone(), self.remote_target.clone());
        m.push(
            Name::Via,
            format!("SIP/2.0/{transport} {local};branch={branch};rport"),
        )
        .push(Name::MaxForwards, "70")
        .push(Name::From, self.local_addr.clone())
        .push(Name::To, self.remote_addr.clone())
        .push(Name::CallId, self.call_id.clone());
        for r in &self.route_set {
            m.push(Name::Route, r.clone());
        }
        m.push(Name::CSeq, format!("{cseq} {method}"));
        if method != Method::Ack {
            m.push(Name::Contact, format!("<sip:hotline@{local}>"));
        }
        m
    }
}

/// The URI of a message's Contact, if it has a usable one.
fn contact_uri(msg: &Message) -> Option<String> {
    msg.header(&Name::Contact)
        .and_then(|c| NameAddr::parse(c).ok().map(|a| a.uri.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn parse(text: &str) -> Message {
        Message::parse(Bytes::from(text.replace('\n', "\r\n"))).unwrap()
    }

    fn invite() -> Message {
        parse(
            "INVITE sip:12345@gw SIP/2.0\n\
             Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKa\n\
             Record-Route: <sip:p1;lr>\n\
             Record-Route: <sip:p2;lr>\n\
             From: <sip:13800000000@carrier>;tag=caller\n\
             To: <sip:12345@gw>\n\
             Call-ID: abc\n\
             CSeq: 7 INVITE\n\
             Contact: <sip:13800000000@192.0.2.1:5062>\n\
             Content-Length: 0\n\n",
        )
    }

    #[test]
    fn a_uas_dialog_sends_to_the_callers_contact_through_its_route_set_in_order() {
        let d = Dialog::uas(&invite(), "ours".into(), "sip:192.0.2.1".into());
        let bye = d.request(Method::Bye, 1, "198.51.100.1:5060", "UDP", "z9hG4bKb");
        assert_eq!(
            bye.request_uri().map(|u| u.to_string()).as_deref(),
            Some("sip:13800000000@192.0.2.1:5062")
        );
        let routes: Vec<_> = bye
            .headers_named(&Name::Route)
            .map(|r| r.to_string())
            .collect();
        assert_eq!(routes, ["<sip:p1;lr>", "<sip:p2;lr>"]);
        assert_eq!(bye.from().and_then(|f| f.tag()), Some("ours"));
        assert_eq!(bye.to().and_then(|t| t.tag()), Some("caller"));
        assert_eq!(bye.cseq(), Some((1, Method::Bye)));
    }

    #[test]
    fn the_far_ends_cseq_must_grow_and_its_first_is_the_invites() {
        let mut d = Dialog::uas(&invite(), "ours".into(), "sip:x".into());
        assert!(!d.accept_remote_cseq(7));
        assert!(d.accept_remote_cseq(8));
        assert!(!d.accept_remote_cseq(8));
    }

    #[test]
    fn a_uac_dialog_learns_tag_target_and_reversed_route_set_from_the_2xx() {
        let mut d = Dialog::uac(
            "b@hotline".into(),
            "sip:138@gw",
            "t1".into(),
            "sip:8001@seat",
        );
        let ok = parse(
            "SIP/2.0 200 OK\n\
             Via: SIP/2.0/UDP gw;branch=z9hG4bKc\n\
             Record-Route: <sip:p1;lr>\n\
             Record-Route: <sip:p2;lr>\n\
             From: <sip:138@gw>;tag=t1\n\
             To: <sip:8001@seat>;tag=seat\n\
             Call-ID: b@hotline\n\
             CSeq: 1 INVITE\n\
             Contact: <sip:8001@10.0.0.5:5070>\n\
             Content-Length: 0\n\n",
        );
        d.learn(&ok);
        assert!(!d.is_other_dialog(&ok));
        let n = d.next_cseq();
        let bye = d.request(Method::Bye, n, "gw:5060", "TCP", "z9hG4bKd");
        assert_eq!(bye.cseq(), Some((2, Method::Bye)));
        assert_eq!(
            bye.request_uri().map(|u| u.to_string()).as_deref(),
            Some("sip:8001@10.0.0.5:5070")
        );
        let routes: Vec<_> = bye
            .headers_named(&Name::Route)
            .map(|r| r.to_string())
            .collect();
        assert_eq!(routes, ["<sip:p2;lr>", "<sip:p1;lr>"]);
        assert_eq!(bye.to().and_then(|t| t.tag()), Some("seat"));
        assert!(bye.top_via().is_some_and(|v| v.transport == "TCP"));
    }
}
