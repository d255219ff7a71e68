//! `routing.toml`: parsing, validation and the shared, reloadable table.
//!
//! Loading is all-or-nothing: a table with any error is refused whole, with
//! every error located (file, line, column, reason), and whatever table was
//! running stays in force ([`reload`]).

mod error;
mod recover;
pub mod reload;
mod schema;
mod validate;

pub use error::{ConfigError, Diagnostic, Severity};
pub use reload::SharedTable;
pub use validate::DEFAULT_METRICS_LISTEN;

use crate::routing::Table;
use error::Reporter;
use schema::RawConfig;
use std::path::Path;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// A table that passed validation, with the warnings it raised.
#[derive(Debug)]
pub struct Loaded {
    pub table: Table,
    pub warnings: Vec<Diagnostic>,
}

/// Reads and validates a routing table file.
/// A password of the shipped demo kind (`demo-8001-change-me`): fine on
/// loopback, never on a network.
pub fn is_demo_password(password: &str) -> bool {
    let p = password.to_ascii_lowercase();
    p.starts_with("demo") || p.contains("change-me") || p.contains("changeme")
}

/// Seats whose password is a demo one, when SIP would listen beyond
/// loopback and the table does not allow it: `serve` refuses to start.
pub fn demo_passwords_exposed(
    table: &crate::routing::Table,
    listen: &[std::net::SocketAddr],
) -> Vec<String> {
    if table.sip.allow_demo_passwords || listen.iter().all(|a| a.ip().is_loopback()) {
        return Vec::new();
    }
    table
        .seats
        .iter()
        .filter(|s| s.password.as_deref().is_some_and(is_demo_password))
        .map(|s| s.id.clone())
        .collect()
}

pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let (_, text) = read(path)?;
    parse(&text, path)
}

/// Reads a table file: its bytes and its text, which must be UTF-8.
pub fn read(path: &Path) -> Result<(Vec<u8>, String), ConfigError> {
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let text = decode(path, bytes.clone())?;
    Ok((bytes, text))
}

/// A table file's bytes as text: UTF-8 or refused (a GBK-saved file would
/// otherwise load with its Chinese names garbled).
pub fn decode(path: &Path, bytes: Vec<u8>) -> Result<String, ConfigError> {
    String::from_utf8(bytes).map_err(|e| ConfigError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "not UTF-8 (byte {}): save the file as UTF-8",
                e.utf8_error().valid_up_to()
            ),
        ),
    })
}

/// Validates table text; `path` names the file in errors and anchors
/// relative paths (the prompts directory).
pub fn parse(text: &str, path: &Path) -> Result<Loaded, ConfigError> {
    let mut r = Reporter::new(path, text);
    let (root, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        for e in syntax {
            r.error(e.span().unwrap_or(0..0), e.message().to_string());
        }
        return Err(r.into_error());
    }
    let read = recover::read(text, root.clone(), true);
    for (span, name) in &read.unknown {
        r.error(span.clone(), format!("unknown key `{name}`"));
    }
    for (span, message) in &read.errors {
        r.error(span.clone(), message.clone());
    }
    let Some(raw) = read.raw else {
        return Err(r.into_error());
    };
    if read.replaced.is_empty() {
        return match validate::build(&raw, path, &mut r) {
            Some(table) => {
                let warnings = r.finish()?;
                Ok(Loaded { table, warnings })
            }
            None => Err(r.into_error()),
        };
    }
    // Values of the wrong type were replaced by stand-ins: the table is
    // refused, and the rest of it is validated so every error shows at
    // once. What a replaced value itself yields is left unsaid, and so is
    // what differs between a boolean stand-in read as true and as false
    // (`expert_seat = 3` must not also make seat 8101, the expert for that
    // line, an error).
    let validated = |raw: &RawConfig| {
        let mut v = Reporter::new(path, text);
        v.quiet(read.replaced.clone());
        validate::build(raw, path, &mut v);
        (v.errors, v.warnings)
    };
    let (errors, warnings) = validated(&raw);
    let (other_errors, other_warnings) = recover::read(text, root, false)
        .raw
        .as_ref()
        .map(validated)
        .unwrap_or_default();
    r.errors
        .extend(errors.into_iter().filter(|d| other_errors.contains(d)));
    r.warnings
        .extend(warnings.into_iter().filter(|d| other_warnings.contains(d)));
    Err(r.into_error())
}

#[derive(Debug)]
enum Segment {
    Key(String),
    Index(usize),
}

/// serde_ignored's path, root first, without the wrappers `Spanned` adds.
fn collect_path(p: &serde_ignored::Path<'_>, out: &mut Vec<Segment>) {
    use serde_ignored::Path as P;
    match p {
        P::Root => {}
        P::Seq { parent, index } => {
            collect_path(parent, out);
            out.push(Segment::Index(*index));
        }
        P::Map { parent, key } => {
            collect_path(parent, out);
            if !key.starts_with("$__serde_spanned_private") {
                out.push(Segment::Key(key.clone()));
            }
        }
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
            collect_path(parent, out)
        }
    }
}

/// Finds the span of the key a path names, and its dotted name.
fn locate_key(root: &Spanned<DeTable<'_>>, segs: &[Segment]) -> (std::ops::Range<usize>, String) {
    let mut name = String::new();
    let mut span = root.span();
    let mut value: Option<&DeValue<'_>> = None;
    let mut table: Option<&DeTable<'_>> = Some(root.get_ref());
    for seg in segs {
        match seg {
            Segment::Key(k) => {
                if !name.is_empty() {
                    name.push('.');
                }
                name.push_str(k);
                let found = table.and_then(|t| t.iter().find(|(key, _)| key.get_ref() == k));
                match found {
                    Some((key, v)) => {
                        span = key.span();
                        value = Some(v.get_ref());
                    }
                    None => value = None,
                }
            }
            Segment::Index(i) => {
                name.push_str(&format!("[{i}]"));
                let item = match value {
                    Some(DeValue::Array(a)) => a.get(*i),
                    _ => None,
                };
                if let Some(item) = item {
                    span = item.span();
                }
                value = item.map(|v| v.get_ref());
            }
        }
        table = match value {
            Some(DeValue::Table(t)) => Some(t),
            _ => None,
        };
    }
    (span, name)
}
