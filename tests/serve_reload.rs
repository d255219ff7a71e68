//! `hotline serve` as a real process: metrics on loopback, reload when the
//! file changes and on SIGHUP, and a bad table refused while the running one
//! stays in force.

mod support;

use std::time::Duration;
use support::*;

const LIMIT: Duration = Duration::from_secs(20);

fn scrape(port: u16) -> Option<String> {
    match http_get(port, "/metrics")? {
        (200, body) => Some(body),
        _ => None,
    }
}

fn wait_metric(d: &Daemon, port: u16, series: &str, want: f64) {
    let got = wait_for(LIMIT, || {
        let body = scrape(port)?;
        (metric(&body, series)? == want).then_some(())
    });
    assert!(
        got.is_some(),
        "{series} never became {want}; last scrape:\n{}\nlog:\n{}",
        scrape(port).unwrap_or_default(),
        d.log_text()
    );
}

/// The 12385 entry, removed to make a valid table with one line fewer.
fn without_12385(text: &str) -> String {
    let start = text
        .find("[[lines]]\nnumber = \"12385\"")
        .expect("12385 entry");
    let end = start + text[start..].find("\n\n").unwrap() + 2;
    let mut s = text.to_string();
    s.replace_range(start..end, "");
    s
}

fn with_duplicate_number(text: &str) -> String {
    let s = text.replace("number = \"12300\"", "number = \"12396\"");
    assert_ne!(s, text);
    s
}

/// A daemon on a private copy of the shipped table, up and serving metrics.
fn start(name: &str, watch_interval: &str) -> (TempTable, Daemon, u16) {
    let table = TempTable::new(name);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let d = Daemon::start(
        &[
            "serve",
            "--config",
            table.path.to_str().unwrap(),
            "--metrics-listen",
            &listen,
            "--watch-interval",
            watch_interval,
            "--sip-listen",
            &format!("127.0.0.1:{}", free_port()),
        ],
        table.dir.join("daemon.log"),
    );
    wait_metric(&d, port, "hotline_routing_lines", 45.0);
    (table, d, port)
}

#[test]
fn file_changes_reload_and_a_bad_table_keeps_the_running_one() {
    let (table, d, port) = start("watch", "0.1");
    let body = scrape(port).unwrap();
    assert_eq!(
        metric(&body, "hotline_routing_reloads_total{result=\"ok\"}"),
        Some(0.0)
    );
    assert_eq!(
        metric(&body, "hotline_routing_reloads_total{result=\"error\"}"),
        Some(0.0)
    );
    assert_eq!(metric(&body, "hotline_routing_leader_sessions"), Some(39.0));

    // A valid edit goes live.
    table.write(&without_12385(&table.text));
    wait_metric(&d, port, "hotline_routing_lines", 44.0);
    wait_metric(
        &d,
        port,
        "hotline_routing_reloads_total{result=\"ok\"}",
        1.0,
    );

    // A broken edit is refused, counted and logged with file and line; the
    // 44-line table stays.
    table.write(&with_duplicate_number(&without_12385(&table.text)));
    wait_metric(
        &d,
        port,
        "hotline_routing_reloads_total{result=\"error\"}",
        1.0,
    );
    let body = scrape(port).unwrap();
    assert_eq!(metric(&body, "hotline_routing_lines"), Some(44.0));
    let log = wait_for(LIMIT, || {
        let l = d.log_text();
        l.contains("duplicate number `12396`").then_some(l)
    })
    .expect("the refusal is logged");
    assert!(
        log.contains(&format!("{}:", table.path.display())),
        "log names the file:\n{log}"
    );
    assert!(log.contains("running table kept"), "{log}");

    // Still alive and serving.
    assert_eq!(http_get(port, "/healthz").map(|r| r.0), Some(200));
    assert_eq!(http_get(port, "/nope").map(|r| r.0), Some(404));
}

