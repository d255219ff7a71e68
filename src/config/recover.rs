//! Reading `routing.toml` into [`RawConfig`] so that every value of the
//! wrong type (`seat_ring_seconds = "x"`, `expert_seat = 3`) is reported in
//! one pass, not one per run.
//!
//! serde stops at the first value it cannot read. So after each such error
//! the table is read again with that value replaced by a stand-in of a type
//! that reads (`12345` as `"12345"`, `"2025"` as `2025`, `3` as a boolean,
//! `"legal"` as `["legal"]`), or left out when none does. Stand-ins let the
//! rest of the table be validated; [`super::parse`] then keeps quiet about
//! the replaced values themselves. A table left without a key it requires
//! cannot be validated, but its type errors and missing keys are still all
//! reported.

use super::schema::RawConfig;
use super::{Segment, collect_path, locate_key};
use std::borrow::Cow;
use std::ops::Range;
use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue};

/// What reading a table found.
pub(super) struct Read {
    /// The table as read, stand-ins included; `None` when a required key
    /// is missing (or had to be left out).
    pub raw: Option<RawConfig>,
    /// Values of the wrong type and missing keys: span and reason.
    pub errors: Vec<(Range<usize>, String)>,
    /// Unknown keys: span and dotted name.
    pub unknown: Vec<(Range<usize>, String)>,
    /// Spans of the values replaced by a stand-in or left out.
    pub replaced: Vec<Range<usize>>,
}

/// Reads `root` (parsed from `text`). `prefer_true` chooses the boolean
/// stand-in tried first; reading twice, once each way, tells which
/// validation errors depend on what a bad boolean was meant to be.
pub(super) fn read<'i>(text: &'i str, mut root: Spanned<DeTable<'i>>, prefer_true: bool) -> Read {
    let mut found = Read {
        raw: None,
        errors: Vec::new(),
        unknown: Vec::new(),
        replaced: Vec::new(),
    };
    // Keys we removed ourselves, with the span of their table: the
    // "missing field" that follows is not news.
    let mut removed: Vec<(Range<usize>, String)> = Vec::new();
    let mut complete = true;
    // Each round replaces or removes a value, so this ends; the bound is a
    // guard only.
    for _ in 0..10_000 {
        let e = match attempt(&root, &mut found.unknown) {
            Ok(raw) => {
                found.raw = complete.then_some(raw);
                return found;
            }
            Err(e) => e,
        };
        let message = e.message().to_string();
        let Some(span) = e.span() else {
            found.errors.push((0..0, message));
            return found;
        };
        let missing = message
            .strip_prefix("missing field `")
            .and_then(|k| k.strip_suffix('`'));
        if !missing.is_some_and(|k| removed.contains(&(span.clone(), k.to_string()))) {
            let date = matches!(find(&root, &span), Some(DeValue::Datetime(_)));
            found.errors.push((
                span.clone(),
                plain(&message, date.then(|| &text[span.clone()])),
            ));
        }
        found.replaced.push(span.clone());
        if missing.is_none()
            && let Some(v) = stand_in(text, &root, &span, prefer_true)
        {
            change(&mut root, &span, Some(v));
            continue;
        }
        if missing.is_some() {
            complete = false;
        }
        match change(&mut root, &span, None) {
            Hit::Done(Some(key)) => removed.push(key),
            Hit::Done(None) => {}
            // The root itself lacks a key, or the span names no value.
            Hit::No | Hit::RemoveMe => return found,
        }
    }
    found
}

/// serde's reason in TOML's words: "a table", not "map"; "a whole number",
/// not "u64"; a bare date (`date = 2023-02-22`) named as one.
fn plain(message: &str, date: Option<&str>) -> String {
    let mut m = message
        .replace(", expected u64", ", expected a whole number, 0 or more")
        .replace(", expected u32", ", expected a whole number, 0 or more")
        .replace(", expected i64", ", expected a whole number")
        .replace("expected a sequence", "expected an array")
        .replace("invalid type: sequence", "invalid type: array")
        .replace("expected struct ", "expected table ");
    match date {
        Some(d) => {
            m = m.replace("invalid type: map", &format!("invalid type: date `{d}`"));
            if m.ends_with("expected a string") {
                m.push_str(&format!(": write it in quotes, \"{d}\""));
            }
        }
        None => m = m.replace("invalid type: map", "invalid type: table"),
    }
    m
}

/// One serde pass, collecting unknown keys (each once).
fn attempt(
    root: &Spanned<DeTable<'_>>,
    unknown: &mut Vec<(Range<usize>, String)>,
) -> Result<RawConfig, toml::de::Error> {
    let mut paths: Vec<Vec<Segment>> = Vec::new();
    let de = toml::Deserializer::from(root.clone());
    let raw = serde_ignored::deserialize(de, |p| {
        let mut segs = Vec::new();
        collect_path(&p, &mut segs);
        paths.push(segs);
    });
    for segs in &paths {
        let key = locate_key(root, segs);
        if !unknown.contains(&key) {
            unknown.push(key);
        }
    }
    raw
}

