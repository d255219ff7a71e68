//! TCP against a hostile peer, end to end against the daemon: one address
//! cannot take every connection, and a connection cannot be held open by
//! trickling bytes. Each test starts its own daemon on loopback; they run
//! side by side, so the whole file takes about one message deadline (10 s).

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::{Daemon, TempTable, free_port, wait_for};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// The defaults in `hotline::sip::transport::TcpLimits`.
const PER_SOURCE: usize = 256;
const GLOBAL: usize = 4096;
const FIRST_MESSAGE: Duration = Duration::from_secs(10);
const MESSAGE: Duration = Duration::from_secs(10);
/// Slack for a loaded machine on top of a deadline.
const MARGIN: Duration = Duration::from_secs(5);

struct Gateway {
    _table: TempTable,
    daemon: Daemon,
    sip: SocketAddr,
}

impl Gateway {
    fn start(name: &str) -> Gateway {
        let table = TempTable::new(name);
        let (sip, metrics) = (free_port(), free_port());
        let daemon = Daemon::start(
            &[
                "serve",
                "--config",
                table.path.to_str().unwrap(),
                "--metrics-listen",
                &format!("127.0.0.1:{metrics}"),
                "--sip-listen",
                &format!("127.0.0.1:{sip}"),
            ],
            table.dir.join("daemon.log"),
        );
        let sip: SocketAddr = format!("127.0.0.1:{sip}").parse().unwrap();
        wait_for(Duration::from_secs(20), || {
            std::net::TcpStream::connect(sip).ok().map(|_| ())
        })
        .unwrap_or_else(|| panic!("the daemon never listened:\n{}", daemon.log_text()));
        Gateway {
            _table: table,
            daemon,
            sip,
        }
    }
}

/// A connection to `to` from the loopback address `from`.
async fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    try_connect_from(from, to).await.unwrap()
}

/// [`connect_from`], or why not: a flood can fill the kernel's accept
/// queue on a loaded machine, which then refuses a connection itself.
async fn try_connect_from(from: &str, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(format!("{from}:0").parse().unwrap())?;
    socket.connect(to).await
}

fn options(local: SocketAddr, n: u32) -> String {
    format!(
        "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP {local};branch=z9hG4bKtcp{n}\r\nMax-Forwards: 70\r\nFrom: <sip:probe@{ip}>;tag=t{n}\r\nTo: <sip:127.0.0.1>\r\nCall-ID: tcp-hardening-{n}-{port}\r\nCSeq: {n} OPTIONS\r\nContent-Length: 0\r\n\r\n",
        ip = local.ip(),
        port = local.port(),
    )
}

/// Reads up to the end of one response head; its status line.
async fn status_line(stream: &mut TcpStream) -> Option<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    });
    read.await.ok()?;
    let text = String::from_utf8_lossy(&got).into_owned();
    text.lines().next().map(str::to_string)
}

/// Waits (at most `limit`) for the gateway to close `stream`; how long it
/// took, or `None` if it stayed open.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await
    .ok()?;
    Some(start.elapsed())
}

/// Whether the gateway still holds `stream` open (it sends nothing
/// unasked, so an open connection has nothing to read). A real read on a
/// non-blocking socket, not the runtime's idea of readiness.
fn still_open(stream: &std::net::TcpStream) -> bool {
    use std::io::Read;
    let mut buf = [0u8; 1];
    matches!((&*stream).read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

#[tokio::test]
async fn one_address_holding_every_connection_leaves_room_for_the_others() {
    let gw = Gateway::start("tcp-per-source");
    // The probe's attack: more connections than the global cap, all from
    // one address, all silent.
    let mut flood = Vec::new();
    // 256 connects in flight at a time, as a flood would send them.
    for _ in 0..(GLOBAL + 100) / 256 + 1 {
        let batch: Vec<_> = (0..256)
            .map(|_| tokio::spawn(try_connect_from("127.0.0.2", gw.sip)))
            .collect();
        // One the kernel refused outright is not held either.
        for connect in batch {
            if let Ok(stream) = connect.await.unwrap() {
                flood.push(stream.into_std().unwrap());
            }
        }
    }
    // The gateway keeps PER_SOURCE of them and closes the rest at once.
    let open = wait_for(Duration::from_secs(5), || {
        let open = flood.iter().filter(|s| still_open(s)).count();
        (open == PER_SOURCE).then_some(open)
    });
    let now_open = flood.iter().filter(|s| still_open(s)).count();
    assert_eq!(
        open,
        Some(PER_SOURCE),
        "{now_open} of {} connections from one address are open",
        flood.len()
    );
    // Another address is served as if nothing happened.
    let mut legit = connect_from("127.0.0.3", gw.sip).await;
    let local = legit.local_addr().unwrap();
    legit.write_all(options(local, 1).as_bytes()).await.unwrap();
    let status = status_line(&mut legit).await;
    assert_eq!(
        status.as_deref(),
        Some("SIP/2.0 200 OK"),
        "{}",
        gw.daemon.log_text()
    );
    // The refusals were logged when they began, not one line each.
    let log = gw.daemon.log_text();
    assert_eq!(
        log.matches("too many TCP connections from one source")
            .count(),
        1,
        "{log}"
    );
    // The flooding address is served too, on a connection it may keep.
    let kept = flood.iter().position(still_open).unwrap();
    let mut kept = TcpStream::from_std(flood.swap_remove(kept)).unwrap();
    let local = kept.local_addr().unwrap();
    kept.write_all(options(local, 2).as_bytes()).await.unwrap();
    assert_eq!(
        status_line(&mut kept).await.as_deref(),
        Some("SIP/2.0 200 OK")
    );
}

#[tokio::test]
async fn one_byte_does_not_buy_the_idle_time_out() {
    let gw = Gateway::start("tcp-one-byte");
    let mut stream = connect_from("127.0.0.1", gw.sip).await;
    stream.write_all(b"O").await.unwrap();
    let took = closed_within(&mut stream, FIRST_MESSAGE + MARGIN).await;
    assert!(
        took.is_some(),
        "a connection that sent one byte was still open after {:?}",
        FIRST_MESSAGE + MARGIN
    );
}

#[tokio::test]
async fn a_message_trickled_after_a_good_one_must_complete_in_time() {
    let gw = Gateway::start("tcp-half-message");
    let mut stream = connect_from("127.0.0.1", gw.sip).await;
    let local = stream.local_addr().unwrap();
    stream
        .write_all(options(local, 1).as_bytes())
        .await
        .unwrap();
    assert_eq!(
        status_line(&mut stream).await.as_deref(),
        Some("SIP/2.0 200 OK")
    );
    // Half of a second message, trickled a byte every 100 ms (bytes keep
    // coming, a message never completes): the message deadline holds.
    let second = options(local, 2).into_bytes();
    let half = second[..second.len() / 2].to_vec();
    let (mut reader, mut writer) = stream.into_split();
    let trickle = tokio::spawn(async move {
        for b in half {
            if writer.write_all(&[b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        writer
    });
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(MESSAGE + MARGIN, async {
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await;
    trickle.abort();
    assert!(
        closed.is_ok(),
        "a trickled message kept its connection open for {:?}",
        start.elapsed()
    );
}
