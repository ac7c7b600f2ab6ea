//! Helpers shared by the end-to-end tests: `tests/e2e` includes them with
//! `#[path = "../common/mod.rs"] mod common;` and uses them all;
//! `tests/process_wide` (and `tests/store`, for `backend.rs`) include them
//! the same way. They own test fixtures only (a fake upstream SMTP server,
//! ...), never product code.

pub mod admin;
pub mod backend;
pub mod binary;
pub mod browser;
pub mod ca;
pub mod console;
pub mod postfix;
pub mod relay;
pub mod sink;
