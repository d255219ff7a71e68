//! From the raw schema to a [`Table`]: every check `hotline check` runs, each
//! error reported with its place in the file, all of them in one pass.

use super::error::Reporter;
use super::schema::*;
use crate::routing::table::{
    AcdSettings, CallbackSettings, EmergencyLine, LeaderSession, LeaderSettings, Line,
    MediaSettings, Queue, QueueOverflow, QueueStrategy, Resolved, Seat, SipSettings,
    TicketSettings, TicketUnit, Trunk,
};
use crate::routing::{Level, Mode, Number, NumberingPlan, Table, TrunkRole, WorkCalendar};
use chrono::{Datelike, NaiveDate, NaiveTime, Weekday};
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

/// The national emergency numbers (110 police, 119 fire, 120 ambulance,
/// 122 traffic accidents): every table must route them as emergencies.
pub const NATIONAL_EMERGENCY_NUMBERS: [&str; 4] = ["110", "119", "120", "122"];

/// Most working days a ticket deadline may be set to.
const MAX_TICKET_DUE_WORKING_DAYS: u32 = 60;

/// Default metrics address: loopback only, never open to the world by default.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9090";

fn parse_date(r: &mut Reporter, s: &S<String>, what: &str) -> Option<NaiveDate> {
    match NaiveDate::parse_from_str(s.get_ref().trim(), "%Y-%m-%d") {
        Ok(d) => Some(d),
        Err(_) => {
            r.error(
                s.span(),
                format!("bad {what} `{}`: expected a date YYYY-MM-DD", s.get_ref()),
            );
            None
        }
    }
}

fn parse_time(r: &mut Reporter, s: &S<String>, what: &str) -> Option<NaiveTime> {
    let t = s.get_ref().trim();
    match NaiveTime::parse_from_str(t, "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(t, "%H:%M:%S"))
    {
        Ok(t) => Some(t),
        Err(_) => {
            r.error(
                s.span(),
                format!(
                    "bad {what} `{}`: expected a time HH:MM (24-hour)",
                    s.get_ref()
                ),
            );
            None
        }
    }
}

fn parse_weekday(s: &str) -> Option<Weekday> {
    match s.trim().to_ascii_lowercase().as_str() {
        "monday" | "mon" => Some(Weekday::Mon),
        "tuesday" | "tue" => Some(Weekday::Tue),
        "wednesday" | "wed" => Some(Weekday::Wed),
        "thursday" | "thu" => Some(Weekday::Thu),
        "friday" | "fri" => Some(Weekday::Fri),
        "saturday" | "sat" => Some(Weekday::Sat),
        "sunday" | "sun" => Some(Weekday::Sun),
        _ => None,
    }
}

/// An optional whole number of `key` within `min..=max`, `default` when it
/// is absent; out of range it is reported, naming the key, and `None`.
fn bounded(
    r: &mut Reporter,
    v: Option<&S<u64>>,
    default: u64,
    min: u64,
    max: u64,
    key: &str,
) -> Option<u64> {
    match v {
        None => Some(default),
        Some(v) if (min..=max).contains(v.get_ref()) => Some(*v.get_ref()),
        Some(v) => {
            r.error(
                v.span(),
                format!("{key} = {} is out of range {min}..={max}", v.get_ref()),
            );
            None
        }
    }
}

/// A dialable number as the table must write it: digits, canonical form.
fn check_number(r: &mut Reporter, plan: &NumberingPlan, s: &S<String>) -> Option<Number> {
    let raw = s.get_ref();
    let n = match Number::from_digits(raw) {
        Ok(n) => n,
        Err(e) => {
            r.error(s.span(), format!("bad number `{raw}`: {e}"));
            return None;
        }
    };
    match plan.normalize(raw) {
        Ok(c) if c == n => Some(n),
        Ok(c) => {
            r.error(
                s.span(),
                format!("write number `{raw}` in canonical form `{c}` (callers dialing `{raw}` reach `{c}`)"),
            );
            None
        }
        Err(e) => {
            r.error(s.span(), format!("bad number `{raw}`: {e}"));
            None
        }
    }
}

struct Ctx<'a> {
    units: FxHashSet<&'a str>,
}

impl Ctx<'_> {
    fn check_unit(&self, r: &mut Reporter, unit: &S<String>) {
        if !self.units.contains(unit.get_ref().as_str()) {
            r.error(
                unit.span(),
                format!(
                    "unknown unit `{}`: add it to `units` at the top of the file",
                    unit.get_ref()
                ),
            );
        }
    }
}

/// Per-session source spans, for overlap errors.
struct SessionOrigin {
    span: std::ops::Range<usize>,
}

