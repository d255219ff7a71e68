//! The control API against the running daemon: a seat registered by SIPp,
//! paused, resumed, logged out and in by a supervisor; a caller from the
//! carrier trunk (SIPp) waiting in the general queue, seen in
//! `/api/queues`, `/api/calls` and the event stream, and hung up on by a
//! supervisor (SIPp receives the BYE). Every answer is checked against the
//! shipped OpenAPI document (`ops/openapi.json`): its status must be one
//! the document gives for that path and method, its body must match the
//! schema there, and every documented operation is exercised.

mod support;

use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::gateway::Gateway;
use support::{free_port, wait_for};

const VIEWER: &str = "wallboard-demo-token-change-me";
const SUPERVISOR: &str = "supervisor-demo-token-change-me";
const UNIT: &str = "unit-token-of-minzheng-0123";

/// The shipped table with a token for one unit's tickets.
fn with_unit_token(text: String) -> String {
    let anchor = "token = \"supervisor-demo-token-change-me\"\n";
    assert!(
        text.contains(anchor),
        "the shipped table has the supervisor token"
    );
    text.replace(
        anchor,
        &format!("{anchor}\n[[api.tokens]]\nname = \"minzheng\"\nrole = \"unit:市民政局\"\ntoken = \"{UNIT}\"\n"),
    )
}

/// The OpenAPI document and what the test saw of it.
struct Api {
    doc: Value,
    port: u16,
    /// (path template, method) exercised.
    seen: Mutex<BTreeSet<(String, String)>>,
}

impl Api {
    fn new(port: u16) -> Api {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/ops/openapi.json"))
                .expect("ops/openapi.json");
        Api {
            doc: serde_json::from_str(&text).expect("ops/openapi.json is JSON"),
            port,
            seen: Mutex::new(BTreeSet::new()),
        }
    }

    /// `method path` with `token`; the answer checked against the
    /// document under `template`. Returns (status, body).
    fn call(
        &self,
        method: &str,
        template: &str,
        path: &str,
        token: Option<&str>,
        body: &str,
    ) -> (u16, Value) {
        let (status, ctype, text) = http(self.port, method, path, token, body);
        let op = &self.doc["paths"][template][method.to_lowercase()];
        assert!(
            op.is_object(),
            "{method} {template} is not in ops/openapi.json"
        );
        let responses = &op["responses"];
        let resp = &responses[status.to_string()];
        assert!(
            resp.is_object(),
            "{method} {path} answered {status}, which ops/openapi.json does not give for {template}: {text}"
        );
        assert!(
            ctype.starts_with("application/json"),
            "{method} {path}: {ctype}"
        );
        let body: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{method} {path} answered no JSON ({e}): {text}"));
        let schema = &resp["content"]["application/json"]["schema"];
        if let Err(why) = self.conforms(schema, &body, "$") {
            panic!("{method} {path} → {status} does not match ops/openapi.json: {why}\n{body:#}");
        }
        self.seen
            .lock()
            .unwrap()
            .insert((template.to_string(), method.to_lowercase()));
        (status, body)
    }

