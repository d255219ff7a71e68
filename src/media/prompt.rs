//! Voice prompts: the WAV library, playlists of prompts, and 20 ms pacing.
//!
//! Callers waiting in a queue hear prompts over RTP. Three pure pieces make
//! that up, none of which owns a socket, a timer or a clock:
//!
//! * [`PromptLibrary`] reads every `*.wav` in the prompts directory once, at
//!   start-up or on reload, into shared immutable sample buffers. Loading is
//!   a function of the directory alone, so a reload builds a fresh library
//!   and the caller swaps it in atomically; calls already playing keep the
//!   buffers they hold. Only the media engine's native format is accepted
//!   (8000 Hz, mono, 16-bit PCM), so nothing is resampled or transcoded per
//!   call, and a wrong file is refused at load time with its name rather
//!   than heard as noise by a caller.
//! * [`Playlist`] joins prompts, numbers read digit by digit, silence and a
//!   looping tail (music on hold) into one stream of 160-sample frames.
//!   Every prompt name is resolved when the playlist is built, so a missing
//!   file is an error there, never a panic while audio plays.
//! * [`Pacer`] says when each frame is due and which RTP timestamp and
//!   sequence number it carries, with time as an input. Deadlines are
//!   computed from the frame index, never by adding up sleeps, so the
//!   stream does not drift however long the caller waits.
//!
//! The frame is 20 ms because that is the default packetisation interval of
//! RFC 3551 §4.2 for PCMU/PCMA, and 8000 Hz is both the G.711 sample rate and
//! its RTP timestamp clock (RFC 3551 §4.5.14, Table 4): a frame is 160 samples
//! and advances the timestamp by 160. The G.711 encoding itself happens later,
//! in [`super::g711`].
//!
//! A driver plays a playlist like this (the sleep is the driver's business):
//!
//! ```ignore
//! let mut pacer = Pacer::new(Instant::now(), random_timestamp, random_sequence);
//! loop {
//!     while let Some(slot) = pacer.next_due(Instant::now()) {
//!         let Some(frame) = playlist.next_frame() else { return };
//!         send(slot, encode(&frame));
//!     }
//!     sleep_until(pacer.next_deadline()).await;
//! }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Prompt audio is G.711's: 8 kHz samples (the RTP timestamp clock,
/// RFC 3551 §4.5.14) in 20 ms frames (RFC 3551 §4.2's default).
pub use super::g711::{
    CLOCK_RATE as SAMPLE_RATE, FRAME as FRAME_DURATION, SAMPLES_PER_FRAME as FRAME_SAMPLES,
};

/// Most packets a late tick sends back to back (100 ms of audio).
///
/// A tick a few milliseconds late is normal scheduler jitter, and sending
/// the backlog loses nothing: the receiver's jitter buffer absorbs it. A task
/// that stalled for seconds must not dump seconds of audio at once, which
/// the receiver would discard as late anyway; so beyond this many due
/// frames the [`Pacer`] skips the oldest slots and resynchronises.
pub const MAX_BURST: usize = 5;

/// One frame of audio: 20 ms of 8000 Hz 16-bit PCM.
pub use super::mixer::Frame;

/// The only WAV format accepted, as operators read it in errors.
const EXPECTED_FORMAT: &str = "expected 8000 Hz mono 16-bit PCM";

/// Why the prompts could not be loaded or a playlist could not be built.
///
/// Every load error names the file, so an operator who replaced a recording
/// knows which one to convert again (see `prompts/README.md`).
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// The prompts directory itself could not be listed.
    #[error("{}: cannot list prompts: {source}", dir.display())]
    ReadDir {
        /// The prompts directory.
        dir: PathBuf,
        /// The underlying I/O error.
        source: io::Error,
    },
    /// The directory has no `*.wav` file at all: most likely the wrong path.
    #[error("{}: no *.wav prompts in this directory", dir.display())]
    NoPrompts {
        /// The prompts directory.
        dir: PathBuf,
    },
    /// The WAV is PCM or float, but not 8000 Hz mono 16-bit.
    #[error("{}: {}, {EXPECTED_FORMAT}", path.display(), describe_mismatch(spec))]
    WrongFormat {
        /// The offending file.
        path: PathBuf,
        /// What the file's header says.
        spec: hound::WavSpec,
    },
    /// The WAV's encoding is neither PCM nor float (μ-law, A-law, ADPCM …),
    /// which the WAV reader does not decode.
    #[error(
        "{}: not linear PCM (μ-law, A-law and ADPCM WAVs are refused), {EXPECTED_FORMAT}",
        path.display()
    )]
    UnsupportedEncoding {
        /// The offending file.
        path: PathBuf,
    },
    /// The file could not be opened or is not a well-formed WAV.
    #[error("{}: cannot read WAV: {source}", path.display())]
    Unreadable {
        /// The offending file.
        path: PathBuf,
        /// What the WAV reader reported.
        source: hound::Error,
    },
    /// The WAV holds no samples: a truncated recording would otherwise play
    /// as nothing at all.
    #[error("{}: no audio in this file", path.display())]
    Empty {
        /// The offending file.
        path: PathBuf,
    },
    /// The file name is not UTF-8, so it cannot be a prompt name.
    #[error("{}: the file name is not valid UTF-8", path.display())]
    BadName {
        /// The offending file.
        path: PathBuf,
    },
    /// Two files give the same prompt name (`welcome.wav` and `welcome.WAV`).
    #[error("{} and {}: two files for the prompt \"{name}\"", first.display(), second.display())]
    Duplicate {
        /// The prompt name both files claim.
        name: String,
        /// The file seen first (in name order).
        first: PathBuf,
        /// The file seen second.
        second: PathBuf,
    },
    /// A playlist names a prompt the library does not have.
    #[error("no prompt \"{name}\" ({name}.wav) in {}", dir.display())]
    Missing {
        /// The prompt name asked for.
        name: String,
        /// The directory the library was loaded from.
        dir: PathBuf,
    },
    /// A number to be read digit by digit holds something other than 0–9
    /// (or nothing at all).
    #[error("cannot read {number:?} digit by digit: only the digits 0-9 can be read")]
    NotDigits {
        /// The number as given.
        number: String,
    },
    /// A playlist has items after its looping item, which would never play.
    #[error("nothing can follow the looping prompt \"{name}\"; it plays until stopped")]
    AfterLoop {
        /// The looping prompt's name.
        name: String,
    },
}

