//! `routing.toml` validation errors, end to end through `hotline::config::parse`.
//!
//! Each test takes the shipped `routing.toml`, makes one targeted edit (a
//! replacement of a snippet that must occur exactly once, so a test cannot pass
//! by editing nothing), and checks that the table is refused with the expected
//! error, located on the right line of the edited text, in the right file, and
//! naming the offending value.

use hotline::config::{ConfigError, Diagnostic, Severity, parse};
use std::path::Path;

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/routing.toml");

fn path() -> &'static Path {
    Path::new(PATH)
}

fn shipped() -> String {
    std::fs::read_to_string(PATH).expect("read the shipped routing.toml")
}

/// `text` with the one occurrence of `from` replaced by `to`.
fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "snippet {from:?} must occur exactly once in the text being edited"
    );
    text.replacen(from, to, 1)
}

/// 1-based line and column (in characters) where the only occurrence of
/// `needle` starts.
fn position_of(text: &str, needle: &str) -> (usize, usize) {
    assert_eq!(
        text.matches(needle).count(),
        1,
        "needle {needle:?} must occur exactly once in the edited text"
    );
    let at = text.find(needle).unwrap();
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = text[line_start..at].chars().count() + 1;
    (line, column)
}

fn line_of(text: &str, needle: &str) -> usize {
    position_of(text, needle).0
}

fn render(ds: &[Diagnostic]) -> String {
    ds.iter().map(|d| format!("  {d}\n")).collect()
}

/// The errors refusing `text`, after checking what every error must satisfy.
fn errors_of(text: &str) -> Vec<Diagnostic> {
    match parse(text, path()) {
        Ok(loaded) => panic!(
            "the edited table was accepted (warnings:\n{})",
            render(&loaded.warnings)
        ),
        Err(ConfigError::Invalid { errors, warnings }) => {
            assert!(!errors.is_empty(), "refused without an error");
            for d in &errors {
                assert_eq!(d.file, path(), "error names the wrong file: {d}");
                assert_eq!(d.severity, Severity::Error, "{d}");
                assert!(d.line >= 1 && d.column >= 1, "{d}");
            }
            for w in &warnings {
                assert_eq!(w.severity, Severity::Warning, "{w}");
            }
            errors
        }
        Err(e) => panic!("unexpected error: {e}"),
    }
}

fn has(errors: &[Diagnostic], line: usize, message_part: &str) -> bool {
    errors
        .iter()
        .any(|d| d.line == line && d.message.contains(message_part))
}

#[track_caller]
fn assert_has(errors: &[Diagnostic], line: usize, message_part: &str) {
    assert!(
        has(errors, line, message_part),
        "expected an error on line {line} containing {message_part:?}; got:\n{}",
        render(errors)
    );
}

/// Applies `edit` to the shipped file and expects an error on the line where
/// `needle` (unique in the edited text) starts, whose message contains
/// `message_part`. Returns the edited text and all its errors.
#[track_caller]
fn expect_error(
    edit: impl Fn(&str) -> String,
    needle: &str,
    message_part: &str,
) -> (String, Vec<Diagnostic>) {
    let text = edit(&shipped());
    let line = line_of(&text, needle);
    let errors = errors_of(&text);
    assert_has(&errors, line, message_part);
    (text, errors)
}

/// Like [`expect_error`], and the error is the only one, at the exact column
/// where `needle` starts.
#[track_caller]
fn expect_only_error(edit: impl Fn(&str) -> String, needle: &str, message_part: &str) {
    let text = edit(&shipped());
    let (line, column) = position_of(&text, needle);
    let errors = errors_of(&text);
    assert_eq!(
        errors.len(),
        1,
        "expected exactly one error; got:\n{}",
        render(&errors)
    );
    let d = &errors[0];
    assert!(
        d.line == line && d.column == column && d.message.contains(message_part),
        "expected {line}:{column} containing {message_part:?}; got:\n{}",
        render(&errors)
    );
}

// ── The shipped file ─────────────────────────────────────────────────────────

#[test]
fn shipped_table_is_valid() {
    let text = shipped();
    let loaded = match parse(&text, path()) {
        Ok(l) => l,
        Err(e) => panic!("shipped routing.toml refused:\n{e}"),
    };
    let t = &loaded.table;
    assert_eq!(t.lines.len(), 45, "44 merged numbers plus 12345");
    assert_eq!(t.emergency.len(), 4);
    let mut emergency: Vec<&str> = t.emergency.iter().map(|e| e.number.as_str()).collect();
    emergency.sort_unstable();
    assert_eq!(emergency, ["110", "119", "120", "122"]);
    assert_eq!(t.lines[t.main_line as usize].number, "12345");
    assert_eq!(t.source, path());
    assert!(t.prompts_dir.ends_with("prompts"));
    // Its only warnings: every seat's password is a demo one, and so are
    // its two API tokens (written in plain).
    let seats_with_password = t.seats.iter().filter(|s| s.password.is_some()).count();
    assert!(seats_with_password > 0);
    assert_eq!(t.api_tokens.len(), 2);
    assert!(t.api_tokens.iter().all(|t| t.plain));
    assert_eq!(
        loaded.warnings.len(),
        seats_with_password + 2,
        "{}",
        render(&loaded.warnings)
    );
    assert!(
        loaded
            .warnings
            .iter()
            .all(|w| w.message.contains("has a demo password")
                || w.message
                    .contains("is written in plain: give its token_sha256")),
        "shipped file has other warnings:\n{}",
        render(&loaded.warnings)
    );
    // The same text parses the same way twice (no hidden state).
    let again = parse(&text, path()).expect("second parse");
    assert_eq!(again.table.lines.len(), 45);
    assert_eq!(again.warnings, loaded.warnings);
}

// ── TOML syntax ──────────────────────────────────────────────────────────────

#[test]
fn syntax_error_is_located() {
    // An unterminated string on the timezone line.
    let (text, errors) = expect_error(
        |t| {
            replace_once(
                t,
                "timezone = \"Asia/Shanghai\"",
                "timezone = \"Asia/Shanghai",
            )
        },
        "timezone = \"Asia/Shanghai",
        "invalid basic string",
    );
    // Syntax errors stop before validation: nothing else is reported.
    assert_eq!(errors.len(), 1, "{}", render(&errors));
    assert_eq!(errors[0].line, line_of(&text, "timezone = "));
}

#[test]
fn syntax_error_missing_value_is_located() {
    let (_, errors) = expect_error(
        |t| replace_once(t, "area_code = \"0735\"", "area_code = "),
        "area_code = ",
        "string values must be quoted",
    );
    assert_eq!(errors.len(), 1, "{}", render(&errors));
}

#[test]
fn duplicate_key_is_located_at_the_second() {
    expect_only_error(
        |t| {
            replace_once(
                t,
                "area_code = \"0735\"\n",
                "area_code = \"0735\"\narea_code = \"0736\"\n",
            )
        },
        "area_code = \"0736\"",
        "duplicate key",
    );
}

#[test]
fn wrong_value_type_is_located() {
    expect_only_error(
        |t| {
            replace_once(
                t,
                "remark = \"设专家座席\"\nexpert_seat = true\n\n[[lines]]\nnumber = \"12333\"",
                "remark = \"设专家座席\"\nexpert_seat = \"yes\"\n\n[[lines]]\nnumber = \"12333\"",
            )
        },
        "\"yes\"",
        "invalid type: string \"yes\", expected a boolean",
    );
}

#[test]
fn every_wrong_value_type_is_reported_in_one_pass_with_the_other_errors() {
    // Three values of the wrong type in three sections, and a duplicate
    // number between them: all four, in file order, and nothing that
    // follows from the bad values (seat 8101 stays the expert for 12348).
    let mut text = shipped();
    text = replace_once(&text, "seat_ring_seconds = 20", "seat_ring_seconds = \"x\"");
    text = replace_once(&text, "number = \"12300\"", "number = \"12396\"");
    text = replace_once(
        &text,
        "remark = \"设专家座席\"\nexpert_seat = true\n\n[[lines]]\nnumber = \"12333\"",
        "remark = \"设专家座席\"\nexpert_seat = 3\n\n[[lines]]\nnumber = \"12333\"",
    );
    text = replace_once(&text, "id = \"8002\"", "id = 8002");
    let expected = [
        (
            "\"x\"",
            "invalid type: string \"x\", expected a whole number, 0 or more",
        ),
        ("\"12396\"\nname = \"全国电信", "duplicate number `12396`"),
        (
            "3\n\n[[lines]]\nnumber = \"12333\"",
            "invalid type: integer `3`, expected a boolean",
        ),
        ("8002\n", "invalid type: integer `8002`, expected a string"),
    ];
    let errors = errors_of(&text);
    assert_eq!(errors.len(), expected.len(), "{}", render(&errors));
    for (d, (needle, part)) in errors.iter().zip(expected) {
        let (line, column) = position_of(&text, needle);
        assert_eq!((d.line, d.column), (line, column), "{d}");
        assert!(d.message.contains(part), "{d}");
        assert_eq!(
            d.to_string(),
            format!("{PATH}:{line}:{column}: error: {}", d.message)
        );
    }
}

