//! Call recording to WAV: 8 kHz, 16-bit, mono — the decoded G.711 audio
//! as it was, written with `hound`. A recorder keeps one track: either the
//! conference mix ([`super::mixer::Mixer::recording_mix`]) or one leg, so
//! recording each leg apart means one recorder per leg, named by
//! [`recording_path`]'s `{leg}`. Leader sessions (热线问政) are recorded
//! this way for publication; ordinary calls may be, by configuration.
//!
//! A recording is never worth a call. A recorder whose disk fills up or
//! goes away keeps the first error, turns later writes into no-ops and
//! reports the error from [`Recorder::finish`]: the media loop that feeds it
//! goes on unchanged, and the call with it. What was written before the
//! failure stays a playable file: the WAV header is brought up to date every
//! few seconds and again at the end.
//!
//! Writes go through a buffered `std::fs::File`, 320 bytes per 20 ms frame;
//! they reach the disk when the 8 KiB buffer fills, about twice a second.

use super::g711::CLOCK_RATE;
use chrono::{DateTime, TimeZone};
use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufWriter, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where a recording goes below the recordings directory when the
/// configuration names no template: a folder per day, a file per leg.
pub const DEFAULT_TEMPLATE: &str = "{date}/{call}-{leg}.wav";

const SPEC: hound::WavSpec = hound::WavSpec {
    channels: 1,
    sample_rate: CLOCK_RATE,
    bits_per_sample: 16,
    sample_format: hound::SampleFormat::Int,
};

/// The most samples a WAV file can count: its sizes are 32-bit byte counts
/// that include the header. At 8 kHz this is about 74 hours.
const MAX_SAMPLES: u64 = (u32::MAX as u64 - 64) / 2;

/// How often the header is rewritten, so that a crash of the gateway
/// loses at most this much of a recording.
const CHECKPOINT_SAMPLES: u64 = 5 * CLOCK_RATE as u64;

/// The longest a value from the call may be in a file name, in bytes: a
/// SIP Call-ID can be any length, a file name component only 255 bytes.
const MAX_VALUE_BYTES: usize = 96;

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(
        "cannot create recording {}: directory {} does not exist",
        .path.display(),
        .directory.display()
    )]
    MissingDirectory { path: PathBuf, directory: PathBuf },
    /// The recording's path is not below the recordings directory it was
    /// meant for.
    #[error(
        "recording {} is not below the recordings directory {}",
        .path.display(),
        .directory.display()
    )]
    OutsideDirectory { path: PathBuf, directory: PathBuf },
    #[error("recording {} already exists and is kept", .path.display())]
    Exists { path: PathBuf },
    #[error("cannot create recording {}: {source}", .path.display())]
    Create { path: PathBuf, source: io::Error },
    /// Writing failed mid-call (disk full, volume gone); the recording
    /// stopped there and the call went on.
    #[error("recording {} stopped: {source}", .path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error(
        "recording {} stopped at the WAV size limit of {} seconds",
        .path.display(),
        .limit.as_secs()
    )]
    TooLong { path: PathBuf, limit: Duration },
    /// The final header could not be written: the file may look shorter
    /// than the audio it holds.
    #[error("cannot finish recording {}: {source}", .path.display())]
    Finish { path: PathBuf, source: io::Error },
}

/// What a finished recording holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingSummary {
    pub path: PathBuf,
    pub samples: u64,
    pub duration: Duration,
}

/// One WAV track being recorded. `W` is the file, or any seekable
/// writer for tests.
///
/// Call [`Recorder::finish`] at hang-up. A recorder dropped without it (a
/// call task that panicked) still gets its header completed by hound, but
/// any error in doing so goes unseen.
pub struct Recorder<W: Write + Seek = BufWriter<File>> {
    path: PathBuf,
    wav: hound::WavWriter<W>,
    samples: u64,
    sample_limit: u64,
    next_checkpoint: u64,
    /// The first error; once set, writes are no-ops.
    failure: Option<RecordError>,
}