/// Says what is wrong with `spec`, e.g. `16000 Hz` or `stereo, 8-bit`.
fn describe_mismatch(spec: &hound::WavSpec) -> String {
    let mut wrong = Vec::new();
    if spec.sample_rate != SAMPLE_RATE {
        wrong.push(format!("{} Hz", spec.sample_rate));
    }
    match spec.channels {
        1 => {}
        2 => wrong.push("stereo".to_owned()),
        n => wrong.push(format!("{n} channels")),
    }
    match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Int, 16) => {}
        (hound::SampleFormat::Int, bits) => wrong.push(format!("{bits}-bit")),
        (hound::SampleFormat::Float, bits) => wrong.push(format!("{bits}-bit float")),
    }
    wrong.join(", ")
}

/// Every prompt in the prompts directory, by name (the file name without
/// `.wav`), as shared immutable sample buffers.
///
/// Cloning copies the map of names, never the audio (the buffers are
/// `Arc`s). The daemon keeps one library behind an atomic swap and replaces
/// it whole on reload.
#[derive(Clone)]
pub struct PromptLibrary {
    dir: PathBuf,
    prompts: BTreeMap<String, Arc<[i16]>>,
}

impl PromptLibrary {
    /// Reads every `*.wav` (extension in any case) directly in `dir`.
    ///
    /// Files are read in name order, so the first bad file reported is the
    /// same on every run. Any file that is not 8000 Hz mono 16-bit PCM, or
    /// holds no audio, refuses the whole library: a reload then keeps the
    /// previous one instead of half-updating.
    pub fn load(dir: &Path) -> Result<PromptLibrary, PromptError> {
        let read_dir_error = |source| PromptError::ReadDir {
            dir: dir.to_owned(),
            source,
        };
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(read_dir_error)? {
            let path = entry.map_err(read_dir_error)?.path();
            let is_wav = path
                .extension()
                .is_some_and(|ext| ext.eq_ignore_ascii_case("wav"));
            // `is_file` follows symlinks: operators may link recordings in.
            if is_wav && path.is_file() {
                paths.push(path);
            }
        }
        if paths.is_empty() {
            return Err(PromptError::NoPrompts {
                dir: dir.to_owned(),
            });
        }
        paths.sort();

        let mut prompts = BTreeMap::new();
        let mut sources: BTreeMap<String, PathBuf> = BTreeMap::new();
        for path in paths {
            let Some(name) = path.file_stem().and_then(|stem| stem.to_str()) else {
                return Err(PromptError::BadName { path });
            };
            let name = name.to_owned();
            if let Some(first) = sources.get(&name) {
                return Err(PromptError::Duplicate {
                    name,
                    first: first.clone(),
                    second: path,
                });
            }
            prompts.insert(name.clone(), read_wav(&path)?);
            sources.insert(name, path);
        }
        Ok(PromptLibrary {
            dir: dir.to_owned(),
            prompts,
        })
    }

    /// The samples of the prompt `name` (`"welcome"` for `welcome.wav`).
    pub fn get(&self, name: &str) -> Option<&Arc<[i16]>> {
        self.prompts.get(name)
    }

    /// Like [`get`](Self::get), but a missing prompt is an error naming it.
    fn require(&self, name: &str) -> Result<Arc<[i16]>, PromptError> {
        self.get(name).cloned().ok_or_else(|| PromptError::Missing {
            name: name.to_owned(),
            dir: self.dir.clone(),
        })
    }

    /// How long the prompt `name` plays.
    pub fn duration(&self, name: &str) -> Option<Duration> {
        self.get(name)
            .map(|samples| samples_duration(samples.len()))
    }

    /// The prompt names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.prompts.keys().map(String::as_str)
    }

    /// How many prompts there are.
    pub fn len(&self) -> usize {
        self.prompts.len()
    }

    /// Whether there are none (never true of a loaded library).
    pub fn is_empty(&self) -> bool {
        self.prompts.is_empty()
    }

    /// The directory the library was loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Summarised, because the derived form would print every sample.
impl fmt::Debug for PromptLibrary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PromptLibrary")
            .field("dir", &self.dir)
            .field(
                "prompts",
                &self
                    .prompts
                    .iter()
                    .map(|(name, samples)| (name, samples.len()))
                    .collect::<BTreeMap<_, _>>(),
            )
            .finish()
    }
}

