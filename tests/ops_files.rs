//! The shipped operations files in `ops/`, checked with the real tools:
//! promtool checks the alerting rules, runs their unit tests
//! (`ops/alerts_test.yml`) and parses every query of the Grafana dashboard;
//! every metric, label and label value the rules and the dashboard name is
//! one the daemon exports (its own `/metrics` after a seat login, a refused
//! login and an answered queue call over loopback); `systemd-analyze
//! verify` accepts the unit; and fail2ban-regex finds the daemon's own
//! security lines, text and JSON, with the addresses they name, and nothing
//! in its other lines.
//!
//! A missing tool fails the test (never skips it), naming the Debian
//! package that has it; tests/run.sh installs them.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use support::*;

/// How long the daemon may take to start, or to answer one step.
const LIMIT: Duration = Duration::from_secs(20);

/// How long one run of a tool may take.
const TOOL_LIMIT: Duration = Duration::from_secs(60);

/// Metrics whose series only exist once something happened that these
/// tests do not make happen (a ticket stored, a seat's transfer). They
/// must still be registered in src/metrics.rs under these names, with the
/// labels README's metrics table gives them.
const AFTER_TRAFFIC_ONLY: &[&str] = &["hotline_tickets_created_total", "hotline_transfers_total"];

/// Labels Prometheus adds to every scraped series.
const TARGET_LABELS: &[&str] = &["job", "instance"];

fn ops(name: &str) -> PathBuf {
    Path::new(REPO).join("ops").join(name)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

// ── Running the tools ──────────────────────────────────────────────────────

/// What a tool printed and how it exited.
struct Ran {
    command: String,
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn assert_success(&self) {
        assert!(
            self.status.success(),
            "`{}` failed ({})\nstdout:\n{}\nstderr:\n{}",
            self.command,
            self.status,
            self.stdout,
            self.stderr
        );
    }
}

/// Runs `tool args` for at most [`TOOL_LIMIT`] (then kills it, by its own
/// PID). A tool that is not installed fails the test, naming `package`.
fn run(tool: &str, package: &str, args: &[&str]) -> Ran {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let n = RUNS.fetch_add(1, Ordering::Relaxed);
    let base = std::env::temp_dir().join(format!("hotline-ops-run-{}-{n}", std::process::id()));
    let out_path = base.with_extension("out");
    let err_path = base.with_extension("err");
    let out = std::fs::File::create(&out_path).unwrap();
    let err = std::fs::File::create(&err_path).unwrap();
    let command = format!("{tool} {}", args.join(" "));
    let spawned = Command::new(tool)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) if e.kind() == ErrorKind::NotFound => panic!(
            "`{tool}` is not installed: install the Debian package `{package}` \
             (apt-get install {package}; tests/run.sh does it)"
        ),
        Err(e) => panic!("cannot run `{command}`: {e}"),
    };
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > TOOL_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`{command}` did not finish within {TOOL_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text =
        |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
    let ran = Ran {
        command,
        status,
        stdout: text(&out_path),
        stderr: text(&err_path),
    };
    let _ = std::fs::remove_file(&out_path);
    let _ = std::fs::remove_file(&err_path);
    ran
}

// ── The daemon ─────────────────────────────────────────────────────────────

/// `hotline serve` on a private copy of the shipped table, up and
/// answering `/healthz`. The daemon is dropped (killed) before the table.
struct Gateway {
    daemon: Daemon,
    admin: u16,
    sip: u16,
    _table: TempTable,
}

impl Gateway {
    fn start(name: &str, extra: &[&str]) -> Gateway {
        let table = TempTable::new(name);
        let (admin, sip) = (free_port(), free_port());
        let log = table.dir.join("daemon.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_hotline"))
            .args([
                "serve",
                "--config",
                path_str(&table.path),
                "--metrics-listen",
                &format!("127.0.0.1:{admin}"),
                "--sip-listen",
                &format!("127.0.0.1:{sip}"),
            ])
            .args(extra)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start hotline");
        let daemon = Daemon { child, log };
        let up = wait_for(LIMIT, || {
            (http_get(admin, "/healthz")?.0 == 200).then_some(())
        });
        assert!(up.is_some(), "daemon never served:\n{}", daemon.log_text());
        Gateway {
            daemon,
            admin,
            sip,
            _table: table,
        }
    }

    /// `GET path` with a bearer token; returns the status.
    fn api_status(&self, path: &str, token: &str) -> Option<u16> {
        let mut s = TcpStream::connect(("127.0.0.1", self.admin)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            s,
            "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n"
        )
        .ok()?;
        let mut buf = String::new();
        s.read_to_string(&mut buf).ok()?;
        buf.split_whitespace().nth(1)?.parse().ok()
    }

    /// Waits until the log holds `line`.
    fn wait_log(&self, line: &str) {
        let found = wait_for(LIMIT, || {
            self.daemon.log_text().contains(line).then_some(())
        });
        assert!(
            found.is_some(),
            "the log never said {line:?}:\n{}",
            self.daemon.log_text()
        );
    }
}