pub(crate) fn build(raw: &RawConfig, source: &Path, r: &mut Reporter) -> Option<Table> {
    let base_dir = source.parent().unwrap_or(Path::new("."));

    // [gateway]
    let g = raw.gateway.get_ref();
    let country = g.country_code.get_ref().trim();
    if country.is_empty() || country.len() > 3 || !country.bytes().all(|b| b.is_ascii_digit()) {
        r.error(
            g.country_code.span(),
            format!("bad country_code `{country}`: 1 to 3 digits, without `+`"),
        );
    }
    let area = g.area_code.get_ref().trim();
    let area_digits = area.strip_prefix('0').unwrap_or("");
    if area_digits.is_empty() || !area_digits.bytes().all(|b| b.is_ascii_digit()) {
        r.error(
            g.area_code.span(),
            format!("bad area_code `{area}`: digits with the trunk prefix, e.g. `0735`"),
        );
    }
    let plan = NumberingPlan {
        country_code: country.to_string(),
        area_code: area_digits.to_string(),
    };
    let tz: chrono_tz::Tz = match g.timezone.get_ref().parse() {
        Ok(tz) => tz,
        Err(_) => {
            r.error(
                g.timezone.span(),
                format!(
                    "unknown timezone `{}`: use an IANA name such as `Asia/Shanghai`",
                    g.timezone.get_ref()
                ),
            );
            chrono_tz::Asia::Shanghai
        }
    };

    // units
    let mut ctx = Ctx {
        units: FxHashSet::default(),
    };
    for u in &raw.units {
        if u.get_ref().trim().is_empty() {
            r.error(u.span(), "empty unit name");
        } else if !ctx.units.insert(u.get_ref().as_str()) {
            r.error(u.span(), format!("duplicate unit `{}`", u.get_ref()));
        }
    }

    // [metrics], [media]
    let metrics_listen = match &raw.metrics {
        None => DEFAULT_METRICS_LISTEN.parse().ok(),
        Some(m) => match m.get_ref().listen.get_ref().parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                let l = &m.get_ref().listen;
                r.error(
                    l.span(),
                    format!(
                        "bad metrics listen address `{}`: expected IP:PORT",
                        l.get_ref()
                    ),
                );
                None
            }
        },
    };
    let sip = build_sip(raw.sip.as_ref().map(|s| s.get_ref()), r);
    let media = build_media(raw.media.as_ref().map(|m| m.get_ref()), base_dir, r);
    let prompts_dir = match &raw.media {
        Some(m) => base_dir.join(m.get_ref().prompts_dir.get_ref()),
        None => base_dir.join("prompts"),
    };

    // [[trunks]]
    let mut trunks: Vec<Trunk> = Vec::new();
    let mut trunk_ids: FxHashMap<&str, u32> = FxHashMap::default();
    for t in &raw.trunks {
        let t = t.get_ref();
        let role = match t.role.get_ref().as_str() {
            "carrier" => Some(TrunkRole::Carrier),
            "sub_centre" => Some(TrunkRole::SubCentre),
            "emergency" => Some(TrunkRole::Emergency),
            other => {
                r.error(
                    t.role.span(),
                    format!("unknown trunk role `{other}`: one of carrier, sub_centre, emergency"),
                );
                None
            }
        };
        let level = match &t.level {
            None => None,
            Some(l) => match l.get_ref().as_str() {
                "city" => Some(Level::City),
                "provincial" => Some(Level::Provincial),
                other => {
                    r.error(
                        l.span(),
                        format!("unknown level `{other}`: city or provincial"),
                    );
                    None
                }
            },
        };
        if role == Some(TrunkRole::SubCentre) && t.level.is_none() {
            r.error(
                t.role.span(),
                format!(
                    "sub_centre trunk `{}` needs a level (city or provincial)",
                    t.id.get_ref()
                ),
            );
        }
        if role.is_some() && role != Some(TrunkRole::SubCentre) && t.level.is_some() {
            r.error(
                t.level.as_ref().map_or(t.role.span(), |l| l.span()),
                "level applies to sub_centre trunks only",
            );
        }
        let uri = t.uri.get_ref().trim();
        let lower = uri.to_ascii_lowercase();
        if !(lower.starts_with("sip:") || lower.starts_with("sips:")) || uri.len() <= 5 {
            r.error(
                t.uri.span(),
                format!("bad trunk uri `{uri}`: expected a SIP URI such as `sip:127.0.0.1:5080`"),
            );
        }
        if trunk_ids
            .insert(t.id.get_ref(), trunks.len() as u32)
            .is_some()
        {
            r.error(
                t.id.span(),
                format!("duplicate trunk id `{}`", t.id.get_ref()),
            );
        }
        let target = crate::sip::message::SipUriView::parse(uri)
            .and_then(|v| Some(SocketAddr::new(v.ip()?, v.port.unwrap_or(5060))));
        let mut sources = Vec::new();
        for src in &t.sources {
            match src.get_ref().parse::<IpAddr>() {
                Ok(ip) => sources.push(ip),
                Err(_) => r.error(
                    src.span(),
                    format!(
                        "bad trunk source `{}`: expected an IP address",
                        src.get_ref()
                    ),
                ),
            }
        }
        if sources.is_empty() {
            match target {
                Some(a) => sources.push(a.ip()),
                None if role == Some(TrunkRole::Carrier) => r.error(
                    t.uri.span(),
                    format!(
                        "carrier trunk `{}` names a host, not an IP address: list the addresses it sends from in `sources`",
                        t.id.get_ref()
                    ),
                ),
                None => {}
            }
        }
        trunks.push(Trunk {
            id: t.id.get_ref().clone(),
            name: t.name.clone().unwrap_or_else(|| t.id.get_ref().clone()),
            uri: uri.to_string(),
            role: role.unwrap_or(TrunkRole::Carrier),
            level,
            target,
            sources,
            alternates: Vec::new(),
            probe: t.probe.unwrap_or(true),
            tcp_only: match t.transport.as_ref().map(|v| v.get_ref().as_str()) {
                None | Some("any") => None,
                Some("tcp") => Some(true),
                Some("udp") => Some(false),
                Some(other) => {
                    r.error(
                        t.transport.as_ref().map_or(0..0, |v| v.span()),
                        format!("unknown trunk transport `{other}`: any, udp or tcp"),
                    );
                    None
                }
            },
            source_ports: t
                .source_ports
                .iter()
                .filter_map(|p| match u16::try_from(*p.get_ref()) {
                    Ok(port) if port > 0 => Some(port),
                    _ => {
                        r.error(
                            p.span(),
                            format!("bad source port {}: 1 to 65535", p.get_ref()),
                        );
                        None
                    }
                })
                .collect(),
        });
    }
    // Alternates, once every trunk id is known: same role, not itself.
    for (i, t) in raw.trunks.iter().enumerate() {
        let t = t.get_ref();
        for alt in &t.alternates {
            let id = alt.get_ref();
            match trunk_ids.get(id.as_str()) {
                None => r.error(alt.span(), format!("unknown alternate trunk `{id}`")),
                Some(&j) if j as usize == i => r.error(
                    alt.span(),
                    format!("trunk `{id}` cannot be its own alternate"),
                ),
                Some(&j) if trunks[j as usize].role != trunks[i].role => r.error(
                    alt.span(),
                    format!(
                        "alternate `{id}` has role `{}` and `{}` has role `{}`: alternates share the role",
                        trunks[j as usize].role.as_str(),
                        t.id.get_ref(),
                        trunks[i].role.as_str()
                    ),
                ),
                Some(_) if trunks[i].alternates.contains(id) => {
                    r.error(alt.span(), format!("alternate `{id}` listed twice"))
                }
                Some(_) => trunks[i].alternates.push(id.clone()),
            }
        }
    }
    if !trunks.iter().any(|t| t.role == TrunkRole::Carrier) && !raw.trunks.is_empty() {
        r.warn(
            raw.trunks[0].span(),
            "no carrier trunk: no calls will be accepted",
        );
    }
    let lookup_trunk = |r: &mut Reporter, id: &S<String>, role: TrunkRole| -> Option<u32> {
        match trunk_ids.get(id.get_ref().as_str()) {
            None => {
                r.error(id.span(), format!("unknown trunk `{}`", id.get_ref()));
                None
            }
            Some(&i) if trunks[i as usize].role != role => {
                r.error(
                    id.span(),
                    format!(
                        "trunk `{}` has role `{}`, not `{}`",
                        id.get_ref(),
                        trunks[i as usize].role.as_str(),
                        role.as_str()
                    ),
                );
                None
            }
            Some(&i) => Some(i),
        }
    };

    // [[queues]]
    let mut queues: Vec<Queue> = Vec::new();
    let mut queue_ids: FxHashMap<&str, u32> = FxHashMap::default();
    for q in &raw.queues {
        let q = q.get_ref();
        if queue_ids
            .insert(q.id.get_ref(), queues.len() as u32)
            .is_some()
        {
            r.error(
                q.id.span(),
                format!("duplicate queue id `{}`", q.id.get_ref()),
            );
        }
        if q.skill.get_ref().trim().is_empty() {
            r.error(q.skill.span(), "empty skill");
        }
        queues.push(build_queue(q, r));
    }
    let lookup_queue = |r: &mut Reporter, id: &S<String>| -> Option<u32> {
        let found = queue_ids.get(id.get_ref().as_str()).copied();
        if found.is_none() {
            r.error(id.span(), format!("unknown queue `{}`", id.get_ref()));
        }
        found
    };
    // Overflow targets, once every queue id is known. A cycle among queues
    // (a → b → a) is allowed: the ACD guards a caller against going round.
    for (i, q) in raw.queues.iter().enumerate() {
        let q = q.get_ref();
        let target = |r: &mut Reporter, v: &Option<S<String>>, key: &str| {
            queue_overflow(r, v.as_ref(), key, i as u32, lookup_queue)
        };
        queues[i].join_empty = target(r, &q.join_empty, "join_empty");
        queues[i].overflow = target(r, &q.overflow, "overflow");
        queues[i].exit_action = target(r, &q.exit_action, "exit_action");
    }

    // [[emergency]]
    let mut emergency: Vec<EmergencyLine> = Vec::new();
    let mut emergency_index: FxHashMap<u64, u32> = FxHashMap::default();
    let emergency_trunks: Vec<u32> = (0..trunks.len() as u32)
        .filter(|&i| trunks[i as usize].role == TrunkRole::Emergency)
        .collect();
    for e in &raw.emergency {
        let e = e.get_ref();
        let number = check_number(r, &plan, &e.number);
        if let Some(u) = &e.unit {
            ctx.check_unit(r, u);
        }
        let trunk = match &e.trunk {
            Some(t) => lookup_trunk(r, t, TrunkRole::Emergency),
            None if emergency_trunks.len() == 1 => Some(emergency_trunks[0]),
            None => {
                r.error(
                    e.number.span(),
                    format!(
                        "emergency number `{}` needs `trunk`: there are {} emergency trunks",
                        e.number.get_ref(),
                        emergency_trunks.len()
                    ),
                );
                None
            }
        };
        if let Some(n) = number
            && emergency_index
                .insert(n.key(), emergency.len() as u32)
                .is_some()
        {
            r.error(e.number.span(), format!("duplicate emergency number `{n}`"));
        }
        emergency.push(EmergencyLine {
            number: e.number.get_ref().clone(),
            name: e.name.clone(),
            unit: e.unit.as_ref().map(|u| u.get_ref().clone()),
            trunk: trunk.unwrap_or(0),
        });
    }
    // A safety net, not routing data: a table that forgets one of the
    // national emergency numbers would turn those calls away (or, listed as
    // a line, queue them). The table still says where they go.
    for n in NATIONAL_EMERGENCY_NUMBERS {
        let key = Number::from_digits(n).map(|x| x.key()).unwrap_or(0);
        if !emergency_index.contains_key(&key) {
            r.error(
                raw.gateway.span(),
                format!("emergency number `{n}` is missing: list 110, 119, 120 and 122 under [[emergency]]"),
            );
        }
    }

    // [[lines]], first pass: numbers and modes.
    let mut lines: Vec<Line> = Vec::new();
    let mut line_index: FxHashMap<u64, u32> = FxHashMap::default();
    let mut main_line: Option<u32> = None;
    for (i, l) in raw.lines.iter().enumerate() {
        let l = l.get_ref();
        let number = check_number(r, &plan, &l.number);
        if let Some(n) = number {
            if emergency_index.contains_key(&n.key()) {
                r.error(l.number.span(), format!(
                    "emergency number `{n}` given to a line: emergency numbers are never queued; list them under [[emergency]] only"));
            } else if line_index.insert(n.key(), i as u32).is_some() {
                r.error(l.number.span(), format!("duplicate number `{n}`"));
            }
        }
        let mode = match l.mode.get_ref().as_str() {
            "main" => Mode::Main,
            "whole_merge" => Mode::WholeMerge,
            "dual_number" => Mode::DualNumber,
            "sub_centre" => Mode::SubCentre,
            other => {
                r.error(
                    l.mode.span(),
                    format!(
                        "unknown mode `{other}`: one of main, whole_merge, dual_number, sub_centre"
                    ),
                );
                Mode::WholeMerge
            }
        };
        if mode == Mode::Main {
            if main_line.is_some() {
                r.error(
                    l.mode.span(),
                    "a second main line: exactly one line has mode = \"main\"",
                );
            } else {
                main_line = Some(i as u32);
            }
        }
        if let Some(u) = &l.unit {
            ctx.check_unit(r, u);
        }
        if let Some(a) = &l.announcement {
            let name = a.get_ref();
            let valid_name = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !valid_name {
                r.error(
                    a.span(),
                    format!("bad announcement `{name}`: a prompt name such as `merged_into_12345`"),
                );
            } else if !prompts_dir.join(format!("{name}.wav")).is_file() {
                r.error(
                    a.span(),
                    format!(
                        "announcement `{name}`: no file {}",
                        prompts_dir.join(format!("{name}.wav")).display()
                    ),
                );
            }
        }
        lines.push(Line {
            number: l.number.get_ref().clone(),
            name: l.name.clone(),
            unit: l.unit.as_ref().map(|u| u.get_ref().clone()),
            mode,
            remark: l.remark.clone(),
            routes_as: l.routes_as.as_ref().map(|x| x.get_ref().clone()),
            resolved: Resolved::Line(i as u32),
            announcement: l.announcement.as_ref().map(|a| a.get_ref().clone()),
            queue: None,
            skill: l.skill.as_ref().map(|s| s.get_ref().clone()),
            expert_seat: l.expert_seat.as_ref().is_some_and(|e| *e.get_ref()),
            expert_seats: Vec::new(),
            level: None,
            trunk: None,
            sessions: Vec::new(),
        });
    }
    if main_line.is_none() {
        r.error(
            raw.gateway.span(),
            "no main line: one [[lines]] entry needs mode = \"main\" (the 12345 line)",
        );
    }

    // Second pass: mode-specific keys.
    for (i, l) in raw.lines.iter().enumerate() {
        let l = l.get_ref();
        let mode = lines[i].mode;
        let routed = l.routes_as.is_some();
        let misplaced = |r: &mut Reporter, span: std::ops::Range<usize>, key: &str, modes: &str| {
            r.error(span, format!("`{key}` applies to {modes} lines only"));
        };
        match (&l.queue, mode) {
            (Some(q), Mode::Main | Mode::WholeMerge | Mode::DualNumber) => {
                lines[i].queue = lookup_queue(r, q)
            }
            (Some(q), _) => misplaced(r, q.span(), "queue", "main, whole_merge and dual_number"),
            (None, Mode::Main) => r.error(l.mode.span(), "the main line needs `queue`"),
            (None, _) => {}
        }
        match (&l.skill, mode) {
            (Some(s), Mode::DualNumber) if s.get_ref().trim().is_empty() => {
                r.error(s.span(), "empty skill")
            }
            (Some(_), Mode::DualNumber) => {}
            (Some(s), _) => misplaced(r, s.span(), "skill", "dual_number"),
            (None, Mode::DualNumber) if !routed => {
                r.error(
                    l.mode.span(),
                    format!(
                        "dual_number line `{}` needs `skill` (which seats answer it)",
                        l.number.get_ref()
                    ),
                );
            }
            (None, _) => {}
        }
        if let Some(e) = &l.expert_seat
            && mode != Mode::DualNumber
        {
            misplaced(r, e.span(), "expert_seat", "dual_number");
        }
        match (&l.level, mode) {
            (Some(lv), Mode::SubCentre) => {
                let level = match lv.get_ref().as_str() {
                    "city" => Some(Level::City),
                    "provincial" => Some(Level::Provincial),
                    other => {
                        r.error(
                            lv.span(),
                            format!("unknown level `{other}`: city or provincial"),
                        );
                        None
                    }
                };
                lines[i].level = level;
                lines[i].trunk = match (&l.trunk, level) {
                    (Some(t), _) => {
                        let t = lookup_trunk(r, t, TrunkRole::SubCentre);
                        if let (Some(ti), Some(level)) = (t, level)
                            && trunks[ti as usize].level != Some(level)
                        {
                            r.error(
                                l.trunk.as_ref().map_or(lv.span(), |t| t.span()),
                                format!(
                                    "trunk `{}` is not a {} sub-centre trunk",
                                    trunks[ti as usize].id,
                                    level.as_str()
                                ),
                            );
                        }
                        t
                    }
                    (None, Some(level)) => {
                        let found: Vec<u32> = (0..trunks.len() as u32)
                            .filter(|&t| {
                                trunks[t as usize].role == TrunkRole::SubCentre
                                    && trunks[t as usize].level == Some(level)
                            })
                            .collect();
                        if found.len() != 1 {
                            r.error(lv.span(), format!(
                                "{} sub-centre line `{}` needs `trunk`: there are {} {} sub-centre trunks",
                                level.as_str(), l.number.get_ref(), found.len(), level.as_str()));
                        }
                        found.first().copied()
                    }
                    (None, None) => None,
                };
            }
            (Some(lv), _) => misplaced(r, lv.span(), "level", "sub_centre"),
            (None, Mode::SubCentre) if !routed => {
                r.error(
                    l.mode.span(),
                    format!(
                        "sub_centre line `{}` needs `level` (city or provincial)",
                        l.number.get_ref()
                    ),
                );
            }
            (None, _) => {}
        }
        if let Some(t) = &l.trunk
            && mode != Mode::SubCentre
        {
            misplaced(r, t.span(), "trunk", "sub_centre");
        }
    }
    // Whole-merge lines without their own queue fold into the main line's;
    // dual-number lines wait with its settings and widen to its seats.
    let main_queue = main_line.and_then(|m| lines[m as usize].queue);
    for l in lines.iter_mut() {
        if matches!(l.mode, Mode::WholeMerge | Mode::DualNumber) && l.queue.is_none() {
            l.queue = main_queue;
        }
    }

    // "routes as" chains: every target known, no cycles.
    for (i, l) in raw.lines.iter().enumerate() {
        let Some(target) = &l.get_ref().routes_as else {
            continue;
        };
        let mut seen = BTreeSet::from([i]);
        let mut at = target;
        let resolved = loop {
            let key = Number::from_digits(at.get_ref())
                .map(|n| n.key())
                .unwrap_or(0);
            if let Some(&e) = emergency_index.get(&key) {
                break Some(Resolved::Emergency(e));
            }
            let Some(&j) = line_index.get(&key) else {
                if at.span() == target.span() {
                    r.error(
                        target.span(),
                        format!(
                            "routes_as `{}`: no such line or emergency number",
                            target.get_ref()
                        ),
                    );
                }
                break None;
            };
            let j = j as usize;
            if !seen.insert(j) {
                if j == i {
                    r.error(
                        target.span(),
                        format!(
                            "routes_as cycle: `{}` routes as `{}`, which leads back to `{}`",
                            l.get_ref().number.get_ref(),
                            target.get_ref(),
                            l.get_ref().number.get_ref()
                        ),
                    );
                }
                break None;
            }
            match &raw.lines[j].get_ref().routes_as {
                Some(next) => at = next,
                None => break Some(Resolved::Line(j as u32)),
            }
        };
        if let Some(res) = resolved {
            lines[i].resolved = res;
        }
    }

    // [[seats]]
    let mut seats: Vec<Seat> = Vec::new();
    let mut seat_ids: FxHashSet<&str> = FxHashSet::default();
    for s in &raw.seats {
        let s = s.get_ref();
        if s.id.get_ref().trim().is_empty() {
            r.error(s.id.span(), "empty seat id");
        } else if !seat_ids.insert(s.id.get_ref()) {
            r.error(
                s.id.span(),
                format!("duplicate seat id `{}`", s.id.get_ref()),
            );
        }
        for sk in &s.skills {
            if sk.get_ref().trim().is_empty() {
                r.error(sk.span(), "empty skill");
            }
        }
        for e in &s.expert_for {
            let key = Number::from_digits(e.get_ref())
                .map(|n| n.key())
                .unwrap_or(0);
            match line_index.get(&key) {
                None => r.error(
                    e.span(),
                    format!(
                        "seat `{}` is expert for unknown line `{}`",
                        s.id.get_ref(),
                        e.get_ref()
                    ),
                ),
                Some(&li) => {
                    let line = &mut lines[li as usize];
                    if line.mode != Mode::DualNumber || !line.expert_seat {
                        r.error(e.span(), format!(
                            "seat `{}` is expert for `{}`, which is not a dual_number line with expert_seat = true",
                            s.id.get_ref(), e.get_ref()));
                    } else {
                        line.expert_seats.push(s.id.get_ref().clone());
                    }
                }
            }
        }
        seats.push(Seat {
            id: s.id.get_ref().clone(),
            name: s.name.clone().unwrap_or_else(|| s.id.get_ref().clone()),
            skills: s.skills.iter().map(|x| x.get_ref().clone()).collect(),
            expert_for: s.expert_for.iter().map(|x| x.get_ref().clone()).collect(),
            password: s.password.as_ref().map(|p| p.get_ref().clone()),
            digest_algorithms: digest_list(
                s.digest_algorithms.as_deref(),
                &format!("seat `{}`", s.id.get_ref()),
                r,
            )
            .ok()
            .flatten(),
        });
        if let Some(p) = &s.password
            && p.get_ref().len() < 8
        {
            r.error(
                p.span(),
                format!(
                    "seat `{}` password is shorter than 8 characters",
                    s.id.get_ref()
                ),
            );
        } else if let Some(p) = &s.password {
            if crate::config::is_demo_password(p.get_ref()) {
                r.warn(
                    p.span(),
                    format!(
                        "seat `{}` has a demo password: change it before going live (serve refuses it on a non-loopback address)",
                        s.id.get_ref()
                    ),
                );
            } else if p.get_ref().chars().count() < 12 {
                r.warn(
                    p.span(),
                    format!(
                        "seat `{}` password is shorter than 12 characters: easy to guess",
                        s.id.get_ref()
                    ),
                );
            }
        }
    }
    let has_skill = |skill: &str| seats.iter().any(|s| s.skills.iter().any(|k| k == skill));
    for (i, l) in lines.iter().enumerate() {
        let span = raw.lines[i].get_ref().number.span();
        if l.expert_seat && l.expert_seats.is_empty() {
            r.warn(
                span.clone(),
                format!(
                    "line `{}` has expert_seat = true but no seat lists it in expert_for",
                    l.number
                ),
            );
        }
        if let Some(skill) = &l.skill
            && !has_skill(skill)
        {
            r.warn(
                span,
                format!("no seat has skill `{skill}` of line `{}`", l.number),
            );
        }
    }
    for (i, q) in queues.iter().enumerate() {
        if !has_skill(&q.skill) {
            r.warn(
                raw.queues[i].get_ref().skill.span(),
                format!("no seat has skill `{}` of queue `{}`", q.skill, q.id),
            );
        }
    }

    let acd = build_acd(
        raw.acd.as_ref().map(|a| a.get_ref()),
        base_dir,
        &plan,
        |n: &Number| line_index.contains_key(&n.key()) || emergency_index.contains_key(&n.key()),
        &seats,
        r,
    );

    let api_tokens = build_api(raw.api.as_ref().map(|a| a.get_ref()), &raw.units, r);
    let records_jsonl = raw
        .records
        .as_ref()
        .and_then(|x| x.get_ref().jsonl.as_ref())
        .map(|v| {
            let path = base_dir.join(v.get_ref());
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => std::path::PathBuf::from("."),
            };
            if v.get_ref().trim().is_empty() || path.is_dir() {
                r.error(v.span(), "records jsonl: name a file, or leave it out");
            } else if !dir.is_dir() {
                r.error(
                    v.span(),
                    format!(
                        "records jsonl `{}`: no directory {}",
                        path.display(),
                        dir.display()
                    ),
                );
            }
            path
        });

    let tickets = build_tickets(
        raw.tickets.as_ref().map(|t| t.get_ref()),
        base_dir,
        &raw.units
            .iter()
            .map(|u| u.get_ref().clone())
            .collect::<Vec<_>>(),
        r,
    );

    // [calendar]
    let c = raw.calendar.get_ref();
    let weekend: Vec<Weekday> = match &c.weekend {
        None => vec![Weekday::Sat, Weekday::Sun],
        Some(days) => days
            .iter()
            .filter_map(|d| {
                let w = parse_weekday(d.get_ref());
                if w.is_none() {
                    r.error(d.span(), format!("unknown weekday `{}`", d.get_ref()));
                }
                w
            })
            .collect(),
    };
    // With no working day, recurring sessions cannot be placed: report the
    // cause once rather than every session it would collide.
    let no_working_day = weekend
        .iter()
        .map(|d| d.num_days_from_monday())
        .collect::<BTreeSet<_>>()
        .len()
        >= 7;
    if no_working_day {
        let span = c
            .weekend
            .as_ref()
            .and_then(|w| w.first())
            .map_or(raw.calendar.span(), |d| d.span());
        r.error(span, "a weekend of all seven days leaves no working day");
    }
    let mut years = BTreeSet::new();
    for y in &c.years {
        match i32::try_from(*y.get_ref()) {
            Ok(v) if (1900..=2200).contains(&v) => {
                if !years.insert(v) {
                    r.error(y.span(), format!("duplicate year {v}"));
                }
            }
            _ => r.error(y.span(), format!("bad year {}", y.get_ref())),
        }
    }
    let mut day_sets: [BTreeMap<NaiveDate, std::ops::Range<usize>>; 2] =
        [BTreeMap::new(), BTreeMap::new()];
    for (k, list) in [&c.holidays, &c.workdays].into_iter().enumerate() {
        for entry in list {
            let dates = &entry.get_ref().dates;
            let label = &entry.get_ref().name;
            let text = dates.get_ref();
            // A single date is parsed (and, if bad, reported) once.
            let (a, b) = match text.split_once("..") {
                Some((a, b)) => (
                    parse_date(r, &S::new(dates.span(), a.to_string()), "date"),
                    parse_date(r, &S::new(dates.span(), b.to_string()), "date"),
                ),
                None => {
                    let d = parse_date(r, dates, "date");
                    (d, d)
                }
            };
            let (Some(a), Some(b)) = (a, b) else { continue };
            if b < a {
                r.error(
                    dates.span(),
                    format!("date range `{text}` ends before it starts"),
                );
                continue;
            }
            for d in a.iter_days().take_while(|d| *d <= b) {
                if !years.contains(&d.year()) {
                    r.error(
                        dates.span(),
                        format!("{d} is in {}, which is not in calendar.years", d.year()),
                    );
                    break;
                }
                if day_sets[k].insert(d, dates.span()).is_some() {
                    r.error(dates.span(), format!("{d} ({label}) is listed twice"));
                }
            }
        }
    }
    for (d, span) in &day_sets[1] {
        if day_sets[0].contains_key(d) {
            r.error(
                span.clone(),
                format!("{d} is both a holiday and a make-up working day"),
            );
        }
        if !weekend.contains(&d.weekday()) {
            r.warn(
                span.clone(),
                format!("make-up working day {d} is not a weekend day"),
            );
        }
    }
    let calendar = WorkCalendar::new(
        tz,
        &weekend,
        day_sets[0].keys().copied(),
        day_sets[1].keys().copied(),
        years.iter().copied(),
    );

    // [callbacks]: the seats that call citizens back, and when.
    let callbacks = {
        let default = RawCallbacks::default();
        let cr = raw.callbacks.as_ref().map_or(&default, |c| c.get_ref());
        let queue = match &cr.queue {
            Some(q) => lookup_queue(r, q),
            None => main_queue,
        };
        let (start, end) = match &cr.calling_hours {
            None => (
                chrono::NaiveTime::from_hms_opt(8, 0, 0).expect("a time"),
                chrono::NaiveTime::from_hms_opt(21, 0, 0).expect("a time"),
            ),
            Some(v) => {
                let parsed = v.get_ref().split_once('-').and_then(|(a, b)| {
                    let t = |s: &str| chrono::NaiveTime::parse_from_str(s.trim(), "%H:%M").ok();
                    Some((t(a)?, t(b)?))
                });
                match parsed {
                    // Equal: round the clock.
                    Some((a, b)) => (a, b),
                    _ => {
                        r.error(
                            v.span(),
                            format!(
                                "calling_hours = \"{}\": HH:MM-HH:MM, e.g. \"08:00-21:00\"",
                                v.get_ref()
                            ),
                        );
                        (chrono::NaiveTime::MIN, chrono::NaiveTime::MIN)
                    }
                }
            }
        };
        let n = |r: &mut Reporter, v: &Option<S<u64>>, default, min, max, key| {
            bounded(r, v.as_ref(), default, min, max, key).unwrap_or(default)
        };
        CallbackSettings {
            // Outbound calls only when the table asks: a table written
            // before callbacks existed makes none.
            enabled: raw.callbacks.is_some() && cr.enabled.as_ref().is_none_or(|e| *e.get_ref()),
            queue,
            start,
            end,
            max_attempts: n(r, &cr.max_attempts, 3, 1, 10, "max_attempts") as u32,
            retry: Duration::from_secs(n(r, &cr.retry_seconds, 1800, 10, 86_400, "retry_seconds")),
            ring: Duration::from_secs(n(r, &cr.ring_seconds, 30, 5, 120, "ring_seconds")),
        }
    };

    // [leader]: dated sessions and recurring rules.
    let mut sessions: Vec<LeaderSession> = Vec::new();
    let mut origins: Vec<SessionOrigin> = Vec::new();
    let mut ticket_due_working_days = 3;
    let mut leader_settings = LeaderSettings {
        choice_timeout: Duration::from_secs(8),
        default_ticket: false,
        message: Duration::from_secs(60),
        message_silence: Duration::from_secs(5),
        end_ticket: true,
    };
    if let Some(leader) = &raw.leader {
        let lr = leader.get_ref();
        let queue = lookup_queue(r, &lr.queue);
        let secs = |r: &mut Reporter, v: &Option<S<u64>>, default, min, max, key| {
            Duration::from_secs(bounded(r, v.as_ref(), default, min, max, key).unwrap_or(default))
        };
        leader_settings.choice_timeout = secs(
            r,
            &lr.choice_timeout_seconds,
            8,
            2,
            60,
            "choice_timeout_seconds",
        );
        leader_settings.message = secs(r, &lr.message_seconds, 60, 0, 300, "message_seconds");
        leader_settings.message_silence = secs(
            r,
            &lr.message_silence_seconds,
            5,
            0,
            60,
            "message_silence_seconds",
        );
        if let Some(c) = &lr.at_session_end {
            match c.get_ref().as_str() {
                "ticket" => {}
                "main_queue" => leader_settings.end_ticket = false,
                other => r.error(
                    c.span(),
                    format!("at_session_end = \"{other}\": ticket or main_queue"),
                ),
            }
        }
        if let Some(c) = &lr.default_choice {
            match c.get_ref().as_str() {
                "wait" => {}
                "ticket" => leader_settings.default_ticket = true,
                other => r.error(
                    c.span(),
                    format!("default_choice = \"{other}\": wait or ticket"),
                ),
            }
        }
        if let Some(n) = &lr.ticket_due_working_days {
            ticket_due_working_days = *n.get_ref();
            if !(1..=MAX_TICKET_DUE_WORKING_DAYS).contains(&ticket_due_working_days) {
                r.error(n.span(), format!(
                    "ticket_due_working_days = {ticket_due_working_days}: 1 to {MAX_TICKET_DUE_WORKING_DAYS}"));
            }
        }
        let default_start = match &lr.start {
            Some(s) => parse_time(r, s, "start time"),
            None => NaiveTime::from_hms_opt(9, 0, 0),
        };
        let default_end = match &lr.end {
            Some(s) => parse_time(r, s, "end time"),
            None => NaiveTime::from_hms_opt(11, 0, 0),
        };
        let main_number = main_line.map(|m| lines[m as usize].number.clone());
        let check_lines = |r: &mut Reporter,
                           list: &[S<String>],
                           span_of_empty: std::ops::Range<usize>|
         -> Vec<String> {
            let mut out = Vec::new();
            if list.is_empty() {
                r.error(
                    span_of_empty,
                    "`lines` is empty: leave it out for the default lines",
                );
            }
            for l in list {
                let n = l.get_ref();
                let key = Number::from_digits(n).map(|x| x.key()).unwrap_or(0);
                if emergency_index.contains_key(&key) {
                    r.error(l.span(), format!("emergency number `{n}` given to a leader-session queue: emergency numbers are never queued"));
                } else if let Some(&li) = line_index.get(&key) {
                    if let Some(via) = &lines[li as usize].routes_as {
                        r.error(
                            l.span(),
                            format!("line `{n}` routes as `{via}`: name `{via}` instead"),
                        );
                    } else {
                        out.push(n.clone());
                    }
                } else {
                    r.error(l.span(), format!("unknown line `{n}`"));
                }
            }
            out
        };
        let default_lines = if lr.lines.is_empty() {
            main_number.into_iter().collect()
        } else {
            check_lines(r, &lr.lines, leader.span())
        };
        let times = |r: &mut Reporter,
                     start: &Option<S<String>>,
                     end: &Option<S<String>>,
                     span: std::ops::Range<usize>| {
            let s = match start {
                Some(s) => parse_time(r, s, "start time"),
                None => default_start,
            };
            let e = match end {
                Some(e) => parse_time(r, e, "end time"),
                None => default_end,
            };
            match (s, e) {
                (Some(s), Some(e)) if s < e => Some((s, e)),
                (Some(s), Some(e)) => {
                    let at = end.as_ref().map_or(span, |e| e.span());
                    r.error(at, format!("session ends ({e}) before it starts ({s})"));
                    None
                }
                _ => None,
            }
        };
        for s in &lr.sessions {
            let sr = s.get_ref();
            let date = parse_date(r, &sr.date, "session date");
            ctx.check_unit(r, &sr.unit);
            let t = times(r, &sr.start, &sr.end, s.span());
            let lines_for = match &sr.lines {
                Some(l) => check_lines(r, l, s.span()),
                None => default_lines.clone(),
            };
            if let (Some(date), Some((start, end)), Some(queue)) = (date, t, queue) {
                if !calendar.covers(date) {
                    r.warn(
                        sr.date.span(),
                        format!(
                            "session on {date}: the calendar does not cover {}",
                            date.year()
                        ),
                    );
                }
                sessions.push(LeaderSession {
                    unit: Some(sr.unit.get_ref().clone()),
                    leader: sr.leader.clone(),
                    title: sr.title.clone(),
                    date,
                    start,
                    end,
                    starts_at: calendar.instant(date, start),
                    ends_at: calendar.instant(date, end),
                    queue,
                    lines: lines_for,
                    rule: None,
                    moved_from: None,
                });
                origins.push(SessionOrigin { span: s.span() });
            }
        }
        for rule in lr.rules.iter().filter(|_| !no_working_day) {
            let rr = rule.get_ref();
            let weekday = parse_weekday(rr.weekday.get_ref());
            if weekday.is_none() {
                r.error(
                    rr.weekday.span(),
                    format!("unknown weekday `{}`", rr.weekday.get_ref()),
                );
            }
            let mut weeks = Vec::new();
            for w in &rr.weeks_of_month {
                match u8::try_from(*w.get_ref()) {
                    Ok(v @ 1..=5) => weeks.push(v),
                    _ => r.error(
                        w.span(),
                        format!("bad week of month {}: 1 to 5", w.get_ref()),
                    ),
                }
            }
            if rr.weeks_of_month.is_empty() {
                r.error(rule.span(), "weeks_of_month is empty");
            }
            let from = parse_date(r, &rr.from, "rule start date");
            let until = parse_date(r, &rr.until, "rule end date");
            #[derive(PartialEq)]
            enum OnHoliday {
                Next,
                Skip,
                Keep,
            }
            let on_holiday = match rr.if_holiday.as_ref().map(|h| (h, h.get_ref().as_str())) {
                None | Some((_, "next_working_day")) => Some(OnHoliday::Next),
                Some((_, "skip")) => Some(OnHoliday::Skip),
                Some((_, "keep")) => Some(OnHoliday::Keep),
                Some((h, other)) => {
                    r.error(
                        h.span(),
                        format!("unknown if_holiday `{other}`: next_working_day, skip or keep"),
                    );
                    None
                }
            };
            if let Some(u) = &rr.unit {
                ctx.check_unit(r, u);
            }
            let t = times(r, &rr.start, &rr.end, rule.span());
            let lines_for = match &rr.lines {
                Some(l) => check_lines(r, l, rule.span()),
                None => default_lines.clone(),
            };
            let (
                Some(weekday),
                Some(from),
                Some(until),
                Some(on_holiday),
                Some((start, end)),
                Some(queue),
            ) = (weekday, from, until, on_holiday, t, queue)
            else {
                continue;
            };
            if until < from {
                r.error(
                    rr.until.span(),
                    format!("rule ends ({until}) before it starts ({from})"),
                );
                continue;
            }
            if let Some(y) = (from.year()..=until.year()).find(|y| !years.contains(y)) {
                r.error(rule.span(), format!(
                    "rule `{}` runs in {y}, which calendar.years does not cover: its holidays are unknown", rr.name));
                continue;
            }
            let mut month = NaiveDate::from_ymd_opt(from.year(), from.month(), 1);
            while let Some(first) = month.filter(|m| *m <= until) {
                for &n in &weeks {
                    let Some(date) = NaiveDate::from_weekday_of_month_opt(
                        first.year(),
                        first.month(),
                        weekday,
                        n,
                    ) else {
                        continue;
                    };
                    if date < from || date > until {
                        continue;
                    }
                    let (held, moved_from) =
                        if calendar.is_working_day(date) || on_holiday == OnHoliday::Keep {
                            (date, None)
                        } else if on_holiday == OnHoliday::Skip {
                            continue;
                        } else {
                            (calendar.next_working_day(date), Some(date))
                        };
                    if !calendar.covers(held) {
                        r.error(rule.span(), format!(
                            "rule `{}`: the session of {date} moves to {held}, in a year calendar.years does not cover",
                            rr.name));
                        continue;
                    }
                    sessions.push(LeaderSession {
                        unit: rr.unit.as_ref().map(|u| u.get_ref().clone()),
                        leader: rr.leader.clone(),
                        title: rr.title.clone(),
                        date: held,
                        start,
                        end,
                        starts_at: calendar.instant(held, start),
                        ends_at: calendar.instant(held, end),
                        queue,
                        lines: lines_for.clone(),
                        rule: Some(rr.name.clone()),
                        moved_from,
                    });
                    origins.push(SessionOrigin { span: rule.span() });
                }
                month = first.checked_add_months(chrono::Months::new(1));
            }
        }
    }

    // Overlaps: one unit's leader cannot be in two sessions, and one line
    // cannot be captured by two sessions at once.
    let mut order: Vec<usize> = (0..sessions.len()).collect();
    order.sort_by_key(|&i| (sessions[i].starts_at, i));
    let mut reported = FxHashSet::default();
    for (pos, &i) in order.iter().enumerate() {
        for &j in &order[pos + 1..] {
            let (a, b) = (&sessions[i], &sessions[j]);
            if b.starts_at >= a.ends_at {
                break;
            }
            let shared_line = a.lines.iter().find(|l| b.lines.contains(l));
            let name = |s: &LeaderSession| {
                s.unit
                    .clone()
                    .or_else(|| s.rule.clone())
                    .unwrap_or_default()
            };
            let what = if a.unit.is_some() && a.unit == b.unit {
                format!("sessions of unit `{}` overlap", name(a))
            } else if let Some(l) = shared_line {
                format!(
                    "sessions of `{}` and `{}` overlap on line `{l}`",
                    name(a),
                    name(b)
                )
            } else {
                continue;
            };
            if reported.insert((i.min(j), i.max(j))) {
                let later = if origins[j].span.start >= origins[i].span.start {
                    j
                } else {
                    i
                };
                r.error(
                    origins[later].span.clone(),
                    format!(
                        "{what}: {} {}–{} and {} {}–{}",
                        a.date,
                        a.start.format("%H:%M"),
                        a.end.format("%H:%M"),
                        b.date,
                        b.start.format("%H:%M"),
                        b.end.format("%H:%M")
                    ),
                );
            }
        }
    }
    for (idx, s) in sessions.iter().enumerate() {
        for n in &s.lines {
            let key = Number::from_digits(n).map(|x| x.key()).unwrap_or(0);
            if let Some(&li) = line_index.get(&key) {
                lines[li as usize].sessions.push((
                    s.starts_at.timestamp(),
                    s.ends_at.timestamp(),
                    idx as u32,
                ));
            }
        }
    }
    for l in lines.iter_mut() {
        l.sessions.sort_unstable();
    }

    // [callers]
    let mut barred_callers = FxHashSet::default();
    if let Some(c) = &raw.callers {
        for b in &c.get_ref().barred {
            match plan.normalize(b.get_ref()) {
                Ok(n) => {
                    barred_callers.insert(n.key());
                }
                Err(e) => r.error(
                    b.span(),
                    format!("bad barred caller `{}`: {e}", b.get_ref()),
                ),
            }
        }
    }

    if !r.errors.is_empty() {
        return None;
    }
    Some(Table {
        source: source.to_path_buf(),
        name: g.name.clone(),
        numbering: plan,
        main_line: main_line?,
        lines,
        emergency,
        trunks,
        queues,
        seats,
        units: raw.units.iter().map(|u| u.get_ref().clone()).collect(),
        sessions,
        calendar,
        ticket_due_working_days,
        leader: leader_settings,
        tickets,
        callbacks,
        metrics_listen: metrics_listen?,
        sip: sip?,
        media: media?,
        acd,
        api_tokens,
        records_jsonl,
        prompts_dir,
        line_index,
        emergency_index,
        barred_callers,
    })
}

