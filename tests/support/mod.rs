//! Helpers shared by the end-to-end tests: a temporary copy of the shipped
//! table, a free loopback port, a daemon that is always stopped by its PID,
//! and a tiny HTTP GET; in [`gateway`], the daemon with its SIP peers.
//! Each test file compiles its own copy and uses only part of it.
#![allow(dead_code)]

pub mod gateway;
pub mod phone;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// The `hotline` command run from the repository: (exit code, stdout,
/// stderr).
pub fn hotline(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(args)
        .current_dir(REPO)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Chromium, headless and offline (no background connections), on `url`:
/// `args` say what it writes (`--dump-dom`, `--screenshot=…`) and how
/// (window size, a virtual time budget). Fails when it fails.
pub fn chromium(args: &[&str], url: &str) -> std::process::Output {
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .args(args)
        .arg(url)
        .output()
        .expect("chromium is not installed: run tests/run.sh, which installs it (Debian package chromium)");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A private directory holding a copy of routing.toml whose prompts point
/// back at the repository's prompts/.
pub struct TempTable {
    pub dir: PathBuf,
    pub path: PathBuf,
    pub text: String,
}

impl TempTable {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("hotline-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // The shipped table records leader sessions into `recordings/`
        // beside it.
        std::fs::create_dir_all(dir.join("recordings")).unwrap();
        let shipped = std::fs::read_to_string(Path::new(REPO).join("routing.toml")).unwrap();
        let prompts = Path::new(REPO).join("prompts");
        let text = shipped.replace(
            "prompts_dir = \"prompts\"",
            &format!("prompts_dir = {:?}", prompts.display().to_string()),
        );
        assert_ne!(text, shipped);
        let path = dir.join("routing.toml");
        std::fs::write(&path, &text).unwrap();
        TempTable { dir, path, text }
    }

    /// Replaces the file atomically (write + rename), as operators should.
    pub fn write(&self, text: &str) {
        let tmp = self.dir.join("routing.toml.new");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &self.path).unwrap();
    }
}

impl Drop for TempTable {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A loopback port free now, and never one this test process handed out
/// before: the kernel may give a port just released again at once, and two
/// listeners of one gateway (SIP, metrics) must not be handed the same.
pub fn free_port() -> u16 {
    use std::collections::HashSet;
    use std::sync::Mutex;
    static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let given = given.get_or_insert_with(HashSet::new);
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if given.insert(port) {
            return port;
        }
    }
}

/// Any child process, killed (by its own PID) when dropped.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A child process killed (by its own PID) when dropped.
pub struct Daemon {
    pub child: Child,
    pub log: PathBuf,
}

impl Daemon {
    pub fn start(args: &[&str], log: PathBuf) -> Self {
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_hotline"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start hotline");
        Daemon { child, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([format!("-{sig}"), self.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` over HTTP/1.0; returns (status, body).
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

/// [`http_get`] with a bearer token.
pub fn http_get_with(port: u16, path: &str, token: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

/// The value of one sample in a Prometheus text exposition.
pub fn metric(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// Polls `f` until it returns Some, for at most `limit`.
pub fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(v) = f() {
            return Some(v);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}