// ── Raw SIP over UDP ───────────────────────────────────────────────────────

/// A SIP endpoint on a loopback address, talking UDP to the daemon.
struct Peer {
    socket: UdpSocket,
    daemon: u16,
}

impl Peer {
    fn bind(ip: &str, daemon: u16) -> Peer {
        let socket = UdpSocket::bind((ip, 0)).unwrap_or_else(|e| panic!("bind {ip}: {e}"));
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        Peer { socket, daemon }
    }

    fn addr(&self) -> String {
        self.socket.local_addr().unwrap().to_string()
    }

    fn send(&self, msg: &str) {
        self.socket
            .send_to(msg.as_bytes(), ("127.0.0.1", self.daemon))
            .unwrap();
    }

    /// The next message `want` accepts, skipping the others (100 Trying,
    /// retransmissions), within [`LIMIT`].
    fn expect(&self, what: &str, want: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + LIMIT;
        let mut skipped = Vec::new();
        let mut buf = vec![0u8; 65_535];
        while Instant::now() < deadline {
            match self.socket.recv(&mut buf) {
                Ok(n) => {
                    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                    if want(&text) {
                        return text;
                    }
                    skipped.push(text.lines().next().unwrap_or_default().to_string());
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => panic!("receiving on {}: {e}", self.addr()),
            }
        }
        panic!(
            "{}: no {what} within {LIMIT:?}; skipped {skipped:?}",
            self.addr()
        )
    }
}

/// The value of header `name` (full form, any case).
fn header(msg: &str, name: &str) -> String {
    msg.lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no {name} header in:\n{msg}"))
}

/// Whether `msg` is a response `code` to a `method` request.
fn is_response(msg: &str, code: &str, method: &str) -> bool {
    msg.starts_with(&format!("SIP/2.0 {code}"))
        && msg.lines().any(|l| {
            l.split_once(':').is_some_and(|(n, v)| {
                n.trim().eq_ignore_ascii_case("cseq") && v.trim().ends_with(method)
            })
        })
}

/// A `status` response to `request`: its Vias, From, To (given `tag` if
/// it has none), Call-ID and CSeq, our Contact, and `body` as SDP.
fn response(request: &str, status: &str, tag: &str, contact: &str, body: &str) -> String {
    let mut vias = String::new();
    for l in request.lines() {
        if l.split_once(':')
            .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case("via"))
        {
            vias.push_str(l.trim_end());
            vias.push_str("\r\n");
        }
    }
    let mut to = header(request, "To");
    if !to.contains("tag=") {
        to = format!("{to};tag={tag}");
    }
    let from = header(request, "From");
    let call_id = header(request, "Call-ID");
    let cseq = header(request, "CSeq");
    let content_type = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    let len = body.len();
    format!(
        "SIP/2.0 {status}\r\n{vias}From: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq}\r\nContact: <{contact}>\r\n{content_type}Content-Length: {len}\r\n\r\n{body}"
    )
}

fn sdp(rtp_port: u16) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {rtp_port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
    )
}

fn register_text(peer: &Peer, seat: &str, cseq: u32, authorization: Option<&str>) -> String {
    let local = peer.addr();
    let sip = peer.daemon;
    let auth = authorization.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    format!(
        "REGISTER sip:127.0.0.1:{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKops{seat}x{cseq};rport\r\nMax-Forwards: 70\r\nFrom: <sip:{seat}@127.0.0.1>;tag=ops{seat}\r\nTo: <sip:{seat}@127.0.0.1>\r\nCall-ID: ops-register-{seat}-{local}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{seat}@{local}>\r\n{auth}Expires: 60\r\nContent-Length: 0\r\n\r\n"
    )
}

/// Registers `seat` from `peer` with `password` (MD5 digest, the shipped
/// realm); returns the answer to the authenticated REGISTER.
fn register(peer: &Peer, seat: &str, password: &str) -> String {
    use hotline::sip::digest::{Algorithm, authorization_header};
    peer.send(&register_text(peer, seat, 1, None));
    let challenge = peer.expect("401 challenge", |m| is_response(m, "401", "REGISTER"));
    let at = challenge.find("nonce=\"").expect("a nonce") + 7;
    let nonce = challenge[at..].split('"').next().unwrap_or_default();
    let uri = format!("sip:127.0.0.1:{}", peer.daemon);
    let auth = authorization_header(
        seat,
        password,
        "hotline.chenzhou",
        nonce,
        "REGISTER",
        &uri,
        Algorithm::Md5,
        Some("c0ffee"),
        1,
    );
    peer.send(&register_text(peer, seat, 2, Some(&auth)));
    peer.expect("answer to the authenticated REGISTER", |m| {
        m.starts_with("SIP/2.0 ")
            && !m.starts_with("SIP/2.0 100")
            && m.lines().any(|l| l.trim_end().ends_with("2 REGISTER"))
    })
}

