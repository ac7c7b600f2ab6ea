//! Helpers shared by the end-to-end tests in `tests/`: each test binary
//! includes them with `mod common;`. They own test fixtures only (a fake
//! upstream SMTP server, ...), never product code.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

pub mod admin;
pub mod backend;
pub mod ca;
pub mod relay;
pub mod sink;