#[test]
fn sighup_reloads_and_a_bad_table_on_sighup_is_refused() {
    // A watch interval of an hour: only SIGHUP can trigger these reloads.
    let (table, d, port) = start("hup", "3600");

    table.write(&without_12385(&table.text));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        metric(&scrape(port).unwrap(), "hotline_routing_lines"),
        Some(45.0),
        "no reload without a trigger"
    );
    d.signal("HUP");
    wait_metric(&d, port, "hotline_routing_lines", 44.0);
    wait_metric(
        &d,
        port,
        "hotline_routing_reloads_total{result=\"ok\"}",
        1.0,
    );

    table.write("this is [not toml");
    d.signal("HUP");
    wait_metric(
        &d,
        port,
        "hotline_routing_reloads_total{result=\"error\"}",
        1.0,
    );
    assert_eq!(
        metric(&scrape(port).unwrap(), "hotline_routing_lines"),
        Some(44.0)
    );

    std::fs::remove_file(&table.path).unwrap();
    d.signal("HUP");
    wait_metric(
        &d,
        port,
        "hotline_routing_reloads_total{result=\"error\"}",
        2.0,
    );
    assert_eq!(
        metric(&scrape(port).unwrap(), "hotline_routing_lines"),
        Some(44.0)
    );
}

#[test]
fn serve_refuses_to_start_on_a_bad_table() {
    let table = TempTable::new("badstart");
    table.write(&with_duplicate_number(&table.text));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args([
            "serve",
            "--config",
            table.path.to_str().unwrap(),
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("duplicate number `12396`"), "{err}");
}

#[test]
fn a_sip_port_in_use_is_named_as_an_operator_writes_it() {
    let table = TempTable::new("sip-in-use");
    let held = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let sip = held.local_addr().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args([
            "serve",
            "--config",
            table.path.to_str().unwrap(),
            "--metrics-listen",
            "127.0.0.1:0",
            "--sip-listen",
            &sip.to_string(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "error: cannot listen for SIP on udp {sip}, tcp {sip}: "
        )),
        "{err}"
    );
    assert!(!err.contains("Some("), "{err}");
}

#[test]
fn a_table_saved_in_another_encoding_is_refused_on_reload() {
    let (table, d, port) = start("gbk", "0.1");
    // 郴州 in GBK: not UTF-8.
    let mut bytes = table.text.clone().into_bytes();
    bytes.extend_from_slice(b"\n# \xb3\xbb\xd6\xdd\n");
    std::fs::write(&table.path, &bytes).unwrap();
    wait_metric(
        &d,
        port,
        "hotline_routing_reloads_total{result=\"error\"}",
        1.0,
    );
    assert_eq!(
        metric(&scrape(port).unwrap(), "hotline_routing_lines"),
        Some(45.0)
    );
    let log = wait_for(LIMIT, || {
        let l = d.log_text();
        l.contains("not UTF-8").then_some(l)
    });
    assert!(log.is_some(), "{}", d.log_text());
}

#[test]
fn sighup_reloads_the_prompts_and_a_bad_prompt_keeps_the_running_ones() {
    let table = TempTable::new("prompts-reload");
    // A private copy of the prompts, beside the table.
    let prompts = table.dir.join("prompts");
    std::fs::create_dir_all(&prompts).unwrap();
    for entry in std::fs::read_dir(std::path::Path::new(support::REPO).join("prompts")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "wav") {
            std::fs::copy(&path, prompts.join(path.file_name().unwrap())).unwrap();
        }
    }
    let text = table
        .text
        .lines()
        .map(|l| {
            if l.starts_with("prompts_dir = ") {
                "prompts_dir = \"prompts\"".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    table.write(&text);
    let port = free_port();
    let d = Daemon::start(
        &[
            "serve",
            "--config",
            table.path.to_str().unwrap(),
            "--metrics-listen",
            &format!("127.0.0.1:{port}"),
            "--watch-interval",
            "3600",
            "--sip-listen",
            &format!("127.0.0.1:{}", free_port()),
        ],
        table.dir.join("daemon.log"),
    );
    wait_metric(&d, port, "hotline_routing_lines", 45.0);

    // welcome.wav becomes 16 kHz: refused, naming the file; the old stay.
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(prompts.join("welcome.wav"), spec).unwrap();
    for _ in 0..1600 {
        w.write_sample(0i16).unwrap();
    }
    w.finalize().unwrap();
    d.signal("HUP");
    let log = wait_for(LIMIT, || {
        let l = d.log_text();
        l.contains("prompts not reloaded").then_some(l)
    })
    .expect("the refusal is logged");
    assert!(
        log.contains("welcome.wav: 16000 Hz"),
        "names the file and why:\n{log}"
    );

    // Fixed: the next SIGHUP loads them.
    std::fs::copy(
        std::path::Path::new(support::REPO).join("prompts/welcome.wav"),
        prompts.join("welcome.wav"),
    )
    .unwrap();
    d.signal("HUP");
    wait_for(LIMIT, || {
        d.log_text().contains("prompts reloaded").then_some(())
    })
    .expect("the prompts are reloaded");
}