/// `[sip]` with its defaults: UDP and TCP on port 5060 of every address,
/// RFC 3261's T1/T2/T4, 20 s per seat, 60 s of ringing in all.
fn build_sip(raw: Option<&RawSip>, r: &mut Reporter) -> Option<SipSettings> {
    let default = RawSip::default();
    let raw = raw.unwrap_or(&default);
    let mut ok = true;
    let mut addr = |v: &Option<S<String>>, default: &str, what: &str| -> Option<SocketAddr> {
        match v {
            None => default.parse().ok(),
            Some(v) if v.get_ref().is_empty() || v.get_ref() == "off" => None,
            Some(v) => match v.get_ref().parse::<SocketAddr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    ok = false;
                    r.error(
                        v.span(),
                        format!(
                            "bad {what} address `{}`: expected IP:PORT or \"off\"",
                            v.get_ref()
                        ),
                    );
                    None
                }
            },
        }
    };
    let listen_udp = addr(&raw.listen_udp, "0.0.0.0:5060", "sip listen_udp");
    let listen_tcp = addr(&raw.listen_tcp, "0.0.0.0:5060", "sip listen_tcp");
    let mut ms = |v: &Option<S<u64>>, default: u64, min: u64, max: u64, what: &str| -> u64 {
        bounded(r, v.as_ref(), default, min, max, what).unwrap_or_else(|| {
            ok = false;
            default
        })
    };
    let t1 = ms(&raw.t1_ms, 500, 10, 10_000, "t1_ms");
    let t2 = ms(&raw.t2_ms, 4_000, 100, 60_000, "t2_ms");
    let t4 = ms(&raw.t4_ms, 5_000, 100, 60_000, "t4_ms");
    let seat_ring = ms(&raw.seat_ring_seconds, 20, 1, 600, "seat_ring_seconds");
    let max_ring = ms(&raw.max_ring_seconds, 60, 1, 3_600, "max_ring_seconds");
    let max_expires = ms(
        &raw.max_register_expires,
        3_600,
        60,
        86_400,
        "max_register_expires",
    );
    let response_timeout = ms(
        &raw.response_timeout_ms,
        2_000,
        100,
        60_000,
        "response_timeout_ms",
    );
    let probe_interval = ms(
        &raw.trunk_probe_interval_seconds,
        10,
        0,
        3_600,
        "trunk_probe_interval_seconds",
    );
    let probe_failures = ms(&raw.trunk_probe_failures, 2, 1, 100, "trunk_probe_failures");
    let emergency_retry_after = ms(
        &raw.emergency_retry_after_seconds,
        0,
        0,
        3_600,
        "emergency_retry_after_seconds",
    );
    let tcp_max_per_source = ms(&raw.tcp_max_per_source, 256, 1, 4_096, "tcp_max_per_source");
    let max_contacts = ms(
        &raw.max_contacts_per_seat,
        10,
        1,
        100,
        "max_contacts_per_seat",
    );
    if response_timeout < 2 * t1 {
        ok = false;
        let span = raw
            .response_timeout_ms
            .as_ref()
            .or(raw.t1_ms.as_ref())
            .map_or(0..0, |v| v.span());
        r.error(
            span,
            format!(
                "response_timeout_ms = {response_timeout} is shorter than two T1 ({}): one lost datagram would skip a live target",
                2 * t1
            ),
        );
    }
    if t2 < t1 {
        ok = false;
        let span = raw
            .t2_ms
            .as_ref()
            .or(raw.t1_ms.as_ref())
            .map_or(0..0, |v| v.span());
        r.error(span, "t2_ms must not be shorter than t1_ms");
    }
    let advertise = match &raw.advertise {
        None => None,
        Some(v) => match v.get_ref().parse::<IpAddr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                ok = false;
                r.error(
                    v.span(),
                    format!(
                        "bad sip advertise `{}`: expected an IP address",
                        v.get_ref()
                    ),
                );
                None
            }
        },
    };
    // MD5 alone by default: many phones (baresip, SIPp, older handsets)
    // refuse a 401 that carries an algorithm they do not know, whatever
    // its place; a seat may require SHA-256 with its own list.
    let digest_algorithms = match digest_list(raw.digest_algorithms.as_deref(), "[sip]", r) {
        Ok(list) => list.unwrap_or_else(|| vec![crate::sip::digest::Algorithm::Md5]),
        Err(()) => {
            ok = false;
            Vec::new()
        }
    };
    let realm = raw
        .realm
        .as_ref()
        .map_or_else(|| "hotline".to_string(), |v| v.get_ref().clone());
    ok.then_some(SipSettings {
        listen_udp,
        listen_tcp,
        advertise,
        realm,
        digest_algorithms,
        t1: Duration::from_millis(t1),
        t2: Duration::from_millis(t2),
        t4: Duration::from_millis(t4),
        seat_ring: Duration::from_secs(seat_ring),
        max_ring: Duration::from_secs(max_ring),
        max_register_expires: max_expires as u32,
        response_timeout: Duration::from_millis(response_timeout),
        allow_demo_passwords: raw.allow_demo_passwords.unwrap_or(false),
        max_contacts_per_seat: max_contacts as usize,
        tcp_max_per_source: tcp_max_per_source as usize,
        emergency_retry_after: emergency_retry_after as u32,
        probe_interval: (probe_interval > 0).then(|| Duration::from_secs(probe_interval)),
        probe_failures: probe_failures as u32,
    })
}

