//! The `hotline` command as a user runs it: `check` and `route`.

mod support;

use serde_json::Value;
use std::process::Command;
use support::*;

#[test]
fn check_accepts_the_shipped_table() {
    let (code, out, _) = hotline(&["check"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("routing.toml: ok: 45 lines, 4 emergency numbers"),
        "{out}"
    );
}

#[test]
fn check_lists_every_error_with_file_and_line() {
    let table = TempTable::new("cli-check");
    let broken = table
        .text
        .replace("number = \"12300\"", "number = \"12396\"")
        .replace("routes_as = \"119\"", "routes_as = \"999\"")
        .replace(
            "mode = \"whole_merge\"\nremark = \"已暂停服务\"",
            "mode = \"whole_merge\"\nremark = \"已暂停服务\"\ncolour = \"red\"",
        );
    table.write(&broken);
    let (code, _, err) = hotline(&["check", table.path.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    let line_of = |needle: &str| broken[..broken.find(needle).unwrap()].lines().count() + 1;
    let p = table.path.display().to_string();
    assert!(
        err.contains(&format!(
            "{p}:{}:",
            line_of("number = \"12396\"\nname = \"全国电信")
        )),
        "{err}"
    );
    assert!(err.contains("duplicate number `12396`"), "{err}");
    assert!(
        err.contains(&format!("{p}:{}:", line_of("routes_as = \"999\""))),
        "{err}"
    );
    assert!(err.contains("routes_as `999`"), "{err}");
    assert!(
        err.contains("unknown key `lines[0].colour`") || err.contains("colour"),
        "{err}"
    );
    // 4 suspended lines each got the unknown key, plus two errors above.
    assert!(err.contains("6 errors; table refused"), "{err}");
}

#[test]
fn check_of_a_missing_file_says_so() {
    let (code, _, err) = hotline(&["check", "/nonexistent/routing.toml"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("/nonexistent/routing.toml: cannot read"),
        "{err}"
    );
}

fn route_json(args: &[&str]) -> Value {
    let mut a = vec!["route", "--json"];
    a.extend_from_slice(args);
    let (code, out, err) = hotline(&a);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

#[test]
fn route_json_explains_each_kind() {
    let at = "2026-11-20T10:00:00+08:00";
    let v = route_json(&["--at", at, "tel:+86-735-2912345"]);
    assert_eq!(v["kind"], "queue");
    assert_eq!(v["line"], "2912345");
    assert_eq!(v["unit"], "北湖区人民政府");
    assert_eq!(v["target"]["queue"], "general");
    assert_eq!(v["announcement"], Value::Null);

    let v = route_json(&["--at", at, "12349"]);
    assert_eq!(v["announcement"], "merged_into_12345");

    let v = route_json(&["--at", at, "sip:12331@gw;user=phone"]);
    assert_eq!(v["kind"], "direct");
    assert_eq!(v["line"], "12315");
    assert_eq!(v["target"]["expert_seats"][0], "8104");

    let v = route_json(&["--at", at, "12366"]);
    assert_eq!(v["kind"], "sub_centre");
    assert_eq!(v["target"]["uri"], "sip:127.0.0.1:5091");
    assert_eq!(v["three_way_transfer"], true);
    assert_eq!(v["sub_centre_level"], "city");

    let v = route_json(&["--at", at, "96119"]);
    assert_eq!(v["kind"], "emergency");
    assert_eq!(v["line"], "119");
    assert_eq!(v["target"]["uri"], "sip:127.0.0.1:5093");

    let v = route_json(&["--at", at, "--from", "13800000000", "88888"]);
    assert_eq!(v["kind"], "reject");
    assert_eq!(v["reject"]["status"], 404);
    assert_eq!(v["caller"], "13800000000");
}

#[test]
fn route_json_during_a_leader_session_names_unit_leader_and_ticket_due() {
    let v = route_json(&["--at", "2023-04-12T09:15:00+08:00", "12345"]);
    assert_eq!(v["kind"], "leader_session");
    assert_eq!(v["unit"], "市公安局");
    assert_eq!(v["leader"], "吴起");
    assert_eq!(v["session"]["title"], "常务副局长");
    assert_eq!(v["target"]["queue"], "leader");
    // Wed Apr 12 → Thu 13, Fri 14, Mon 17.
    assert_eq!(v["ticket"]["due_date"], "2023-04-17");
    assert_eq!(v["ticket"]["due"], "2023-04-18T00:00:00+08:00");
}

#[test]
fn route_text_is_readable_and_a_bad_instant_is_an_error() {
    let (code, out, _) = hotline(&["route", "--at", "2026-11-20T10:00:00+08:00", "12348"]);
    assert_eq!(code, 0);
    assert!(out.contains("decision:     direct"), "{out}");
    assert!(out.contains("expert seat(s) [8101]"), "{out}");
    let (code, _, err) = hotline(&["route", "--at", "yesterday", "12345"]);
    assert_eq!(code, 2);
    assert!(err.contains("RFC 3339"), "{err}");
}

#[test]
fn route_text_of_a_rule_session_without_a_leader_has_no_empty_words() {
    // 2018-01-10 is the 2nd Wednesday of January: the shipped 2018 rule,
    // which names no unit, leader or title.
    let (code, out, err) = hotline(&["route", "--at", "2018-01-10T09:15:00+08:00", "12345"]);
    assert_eq!(code, 0, "{err}");
    let session = out
        .lines()
        .find(|l| l.trim_start().starts_with("session:"))
        .unwrap_or_else(|| panic!("no session line:\n{out}"));
    assert_eq!(
        session.trim_start(),
        "session:      热线问政 衡阳2018热线问政 09:00–11:00",
        "{out}"
    );
    // The dated sessions still read in full.
    let (_, out, _) = hotline(&["route", "--at", "2023-04-12T09:15:00+08:00", "12345"]);
    assert!(
        out.contains("session:      热线问政 市公安局 吴起 (常务副局长) 09:00–11:00\n"),
        "{out}"
    );
}

/// The command under "Run it" in the README, as arguments after `--`.
fn readme_run_command() -> Vec<String> {
    let readme = std::fs::read_to_string(format!("{REPO}/README.md")).unwrap();
    let run_it = &readme[readme.find("## Run it").expect("a Run it section")..];
    let command = run_it
        .lines()
        .find_map(|l| l.strip_prefix("    cargo run --release -- "))
        .expect("a cargo run command under Run it");
    command.split_whitespace().map(String::from).collect()
}

#[test]
fn the_readme_run_command_stays_on_loopback() {
    let args = readme_run_command();
    assert_eq!(args[0], "serve", "{args:?}");
    let sip = args
        .iter()
        .position(|a| a == "--sip-listen")
        .and_then(|i| args.get(i + 1))
        .unwrap_or_else(|| panic!("no --sip-listen in {args:?}"));
    let sip: std::net::SocketAddr = sip.parse().unwrap();
    assert!(sip.ip().is_loopback(), "{sip}");
    // Every flag it uses, and every flag `serve` has, is in Commands.
    let (code, help, _) = hotline(&["serve", "--help"]);
    assert_eq!(code, 0);
    let readme = std::fs::read_to_string(format!("{REPO}/README.md")).unwrap();
    let commands = &readme[readme.find("## Commands").unwrap()..];
    let commands = &commands[..commands.find("**`check`**").unwrap()];
    for flag in args.iter().filter(|a| a.starts_with("--")) {
        assert!(
            help.contains(flag.as_str()),
            "{flag} is no serve flag:\n{help}"
        );
    }
    for flag in help
        .split_whitespace()
        .filter(|w| w.starts_with("--") && *w != "--help")
    {
        let flag = flag.trim_end_matches(',');
        assert!(commands.contains(flag), "README Commands lacks {flag}");
    }
}

/// `serve` will not put the shipped demo passwords on a network: beyond
/// loopback it refuses to start, naming the seats and the way out. (It
/// stops before binding anything.)
#[test]
fn serve_refuses_demo_passwords_beyond_loopback() {
    let out = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args([
            "serve",
            "--sip-listen",
            "0.0.0.0:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .current_dir(REPO)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("demo passwords for seats 8001, 8002")
            && stderr.contains("allow_demo_passwords = true"),
        "{stderr}"
    );
    let (code, out, err) = hotline(&["check"]);
    assert_eq!(code, 0, "check only warns");
    assert!(
        format!("{out}{err}").contains("warning: seat `8001` has a demo password"),
        "{out}{err}"
    );
}
