//! The call machine driven directly: synthetic messages, synthetic time.
use super::*;