/// An INVITE for `dialed` from `peer`, with an SDP offer naming `rtp_port`.
fn invite_text(peer: &Peer, dialed: &str, rtp_port: u16) -> String {
    let local = peer.addr();
    let sip = peer.daemon;
    let body = sdp(rtp_port);
    let len = body.len();
    format!(
        "INVITE sip:{dialed}@127.0.0.1:{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKopsinvite;rport\r\nMax-Forwards: 70\r\nFrom: <sip:13907350000@127.0.0.1>;tag=opscaller\r\nTo: <sip:{dialed}@127.0.0.1>\r\nCall-ID: ops-call-{local}\r\nCSeq: 1 INVITE\r\nContact: <sip:13907350000@{local}>\r\nContent-Type: application/sdp\r\nContent-Length: {len}\r\n\r\n{body}"
    )
}

/// A request inside the caller's dialog (`to` with the daemon's tag).
fn in_dialog(peer: &Peer, method: &str, cseq: u32, to: &str) -> String {
    let local = peer.addr();
    let sip = peer.daemon;
    format!(
        "{method} sip:12345@127.0.0.1:{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKops{method}{cseq};rport\r\nMax-Forwards: 70\r\nFrom: <sip:13907350000@127.0.0.1>;tag=opscaller\r\nTo: {to}\r\nCall-ID: ops-call-{local}\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n"
    )
}

/// Seat 8001 logs in; the carrier trunk (127.0.0.1) calls 12345; the
/// caller queues, the seat answers, the caller hangs up.
fn answered_queue_call(gw: &Gateway) {
    let seat = Peer::bind("127.0.0.1", gw.sip);
    let seat_rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let ok = register(&seat, "8001", "demo-8001-change-me");
    assert!(ok.starts_with("SIP/2.0 200"), "seat 8001 logs in: {ok}");

    let caller = Peer::bind("127.0.0.1", gw.sip);
    let caller_rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    caller.send(&invite_text(
        &caller,
        "12345",
        caller_rtp.local_addr().unwrap().port(),
    ));
    let answered = caller.expect("200 OK to the INVITE", |m| is_response(m, "200", "INVITE"));
    let to = header(&answered, "To");
    caller.send(&in_dialog(&caller, "ACK", 1, &to));

    let offer = seat.expect("the INVITE offering the call", |m| m.starts_with("INVITE "));
    let contact = format!("sip:8001@{}", seat.addr());
    let answer = sdp(seat_rtp.local_addr().unwrap().port());
    seat.send(&response(&offer, "200 OK", "opsseat", &contact, &answer));
    seat.expect("the ACK of the seat's answer", |m| m.starts_with("ACK "));

    caller.send(&in_dialog(&caller, "BYE", 2, &to));
    caller.expect("200 OK to the BYE", |m| is_response(m, "200", "BYE"));
    let bye = seat.expect("the BYE to the seat", |m| m.starts_with("BYE "));
    seat.send(&response(&bye, "200 OK", "opsseat", &contact, ""));
}

/// A REGISTER of seat 8101 with a wrong password, from `ip`: refused 403.
fn wrong_password(gw: &Gateway, ip: &str) {
    let intruder = Peer::bind(ip, gw.sip);
    let refused = register(&intruder, "8101", "not-the-password");
    assert!(
        refused.starts_with("SIP/2.0 403"),
        "a wrong password is refused: {refused}"
    );
}

/// An INVITE from `ip`, which is no trunk: refused 403.
fn untrusted_invite(gw: &Gateway, ip: &str) {
    let stranger = Peer::bind(ip, gw.sip);
    stranger.send(&invite_text(&stranger, "12345", 40_000));
    stranger.expect("403 to the untrusted INVITE", |m| {
        is_response(m, "403", "INVITE")
    });
}

// ── Metric names in PromQL and in the exposition ───────────────────────────

/// One label matcher: label, operator, value.
type Matcher = (String, String, String);