/// A `digest_algorithms` list (of `[sip]` or a seat): `None` when not
/// given; an error (reported) for an unknown, repeated or empty list.
fn digest_list(
    raw: Option<&[S<String>]>,
    whose: &str,
    r: &mut Reporter,
) -> Result<Option<Vec<crate::sip::digest::Algorithm>>, ()> {
    let Some(raw) = raw else { return Ok(None) };
    let mut ok = true;
    let mut list = Vec::new();
    for a in raw {
        let alg = match a.get_ref().to_ascii_uppercase().as_str() {
            "SHA-256" => crate::sip::digest::Algorithm::Sha256,
            "MD5" => crate::sip::digest::Algorithm::Md5,
            _ => {
                ok = false;
                r.error(
                    a.span(),
                    format!("unknown digest algorithm `{}`: SHA-256 or MD5", a.get_ref()),
                );
                continue;
            }
        };
        if list.contains(&alg) {
            ok = false;
            r.error(
                a.span(),
                format!("digest algorithm `{}` listed twice", a.get_ref()),
            );
        }
        list.push(alg);
    }
    if raw.is_empty() {
        ok = false;
        r.error(
            0..0,
            format!("{whose} digest_algorithms must name at least one algorithm"),
        );
    }
    if ok { Ok(Some(list)) } else { Err(()) }
}