#[test]
fn a_wrong_type_and_a_missing_key_are_reported_together() {
    // A required key missing stops validation, but not the search for
    // other keys of the wrong type.
    let mut text = shipped();
    text = replace_once(&text, "area_code = \"0735\"\n", "");
    text = replace_once(&text, "max_ring_seconds = 60", "max_ring_seconds = true");
    let errors = errors_of(&text);
    assert_eq!(errors.len(), 2, "{}", render(&errors));
    assert_has(
        &errors,
        line_of(&text, "[gateway]"),
        "missing field `area_code`",
    );
    assert_has(
        &errors,
        line_of(&text, "max_ring_seconds = true"),
        "invalid type: boolean `true`, expected a whole number, 0 or more",
    );
}

#[test]
fn a_bare_date_is_told_to_be_quoted() {
    expect_only_error(
        |t| replace_once(t, "{ date = \"2023-02-22\"", "{ date = 2023-02-22"),
        "2023-02-22",
        "invalid type: date `2023-02-22`, expected a string: write it in quotes, \"2023-02-22\"",
    );
}

#[test]
fn emergency_number_on_a_trunk_of_another_role_names_both_roles() {
    expect_only_error(
        |t| {
            replace_once(
                t,
                "number = \"110\"\nname = \"匪警\"\n",
                "number = \"110\"\nname = \"匪警\"\ntrunk = \"carrier\"\n",
            )
        },
        "\"carrier\"\nunit",
        "trunk `carrier` has role `carrier`, not `emergency`",
    );
}

#[test]
fn missing_required_key_is_located_at_its_table() {
    expect_only_error(
        |t| replace_once(t, "area_code = \"0735\"\n", ""),
        "[gateway]",
        "missing field `area_code`",
    );
}

// ── Unknown keys ─────────────────────────────────────────────────────────────

#[test]
fn unknown_top_level_key() {
    expect_only_error(
        |t| replace_once(t, "\nunits = [", "\ncolour = \"red\"\nunits = ["),
        "colour = \"red\"",
        "unknown key `colour`",
    );
}

#[test]
fn unknown_key_in_a_line_entry() {
    let anchor = "number = \"12369\"\n";
    let edit = |t: &str| replace_once(t, anchor, &format!("{anchor}nmae = \"typo\"\n"));
    let text = edit(&shipped());
    // Which [[lines]] entry it is, counted from the edited text.
    let index = text[..text.find(anchor).unwrap()]
        .matches("[[lines]]")
        .count()
        - 1;
    expect_only_error(
        edit,
        "nmae = ",
        &format!("unknown key `lines[{index}].nmae`"),
    );
}

#[test]
fn unknown_key_in_a_leader_session() {
    let session = "{ date = \"2023-03-08\", unit = \"市卫生健康委员会\", leader = \"刘英\", title = \"主任\" }";
    let edit = |t: &str| {
        replace_once(
            t,
            session,
            "{ date = \"2023-03-08\", unit = \"市卫生健康委员会\", leader = \"刘英\", room = \"301\", title = \"主任\" }",
        )
    };
    let text = edit(&shipped());
    let at = text.find("room = ").unwrap();
    let index = text[text.find("sessions = [").unwrap()..at]
        .matches("{ date")
        .count()
        - 1;
    assert_eq!(index, 1, "the second session of the shipped file");
    expect_only_error(
        edit,
        "room = ",
        &format!("unknown key `leader.sessions[{index}].room`"),
    );
}

#[test]
fn unknown_key_in_calendar() {
    expect_only_error(
        |t| replace_once(t, "[calendar]\n", "[calendar]\nregion = \"CN\"\n"),
        "region = ",
        "unknown key `calendar.region`",
    );
}

#[test]
fn unknown_key_in_a_leader_rule() {
    expect_only_error(
        |t| {
            replace_once(
                t,
                "if_holiday = \"next_working_day\"\n",
                "if_holiday = \"next_working_day\"\nroom = \"301\"\n",
            )
        },
        "room = ",
        "unknown key `leader.rules[0].room`",
    );
}

#[test]
fn unknown_key_in_gateway() {
    expect_only_error(
        |t| {
            replace_once(
                t,
                "area_code = \"0735\"\n",
                "area_code = \"0735\"\narea = \"0735\"\n",
            )
        },
        "area = ",
        "unknown key `gateway.area`",
    );
}

#[test]
fn every_error_is_reported_in_one_go() {
    let mut text = shipped();
    text = replace_once(&text, "\nunits = [", "\ncolour = \"red\"\nunits = [");
    text = replace_once(
        &text,
        "number = \"12369\"\n",
        "number = \"12369\"\nnmae = \"x\"\n",
    );
    text = replace_once(
        &text,
        "{ date = \"2023-03-08\", unit = \"市卫生健康委员会\",",
        "{ date = \"2023-03-08\", room = \"301\", unit = \"市卫生健康委员会\",",
    );
    text = replace_once(&text, "[calendar]\n", "[calendar]\nregion = \"CN\"\n");
    text = replace_once(
        &text,
        "number = \"12322\"\nname = \"全国防震减灾公益服务电话\"\nunit = \"市地震局\"\nmode = \"whole_merge\"",
        "number = \"12322\"\nname = \"全国防震减灾公益服务电话\"\nunit = \"市地震局\"\nmode = \"merged\"",
    );
    text = replace_once(&text, "\"Asia/Shanghai\"", "\"Asia/Beijing\"");
    let errors = errors_of(&text);
    let expected = [
        (line_of(&text, "colour = "), "unknown key `colour`"),
        (line_of(&text, "nmae = "), ".nmae`"),
        (line_of(&text, "room = "), "leader.sessions[1].room"),
        (line_of(&text, "region = "), "calendar.region"),
        (line_of(&text, "mode = \"merged\""), "unknown mode `merged`"),
        (
            line_of(&text, "\"Asia/Beijing\""),
            "unknown timezone `Asia/Beijing`",
        ),
    ];
    for (line, part) in expected {
        assert_has(&errors, line, part);
    }
    assert_eq!(
        errors.len(),
        expected.len(),
        "exactly the six errors; got:\n{}",
        render(&errors)
    );
}

// ── Numbers ──────────────────────────────────────────────────────────────────

#[test]
fn duplicate_line_number() {
    // 12300 becomes a second 12301: the later entry is the duplicate.
    let edit = |t: &str| replace_once(t, "number = \"12300\"", "number = \"12301\"");
    let text = edit(&shipped());
    let first = text.find("number = \"12301\"").unwrap();
    let second = first + 1 + text[first + 1..].find("number = \"12301\"").unwrap();
    let line = text[..second].matches('\n').count() + 1;
    assert!(line > text[..first].matches('\n').count() + 1);
    let errors = errors_of(&text);
    assert_has(&errors, line, "duplicate number `12301`");
    assert_eq!(errors.len(), 1, "{}", render(&errors));
}

#[test]
fn number_not_in_canonical_form() {
    expect_only_error(
        |t| replace_once(t, "number = \"2912345\"", "number = \"07352912345\""),
        "\"07352912345\"",
        "write number `07352912345` in canonical form `2912345`",
    );
}

#[test]
fn number_with_non_digits() {
    expect_only_error(
        |t| replace_once(t, "number = \"12300\"", "number = \"123OO\""),
        "\"123OO\"",
        "bad number `123OO`",
    );
}

#[test]
fn emergency_number_given_to_a_line() {
    expect_only_error(
        |t| replace_once(t, "number = \"12300\"", "number = \"110\""),
        "\"110\"\nname = \"全国电信用户申诉渠道咨询电话\"",
        "emergency number `110` given to a line",
    );
}