impl Recorder {
    /// Starts a recording at a new file `path`.
    ///
    /// An existing file is never replaced: a recording may be evidence, and
    /// the one already there is kept at the cost of this one. The directory
    /// must exist: a missing one usually means the recordings volume is not
    /// mounted, which the operator should hear about rather than find
    /// recordings on the root file system later. [`Recorder::create_below`]
    /// makes the per-day folders of a template.
    pub fn create(path: impl AsRef<Path>) -> Result<Recorder, RecordError> {
        let path = path.as_ref();
        let file = File::create_new(path).map_err(|source| {
            let directory = path.parent().filter(|dir| !dir.as_os_str().is_empty());
            match (source.kind(), directory) {
                (io::ErrorKind::AlreadyExists, _) => RecordError::Exists {
                    path: path.to_path_buf(),
                },
                (io::ErrorKind::NotFound, Some(dir)) if !dir.exists() => {
                    RecordError::MissingDirectory {
                        path: path.to_path_buf(),
                        directory: dir.to_path_buf(),
                    }
                }
                _ => RecordError::Create {
                    path: path.to_path_buf(),
                    source,
                },
            }
        })?;
        Recorder::new(BufWriter::new(file), path)
    }

    /// Starts a recording at `path` below the recordings directory
    /// `directory`, making the folders in between (the `{date}` of
    /// [`DEFAULT_TEMPLATE`]). `directory` itself must exist, for the
    /// reason [`Recorder::create`] gives.
    pub fn create_below(
        directory: impl AsRef<Path>,
        path: impl AsRef<Path>,
    ) -> Result<Recorder, RecordError> {
        let (directory, path) = (directory.as_ref(), path.as_ref());
        if !directory.is_dir() {
            return Err(RecordError::MissingDirectory {
                path: path.to_path_buf(),
                directory: directory.to_path_buf(),
            });
        }
        if !path.starts_with(directory) || path == directory {
            return Err(RecordError::OutsideDirectory {
                path: path.to_path_buf(),
                directory: directory.to_path_buf(),
            });
        }
        if let Some(folder) = path.parent() {
            fs::create_dir_all(folder).map_err(|source| RecordError::Create {
                path: path.to_path_buf(),
                source,
            })?;
        }
        Recorder::create(path)
    }
}

impl<W: Write + Seek> Recorder<W> {
    /// Starts a recording into `writer`; `path` names it in errors and in
    /// the summary.
    pub fn new(writer: W, path: impl Into<PathBuf>) -> Result<Recorder<W>, RecordError> {
        let path = path.into();
        match hound::WavWriter::new(writer, SPEC) {
            Ok(wav) => Ok(Recorder {
                path,
                wav,
                samples: 0,
                sample_limit: MAX_SAMPLES,
                next_checkpoint: CHECKPOINT_SAMPLES,
                failure: None,
            }),
            Err(error) => Err(RecordError::Create {
                path,
                source: into_io(error),
            }),
        }
    }

    /// Appends samples, usually one 20 ms frame. Never fails: after an
    /// error this does nothing, and [`Recorder::finish`] reports the error.
    pub fn write_frame(&mut self, samples: &[i16]) {
        if self.failure.is_some() || samples.is_empty() {
            return;
        }
        let count = samples.len() as u64;
        if count > self.sample_limit - self.samples {
            self.failure = Some(RecordError::TooLong {
                path: self.path.clone(),
                limit: duration_of(self.sample_limit),
            });
            return;
        }
        // The limit keeps `count` far below u32::MAX. hound's i16 writer
        // reuses one buffer across frames of the same size.
        let mut frame = self.wav.get_i16_writer(count as u32);
        for &sample in samples {
            frame.write_sample(sample);
        }
        if let Err(error) = frame.flush() {
            self.fail_writing(error);
            return;
        }
        self.samples += count;
        if self.samples >= self.next_checkpoint {
            self.next_checkpoint = self.samples + CHECKPOINT_SAMPLES;
            if let Err(error) = self.wav.flush() {
                self.fail_writing(error);
            }
        }
    }

    /// Where the recording goes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Samples written so far.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// The error that stopped the recording, if one did; the call layer
    /// may log it at once rather than at hang-up.
    pub fn error(&self) -> Option<&RecordError> {
        self.failure.as_ref()
    }

    /// Completes the file's header and reports the recording, or the first
    /// error met. The header is written even after an error, so the audio
    /// recorded before it stays playable.
    pub fn finish(self) -> Result<RecordingSummary, RecordError> {
        let Recorder {
            path,
            wav,
            samples,
            failure,
            ..
        } = self;
        let finalized = wav.finalize();
        if let Some(failure) = failure {
            return Err(failure);
        }
        if let Err(error) = finalized {
            return Err(RecordError::Finish {
                path,
                source: into_io(error),
            });
        }
        Ok(RecordingSummary {
            path,
            samples,
            duration: duration_of(samples),
        })
    }

