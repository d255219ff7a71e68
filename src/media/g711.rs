//! G.711, the one codec every 12345 trunk and seat phone speaks: PCMU
//! (μ-law) and PCMA (A-law), ITU-T Rec. G.711 (11/88).
//!
//! The gateway decodes to 16-bit linear PCM only where it must touch the
//! audio — mixing a three-way transfer, recording, playing prompts,
//! detecting in-band tones — and re-encodes for the leg that listens. The
//! companding itself comes from the `audio-codec-algorithms` crate, whose
//! tables and encoder are checked against the ITU-T G.191 reference
//! software; nothing here is a hand-written table.
//!
//! Both laws are static RTP payload types with an 8000 Hz clock (RFC 3551
//! §6, Table 4: PCMU = 0, PCMA = 8), and one packet carries 20 ms — the
//! default packetisation interval of RFC 3551 §4.2 and what every peer we
//! meet sends — so [`SAMPLES_PER_FRAME`] is the unit the mixer, the
//! recorder and the prompt player all count in.
//!
//! Linear samples use the whole `i16` range: μ-law's 14-bit and A-law's
//! 13-bit linear values sit left-justified in it, the convention of G.191.

use audio_codec_algorithms::{decode_alaw, decode_ulaw, encode_alaw, encode_ulaw};
use std::fmt;
use std::time::Duration;

/// The sampling clock of G.711, and so its RTP timestamp rate (RFC 3551 §4.5.14).
pub const CLOCK_RATE: u32 = 8000;

/// One packet's worth of audio: 20 ms (RFC 3551 §4.2).
pub const FRAME: Duration = Duration::from_millis(20);

/// Samples in one [`FRAME`] at [`CLOCK_RATE`]: 160, which is also one
/// G.711 payload in bytes and the RTP timestamp step between packets.
pub const SAMPLES_PER_FRAME: usize = 160;

/// A G.711 law, named as RTP names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// μ-law, used on North American and Japanese networks and by many
    /// SIP phones as their first offer.
    Pcmu,
    /// A-law, the law of the Chinese PSTN: what trunks from the carrier send.
    Pcma,
}

impl Codec {
    /// The static RTP payload type (RFC 3551 Table 4).
    pub const fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// The codec a static payload type stands for; `None` for anything
    /// else, including dynamic types, which only SDP can name.
    pub const fn from_payload_type(payload_type: u8) -> Option<Codec> {
        match payload_type {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            _ => None,
        }
    }

    /// The encoding name of `a=rtpmap` and the RTP registry: "PCMU" or "PCMA".
    pub const fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    /// The codec an `a=rtpmap` encoding name stands for. Media subtype
    /// names are case-insensitive (RFC 4855 §3), so "pcma" counts.
    pub fn from_name(name: &str) -> Option<Codec> {
        [Codec::Pcmu, Codec::Pcma]
            .into_iter()
            .find(|codec| codec.name().eq_ignore_ascii_case(name))
    }

    /// The RTP clock rate: [`CLOCK_RATE`] for both laws.
    pub const fn clock_rate(self) -> u32 {
        CLOCK_RATE
    }

    /// Compresses one linear sample to its code word.
    pub fn encode_sample(self, linear: i16) -> u8 {
        match self {
            Codec::Pcmu => encode_ulaw(linear),
            Codec::Pcma => encode_alaw(linear),
        }
    }

    /// Expands one code word to its linear sample.
    pub fn decode_sample(self, code_word: u8) -> i16 {
        match self {
            Codec::Pcmu => decode_ulaw(code_word),
            Codec::Pcma => decode_alaw(code_word),
        }
    }

    /// Appends the code words of `pcm` to `out`. Appending rather than
    /// replacing lets a caller build a packet behind its header and reuse
    /// one buffer from frame to frame.
    pub fn encode(&self, pcm: &[i16], out: &mut Vec<u8>) {
        // The law is chosen once per frame, not once per sample.
        match self {
            Codec::Pcmu => out.extend(pcm.iter().map(|&s| encode_ulaw(s))),
            Codec::Pcma => out.extend(pcm.iter().map(|&s| encode_alaw(s))),
        }
    }