#[test]
fn emergency_number_in_leader_lines() {
    expect_only_error(
        |t| replace_once(t, "lines = [\"12345\"]", "lines = [\"12345\", \"110\"]"),
        "\"110\"]",
        "emergency number `110` given to a leader-session queue",
    );
}

// ── routes_as ────────────────────────────────────────────────────────────────

#[test]
fn routes_as_unknown_target() {
    expect_only_error(
        |t| {
            replace_once(
                t,
                "remark = \"由119兼职接听\"\nroutes_as = \"119\"",
                "remark = \"由119兼职接听\"\nroutes_as = \"12999\"",
            )
        },
        "\"12999\"",
        "routes_as `12999`: no such line",
    );
}

#[test]
fn routes_as_two_line_cycle() {
    // 12330 → 12315 already; make 12315 → 12330.
    let edit = |t: &str| {
        replace_once(
            t,
            "skill = \"market_regulation\"\nremark = \"设专家座席\"",
            "skill = \"market_regulation\"\nroutes_as = \"12330\"\nremark = \"设专家座席\"",
        )
    };
    let text = edit(&shipped());
    let errors = errors_of(&text);
    let at_12330 = line_of(
        &text,
        "remark = \"已归并到12315\"\nroutes_as = \"12315\"\n\n[[lines]]\nnumber = \"12331\"",
    ) + 1;
    assert_has(
        &errors,
        at_12330,
        "`12330` routes as `12315`, which leads back to `12330`",
    );
    assert_has(
        &errors,
        line_of(&text, "routes_as = \"12330\""),
        "`12315` routes as `12330`, which leads back to `12315`",
    );
    assert!(
        errors.iter().all(|d| d.message.contains("routes_as cycle")),
        "{}",
        render(&errors)
    );
    // 12331, 12358 and 12365 run into the cycle without being in it.
    assert_eq!(errors.len(), 2, "{}", render(&errors));
}

#[test]
fn routes_as_self_cycle() {
    expect_only_error(
        |t| {
            replace_once(
                t,
                "number = \"12322\"\nname = \"全国防震减灾公益服务电话\"\nunit = \"市地震局\"\nmode = \"whole_merge\"\n",
                "number = \"12322\"\nname = \"全国防震减灾公益服务电话\"\nunit = \"市地震局\"\nmode = \"whole_merge\"\nroutes_as = \"12322\"\n",
            )
        },
        "\"12322\"\n\n",
        "routes_as cycle: `12322` routes as `12322`",
    );
}

// ── Seats ────────────────────────────────────────────────────────────────────

#[test]
fn seat_expert_for_unknown_line() {
    expect_only_error(
        |t| replace_once(t, "expert_for = [\"12348\"]", "expert_for = [\"12399\"]"),
        "\"12399\"",
        "seat `8101` is expert for unknown line `12399`",
    );
}

#[test]
fn seat_expert_for_line_without_expert_seat() {
    // 12369 is dual_number without expert_seat; 12345 is not dual_number.
    let edit = |t: &str| {
        replace_once(
            t,
            "expert_for = [\"12333\"]",
            "expert_for = [\"12333\", \"12369\", \"12345\"]",
        )
    };
    let text = edit(&shipped());
    let errors = errors_of(&text);
    let line = line_of(&text, "\"12369\", \"12345\"]");
    assert_has(
        &errors,
        line,
        "seat `8102` is expert for `12369`, which is not a dual_number line with expert_seat = true",
    );
    assert_has(
        &errors,
        line,
        "seat `8102` is expert for `12345`, which is not",
    );
    assert_eq!(errors.len(), 2, "{}", render(&errors));
    // Each error points at its own value on that line.
    let (_, col_12369) = position_of(&text, "\"12369\", \"12345\"]");
    let col_12345 = col_12369 + "\"12369\", ".chars().count();
    let mut cols: Vec<usize> = errors.iter().map(|d| d.column).collect();
    cols.sort_unstable();
    assert_eq!(cols, [col_12369, col_12345]);
}

// ── Units ────────────────────────────────────────────────────────────────────

#[test]
fn line_unit_not_in_units() {
    expect_only_error(
        |t| replace_once(t, "unit = \"市地震局\"", "unit = \"市地震监测中心\""),
        "\"市地震监测中心\"",
        "unknown unit `市地震监测中心`",
    );
}

#[test]
fn leader_session_unit_unknown() {
    expect_only_error(
        |t| {
            replace_once(
                t,
                "unit = \"市邮政管理局\", leader = \"彭立\"",
                "unit = \"市邮政局\", leader = \"彭立\"",
            )
        },
        "\"市邮政局\"",
        "unknown unit `市邮政局`",
    );
}

#[test]
fn leader_session_names_unknown_line() {
    expect_only_error(
        |t| {
            replace_once(
                t,
                "leader = \"彭立\", title = \"局长\" }",
                "leader = \"彭立\", title = \"局长\", lines = [\"12345\", \"12399\"] }",
            )
        },
        "\"12399\"",
        "unknown line `12399`",
    );
}

// ── Leader-session overlaps ──────────────────────────────────────────────────

const FIRST_SESSION: &str = "  { date = \"2023-02-22\", unit = \"市交通运输局\", leader = \"李兴志\", title = \"局长\" },\n";

/// The shipped file with `session` added to `[leader] sessions` right after
/// the first one (市交通运输局, 2023-02-22, 09:00–11:00 on line 12345).
fn with_session(text: &str, session: &str) -> String {
    replace_once(
        text,
        FIRST_SESSION,
        &format!("{FIRST_SESSION}  {session},\n"),
    )
}

#[test]
fn dated_sessions_of_one_unit_overlap() {
    // Same unit, same day, overlapping times, on another line: the unit's
    // leader cannot be in two places at once.
    let new = "{ date = \"2023-02-22\", unit = \"市交通运输局\", start = \"10:00\", end = \"12:00\", lines = [\"12328\"] }";
    let (_, errors) = expect_error(
        |t| with_session(t, new),
        new,
        "sessions of unit `市交通运输局` overlap: 2023-02-22 09:00–11:00 and 2023-02-22 10:00–12:00",
    );
    assert_eq!(errors.len(), 1, "{}", render(&errors));
}

#[test]
fn sessions_of_two_units_overlap_on_a_line() {
    let new = "{ date = \"2023-02-22\", unit = \"市发改委\", start = \"10:30\", end = \"12:00\" }";
    let (_, errors) = expect_error(
        |t| with_session(t, new),
        new,
        "sessions of `市交通运输局` and `市发改委` overlap on line `12345`: 2023-02-22 09:00–11:00 and 2023-02-22 10:30–12:00",
    );
    assert_eq!(errors.len(), 1, "{}", render(&errors));
}

#[test]
fn sessions_that_do_not_overlap_are_accepted() {
    // Controls for the two overlap tests: back to back for the same unit, and
    // at the same time for another unit on another line.
    let text = with_session(
        &shipped(),
        "{ date = \"2023-02-22\", unit = \"市交通运输局\", start = \"11:00\", end = \"12:00\" }",
    );
    let text = with_session(
        &text,
        "{ date = \"2023-02-22\", unit = \"市发改委\", start = \"10:00\", end = \"11:30\", lines = [\"12328\"] }",
    );
    if let Err(e) = parse(&text, path()) {
        panic!("refused:\n{e}");
    }
}

// ── Dates and times ──────────────────────────────────────────────────────────

#[test]
fn bad_session_date_that_does_not_exist() {
    expect_only_error(
        |t| replace_once(t, "{ date = \"2023-02-22\"", "{ date = \"2023-02-30\""),
        "\"2023-02-30\"",
        "bad session date `2023-02-30`: expected a date YYYY-MM-DD",
    );
}

#[test]
fn bad_session_date_with_slashes() {
    expect_only_error(
        |t| replace_once(t, "{ date = \"2023-02-22\"", "{ date = \"2023/02/22\""),
        "\"2023/02/22\"",
        "bad session date `2023/02/22`",
    );
}

#[test]
fn bad_holiday_date() {
    expect_only_error(
        |t| replace_once(t, "dates = \"2023-04-05\"", "dates = \"2023/04/05\""),
        "\"2023/04/05\"",
        "bad date `2023/04/05`",
    );
}