/// The label matchers of a selector, `s` starting just after its `{`; None
/// when it is no selector.
fn matchers(s: &str) -> Option<Vec<Matcher>> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    loop {
        while i < b.len() && (b[i] == b' ' || b[i] == b',') {
            i += 1;
        }
        if i >= b.len() {
            return None;
        }
        if b[i] == b'}' {
            return Some(out);
        }
        let start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        if i == start {
            return None;
        }
        let label = &s[start..i];
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        let op_start = i;
        while i < b.len() && matches!(b[i], b'=' | b'!' | b'~') {
            i += 1;
        }
        let op = &s[op_start..i];
        if !matches!(op, "=" | "!=" | "=~" | "!~") {
            return None;
        }
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        if i >= b.len() || b[i] != b'"' {
            return None;
        }
        i += 1;
        let value_start = i;
        while i < b.len() && b[i] != b'"' {
            if b[i] == b'\\' {
                i += 1;
            }
            i += 1;
        }
        if i >= b.len() {
            return None;
        }
        out.push((
            label.to_string(),
            op.to_string(),
            s[value_start..i].to_string(),
        ));
        i += 1;
    }
}

/// Every `hotline_[a-z_]+` name in `text`, with the matchers of its
/// selector when one follows.
fn metric_uses(text: &str) -> Vec<(String, Option<Vec<Matcher>>)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find("hotline_") {
        let start = from + at;
        let rest = &text[start..];
        let len = rest
            .bytes()
            .take_while(|c| c.is_ascii_lowercase() || *c == b'_')
            .count();
        from = start + len;
        let before = text[..start].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let name = rest[..len].trim_end_matches('_').to_string();
        let selector = rest[len..].strip_prefix('{').and_then(matchers);
        out.push((name, selector));
    }
    out
}

/// What the daemon's `/metrics` holds: each family's type, and its labels
/// with the values seen.
struct Exposed {
    types: BTreeMap<String, String>,
    labels: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
}

/// The family of a series name: a histogram's `_bucket`, `_sum` and
/// `_count` series are its own.
fn family_of(series: &str, types: &BTreeMap<String, String>) -> String {
    if types.contains_key(series) {
        return series.to_string();
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = series.strip_suffix(suffix)
            && types
                .get(base)
                .is_some_and(|t| t == "histogram" || t == "summary")
        {
            return base.to_string();
        }
    }
    series.to_string()
}

fn parse_exposition(body: &str) -> Exposed {
    let mut types = BTreeMap::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            if let (Some(name), Some(kind)) = (parts.next(), parts.next()) {
                types.insert(name.to_string(), kind.to_string());
            }
        }
    }
    let mut labels: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for line in body.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let family = family_of(&line[..name_end], &types);
        let entry = labels.entry(family).or_default();
        if let Some(after) = line[name_end..].strip_prefix('{')
            && let Some(found) = matchers(after)
        {
            for (label, _, value) in found {
                entry.entry(label).or_default().insert(value);
            }
        }
    }
    Exposed { types, labels }
}

/// Every string in a JSON document.
fn json_strings(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(items) => {
            for item in items {
                json_strings(item, out);
            }
        }
        serde_json::Value::Object(fields) => {
            for item in fields.values() {
                json_strings(item, out);
            }
        }
        _ => {}
    }
}

fn dashboard() -> serde_json::Value {
    let text = read(&ops("grafana-dashboard.json"));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("ops/grafana-dashboard.json is not valid JSON: {e}"))
}

/// The labels README's metrics table gives `family`: "`family{a,b}`".
fn documented_labels(readme: &str, family: &str) -> Option<BTreeSet<String>> {
    let at = readme.find(&format!("`{family}{{"))? + family.len() + 2;
    let end = readme[at..].find('}')? + at;
    Some(
        readme[at..end]
            .split(',')
            .map(|l| l.trim().to_string())
            .collect(),
    )
}

/// Whether README documents `value` on a line about `family`.
fn documented_value(readme: &str, family: &str, value: &str) -> bool {
    readme.lines().any(|l| {
        l.contains(family)
            && (l.contains(&format!("`{value}`")) || l.contains(&format!("\"{value}\"")))
    })
}

// ── (a) promtool ───────────────────────────────────────────────────────────

