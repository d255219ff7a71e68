//! A leader session's recordings, ready to publish (整个接听过程…进行录播):
//! one folder per session, holding for each call the leader answered one
//! WAV with both parties mixed, named by time, and an `index.json` listing
//! the session's calls in order — the caller's number masked
//! (138****0000), times, the seat, the ticket a caller took instead of
//! waiting — so the publisher takes the folder as it is.
//!
//! The mix is made after the call from the per-leg WAVs, which start at
//! the same instant and line up sample for sample; nothing is added to
//! the media path.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// One call of the session, as the index lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub call: String,
    /// Masked: 138****0000.
    pub caller: String,
    pub started: String,
    pub ended: String,
    pub seat: Option<String>,
    pub ticket: Option<String>,
    /// The mixed recording, a file name in the session's folder.
    pub recording: Option<String>,
}

/// The session, as the index heads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub date: String,
    pub unit: Option<String>,
    pub leader: Option<String>,
    pub title: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Index {
    session: SessionInfo,
    calls: Vec<Entry>,
}

/// The session's folder below the recordings folder:
/// `sessions/<date>-<unit>`.
pub fn session_dir(recordings: &Path, session: &SessionInfo) -> PathBuf {
    let unit = session.unit.as_deref().unwrap_or("session");
    recordings
        .join("sessions")
        .join(format!("{}-{}", safe(&session.date), safe(unit)))
}

/// A path component made of what a name may hold: letters (CJK ones
/// too), digits, `-` and `_`; anything else becomes `_`.
fn safe(s: &str) -> String {
    let out: String = s
        .chars()
        .take(64)
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() { "_".into() } else { out }
}

/// A file name for a call's mix: its start time and call id.
pub fn mix_name(started_hms: &str, call: &str) -> String {
    format!("{}-{}.wav", safe(started_hms), safe(call))
}

/// Waits (up to `limit`) until the recorder has finished the WAV at
/// `path` (its header accounts for all its samples): whether it did.
pub fn wait_finished(path: &Path, limit: Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if let Ok(reader) = hound::WavReader::open(path)
            && size >= 44
            && u64::from(reader.len()) * 2 + 44 >= size.saturating_sub(16)
        {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Reads a WAV the recorder may still be finishing: waits (up to `limit`)
/// until its header accounts for all its samples.
fn read_finished(path: &Path, limit: Duration) -> std::io::Result<Vec<i16>> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if let Ok(reader) = hound::WavReader::open(path) {
            let samples = u64::from(reader.len());
            if size >= 44 && samples * 2 + 44 >= size.saturating_sub(16) {
                return reader
                    .into_samples::<i16>()
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(std::io::Error::other);
            }
        }
        if std::time::Instant::now() >= deadline {
            return Err(std::io::Error::other(format!(
                "{} not finished in time",
                path.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Mixes the two legs' WAVs into `out` (8 kHz, 16-bit mono, sample by
/// sample, saturating).
pub fn mix(a: &Path, b: &Path, out: &Path) -> std::io::Result<()> {
    let limit = Duration::from_secs(10);
    let (x, y) = (read_finished(a, limit)?, read_finished(b, limit)?);
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(out, spec).map_err(std::io::Error::other)?;
    for i in 0..x.len().max(y.len()) {
        let s =
            i32::from(x.get(i).copied().unwrap_or(0)) + i32::from(y.get(i).copied().unwrap_or(0));
        w.write_sample(s.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16)
            .map_err(std::io::Error::other)?;
    }
    w.finalize().map_err(std::io::Error::other)
}

/// One index is changed at a time (calls of a session end on many tasks).
static INDEX: Mutex<()> = Mutex::new(());

/// Adds `entry` to the session's `index.json`, calls in order of their
/// start; written whole to a temporary file and renamed, so a reader never
/// sees half of it.
pub fn add_to_index(dir: &Path, session: &SessionInfo, entry: Entry) -> std::io::Result<()> {
    let _one = INDEX.lock().unwrap_or_else(|e| e.into_inner());
    std::fs::create_dir_all(dir)?;
    let path = dir.join("index.json");
    let mut index = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice::<Index>(&bytes).map_err(std::io::Error::other)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Index {
            session: session.clone(),
            calls: Vec::new(),
        },
        Err(e) => return Err(e),
    };
    index.calls.retain(|c| c.call != entry.call);
    index.calls.push(entry);
    index
        .calls
        .sort_by(|a, b| a.started.cmp(&b.started).then(a.call.cmp(&b.call)));
    let tmp = dir.join("index.json.tmp");
    std::fs::write(
        &tmp,
        serde_json::to_vec_pretty(&index).map_err(std::io::Error::other)?,
    )?;
    std::fs::rename(&tmp, &path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> SessionInfo {
        SessionInfo {
            date: "2026-12-01".into(),
            unit: Some("市发改委".into()),
            leader: Some("林喜洋".into()),
            title: Some("主任".into()),
        }
    }

    fn entry(call: &str, started: &str) -> Entry {
        Entry {
            call: call.into(),
            caller: "139****0000".into(),
            started: started.into(),
            ended: started.into(),
            seat: Some("8900".into()),
            ticket: None,
            recording: Some(mix_name("100000", call)),
        }
    }

    #[test]
    fn the_index_lists_the_sessions_calls_in_order_once_each() {
        let root = std::env::temp_dir().join(format!("hotline-pub-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let dir = session_dir(&root, &info());
        assert!(dir.ends_with("sessions/2026-12-01-市发改委"), "{dir:?}");
        add_to_index(&dir, &info(), entry("b", "2026-12-01T10:05:00+08:00")).unwrap();
        add_to_index(&dir, &info(), entry("a", "2026-12-01T09:30:00+08:00")).unwrap();
        add_to_index(&dir, &info(), entry("b", "2026-12-01T10:05:00+08:00")).unwrap();
        let index: Index =
            serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
        assert_eq!(index.session, info());
        let calls: Vec<&str> = index.calls.iter().map(|c| c.call.as_str()).collect();
        assert_eq!(calls, ["a", "b"]);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn names_keep_letters_and_lose_separators() {
        assert_eq!(safe("../etc/passwd"), "___etc_passwd");
        assert_eq!(safe("市发改委"), "市发改委");
        assert_eq!(mix_name("09:30:00", "a/b@c"), "09_30_00-a_b_c.wav");
    }

    #[test]
    fn two_legs_are_mixed_sample_by_sample_without_wrapping() {
        let root = std::env::temp_dir().join(format!("hotline-mix-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let write = |name: &str, samples: &[i16]| {
            let mut w = hound::WavWriter::create(root.join(name), spec).unwrap();
            for s in samples {
                w.write_sample(*s).unwrap();
            }
            w.finalize().unwrap();
        };
        write("a.wav", &[100, 30_000, -30_000, 5]);
        write("b.wav", &[1, 30_000, -30_000]);
        mix(
            &root.join("a.wav"),
            &root.join("b.wav"),
            &root.join("out/m.wav"),
        )
        .unwrap();
        let got: Vec<i16> = hound::WavReader::open(root.join("out/m.wav"))
            .unwrap()
            .into_samples::<i16>()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, [101, i16::MAX, i16::MIN, 5]);
        let _ = std::fs::remove_dir_all(&root);
    }
}