/// Reads one prompt, refusing anything but 8000 Hz mono 16-bit PCM.
fn read_wav(path: &Path) -> Result<Arc<[i16]>, PromptError> {
    let unreadable = |source| match source {
        hound::Error::Unsupported => PromptError::UnsupportedEncoding {
            path: path.to_owned(),
        },
        source => PromptError::Unreadable {
            path: path.to_owned(),
            source,
        },
    };
    let reader = hound::WavReader::open(path).map_err(unreadable)?;
    let spec = reader.spec();
    let native = spec.sample_rate == SAMPLE_RATE
        && spec.channels == 1
        && spec.bits_per_sample == 16
        && spec.sample_format == hound::SampleFormat::Int;
    if !native {
        return Err(PromptError::WrongFormat {
            path: path.to_owned(),
            spec,
        });
    }
    let samples = reader
        .into_samples::<i16>()
        .collect::<Result<Vec<i16>, _>>()
        .map_err(unreadable)?;
    if samples.is_empty() {
        return Err(PromptError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(samples.into())
}

/// How long `samples` samples play at [`SAMPLE_RATE`].
fn samples_duration(samples: usize) -> Duration {
    Duration::from_nanos((samples as u64).saturating_mul(1_000_000_000) / u64::from(SAMPLE_RATE))
}

/// One piece of a playlist, named but not yet looked up.
///
/// Items are plain data so that sequences can be composed (the sentence
/// helpers below return arrays of them) and checked against the library in
/// one place, [`Playlist::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A prompt by name.
    Prompt(String),
    /// A number read digit by digit with `digit_0` … `digit_9`, the way
    /// ticket numbers are read back (`"20231015001"` → 二 零 二 三 …).
    Digits(String),
    /// Silence of this length, rounded up to whole samples.
    Silence(Duration),
    /// A prompt repeated until the playlist is dropped (music on hold). It
    /// must be the last item.
    Loop(String),
}

impl Item {
    /// [`Item::Prompt`].
    pub fn prompt(name: impl Into<String>) -> Item {
        Item::Prompt(name.into())
    }

    /// [`Item::Digits`].
    pub fn digits(number: impl Into<String>) -> Item {
        Item::Digits(number.into())
    }

    /// [`Item::Silence`] of `ms` milliseconds.
    pub fn silence_ms(ms: u64) -> Item {
        Item::Silence(Duration::from_millis(ms))
    }

    /// [`Item::Loop`].
    pub fn looping(name: impl Into<String>) -> Item {
        Item::Loop(name.into())
    }
}

/// 您前面还有 N 位来电者在等候: "N callers are waiting ahead of you".
pub fn queue_position(callers_ahead: u32) -> [Item; 3] {
    [
        Item::prompt("queue_position"),
        Item::digits(callers_ahead.to_string()),
        Item::prompt("queue_callers"),
    ]
}

/// 预计等待时间约 N 分钟: "the estimated wait is about N minutes".
pub fn estimated_wait(minutes: u32) -> [Item; 3] {
    [
        Item::prompt("estimated_wait"),
        Item::digits(minutes.to_string()),
        Item::prompt("minutes"),
    ]
}

/// 您的诉求已登记，工单号是 … 承办部门将在三个工作日内办理并回复您:
/// the call-back ticket number read back, then when to expect the answer.
pub fn ticket_readback(ticket: &str) -> [Item; 3] {
    [
        Item::prompt("ticket_created"),
        Item::digits(ticket),
        Item::prompt("ticket_due"),
    ]
}

/// A stretch of audio inside a playlist.
#[derive(Clone)]
enum Segment {
    Audio(Arc<[i16]>),
    Silence(usize),
}

impl Segment {
    fn len(&self) -> usize {
        match self {
            Segment::Audio(samples) => samples.len(),
            Segment::Silence(samples) => *samples,
        }
    }
}

/// Summarised, because the derived form would print every sample.
impl fmt::Debug for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Segment::Audio(samples) => write!(f, "Audio({} samples)", samples.len()),
            Segment::Silence(samples) => write!(f, "Silence({samples} samples)"),
        }
    }
}

/// A sequence of prompts played as one stream of 20 ms frames.
///
/// Frames cross item boundaries seamlessly: a frame may end one prompt and
/// begin the next, so joined fragments (您前面还有 + 三 + 位来电者在等候)
/// carry no padding between them. Only the very last frame is padded with
/// silence. A playlist holds its own `Arc`s, so it keeps playing unchanged
/// if the library is reloaded meanwhile.
#[derive(Debug, Clone)]
pub struct Playlist {
    segments: Vec<Segment>,
    /// The last segment repeats forever.
    looping: bool,
    /// The segment being played.
    index: usize,
    /// Samples of that segment already played.
    offset: usize,
}

impl Playlist {
    /// Resolves `items` against `library`.
    ///
    /// Fails if an item names a missing prompt (or a digit prompt is
    /// missing), if a number holds anything but digits, or if anything
    /// follows a [`Item::Loop`].
    pub fn new(
        library: &PromptLibrary,
        items: impl IntoIterator<Item = Item>,
    ) -> Result<Playlist, PromptError> {
        let mut segments = Vec::new();
        let mut looping: Option<String> = None;
        for item in items {
            if let Some(name) = looping {
                return Err(PromptError::AfterLoop { name });
            }
            match item {
                Item::Prompt(name) => segments.push(Segment::Audio(library.require(&name)?)),
                Item::Digits(number) => {
                    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(PromptError::NotDigits { number });
                    }
                    for digit in number.chars() {
                        let samples = library.require(&format!("digit_{digit}"))?;
                        segments.push(Segment::Audio(samples));
                    }
                }
                Item::Silence(duration) => {
                    segments.push(Segment::Silence(duration_samples(duration)));
                }
                Item::Loop(name) => {
                    segments.push(Segment::Audio(library.require(&name)?));
                    looping = Some(name);
                }
            }
        }
        Ok(Playlist {
            segments,
            looping: looping.is_some(),
            index: 0,
            offset: 0,
        })
    }

    /// The next 20 ms of audio; `None` once everything has played (never,
    /// for a playlist ending in a loop).
    pub fn next_frame(&mut self) -> Option<Frame> {
        let mut frame = [0; FRAME_SAMPLES];
        let mut filled = 0;
        while filled < FRAME_SAMPLES {
            let Some(segment) = self.segments.get(self.index) else {
                break;
            };
            let remaining = segment.len() - self.offset;
            if remaining == 0 {
                let is_loop = self.looping && self.index + 1 == self.segments.len();
                // An empty loop would spin here forever; the library refuses
                // empty prompts, but do not rely on it.
                if is_loop && segment.len() > 0 {
                    self.offset = 0;
                } else {
                    self.index += 1;
                    self.offset = 0;
                }
                continue;
            }
            let n = remaining.min(FRAME_SAMPLES - filled);
            if let Segment::Audio(samples) = segment {
                frame[filled..filled + n].copy_from_slice(&samples[self.offset..self.offset + n]);
            }
            filled += n;
            self.offset += n;
        }
        // The tail of a partial last frame is already silence.
        (filled > 0).then_some(frame)
    }

    /// Samples of audio from start to end before padding to whole frames,
    /// or `None` for a playlist that loops.
    pub fn total_samples(&self) -> Option<usize> {
        (!self.looping).then(|| self.segments.iter().map(Segment::len).sum())
    }

    /// Frames [`next_frame`](Self::next_frame) yields from start to end, or
    /// `None` for a playlist that loops: how long an announcement holds the
    /// caller, in 20 ms steps.
    pub fn total_frames(&self) -> Option<usize> {
        self.total_samples()
            .map(|samples| samples.div_ceil(FRAME_SAMPLES))
    }

    /// Whether the playlist ends in a loop and so never finishes.
    pub fn is_looping(&self) -> bool {
        self.looping
    }
}

