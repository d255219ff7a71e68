//! `hotline serve`'s log lines as a log collector reads them from a pipe: no
//! terminal escape codes, and with `--log-format json` one JSON object per
//! line, a refused reload and the shutdown included.

mod support;

use serde_json::Value;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::*;

const LIMIT: Duration = Duration::from_secs(20);

/// Everything a daemon wrote to stderr (a pipe) from start-up, through a
/// reload of a broken table, to SIGTERM.
fn serve_stderr(name: &str, extra: &[&str]) -> (String, u16) {
    let table = TempTable::new(name);
    let port = free_port();
    let sip = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args([
            "serve",
            "--config",
            table.path.to_str().unwrap(),
            "--metrics-listen",
            &format!("127.0.0.1:{port}"),
            "--sip-listen",
            &format!("127.0.0.1:{sip}"),
            "--watch-interval",
            "3600",
        ])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start hotline");
    // Killed by its PID when dropped, should an assertion fail first.
    let mut d = Daemon {
        child,
        log: table.dir.join("unused.log"),
    };
    let errors = |want: f64| {
        wait_for(LIMIT, || {
            let (_, body) = http_get(port, "/metrics")?;
            (metric(&body, "hotline_routing_reloads_total{result=\"error\"}")? == want)
                .then_some(())
        })
    };
    errors(0.0).expect("the daemon serves metrics");
    table.write(
        &table
            .text
            .replace("number = \"12300\"", "number = \"12396\""),
    );
    d.signal("HUP");
    errors(1.0).expect("the broken table is refused");
    d.signal("TERM");
    let mut stderr = String::new();
    d.child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(d.child.wait().unwrap().success(), "{stderr}");
    (stderr, sip)
}

#[test]
fn text_logs_to_a_pipe_have_no_colour_codes() {
    let (stderr, sip) = serve_stderr("logs-text", &[]);
    assert!(!stderr.contains("\x1b["), "escape codes in:\n{stderr}");
    assert!(stderr.contains("routing table loaded"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "SIP listening on udp 127.0.0.1:{sip}, tcp 127.0.0.1:{sip}"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("duplicate number `12396`"), "{stderr}");
    assert!(stderr.contains("shutting down"), "{stderr}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let (stderr, sip) = serve_stderr("logs-json", &["--log-format", "json"]);
    let lines: Vec<Value> = stderr
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}\n{stderr}"))
        })
        .collect();
    assert!(lines.iter().all(Value::is_object), "{stderr}");
    let find = |message: &str| {
        lines
            .iter()
            .find(|v| v["message"].as_str().is_some_and(|m| m.contains(message)))
            .unwrap_or_else(|| panic!("no {message:?} line in:\n{stderr}"))
    };
    let loaded = find("routing table loaded");
    assert_eq!(loaded["level"], "INFO");
    assert_eq!(loaded["lines"], 45);
    assert!(loaded["timestamp"].is_string(), "{loaded}");
    assert_eq!(
        find("SIP listening")["udp"],
        format!("127.0.0.1:{sip}").as_str()
    );
    let refused = find("routing table refused");
    assert_eq!(refused["level"], "ERROR");
    assert_eq!(refused["trigger"], "sighup");
    assert_eq!(find("duplicate number `12396`")["level"], "ERROR");
    find("shutting down");
}
