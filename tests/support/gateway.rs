//! The daemon under test and the peers it talks to over loopback: SIPp
//! (the carrier trunk, the seats, the sub-centre and emergency trunks,
//! from the templates in `tests/sipp/`), baresip (a real seat phone), and
//! what a caller hears as RTP. Shared by `tests/sip_calls.rs` and
//! `tests/queues.rs`.

use super::{Daemon, Killed, REPO, TempTable, free_port, http_get, metric, wait_for};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The daemon under test, with the trunk ports SIPp plays.
pub struct Gateway {
    pub table: TempTable,
    pub daemon: Daemon,
    pub sip: u16,
    pub metrics: u16,
    pub city: u16,
    pub provincial: u16,
    pub emergency: u16,
}

impl Gateway {
    pub fn start(name: &str) -> Gateway {
        Gateway::start_with(name, |t| t)
    }

    /// [`Gateway::start`] on the test table after `edit`.
    pub fn start_with(name: &str, edit: impl Fn(String) -> String) -> Gateway {
        let table = TempTable::new(name);
        let (city, provincial, emergency) = (free_port(), free_port(), free_port());
        let text = table
            .text
            .replace("sip:127.0.0.1:5091", &format!("sip:127.0.0.1:{city}"))
            .replace("sip:127.0.0.1:5092", &format!("sip:127.0.0.1:{provincial}"))
            .replace("sip:127.0.0.1:5093", &format!("sip:127.0.0.1:{emergency}"))
            // No OPTIONS probes unless a test asks: SIPp's trunks start
            // after the daemon and answer INVITEs only.
            .replace(
                "realm = \"hotline.chenzhou\"",
                "realm = \"hotline.chenzhou\"\ntrunk_probe_interval_seconds = 0",
            )
            .replace("seat_ring_seconds = 20", "seat_ring_seconds = 2")
            .replace("max_ring_seconds = 60", "max_ring_seconds = 5")
            // Queues on a test's time scale: offers ring 2 s, wrap-up is
            // 1 s, a dual-number caller widens to skilled seats at 2 s and
            // to general seats at 4 s.
            .replace("ring_seconds = 20\n", "ring_seconds = 2\n")
            .replace("wrap_up_seconds = 10\n", "wrap_up_seconds = 1\n")
            .replace("expert_wait_seconds = 10", "expert_wait_seconds = 2")
            .replace("widen_after_seconds = 30", "widen_after_seconds = 4");
        let text = edit(text);
        table.write(&text);
        let (sip, metrics) = (free_port(), free_port());
        let daemon = serve(&table, sip, metrics, "daemon.log");
        let gw = Gateway {
            table,
            daemon,
            sip,
            metrics,
            city,
            provincial,
            emergency,
        };
        gw.wait_metric("hotline_active_calls", 0.0);
        gw
    }

    /// Kills the daemon with SIGKILL (no shutdown of any kind: a power
    /// cut as the store sees it) and starts it again on the same table and
    /// ports; `log` names the new one's log.
    pub fn kill_and_restart(&mut self, log: &str) {
        self.daemon.signal("KILL");
        let _ = self.daemon.child.wait();
        self.daemon = serve(&self.table, self.sip, self.metrics, log);
        // Up once it serves its metrics (callers caught by the kill may
        // already be back, retransmitting their INVITEs).
        let up = wait_for(Duration::from_secs(10), || {
            self.metric("hotline_active_calls").map(|_| ())
        });
        assert!(up.is_some(), "not up again\n{}", self.daemon.log_text());
    }

    pub fn dir(&self) -> &Path {
        &self.table.dir
    }

    pub fn metric(&self, series: &str) -> Option<f64> {
        let (_, body) = http_get(self.metrics, "/metrics")?;
        metric(&body, series)
    }

    pub fn wait_metric(&self, series: &str, value: f64) {
        let seen = wait_for(Duration::from_secs(10), || {
            (self.metric(series) == Some(value)).then_some(())
        });
        assert!(
            seen.is_some(),
            "{series} never became {value} (now {:?})\n{}",
            self.metric(series),
            self.daemon.log_text()
        );
    }