/// Samples in `duration` at [`SAMPLE_RATE`], rounded up so that a short
/// but non-zero silence is never dropped.
fn duration_samples(duration: Duration) -> usize {
    let samples = (duration.as_nanos() * u128::from(SAMPLE_RATE)).div_ceil(1_000_000_000);
    usize::try_from(samples).unwrap_or(usize::MAX)
}

/// The RTP header fields and index of one packet the [`Pacer`] lets out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// The frame index: the packet belongs at `start + index × 20 ms`.
    pub index: u64,
    /// The RTP timestamp: `start_timestamp + 160 × index`, wrapping
    /// (RFC 3550 §5.1, 8000 Hz clock).
    pub timestamp: u32,
    /// The RTP sequence number: one more than the previous packet sent,
    /// wrapping (RFC 3550 §5.1).
    pub sequence: u16,
    /// Set on the first packet, and on the first after a resynchronisation
    /// (a timestamp jump), as on the first packet of a talkspurt
    /// (RFC 3551 §4.1), so the receiver re-adapts its jitter buffer.
    pub marker: bool,
}

/// Paces a stream of 20 ms frames without drift, with time as an input.
///
/// Frame `n` is due at `start + n × 20 ms`, computed from `n`; nothing is
/// accumulated, so a late tick never delays the frames after it. The driver
/// asks [`next_due`](Self::next_due) for each packet it may send now, then
/// sleeps until [`next_deadline`](Self::next_deadline).
///
/// Late ticks: up to [`MAX_BURST`] due frames are sent back to back. If more
/// are due (the task stalled), the oldest slots are skipped: their
/// timestamps are never sent, the next packet carries the marker bit, and
/// sequence numbers stay consecutive, because RFC 3550 numbers packets
/// *sent* — a skip is a pause in sending, not packet loss. The audio is not
/// skipped: the driver takes a frame from its playlist only for a slot it
/// sends, so the caller hears every word, a little later.
#[derive(Debug, Clone)]
pub struct Pacer {
    start: Instant,
    start_timestamp: u32,
    start_sequence: u16,
    /// Index of the next slot to send.
    next_index: u64,
    /// Packets sent so far.
    sent: u64,
    /// Slots skipped by resynchronisation so far.
    skipped: u64,
    /// The next packet follows a skip.
    resynced: bool,
}

impl Pacer {
    /// A pacer whose frame 0 is due at `start` with these RTP fields.
    ///
    /// The initial timestamp and sequence number should be random
    /// (RFC 3550 §5.1); they are passed in so that tests can choose them.
    pub fn new(start: Instant, start_timestamp: u32, start_sequence: u16) -> Pacer {
        Pacer {
            start,
            start_timestamp,
            start_sequence,
            next_index: 0,
            sent: 0,
            skipped: 0,
            resynced: false,
        }
    }

    /// When frame `n` is due: `start + n × 20 ms`.
    pub fn deadline(&self, n: u64) -> Instant {
        self.start + frames_duration(n)
    }

    /// The RTP timestamp of frame `n`: `start_timestamp + 160 × n`, modulo
    /// 2³².
    pub fn timestamp(&self, n: u64) -> u32 {
        // Truncating n first is exact: 160 × n mod 2³² only depends on
        // n mod 2³².
        self.start_timestamp
            .wrapping_add((n as u32).wrapping_mul(FRAME_SAMPLES as u32))
    }

    /// How many frames not yet sent are due by `now` (deadline ≤ `now`),
    /// before the [`MAX_BURST`] limit applies.
    pub fn due(&self, now: Instant) -> usize {
        let Some(elapsed) = now.checked_duration_since(self.start) else {
            return 0;
        };
        let reached = elapsed.as_nanos() / FRAME_DURATION.as_nanos() + 1;
        let due = reached.saturating_sub(u128::from(self.next_index));
        usize::try_from(due).unwrap_or(usize::MAX)
    }