/// `[media]`: RTP ports 20000-29999 (5,000 legs), 30 s media time-out.
fn build_media(raw: Option<&RawMedia>, base_dir: &Path, r: &mut Reporter) -> Option<MediaSettings> {
    let mut ok = true;
    let recordings = match raw.and_then(|m| m.recordings_dir.as_ref()) {
        None => None,
        Some(d) => {
            let dir = base_dir.join(d.get_ref());
            if !dir.is_dir() {
                ok = false;
                r.error(
                    d.span(),
                    format!("recordings_dir `{}` is not a directory", dir.display()),
                );
            }
            let all_calls = match raw.and_then(|m| m.record.as_ref()) {
                None => false,
                Some(v) if v.get_ref() == "leader_sessions" => false,
                Some(v) if v.get_ref() == "all" => true,
                Some(v) => {
                    ok = false;
                    r.error(
                        v.span(),
                        format!("unknown record `{}`: leader_sessions or all", v.get_ref()),
                    );
                    false
                }
            };
            Some(crate::routing::table::Recordings {
                dir,
                all_calls,
                name: raw
                    .and_then(|m| m.recording_name.clone())
                    .unwrap_or_else(|| crate::media::recorder::DEFAULT_TEMPLATE.to_string()),
            })
        }
    };
    let rtp_ports = match raw.and_then(|m| m.rtp_ports.as_ref()) {
        None => (20_000, 30_000),
        Some(v) => {
            let parsed = v.get_ref().split_once('-').and_then(|(a, b)| {
                Some((a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?))
            });
            match parsed {
                Some((a, b)) if a >= 1024 && a < b => (a, b.saturating_add(1)),
                _ => {
                    ok = false;
                    r.error(
                        v.span(),
                        format!("bad rtp_ports `{}`: expected FIRST-LAST, e.g. \"20000-29999\", from 1024 up", v.get_ref()),
                    );
                    (0, 0)
                }
            }
        }
    };
    let rtp_address = match raw.and_then(|m| m.rtp_address.as_ref()) {
        None => None,
        Some(v) => match v.get_ref().parse::<IpAddr>() {
            // Our SDP names this address: 0.0.0.0 would mean "on hold".
            Ok(ip) if !ip.is_unspecified() => Some(ip),
            _ => {
                ok = false;
                r.error(
                    v.span(),
                    format!(
                        "bad rtp_address `{}`: expected the IP peers reach us at (not 0.0.0.0)",
                        v.get_ref()
                    ),
                );
                None
            }
        },
    };
    let timeout = raw.and_then(|m| m.media_timeout_seconds.as_ref());
    let media_timeout = Duration::from_secs(
        bounded(r, timeout, 30, 1, 3600, "media_timeout_seconds").unwrap_or_else(|| {
            ok = false;
            30
        }),
    );
    ok.then_some(MediaSettings {
        recordings,
        anchor: raw.and_then(|m| m.anchor).unwrap_or(true),
        rtp_ports,
        rtp_address,
        media_timeout,
    })
}

