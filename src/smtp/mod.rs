//! The SMTP side: the listener with its limits ([`server`]), one session's
//! state machine on `smtp-proto` with one file per verb ([`session`]), the
//! DATA reader that undoes dot-stuffing and refuses bare CR/LF ([`data`]),
//! what becomes of a finished message: campaign, decisions, one commit
//! ([`intake`]), reply texts ([`reply`]), the listener's certificate,
//! reloadable ([`tls`]), and the AUTH failure counters shared by all
//! sessions ([`limiter`]).
//!
//! Knows nothing of MIME rewriting or delivery: the intake stores the
//! message and wakes delivery.

pub mod data;
pub mod intake;
pub mod limiter;
pub mod reply;
pub mod server;
pub mod session;
pub mod tls;

pub use server::{SmtpServer, bind};