#[test]
fn bad_holiday_range_end() {
    expect_only_error(
        |t| {
            replace_once(
                t,
                "dates = \"2023-06-22..2023-06-24\"",
                "dates = \"2023-06-22..2023-06-31\"",
            )
        },
        "\"2023-06-22..2023-06-31\"",
        "bad date `2023-06-31`",
    );
}

#[test]
fn bad_default_start_time() {
    expect_only_error(
        |t| replace_once(t, "start = \"09:00\"", "start = \"25:00\""),
        "\"25:00\"",
        "bad start time `25:00`: expected a time HH:MM",
    );
}

#[test]
fn bad_session_end_time() {
    let new = "{ date = \"2023-08-09\", unit = \"市发改委\", end = \"9h\" }";
    expect_only_error(|t| with_session(t, new), "\"9h\"", "bad end time `9h`");
}

#[test]
fn session_ends_before_it_starts() {
    let new = "{ date = \"2023-08-09\", unit = \"市发改委\", start = \"11:00\", end = \"10:00\" }";
    expect_only_error(
        |t| with_session(t, new),
        "\"10:00\" }",
        "session ends (10:00:00) before it starts (11:00:00)",
    );
}

#[test]
fn session_starting_after_the_default_end_is_located_at_the_session() {
    // No `end` of its own: the default 11:00 ends it before its 11:30 start.
    let new = "{ date = \"2023-08-09\", unit = \"市发改委\", start = \"11:30\" }";
    expect_only_error(
        |t| with_session(t, new),
        new,
        "session ends (11:00:00) before it starts (11:30:00)",
    );
}

#[test]
fn rule_running_into_an_uncovered_year() {
    let (_, errors) = expect_error(
        |t| replace_once(t, "until = \"2018-12-31\"", "until = \"2019-06-30\""),
        "[[leader.rules]]",
        "rule `衡阳2018热线问政` runs in 2019, which calendar.years does not cover",
    );
    assert_eq!(errors.len(), 1, "{}", render(&errors));
}

#[test]
fn rule_ending_before_it_starts() {
    expect_only_error(
        |t| replace_once(t, "until = \"2018-12-31\"", "until = \"2017-12-31\""),
        "\"2017-12-31\"",
        "rule ends (2017-12-31) before it starts (2018-01-01)",
    );
}

// ── Calendar ─────────────────────────────────────────────────────────────────

#[test]
fn holiday_outside_calendar_years() {
    expect_only_error(
        |t| {
            replace_once(
                t,
                "dates = \"2018-12-30..2018-12-31\"",
                "dates = \"2018-12-30..2019-01-01\"",
            )
        },
        "\"2018-12-30..2019-01-01\"",
        "2019-01-01 is in 2019, which is not in calendar.years",
    );
}

#[test]
fn date_both_holiday_and_workday() {
    // 2023-10-01 (a Sunday) is inside the 2023-09-29..2023-10-06 holiday.
    expect_only_error(
        |t| {
            replace_once(
                t,
                "workdays = [\n",
                "workdays = [\n  { name = \"误填\", dates = \"2023-10-01\" },\n",
            )
        },
        "\"2023-10-01\"",
        "2023-10-01 is both a holiday and a make-up working day",
    );
}

#[test]
fn reversed_date_range() {
    expect_only_error(
        |t| {
            replace_once(
                t,
                "dates = \"2023-09-29..2023-10-06\"",
                "dates = \"2023-10-06..2023-09-29\"",
            )
        },
        "\"2023-10-06..2023-09-29\"",
        "date range `2023-10-06..2023-09-29` ends before it starts",
    );
}

// ── Modes, trunks, gateway, metrics, media ───────────────────────────────────

#[test]
fn unknown_mode() {
    expect_only_error(
        |t| {
            replace_once(
                t,
                "unit = \"市地震局\"\nmode = \"whole_merge\"",
                "unit = \"市地震局\"\nmode = \"merge\"",
            )
        },
        "\"merge\"",
        "unknown mode `merge`",
    );
}

#[test]
fn unknown_trunk_role() {
    expect_only_error(
        |t| replace_once(t, "role = \"carrier\"", "role = \"carier\""),
        "\"carier\"",
        "unknown trunk role `carier`",
    );
}

#[test]
fn sub_centre_line_without_level() {
    expect_only_error(
        |t| {
            replace_once(
                t,
                "remark = \"市级设立分中心\"\nlevel = \"city\"\n",
                "remark = \"市级设立分中心\"\n",
            )
        },
        "\"sub_centre\"\nremark = \"市级设立分中心\"",
        "sub_centre line `12366` needs `level`",
    );
}

#[test]
fn sub_centre_trunk_without_level() {
    let (text, errors) = expect_error(
        |t| {
            replace_once(
                t,
                "role = \"sub_centre\"\nlevel = \"city\"\n",
                "role = \"sub_centre\"\n",
            )
        },
        "\"sub_centre\"\nuri = \"sip:127.0.0.1:5091\"",
        "sub_centre trunk `city_sub_centre` needs a level",
    );
    // And so the city line 12366 has no city trunk to go to.
    assert_has(
        &errors,
        line_of(&text, "level = \"city\""),
        "city sub-centre line `12366` needs `trunk`: there are 0 city sub-centre trunks",
    );
    assert_eq!(errors.len(), 2, "{}", render(&errors));
}

#[test]
fn queue_on_a_sub_centre_line() {
    expect_only_error(
        |t| {
            replace_once(
                t,
                "remark = \"市级设立分中心\"\n",
                "remark = \"市级设立分中心\"\nqueue = \"general\"\n",
            )
        },
        "\"general\"\nlevel = \"city\"",
        "`queue` applies to main, whole_merge and dual_number lines only",
    );
}

#[test]
fn missing_main_line() {
    let (_, errors) = expect_error(
        |t| replace_once(t, "mode = \"main\"", "mode = \"whole_merge\""),
        "[gateway]",
        "no main line",
    );
    assert_eq!(errors.len(), 1, "{}", render(&errors));
}

#[test]
fn bad_timezone() {
    expect_only_error(
        |t| replace_once(t, "\"Asia/Shanghai\"", "\"Asia/Beijing\""),
        "\"Asia/Beijing\"",
        "unknown timezone `Asia/Beijing`",
    );
}

#[test]
fn bad_metrics_listen_address() {
    expect_only_error(
        |t| {
            replace_once(
                t,
                "listen = \"127.0.0.1:9090\"",
                "listen = \"localhost:9090\"",
            )
        },
        "\"localhost:9090\"",
        "bad metrics listen address `localhost:9090`",
    );
}

#[test]
fn announcement_without_a_prompt_file() {
    let expected_file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("prompts")
        .join("merged_into_12349.wav");
    assert!(!expected_file.exists());
    expect_only_error(
        |t| {
            replace_once(
                t,
                "unit = \"市民政局\"\nmode = \"whole_merge\"\nremark = \"已暂停服务\"\nannouncement = \"merged_into_12345\"",
                "unit = \"市民政局\"\nmode = \"whole_merge\"\nremark = \"已暂停服务\"\nannouncement = \"merged_into_12349\"",
            )
        },
        "\"merged_into_12349\"",
        &format!(
            "announcement `merged_into_12349`: no file {}",
            expected_file.display()
        ),
    );
}

#[test]
fn prompts_resolve_against_the_given_path() {
    // The same text under another directory: none of its 4 announcements exist.
    let elsewhere = Path::new("/nonexistent-hotline-dir/routing.toml");
    let text = shipped();
    let errors = match parse(&text, elsewhere) {
        Err(ConfigError::Invalid { errors, .. }) => errors,
        other => panic!("expected Invalid, got {other:?}"),
    };
    // The recordings directory resolves against it too, and is missing.
    let (recordings, errors): (Vec<_>, Vec<_>) = errors
        .into_iter()
        .partition(|d| d.message.starts_with("recordings_dir"));
    assert_eq!(recordings.len(), 1);
    assert!(
        recordings[0]
            .message
            .contains("/nonexistent-hotline-dir/recordings")
    );
    assert_eq!(errors.len(), 4, "{}", render(&errors));
    for d in &errors {
        assert_eq!(d.file, elsewhere);
        assert!(
            d.message
                .contains("/nonexistent-hotline-dir/prompts/merged_into_12345.wav"),
            "{d}"
        );
    }
}

// ── Order and rendering ──────────────────────────────────────────────────────