/// One `[[queues]]` entry with its defaults (the README's table). Its
/// overflow targets are left `Busy` here and resolved by [`queue_overflow`]
/// once every queue id is known.
fn build_queue(q: &RawQueue, r: &mut Reporter) -> Queue {
    let mut secs = |v: &Option<S<u64>>, default: u64, min: u64, max: u64, key: &str| {
        Duration::from_secs(bounded(r, v.as_ref(), default, min, max, key).unwrap_or(default))
    };
    let ring = secs(&q.ring_seconds, 20, 1, 300, "ring_seconds");
    let wrap_up = secs(&q.wrap_up_seconds, 10, 0, 3_600, "wrap_up_seconds");
    let service_level = secs(
        &q.service_level_seconds,
        20,
        1,
        3_600,
        "service_level_seconds",
    );
    let expert_wait = secs(&q.expert_wait_seconds, 10, 0, 3_600, "expert_wait_seconds");
    let widen_after = secs(&q.widen_after_seconds, 30, 0, 3_600, "widen_after_seconds");
    let default_handle = secs(
        &q.default_handle_seconds,
        180,
        10,
        7_200,
        "default_handle_seconds",
    );
    let short_abandon = secs(&q.short_abandon_seconds, 5, 0, 600, "short_abandon_seconds");
    // Fewer than 10 s would not let the welcome prompt end before the
    // first wait announcement.
    let max_wait = q.max_wait_seconds.as_ref().map(|v| {
        Duration::from_secs(bounded(r, Some(v), 0, 10, 86_400, "max_wait_seconds").unwrap_or(0))
    });
    let max_callers = q
        .max_callers
        .as_ref()
        .map(|v| bounded(r, Some(v), 1, 1, 100_000, "max_callers").unwrap_or(1) as usize);
    let max_missed_offers = bounded(
        r,
        q.max_missed_offers.as_ref(),
        3,
        0,
        100,
        "max_missed_offers",
    )
    .unwrap_or(3) as u32;
    let announce_every = match &q.announce_seconds {
        None => Some(Duration::from_secs(45)),
        Some(v) if *v.get_ref() == 0 => None,
        Some(v) if (10..=3_600).contains(v.get_ref()) => Some(Duration::from_secs(*v.get_ref())),
        Some(v) => {
            r.error(
                v.span(),
                format!(
                    "announce_seconds = {}: 0 (never) or 10 to 3600; more often, the announcements would leave no hold music between them",
                    v.get_ref()
                ),
            );
            None
        }
    };
    if widen_after < expert_wait {
        let at = q
            .widen_after_seconds
            .as_ref()
            .or(q.expert_wait_seconds.as_ref());
        r.error(
            at.map_or(q.id.span(), |v| v.span()),
            format!(
                "widen_after_seconds = {} is shorter than expert_wait_seconds = {}: general seats would be offered a dual-number caller before the line's skilled seats",
                widen_after.as_secs(),
                expert_wait.as_secs()
            ),
        );
    }
    let strategy = match &q.strategy {
        None => QueueStrategy::LongestIdle,
        Some(v) => QueueStrategy::ALL
            .into_iter()
            .find(|s| s.as_str() == v.get_ref())
            .unwrap_or_else(|| {
                let names: Vec<&str> = QueueStrategy::ALL.iter().map(|s| s.as_str()).collect();
                r.error(
                    v.span(),
                    format!(
                        "unknown strategy `{}`: one of {}",
                        v.get_ref(),
                        names.join(", ")
                    ),
                );
                QueueStrategy::LongestIdle
            }),
    };
    let exit_key = q.exit_key.as_ref().and_then(|k| {
        let mut keys = k.get_ref().chars();
        match (keys.next(), keys.next()) {
            (Some(c @ ('0'..='9' | '*' | '#')), None) => Some(c),
            _ => {
                r.error(
                    k.span(),
                    format!("bad exit_key `{}`: one key, 0-9, * or #", k.get_ref()),
                );
                None
            }
        }
    });
    let callback_offer_after = q.callback_offer_after_seconds.as_ref().map(|v| {
        Duration::from_secs(
            bounded(r, Some(v), 0, 0, 86_400, "callback_offer_after_seconds").unwrap_or(0),
        )
    });
    if let (Some(v), Some('*')) = (&q.callback_offer_after_seconds, exit_key) {
        r.error(
            v.span(),
            "callback_offer_after_seconds with exit_key = \"*\": * takes the callback offered; give exit_key another key",
        );
    }
    if let Some(a) = &q.exit_action
        && q.exit_key.is_none()
    {
        r.error(
            a.span(),
            "exit_action without exit_key: set exit_key, the key a waiting caller presses to leave the queue",
        );
    }
    Queue {
        id: q.id.get_ref().clone(),
        name: q.name.clone().unwrap_or_else(|| q.id.get_ref().clone()),
        skill: q.skill.get_ref().clone(),
        strategy,
        ring,
        wrap_up,
        announce_every,
        service_level,
        max_callers,
        max_wait,
        callback_offer_after,
        join_empty: QueueOverflow::Busy,
        overflow: QueueOverflow::Busy,
        exit_key,
        exit_action: QueueOverflow::Busy,
        expert_wait,
        widen_after,
        default_handle,
        max_missed_offers,
        short_abandon,
    }
}

