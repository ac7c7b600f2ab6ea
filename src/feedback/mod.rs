//! What comes back (SPEC "What comes back: bounces and complaints"): the
//! bounces (DSNs, RFC 3464 and RFC 6533, and the common non-standard ones),
//! the complaints (ARF, RFC 5965) and the automatic replies that reach the
//! relay, whatever door they came in by.
//!
//! - [`report`] reads a received message into a typed [`report::Report`]
//!   and finds the returned original's header, where the relay's own
//!   header names the person when the report blanks the recipient.
//! - [`classify`] says what a report means for each person it is about
//!   (hard or soft bounce, no change, complaint, recorded, ignored).
//!
//! - [`intake`] is the one entry of the three doors (SMTP, `consent-relay
//!   feedback`, the API): read, store, find whom it is about, apply. The
//!   rules themselves (suppressions, soft days, withdrawals, the
//!   reputation guard) run in the store's transaction
//!   (`store::ops::feedback`), so a report is applied exactly once.
//! - [`door`] is what every door says about a report it took (its log
//!   line); [`pending`] is serve's loop over reports stored but not applied.
//!
//! `report` and `classify` are pure (values in, values out; the layers
//! test holds them to it). The doors call in and are not known here.

pub mod classify;
pub mod door;
pub mod intake;
pub mod pending;
pub mod report;

#[cfg(test)]
mod tests;

pub use classify::{BounceOutcome, DEFAULT_HARD, Verdict, classify};
pub use report::{Kind, Report, StatusCode, read};