    /// The next packet to send at `now`, or `None` if none is due yet.
    ///
    /// Call it until it returns `None`. If more than [`MAX_BURST`] frames
    /// are due, the oldest are skipped first (see the type's documentation).
    pub fn next_due(&mut self, now: Instant) -> Option<Slot> {
        let due = self.due(now);
        if due == 0 {
            return None;
        }
        if due > MAX_BURST {
            let skip = (due - MAX_BURST) as u64;
            self.next_index += skip;
            self.skipped += skip;
            self.resynced = true;
        }
        let slot = Slot {
            index: self.next_index,
            timestamp: self.timestamp(self.next_index),
            sequence: self.start_sequence.wrapping_add(self.sent as u16),
            marker: self.sent == 0 || self.resynced,
        };
        self.next_index += 1;
        self.sent += 1;
        self.resynced = false;
        Some(slot)
    }

    /// When the next frame not yet sent is due: the time to sleep until.
    pub fn next_deadline(&self) -> Instant {
        self.deadline(self.next_index)
    }

    /// Packets let out so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Frame slots skipped by resynchronisation so far: how much the task
    /// has stalled, in 20 ms units, for metrics.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }
}

/// `n` × 20 ms.
fn frames_duration(n: u64) -> Duration {
    Duration::from_nanos(n.saturating_mul(FRAME_DURATION.as_nanos() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn shipped() -> PromptLibrary {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts");
        PromptLibrary::load(&dir).expect("the shipped prompts load")
    }

    /// A library built in memory, for playlists with exact lengths.
    fn in_memory(prompts: &[(&str, Vec<i16>)]) -> PromptLibrary {
        PromptLibrary {
            dir: PathBuf::from("test-prompts"),
            prompts: prompts
                .iter()
                .map(|(name, samples)| (name.to_string(), samples.as_slice().into()))
                .collect(),
        }
    }

    /// Every frame of a finite playlist.
    fn frames(mut playlist: Playlist) -> Vec<Frame> {
        std::iter::from_fn(|| playlist.next_frame()).collect()
    }

    /// A directory under the system temp dir, removed when dropped (also
    /// when the test panics).
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(label: &str) -> TempDir {
            static COUNTER: AtomicU32 = AtomicU32::new(0);
            let path = std::env::temp_dir().join(format!(
                "hotline-prompt-{label}-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&path).unwrap();
            TempDir(path)
        }

        fn write_wav(&self, file: &str, spec: hound::WavSpec) -> PathBuf {
            let path = self.0.join(file);
            let mut writer = hound::WavWriter::create(&path, spec).unwrap();
            for i in 0..800 * u32::from(spec.channels) {
                match (spec.sample_format, spec.bits_per_sample) {
                    (hound::SampleFormat::Float, _) => writer.write_sample(0.1f32).unwrap(),
                    (_, 8) => writer.write_sample((i % 100) as i8).unwrap(),
                    _ => writer.write_sample((i % 1000) as i16).unwrap(),
                }
            }
            writer.finalize().unwrap();
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn spec(sample_rate: u32, channels: u16, bits: u16) -> hound::WavSpec {
        hound::WavSpec {
            channels,
            sample_rate,
            bits_per_sample: bits,
            sample_format: hound::SampleFormat::Int,
        }
    }

    /// Loading `file` written with `spec` beside a good prompt fails; the
    /// message is returned.
    fn refusal(label: &str, file: &str, bad: hound::WavSpec) -> (PromptError, String) {
        let dir = TempDir::new(label);
        dir.write_wav("welcome.wav", spec(8000, 1, 16));
        let path = dir.write_wav(file, bad);
        let err = PromptLibrary::load(&dir.0).unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("{}: ", path.display())),
            "names the file: {message}"
        );
        (err, message)
    }

    #[test]
    fn the_shipped_prompts_all_load_with_sensible_durations() {
        let library = shipped();
        let mut expected = vec![
            "welcome",
            "merged_into_12345",
            "queue_position",
            "queue_callers",
            "estimated_wait",
            "minutes",
            "please_hold",
            "leader_session_choice",
            "ticket_created",
            "ticket_due",
            "transfer_notice",
            "emergency_redirect",
            "goodbye",
            "hold_music",
            // The queue's announcements, overflows and seat feature codes.
            "you_are_next",
            "estimated_wait_under",
            "queue_busy",
            "queue_unavailable",
            "queue_moved",
            "seat_paused",
            "seat_resumed",
            // To a seat whose three-way call could not be made.
            "three_way_failed",
            // The leader session's ticket.
            "ticket_confirm_number",
            "ticket_key_number",
            "ticket_number_invalid",
            "ticket_record_request",
            "ticket_existing",
            "ticket_due_in",
            "ticket_due_days",
            "ticket_unavailable",
            "leader_session_over",
            "beep",
            // Callbacks (回访).
            "callback_whisper",
            "callback_not_reached",
            "callback_survey",
            "callback_thanks",
            "queue_callback_offer",
            "queue_callback_registered",
            "queue_callback_whisper",
            "callback_later",
            "callback_later_registered",
            // Mandarin numerals for counts, beside the telephony digits.
            "num_liang",
            "num_10",
            "num_100",
            "num_1000",
            "num_10000",
        ];
        let digits: Vec<String> = (0..10)
            .flat_map(|d| [format!("digit_{d}"), format!("num_{d}")])
            .collect();
        expected.extend(digits.iter().map(String::as_str));
        expected.sort_unstable();
        assert_eq!(library.names().collect::<Vec<_>>(), expected);
        assert_eq!(library.len(), 66);

        for name in library.names() {
            let duration = library.duration(name).unwrap();
            let (min, max) = match name {
                // Single syllables, 50 ms lead-in and 200 ms tail included.
                n if n.starts_with("digit_") || n.starts_with("num_") => (0.3, 1.0),
                // Exactly 20 s: four chords of 2.5 s, played twice.
                "hold_music" => (20.0, 20.0),
                // The tone before a recording.
                "beep" => (0.4, 0.5),
                _ => (0.5, 15.0),
            };
            let secs = duration.as_secs_f64();
            assert!(
                (min..=max).contains(&secs),
                "{name} lasts {secs} s, expected {min}..={max}"
            );
        }
        let leader = library.duration("leader_session_choice").unwrap();
        assert!(
            (leader.as_secs_f64() - 12.7).abs() < 0.1,
            "leader_session_choice lasts {leader:?}"
        );
    }

    #[test]
    fn a_stereo_file_is_refused_naming_it() {
        let (err, message) = refusal("stereo", "goodbye.wav", spec(8000, 2, 16));
        assert!(matches!(err, PromptError::WrongFormat { .. }));
        assert!(
            message.ends_with("goodbye.wav: stereo, expected 8000 Hz mono 16-bit PCM"),
            "{message}"
        );
    }

    #[test]
    fn a_16_khz_file_is_refused_naming_it() {
        let (err, message) = refusal("16khz", "please_hold.wav", spec(16000, 1, 16));
        assert!(matches!(err, PromptError::WrongFormat { .. }));
        assert!(
            message.ends_with("please_hold.wav: 16000 Hz, expected 8000 Hz mono 16-bit PCM"),
            "{message}"
        );
    }

    #[test]
    fn an_8_bit_file_is_refused_naming_it() {
        let (err, message) = refusal("8bit", "minutes.wav", spec(8000, 1, 8));
        assert!(matches!(err, PromptError::WrongFormat { .. }));
        assert!(
            message.ends_with("minutes.wav: 8-bit, expected 8000 Hz mono 16-bit PCM"),
            "{message}"
        );
    }

    #[test]
    fn every_deviation_is_listed() {
        let float = hound::WavSpec {
            sample_format: hound::SampleFormat::Float,
            ..spec(44100, 2, 32)
        };
        let (_, message) = refusal("float", "goodbye.wav", float);
        assert!(
            message.ends_with(
                "goodbye.wav: 44100 Hz, stereo, 32-bit float, expected 8000 Hz mono 16-bit PCM"
            ),
            "{message}"
        );
    }

    #[test]
    fn a_mu_law_file_is_refused_naming_it() {
        // hound cannot write G.711 WAVs; this is the canonical 44-byte
        // header with format tag 7 (WAVE_FORMAT_MULAW), 8 kHz, mono, 8 bits.
        let data = [0xffu8; 800];
        let mut wav = Vec::new();
        wav.extend_from_slice(b"RIFF");
        wav.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
        wav.extend_from_slice(b"WAVEfmt ");
        wav.extend_from_slice(&16u32.to_le_bytes());
        wav.extend_from_slice(&7u16.to_le_bytes()); // μ-law
        wav.extend_from_slice(&1u16.to_le_bytes()); // channels
        wav.extend_from_slice(&8000u32.to_le_bytes()); // sample rate
        wav.extend_from_slice(&8000u32.to_le_bytes()); // byte rate
        wav.extend_from_slice(&1u16.to_le_bytes()); // block align
        wav.extend_from_slice(&8u16.to_le_bytes()); // bits per sample
        wav.extend_from_slice(b"data");
        wav.extend_from_slice(&(data.len() as u32).to_le_bytes());
        wav.extend_from_slice(&data);

        let dir = TempDir::new("mulaw");
        let path = dir.0.join("welcome.wav");
        std::fs::write(&path, wav).unwrap();
        let err = PromptLibrary::load(&dir.0).unwrap_err();
        assert!(matches!(err, PromptError::UnsupportedEncoding { .. }));
        assert!(
            err.to_string()
                .starts_with(&format!("{}: not linear PCM", path.display())),
            "{err}"
        );
    }

    #[test]
    fn an_empty_file_a_non_wav_file_and_an_empty_directory() {
        let dir = TempDir::new("empty");
        assert!(matches!(
            PromptLibrary::load(&dir.0),
            Err(PromptError::NoPrompts { .. })
        ));

        // Other files are ignored; only *.wav are prompts.
        std::fs::write(dir.0.join("README.md"), "notes").unwrap();
        dir.write_wav("welcome.wav", spec(8000, 1, 16));
        let library = PromptLibrary::load(&dir.0).unwrap();
        assert_eq!(library.names().collect::<Vec<_>>(), ["welcome"]);
        assert_eq!(library.dir(), dir.0);

        let empty = dir.0.join("goodbye.wav");
        hound::WavWriter::create(&empty, spec(8000, 1, 16))
            .unwrap()
            .finalize()
            .unwrap();
        let err = PromptLibrary::load(&dir.0).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{}: no audio in this file", empty.display())
        );

        std::fs::remove_file(&empty).unwrap();
        std::fs::write(dir.0.join("goodbye.wav"), b"not a wav").unwrap();
        let err = PromptLibrary::load(&dir.0).unwrap_err();
        assert!(matches!(err, PromptError::Unreadable { .. }), "{err}");
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_it() {
        let dir = std::env::temp_dir().join("hotline-prompt-no-such-directory");
        let err = PromptLibrary::load(&dir).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("{}: cannot list prompts", dir.display())),
            "{err}"
        );
    }

    #[test]
    fn a_sequence_is_its_parts_joined_then_padded_to_whole_frames() {
        let library = shipped();
        let playlist = Playlist::new(
            &library,
            [Item::prompt("please_hold"), Item::silence_ms(300)]
                .into_iter()
                .chain(queue_position(17))
                .chain(estimated_wait(5)),
        )
        .unwrap();

        let parts = [
            "please_hold",
            "queue_position",
            "digit_1",
            "digit_7",
            "queue_callers",
            "estimated_wait",
            "digit_5",
            "minutes",
        ];
        let mut expected: Vec<i16> = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            expected.extend_from_slice(library.get(part).unwrap());
            if i == 0 {
                expected.extend(std::iter::repeat_n(0, 2400)); // 300 ms
            }
        }
        assert_eq!(playlist.total_samples(), Some(expected.len()));
        assert_eq!(
            playlist.total_frames(),
            Some(expected.len().div_ceil(FRAME_SAMPLES))
        );

        let played: Vec<i16> = frames(playlist).concat();
        assert_eq!(
            played.len(),
            expected.len().div_ceil(FRAME_SAMPLES) * FRAME_SAMPLES
        );
        // Seamless: exactly the parts back to back, then silence.
        assert_eq!(played[..expected.len()], expected[..]);
        assert!(played[expected.len()..].iter().all(|&s| s == 0));
    }

    #[test]
    fn a_ticket_number_is_read_digit_by_digit() {
        let prompts: Vec<(String, Vec<i16>)> = (0..10)
            .map(|d| (format!("digit_{d}"), vec![d as i16 + 1; 100]))
            .chain([
                ("ticket_created".to_owned(), vec![-1; 10]),
                ("ticket_due".to_owned(), vec![-2; 10]),
            ])
            .collect();
        let prompts: Vec<(&str, Vec<i16>)> = prompts
            .iter()
            .map(|(name, samples)| (name.as_str(), samples.clone()))
            .collect();
        let library = in_memory(&prompts);

        let playlist = Playlist::new(&library, ticket_readback("20231015001")).unwrap();
        assert_eq!(playlist.total_samples(), Some(10 + 11 * 100 + 10));
        let played = frames(playlist).concat();
        assert_eq!(played[..10], [-1; 10]);
        // Each digit prompt is 100 samples of (digit + 1).
        let spoken: Vec<i16> = played[10..1110].chunks(100).map(|d| d[0] - 1).collect();
        assert_eq!(spoken, [2, 0, 2, 3, 1, 0, 1, 5, 0, 0, 1]);
        assert_eq!(played[1110..1120], [-2; 10]);
    }

    #[test]
    fn a_missing_prompt_is_an_error_naming_it_when_the_playlist_is_built() {
        let library = shipped();
        let err = Playlist::new(&library, [Item::prompt("welcom")]).unwrap_err();
        assert!(matches!(&err, PromptError::Missing { name, .. } if name == "welcom"));
        assert!(
            err.to_string()
                .starts_with("no prompt \"welcom\" (welcom.wav) in ")
        );

        let no_digits = in_memory(&[("ticket_created", vec![1; 10]), ("digit_1", vec![1; 10])]);
        let err = Playlist::new(&no_digits, [Item::digits("13")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no prompt \"digit_3\" (digit_3.wav) in test-prompts"
        );
    }

    #[test]
    fn only_digits_can_be_read_digit_by_digit() {
        let library = shipped();
        for number in ["", "12a4", "１２", "-3"] {
            let err = Playlist::new(&library, [Item::digits(number)]).unwrap_err();
            assert!(matches!(err, PromptError::NotDigits { .. }), "{number:?}");
        }
    }

    #[test]
    fn nothing_may_follow_a_loop() {
        let library = shipped();
        let err = Playlist::new(
            &library,
            [Item::looping("hold_music"), Item::prompt("goodbye")],
        )
        .unwrap_err();
        assert!(matches!(err, PromptError::AfterLoop { name } if name == "hold_music"));
    }

    #[test]
    fn a_loop_repeats_seamlessly_and_never_ends() {
        // 250 samples: not a whole number of frames, so seams fall mid-frame.
        let music: Vec<i16> = (1..=250).collect();
        let library = in_memory(&[
            ("please_hold", vec![-7; 100]),
            ("hold_music", music.clone()),
        ]);
        let mut playlist = Playlist::new(
            &library,
            [Item::prompt("please_hold"), Item::looping("hold_music")],
        )
        .unwrap();
        assert!(playlist.is_looping());
        assert_eq!(playlist.total_samples(), None);
        assert_eq!(playlist.total_frames(), None);

        let played: Vec<i16> = (0..1000)
            .flat_map(|_| playlist.next_frame().unwrap())
            .collect();
        assert_eq!(played[..100], [-7; 100]);
        for (i, &sample) in played[100..].iter().enumerate() {
            assert_eq!(sample, music[i % music.len()], "sample {i} of the loop");
        }
    }

    #[test]
    fn silence_rounds_up_to_whole_samples_and_an_empty_playlist_ends_at_once() {
        let library = shipped();
        let silence = |d| Playlist::new(&library, [Item::Silence(d)]).unwrap();
        assert_eq!(
            silence(Duration::from_millis(20)).total_samples(),
            Some(160)
        );
        assert_eq!(silence(Duration::from_micros(1)).total_samples(), Some(1));
        assert_eq!(silence(Duration::ZERO).total_frames(), Some(0));
        assert_eq!(
            frames(silence(Duration::from_micros(1))),
            [[0; FRAME_SAMPLES]]
        );

        let mut empty = Playlist::new(&library, []).unwrap();
        assert_eq!(empty.next_frame(), None);
        assert_eq!(empty.next_frame(), None);
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_minute_of_prompt_is_3000_packets_with_timestamps_across_the_wrap() {
        let library = shipped();
        // hold_music is exactly 20 s.
        let mut playlist =
            Playlist::new(&library, (0..3).map(|_| Item::prompt("hold_music"))).unwrap();
        let start = Instant::now();
        // Frame 1000 of 3000 crosses 2³².
        let start_ts = u32::MAX - 160 * 1000 + 1;
        let mut pacer = Pacer::new(start, start_ts, 7);

        // A driver that wakes exactly at each deadline.
        let mut now = start;
        let mut slots = Vec::new();
        'play: loop {
            while let Some(slot) = pacer.next_due(now) {
                let Some(_frame) = playlist.next_frame() else {
                    break 'play;
                };
                slots.push(slot);
            }
            let next = pacer.next_deadline();
            assert!(next > now);
            now = next;
        }

        assert_eq!(slots.len(), 3000);
        for (n, slot) in slots.iter().enumerate() {
            let n32 = n as u32;
            assert_eq!(slot.index, n as u64);
            assert_eq!(slot.timestamp, start_ts.wrapping_add(160 * n32));
            assert_eq!(slot.sequence, 7 + n as u16);
            assert_eq!(slot.marker, n == 0);
        }
        assert_eq!(slots[999].timestamp, u32::MAX - 159);
        assert_eq!(slots[1000].timestamp, 0);
        assert_eq!(
            slots[2999].timestamp.wrapping_sub(slots[0].timestamp),
            160 * 2999
        );
        // The last packet went out at 59.98 s, not a sleep's error later.
        assert_eq!(
            pacer.deadline(slots[2999].index),
            start + Duration::from_millis(59_980)
        );
        assert_eq!(pacer.skipped(), 0);
    }

    #[test]
    fn frames_fall_due_at_exact_instants() {
        let start = Instant::now();
        let pacer = Pacer::new(start, 0, 0);
        assert_eq!(pacer.due(start - MS), 0);
        assert_eq!(pacer.due(start), 1);
        assert_eq!(pacer.due(start + 19 * MS), 1);
        assert_eq!(pacer.due(start + 20 * MS - Duration::from_nanos(1)), 1);
        assert_eq!(pacer.due(start + 20 * MS), 2);
        assert_eq!(pacer.due(start + 60_000 * MS), 3001);
        assert_eq!(pacer.deadline(3000), start + 60_000 * MS);
        assert_eq!(pacer.next_deadline(), start);

        let mut pacer = pacer;
        assert_eq!(pacer.next_due(start - MS), None);
        assert!(pacer.next_due(start).is_some());
        assert_eq!(pacer.next_due(start), None);
        assert_eq!(pacer.due(start + 19 * MS), 0);
        assert_eq!(pacer.next_deadline(), start + 20 * MS);
    }

    #[test]
    fn a_slightly_late_tick_sends_the_backlog() {
        let start = Instant::now();
        let mut pacer = Pacer::new(start, 1000, 0);
        pacer.next_due(start).unwrap();

        // Woken 45 ms late for frame 1: frames 1..=3 are due.
        let now = start + 65 * MS;
        assert_eq!(pacer.due(now), 3);
        let burst: Vec<Slot> = std::iter::from_fn(|| pacer.next_due(now)).collect();
        assert_eq!(
            burst
                .iter()
                .map(|s| (s.index, s.timestamp, s.sequence))
                .collect::<Vec<_>>(),
            [(1, 1160, 1), (2, 1320, 2), (3, 1480, 3)]
        );
        assert!(burst.iter().all(|s| !s.marker));
        assert_eq!(pacer.skipped(), 0);
        // The schedule did not slip: frame 4 is still due at 80 ms.
        assert_eq!(pacer.next_deadline(), start + 80 * MS);
    }

    #[test]
    fn a_stalled_task_sends_a_few_frames_then_resynchronises() {
        let start = Instant::now();
        let mut pacer = Pacer::new(start, 0, 100);
        pacer.next_due(start).unwrap();

        // Stalled for 10 s: 500 frames are due, at most MAX_BURST go out.
        let now = start + 10_000 * MS;
        assert_eq!(pacer.due(now), 500);
        let burst: Vec<Slot> = std::iter::from_fn(|| pacer.next_due(now)).collect();
        assert_eq!(burst.len(), MAX_BURST);
        assert_eq!(pacer.skipped(), 500 - MAX_BURST as u64);
        assert_eq!(pacer.sent(), 1 + MAX_BURST as u64);
        // The newest frames, timestamps true to the clock …
        let indices: Vec<u64> = burst.iter().map(|s| s.index).collect();
        assert_eq!(indices, [496, 497, 498, 499, 500]);
        assert_eq!(burst[0].timestamp, 496 * 160);
        // … sequence numbers consecutive, the jump flagged once.
        let sequences: Vec<u16> = burst.iter().map(|s| s.sequence).collect();
        assert_eq!(sequences, [101, 102, 103, 104, 105]);
        let markers: Vec<bool> = burst.iter().map(|s| s.marker).collect();
        assert_eq!(markers, [true, false, false, false, false]);
        // And back on the original grid.
        assert_eq!(pacer.next_deadline(), start + 10_020 * MS);
        assert_eq!(pacer.next_due(start + 10_020 * MS).unwrap().index, 501);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let start = Instant::now();
        let mut pacer = Pacer::new(start, 0, u16::MAX - 1);
        let sequences: Vec<u16> = (0..4)
            .map(|n| pacer.next_due(start + n * 20 * MS).unwrap().sequence)
            .collect();
        assert_eq!(sequences, [u16::MAX - 1, u16::MAX, 0, 1]);
    }

    #[test]
    fn timestamps_are_a_function_of_the_frame_index() {
        let pacer = Pacer::new(Instant::now(), u32::MAX, 0);
        assert_eq!(pacer.timestamp(0), u32::MAX);
        assert_eq!(pacer.timestamp(1), 159);
        // 160 = 5 × 2⁵, so the timestamp comes back round every 2²⁷
        // frames (31 days).
        assert_eq!(pacer.timestamp(1 << 27), u32::MAX);
        assert_eq!(pacer.timestamp((1u64 << 32) + 1), 159);
    }
}
