//! The running table, shared by every call, replaced atomically on reload.
//!
//! Readers take a snapshot with [`SharedTable::load`] (lock-free, via
//! `arc-swap`): a call decided on one table finishes on it even if a reload
//! lands meanwhile. A reload that fails validation changes nothing.

use super::{ConfigError, Diagnostic};
use crate::routing::Table;
use arc_swap::ArcSwap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Clone)]
pub struct SharedTable {
    path: PathBuf,
    current: Arc<ArcSwap<Table>>,
}

impl SharedTable {
    /// Loads the table at `path`; fails when it is invalid.
    pub fn open(path: &Path) -> Result<(Self, Vec<Diagnostic>), ConfigError> {
        let (_, text) = super::read(path)?;
        Self::open_text(path, &text)
    }

    /// Like [`open`](Self::open), with the file's text already read.
    pub fn open_text(path: &Path, text: &str) -> Result<(Self, Vec<Diagnostic>), ConfigError> {
        let loaded = super::parse(text, path)?;
        Ok((
            SharedTable {
                path: path.to_path_buf(),
                current: Arc::new(ArcSwap::from_pointee(loaded.table)),
            },
            loaded.warnings,
        ))
    }

    /// Wraps an already-built table (tests, benchmarks).
    pub fn from_table(table: Table) -> Self {
        SharedTable {
            path: table.source.clone(),
            current: Arc::new(ArcSwap::from_pointee(table)),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A snapshot of the running table.
    pub fn load(&self) -> Arc<Table> {
        self.current.load_full()
    }

    /// A cheap guard for the hot path (no reference-count traffic).
    pub fn guard(&self) -> arc_swap::Guard<Arc<Table>> {
        self.current.load()
    }

    /// Re-reads the file; on success swaps the new table in, on error keeps
    /// the running one and returns every error.
    pub fn reload(&self) -> Result<Vec<Diagnostic>, ConfigError> {
        let (_, text) = super::read(&self.path)?;
        self.reload_text(&text)
    }

    /// Like [`reload`](Self::reload), with the file's text already read.
    pub fn reload_text(&self, text: &str) -> Result<Vec<Diagnostic>, ConfigError> {
        self.reload_text_checked(text, |_| None)
    }

    /// Like [`reload_text`](Self::reload_text), and a valid table is still
    /// refused when `refuse` gives a reason (something the running daemon
    /// cannot take, such as demo passwords on a public listener).
    pub fn reload_text_checked(
        &self,
        text: &str,
        refuse: impl FnOnce(&Table) -> Option<String>,
    ) -> Result<Vec<Diagnostic>, ConfigError> {
        let loaded = super::parse(text, &self.path)?;
        if let Some(message) = refuse(&loaded.table) {
            return Err(ConfigError::Invalid {
                errors: vec![Diagnostic {
                    severity: super::Severity::Error,
                    file: self.path.clone(),
                    line: 1,
                    column: 1,
                    message,
                }],
                warnings: loaded.warnings,
            });
        }
        self.current.store(Arc::new(loaded.table));
        Ok(loaded.warnings)
    }

    /// Swaps in a table built elsewhere.
    pub fn replace(&self, table: impl Into<Arc<Table>>) {
        self.current.store(table.into());
    }
}

#[cfg(test)]
mod demo_password_tests {
    use super::*;

    /// A reload that would put demo passwords on a public listener is
    /// refused like an invalid table, and the running table stays.
    #[test]
    fn a_reload_with_demo_passwords_beyond_loopback_is_refused() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("routing.toml");
        let shipped = std::fs::read_to_string(&path).unwrap();
        let allowed = shipped.replace(
            "max_register_expires = 3600",
            "max_register_expires = 3600\nallow_demo_passwords = true",
        );
        let (shared, _) = SharedTable::open_text(&path, &allowed).unwrap();
        let public: Vec<std::net::SocketAddr> = vec!["0.0.0.0:5060".parse().unwrap()];
        let refuse = |t: &Table| {
            let exposed = crate::config::demo_passwords_exposed(t, &public);
            (!exposed.is_empty()).then(|| format!("demo passwords: {}", exposed.join(", ")))
        };
        let e = shared
            .reload_text_checked(&shipped, refuse)
            .expect_err("refused");
        assert!(e.to_string().contains("demo passwords: 8001"), "{e}");
        assert!(
            shared.load().sip.allow_demo_passwords,
            "the running table stays"
        );
        // On loopback the same table is fine.
        let lo: Vec<std::net::SocketAddr> = vec!["127.0.0.1:5060".parse().unwrap()];
        assert!(
            shared
                .reload_text_checked(&shipped, |t| {
                    let exposed = crate::config::demo_passwords_exposed(t, &lo);
                    (!exposed.is_empty()).then(|| "x".to_string())
                })
                .is_ok()
        );
    }
}