    /// A JSON value against a schema of the document (the subset it uses:
    /// `$ref`, `type` (or a list of them), `enum`, `properties`,
    /// `required`, `additionalProperties: false`, `items`, `oneOf`).
    fn conforms(&self, schema: &Value, v: &Value, at: &str) -> Result<(), String> {
        if let Some(r) = schema["$ref"].as_str() {
            let name = r.trim_start_matches("#/components/schemas/");
            return self.conforms(&self.doc["components"]["schemas"][name], v, at);
        }
        if let Some(options) = schema["oneOf"].as_array() {
            return options
                .iter()
                .any(|s| self.conforms(s, v, at).is_ok())
                .then_some(())
                .ok_or(format!("{at}: matches none of oneOf"));
        }
        let types: Vec<&str> = match &schema["type"] {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let kind = match v {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_u64() || n.is_i64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        let fits = types.is_empty()
            || types.contains(&kind)
            || (kind == "integer" && types.contains(&"number"));
        if !fits {
            return Err(format!("{at}: {kind}, the document says {types:?}"));
        }
        if let Some(allowed) = schema["enum"].as_array()
            && !allowed.contains(v)
        {
            return Err(format!("{at}: {v} is none of {allowed:?}"));
        }
        if let Value::Object(m) = v {
            let props = schema["properties"].as_object();
            for r in schema["required"].as_array().into_iter().flatten() {
                let r = r.as_str().unwrap();
                if !m.contains_key(r) {
                    return Err(format!("{at}: no `{r}`"));
                }
            }
            for (k, x) in m {
                match props.and_then(|p| p.get(k)) {
                    Some(s) => self.conforms(s, x, &format!("{at}.{k}"))?,
                    None if schema["additionalProperties"] == Value::Bool(false) => {
                        return Err(format!("{at}: `{k}` is not in the document"));
                    }
                    None => {}
                }
            }
        }
        if let (Value::Array(items), Some(s)) = (v, schema.get("items")) {
            for (i, x) in items.iter().enumerate() {
                self.conforms(s, x, &format!("{at}[{i}]"))?;
            }
        }
        Ok(())
    }

    /// Every operation of the document (the event stream's is a stream,
    /// exercised apart) was called.
    fn assert_all_seen(&self) {
        let seen = self.seen.lock().unwrap();
        let mut missing = Vec::new();
        for (path, ops) in self.doc["paths"].as_object().unwrap() {
            for method in ops.as_object().unwrap().keys() {
                if path != "/api/events" && !seen.contains(&(path.clone(), method.clone())) {
                    missing.push(format!("{method} {path}"));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "documented but never exercised: {missing:?}"
        );
    }
}

/// One HTTP/1.0 request; (status, content type, body).
fn http(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let ctype = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type:")
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_default();
    (status, ctype, body.to_string())
}

/// The event stream, read on a thread: its `data:` objects so far.
struct Stream {
    events: Arc<Mutex<Vec<Value>>>,
    _socket: TcpStream,
}

impl Stream {
    fn open(port: u16, token: &str) -> Stream {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            s,
            "GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n"
        )
        .unwrap();
        let events = Arc::new(Mutex::new(Vec::new()));
        let reader = s.try_clone().unwrap();
        reader
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let sink = events.clone();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(reader);
            let mut line = String::new();
            while lines.read_line(&mut line).is_ok_and(|n| n > 0) {
                // Chunked transfer: a data line arrives whole inside a chunk.
                if let Some(json) = line.trim_end().strip_prefix("data: ")
                    && let Ok(v) = serde_json::from_str::<Value>(json)
                {
                    sink.lock().unwrap().push(v);
                }
                line.clear();
            }
        });
        Stream { events, _socket: s }
    }

    /// Waits for an event matching `f`.
    fn wait(&self, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        wait_for(Duration::from_secs(10), || {
            self.events.lock().unwrap().iter().find(|e| f(e)).cloned()
        })
        .unwrap_or_else(|| panic!("no {what} event: {:#?}", self.events.lock().unwrap()))
    }
}

#[test]
fn a_supervisor_watches_and_acts_through_the_control_api_as_its_document_says() {
    let gw = Gateway::start_with("ops-api", with_unit_token);
    let api = Api::new(gw.metrics);
    let events = Stream::open(gw.metrics, VIEWER);

    // Who may ask: no token or a wrong one is 401, counted; a viewer may
    // not act; a unit's token reads only its tickets.
    let (s, _) = api.call("GET", "/api/queues", "/api/queues", None, "");
    assert_eq!(s, 401);
    let (s, _) = api.call(
        "GET",
        "/api/seats",
        "/api/seats",
        Some("not-a-token-0123456789"),
        "",
    );
    assert_eq!(s, 401);
    assert!(
        gw.metric("hotline_api_requests_total{result=\"unauthorized\"}") >= Some(2.0),
        "401s are counted"
    );
    assert!(
        gw.daemon
            .log_text()
            .contains("WARN security: api_unauthorized from 127.0.0.1"),
        "a 401 is a security line"
    );
    assert!(
        !gw.daemon.log_text().contains("not-a-token-0123456789"),
        "tokens are never logged"
    );
    let (s, _) = api.call("GET", "/api/queues", "/api/queues", Some(UNIT), "");
    assert_eq!(s, 403);
    let (s, _) = api.call(
        "POST",
        "/api/seats/{id}/pause",
        "/api/seats/8001/pause",
        Some(VIEWER),
        r#"{"reason":"x"}"#,
    );
    assert_eq!(s, 403);
    let (s, tickets) = api.call("GET", "/api/tickets", "/api/tickets", Some(UNIT), "");
    assert_eq!((s, tickets), (200, Value::Array(vec![])));
    let (s, _) = api.call(
        "GET",
        "/api/tickets",
        "/api/tickets?status=lost",
        Some(UNIT),
        "",
    );
    assert_eq!(s, 400);
    let (s, _) = api.call("GET", "/api/tickets", "/api/tickets", Some(SUPERVISOR), "");
    assert_eq!(s, 403, "a supervisor's token is no unit's");
    let (s, _) = api.call(
        "GET",
        "/api/tickets/{id}",
        "/api/tickets/2612019999",
        Some(UNIT),
        "",
    );
    assert_eq!(s, 404);
    let (s, _) = api.call(
        "POST",
        "/api/tickets/{id}/{step}",
        "/api/tickets/2612019999/accept",
        Some(UNIT),
        "{}",
    );
    assert_eq!(s, 404);
    let (s, due) = api.call(
        "GET",
        "/api/tickets/summary",
        "/api/tickets/summary",
        Some(VIEWER),
        "",
    );
    assert_eq!((s, &due["overdue"]), (200, &Value::from(0)));
    let (s, sessions) = api.call("GET", "/api/sessions", "/api/sessions", Some(VIEWER), "");
    assert_eq!(s, 200);
    assert!(sessions["live"].as_array().unwrap().is_empty());

    // A seat logs in (SIPp registers it) and is paused with a reason.
    let seat_port = free_port();
    gw.register("8001", seat_port);
    let (s, seat) = api.call(
        "GET",
        "/api/seats/{id}",
        "/api/seats/8001",
        Some(VIEWER),
        "",
    );
    assert_eq!((s, seat["state"].as_str()), (200, Some("available")));
    let (s, _) = api.call(
        "GET",
        "/api/seats/{id}",
        "/api/seats/9999",
        Some(VIEWER),
        "",
    );
    assert_eq!(s, 404);
    let (s, bad) = api.call(
        "POST",
        "/api/seats/{id}/pause",
        "/api/seats/8001/pause",
        Some(SUPERVISOR),
        "{}",
    );
    assert_eq!((s, bad["field"].as_str()), (400, Some("reason")));
    let (s, bad) = api.call(
        "POST",
        "/api/seats/{id}/pause",
        "/api/seats/8001/pause",
        Some(SUPERVISOR),
        "{not json",
    );
    assert_eq!((s, bad["field"].as_str()), (400, Some("body")));
    let (s, _) = api.call(
        "POST",
        "/api/seats/{id}/pause",
        "/api/seats/9999/pause",
        Some(SUPERVISOR),
        r#"{"reason":"培训"}"#,
    );
    assert_eq!(s, 404);
    let (s, _) = api.call(
        "POST",
        "/api/seats/{id}/pause",
        "/api/seats/8002/pause",
        Some(SUPERVISOR),
        r#"{"reason":"培训"}"#,
    );
    assert_eq!(s, 409, "8002 is not logged in");
    let (s, seat) = api.call(
        "POST",
        "/api/seats/{id}/pause",
        "/api/seats/8001/pause",
        Some(SUPERVISOR),
        r#"{"reason":"培训"}"#,
    );
    assert_eq!(
        (s, seat["state"].as_str(), seat["reason"].as_str()),
        (200, Some("paused"), Some("培训"))
    );
    events.wait("seat paused", |e| {
        e["type"] == "seat" && e["seat"] == "8001" && e["state"] == "paused"
    });

    // A caller waits: the queue shows it with its place, wait and line;
    // the calls show it queued.
    let caller = gw.call("12345", "wait_bye");
    let queue = wait_for(Duration::from_secs(10), || {
        let (_, queues) = api.call("GET", "/api/queues", "/api/queues", Some(VIEWER), "");
        queues
            .as_array()
            .unwrap()
            .iter()
            .find(|q| q["id"] == "general" && q["waiting"] == 1)
            .cloned()
    })
    .unwrap_or_else(|| panic!("the caller never waited\n{}", gw.daemon.log_text()));
    let waiter = &queue["callers"][0];
    assert_eq!(
        (waiter["position"].as_u64(), waiter["line"].as_str()),
        (Some(1), Some("12345"))
    );
    assert_eq!(queue["seats"]["paused"], 1);
    let id = waiter["call"].as_u64().unwrap();
    let (s, calls) = api.call("GET", "/api/calls", "/api/calls", Some(VIEWER), "");
    assert_eq!(s, 200);
    let call = calls
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .cloned()
        .expect("the waiting call is listed");
    assert_eq!(
        (
            call["state"].as_str(),
            call["queue"].as_str(),
            call["kind"].as_str(),
            call["dialed"].as_str()
        ),
        (
            Some("queued"),
            Some("general"),
            Some("queue"),
            Some("12345")
        )
    );
    assert_eq!(call["legs"][0]["party"], "caller");
    let (s, one) = api.call(
        "GET",
        "/api/calls/{id}",
        &format!("/api/calls/{id}"),
        Some(VIEWER),
        "",
    );
    assert_eq!((s, &one["id"]), (200, &Value::from(id)));
    events.wait("queue ENTERQUEUE", |e| {
        e["type"] == "queue" && e["event"] == "ENTERQUEUE" && e["call"] == id
    });
    events.wait("call started", |e| {
        e["type"] == "call" && e["event"] == "started" && e["call"] == id
    });

    // Hand-offs need a call talking to a seat: a waiting one refuses
    // them, saying why; a number is digits.
    for step in ["consult", "transfer", "join", "complete", "leave", "cancel"] {
        let template = format!("/api/calls/{{id}}/{step}");
        let path = format!("/api/calls/{id}/{step}");
        let (s, why) = api.call(
            "POST",
            &template,
            &path,
            Some(SUPERVISOR),
            r#"{"number":"12366"}"#,
        );
        assert_eq!(s, 409, "{step}: {why}");
        assert_eq!(why["error"], "the call is not talking to a seat");
        let (s, _) = api.call(
            "POST",
            &template,
            "/api/calls/999999/x",
            Some(SUPERVISOR),
            "",
        );
        assert_eq!(s, 404);
    }
    let (s, bad) = api.call(
        "POST",
        "/api/calls/{id}/consult",
        &format!("/api/calls/{id}/consult"),
        Some(SUPERVISOR),
        r#"{"number":"12a"}"#,
    );
    assert_eq!((s, bad["field"].as_str()), (400, Some("number")));
    let (s, bad) = api.call(
        "POST",
        "/api/calls/{id}/transfer",
        &format!("/api/calls/{id}/transfer"),
        Some(SUPERVISOR),
        "{}",
    );
    assert_eq!((s, bad["field"].as_str()), (400, Some("number")));

    // The supervisor ends it: the caller gets BYE, the call leaves the list.
    let (s, _) = api.call(
        "POST",
        "/api/calls/{id}/hangup",
        "/api/calls/999999/hangup",
        Some(SUPERVISOR),
        "",
    );
    assert_eq!(s, 404);
    let (s, _) = api.call(
        "POST",
        "/api/calls/{id}/hangup",
        &format!("/api/calls/{id}/hangup"),
        Some(VIEWER),
        "",
    );
    assert_eq!(s, 403);
    let (s, ok) = api.call(
        "POST",
        "/api/calls/{id}/hangup",
        &format!("/api/calls/{id}/hangup"),
        Some(SUPERVISOR),
        "",
    );
    assert_eq!((s, &ok["call"]), (202, &Value::from(id)));
    caller.expect_success(&gw);
    events.wait("call ended", |e| {
        e["type"] == "call" && e["event"] == "ended" && e["call"] == id
    });
    let gone = wait_for(Duration::from_secs(5), || {
        let (_, calls) = api.call("GET", "/api/calls", "/api/calls", Some(VIEWER), "");
        calls.as_array().unwrap().is_empty().then_some(())
    });
    assert!(gone.is_some(), "the call left /api/calls");
    let (s, _) = api.call(
        "GET",
        "/api/calls/{id}",
        &format!("/api/calls/{id}"),
        Some(VIEWER),
        "",
    );
    assert_eq!(s, 404);
    // Its record: ended by the operator, after waiting in the queue.
    let record = wait_for(Duration::from_secs(5), || {
        cdr_export(&gw, false)
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .find(|r| r["call"] == id)
    })
    .expect("the call's record is stored");
    assert_eq!(
        (
            record["end_reason"].as_str(),
            record["queue"].as_str(),
            record["line"].as_str()
        ),
        (Some("operator"), Some("general"), Some("12345"))
    );
    assert!(record["wait"].as_f64().unwrap() > 0.0);
    assert_eq!(record["answered_by"], Value::Null);

    // Resume; log out (kept out while its phone stays registered), in.
    let (s, seat) = api.call(
        "POST",
        "/api/seats/{id}/resume",
        "/api/seats/8001/resume",
        Some(SUPERVISOR),
        "",
    );
    assert_eq!((s, seat["state"].as_str()), (200, Some("available")));
    let (s, seat) = api.call(
        "POST",
        "/api/seats/{id}/logout",
        "/api/seats/8001/logout",
        Some(SUPERVISOR),
        "",
    );
    assert_eq!(
        (s, seat["state"].as_str(), &seat["held_out"]),
        (200, Some("logged_out"), &Value::Bool(true))
    );
    std::thread::sleep(Duration::from_millis(2500));
    let (_, seat) = api.call(
        "GET",
        "/api/seats/{id}",
        "/api/seats/8001",
        Some(VIEWER),
        "",
    );
    assert_eq!(
        seat["state"], "logged_out",
        "still out after the ACD's look at registrations"
    );
    let (s, _) = api.call(
        "POST",
        "/api/seats/{id}/resume",
        "/api/seats/8001/resume",
        Some(SUPERVISOR),
        "",
    );
    assert_eq!(s, 409);
    let (s, _) = api.call(
        "POST",
        "/api/seats/{id}/login",
        "/api/seats/8002/login",
        Some(SUPERVISOR),
        "",
    );
    assert_eq!(s, 409, "8002's phone is not registered");
    let (s, seat) = api.call(
        "POST",
        "/api/seats/{id}/login",
        "/api/seats/8001/login",
        Some(SUPERVISOR),
        "",
    );
    assert_eq!(
        (s, seat["state"].as_str(), &seat["held_out"]),
        (200, Some("available"), &Value::Bool(false))
    );
    let (s, seats) = api.call("GET", "/api/seats", "/api/seats", Some(VIEWER), "");
    assert_eq!(s, 200);
    assert!(
        seats
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == "8001" && x["state"] == "available")
    );
    events.wait("seat command", |e| {
        e["type"] == "seat_command" && e["step"] == "login"
    });

