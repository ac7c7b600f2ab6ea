//! The SMTP side: the listener with its limits ([`server`]), one session's
//! state machine on `smtp-proto` ([`session`]), the DATA reader that
//! undoes dot-stuffing and refuses bare CR/LF ([`data`]), reply texts
//! ([`reply`]), the listener's certificate, reloadable ([`tls`]), and the
//! AUTH failure counters shared by all sessions ([`limiter`]).
//!
//! Knows nothing of MIME rewriting or delivery: a finished message goes to
//! [`crate::intake`].

pub mod data;
pub mod limiter;
pub mod reply;
pub mod server;
pub mod session;
pub mod tls;

pub use server::{SmtpServer, bind};
