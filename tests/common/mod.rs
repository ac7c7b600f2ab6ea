//! Helpers shared by the end-to-end tests: `tests/e2e` and
//! `tests/process_wide` include them with
//! `#[path = "../common/mod.rs"] mod common;`. They own test fixtures only
//! (a fake upstream SMTP server, ...), never product code.

// Some of these helpers are used by no test.
#![allow(dead_code)]

pub mod admin;
pub mod backend;
pub mod ca;
pub mod relay;
pub mod sink;
