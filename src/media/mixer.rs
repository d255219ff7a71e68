//! The conference bridge of a three-way transfer (三方转接): a seat brings
//! an expert or another department onto the call while the citizen stays
//! on the line, and each of the three hears the other two.
//!
//! Shaped as a pure core like the rest of `media`: the RTP driver decodes
//! each party's packet and [`Mixer::push`]es the 20 ms frame, then on its
//! 20 ms tick calls [`Mixer::mix`] and encodes what each party hears. The
//! mixer owns no socket and no clock, so the tests below drive it with
//! synthetic tones and check every tick exactly.
//!
//! Each party hears the sum of everyone else, never its own voice (which
//! would come back as an echo). That sum is computed as "everyone minus
//! me" — one pass over the parties, not one per listener — in `i32`, where
//! it cannot overflow and the subtraction is exact, and only then clipped to
//! `i16`: loud parties saturate instead of wrapping round to a crack of
//! the opposite sign. The buffers are sized when a party joins, so a tick
//! allocates nothing.

use super::g711::SAMPLES_PER_FRAME;
use std::f64::consts::PI;
use std::fmt;

/// 20 ms of decoded linear audio at 8 kHz.
pub type Frame = [i16; SAMPLES_PER_FRAME];

const SILENCE: Frame = [0; SAMPLES_PER_FRAME];

/// Who is speaking in a conference: one per leg, chosen by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartyId(pub u32);

impl fmt::Display for PartyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MixerError {
    #[error("party {0} is already in the conference")]
    AlreadyJoined(PartyId),
    /// Audio or a leave for a party that is not (or no longer) connected;
    /// a packet racing a hang-up does this, so callers usually drop it.
    #[error("party {0} is not in the conference")]
    NotJoined(PartyId),
}

#[derive(Debug)]
struct Party {
    id: PartyId,
    /// What the party said this tick; silence until it pushes a frame.
    speaks: Frame,
    /// What the party heard at the last tick.
    hears: Frame,
}

/// Mixes the parties of one conference, 20 ms at a time.
#[derive(Debug)]
pub struct Mixer {
    parties: Vec<Party>,
    /// Everyone's voice summed, before any clipping.
    sum: [i32; SAMPLES_PER_FRAME],
    /// Everyone's voice summed and clipped: what a recording keeps.
    everyone: Frame,
}

impl Default for Mixer {
    fn default() -> Self {
        Mixer::new()
    }
}

impl Mixer {
    /// An empty conference with room for the three parties of a transfer.
    pub fn new() -> Self {
        Mixer::with_capacity(3)
    }

    /// An empty conference that takes `parties` without reallocating.
    pub fn with_capacity(parties: usize) -> Self {
        Mixer {
            parties: Vec::with_capacity(parties),
            sum: [0; SAMPLES_PER_FRAME],
            everyone: SILENCE,
        }
    }

    /// Connects a party. It hears the others from the next tick on, and
    /// they hear it once it pushes audio.
    pub fn join(&mut self, id: PartyId) -> Result<(), MixerError> {
        if self.contains(id) {
            return Err(MixerError::AlreadyJoined(id));
        }
        self.parties.push(Party {
            id,
            speaks: SILENCE,
            hears: SILENCE,
        });
        Ok(())
    }

    /// Disconnects a party; the others stay connected and keep hearing
    /// each other. Whatever it pushed this tick goes with it.
    pub fn leave(&mut self, id: PartyId) -> Result<(), MixerError> {
        let index = self.index_of(id).ok_or(MixerError::NotJoined(id))?;
        // `remove`, not `swap_remove`: the order of `mix`'s output stays
        // the order of joining, which keeps logs and tests predictable.
        self.parties.remove(index);
        Ok(())
    }

    pub fn contains(&self, id: PartyId) -> bool {
        self.index_of(id).is_some()
    }

    /// How many parties are connected.
    pub fn len(&self) -> usize {
        self.parties.len()
    }

    pub fn is_empty(&self) -> bool {
        self.parties.is_empty()
    }

    /// The connected parties, in the order they joined.
    pub fn parties(&self) -> impl Iterator<Item = PartyId> {
        self.parties.iter().map(|party| party.id)
    }

    /// Hands over a party's latest 20 ms of decoded audio for this tick. A
    /// second push before the tick replaces the first: pacing is the
    /// jitter buffer's job, and the mixer only ever plays the newest audio.
    pub fn push(&mut self, id: PartyId, frame: &Frame) -> Result<(), MixerError> {
        let index = self.index_of(id).ok_or(MixerError::NotJoined(id))?;
        self.parties[index].speaks = *frame;
        Ok(())
    }