/// `join_empty`, `overflow` or `exit_action` of the queue at index `own`:
/// `"busy"` (the default) or `"queue:<id>"` of another queue.
fn queue_overflow(
    r: &mut Reporter,
    v: Option<&S<String>>,
    key: &str,
    own: u32,
    lookup_queue: impl Fn(&mut Reporter, &S<String>) -> Option<u32>,
) -> QueueOverflow {
    let Some(v) = v else {
        return QueueOverflow::Busy;
    };
    let text = v.get_ref().as_str();
    if text == "busy" {
        return QueueOverflow::Busy;
    }
    if text == "callback" {
        return QueueOverflow::Callback;
    }
    let Some(id) = text.strip_prefix("queue:") else {
        r.error(
            v.span(),
            format!("unknown {key} `{text}`: busy, callback or queue:<id> (another queue)"),
        );
        return QueueOverflow::Busy;
    };
    match lookup_queue(r, &S::new(v.span(), id.trim().to_string())) {
        Some(q) if q == own => {
            r.error(
                v.span(),
                format!("{key} = \"{text}\" names the queue itself: use busy or another queue"),
            );
            QueueOverflow::Busy
        }
        Some(q) => QueueOverflow::Queue(q),
        None => QueueOverflow::Busy,
    }
}

/// `[tickets]`: the store, `sqlite:tickets.db` beside the table by default
/// (its folder must exist; the file is made), or a PostgreSQL URL; the
/// folder callers' requests are written to (`requests`, made at start).
fn build_tickets(
    raw: Option<&RawTickets>,
    base_dir: &Path,
    known_units: &[String],
    r: &mut Reporter,
) -> TicketSettings {
    let default = RawTickets::default();
    let raw = raw.unwrap_or(&default);
    let store = match &raw.store {
        None => format!("sqlite:{}", base_dir.join("tickets.db").display()),
        Some(v) => {
            let spec = v.get_ref();
            if let Some(path) = spec.strip_prefix("sqlite:") {
                let file = base_dir.join(path);
                let dir = file.parent().filter(|d| !d.as_os_str().is_empty());
                if path.trim().is_empty() || file.is_dir() {
                    r.error(
                        v.span(),
                        format!("store `{spec}`: name a file after sqlite:"),
                    );
                } else if dir.is_some_and(|d| !d.is_dir()) && path.contains('/') {
                    // A folder named in the store's path must exist (the
                    // table's own is checked by the file being there).
                    r.error(
                        v.span(),
                        format!(
                            "store `{spec}`: no directory {}",
                            dir.map(|d| d.display().to_string()).unwrap_or_default()
                        ),
                    );
                }
                format!("sqlite:{}", file.display())
            } else if spec.starts_with("postgres://") || spec.starts_with("postgresql://") {
                spec.clone()
            } else {
                r.error(
                    v.span(),
                    format!(
                        "store `{}`: sqlite:PATH or postgres://…",
                        crate::tickets::postgres::redact(spec)
                    ),
                );
                spec.clone()
            }
        }
    };
    let requests_dir = match &raw.requests_dir {
        None => base_dir.join("requests"),
        Some(v) => {
            let dir = base_dir.join(v.get_ref());
            if v.get_ref().trim().is_empty() || (dir.exists() && !dir.is_dir()) {
                r.error(
                    v.span(),
                    format!("requests_dir `{}` is not a directory", dir.display()),
                );
            }
            dir
        }
    };
    let secs = |r: &mut Reporter, v: &Option<S<u64>>, default, min, max, key| {
        bounded(r, v.as_ref(), default, min, max, key).unwrap_or(default)
    };
    let dispatch_retry = Duration::from_secs(secs(
        r,
        &raw.dispatch_retry_seconds,
        10,
        1,
        3_600,
        "dispatch_retry_seconds",
    ));
    let dispatch_max_attempts = secs(
        r,
        &raw.dispatch_max_attempts,
        8,
        1,
        50,
        "dispatch_max_attempts",
    ) as u32;
    let mut units: Vec<TicketUnit> = Vec::new();
    for u in &raw.units {
        let ur = u.get_ref();
        let name = ur.unit.get_ref();
        if !known_units.contains(name) {
            r.error(
                ur.unit.span(),
                format!("unknown unit `{name}`: name one of `units`"),
            );
        }
        if units.iter().any(|x| x.unit == *name) {
            r.error(ur.unit.span(), format!("unit `{name}` is given twice"));
        }
        let url = ur.webhook_url.as_ref().map(|v| {
            let url = v.get_ref();
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                r.error(
                    v.span(),
                    format!("webhook_url `{url}`: an http:// or https:// URL"),
                );
            }
            url.clone()
        });
        let secret = ur.webhook_secret.as_ref().and_then(|v| {
            use base64::Engine as _;
            let key = v
                .get_ref()
                .strip_prefix("whsec_")
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok());
            match key {
                Some(k) if k.len() >= 24 => Some(k),
                _ => {
                    // The value itself is never repeated: it is a secret.
                    r.error(
                        v.span(),
                        "webhook_secret: `whsec_` and the base64 of a key of 24 bytes or more",
                    );
                    None
                }
            }
        });
        match (&url, &ur.webhook_secret) {
            (Some(_), None) => r.error(
                u.span(),
                format!(
                    "unit `{name}` has a webhook_url but no webhook_secret: deliveries are signed"
                ),
            ),
            (None, Some(v)) => r.error(v.span(), "webhook_secret without a webhook_url"),
            _ => {}
        }
        let token = ur.api_token.as_ref().map(|v| {
            if v.get_ref().len() < 16 {
                r.error(v.span(), "api_token: 16 characters or more");
            }
            v.get_ref().clone()
        });
        if let Some(t) = &token
            && units.iter().any(|x| x.api_token.as_ref() == Some(t))
        {
            r.error(
                u.span(),
                "api_token given to two units: each unit has its own",
            );
        }
        units.push(TicketUnit {
            unit: name.clone(),
            webhook_url: url,
            webhook_secret: secret,
            api_token: token,
        });
    }
    TicketSettings {
        store,
        requests_dir,
        dispatch_retry,
        dispatch_max_attempts,
        units,
    }
}

