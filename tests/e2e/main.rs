//! The end-to-end tests: one test binary, one module per area, so the crate
//! is linked into one test executable instead of one per file. Run one area
//! with `cargo test --test e2e smtp::` (the filter matches any part of a
//! test's path, e.g. `smtp::tls::`, `web::`, `::pg` for the PostgreSQL
//! halves).
//!
//! Every module shares the process: none may install process-wide state
//! (a global tracing subscriber, the metrics recorder, environment
//! variables, the current directory) or bind a fixed port. The tests that
//! must own such state live in `tests/process_wide/`. The real binary runs
//! as a child process where a test signals it or reads its output.

#[path = "../common/mod.rs"]
mod common;

mod api;
mod audit;
mod binary;
mod bounces;
mod console;
mod copies;
mod decisions;
mod delivery;
mod erasure;
mod expiring;
mod feedback;
mod guard;
mod identity;
mod import;
mod migrate;
mod nodes;
mod retention;
mod rights;
mod smtp;
mod web;
mod webhooks;