    /// Ends the tick: works out what every party hears, then starts the
    /// next tick with everyone silent until they push again (a party whose
    /// packet was lost or late is heard as silence, not as a replay).
    ///
    /// Yields each party with its frame, in the order they joined.
    pub fn mix(&mut self) -> impl Iterator<Item = (PartyId, &Frame)> {
        self.sum = [0; SAMPLES_PER_FRAME];
        for party in &self.parties {
            for (sum, &sample) in self.sum.iter_mut().zip(&party.speaks) {
                *sum += i32::from(sample);
            }
        }
        for (everyone, &sum) in self.everyone.iter_mut().zip(&self.sum) {
            *everyone = saturate(sum);
        }
        for party in &mut self.parties {
            // Subtracting before clipping keeps the party's own voice out
            // exactly, however loud the others are.
            for ((hears, &sum), &own) in party.hears.iter_mut().zip(&self.sum).zip(&party.speaks) {
                *hears = saturate(sum - i32::from(own));
            }
            party.speaks = SILENCE;
        }
        self.parties.iter().map(|party| (party.id, &party.hears))
    }

    /// What `id` heard at the last [`Mixer::mix`].
    pub fn heard_by(&self, id: PartyId) -> Option<&Frame> {
        self.index_of(id).map(|index| &self.parties[index].hears)
    }

    /// Every party's voice at the last [`Mixer::mix`], summed and clipped:
    /// the mixed track a recording of the whole conference writes.
    pub fn recording_mix(&self) -> &Frame {
        &self.everyone
    }

    fn index_of(&self, id: PartyId) -> Option<usize> {
        // A conference holds a handful of parties: a linear scan beats hashing.
        self.parties.iter().position(|party| party.id == id)
    }
}

fn saturate(sample: i32) -> i16 {
    // The clamp makes the narrowing exact.
    sample.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
}