    /// Fills a template from `tests/sipp/` and starts SIPp on it.
    pub fn sipp(
        &self,
        template: &str,
        vars: &[(&str, &str)],
        ip: &str,
        port: u16,
        args: &[&str],
    ) -> Sipp {
        self.sipp_text(template, scenario(template), vars, ip, port, args)
    }

    /// [`Gateway::sipp`] on a scenario's text (a template the test
    /// changed), named `template`.
    pub fn sipp_text(
        &self,
        template: &str,
        mut text: String,
        vars: &[(&str, &str)],
        ip: &str,
        port: u16,
        args: &[&str],
    ) -> Sipp {
        for (k, v) in vars {
            text = text.replace(&format!("@{k}@"), v);
        }
        assert!(
            !text.contains("@\n") && !text.contains("@ "),
            "unfilled placeholder in {template}"
        );
        let name = format!("{}-{port}", template.trim_end_matches(".xml"));
        let scenario = self.dir().join(format!("{name}.xml"));
        std::fs::write(&scenario, text).unwrap();
        let out = std::fs::File::create(self.dir().join(format!("{name}.out"))).unwrap();
        let remote = format!("127.0.0.1:{}", self.sip);
        let port = port.to_string();
        let child = Command::new("sipp")
            .current_dir(self.dir())
            .args([
                remote.as_str(),
                "-sf",
                scenario.to_str().unwrap(),
                "-i",
                ip,
                "-p",
                &port,
            ])
            .args([
                "-m",
                "1",
                "-nostdin",
                "-timeout",
                "20s",
                "-timeout_error",
                "-trace_err",
            ])
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("sipp is not installed: run tests/run.sh, which installs sip-tester");
        Sipp {
            child,
            name,
            dir: self.dir().to_path_buf(),
        }
    }

    /// Registers seat `id` from 127.0.0.1:`port` and waits until the
    /// gateway counts it.
    pub fn register(&self, id: &str, port: u16) {
        let registered = self.metric("hotline_registered_seats").unwrap_or(0.0);
        let password = format!("demo-{id}-change-me");
        self.sipp(
            "register.xml",
            &[("SEAT", id), ("PASSWORD", &password), ("EXPECT", "200")],
            "127.0.0.1",
            port,
            &["-s", id],
        )
        .expect_success(self);
        self.wait_metric("hotline_registered_seats", registered + 1.0);
    }

    /// A seat phone on the port it registered from.
    pub fn seat(&self, id: &str, port: u16, mode: &str, hangup: &str) -> Sipp {
        self.seat_for(id, port, mode, hangup, 300)
    }

    /// A seat phone that, with `seat_bye`, hangs up `hold_ms` after it
    /// answered.
    pub fn seat_for(&self, id: &str, port: u16, mode: &str, hangup: &str, hold_ms: u32) -> Sipp {
        self.sipp(
            "seat.xml",
            &[
                ("MODE", mode),
                ("HANGUP", hangup),
                ("HOLD_MS", &hold_ms.to_string()),
            ],
            "127.0.0.1",
            port,
            &["-s", id],
        )
    }

    pub fn call(&self, dialed: &str, hangup: &str) -> Sipp {
        self.call_with_rtp(dialed, hangup, "[media_port]")
    }

    /// A call whose SDP names `rtp_port` for the caller's media.
    pub fn call_with_rtp(&self, dialed: &str, hangup: &str, rtp_port: &str) -> Sipp {
        self.call_for(dialed, hangup, rtp_port, 300)
    }

    /// A call that, with `caller_bye`, hangs up `ms` after the gateway
    /// answers it (a queued caller is answered before any seat is).
    pub fn call_for(&self, dialed: &str, hangup: &str, rtp_port: &str, ms: u32) -> Sipp {
        self.call_keying(dialed, hangup, rtp_port, ms, None)
    }

