//! The admin HTTP endpoint under attack, against the real daemon on
//! loopback: out of file descriptors it backs off and logs little; it raises
//! its own open-file limit at start; idle and half-sent connections cannot
//! hold it, and a scrape gets through while they try.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

const LIMIT: Duration = Duration::from_secs(20);

/// The daemon's request time-out (admin.rs), plus room for a loaded machine.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const MARGIN: Duration = Duration::from_secs(3);

/// At most this many admin connections are held (admin.rs).
const MAX_ADMIN_CONNECTIONS: usize = 64;

struct Started {
    _table: TempTable,
    daemon: Daemon,
    admin: u16,
    sip: u16,
}

/// `hotline serve` on a private table, its RLIMIT_NOFILE set to
/// `soft`/`hard` before it runs, up and answering `/healthz`.
fn start(name: &str, soft: u64, hard: u64) -> Started {
    let table = TempTable::new(name);
    let admin = free_port();
    let sip = free_port();
    let log = table.dir.join("daemon.log");
    let out = std::fs::File::create(&log).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hotline"));
    cmd.args([
        "serve",
        "--config",
        table.path.to_str().unwrap(),
        "--metrics-listen",
        &format!("127.0.0.1:{admin}"),
        "--sip-listen",
        &format!("127.0.0.1:{sip}"),
    ])
    .env("NO_COLOR", "1")
    .stdin(Stdio::null())
    .stdout(out.try_clone().unwrap())
    .stderr(out);
    // SAFETY: between fork and exec only setrlimit runs, which is
    // async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: soft as libc::rlim_t,
                rlim_max: hard as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().expect("start hotline");
    let daemon = Daemon { child, log };
    let up = wait_for(LIMIT, || {
        (http_get(admin, "/healthz")?.0 == 200).then_some(())
    });
    assert!(up.is_some(), "daemon never served:\n{}", daemon.log_text());
    Started {
        _table: table,
        daemon,
        admin,
        sip,
    }
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// User plus system CPU time of `pid`, in clock ticks (/proc/PID/stat).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name may hold spaces: count fields after its `)`.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 (utime) and 15 (stime), counted from 1 with pid and comm.
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf reads a constant.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as u64 } else { 100 }
}

fn lines_with(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

/// Whether the server has closed `s` (EOF or reset), waiting at most `wait`.
fn closed_within(s: &mut TcpStream, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // an answer (e.g. 408); keep reading to EOF
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false;
            }
            Err(_) => return true, // reset
        }
    }
}

/// A TCP connection to `127.0.0.1:port` from the loopback address `from`.
fn connect_from(from: [u8; 4], port: u16) -> TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(std::net::SocketAddr::from((from, 0))).unwrap();
        let stream = socket
            .connect(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
            .await
            .unwrap();
        let std = stream.into_std().unwrap();
        std.set_nonblocking(false).unwrap();
        std
    })
}

/// Whether `s` is still open right now, without waiting.
fn still_open(s: &TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 64];
    let open = matches!(s.peek(&mut buf), Err(e) if e.kind() == ErrorKind::WouldBlock);
    s.set_nonblocking(false).unwrap();
    open
}

