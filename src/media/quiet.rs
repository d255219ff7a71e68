//! Whether a caller has stopped speaking: what ends a spoken request (诉求)
//! that is not ended by `#`.
//!
//! A 20 ms frame is voice when its mean absolute amplitude reaches
//! [`VOICE_LEVEL`] (16-bit linear: a sine peaking at about −38 dBFS; quiet speech
//! passes, a line's hiss and G.711 idle noise do not). The caller is quiet
//! once no frame has been voice for the whole window: frames of silence and
//! frames that never came (a phone that stops sending, silence suppression)
//! count alike, so the window is measured on the clock, not on packets.
//! The window starts when listening starts: a caller who says nothing at
//! all is quiet after one window too.

use std::time::{Duration, Instant};

/// The mean absolute amplitude of a voice frame.
pub const VOICE_LEVEL: u32 = 256;

#[derive(Debug, Clone)]
pub struct QuietDetector {
    window: Duration,
    /// The last voice frame, or when listening started.
    last_voice: Instant,
    spoke: bool,
}

/// Whether `pcm` (one frame, linear) is voice.
pub fn is_voice(pcm: &[i16]) -> bool {
    if pcm.is_empty() {
        return false;
    }
    let sum: u64 = pcm.iter().map(|s| u64::from(s.unsigned_abs())).sum();
    sum >= u64::from(VOICE_LEVEL) * pcm.len() as u64
}

impl QuietDetector {
    /// Starts listening now, for `window` of quiet.
    pub fn new(window: Duration, now: Instant) -> QuietDetector {
        QuietDetector {
            window,
            last_voice: now,
            spoke: false,
        }
    }

    /// A frame the caller sent.
    pub fn frame(&mut self, pcm: &[i16], now: Instant) {
        if is_voice(pcm) {
            self.spoke = true;
            self.last_voice = self.last_voice.max(now);
        }
    }

    /// When the caller is quiet if it says nothing more.
    pub fn deadline(&self) -> Instant {
        self.last_voice + self.window
    }

    pub fn is_quiet(&self, now: Instant) -> bool {
        now >= self.deadline()
    }

    /// Reports quiet no sooner than `at` (the report could not be given).
    pub fn defer(&mut self, at: Instant) {
        if let Some(t) = at.checked_sub(self.window) {
            self.last_voice = self.last_voice.max(t);
        }
    }

    /// Whether any frame so far was voice.
    pub fn spoke(&self) -> bool {
        self.spoke
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(amplitude: f64) -> Vec<i16> {
        (0..160)
            .map(|i| {
                let t = f64::from(i) / 8000.0;
                (amplitude * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16
            })
            .collect()
    }

    #[test]
    fn speech_levels_are_voice_and_line_noise_is_not() {
        // −30 dBFS: quiet speech.
        assert!(is_voice(&tone(1036.0)));
        // −36 dBFS still is; −50 dBFS (hiss) is not.
        assert!(is_voice(&tone(518.0)));
        assert!(!is_voice(&tone(103.0)));
        // μ-law idle (0xFF decodes to 0) and A-law idle (0xD5 to 8).
        assert!(!is_voice(&[0; 160]));
        assert!(!is_voice(&[8; 160]));
        assert!(!is_voice(&[]));
        // The level is the mean over the frame: one click is not voice.
        let mut click = [0i16; 160];
        click[80] = i16::MAX;
        assert!(!is_voice(&click));
        assert!(is_voice(&[-256; 160]), "either sign counts");
        assert!(is_voice(&[i16::MIN; 160]), "no overflow at full scale");
    }

    #[test]
    fn quiet_after_a_window_without_voice_however_frames_came() {
        let t0 = Instant::now();
        let s = |ms| t0 + Duration::from_millis(ms);
        let q = QuietDetector::new(Duration::from_secs(5), t0);
        assert!(!q.spoke());
        // Nothing said at all: quiet one window after listening began.
        assert_eq!(q.deadline(), s(5000));
        assert!(!q.is_quiet(s(4999)));
        assert!(q.is_quiet(s(5000)));

        let mut q = QuietDetector::new(Duration::from_secs(5), t0);
        // Speech for 2 s pushes the deadline on with every voice frame.
        for ms in (0..2000).step_by(20) {
            q.frame(&tone(2000.0), s(ms));
        }
        assert!(q.spoke());
        assert_eq!(q.deadline(), s(1980 + 5000));
        // Silence frames, then none at all: neither is voice.
        for ms in (2000..3000).step_by(20) {
            q.frame(&[0; 160], s(ms));
        }
        assert!(!q.is_quiet(s(6979)));
        assert!(q.is_quiet(s(6980)));
        // A late voice frame (out of order, an older `now`) never moves
        // the deadline back.
        q.frame(&tone(2000.0), s(100));
        assert_eq!(q.deadline(), s(6980));
        // Speaking again before the end starts the window over.
        q.frame(&tone(2000.0), s(6000));
        assert!(!q.is_quiet(s(10_999)));
        assert!(q.is_quiet(s(11_000)));
    }
}