/// `[[api.tokens]]`: each a name, a role (`viewer`, `supervisor`,
/// `unit:<name>` of a configured unit) and its token, as `token_sha256`
/// (hex, for production) or `token` (plain, for demos: warned). Only the
/// digest is kept; a token's value is never repeated in a message.
fn build_api(
    raw: Option<&crate::config::schema::RawApi>,
    units: &[S<String>],
    r: &mut Reporter,
) -> Vec<crate::routing::table::ApiToken> {
    use crate::routing::table::{ApiRole, ApiToken};
    use sha2::Digest as _;
    let mut out: Vec<ApiToken> = Vec::new();
    let Some(raw) = raw else { return out };
    for t in &raw.tokens {
        let tr = t.get_ref();
        let name = tr.name.get_ref().trim().to_string();
        if name.is_empty() {
            r.error(tr.name.span(), "empty token name: name who holds it");
        } else if out.iter().any(|o| o.name == name) {
            r.error(
                tr.name.span(),
                format!("token name `{name}` is given twice"),
            );
        }
        let role_text = tr.role.get_ref().as_str();
        let role = match role_text {
            "viewer" => Some(ApiRole::Viewer),
            "supervisor" => Some(ApiRole::Supervisor),
            other => match other.strip_prefix("unit:") {
                Some(u) if units.iter().any(|x| x.get_ref() == u) => {
                    Some(ApiRole::Unit(u.to_string()))
                }
                Some(u) => {
                    r.error(
                        tr.role.span(),
                        format!("role `unit:{u}`: no unit `{u}` in `units`"),
                    );
                    None
                }
                None => {
                    r.error(
                        tr.role.span(),
                        format!("unknown role `{other}`: one of viewer, supervisor, unit:<name>"),
                    );
                    None
                }
            },
        };
        let digest: Option<[u8; 32]> = match (&tr.token_sha256, &tr.token) {
            (Some(_), Some(v)) => {
                r.error(
                    v.span(),
                    "token and token_sha256 both given: keep token_sha256",
                );
                None
            }
            (None, None) => {
                r.error(
                    t.span(),
                    format!("token `{name}` has neither token_sha256 nor token"),
                );
                None
            }
            (Some(v), None) => {
                let hex = v.get_ref().trim();
                let bytes: Option<Vec<u8>> = (hex.len() == 64
                    && hex.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| {
                    (0..32)
                        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
                        .collect()
                })
                .flatten();
                match bytes.and_then(|b| <[u8; 32]>::try_from(b).ok()) {
                    Some(d) => Some(d),
                    None => {
                        r.error(
                            v.span(),
                            "token_sha256: 64 hex digits (`printf %s TOKEN | sha256sum`)",
                        );
                        None
                    }
                }
            }
            (None, Some(v)) => {
                if v.get_ref().len() < 16 {
                    r.error(v.span(), "token: 16 characters or more");
                    None
                } else {
                    r.warn(
                        v.span(),
                        format!(
                            "token `{name}` is written in plain: give its token_sha256 instead (`printf %s TOKEN | sha256sum`)"
                        ),
                    );
                    Some(sha2::Sha256::digest(v.get_ref().as_bytes()).into())
                }
            }
        };
        if let Some(d) = &digest
            && out.iter().any(|o| o.sha256 == *d)
        {
            r.error(
                t.span(),
                "the same token given twice: each holder has its own",
            );
        }
        if let (Some(role), Some(sha256)) = (role, digest) {
            let plain = tr.token.is_some();
            out.push(ApiToken {
                name,
                role,
                sha256,
                plain,
            });
        }
    }
    out
}

/// `[acd]`: the queue event log (off by default) and the feature codes a
/// seat dials to pause (`*51`) and resume (`*50`). A code must not be a
/// number the table routes, or dialling that number would pause the seat.
fn build_acd(
    raw: Option<&RawAcd>,
    base_dir: &Path,
    plan: &NumberingPlan,
    routed: impl Fn(&Number) -> bool,
    seats: &[Seat],
    r: &mut Reporter,
) -> AcdSettings {
    let default = RawAcd::default();
    let raw = raw.unwrap_or(&default);
    let mut code = |v: &Option<S<String>>, default: &str, key: &str| -> String {
        let Some(v) = v else {
            return default.to_string();
        };
        let c = v.get_ref();
        let keys = c
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#');
        if !(2..=8).contains(&c.len()) || !keys {
            r.error(
                v.span(),
                format!("bad {key} `{c}`: 2 to 8 keys of 0-9, * and #, e.g. \"*51\""),
            );
        } else if let Ok(n) = plan.normalize(c)
            && routed(&n)
        {
            r.error(
                v.span(),
                format!("{key} `{c}` is a number the table routes ({n}): a seat dialling it must reach it"),
            );
        } else if seats.iter().any(|s| s.id == *c) {
            r.error(
                v.span(),
                format!("{key} `{c}` is seat `{c}`: a seat dialling it must reach that seat"),
            );
        }
        c.clone()
    };
    let pause_code = code(&raw.pause_code, "*51", "pause_code");
    let resume_code = code(&raw.resume_code, "*50", "resume_code");
    if pause_code == resume_code {
        let at = raw.resume_code.as_ref().or(raw.pause_code.as_ref());
        r.error(
            at.map_or(0..0, |v| v.span()),
            format!("pause_code and resume_code are both `{pause_code}`: they must differ"),
        );
    }
    let queue_log = raw.queue_log.as_ref().map(|v| {
        let path = base_dir.join(v.get_ref());
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        if v.get_ref().trim().is_empty() {
            r.error(
                v.span(),
                "empty queue_log: leave it out to keep the log off",
            );
        } else if path.is_dir() {
            r.error(
                v.span(),
                format!("queue_log `{}` is a directory: name a file", path.display()),
            );
        } else if !dir.is_dir() {
            r.error(
                v.span(),
                format!(
                    "queue_log `{}`: no directory {}",
                    path.display(),
                    dir.display()
                ),
            );
        }
        path
    });
    AcdSettings {
        queue_log,
        pause_code,
        resume_code,
    }
}