/// The first stand-in for the value at `span` with which the table reads
/// past it: its source text as a string, a boolean, or either wrapped in
/// an array.
fn stand_in<'i>(
    text: &'i str,
    root: &Spanned<DeTable<'i>>,
    span: &Range<usize>,
    prefer_true: bool,
) -> Option<DeValue<'i>> {
    let value = find(root, span)?;
    let as_text = match value {
        DeValue::String(_) => None,
        _ => text
            .get(span.clone())
            .map(|s| DeValue::String(Cow::Borrowed(s))),
    };
    // `"2025"` as 2025: parsed from the source between the quotes, which
    // is the string itself when it is a plain number.
    let as_number = match value {
        DeValue::String(s) if s.parse::<i64>().is_ok() => text
            .get(span.start + 1..span.end.saturating_sub(1))
            .filter(|inner| inner == s)
            .and_then(|inner| DeValue::parse(inner).ok())
            .map(Spanned::into_inner),
        _ => None,
    };
    let array = |v: DeValue<'i>| {
        let mut a = DeArray::new();
        a.push(Spanned::new(span.clone(), v));
        DeValue::Array(a)
    };
    let mut candidates: Vec<DeValue<'i>> = Vec::new();
    candidates.extend(as_text.clone());
    candidates.extend(as_number);
    if !matches!(value, DeValue::Boolean(_)) {
        candidates.push(DeValue::Boolean(prefer_true));
        candidates.push(DeValue::Boolean(!prefer_true));
    }
    candidates.push(array(value.clone()));
    candidates.extend(as_text.map(array));
    candidates.into_iter().find(|c| {
        let mut trial = root.clone();
        change(&mut trial, span, Some(c.clone()));
        match attempt(&trial, &mut Vec::new()) {
            Ok(_) => true,
            Err(e) => e.span().as_ref() != Some(span),
        }
    })
}

/// The value whose span is exactly `span`.
fn find<'a, 'i>(root: &'a Spanned<DeTable<'i>>, span: &Range<usize>) -> Option<&'a DeValue<'i>> {
    fn in_value<'a, 'i>(
        v: &'a Spanned<DeValue<'i>>,
        span: &Range<usize>,
    ) -> Option<&'a DeValue<'i>> {
        if v.span() == *span {
            return Some(v.get_ref());
        }
        match v.get_ref() {
            DeValue::Table(t) => t.values().find_map(|v| in_value(v, span)),
            DeValue::Array(a) => a.iter().find_map(|v| in_value(v, span)),
            _ => None,
        }
    }
    root.get_ref().values().find_map(|v| in_value(v, span))
}

enum Hit {
    /// No value has that span.
    No,
    /// Changed; for a removal from a table, the table's span and the key.
    Done(Option<(Range<usize>, String)>),
    /// This is the value to remove: its container does it.
    RemoveMe,
}

/// Replaces (`Some`) or removes (`None`) the value whose span is `span`.
fn change<'i>(
    root: &mut Spanned<DeTable<'i>>,
    span: &Range<usize>,
    to: Option<DeValue<'i>>,
) -> Hit {
    let own = root.span();
    in_table(root.get_mut(), own, span, &to)
}

fn in_table<'i>(
    t: &mut DeTable<'i>,
    own: Range<usize>,
    span: &Range<usize>,
    to: &Option<DeValue<'i>>,
) -> Hit {
    let mut remove = None;
    for (k, v) in t.iter_mut() {
        match in_value(v, span, to) {
            Hit::No => continue,
            Hit::RemoveMe => {
                remove = Some(k.get_ref().to_string());
                break;
            }
            done => return done,
        }
    }
    match remove {
        Some(k) => {
            t.remove(k.as_str());
            Hit::Done(Some((own, k)))
        }
        None => Hit::No,
    }
}

fn in_value<'i>(
    v: &mut Spanned<DeValue<'i>>,
    span: &Range<usize>,
    to: &Option<DeValue<'i>>,
) -> Hit {
    let own = v.span();
    if own == *span {
        return match to {
            Some(new) => {
                *v.get_mut() = new.clone();
                Hit::Done(None)
            }
            None => Hit::RemoveMe,
        };
    }
    match v.get_mut() {
        DeValue::Table(t) => in_table(t, own, span, to),
        DeValue::Array(a) => {
            for i in 0..a.len() {
                match in_value(&mut (**a)[i], span, to) {
                    Hit::No => continue,
                    Hit::RemoveMe => {
                        let items = std::mem::replace(a, DeArray::new());
                        *a = items
                            .into_iter()
                            .enumerate()
                            .filter(|&(j, _)| j != i)
                            .map(|(_, v)| v)
                            .collect();
                        return Hit::Done(None);
                    }
                    done => return done,
                }
            }
            Hit::No
        }
        _ => Hit::No,
    }
}