#[test]
fn errors_are_sorted_by_line_and_rendered_like_a_compiler() {
    // Made in an order unlike the order the validator finds them: an unknown
    // key at the very end (found first), a calendar error (found before the
    // leader section above it), a leader error, and a gateway error.
    let mut text = shipped();
    text = replace_once(&text, "barred = []", "barred = []\nblocked = []");
    text = replace_once(
        &text,
        "dates = \"2023-09-29..2023-10-06\"",
        "dates = \"2023-10-06..2023-09-29\"",
    );
    text = replace_once(&text, "start = \"09:00\"", "start = \"25:00\"");
    text = replace_once(&text, "\"Asia/Shanghai\"", "\"Asia/Beijing\"");
    let expected_order = [
        ("\"Asia/Beijing\"", "unknown timezone"),
        ("\"25:00\"", "bad start time"),
        ("\"2023-10-06..2023-09-29\"", "ends before it starts"),
        ("blocked = []", "unknown key `callers.blocked`"),
    ];
    let errors = errors_of(&text);
    assert_eq!(errors.len(), expected_order.len(), "{}", render(&errors));
    for (d, (needle, part)) in errors.iter().zip(expected_order) {
        let (line, column) = position_of(&text, needle);
        assert_eq!((d.line, d.column), (line, column), "{d}");
        assert!(d.message.contains(part), "{d}");
        assert_eq!(
            d.to_string(),
            format!("{PATH}:{line}:{column}: error: {}", d.message)
        );
    }
    assert!(
        errors
            .windows(2)
            .all(|w| (w[0].line, w[0].column) < (w[1].line, w[1].column))
    );

    let err = parse(&text, path()).unwrap_err();
    let rendered = err.to_string();
    let mut lines = rendered.lines();
    assert_eq!(lines.next(), Some("4 errors in routing table"));
    let rest: Vec<&str> = lines.collect();
    let each: Vec<String> = errors.iter().map(|d| d.to_string()).collect();
    assert_eq!(rest, each);
    assert_eq!(err.diagnostics(), errors.as_slice());
}

#[test]
fn one_error_renders_in_the_singular() {
    let text = replace_once(&shipped(), "\"Asia/Shanghai\"", "\"Asia/Beijing\"");
    let err = parse(&text, path()).unwrap_err();
    let (line, column) = position_of(&text, "\"Asia/Beijing\"");
    assert_eq!(
        err.to_string(),
        format!(
            "1 error in routing table\n{PATH}:{line}:{column}: error: unknown timezone `Asia/Beijing`: use an IANA name such as `Asia/Shanghai`"
        )
    );
}

// ── Safety limits found in review ───────────────────────────────────────────

#[test]
fn a_missing_national_emergency_number_is_refused() {
    expect_only_error(
        |t| {
            replace_once(
                t,
                "[[emergency]]\nnumber = \"122\"\nname = \"交通事故报警\"\nunit = \"市公安局交通警察支队\"\n",
                "",
            )
        },
        "[gateway]",
        "emergency number `122` is missing",
    );
}

#[test]
fn an_emergency_number_moved_from_emergency_to_a_line_is_refused() {
    // Without the safety net this table would queue calls to 110.
    let (_, errors) = expect_error(
        |t| {
            let t = replace_once(
                t,
                "[[emergency]]\nnumber = \"110\"\nname = \"匪警\"\nunit = \"市公安局\"\n",
                "",
            );
            replace_once(&t, "number = \"12300\"", "number = \"110\"")
        },
        "[gateway]",
        "emergency number `110` is missing",
    );
    assert_eq!(errors.len(), 1, "{}", render(&errors));
}

#[test]
fn ticket_deadline_out_of_range() {
    for bad in ["0", "100"] {
        expect_only_error(
            |t| {
                replace_once(
                    t,
                    "ticket_due_working_days = 3",
                    &format!("ticket_due_working_days = {bad}"),
                )
            },
            &format!("{bad}\nstart = \"09:00\""),
            &format!("ticket_due_working_days = {bad}: 1 to 60"),
        );
    }
}

#[test]
fn a_weekend_of_seven_days_is_refused() {
    expect_only_error(
        |t| {
            replace_once(
                t,
                "weekend = [\"saturday\", \"sunday\"]",
                "weekend = [\"monday\", \"tuesday\", \"wednesday\", \"thursday\", \"friday\", \"saturday\", \"sunday\"]",
            )
        },
        "\"monday\", \"tuesday\"",
        "no working day",
    );
}

#[test]
fn a_session_with_an_empty_lines_list_is_refused() {
    expect_only_error(
        |t| {
            replace_once(
                t,
                "{ date = \"2023-03-08\", unit = \"市卫生健康委员会\", leader = \"刘英\", title = \"主任\" }",
                "{ date = \"2023-03-08\", unit = \"市卫生健康委员会\", leader = \"刘英\", title = \"主任\", lines = [] }",
            )
        },
        "{ date = \"2023-03-08\"",
        "`lines` is empty",
    );
}

#[test]
fn a_rule_session_moved_into_an_uncovered_year_is_refused() {
    // The 5th Monday of December 2018 is Dec 31, a holiday; the next working
    // day is in 2019, which the calendar does not cover.
    let rule = "[[leader.rules]]\nname = \"year end\"\nweekday = \"monday\"\nweeks_of_month = [5]\nfrom = \"2018-12-01\"\nuntil = \"2018-12-31\"\nunit = \"市司法局\"\n\n";
    expect_only_error(
        |t| replace_once(t, "[calendar]\n", &format!("{rule}[calendar]\n")),
        "[[leader.rules]]\nname = \"year end\"",
        "moves to 2019-01-01",
    );
}

#[test]
fn a_bad_sip_listen_address_is_refused() {
    expect_only_error(
        |t| {
            replace_once(
                t,
                "listen_udp = \"0.0.0.0:5060\"",
                "listen_udp = \"0.0.0.0\"",
            )
        },
        "\"0.0.0.0\"",
        "bad sip listen_udp address",
    );
}

#[test]
fn t2_shorter_than_t1_is_refused() {
    expect_only_error(
        |t| replace_once(t, "t2_ms = 4000", "t2_ms = 400"),
        "400",
        "t2_ms must not be shorter than t1_ms",
    );
}

#[test]
fn a_short_seat_password_is_refused() {
    expect_only_error(
        |t| {
            replace_once(
                t,
                "password = \"demo-8001-change-me\"",
                "password = \"1234\"",
            )
        },
        "\"1234\"",
        "seat `8001` password is shorter than 8 characters",
    );
}

#[test]
fn an_unknown_digest_algorithm_is_refused() {
    expect_only_error(
        |t| {
            replace_once(
                t,
                "realm = \"hotline.chenzhou\"",
                "realm = \"hotline.chenzhou\"\ndigest_algorithms = [\"SHA-512\"]",
            )
        },
        "\"SHA-512\"",
        "unknown digest algorithm `SHA-512`",
    );
}

#[test]
fn a_carrier_trunk_named_by_host_needs_sources() {
    expect_only_error(
        |t| {
            replace_once(
                t,
                "uri = \"sip:127.0.0.1:5080\"",
                "uri = \"sip:carrier.example.net\"",
            )
        },
        "\"sip:carrier.example.net\"",
        "list the addresses it sends from in `sources`",
    );
}

#[test]
fn a_missing_recordings_directory_is_refused() {
    expect_only_error(
        |t| {
            replace_once(
                t,
                "recordings_dir = \"recordings\"",
                "recordings_dir = \"no-such-dir\"",
            )
        },
        "\"no-such-dir\"",
        "is not a directory",
    );
}

#[test]
fn a_bad_rtp_port_range_is_refused() {
    expect_only_error(
        |t| {
            replace_once(
                t,
                "rtp_ports = \"20000-29999\"",
                "rtp_ports = \"29999-20000\"",
            )
        },
        "\"29999-20000\"",
        "bad rtp_ports",
    );
}

// ── Trunk alternates, probes, per-seat digest ───────────────────────────────

#[test]
fn an_alternate_trunk_must_exist_and_share_the_role() {
    expect_only_error(
        |t| {
            replace_once(
                t,
                "uri = \"sip:127.0.0.1:5093\"",
                "uri = \"sip:127.0.0.1:5093\"\nalternates = [\"no_such_trunk\"]",
            )
        },
        "\"no_such_trunk\"",
        "unknown alternate trunk `no_such_trunk`",
    );
    expect_only_error(
        |t| {
            replace_once(
                t,
                "uri = \"sip:127.0.0.1:5093\"",
                "uri = \"sip:127.0.0.1:5093\"\nalternates = [\"city_sub_centre\"]",
            )
        },
        "\"city_sub_centre\"]",
        "alternate `city_sub_centre` has role `sub_centre` and `emergency` has role `emergency`",
    );
    expect_only_error(
        |t| {
            replace_once(
                t,
                "uri = \"sip:127.0.0.1:5093\"",
                "uri = \"sip:127.0.0.1:5093\"\nalternates = [\"emergency\"]",
            )
        },
        "\"emergency\"]",
        "cannot be its own alternate",
    );
}

