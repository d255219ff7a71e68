//! Configuration errors that point at the file, line and key, the way a
//! compiler does: an operator fixing `routing.toml` sees every problem at once.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem found in a table, located in its source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: PathBuf,
    /// 1-based line and column (in characters).
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{}:{}:{}: {sev}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

/// Why a table was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", render(.errors))]
    Invalid {
        errors: Vec<Diagnostic>,
        warnings: Vec<Diagnostic>,
    },
}

impl ConfigError {
    /// Every error, in file order (an I/O error has none).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            ConfigError::Io { .. } => &[],
            ConfigError::Invalid { errors, .. } => errors,
        }
    }
}

fn render(errors: &[Diagnostic]) -> String {
    let mut s = format!(
        "{} error{} in routing table",
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    );
    for e in errors {
        s.push('\n');
        s.push_str(&e.to_string());
    }
    s
}

/// Turns byte offsets into line and column, and collects diagnostics.
pub(crate) struct Reporter<'a> {
    file: &'a Path,
    text: &'a str,
    line_starts: Vec<usize>,
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
    /// Spans whose diagnostics are dropped: values already reported.
    quiet: Vec<Range<usize>>,
}

impl<'a> Reporter<'a> {
    pub fn new(file: &'a Path, text: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Reporter {
            file,
            text,
            line_starts,
            errors: Vec::new(),
            warnings: Vec::new(),
            quiet: Vec::new(),
        }
    }

    fn locate(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset);
        let start = self.line_starts[line - 1];
        let column = self
            .text
            .get(start..offset)
            .map_or(1, |s| s.chars().count() + 1);
        (line, column)
    }

    fn diagnostic(&self, severity: Severity, span: Range<usize>, message: String) -> Diagnostic {
        let (line, column) = self.locate(span.start);
        Diagnostic {
            severity,
            file: self.file.to_path_buf(),
            line,
            column,
            message,
        }
    }

    /// Drops from now on what is said about a value within `spans`.
    pub fn quiet(&mut self, spans: Vec<Range<usize>>) {
        self.quiet = spans;
    }

    fn is_quiet(&self, span: &Range<usize>) -> bool {
        self.quiet.iter().any(|q| q.contains(&span.start))
    }

    pub fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        if self.is_quiet(&span) {
            return;
        }
        let d = self.diagnostic(Severity::Error, span, message.into());
        self.errors.push(d);
    }

    pub fn warn(&mut self, span: Range<usize>, message: impl Into<String>) {
        if self.is_quiet(&span) {
            return;
        }
        let d = self.diagnostic(Severity::Warning, span, message.into());
        self.warnings.push(d);
    }

    /// The warnings when there was no error, else the refusal.
    pub fn finish(self) -> Result<Vec<Diagnostic>, ConfigError> {
        if self.errors.is_empty() {
            let mut w = self.warnings;
            w.sort_by_key(|d| (d.line, d.column));
            Ok(w)
        } else {
            Err(self.into_error())
        }
    }

    /// The refusal, errors in file order. Call only after recording an error.
    pub fn into_error(mut self) -> ConfigError {
        let key = |d: &Diagnostic| (d.line, d.column);
        self.errors.sort_by_key(key);
        self.warnings.sort_by_key(key);
        ConfigError::Invalid {
            errors: self.errors,
            warnings: self.warnings,
        }
    }
}