/// How strongly `freq_hz` sounds in `samples` (the Goertzel algorithm: one
/// bin of a DFT, without computing the others).
///
/// Normalised so that a steady tone of amplitude `A` gives about `A²` when
/// the block holds a whole number of its cycles — 20 ms of 400, 700 or
/// 1100 Hz at 8 kHz does — so powers compare directly with the square of a
/// sample level. An empty block has no power.
pub fn goertzel_power(samples: &[i16], freq_hz: f64, sample_rate: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let coefficient = 2.0 * (2.0 * PI * freq_hz / sample_rate).cos();
    let (mut previous, mut before_previous) = (0.0_f64, 0.0_f64);
    for &sample in samples {
        let current = f64::from(sample) + coefficient * previous - before_previous;
        before_previous = previous;
        previous = current;
    }
    let bin_power = previous * previous + before_previous * before_previous
        - coefficient * previous * before_previous;
    // |X(f)| of a tone of amplitude A over N samples is A·N/2.
    let half_length = samples.len() as f64 / 2.0;
    bin_power / (half_length * half_length)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: f64 = 8000.0;
    const AMPLITUDE: f64 = 6000.0;
    const CITIZEN: PartyId = PartyId(1);
    const SEAT: PartyId = PartyId(2);
    const EXPERT: PartyId = PartyId(3);

    /// Each party speaks a tone of its own; all three fit a whole number of
    /// cycles in 20 ms, so they do not leak into each other's bins.
    fn voice_of(party: PartyId) -> f64 {
        match party {
            CITIZEN => 400.0,
            SEAT => 700.0,
            EXPERT => 1100.0,
            _ => unreachable!("only three voices in these tests"),
        }
    }

    /// Tick `tick` of a tone that runs on without a break from tick to tick.
    fn tone(freq_hz: f64, amplitude: f64, tick: usize) -> Frame {
        std::array::from_fn(|i| {
            let n = (tick * SAMPLES_PER_FRAME + i) as f64;
            (amplitude * (2.0 * PI * freq_hz * n / RATE).sin()).round() as i16
        })
    }

    fn conference(parties: &[PartyId]) -> Mixer {
        let mut mixer = Mixer::new();
        for &party in parties {
            mixer.join(party).unwrap();
        }
        mixer
    }

    /// Runs `ticks` ticks in which every connected party speaks its voice;
    /// returns what each heard, tick after tick.
    fn talk(mixer: &mut Mixer, ticks: std::ops::Range<usize>) -> Vec<(PartyId, Vec<i16>)> {
        let mut heard: Vec<(PartyId, Vec<i16>)> =
            mixer.parties().map(|p| (p, Vec::new())).collect();
        for tick in ticks {
            for (party, _) in &heard {
                mixer
                    .push(*party, &tone(voice_of(*party), AMPLITUDE, tick))
                    .unwrap();
            }
            for ((party, frame), (expected, samples)) in mixer.mix().zip(&mut heard) {
                assert_eq!(party, *expected);
                samples.extend_from_slice(frame);
            }
        }
        heard
    }

    /// The amplitude at which `party`'s voice sounds in `samples`.
    fn level_of(party: PartyId, samples: &[i16]) -> f64 {
        goertzel_power(samples, voice_of(party), RATE).sqrt()
    }

    /// A voice counts as heard within 1 % of the level it was spoken at.
    fn assert_hears(listener: PartyId, samples: &[i16], speaker: PartyId) {
        let level = level_of(speaker, samples);
        assert!(
            (level - AMPLITUDE).abs() < 0.01 * AMPLITUDE,
            "{listener} hears {speaker} at {level:.1}, not {AMPLITUDE}"
        );
    }

    /// A voice counts as absent 60 dB or more below the level spoken.
    fn assert_does_not_hear(listener: PartyId, samples: &[i16], speaker: PartyId) {
        let level = level_of(speaker, samples);
        assert!(
            level < AMPLITUDE / 1000.0,
            "{listener} hears {speaker} at {level:.1}"
        );
    }

    #[test]
    fn goertzel_power_is_the_square_of_a_tone_amplitude() {
        let frame = tone(700.0, 8000.0, 0);
        let power = goertzel_power(&frame, 700.0, RATE);
        assert!(
            (power - 8000.0 * 8000.0).abs() < 0.001 * 8000.0 * 8000.0,
            "{power}"
        );
        // The other test tones, a whole number of cycles apart, are absent.
        assert!(goertzel_power(&frame, 400.0, RATE) < 1.0);
        assert!(goertzel_power(&frame, 1100.0, RATE) < 1.0);
        assert_eq!(goertzel_power(&[], 700.0, RATE), 0.0);
    }

    #[test]
    fn in_a_three_way_call_each_party_hears_the_other_two_and_not_itself() {
        let mut mixer = conference(&[CITIZEN, SEAT, EXPERT]);
        let heard = talk(&mut mixer, 0..10);
        assert_eq!(heard.len(), 3);
        for (listener, samples) in &heard {
            assert_eq!(samples.len(), 10 * SAMPLES_PER_FRAME);
            for speaker in [CITIZEN, SEAT, EXPERT] {
                if speaker == *listener {
                    assert_does_not_hear(*listener, samples, speaker);
                } else {
                    assert_hears(*listener, samples, speaker);
                }
            }
        }
    }

    #[test]
    fn each_tick_is_exactly_the_sum_of_the_others() {
        let mut mixer = conference(&[CITIZEN, SEAT, EXPERT]);
        let frames = [CITIZEN, SEAT, EXPERT].map(|p| tone(voice_of(p), AMPLITUDE, 0));
        for (party, frame) in [CITIZEN, SEAT, EXPERT].iter().zip(&frames) {
            mixer.push(*party, frame).unwrap();
        }
        let _ = mixer.mix();
        let heard = mixer.heard_by(CITIZEN).unwrap();
        for i in 0..SAMPLES_PER_FRAME {
            assert_eq!(heard[i], frames[1][i] + frames[2][i], "sample {i}");
            let everyone = frames[0][i] + frames[1][i] + frames[2][i];
            assert_eq!(mixer.recording_mix()[i], everyone, "sample {i}");
        }
    }

    #[test]
    fn loud_parties_saturate_at_full_scale_instead_of_wrapping() {
        let mut mixer = conference(&[CITIZEN, SEAT, EXPERT]);
        mixer.push(SEAT, &[i16::MAX; SAMPLES_PER_FRAME]).unwrap();
        mixer.push(EXPERT, &[i16::MAX; SAMPLES_PER_FRAME]).unwrap();
        let _ = mixer.mix();
        // 32767 + 32767 would wrap to -2 in i16.
        assert_eq!(
            mixer.heard_by(CITIZEN).unwrap(),
            &[i16::MAX; SAMPLES_PER_FRAME]
        );
        // Each loud party hears the other unclipped.
        assert_eq!(
            mixer.heard_by(SEAT).unwrap(),
            &[i16::MAX; SAMPLES_PER_FRAME]
        );
        assert_eq!(mixer.recording_mix(), &[i16::MAX; SAMPLES_PER_FRAME]);

        mixer.push(SEAT, &[i16::MIN; SAMPLES_PER_FRAME]).unwrap();
        mixer.push(EXPERT, &[i16::MIN; SAMPLES_PER_FRAME]).unwrap();
        let _ = mixer.mix();
        assert_eq!(
            mixer.heard_by(CITIZEN).unwrap(),
            &[i16::MIN; SAMPLES_PER_FRAME]
        );
    }

    #[test]
    fn a_party_is_kept_out_of_its_own_ear_even_when_the_others_clip() {
        let mut mixer = conference(&[CITIZEN, SEAT, EXPERT]);
        let citizen = tone(voice_of(CITIZEN), AMPLITUDE, 0);
        mixer.push(CITIZEN, &citizen).unwrap();
        mixer.push(SEAT, &[30_000; SAMPLES_PER_FRAME]).unwrap();
        mixer.push(EXPERT, &[30_000; SAMPLES_PER_FRAME]).unwrap();
        let _ = mixer.mix();
        assert_eq!(
            mixer.heard_by(CITIZEN).unwrap(),
            &[i16::MAX; SAMPLES_PER_FRAME]
        );
    }

    #[test]
    fn when_one_party_leaves_the_other_two_still_hear_each_other() {
        let mut mixer = conference(&[CITIZEN, SEAT, EXPERT]);
        talk(&mut mixer, 0..5);
        mixer.leave(EXPERT).unwrap();

        let heard = talk(&mut mixer, 5..15);
        let listeners: Vec<PartyId> = heard.iter().map(|(p, _)| *p).collect();
        assert_eq!(listeners, [CITIZEN, SEAT]);
        let (citizen, seat) = (&heard[0].1, &heard[1].1);
        assert_hears(CITIZEN, citizen, SEAT);
        assert_hears(SEAT, seat, CITIZEN);
        for (listener, samples) in [(CITIZEN, citizen), (SEAT, seat)] {
            assert_does_not_hear(listener, samples, EXPERT);
            assert_does_not_hear(listener, samples, listener);
        }

        let late_packet = tone(voice_of(EXPERT), AMPLITUDE, 15);
        assert_eq!(
            mixer.push(EXPERT, &late_packet),
            Err(MixerError::NotJoined(EXPERT))
        );
        assert_eq!(mixer.leave(EXPERT), Err(MixerError::NotJoined(EXPERT)));
    }

    #[test]
    fn a_party_joining_mid_call_hears_both_and_is_heard_by_both() {
        let mut mixer = conference(&[CITIZEN, SEAT]);
        let before = talk(&mut mixer, 0..5);
        assert_hears(CITIZEN, &before[0].1, SEAT);
        assert_hears(SEAT, &before[1].1, CITIZEN);

        mixer.join(EXPERT).unwrap();
        let after = talk(&mut mixer, 5..15);
        assert_eq!(after.len(), 3);
        for (listener, samples) in &after {
            for speaker in [CITIZEN, SEAT, EXPERT] {
                if speaker == *listener {
                    assert_does_not_hear(*listener, samples, speaker);
                } else {
                    assert_hears(*listener, samples, speaker);
                }
            }
        }
    }

    #[test]
    fn a_party_that_sent_nothing_this_tick_is_heard_as_silence() {
        let mut mixer = conference(&[CITIZEN, SEAT]);
        mixer
            .push(SEAT, &tone(voice_of(SEAT), AMPLITUDE, 0))
            .unwrap();
        let _ = mixer.mix();
        assert_ne!(mixer.heard_by(CITIZEN).unwrap(), &SILENCE);

        // The seat's next packet is lost: its last frame is not replayed.
        let _ = mixer.mix();
        assert_eq!(mixer.heard_by(CITIZEN).unwrap(), &SILENCE);
    }

    #[test]
    fn a_second_push_in_one_tick_replaces_the_first() {
        let mut mixer = conference(&[CITIZEN, SEAT]);
        mixer.push(SEAT, &[100; SAMPLES_PER_FRAME]).unwrap();
        mixer.push(SEAT, &[200; SAMPLES_PER_FRAME]).unwrap();
        let _ = mixer.mix();
        assert_eq!(mixer.heard_by(CITIZEN).unwrap(), &[200; SAMPLES_PER_FRAME]);
    }

    #[test]
    fn a_party_alone_hears_silence() {
        let mut mixer = conference(&[CITIZEN]);
        mixer
            .push(CITIZEN, &tone(voice_of(CITIZEN), AMPLITUDE, 0))
            .unwrap();
        let heard: Vec<(PartyId, Frame)> = mixer.mix().map(|(p, f)| (p, *f)).collect();
        assert_eq!(heard, [(CITIZEN, SILENCE)]);
    }

    #[test]
    fn joining_twice_is_refused() {
        let mut mixer = conference(&[CITIZEN]);
        assert_eq!(mixer.join(CITIZEN), Err(MixerError::AlreadyJoined(CITIZEN)));
        assert_eq!(mixer.len(), 1);
    }

    #[test]
    fn ticks_reuse_the_buffers_set_up_at_join() {
        let mut mixer = conference(&[CITIZEN, SEAT, EXPERT]);
        let capacity = mixer.parties.capacity();
        let buffers = mixer.parties.as_ptr();
        talk(&mut mixer, 0..50);
        assert_eq!(mixer.parties.capacity(), capacity);
        assert_eq!(mixer.parties.as_ptr(), buffers);
    }
}