    /// Appends the linear samples of the code words in `g711` to `out`.
    pub fn decode(&self, g711: &[u8], out: &mut Vec<i16>) {
        match self {
            Codec::Pcmu => out.extend(g711.iter().map(|&c| decode_ulaw(c))),
            Codec::Pcma => out.extend(g711.iter().map(|&c| decode_alaw(c))),
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: [Codec; 2] = [Codec::Pcmu, Codec::Pcma];

    // Reference triples (linear input, code word, decoded output), from
    // ITU-T G.711 (11/88).
    //
    // μ-law, Tables 2a/2b: decoder output value number n (0..=127) has the
    // character signal 0xFF - n for a positive input and 0x7F - n for a
    // negative one. Its normalised output value y is 2n in chord 0 and,
    // in chord c = 1..=7, b + s/2 + s·k, where the chord starts at the
    // decision value b = 2^(c+5) - 33, steps by s = 2^(c+1) and k = n - 16c.
    // The 14-bit y is left-justified in an i16, so the sample is 4y.
    //
    // A-law, Tables 1a/1b: output value number n (1..=128) is sent as
    // (sign | (n - 1)) XOR 0x55, the sign bit 0x80 set for positive inputs
    // and the even bits inverted. Segments 1 and 2 step by 2 from 0, segment
    // c = 3..=8 by 2^(c-1) from 2^(c+3); y is the middle of the interval. The
    // 13-bit y is left-justified, so the sample is 8y.
    //
    // Each linear value is an output value (the middle of its interval) or,
    // where marked, a value inside an interval, so truncating to the 14/13-bit
    // grid cannot move it across a decision value. The same levels are in
    // the decoder tables of the ITU-T G.191 Software Tools Library (g711.c),
    // which the codec crate is tested against: two sources, one answer.
    const ULAW_REFERENCE: [(i16, u8, i16); 12] = [
        (0, 0xFF, 0),         // n = 0, y = 0
        (8, 0xFE, 8),         // n = 1, y = 2
        (120, 0xF0, 120),     // n = 15, y = 30: the top of chord 0
        (132, 0xEF, 132),     // n = 16, y = 33: chord 1, b = 31, s = 4
        (396, 0xDF, 396),     // n = 32, y = 99: chord 2, b = 95, s = 8
        (924, 0xCF, 924),     // n = 48, y = 231: chord 3, b = 223, s = 16
        (1000, 0xCE, 988),    // inside n = 49 (x = 250 in [239, 255))
        (1980, 0xBF, 1980),   // n = 64, y = 495: chord 4, b = 479, s = 32
        (4092, 0xAF, 4092),   // n = 80, y = 1023: chord 5, b = 991, s = 64
        (8316, 0x9F, 8316),   // n = 96, y = 2079: chord 6, b = 2015, s = 128
        (16764, 0x8F, 16764), // n = 112, y = 4191: chord 7, b = 4063, s = 256
        (32124, 0x80, 32124), // n = 127, y = 8031: the largest output value
    ];

    const ALAW_REFERENCE: [(i16, u8, i16); 12] = [
        (8, 0xD5, 8),         // n = 1, y = 1: the smallest magnitude, A-law has no zero
        (248, 0xDA, 248),     // n = 16, y = 31: top of segment 1
        (264, 0xC5, 264),     // n = 17, y = 33: segment 2, step 2
        (528, 0xF5, 528),     // n = 33, y = 66: segment 3 from 64, step 4
        (1000, 0xFA, 1008),   // inside n = 48 (x = 125 in [124, 128))
        (1056, 0xE5, 1056),   // n = 49, y = 132: segment 4 from 128, step 8
        (2112, 0x95, 2112),   // n = 65, y = 264: segment 5 from 256, step 16
        (4224, 0x85, 4224),   // n = 81, y = 528: segment 6 from 512, step 32
        (8448, 0xB5, 8448),   // n = 97, y = 1056: segment 7 from 1024, step 64
        (16896, 0xA5, 16896), // n = 113, y = 2112: segment 8 from 2048, step 128
        (31232, 0xAB, 31232), // n = 127, y = 3904: segment 8, k = 14
        (32256, 0xAA, 32256), // n = 128, y = 4032: the largest output value
    ];

    #[test]
    fn payload_types_are_the_static_ones_of_rfc_3551() {
        assert_eq!(Codec::Pcmu.payload_type(), 0);
        assert_eq!(Codec::Pcma.payload_type(), 8);
        for codec in BOTH {
            assert_eq!(Codec::from_payload_type(codec.payload_type()), Some(codec));
            assert_eq!(codec.clock_rate(), 8000);
        }
        for dynamic_or_other in [1, 3, 9, 18, 96, 101, 127] {
            assert_eq!(Codec::from_payload_type(dynamic_or_other), None);
        }
    }

    #[test]
    fn names_are_the_rtpmap_encoding_names_in_any_case() {
        assert_eq!(Codec::Pcmu.name(), "PCMU");
        assert_eq!(Codec::Pcma.to_string(), "PCMA");
        assert_eq!(Codec::from_name("PCMA"), Some(Codec::Pcma));
        assert_eq!(Codec::from_name("pcmu"), Some(Codec::Pcmu));
        assert_eq!(Codec::from_name("G722"), None);
    }

    #[test]
    fn a_frame_is_20_ms_of_8_khz_audio() {
        let samples_in_a_frame = u128::from(CLOCK_RATE) * FRAME.as_millis() / 1000;
        assert_eq!(samples_in_a_frame, SAMPLES_PER_FRAME as u128);
    }

    #[test]
    fn mu_law_matches_the_g711_reference_values() {
        for (linear, code_word, output) in ULAW_REFERENCE {
            assert_eq!(
                Codec::Pcmu.encode_sample(linear),
                code_word,
                "encode {linear}"
            );
            assert_eq!(
                Codec::Pcmu.decode_sample(code_word),
                output,
                "decode {code_word:#04x}"
            );
            if linear != 0 {
                // Table 2b: the negative half mirrors the positive one in the sign bit.
                let negative = code_word & 0x7F;
                assert_eq!(
                    Codec::Pcmu.encode_sample(-linear),
                    negative,
                    "encode -{linear}"
                );
                assert_eq!(Codec::Pcmu.decode_sample(negative), -output);
            }
        }
    }

    #[test]
    fn a_law_matches_the_g711_reference_values() {
        for (linear, code_word, output) in ALAW_REFERENCE {
            assert_eq!(
                Codec::Pcma.encode_sample(linear),
                code_word,
                "encode {linear}"
            );
            assert_eq!(
                Codec::Pcma.decode_sample(code_word),
                output,
                "decode {code_word:#04x}"
            );
            // Table 1b: the negative half differs only in the sign bit.
            let negative = code_word & 0x7F;
            assert_eq!(
                Codec::Pcma.encode_sample(-linear),
                negative,
                "encode -{linear}"
            );
            assert_eq!(Codec::Pcma.decode_sample(negative), -output);
        }
    }

    #[test]
    fn silence_is_0xff_in_mu_law_and_0xd5_in_a_law() {
        assert_eq!(Codec::Pcmu.encode_sample(0), 0xFF);
        assert_eq!(Codec::Pcmu.decode_sample(0xFF), 0);
        // A-law has no zero level: 0 lies in the first positive interval,
        // whose output value is 1 (13-bit), 8 left-justified.
        assert_eq!(Codec::Pcma.encode_sample(0), 0xD5);
        assert_eq!(Codec::Pcma.decode_sample(0xD5), 8);
    }

    #[test]
    fn a_law_code_words_are_sent_with_the_even_bits_inverted() {
        // G.711 Table 1b: the smallest negative value has the character
        // signal 0000 0000 before inversion; inverting bits 2, 4, 6 and 8
        // (counting from the sign bit) gives 0101 0101 on the line.
        assert_eq!(Codec::Pcma.encode_sample(-8), 0x55);
        assert_eq!(Codec::Pcma.decode_sample(0x55), -8);
        // Its positive twin differs in the sign bit alone.
        assert_eq!(0x55 | 0x80, 0xD5);
    }

    #[test]
    fn full_scale_inputs_take_the_outermost_code_words() {
        assert_eq!(Codec::Pcmu.encode_sample(i16::MAX), 0x80);
        assert_eq!(Codec::Pcmu.encode_sample(i16::MIN), 0x00);
        assert_eq!(Codec::Pcmu.decode_sample(0x80), 32124);
        assert_eq!(Codec::Pcmu.decode_sample(0x00), -32124);

        assert_eq!(Codec::Pcma.encode_sample(i16::MAX), 0xAA);
        assert_eq!(Codec::Pcma.encode_sample(i16::MIN), 0x2A);
        assert_eq!(Codec::Pcma.decode_sample(0xAA), 32256);
        assert_eq!(Codec::Pcma.decode_sample(0x2A), -32256);
    }

    #[test]
    fn tiny_negative_inputs_take_the_mu_law_negative_zero() {
        // G.711 Table 2b has its own number 0: character signal 0111 1111.
        // It decodes to the same level as the positive zero 0xFF.
        for linear in -4..=-1 {
            assert_eq!(Codec::Pcmu.encode_sample(linear), 0x7F, "encode {linear}");
        }
        assert_eq!(Codec::Pcmu.decode_sample(0x7F), 0);
    }

    /// The width, in `i16` units, of the quantisation interval a code word
    /// stands for: G.711 Table 2 for μ-law (chord c steps by 2^(c+1) in 14
    /// bits), Table 1 for A-law (segments 1 and 2 step by 2 in 13 bits,
    /// each later one doubles).
    fn interval_width(codec: Codec, code_word: u8) -> i32 {
        match codec {
            Codec::Pcmu => {
                let chord = (!code_word >> 4) & 0x7;
                4 << (chord + 1)
            }
            Codec::Pcma => {
                let segment = ((code_word ^ 0x55) >> 4) & 0x7;
                8 << segment.max(1)
            }
        }
    }

    /// The 16-bit sample is first truncated to the law's linear grid:
    /// 14 bits for μ-law, 13 for A-law.
    fn grid(codec: Codec) -> i32 {
        match codec {
            Codec::Pcmu => 4,
            Codec::Pcma => 8,
        }
    }

    #[test]
    fn a_round_trip_errs_by_at_most_half_an_interval_over_the_whole_i16_range() {
        for codec in BOTH {
            for linear in i16::MIN..=i16::MAX {
                let code_word = codec.encode_sample(linear);
                let back = codec.decode_sample(code_word);
                let error = (i32::from(back) - i32::from(linear)).abs();
                // Half the interval, plus up to one unit of the coarser grid
                // lost when the sample is truncated to it.
                let mut bound = interval_width(codec, code_word) / 2 + grid(codec);
                // μ-law's last decision value is 8159 (14-bit); beyond it the
                // encoder saturates at the largest output value, 8031 × 4.
                if codec == Codec::Pcmu && i32::from(linear).abs() > 8159 * 4 {
                    bound = i32::from(linear).abs() - 32124;
                }
                assert!(
                    error <= bound,
                    "{codec}: {linear} decodes back as {back}, off by {error} > {bound}"
                );
            }
        }
    }

    #[test]
    fn a_round_trip_keeps_the_order_of_samples() {
        for codec in BOTH {
            let mut previous = i16::MIN;
            for linear in i16::MIN..=i16::MAX {
                let back = codec.decode_sample(codec.encode_sample(linear));
                assert!(
                    back >= previous,
                    "{codec}: {linear} decodes below its predecessor"
                );
                previous = back;
            }
        }
    }

    #[test]
    fn every_code_word_decodes_and_reencodes_to_itself() {
        for codec in BOTH {
            for code_word in 0..=u8::MAX {
                let linear = codec.decode_sample(code_word);
                let again = codec.encode_sample(linear);
                if codec == Codec::Pcmu && code_word == 0x7F {
                    // The negative zero decodes to 0, which G.711 encodes
                    // as the positive zero: the two are one level.
                    assert_eq!((linear, again), (0, 0xFF));
                } else {
                    assert_eq!(again, code_word, "{codec}: {code_word:#04x} → {linear}");
                }
            }
        }
    }

    #[test]
    fn encode_and_decode_append_a_whole_frame() {
        let tone: Vec<i16> = (0..SAMPLES_PER_FRAME)
            .map(|i| ((i as f64 * 0.3).sin() * 12_000.0) as i16)
            .collect();
        for codec in BOTH {
            let mut packet = vec![0x80, codec.payload_type()];
            codec.encode(&tone, &mut packet);
            assert_eq!(packet.len(), 2 + SAMPLES_PER_FRAME);
            assert_eq!(
                &packet[..2],
                &[0x80, codec.payload_type()],
                "the header is kept"
            );

            let mut pcm = Vec::new();
            codec.decode(&packet[2..], &mut pcm);
            assert_eq!(pcm.len(), SAMPLES_PER_FRAME);
            for (i, (&sent, &heard)) in tone.iter().zip(&pcm).enumerate() {
                assert_eq!(
                    heard,
                    codec.decode_sample(codec.encode_sample(sent)),
                    "sample {i}"
                );
            }
        }
    }
}