    fn fail_writing(&mut self, error: hound::Error) {
        self.failure = Some(RecordError::Write {
            path: self.path.clone(),
            source: into_io(error),
        });
    }
}

impl<W: Write + Seek> fmt::Debug for Recorder<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recorder")
            .field("path", &self.path)
            .field("samples", &self.samples)
            .field("failure", &self.failure)
            .finish_non_exhaustive()
    }
}

/// hound wraps I/O errors; anything else it reports cannot happen with
/// our fixed 16-bit format but is kept as an I/O error with its message.
fn into_io(error: hound::Error) -> io::Error {
    match error {
        hound::Error::IoError(error) => error,
        other => io::Error::other(other),
    }
}

fn duration_of(samples: u64) -> Duration {
    Duration::from_millis(samples * 1000 / u64::from(CLOCK_RATE))
}

/// The path of a recording: `template` expanded below `dir`.
///
/// The template is a relative path with `/` between folders and these
/// placeholders: `{date}` (2024-05-01) and `{time}` (083015, no colons) of
/// `started_at` in its own time zone — pass the hotline's local time so
/// the day folders match the operator's day — `{call}` (the call's id) and
/// `{leg}` (which track: "mix", "caller", a seat …). An empty template
/// means [`DEFAULT_TEMPLATE`]; other text in braces is kept as written.
///
/// Nothing escapes `dir`: values from the call lose path separators and
/// control characters, cannot start with a dot (so neither `..` nor a
/// hidden file) and are cut to 96 bytes; empty, `.` and `..` folders of the
/// template are dropped.
pub fn recording_path<Tz: TimeZone>(
    dir: &Path,
    template: &str,
    call_id: &str,
    started_at: &DateTime<Tz>,
    leg: &str,
) -> PathBuf
where
    Tz::Offset: fmt::Display,
{
    let template = if template.trim().is_empty() {
        DEFAULT_TEMPLATE
    } else {
        template
    };
    let date = started_at.format("%Y-%m-%d").to_string();
    let time = started_at.format("%H%M%S").to_string();
    let call = path_safe(call_id);
    let leg = path_safe(leg);
    let value_of = |placeholder: &str| match placeholder {
        "date" => Some(date.as_str()),
        "time" => Some(time.as_str()),
        "call" => Some(call.as_str()),
        "leg" => Some(leg.as_str()),
        _ => None,
    };

    let mut path = dir.to_path_buf();
    for folder in template.split(['/', '\\']) {
        let component = expand(folder, value_of);
        if !matches!(component.as_str(), "" | "." | "..") {
            path.push(component);
        }
    }
    path
}

/// Replaces each `{name}` whose value is known, in one pass, so that a
/// value containing braces is never expanded again.
fn expand<'v>(text: &str, value_of: impl Fn(&str) -> Option<&'v str>) -> String {
    let mut expanded = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        expanded.push_str(&rest[..open]);
        let after_open = &rest[open + 1..];
        match after_open
            .find('}')
            .and_then(|close| Some((close, value_of(&after_open[..close])?)))
        {
            Some((close, value)) => {
                expanded.push_str(value);
                rest = &after_open[close + 1..];
            }
            None => {
                expanded.push('{');
                rest = after_open;
            }
        }
    }
    expanded.push_str(rest);
    expanded
}

