//! The tests that read process-wide state, kept out of `tests/e2e` so no
//! other test's traffic moves what they count: `GET /metrics` reads the
//! one metrics recorder every relay in the process writes to, and the
//! round-trip count installs the process's tracing subscriber to see every
//! SQL statement sqlx sends. Each test holds [`ALONE`] while it runs, so
//! even these two never overlap.

// This binary uses only a part of the shared helpers.
#[allow(dead_code)]
#[path = "../common/mod.rs"]
mod common;

mod metrics;
mod round_trips;

/// Held by each test of this binary for its whole run (see the module doc).
pub static ALONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