#[test]
fn promtool_checks_the_alert_rules_and_passes_their_unit_tests() {
    let rules = ops("alerts.yml");
    let checked = run(
        "promtool",
        "prometheus",
        &["check", "rules", path_str(&rules)],
    );
    checked.assert_success();
    assert!(checked.stdout.contains("SUCCESS"), "{}", checked.stdout);

    let tests = ops("alerts_test.yml");
    run(
        "promtool",
        "prometheus",
        &["test", "rules", path_str(&tests)],
    )
    .assert_success();
    // The unit tests keep proving that the head-of-queue and the no-seat
    // alerts fire, and that they stay quiet when they should.
    let tests_text = read(&tests);
    for alert in ["HotlineQueueHeadWaitLong", "HotlineNoSeatLoggedIn"] {
        assert!(
            tests_text.contains(&format!("alertname: {alert}")),
            "ops/alerts_test.yml tests {alert}"
        );
    }
    assert!(tests_text.contains("exp_alerts: []"));

    // Every alert waits (`for:`), has a severity, a summary and a
    // description.
    let text = read(&rules);
    let alerts: Vec<&str> = text.split("- alert: ").skip(1).collect();
    assert!(alerts.len() >= 13, "{} alerts", alerts.len());
    for alert in &alerts {
        let name = alert.lines().next().unwrap_or_default().trim();
        for key in ["expr:", "for:", "severity:", "summary:", "description:"] {
            assert!(
                alert.lines().any(|l| l.trim_start().starts_with(key)),
                "alert {name} has no `{key}`"
            );
        }
    }
}

#[test]
fn the_dashboard_uses_the_datasource_variable_and_promtool_parses_every_query() {
    let dash = dashboard();
    assert!(
        dash["schemaVersion"].as_u64().is_some_and(|v| v >= 36),
        "schemaVersion {}",
        dash["schemaVersion"]
    );
    let vars = dash["templating"]["list"]
        .as_array()
        .expect("templating variables");
    let datasource = vars
        .iter()
        .find(|v| v["name"] == "datasource")
        .expect("a `datasource` variable");
    assert_eq!(datasource["type"], "datasource");
    assert_eq!(datasource["query"], "prometheus");

    let want = serde_json::json!({"type": "prometheus", "uid": "${datasource}"});
    let panels = dash["panels"].as_array().expect("panels");
    let mut queries = Vec::new();
    let mut rows = Vec::new();
    for panel in panels {
        let title = panel["title"].as_str().unwrap_or_default();
        assert_eq!(panel["datasource"], want, "panel {title:?}");
        if panel["type"] == "row" {
            rows.push(title.to_string());
        }
        if let Some(targets) = panel["targets"].as_array() {
            for target in targets {
                assert_eq!(target["datasource"], want, "a query of panel {title:?}");
                let expr = target["expr"].as_str().expect("a PromQL expr");
                queries.push(expr.to_string());
            }
        }
    }
    for row in ["Queues", "Seats", "SIP", "RTP", "Tickets", "Routing", "API"] {
        assert!(
            rows.iter().any(|r| r.contains(row)),
            "a row about {row}: {rows:?}"
        );
    }
    if let Some(annotations) = dash["annotations"]["list"].as_array() {
        for a in annotations {
            if let Some(expr) = a["expr"].as_str() {
                queries.push(expr.to_string());
            }
        }
    }
    for v in vars {
        if v["type"] == "query"
            && let Some(q) = v["query"]["query"].as_str()
        {
            let inner = q
                .strip_prefix("label_values(")
                .and_then(|r| r.rsplit_once(','))
                .map(|(expr, _)| expr)
                .unwrap_or_else(|| panic!("variable query {q:?}"));
            queries.push(inner.to_string());
        }
    }
    assert!(queries.len() > 30, "{} queries", queries.len());

    // Each query as a recording rule, Grafana's variables given values,
    // for promtool to parse.
    let mut yaml = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, q) in queries.iter().enumerate() {
        let q = q
            .replace("$__rate_interval", "5m")
            .replace("$__interval", "1m")
            .replace("$__range", "1h")
            .replace("$instance", ".*")
            .replace("$queue", ".*");
        assert!(!q.contains('$'), "a variable left in {q}");
        let quoted = serde_json::to_string(&q).unwrap();
        writeln!(
            yaml,
            "      - record: dashboard:query_{i}\n        expr: {quoted}"
        )
        .unwrap();
    }
    let file =
        std::env::temp_dir().join(format!("hotline-ops-dashboard-{}.yml", std::process::id()));
    std::fs::write(&file, yaml).unwrap();
    let checked = run(
        "promtool",
        "prometheus",
        &["check", "rules", path_str(&file)],
    );
    let _ = std::fs::remove_file(&file);
    checked.assert_success();
}

// ── (b) the names against the daemon's /metrics ────────────────────────────