    api.assert_all_seen();
}

/// A reader's socket that holds little: the daemon's side fills soon.
fn small_receive_buffer(s: &TcpStream) {
    use std::os::fd::AsRawFd;
    let size: libc::c_int = 4096;
    // SAFETY: setsockopt reads one c_int through a valid pointer, on a
    // socket this test owns.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_RCVBUF");
}

#[test]
fn a_slow_event_reader_is_dropped_and_calls_go_on() {
    let gw = Gateway::start("ops-slow-reader");
    // A reader that never reads: the daemon's events fill its socket, and
    // then the hub's backlog; the stream is dropped, counted as slow.
    let mut s = TcpStream::connect(("127.0.0.1", gw.metrics)).unwrap();
    small_receive_buffer(&s);
    write!(
        s,
        "GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {VIEWER}\r\n\r\n"
    )
    .unwrap();
    // The events: a seat paused and resumed over and over.
    let port = free_port();
    gw.register("8001", port);
    wait_for(Duration::from_secs(5), || {
        (gw.metric("hotline_api_event_streams") == Some(1.0)).then_some(())
    })
    .expect("the stream is open");
    let mut n = 0;
    let dropped = wait_for(Duration::from_secs(60), || {
        for _ in 0..200 {
            let step = if n % 2 == 0 {
                ("pause", r#"{"reason":"x"}"#)
            } else {
                ("resume", "")
            };
            n += 1;
            let (status, _, _) = http(
                gw.metrics,
                "POST",
                &format!("/api/seats/8001/{}", step.0),
                Some(SUPERVISOR),
                step.1,
            );
            assert_eq!(status, 200);
        }
        (gw.metric("hotline_api_event_streams_dropped_total{reason=\"slow\"}") == Some(1.0))
            .then_some(())
    });
    assert!(
        dropped.is_some(),
        "the slow reader was never dropped\n{}",
        gw.daemon.log_text()
    );
    gw.wait_metric("hotline_api_event_streams", 0.0);
    // Calls still go through meanwhile: one answered by the seat.
    let seat = gw.seat("8001", port, "answer", "seat_bye");
    let caller = gw.call("12345", "wait_bye");
    caller.expect_success(&gw);
    seat.expect_success(&gw);
}

/// `hotline cdr export` of yesterday to tomorrow (local) from the
/// gateway's store, as CSV or JSON lines.
fn cdr_export(gw: &Gateway, csv: bool) -> String {
    use chrono::TimeZone;
    let today = chrono_tz::Asia::Shanghai
        .from_utc_datetime(&chrono::Utc::now().naive_utc())
        .date_naive();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hotline"));
    cmd.current_dir(gw.dir()).args([
        "cdr",
        "export",
        "--config",
        "routing.toml",
        "--since",
        &(today - chrono::Duration::days(1)).to_string(),
        "--until",
        &(today + chrono::Duration::days(2)).to_string(),
    ]);
    if csv {
        cmd.arg("--csv");
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A supervisor consults the 12366 sub-centre for a seat on a call and
/// completes the transfer: caller and sub-centre talk (tones measured),
/// the seat is let go with our BYE, and the hand-off is audited.
#[test]
fn a_supervisor_consults_the_sub_centre_for_a_seat_and_completes_the_transfer() {
    use support::phone::{Phone, assert_hears, run_until, window};
    let gw = Gateway::start_with("ops-consult", |t| {
        t + "\n[records]\njsonl = \"calls.jsonl\"\n"
    });
    let seat_port = free_port();
    gw.register("8001", seat_port);
    let (mut caller, mut sub) = (Phone::new(400.0), Phone::new(1200.0));
    let sub_centre = gw.trunk_uas_rtp("12366", gw.city, &sub.port());
    let seat = gw.seat("8001", seat_port, "answer", "wait_bye");
    let call = gw.call_for("12345", "caller_bye", &caller.port(), 9_000);
    gw.wait_bridged(1.0);
    let api = |method: &str, path: &str, body: &str| {
        let (s, _, text) = http(gw.metrics, method, path, Some(SUPERVISOR), body);
        (
            s,
            serde_json::from_str::<Value>(&text).unwrap_or(Value::Null),
        )
    };
    let (_, calls) = api("GET", "/api/calls", "");
    let this = calls
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["state"] == "connected" && c["seat"] == "8001")
        .cloned()
        .unwrap_or_else(|| panic!("the call is connected to 8001: {calls:#}"));
    let id = this["id"].as_u64().unwrap();
    let (s, why) = api("POST", &format!("/api/calls/{id}/complete"), "");
    assert_eq!(
        (s, why["error"].as_str()),
        (409, Some("no consultation to complete"))
    );
    let (s, _) = api(
        "POST",
        &format!("/api/calls/{id}/consult"),
        r#"{"number":"12366"}"#,
    );
    assert_eq!(s, 202);
    // The seat (SIPp) sends no voice: the sub-centre's answer shows in the
    // call's legs.
    let mut now = Value::Null;
    let answered = run_until(
        &mut [&mut caller, &mut sub],
        Duration::from_secs(10),
        |_| {
            now = api("GET", &format!("/api/calls/{id}"), "").1;
            now["legs"].as_array().is_some_and(|l| {
                l.iter()
                    .any(|l| l["party"] == "trunk" && l["state"] == "answered")
            })
        },
    );
    assert!(
        answered,
        "the sub-centre never answered: {now:#}\n{}",
        gw.daemon.log_text()
    );
    assert_eq!(now["handoff"], "consult", "{now:#}");
    let (s, _) = api(
        "POST",
        &format!("/api/calls/{id}/consult"),
        r#"{"number":"12366"}"#,
    );
    assert_eq!(s, 409, "one hand-off at a time");
    let (s, _) = api("POST", &format!("/api/calls/{id}/complete"), "");
    assert_eq!(s, 202);
    // The seat gets our BYE (its scenario waits for one).
    seat.expect_success(&gw);
    let (start, end) = window(
        &mut [&mut caller, &mut sub],
        Duration::from_millis(500),
        Duration::from_millis(1500),
    );
    assert_hears(
        "the caller",
        &caller.heard_between(start, end),
        &[1200.0],
        &[400.0],
    );
    assert_hears(
        "the sub-centre",
        &sub.heard_between(start, end),
        &[400.0],
        &[1200.0],
    );
    call.expect_success(&gw);
    sub_centre.expect_success(&gw);
    assert_eq!(
        gw.metric("hotline_transfers_total{kind=\"attended\",result=\"seat_left_after_intro\",target=\"city_sub_centre\"}"),
        Some(1.0)
    );
    assert!(
        gw.daemon
            .log_text()
            .contains("a supervisor completes the seat's transfer")
    );
    // The call's record, in the store (CSV export) and the JSON-lines file.
    gw.wait_metric("hotline_active_calls", 0.0);
    let csv = wait_for(Duration::from_secs(5), || {
        let csv = cdr_export(&gw, true);
        (csv.lines().count() >= 2).then_some(csv)
    })
    .expect("a record");
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let row: Vec<&str> = csv.lines().nth(1).unwrap().split(',').collect();
    let col = |name: &str| row[header.iter().position(|h| *h == name).unwrap()];
    assert_eq!(
        (
            col("line"),
            col("kind"),
            col("answered_by"),
            col("seats_offered"),
            col("result")
        ),
        ("12345", "queue", "8001", "8001", "completed")
    );
    assert_eq!(col("handoffs"), "attended:12366:seat_left_after_intro");
    assert_eq!(col("end_reason"), "caller_bye");
    assert!(col("talk_seconds").parse::<f64>().unwrap() > 3.0);
    let jsonl = std::fs::read_to_string(gw.dir().join("calls.jsonl")).unwrap();
    let line: Value = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
    assert_eq!(line["handoffs"][0]["target"], "city_sub_centre");
    assert_eq!(line["call"], id);
}

/// The security line fail2ban reads for an INVITE from no trunk: over TCP
/// (a source that answered a handshake) it is written; over UDP (a source
/// anyone can forge for one packet) it is not. Both are refused `403`.
#[test]
fn an_untrusted_invite_is_a_security_line_over_tcp_only() {
    let gw = Gateway::start("ops-untrusted");
    let refused = |transport: &[&str]| {
        gw.sipp(
            "trunk_refused.xml",
            &[("DIALED", "12345"), ("CODE", "403"), ("MATCH", ".*")],
            "127.0.0.2",
            free_port(),
            transport,
        )
        .expect_success(&gw);
    };
    refused(&[]);
    refused(&["-t", "t1"]);
    let line = "WARN security: untrusted_invite from 127.0.0.2";
    let seen = wait_for(Duration::from_secs(5), || {
        gw.daemon.log_text().contains(line).then_some(())
    });
    assert!(seen.is_some(), "{}", gw.daemon.log_text());
    let log = gw.daemon.log_text();
    assert_eq!(log.matches(line).count(), 1, "the UDP one is not: {log}");
    assert_eq!(
        log.matches("INVITE from an address that is no configured trunk")
            .count(),
        1,
        "the second within 10 s is held back from the ordinary log, not from fail2ban's: {log}"
    );
}

/// A call ended by the daemon stopping (SIGTERM) still has its record: the
/// writer is drained before the process exits.
#[test]
fn a_call_ended_by_shutdown_keeps_its_record() {
    let mut gw = Gateway::start("ops-shutdown-record");
    let port = free_port();
    gw.register("8001", port);
    let (s, _, _) = http(
        gw.metrics,
        "POST",
        "/api/seats/8001/pause",
        Some(SUPERVISOR),
        r#"{"reason":"x"}"#,
    );
    assert_eq!(s, 200);
    let caller = gw.call("12345", "wait_bye");
    let waiting = wait_for(Duration::from_secs(10), || {
        let (_, _, text) = http(gw.metrics, "GET", "/api/calls", Some(VIEWER), "");
        text.contains("\"queued\"").then_some(())
    });
    assert!(waiting.is_some(), "{}", gw.daemon.log_text());
    gw.daemon.signal("TERM");
    let exited = wait_for(Duration::from_secs(15), || {
        gw.daemon.child.try_wait().ok().flatten()
    });
    assert!(
        exited.is_some_and(|s| s.success()),
        "{}",
        gw.daemon.log_text()
    );
    caller.expect_success(&gw);
    let records: Vec<Value> = cdr_export(&gw, false)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(records[0]["end_reason"], "shutdown");
    assert_eq!(records[0]["queue"], "general");
}