    /// [`Gateway::call_for`], keying `key` (SIP INFO) just after the
    /// answer: a leader session's caller choosing (1 wait, 2 ticket).
    pub fn call_keying(
        &self,
        dialed: &str,
        hangup: &str,
        rtp_port: &str,
        ms: u32,
        key: Option<char>,
    ) -> Sipp {
        let k = key.unwrap_or('1').to_string();
        let keys = if key.is_some() { "send_key" } else { "no_keys" };
        self.sipp(
            "trunk_call.xml",
            &[
                ("DIALED", dialed),
                ("HANGUP", hangup),
                ("MEDIA_PORT", rtp_port),
                ("PAUSE_MS", &ms.to_string()),
                ("KEYS", keys),
                ("KEY", &k),
            ],
            "127.0.0.1",
            free_port(),
            &[],
        )
    }

    /// Waits until `n` offers in all have been answered by seats (callers
    /// bridged to them).
    pub fn wait_bridged(&self, n: f64) {
        self.wait_metric("hotline_seat_offers_total{result=\"answered\"}", n);
    }

    /// Seat 8101 answers a call from the trunk to 12348 and hangs up
    /// `hold_ms` later; returns (seat, caller) once the call is answered.
    pub fn answered_call_to_12348(&self, hold_ms: u32) -> (Sipp, Sipp) {
        let port = free_port();
        self.register("8101", port);
        let seat = self.seat_for("8101", port, "answer", "seat_bye", hold_ms);
        let caller = self.call("12348", "wait_bye");
        self.wait_bridged(1.0);
        (seat, caller)
    }

    /// The trunk (SIPp from `ip`) calls `dialed` with an SDP offer and
    /// must be refused with `code`, the refusal matching `matching` (a
    /// regular expression).
    pub fn expect_refused(&self, ip: &str, dialed: &str, code: &str, matching: &str) {
        self.sipp(
            "trunk_refused.xml",
            &[("DIALED", dialed), ("CODE", code), ("MATCH", matching)],
            ip,
            free_port(),
            &[],
        )
        .expect_success(self);
    }

    /// A trunk peer that answers a call for `user` on `port`.
    pub fn trunk_uas(&self, user: &str, port: u16) -> Sipp {
        self.trunk_uas_rtp(user, port, "[media_port]")
    }

    /// [`Gateway::trunk_uas`], its SDP naming RTP port `rtp_port`.
    pub fn trunk_uas_rtp(&self, user: &str, port: u16, rtp_port: &str) -> Sipp {
        self.trunk_uas_after(user, port, rtp_port, 0)
    }

    /// [`Gateway::trunk_uas_rtp`], answering `answer_ms` after it rings.
    pub fn trunk_uas_after(&self, user: &str, port: u16, rtp_port: &str, answer_ms: u32) -> Sipp {
        let after = answer_ms.to_string();
        self.sipp(
            "uas.xml",
            &[
                ("USER", user),
                ("MEDIA_PORT", rtp_port),
                ("ANSWER_MS", &after),
            ],
            "127.0.0.1",
            port,
            &[],
        )
    }

    pub fn calls_total(&self, kind: &str, line: &str, result: &str) -> f64 {
        self.metric(&format!(
            "hotline_calls_total{{kind=\"{kind}\",line=\"{line}\",result=\"{result}\"}}"
        ))
        .unwrap_or(0.0)
    }
}

/// `hotline serve` on `table`, SIP and metrics on these loopback ports.
fn serve(table: &TempTable, sip: u16, metrics: u16, log: &str) -> Daemon {
    Daemon::start(
        &[
            "serve",
            "--config",
            table.path.to_str().unwrap(),
            "--metrics-listen",
            &format!("127.0.0.1:{metrics}"),
            "--sip-listen",
            &format!("127.0.0.1:{sip}"),
        ],
        table.dir.join(log),
    )
}

/// One SIPp process, killed by its own PID if still running when dropped.
pub struct Sipp {
    pub child: Child,
    pub name: String,
    pub dir: PathBuf,
}

