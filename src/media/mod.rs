//! Media: the gateway owns the audio of every call it anchors.
//!
//! Pure pieces, each tested on its own with time as an input:
//! [`g711`] (PCMU/PCMA through a kept codec crate), [`sdp`] (offer/answer,
//! RFC 3264), [`prompt`] (WAV prompts, sequences and 20 ms pacing),
//! [`dtmf`] (RFC 4733 events, SIP INFO, the digit collector), [`mixer`]
//! (three-party conference frames), [`recorder`] (WAV recording) and
//! [`quiet`] (when a caller has stopped speaking). The
//! sockets live in [`rtp`]: one UDP port per leg, relaying with rewritten
//! SSRC/sequence/timestamp, symmetric RTP and media time-outs.

pub mod batch;
pub mod dtmf;
pub mod g711;
pub mod mixer;
pub mod prompt;
pub mod publication;
pub mod quiet;
pub mod recorder;
pub mod rtp;
pub mod sdp;
pub mod session;