#[test]
fn every_metric_the_rules_and_the_dashboard_name_is_exported_by_the_daemon() {
    let gw = Gateway::start("ops-metrics", &[]);
    answered_queue_call(&gw);
    wrong_password(&gw, "127.0.0.1");
    let body = wait_for(LIMIT, || {
        let (status, body) = http_get(gw.admin, "/metrics")?;
        (status == 200
            && body.contains("hotline_calls_total{")
            && body.contains("hotline_queue_answered_within_target_total{")
            && body.contains("hotline_sip_auth_failures_total{"))
        .then_some(body)
    })
    .unwrap_or_else(|| {
        panic!(
            "the call and the refused login never showed in /metrics; log:\n{}",
            gw.daemon.log_text()
        )
    });
    let exposed = parse_exposition(&body);
    assert!(exposed.types.len() > 30, "{} families", exposed.types.len());

    let readme = read(&Path::new(REPO).join("README.md"));
    let source = read(&Path::new(REPO).join("src/metrics.rs"));
    let registered: BTreeSet<&str> = source
        .split('"')
        .filter(|s| {
            s.starts_with("hotline_") && s.bytes().all(|c| c.is_ascii_lowercase() || c == b'_')
        })
        .collect();
    for name in AFTER_TRAFFIC_ONLY {
        assert!(
            registered.contains(name),
            "{name} is registered in src/metrics.rs"
        );
    }

    let mut dashboard_strings = Vec::new();
    json_strings(&dashboard(), &mut dashboard_strings);
    let files = [
        ("ops/alerts.yml", read(&ops("alerts.yml"))),
        ("ops/grafana-dashboard.json", dashboard_strings.join("\n")),
    ];
    let mut problems = Vec::new();
    let mut named: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (file, text) in &files {
        for (name, selector) in metric_uses(text) {
            let family = family_of(&name, &exposed.types);
            named.entry(*file).or_default().insert(family.clone());
            let labels: BTreeMap<String, BTreeSet<String>> =
                if let Some(labels) = exposed.labels.get(&family) {
                    labels.clone()
                } else if AFTER_TRAFFIC_ONLY.contains(&family.as_str()) {
                    documented_labels(&readme, &family)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|l| (l, BTreeSet::new()))
                        .collect()
                } else {
                    problems.push(format!("{file}: `{name}` is not in the daemon's /metrics"));
                    continue;
                };
            for (label, op, value) in selector.unwrap_or_default() {
                if TARGET_LABELS.contains(&label.as_str()) {
                    continue;
                }
                let Some(values) = labels.get(&label) else {
                    let known: Vec<&String> = labels.keys().collect();
                    problems.push(format!(
                        "{file}: `{name}` has no label `{label}` (it has {known:?})"
                    ));
                    continue;
                };
                // Plain values and alternatives of plain values: each one
                // the daemon exported, or README documents.
                let plain = !value.is_empty()
                    && value.bytes().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'|'
                    });
                if op == "!~" || !plain {
                    continue;
                }
                for v in value.split('|') {
                    if !values.contains(v) && !documented_value(&readme, &family, v) {
                        problems.push(format!(
                            "{file}: `{name}{{{label}{op}\"{value}\"}}`: `{v}` is no value of `{label}` \
                             the daemon exports or README documents"
                        ));
                    }
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "names in ops/ the daemon does not export:\n{}\n\n/metrics:\n{body}",
        problems.join("\n")
    );

    // What the dashboard must show.
    let shown = named
        .get("ops/grafana-dashboard.json")
        .cloned()
        .unwrap_or_default();
    for family in [
        "hotline_queue_callers",
        "hotline_queue_longest_wait_seconds",
        "hotline_queue_estimated_wait_seconds",
        "hotline_queue_answered_within_target_total",
        "hotline_queue_calls_total",
        "hotline_seats",
        "hotline_sip_requests_total",
        "hotline_sip_responses_total",
        "hotline_sip_parse_errors_total",
        "hotline_sip_auth_failures_total",
        "hotline_rtp_packets_total",
        "hotline_rtp_ports_free",
        "hotline_media_timeouts_total",
        "hotline_tickets_open",
        "hotline_tickets_overdue",
        "hotline_tickets_created_total",
        "hotline_ticket_dispatch_total",
        "hotline_routing_reloads_total",
        "hotline_transfers_total",
        "hotline_api_requests_total",
    ] {
        assert!(shown.contains(family), "the dashboard shows {family}");
    }
    let alerted = named.get("ops/alerts.yml").cloned().unwrap_or_default();
    assert!(alerted.len() >= 12, "the rules use {alerted:?}");
}

// ── (c) systemd ────────────────────────────────────────────────────────────