/// A value from the call made safe to be, or be part of, one file name.
fn path_safe(value: &str) -> String {
    let mut safe = String::with_capacity(value.len().min(MAX_VALUE_BYTES));
    for (index, c) in value.char_indices() {
        if safe.len() + c.len_utf8() > MAX_VALUE_BYTES {
            break;
        }
        let unsafe_here = matches!(c, '/' | '\\') || c.is_control() || (c == '.' && index == 0);
        safe.push(if unsafe_here { '_' } else { c });
    }
    if safe.is_empty() {
        safe.push('_');
    }
    safe
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::g711::SAMPLES_PER_FRAME;
    use chrono::Utc;
    use std::cell::Cell;
    use std::path::Component;
    use std::rc::Rc;

    /// A fresh directory of this test's own under the system's temp dir.
    fn scratch_dir(test: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("hotline-recorder-{}-{test}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// `seconds` of a 440 Hz tone at half scale, in 20 ms frames.
    fn tone_frames(seconds: usize) -> Vec<Vec<i16>> {
        let samples: Vec<i16> = (0..seconds * CLOCK_RATE as usize)
            .map(|n| {
                let t = n as f64 / f64::from(CLOCK_RATE);
                (16_000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()).round() as i16
            })
            .collect();
        samples
            .chunks(SAMPLES_PER_FRAME)
            .map(<[i16]>::to_vec)
            .collect()
    }

    fn read_back(path: &Path) -> (hound::WavSpec, Vec<i16>) {
        let mut reader = hound::WavReader::open(path).unwrap();
        let samples = reader.samples::<i16>().map(Result::unwrap).collect();
        (reader.spec(), samples)
    }

    /// A disk with room for `room` bytes; past that, writes fail as a full
    /// disk does.
    struct SmallDisk {
        file: io::Cursor<Vec<u8>>,
        room: u64,
        writes_refused: Rc<Cell<usize>>,
    }

    impl Write for SmallDisk {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.file.position() + buf.len() as u64 > self.room {
                self.writes_refused.set(self.writes_refused.get() + 1);
                return Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    "no space left on the disk",
                ));
            }
            self.file.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Seek for SmallDisk {
        fn seek(&mut self, pos: io::SeekFrom) -> io::Result<u64> {
            self.file.seek(pos)
        }
    }

    #[test]
    fn a_second_of_tone_reads_back_as_the_same_samples_at_8_khz_16_bit_mono() {
        let dir = scratch_dir("round-trip");
        let path = dir.join("call-mix.wav");
        let frames = tone_frames(1);

        let mut recorder = Recorder::create(&path).unwrap();
        for frame in &frames {
            recorder.write_frame(frame);
        }
        let summary = recorder.finish().unwrap();

        assert_eq!(
            summary,
            RecordingSummary {
                path: path.clone(),
                samples: 8000,
                duration: Duration::from_secs(1),
            }
        );
        let (spec, samples) = read_back(&path);
        assert_eq!(spec, SPEC);
        assert_eq!(
            (spec.sample_rate, spec.bits_per_sample, spec.channels),
            (8000, 16, 1)
        );
        assert_eq!(samples, frames.concat());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_recording_in_a_missing_directory_is_refused_naming_the_path() {
        let dir = scratch_dir("missing");
        let path = dir.join("not-mounted").join("call-mix.wav");

        let error = Recorder::create(&path).unwrap_err();

        assert!(
            matches!(error, RecordError::MissingDirectory { .. }),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("does not exist"), "{message}");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_recording_where_a_file_stands_for_the_directory_is_refused_naming_the_path() {
        let dir = scratch_dir("not-a-directory");
        fs::write(dir.join("recordings"), b"").unwrap();
        let path = dir.join("recordings").join("call-mix.wav");

        assert_refused_naming(&path);
        fs::remove_dir_all(dir).unwrap();
    }

    fn assert_refused_naming(path: &Path) {
        let error = Recorder::create(path).unwrap_err();
        assert!(matches!(error, RecordError::Create { .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
    }

    #[cfg(unix)]
    #[test]
    fn a_recording_in_a_read_only_directory_is_refused_naming_the_path() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch_dir("read-only");
        let archive = dir.join("archive");
        fs::create_dir(&archive).unwrap();
        fs::set_permissions(&archive, fs::Permissions::from_mode(0o555)).unwrap();

        // A superuser writes through permission bits, so a 0555 directory
        // only counts where the system enforces them.
        let enforced = File::create(archive.join("probe")).is_err();
        if enforced {
            assert_refused_naming(&archive.join("call-mix.wav"));
        }
        // sysfs takes no new files from anyone, root included.
        if cfg!(target_os = "linux") && Path::new("/sys/kernel").is_dir() {
            assert_refused_naming(Path::new("/sys/kernel/call-mix.wav"));
        }
        fs::set_permissions(&archive, fs::Permissions::from_mode(0o755)).unwrap();
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_existing_recording_is_never_overwritten() {
        let dir = scratch_dir("exists");
        let path = dir.join("call-mix.wav");
        let mut first = Recorder::create(&path).unwrap();
        first.write_frame(&[1000; SAMPLES_PER_FRAME]);
        first.finish().unwrap();

        let error = Recorder::create(&path).unwrap_err();

        assert!(matches!(error, RecordError::Exists { .. }), "{error:?}");
        assert!(
            error.to_string().contains(&path.display().to_string()),
            "{error}"
        );
        assert_eq!(read_back(&path).1, [1000; SAMPLES_PER_FRAME]);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn create_below_makes_the_day_folder_but_not_the_recordings_directory() {
        let dir = scratch_dir("below");
        let started_at = "2024-05-01T08:30:15Z".parse::<DateTime<Utc>>().unwrap();
        let path = recording_path(&dir, DEFAULT_TEMPLATE, "abc123", &started_at, "mix");

        let mut recorder = Recorder::create_below(&dir, &path).unwrap();
        recorder.write_frame(&[0; SAMPLES_PER_FRAME]);
        recorder.finish().unwrap();
        assert!(dir.join("2024-05-01").join("abc123-mix.wav").is_file());

        let unmounted = dir.join("unmounted");
        let path = recording_path(&unmounted, DEFAULT_TEMPLATE, "abc123", &started_at, "mix");
        let error = Recorder::create_below(&unmounted, &path).unwrap_err();
        assert!(
            matches!(error, RecordError::MissingDirectory { .. }),
            "{error:?}"
        );
        assert!(!unmounted.exists());

        let error = Recorder::create_below(&dir, "/tmp/elsewhere.wav").unwrap_err();
        assert!(
            matches!(error, RecordError::OutsideDirectory { .. }),
            "{error:?}"
        );
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn writes_after_a_full_disk_are_ignored_and_finish_reports_the_first_error() {
        // Room for the 44-byte header and two frames.
        let writes_refused = Rc::new(Cell::new(0));
        let disk = SmallDisk {
            file: io::Cursor::new(Vec::new()),
            room: 44 + 2 * 320,
            writes_refused: Rc::clone(&writes_refused),
        };
        let mut recorder = Recorder::new(disk, "/recordings/call-mix.wav").unwrap();
        let frames = tone_frames(1);

        for frame in &frames {
            recorder.write_frame(frame);
        }

        assert_eq!(recorder.samples(), 2 * SAMPLES_PER_FRAME as u64);
        assert!(matches!(recorder.error(), Some(RecordError::Write { .. })));
        assert_eq!(
            writes_refused.get(),
            1,
            "nothing is tried after the first error"
        );
        let error = recorder.finish().unwrap_err();
        let message = error.to_string();
        assert!(message.contains("/recordings/call-mix.wav"), "{message}");
        assert!(message.contains("no space left"), "{message}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_recording_onto_a_full_device_keeps_the_call_going_and_reports_at_the_end() {
        // /dev/full accepts the open and refuses every write with ENOSPC.
        let Ok(device) = fs::OpenOptions::new().write(true).open("/dev/full") else {
            return;
        };
        let mut recorder = Recorder::new(BufWriter::new(device), "/dev/full").unwrap();
        for frame in tone_frames(2) {
            recorder.write_frame(&frame);
        }
        assert!(
            recorder.error().is_some(),
            "an 8 KiB buffer fills within 2 s"
        );
        let error = recorder.finish().unwrap_err();
        assert!(matches!(error, RecordError::Write { .. }), "{error:?}");
        assert!(error.to_string().contains("/dev/full"), "{error}");
    }

    #[test]
    fn a_recording_past_the_wav_size_limit_stops_and_keeps_what_fits() {
        let dir = scratch_dir("too-long");
        let path = dir.join("session.wav");
        let mut recorder = Recorder::create(&path).unwrap();
        // The real limit is some 74 hours; a test cannot wait for it.
        recorder.sample_limit = 2 * SAMPLES_PER_FRAME as u64;
        let frames = tone_frames(1);

        for frame in &frames[..3] {
            recorder.write_frame(frame);
        }

        let error = recorder.finish().unwrap_err();
        assert!(matches!(error, RecordError::TooLong { .. }), "{error:?}");
        assert_eq!(read_back(&path).1, frames[..2].concat());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_header_is_brought_up_to_date_every_five_seconds_in_case_of_a_crash() {
        let dir = scratch_dir("checkpoint");
        let path = dir.join("session.wav");
        let mut recorder = Recorder::create(&path).unwrap();
        let frames = tone_frames(6);

        for frame in &frames[..5 * 50] {
            recorder.write_frame(frame);
        }
        // Read while the recorder is still open, as after a crash.
        assert_eq!(read_back(&path).1, frames[..5 * 50].concat());

        for frame in &frames[5 * 50..] {
            recorder.write_frame(frame);
        }
        assert_eq!(recorder.finish().unwrap().duration, Duration::from_secs(6));
        fs::remove_dir_all(dir).unwrap();
    }

    fn started_at() -> DateTime<Utc> {
        "2024-05-01T00:30:15Z".parse().unwrap()
    }

    /// The components of `path` below `dir`, each a plain name.
    fn names_below(dir: &Path, path: &Path) -> Vec<String> {
        let below = path.strip_prefix(dir).expect("the path stays below dir");
        below
            .components()
            .map(|component| match component {
                Component::Normal(name) => name.to_string_lossy().into_owned(),
                other => panic!("{other:?} in {}", path.display()),
            })
            .collect()
    }

    #[test]
    fn the_default_template_files_each_leg_in_a_folder_per_day() {
        let dir = Path::new("/var/spool/hotline");
        let path = recording_path(
            dir,
            DEFAULT_TEMPLATE,
            "a84b4c76e66710@10.0.0.1",
            &started_at(),
            "caller",
        );
        assert_eq!(
            path,
            dir.join("2024-05-01")
                .join("a84b4c76e66710@10.0.0.1-caller.wav")
        );
        assert_eq!(
            recording_path(dir, "", "a84b", &started_at(), "caller"),
            dir.join("2024-05-01/a84b-caller.wav")
        );
    }

    #[test]
    fn the_date_and_time_are_those_of_the_zone_given() {
        let beijing = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
        let local = started_at().with_timezone(&beijing);
        let path = recording_path(
            Path::new("/r"),
            "{date}/{time}-{call}-{leg}.wav",
            "c1",
            &local,
            "seat-1001",
        );
        assert_eq!(path, Path::new("/r/2024-05-01/083015-c1-seat-1001.wav"));
        let path = recording_path(
            Path::new("/r"),
            "{date}/{time}.wav",
            "c1",
            &started_at(),
            "mix",
        );
        assert_eq!(path, Path::new("/r/2024-05-01/003015.wav"));
    }

    #[test]
    fn values_from_the_call_cannot_escape_the_recordings_directory() {
        let dir = Path::new("/var/spool/hotline");
        for hostile in [
            "../../etc/passwd",
            "..",
            ".",
            "/etc/cron.d/x",
            "a\\..\\..\\b",
            "x/../../y",
            "",
            "\0\n",
        ] {
            for template in [DEFAULT_TEMPLATE, "{call}/{leg}.wav", "{leg}/{call}"] {
                let path = recording_path(dir, template, hostile, &started_at(), hostile);
                let names = names_below(dir, &path);
                assert!(!names.is_empty());
                for name in names {
                    assert!(
                        !name.starts_with('.'),
                        "{name:?} from {hostile:?} in {template}"
                    );
                    assert!(
                        !name.contains(['/', '\\', '\0', '\n']),
                        "{name:?} from {hostile:?}"
                    );
                }
            }
        }
        assert_eq!(
            recording_path(
                dir,
                DEFAULT_TEMPLATE,
                "../../etc/passwd",
                &started_at(),
                "mix"
            ),
            dir.join("2024-05-01/_._.._etc_passwd-mix.wav")
        );
    }

    #[test]
    fn the_template_cannot_climb_out_either() {
        let dir = Path::new("/var/spool/hotline");
        let path = recording_path(
            dir,
            "/../{date}/./../{call}.wav",
            "c1",
            &started_at(),
            "mix",
        );
        assert_eq!(path, dir.join("2024-05-01/c1.wav"));
    }

    #[test]
    fn values_keep_chinese_names_and_lose_what_would_overflow_a_file_name() {
        let dir = Path::new("/r");
        let path = recording_path(dir, "{leg}.wav", "c1", &started_at(), "热线问政-市长");
        assert_eq!(path, dir.join("热线问政-市长.wav"));

        let long_call_id = "呼".repeat(200);
        let path = recording_path(dir, "{call}.wav", &long_call_id, &started_at(), "mix");
        let name = names_below(dir, &path).pop().unwrap();
        assert_eq!(name, format!("{}.wav", "呼".repeat(32)));
    }

    #[test]
    fn values_are_expanded_once_and_unknown_placeholders_are_kept() {
        let path = recording_path(
            Path::new("/r"),
            "{call}-{leg}-{agent}.wav",
            "{leg}",
            &started_at(),
            "mix",
        );
        assert_eq!(path, Path::new("/r/{leg}-mix-{agent}.wav"));
    }
}