#[test]
fn an_alternate_of_the_same_role_is_accepted() {
    let text = replace_once(
        &shipped(),
        "uri = \"sip:127.0.0.1:5093\"",
        "uri = \"sip:127.0.0.1:5093\"\nalternates = [\"backup\"]\n\n[[trunks]]\nid = \"backup\"\nrole = \"emergency\"\nuri = \"sip:127.0.0.1:5094\"\nprobe = false",
    )
    .replace("[[emergency]]\n", "[[emergency]]\ntrunk = \"emergency\"\n");
    let loaded = parse(&text, path()).expect("accepted");
    let table = &loaded.table;
    let e = table.trunk("emergency").unwrap();
    assert_eq!(e.alternates, ["backup"]);
    assert!(e.probe);
    assert!(!table.trunk("backup").unwrap().probe);
}

#[test]
fn probe_and_response_settings_are_range_checked() {
    expect_error(
        |t| {
            replace_once(
                t,
                "max_register_expires = 3600",
                "max_register_expires = 3600\ntrunk_probe_failures = 0",
            )
        },
        "trunk_probe_failures = 0",
        "trunk_probe_failures = 0 is out of range 1..=100",
    );
    expect_error(
        |t| {
            replace_once(
                t,
                "max_register_expires = 3600",
                "max_register_expires = 3600\nresponse_timeout_ms = 5",
            )
        },
        "response_timeout_ms = 5",
        "response_timeout_ms = 5 is out of range 100..=60000",
    );
}

#[test]
fn the_shipped_table_offers_md5_and_a_seat_may_require_sha256() {
    let loaded = parse(&shipped(), path()).expect("the shipped table loads");
    assert_eq!(
        loaded.table.sip.digest_algorithms,
        [hotline::sip::digest::Algorithm::Md5],
        "MD5 alone by default: phones refuse a challenge they do not know"
    );
    let text = replace_once(
        &shipped(),
        "password = \"demo-8101-change-me\"",
        "password = \"demo-8101-change-me\"\ndigest_algorithms = [\"SHA-256\"]",
    );
    let loaded = parse(&text, path()).expect("accepted");
    let seat = loaded.table.seats.iter().find(|s| s.id == "8101").unwrap();
    assert_eq!(
        seat.digest_algorithms.as_deref(),
        Some(&[hotline::sip::digest::Algorithm::Sha256][..])
    );
    expect_only_error(
        |t| {
            replace_once(
                t,
                "password = \"demo-8101-change-me\"",
                "password = \"demo-8101-change-me\"\ndigest_algorithms = [\"SHA-1\"]",
            )
        },
        "\"SHA-1\"",
        "unknown digest algorithm `SHA-1`",
    );
}

#[test]
fn demo_and_short_passwords_are_warned_about() {
    let text = replace_once(
        &shipped(),
        "password = \"demo-8101-change-me\"",
        "password = \"s3cret-8101\"",
    );
    let loaded = parse(&text, path()).expect("a warning does not refuse the table");
    let line = line_of(&text, "\"s3cret-8101\"");
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.line == line && w.message.contains("shorter than 12 characters")),
        "{}",
        render(&loaded.warnings)
    );
    let demo_line = line_of(&text, "\"demo-8001-change-me\"");
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.line == demo_line && w.message.contains("seat `8001` has a demo password")),
        "{}",
        render(&loaded.warnings)
    );
    // A good password gets no warning.
    let text = replace_once(
        &shipped(),
        "password = \"demo-8101-change-me\"",
        "password = \"correct-horse-battery-8101\"",
    );
    let loaded = parse(&text, path()).unwrap();
    let line = line_of(&text, "correct-horse");
    assert!(!loaded.warnings.iter().any(|w| w.line == line));
}

#[test]
fn a_trunk_transport_and_source_ports_are_checked() {
    expect_only_error(
        |t| {
            replace_once(
                t,
                "id = \"carrier\"\n",
                "id = \"carrier\"\ntransport = \"sctp\"\n",
            )
        },
        "\"sctp\"",
        "unknown trunk transport `sctp`: any, udp or tcp",
    );
    expect_only_error(
        |t| {
            replace_once(
                t,
                "id = \"carrier\"\n",
                "id = \"carrier\"\nsource_ports = [5060, 70000]\n",
            )
        },
        "70000",
        "bad source port 70000",
    );
}

#[test]
fn a_response_timeout_shorter_than_two_t1_is_refused() {
    expect_error(
        |t| {
            replace_once(
                t,
                "max_register_expires = 3600",
                "max_register_expires = 3600\nresponse_timeout_ms = 600",
            )
        },
        "response_timeout_ms = 600",
        "is shorter than two T1 (1000)",
    );
}

// ── Queues (ACD) and [acd] ───────────────────────────────────────────────────

use hotline::routing::{QueueOverflow, QueueStrategy};
use std::time::Duration;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn key_of(line: &str) -> &str {
    line.trim_start_matches("# ").split(" = ").next().unwrap()
}

/// `text` with its whole line `line` (`ring_seconds = 20`, or commented
/// out: `# exit_key = "0"`) replaced by the key set to `value`.
fn set_value(text: &str, line: &str, value: &str) -> String {
    let key = key_of(line);
    replace_once(
        text,
        &format!("\n{line}\n"),
        &format!("\n{key} = {value}\n"),
    )
}

/// Sets the key of the shipped file's line `line` to `value` and expects
/// one error, at the value, containing `message_part`.
#[track_caller]
fn expect_only_error_at_value(line: &str, value: &str, message_part: &str) {
    let text = set_value(&shipped(), line, value);
    let key = key_of(line);
    let at = line_of(&text, &format!("\n{key} = {value}\n")) + 1;
    let column = key.chars().count() + " = ".len() + 1;
    let errors = errors_of(&text);
    assert!(
        errors.len() == 1
            && errors[0].line == at
            && errors[0].column == column
            && errors[0].message.contains(message_part),
        "{key} = {value}: expected one error at {at}:{column} containing {message_part:?}; got:\n{}",
        render(&errors)
    );
}

/// The table `edit` makes of the shipped file, which must be accepted.
#[track_caller]
fn accepted(edit: impl Fn(&str) -> String) -> hotline::routing::Table {
    match parse(&edit(&shipped()), path()) {
        Ok(l) => l.table,
        Err(e) => panic!("edited table refused:\n{e}"),
    }
}

fn queue<'t>(t: &'t hotline::routing::Table, id: &str) -> (u32, &'t hotline::routing::Queue) {
    let i = t.queues.iter().position(|q| q.id == id).unwrap();
    (i as u32, &t.queues[i])
}

#[test]
fn the_shipped_queues_have_the_settings_the_file_gives() {
    let t = accepted(|t| t.to_string());
    let (general, g) = queue(&t, "general");
    assert_eq!(g.strategy, QueueStrategy::LongestIdle);
    assert_eq!(g.ring, secs(20));
    assert_eq!(g.wrap_up, secs(10));
    assert_eq!(g.announce_every, Some(secs(45)));
    assert_eq!(g.service_level, secs(20));
    assert_eq!(g.max_callers, Some(200));
    assert_eq!(g.max_wait, Some(secs(900)));
    assert_eq!(g.overflow, QueueOverflow::Busy);
    assert_eq!(g.join_empty, QueueOverflow::Busy);
    assert_eq!(g.exit_key, None);
    let (_, l) = queue(&t, "leader");
    assert_eq!(l.strategy, QueueStrategy::RingAll);
    assert_eq!(l.overflow, QueueOverflow::Queue(general));
    assert_eq!(l.join_empty, QueueOverflow::Queue(general));
    assert!(
        l.max_wait < g.max_wait,
        "a caller moved to general keeps its arrival"
    );
    assert_eq!(t.acd.pause_code, "*51");
    assert_eq!(t.acd.resume_code, "*50");
    assert_eq!(t.acd.queue_log, None);
}