#[test]
fn out_of_file_descriptors_the_admin_endpoint_backs_off_and_logs_little() {
    // Soft = hard: the daemon cannot raise it.
    let s = start("emfile", 100, 100);
    let pid = s.daemon.pid();
    assert!(
        s.daemon.log_text().contains("below 4096"),
        "a low open-file limit is warned about:\n{}",
        s.daemon.log_text()
    );

    // Hold connections until the daemon has no descriptor left: SIP TCP
    // takes at most a quarter of the limit (the rest is kept for media),
    // so idle metrics connections (held for their 5 s to send a request)
    // take the rest.
    let mut held = Vec::new();
    for i in 0..40u8 {
        held.push(connect_from([127, 0, 0, 2 + i / 10], s.sip));
    }
    for _ in 0..80 {
        if open_fds(pid) >= 100 {
            break;
        }
        held.push(TcpStream::connect(("127.0.0.1", s.admin)).unwrap());
        std::thread::sleep(Duration::from_millis(5));
    }
    let full = wait_for(LIMIT, || (open_fds(pid) >= 100).then_some(()));
    assert!(
        full.is_some(),
        "the daemon holds {} descriptors",
        open_fds(pid)
    );

    // A scrape now waits in the admin backlog; each accept fails EMFILE.
    let mut scrape = TcpStream::connect(("127.0.0.1", s.admin)).unwrap();
    write!(scrape, "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));

    let window = Duration::from_secs(2);
    let before = cpu_ticks(pid);
    std::thread::sleep(window);
    let used = cpu_ticks(pid) - before;
    let log = s.daemon.log_text();
    let errors = lines_with(&log, "admin accept failed");
    eprintln!("out of descriptors: {errors} error lines, {used} CPU ticks in {window:?}");
    // Before the fix: millions of lines and a core spinning.
    assert!(
        (1..=3).contains(&errors),
        "{errors} `admin accept failed` lines in {:?}; log is {} bytes",
        window + Duration::from_millis(300),
        log.len()
    );
    // Half a second of CPU in two seconds is far from a spin (which uses
    // all of it) and far above an idle daemon.
    let hz = clock_ticks_per_second();
    assert!(
        used * 4 < window.as_secs() * hz,
        "the daemon used {used} ticks ({hz}/s) of CPU in {window:?} while out of descriptors"
    );

    // Descriptors back: the waiting scrape is answered, and so is a new one.
    drop(held);
    scrape.set_read_timeout(Some(LIMIT)).unwrap();
    let mut answer = String::new();
    let _ = scrape.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1."), "waiting scrape: {answer:?}");
    let body = wait_for(LIMIT, || match http_get(s.admin, "/metrics")? {
        (200, b) => Some(b),
        _ => None,
    })
    .expect("metrics answer once descriptors are free");
    assert!(
        metric(&body, "hotline_admin_accept_errors_total").is_some_and(|n| n >= 1.0),
        "accept errors are counted:\n{body}"
    );
}

#[test]
fn the_soft_open_file_limit_is_raised_to_the_hard_one() {
    let s = start("rlimit", 1024, 4096);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", s.daemon.pid())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files in /proc/PID/limits");
    let nums: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(nums, ["4096", "4096"], "{line}");
    let log = wait_for(LIMIT, || {
        let log = s.daemon.log_text();
        log.contains("SIP listening").then_some(log)
    })
    .expect("the daemon starts");
    // A quarter of the descriptors at most for TCP: the rest for media.
    assert!(
        log.contains("max_connections=1024") && log.contains("kept for media"),
        "{log}"
    );
    let said = log
        .lines()
        .find(|l| l.contains("open-file limit"))
        .unwrap_or_else(|| panic!("the limit obtained is logged:\n{log}"));
    assert!(said.contains("INFO") && said.contains("4096"), "{said}");
    assert!(!log.contains("below 4096"), "4096 is enough:\n{log}");
}

#[test]
fn idle_connections_cannot_starve_a_scrape_and_are_closed() {
    let s = start("idle", 4096, 4096);
    let opened = Instant::now();
    let mut idle: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(("127.0.0.1", s.admin)).unwrap())
        .collect();

    // No more than the limit are held, well before any time-out.
    let held = wait_for(REQUEST_TIMEOUT - Duration::from_secs(1), || {
        let n = idle.iter().filter(|c| still_open(c)).count();
        (n <= MAX_ADMIN_CONNECTIONS).then_some(n)
    });
    assert!(
        held.is_some(),
        "{} of 200 idle connections still held",
        idle.iter().filter(|c| still_open(c)).count()
    );

    // A scraper arriving among them is answered, and promptly.
    let asked = Instant::now();
    let got = http_get(s.admin, "/metrics");
    assert!(
        matches!(&got, Some((200, b)) if b.contains("hotline_routing_lines")),
        "scrape among idle connections: {got:?}\n{}",
        s.daemon.log_text()
    );
    assert!(asked.elapsed() < Duration::from_secs(5));

    // Every idle connection is closed by the request time-out.
    let deadline = opened + REQUEST_TIMEOUT + MARGIN;
    let open: usize = idle
        .iter_mut()
        .map(|c| {
            let left = deadline.saturating_duration_since(Instant::now());
            usize::from(!closed_within(c, left.max(Duration::from_millis(1))))
        })
        .sum();
    assert_eq!(open, 0, "idle connections still open after {deadline:?}");
}

#[test]
fn a_half_sent_or_dribbled_request_and_an_idle_keep_alive_are_closed() {
    let s = start("slow", 4096, 4096);
    let started = Instant::now();

    // Half a request line, then silence.
    let mut half = TcpStream::connect(("127.0.0.1", s.admin)).unwrap();
    half.write_all(b"GET /metr").unwrap();

    // One byte every 400 ms: never a complete head within the time-out.
    let dribble = std::thread::spawn(move || {
        let mut c = TcpStream::connect(("127.0.0.1", s.admin)).unwrap();
        let head = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
        for b in head {
            if c.write_all(&[*b]).is_err() {
                return true; // closed under us
            }
            std::thread::sleep(Duration::from_millis(400));
        }
        closed_within(&mut c, MARGIN)
    });

    // An HTTP/1.1 client asking for keep-alive, answered, then idle.
    let mut kept = TcpStream::connect(("127.0.0.1", s.admin)).unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();

    let wait = REQUEST_TIMEOUT + MARGIN;
    assert!(
        closed_within(&mut half, wait.saturating_sub(started.elapsed())),
        "half a request line held open"
    );
    assert!(
        closed_within(&mut kept, wait.saturating_sub(started.elapsed())),
        "an idle keep-alive connection held open"
    );
    assert!(dribble.join().unwrap(), "a dribbling client held open");
    // The daemon is fine.
    assert_eq!(http_get(s.admin, "/healthz").map(|r| r.0), Some(200));
}