impl Sipp {
    pub fn expect_success(mut self, gw: &Gateway) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break Some(s);
            }
            if Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        if status.is_some_and(|s| s.success()) {
            return;
        }
        let mut errors = String::new();
        for entry in std::fs::read_dir(&self.dir).unwrap().flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            if file.starts_with(&self.name)
                && (file.ends_with("errors.log") || file.ends_with(".out"))
            {
                errors += &format!(
                    "--- {file}\n{}\n",
                    std::fs::read_to_string(entry.path()).unwrap_or_default()
                );
            }
        }
        panic!(
            "SIPp {} ended with {status:?}\n{errors}\n--- daemon log\n{}",
            self.name,
            gw.daemon.log_text()
        );
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ── baresip, a real phone ───────────────────────────────────────────────

/// A baresip phone registered as a seat: it answers by itself, sends a
/// 440 Hz tone as its voice, and is driven over its ctrl_tcp interface.
/// Killed by its own PID when dropped.
pub struct Baresip {
    _child: Killed,
    ctrl: u16,
    pub log: PathBuf,
}

impl Baresip {
    pub fn start(gw: &Gateway, seat: &str) -> Baresip {
        let dir = gw.dir().join(format!("baresip-{seat}"));
        std::fs::create_dir_all(&dir).unwrap();
        let tone = dir.join("tone.wav");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&tone, spec).unwrap();
        for i in 0..8000 * 60 {
            let t = i as f64 / 8000.0;
            w.write_sample((8000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16)
                .unwrap();
        }
        w.finalize().unwrap();
        // Two distinct ports (baresip listens for SIP on TCP too).
        let sip = free_port();
        let ctrl = std::iter::repeat_with(free_port)
            .find(|&p| p != sip)
            .unwrap();
        let config = format!(
            "poll_method epoll\n\
             net_interface 127.0.0.1\n\
             sip_listen 127.0.0.1:{sip}\n\
             sip_trans_def udp\n\
             audio_player aubridge,x\n\
             audio_alert aubridge,x\n\
             audio_source aufile,{}\n\
             module_path /usr/lib/baresip/modules\n\
             module g711.so\n\
             module aufile.so\n\
             module aubridge.so\n\
             module ctrl_tcp.so\n\
             module_app account.so\n\
             module_app menu.so\n\
             ctrl_tcp_listen 127.0.0.1:{ctrl}\n\
             rtp_ports 31000-31999\n",
            tone.display()
        );
        std::fs::write(dir.join("config"), config).unwrap();
        std::fs::write(
            dir.join("accounts"),
            format!(
                "<sip:{seat}@127.0.0.1:{}>;auth_pass=demo-{seat}-change-me;regint=60;answermode=auto\n",
                gw.sip
            ),
        )
        .unwrap();
        let log = dir.join("baresip.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new("baresip")
            .args(["-f", dir.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("baresip is not installed: run tests/run.sh, which installs baresip-core");
        Baresip {
            _child: Killed(child),
            ctrl,
            log,
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs a menu command (`hold`, `resume`, `hangup`) and returns
    /// baresip's answer; tried twice, on a fresh connection each, for a
    /// loaded machine.
    pub fn command(&self, command: &str) -> String {
        self.command_with(command, "")
    }

    /// A command with parameters (`dial` and the URI).
    pub fn command_with(&self, command: &str, params: &str) -> String {
        for _ in 0..2 {
            if let Some(answer) = self.try_command(command, params) {
                return answer;
            }
        }
        panic!("no answer from baresip to {command}\n{}", self.log_text());
    }

    fn try_command(&self, command: &str, params: &str) -> Option<String> {
        use std::io::{Read, Write};
        let mut s = wait_for(Duration::from_secs(5), || {
            std::net::TcpStream::connect(("127.0.0.1", self.ctrl)).ok()
        })
        .expect("baresip's ctrl_tcp port");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let body = format!("{{\"command\":\"{command}\",\"params\":\"{params}\",\"token\":\"t\"}}");
        write!(s, "{}:{body},", body.len()).ok()?;
        // Netstrings: events may come first; the answer has "response".
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = s.read(&mut chunk).ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).into_owned();
            if let Some(at) = text.find("\"response\":true")
                && text[at..].contains("\"token\":\"t\"}")
            {
                return Some(text);
            }
        }
    }
}

/// Whether `heard` ends in baresip's voice: its last half second is the
/// phone's 440 Hz tone, far above 1 kHz.
pub fn ends_in_baresip_voice(heard: &[i16]) -> bool {
    use hotline::media::mixer::goertzel_power;
    if heard.len() <= 4000 {
        return false;
    }
    let tail = &heard[heard.len() - 4000..];
    goertzel_power(tail, 440.0, 8000.0) > 100.0 * goertzel_power(tail, 1000.0, 8000.0)
}

// ── what a caller hears ─────────────────────────────────────────────────

/// What the caller hears, as 16-bit samples, for `span`, while it keeps
/// sending its own RTP (silence) so its leg stays alive.
pub fn listen(
    rtp: &UdpSocket,
    span: Duration,
    gateway: &mut Option<std::net::SocketAddr>,
) -> Vec<i16> {
    use hotline::media::g711::Codec;
    use hotline::media::rtp::{inspect, packet};
    let mut heard = Vec::new();
    let mut buf = [0u8; 2048];
    let started = Instant::now();
    let mut seq = 0u16;
    rtp.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    while started.elapsed() < span {
        if let Ok((n, from)) = rtp.recv_from(&mut buf)
            && let Some(info) = inspect(&buf[..n])
        {
            Codec::Pcmu.decode(&buf[info.payload_at..n], &mut heard);
            *gateway = Some(from);
        }
        if let Some(to) = *gateway {
            seq = seq.wrapping_add(1);
            let _ = rtp.send_to(
                &packet(0, false, seq, u32::from(seq) * 160, 0xca11, &[0xff; 160]),
                to,
            );
        }
    }
    heard
}

/// Where `clip` is first heard in `heard`, from sample `from` on.
#[allow(dead_code)]
pub fn find(heard: &[i16], clip: &[i16], from: usize) -> Option<usize> {
    (from..=heard.len().checked_sub(clip.len())?).find(|&i| heard[i..i + clip.len()] == *clip)
}

/// The text of SIPp template `name` in `tests/sipp/`.
pub fn scenario(name: &str) -> String {
    std::fs::read_to_string(Path::new(REPO).join("tests/sipp").join(name))
        .expect("scenario template")
}

/// Where each of `prompts` is heard, in order, each after the one before.
#[allow(dead_code)]
pub fn heard_in_order(heard: &[i16], prompts: &[String]) -> Result<(), String> {
    let mut at = 0;
    for name in prompts {
        let clip = heard_prompt(name);
        match find(heard, &clip, at) {
            Some(i) => at = i + clip.len(),
            None => {
                return Err(format!(
                    "{name} not heard after sample {at} of {}",
                    heard.len()
                ));
            }
        }
    }
    Ok(())
}

/// Prompt `name` of the shipped library as a caller hears it: through
/// μ-law (PCMU) and back.
pub fn heard_prompt(name: &str) -> Vec<i16> {
    use hotline::media::g711::Codec;
    use hotline::media::prompt::PromptLibrary;
    let lib = PromptLibrary::load(&Path::new(REPO).join("prompts")).unwrap();
    let wav = lib.get(name).unwrap_or_else(|| panic!("no prompt {name}"));
    let mut ulaw = Vec::new();
    let mut pcm = Vec::new();
    Codec::Pcmu.encode(wav, &mut ulaw);
    Codec::Pcmu.decode(&ulaw, &mut pcm);
    pcm
}

/// The test table with a leader session (热线问政) live now, for the whole
/// day: calls to 12345 wait in the leader's queue.
pub fn with_leader_session_now(text: String) -> String {
    use chrono::TimeZone;
    let today = chrono_tz::Asia::Shanghai
        .from_utc_datetime(&chrono::Utc::now().naive_utc())
        .date_naive();
    let live = text
        .replace("start = \"09:00\"\nend = \"11:00\"", "start = \"00:00\"\nend = \"23:59\"")
        .replace(
            "sessions = [\n",
            &format!(
                "sessions = [\n  {{ date = \"{today}\", unit = \"市发改委\", leader = \"林喜洋\", title = \"主任\" }},\n"
            ),
        );
    assert_eq!(live.matches(&today.to_string()).count(), 1, "{today}");
    live
}

// ── linphone, a real phone that consults and transfers ─────────────────

/// A `linphone-daemon` registered as a seat, answering by itself, driven
/// over its command socket (`/tmp/<pipe>`). Killed by its own PID when
/// dropped.
pub struct Linphone {
    _child: Killed,
    pipe: PathBuf,
    pub log: PathBuf,
}

impl Linphone {
    pub fn start(gw: &Gateway, seat: &str) -> Linphone {
        let dir = gw.dir().join(format!("linphone-{seat}"));
        std::fs::create_dir_all(&dir).unwrap();
        let sip = free_port();
        // No database: without one that opens, linphone stops starting up
        // before it opens any SIP port.
        std::fs::write(
            dir.join("rc"),
            format!(
                "[sip]\nsip_port={sip}\nsip_tcp_port=-1\nsip_tls_port=-1\nuse_ipv6=0\n\
                 [rtp]\naudio_rtp_port=37000-37999\n\
                 [sound]\nechocancellation=0\n\
                 [storage]\nuri=null\ncall_logs_db_uri=null\nzrtp_secrets_db_uri=null\n\
                 [misc]\nmax_calls=4\n"
            ),
        )
        .unwrap();
        // One per phone: tests of one process run side by side.
        let name = format!("hotline-linphone-{}-{}-{seat}", std::process::id(), gw.sip);
        let pipe = Path::new("/tmp").join(&name);
        let _ = std::fs::remove_file(&pipe);
        let log = dir.join("linphone.log");
        let out = std::fs::File::create(dir.join("linphone.out")).unwrap();
        let child = Command::new("linphone-daemon")
            .args(["--config", dir.join("rc").to_str().unwrap()])
            .args([
                "--pipe",
                &name,
                "--log",
                log.to_str().unwrap(),
                "--auto-answer",
            ])
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect(
                "linphone-daemon is not installed: run tests/run.sh, which installs linphone-cli",
            );
        let phone = Linphone {
            _child: Killed(child),
            pipe,
            log,
        };
        wait_for(Duration::from_secs(10), || {
            phone.pipe.exists().then_some(())
        })
        .expect("linphone-daemon's command socket");
        let answer = phone.command(&format!(
            "register sip:{seat}@127.0.0.1:{port} sip:127.0.0.1:{port} demo-{seat}-change-me {seat} NULL",
            port = gw.sip
        ));
        assert!(answer.contains("Status: Ok"), "{answer}");
        phone
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs one daemon command and returns its answer. The daemon takes
    /// one client at a time and may not have seen the last one go yet: an
    /// empty answer is tried again.
    pub fn command(&self, command: &str) -> String {
        for _ in 0..10 {
            let answer = self.try_command(command);
            if !answer.is_empty() {
                return answer;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        String::new()
    }

    /// One try: the answer (up to its status, or what came within 3 s).
    fn try_command(&self, command: &str) -> String {
        use std::io::{Read, Write};
        use std::os::unix::net::UnixStream;
        // Refused or cut: the daemon is busy with another client.
        let Ok(mut s) = UnixStream::connect(&self.pipe) else {
            return String::new();
        };
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        if writeln!(s, "{command}").is_err() {
            return String::new();
        }
        let mut text = String::new();
        let mut chunk = [0u8; 4096];
        let end = Instant::now() + Duration::from_secs(3);
        while Instant::now() < end {
            match s.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => text.push_str(&String::from_utf8_lossy(&chunk[..n])),
                Err(_) if text.contains("Status:") => break,
                Err(_) => {}
            }
        }
        text
    }
}
