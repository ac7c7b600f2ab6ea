//! The SMTP side: the listener with its limits ([`server`]), one session's
//! state machine on `smtp-proto` ([`session`]), the DATA reader that
//! undoes dot-stuffing and refuses bare CR/LF ([`data`]), reply texts
//! ([`reply`]), and the listener's certificate ([`tls`]).
//!
//! Knows nothing of MIME rewriting or delivery: a finished message goes to
//! [`crate::intake`].

pub mod data;
pub mod reply;
pub mod server;
pub mod session;
pub mod tls;

pub use server::{SmtpServer, bind};
