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
        let loaded = super::parse(text, &self.path)?;
        self.current.store(Arc::new(loaded.table));
        Ok(loaded.warnings)
    }

    /// Swaps in a table built elsewhere.
    pub fn replace(&self, table: impl Into<Arc<Table>>) {
        self.current.store(table.into());
    }
}