#[test]
fn queue_keys_left_out_take_their_defaults() {
    let t = accepted(|t| {
        let t = replace_once(
            t,
            "default_handle_seconds = 300\n",
            "default_handle_seconds = 300\n\n[[queues]]\nid = \"spare\"\nskill = \"general\"\n",
        );
        // No [acd] table at all.
        let t = replace_once(&t, "pause_code = \"*51\"\nresume_code = \"*50\"\n", "");
        replace_once(&t, "\n[acd]\n", "\n")
    });
    let (_, q) = queue(&t, "spare");
    assert_eq!(q.name, "spare");
    assert_eq!(q.strategy, QueueStrategy::LongestIdle);
    assert_eq!(q.ring, secs(20));
    assert_eq!(q.wrap_up, secs(10));
    assert_eq!(q.announce_every, Some(secs(45)));
    assert_eq!(q.service_level, secs(20));
    assert_eq!(q.max_callers, None);
    assert_eq!(q.max_wait, None);
    assert_eq!(q.join_empty, QueueOverflow::Busy);
    assert_eq!(q.overflow, QueueOverflow::Busy);
    assert_eq!(q.exit_key, None);
    assert_eq!(q.exit_action, QueueOverflow::Busy);
    assert_eq!(q.expert_wait, secs(10));
    assert_eq!(q.widen_after, secs(30));
    assert_eq!(q.default_handle, secs(180));
    assert_eq!(q.max_missed_offers, 3);
    assert_eq!(q.short_abandon, secs(5));
    assert_eq!(
        t.acd,
        hotline::routing::AcdSettings {
            queue_log: None,
            pause_code: "*51".into(),
            resume_code: "*50".into(),
        }
    );
    // Dual-number lines wait with the main line's queue; sub-centre lines
    // have none.
    let (general, _) = queue(&t, "general");
    assert_eq!(t.line("12348").unwrap().queue, Some(general));
    assert_eq!(t.line("12369").unwrap().queue, Some(general));
    assert_eq!(t.line("12366").unwrap().queue, None);
}

#[test]
fn a_dual_number_line_may_name_its_queue() {
    let t = accepted(|t| {
        replace_once(
            t,
            "skill = \"environment\"\n",
            "skill = \"environment\"\nqueue = \"leader\"\n",
        )
    });
    let (leader, _) = queue(&t, "leader");
    assert_eq!(t.line("12369").unwrap().queue, Some(leader));
    expect_only_error(
        |t| {
            replace_once(
                t,
                "skill = \"environment\"\n",
                "skill = \"environment\"\nqueue = \"environmental\"\n",
            )
        },
        "\"environmental\"",
        "unknown queue `environmental`",
    );
}

#[test]
fn an_unknown_strategy_is_refused_naming_the_known_ones() {
    expect_only_error_at_value(
        "strategy = \"longest_idle\"",
        "\"random\"",
        "unknown strategy `random`: one of longest_idle, round_robin, fewest_calls, ring_all",
    );
    let t = accepted(|t| set_value(t, "strategy = \"longest_idle\"", "\"fewest_calls\""));
    assert_eq!(queue(&t, "general").1.strategy, QueueStrategy::FewestCalls);
}

#[test]
fn queue_times_and_limits_are_range_checked() {
    for (line, value, message) in [
        (
            "ring_seconds = 20",
            "0",
            "ring_seconds = 0 is out of range 1..=300",
        ),
        (
            "ring_seconds = 20",
            "301",
            "ring_seconds = 301 is out of range 1..=300",
        ),
        (
            "wrap_up_seconds = 10",
            "3601",
            "wrap_up_seconds = 3601 is out of range 0..=3600",
        ),
        (
            "service_level_seconds = 20",
            "0",
            "service_level_seconds = 0 is out of range 1..=3600",
        ),
        (
            "max_callers = 200",
            "0",
            "max_callers = 0 is out of range 1..=100000",
        ),
        (
            "max_wait_seconds = 900",
            "5",
            "max_wait_seconds = 5 is out of range 10..=86400",
        ),
        (
            "max_missed_offers = 3",
            "101",
            "max_missed_offers = 101 is out of range 0..=100",
        ),
        (
            "default_handle_seconds = 180",
            "0",
            "default_handle_seconds = 0 is out of range 10..=7200",
        ),
        (
            "short_abandon_seconds = 5",
            "601",
            "short_abandon_seconds = 601 is out of range 0..=600",
        ),
        (
            "expert_wait_seconds = 10",
            "3601",
            "expert_wait_seconds = 3601 is out of range 0..=3600",
        ),
        (
            "announce_seconds = 45",
            "5",
            "announce_seconds = 5: 0 (never) or 10 to 3600",
        ),
        (
            "ring_seconds = 20",
            "\"20s\"",
            "invalid type: string \"20s\", expected a whole number",
        ),
    ] {
        expect_only_error_at_value(line, value, message);
    }
    let t = accepted(|t| set_value(t, "announce_seconds = 45", "0"));
    assert_eq!(queue(&t, "general").1.announce_every, None);
}

#[test]
fn widening_before_the_expert_wait_is_refused() {
    expect_only_error_at_value(
        "widen_after_seconds = 30",
        "5",
        "widen_after_seconds = 5 is shorter than expert_wait_seconds = 10",
    );
    // Equal is fine: the skilled and the general seats join at once.
    let t = accepted(|t| set_value(t, "widen_after_seconds = 30", "10"));
    assert_eq!(queue(&t, "general").1.widen_after, secs(10));
}

#[test]
fn an_exit_key_is_one_key_and_an_exit_action_needs_one() {
    let key = "# exit_key = \"0\"";
    let action = "# exit_action = \"busy\"";
    expect_only_error_at_value(key, "\"00\"", "bad exit_key `00`: one key, 0-9, * or #");
    expect_only_error_at_value(key, "\"A\"", "bad exit_key `A`");
    expect_only_error_at_value(action, "\"busy\"", "exit_action without exit_key");
    let t = accepted(|t| set_value(&set_value(t, key, "\"#\""), action, "\"queue:leader\""));
    let (_, g) = queue(&t, "general");
    assert_eq!(g.exit_key, Some('#'));
    assert_eq!(g.exit_action, QueueOverflow::Queue(queue(&t, "leader").0));
}

#[test]
fn a_callback_overflow_is_taken() {
    for key in ["overflow", "join_empty"] {
        let t = accepted(|t| set_value(t, &format!("{key} = \"busy\""), "\"callback\""));
        assert!(
            t.queues.iter().any(|q| {
                let got = if key == "overflow" {
                    q.overflow
                } else {
                    q.join_empty
                };
                got == QueueOverflow::Callback
            }),
            "{key}"
        );
    }
}

#[test]
fn a_callback_offer_cannot_share_its_key_with_the_exit_key() {
    let text = shipped().replacen(
        "name = \"12345综合受理\"\n",
        "name = \"12345综合受理\"\ncallback_offer_after_seconds = 60\nexit_key = \"*\"\n",
        1,
    );
    let errors = errors_of(&text);
    assert!(
        errors.len() == 1
            && errors[0].line == line_of(&text, "\ncallback_offer_after_seconds = 60\n") + 1
            && errors[0]
                .message
                .contains("callback_offer_after_seconds with exit_key = \"*\""),
        "{}",
        render(&errors)
    );
}

#[test]
fn an_overflow_target_is_busy_or_another_existing_queue() {
    let busy = "overflow = \"busy\"";
    expect_only_error_at_value(
        busy,
        "\"hangup\"",
        "unknown overflow `hangup`: busy, callback or queue:<id>",
    );
    expect_only_error_at_value(busy, "\"queue:nowhere\"", "unknown queue `nowhere`");
    // The leader's queue, whose overflow and join_empty name general.
    for key in ["overflow", "join_empty"] {
        expect_only_error_at_value(
            &format!("{key} = \"queue:general\""),
            "\"queue:leader\"",
            &format!("{key} = \"queue:leader\" names the queue itself"),
        );
    }
}

#[test]
fn queues_may_overflow_into_each_other() {
    // general → leader → general: the ACD guards a caller against going round.
    let t = accepted(|t| set_value(t, "overflow = \"busy\"", "\"queue:leader\""));
    let (general, g) = queue(&t, "general");
    let (leader, l) = queue(&t, "leader");
    assert_eq!(g.overflow, QueueOverflow::Queue(leader));
    assert_eq!(l.overflow, QueueOverflow::Queue(general));
}