#[test]
fn systemd_analyze_verifies_the_unit() {
    let shipped = read(&ops("hotline.service"));
    for line in [
        "Type=exec",
        "ExecStart=/usr/local/bin/hotline serve --config /etc/hotline/routing.toml",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "DynamicUser=yes",
        "StateDirectory=hotline",
        "ConfigurationDirectory=hotline",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
        "LimitNOFILE=65536",
        "Restart=on-failure",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "SystemCallFilter=@system-service",
        "WantedBy=multi-user.target",
    ] {
        assert!(
            shipped
                .lines()
                .any(|l| l == line || l.starts_with(&format!("{line} "))),
            "ops/hotline.service has `{line}`"
        );
    }
    // `verify` also checks that the commands exist: the copy runs the
    // binary under test instead of /usr/local/bin/hotline.
    let dir = std::env::temp_dir().join(format!("hotline-test-unit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let unit = dir.join("hotline.service");
    std::fs::write(
        &unit,
        shipped.replace("/usr/local/bin/hotline", env!("CARGO_BIN_EXE_hotline")),
    )
    .unwrap();
    let verified = run("systemd-analyze", "systemd", &["verify", path_str(&unit)]);
    let _ = std::fs::remove_dir_all(&dir);
    verified.assert_success();
    // Warnings (an unknown key, a value that does not parse) do not change
    // the exit status: none may mention the unit.
    let dir_text = dir.display().to_string();
    let complaints: Vec<&str> = verified
        .stdout
        .lines()
        .chain(verified.stderr.lines())
        .filter(|l| l.contains("hotline.service") || l.contains(&dir_text))
        .collect();
    assert!(
        complaints.is_empty(),
        "systemd-analyze verify complains about the unit (a missing /bin/kill comes with procps):\n{}",
        complaints.join("\n")
    );
}

// ── (d) fail2ban ───────────────────────────────────────────────────────────

/// fail2ban-regex on `log` with the shipped filter: (lines read, lines
/// matched, the address of each match in order).
fn fail2ban(log: &Path) -> (usize, usize, Vec<String>) {
    let filter = ops("fail2ban/hotline.conf");
    let (log, filter) = (path_str(log), path_str(&filter));
    let summary = run("fail2ban-regex", "fail2ban", &[log, filter]);
    summary.assert_success();
    let line = summary
        .stdout
        .lines()
        .find(|l| l.starts_with("Lines: "))
        .unwrap_or_else(|| panic!("no `Lines:` summary:\n{}", summary.stdout));
    // "Lines: 33 lines, 0 ignored, 3 matched, 30 missed"
    let words: Vec<&str> = line.split_whitespace().collect();
    let count = |word: &str| -> usize {
        words
            .windows(2)
            .find(|w| w[1].trim_end_matches(',') == word)
            .and_then(|w| w[0].parse().ok())
            .unwrap_or_else(|| panic!("no count of {word} in {line:?}"))
    };
    let (total, matched) = (count("lines"), count("matched"));
    let ips = run("fail2ban-regex", "fail2ban", &["-o", "ip", log, filter]);
    ips.assert_success();
    let hosts = ips
        .stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    (total, matched, hosts)
}

/// The addresses the log's security lines name, in order.
fn security_addresses(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| {
            if l.contains(" WARN security: ") {
                return l.rsplit(" from ").next().map(|a| a.trim().to_string());
            }
            if !l.contains(r#""target":"security""#) {
                return None;
            }
            let message = l.split(r#""message":""#).nth(1)?.split('"').next()?;
            message.rsplit(" from ").next().map(str::to_string)
        })
        .collect()
}

#[test]
fn fail2ban_matches_the_daemons_security_lines_and_nothing_else() {
    // Text log: a wrong API token, an INVITE from no trunk and a wrong
    // seat password.
    let gw = Gateway::start("ops-fail2ban-text", &[]);
    assert_eq!(gw.api_status("/api/queues", "wrong"), Some(401));
    untrusted_invite(&gw, "127.0.0.2");
    wrong_password(&gw, "127.0.0.1");
    for line in [
        "WARN security: api_unauthorized from 127.0.0.1",
        "WARN security: sip_auth_failed from 127.0.0.1",
    ] {
        gw.wait_log(line);
    }
    let text = gw.daemon.log_text();
    // An untrusted INVITE over UDP is no security line: its source costs
    // one forged packet, and a ban on it would be the forger's.
    assert!(
        !text.contains("security: untrusted_invite"),
        "a UDP INVITE's source is never handed to fail2ban:\n{text}"
    );
    // Other lines name the same addresses, which must not count.
    assert!(
        text.lines()
            .any(|l| !l.contains(" security: ") && l.contains("from=127.0.0.2:")),
        "the log has an ordinary line naming 127.0.0.2:\n{text}"
    );
    let expected = security_addresses(&text);
    assert_eq!(expected.len(), 2, "{text}");
    // A copy: the daemon may write more while fail2ban reads.
    let snapshot = gw.daemon.log.with_extension("text.snapshot");
    std::fs::write(&snapshot, &text).unwrap();
    let (total, matched, hosts) = fail2ban(&snapshot);
    assert_eq!(total, text.lines().count(), "every line read:\n{text}");
    assert_eq!(
        matched,
        expected.len(),
        "only the security lines match:\n{text}"
    );
    assert_eq!(hosts, expected);
    drop(gw);

    // JSON log.
    let gw = Gateway::start("ops-fail2ban-json", &["--log-format", "json"]);
    assert_eq!(gw.api_status("/api/queues", "wrong"), Some(401));
    untrusted_invite(&gw, "127.0.0.2");
    gw.wait_log(r#""message":"api_unauthorized from 127.0.0.1","#);
    let text = gw.daemon.log_text();
    assert!(!text.contains("untrusted_invite from"), "{text}");
    let expected = security_addresses(&text);
    assert_eq!(expected.len(), 1, "{text}");
    let snapshot = gw.daemon.log.with_extension("json.snapshot");
    std::fs::write(&snapshot, &text).unwrap();
    let (total, matched, hosts) = fail2ban(&snapshot);
    assert_eq!(total, text.lines().count(), "every line read:\n{text}");
    assert_eq!(
        matched,
        expected.len(),
        "only the security lines match:\n{text}"
    );
    assert_eq!(hosts, expected);
}

#[test]
fn the_fail2ban_filter_takes_every_kind_and_form_and_no_forged_line() {
    // (line, the address it must ban, or None: never matched)
    let lines: &[(&str, Option<&str>)] = &[
        (
            "2026-12-01T22:02:37.079465Z  WARN security: api_unauthorized from 192.0.2.1",
            Some("192.0.2.1"),
        ),
        (
            "2026-12-01T22:02:38.000001Z  WARN security: sip_auth_failed from 2001:db8::7",
            Some("2001:db8::7"),
        ),
        (
            "2026-12-01T22:02:39.000001Z  WARN security: sip_throttled from 198.51.100.9",
            Some("198.51.100.9"),
        ),
        (
            "2026-12-01T22:02:40.000001Z  WARN security: untrusted_invite from 203.0.113.4",
            Some("203.0.113.4"),
        ),
        (
            r#"{"timestamp":"2026-12-01T22:02:41.347596Z","level":"WARN","message":"sip_auth_failed from 2001:db8::8","target":"security"}"#,
            Some("2001:db8::8"),
        ),
        // As read from the journal (backend = systemd): host, unit, PID.
        (
            "gw1 hotline[4242]: 2026-12-01T22:02:42.000001Z  WARN security: untrusted_invite from 192.0.2.77",
            Some("192.0.2.77"),
        ),
        (
            r#"2026-12-01T22:02:43.000001Z  INFO call{id=1 kind="queue" line=12345}: hotline::call::engine: new call from=1.2.3.4 dialed=12345 caller="13907350000""#,
            None,
        ),
        (
            "2026-12-01T22:02:44.000001Z  INFO hotline::call::engine: INVITE from an address that is no configured trunk from=1.2.3.5:5060 suppressed=0",
            None,
        ),
        // Text a caller chose, made to look like a security line.
        (
            r#"2026-12-01T22:02:45.000001Z  INFO call{id=2 kind="queue" line=12345}: hotline::call::engine: new call from=1.2.3.4 dialed=12345 caller=" WARN security: untrusted_invite from 6.6.6.6""#,
            None,
        ),
        (
            r#"{"timestamp":"2026-12-01T22:02:46.347596Z","level":"INFO","message":"new call","caller":"\",\"level\":\"WARN\",\"message\":\"api_unauthorized from 6.6.6.7\",\"target\":\"security\"}","target":"hotline::call::engine"}"#,
            None,
        ),
        // Not the security target, not a warning, not ending in the address.
        (
            "2026-12-01T22:02:47.000001Z  WARN hotline::admin: security: api_unauthorized from 6.6.6.8",
            None,
        ),
        (
            "2026-12-01T22:02:48.000001Z  INFO security: api_unauthorized from 6.6.6.9",
            None,
        ),
        (
            "2026-12-01T22:02:49.000001Z  WARN security: api_unauthorized from 6.6.6.10 and more",
            None,
        ),
    ];
    let log = std::env::temp_dir().join(format!("hotline-ops-f2b-{}.log", std::process::id()));
    let mut text = String::new();
    for (line, _) in lines {
        text.push_str(line);
        text.push('\n');
    }
    std::fs::write(&log, &text).unwrap();
    let (total, matched, hosts) = fail2ban(&log);
    let _ = std::fs::remove_file(&log);
    let expected: Vec<String> = lines
        .iter()
        .filter_map(|(_, host)| host.map(str::to_string))
        .collect();
    assert_eq!(total, lines.len());
    assert_eq!(matched, expected.len(), "{text}");
    assert_eq!(hosts, expected);
}
