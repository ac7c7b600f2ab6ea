//! The `[smtp]` keys that bound slow clients and password guessing
//! (issue 6): the TLS handshake timeout, the minimum DATA rate and the AUTH
//! failure limits.

use std::time::Duration;

use super::RawSmtp;
use crate::config::{Check, NONZERO};

/// `smtp.tls_handshake_timeout`.
pub const DEFAULT_TLS_HANDSHAKE_TIMEOUT: &str = "10s";
/// `smtp.min_data_rate`, octets per second.
pub const DEFAULT_MIN_DATA_RATE: u64 = 1024;
/// `smtp.auth_max_failures_per_ip`.
pub const DEFAULT_AUTH_MAX_FAILURES_PER_IP: usize = 10;
/// `smtp.auth_max_failures_per_user`.
pub const DEFAULT_AUTH_MAX_FAILURES_PER_USER: usize = 5;
/// `smtp.auth_failure_window`.
pub const DEFAULT_AUTH_FAILURE_WINDOW: &str = "15m";

/// `[smtp]` keys that bound slow clients and password guessing.
#[derive(Debug, Clone)]
pub struct SmtpGuard {
    /// A TLS handshake (STARTTLS or implicit TLS) must finish within this (default 10s).
    pub tls_handshake_timeout: Duration,
    /// Octets per second a DATA transfer must keep up, on average (default 1024).
    pub min_data_rate: u64,
    /// Failed AUTH attempts from one IP address within `auth_failure_window`
    /// before that address is refused (default 10).
    pub auth_max_failures_per_ip: usize,
    /// Failed AUTH attempts for one user from one client address within
    /// the window before the user is locked from that address, even with
    /// the right password (default 5).
    pub auth_max_failures_per_user: usize,
    /// How far back failures count (default 15m).
    pub auth_failure_window: Duration,
}

pub(super) fn check(c: &mut Check<'_>, raw: &RawSmtp) -> Option<SmtpGuard> {
    let tls_handshake_timeout = c.duration(
        "smtp.tls_handshake_timeout",
        &raw.tls_handshake_timeout,
        DEFAULT_TLS_HANDSHAKE_TIMEOUT,
        NONZERO,
    );
    let min_data_rate = c.number(
        "smtp.min_data_rate",
        raw.min_data_rate,
        DEFAULT_MIN_DATA_RATE,
        1..,
    );
    let per_ip = c.number(
        "smtp.auth_max_failures_per_ip",
        raw.auth_max_failures_per_ip,
        DEFAULT_AUTH_MAX_FAILURES_PER_IP,
        1..,
    );
    let per_user = c.number(
        "smtp.auth_max_failures_per_user",
        raw.auth_max_failures_per_user,
        DEFAULT_AUTH_MAX_FAILURES_PER_USER,
        1..,
    );
    let window = c.duration(
        "smtp.auth_failure_window",
        &raw.auth_failure_window,
        DEFAULT_AUTH_FAILURE_WINDOW,
        NONZERO,
    );
    Some(SmtpGuard {
        tls_handshake_timeout: tls_handshake_timeout?,
        min_data_rate: min_data_rate?,
        auth_max_failures_per_ip: per_ip?,
        auth_max_failures_per_user: per_user?,
        auth_failure_window: window?,
    })
}