#[test]
fn feature_codes_are_short_key_strings_that_differ() {
    let pause = "pause_code = \"*51\"";
    expect_only_error_at_value(
        pause,
        "\"*5a\"",
        "bad pause_code `*5a`: 2 to 8 keys of 0-9, * and #",
    );
    expect_only_error_at_value(pause, "\"*\"", "bad pause_code `*`");
    expect_only_error_at_value(pause, "\"*51515151\"", "bad pause_code `*51515151`");
    // Reported at the second of the two; or at the pause code when the
    // resume code is left out (and so is *50).
    expect_only_error_at_value(
        "resume_code = \"*50\"",
        "\"*51\"",
        "pause_code and resume_code are both `*51`: they must differ",
    );
    let text = replace_once(&shipped(), "resume_code = \"*50\"\n", "");
    let text = set_value(&text, pause, "\"*50\"");
    let errors = errors_of(&text);
    assert_eq!(errors.len(), 1, "{}", render(&errors));
    assert_has(&errors, line_of(&text, "\"*50\""), "both `*50`");
    let t = accepted(|t| set_value(t, pause, "\"#51#\""));
    assert_eq!(t.acd.pause_code, "#51#");
}

#[test]
fn a_feature_code_cannot_hide_a_number_or_a_seat() {
    let pause = "pause_code = \"*51\"";
    expect_only_error_at_value(
        pause,
        "\"110\"",
        "pause_code `110` is a number the table routes",
    );
    expect_only_error_at_value(
        pause,
        "\"12345\"",
        "pause_code `12345` is a number the table routes",
    );
    expect_only_error_at_value(
        "resume_code = \"*50\"",
        "\"8001\"",
        "resume_code `8001` is seat `8001`",
    );
}

#[test]
fn the_queue_log_is_a_file_beside_the_table() {
    let log = "# queue_log = \"queue_log.jsonl\"";
    let t = accepted(|t| set_value(t, log, "\"queue_log.jsonl\""));
    let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("queue_log.jsonl");
    assert_eq!(t.acd.queue_log, Some(beside));
    expect_only_error_at_value(log, "\"no-such-dir/queue_log.jsonl\"", "no directory");
    expect_only_error_at_value(log, "\"prompts\"", "is a directory: name a file");
    expect_only_error_at_value(log, "\"\"", "empty queue_log");
}

#[test]
fn the_leader_sessions_choice_keys_are_checked() {
    for (from, to, message) in [
        (
            "default_choice = \"wait\"",
            "default_choice = \"maybe\"",
            "wait or ticket",
        ),
        (
            "at_session_end = \"ticket\"",
            "at_session_end = \"later\"",
            "ticket or main_queue",
        ),
        (
            "choice_timeout_seconds = 8",
            "choice_timeout_seconds = 1",
            "out of range 2..=60",
        ),
        (
            "message_seconds = 60",
            "message_seconds = 3000",
            "out of range 0..=300",
        ),
        (
            "message_silence_seconds = 5",
            "message_silence_seconds = 61",
            "out of range 0..=60",
        ),
    ] {
        expect_error(|t| replace_once(t, from, to), to, message);
    }
}

#[test]
fn the_ticket_store_and_units_are_checked_without_repeating_secrets() {
    let store = |to: &str| {
        let to = to.to_string();
        move |t: &str| replace_once(t, "store = \"sqlite:tickets.db\"", &to)
    };
    expect_error(
        store("store = \"mysql://db/x\""),
        "store = \"mysql",
        "sqlite:PATH or postgres://",
    );
    expect_error(
        store("store = \"sqlite:no/such/dir/t.db\""),
        "store = \"sqlite:no",
        "no directory",
    );
    let unit = |body: &str| {
        let body = body.to_string();
        move |t: &str| {
            replace_once(
                t,
                "requests_dir = \"requests\"\n",
                &format!("requests_dir = \"requests\"\n\n[[tickets.units]]\n{body}\n"),
            )
        }
    };
    expect_error(
        unit("unit = \"市不存在局\""),
        "unit = \"市不存在局\"",
        "unknown unit",
    );
    expect_error(
        unit(
            "unit = \"市发改委\"\nwebhook_url = \"ftp://x\"\nwebhook_secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"",
        ),
        "webhook_url",
        "http:// or https://",
    );
    let text =
        unit("unit = \"市发改委\"\nwebhook_url = \"http://127.0.0.1:8080/h\"")(&shipped());
    let errors = errors_of(&text);
    assert!(
        errors
            .iter()
            .any(|e| e.message.contains("no webhook_secret")),
        "{}",
        render(&errors)
    );
    let (_, errors) = expect_error(
        unit(
            "unit = \"市发改委\"\nwebhook_url = \"http://127.0.0.1:8080/h\"\nwebhook_secret = \"whsec_short-and-secret\"",
        ),
        "webhook_secret",
        "24 bytes or more",
    );
    assert!(
        errors
            .iter()
            .all(|e| !e.message.contains("short-and-secret")),
        "a secret is never repeated: {errors:?}"
    );
    expect_error(
        unit("unit = \"市交通运输局\"\napi_token = \"short\""),
        "api_token",
        "16 characters or more",
    );
}

// ── [[api.tokens]] and [records] ─────────────────────────────────────────────

#[test]
fn api_tokens_are_checked_and_only_their_digest_is_kept() {
    let with = |tokens: &str| {
        shipped().replace(
            "[[api.tokens]]\nname = \"wallboard\"",
            &format!("{tokens}\n[[api.tokens]]\nname = \"wallboard\""),
        )
    };
    let digest = "5f8e3ff7bd27f3a0a8bcb8ed2ca74f0a0e8e9ab0c6e43b0c9a4c5d3f2e1b0a99";
    let ok = accepted(|_| {
        with(&format!(
            "[[api.tokens]]\nname = \"ops\"\nrole = \"unit:市民政局\"\ntoken_sha256 = \"{digest}\"\n"
        ))
    });
    let t = ok.api_tokens.iter().find(|t| t.name == "ops").unwrap();
    assert!(!t.plain);
    assert_eq!(
        t.role,
        hotline::routing::table::ApiRole::Unit("市民政局".into())
    );
    assert!(
        !format!("{:?}", ok.api_tokens).contains("demo-token"),
        "never printed"
    );
    for (tokens, error) in [
        (
            "[[api.tokens]]\nname = \"x\"\nrole = \"admin\"\ntoken_sha256 = \"DIGEST\"\n",
            "unknown role `admin`",
        ),
        (
            "[[api.tokens]]\nname = \"x\"\nrole = \"unit:nobody\"\ntoken_sha256 = \"DIGEST\"\n",
            "no unit `nobody`",
        ),
        (
            "[[api.tokens]]\nname = \"x\"\nrole = \"viewer\"\ntoken_sha256 = \"abc\"\n",
            "64 hex digits",
        ),
        (
            "[[api.tokens]]\nname = \"x\"\nrole = \"viewer\"\ntoken = \"short\"\n",
            "16 characters or more",
        ),
        (
            "[[api.tokens]]\nname = \"x\"\nrole = \"viewer\"\n",
            "neither token_sha256 nor token",
        ),
        (
            "[[api.tokens]]\nname = \"wallboard\"\nrole = \"viewer\"\ntoken_sha256 = \"DIGEST\"\n",
            "given twice",
        ),
        (
            "[[api.tokens]]\nname = \"y\"\nrole = \"viewer\"\ntoken = \"wallboard-demo-token-change-me\"\n",
            "the same token given twice",
        ),
    ] {
        let text = with(&tokens.replace("DIGEST", digest));
        let e = render(&errors_of(&text));
        assert!(e.contains(error), "{tokens}: {e}");
        assert!(
            !e.contains("wallboard-demo-token-change-me"),
            "a token is never repeated: {e}"
        );
    }
}

#[test]
fn records_jsonl_must_name_a_file_in_a_folder_that_exists() {
    let e = render(&errors_of(
        &(shipped() + "\n[records]\njsonl = \"no/such/dir/calls.jsonl\"\n"),
    ));
    assert!(
        e.contains("records jsonl") && e.contains("no directory"),
        "{e}"
    );
    let t = accepted(|t| t.to_string() + "\n[records]\njsonl = \"calls.jsonl\"\n");
    assert!(t.records_jsonl.unwrap().ends_with("calls.jsonl"));
}
