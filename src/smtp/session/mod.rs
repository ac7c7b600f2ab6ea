//! One SMTP session: an explicit state machine over the commands that
//! `smtp-proto` parses. This module owns the session's state ([`Phase`] and
//! the transaction so far) and the dispatch of each command to its verb's
//! handler, one file per verb (`ehlo`, `mail`, `rcpt`, `data`, `starttls`,
//! `auth`, `rset`, `noop`, `quit`, `vrfy`, `help`). Framing is in `framing`,
//! strict: command lines end in CRLF and are at most 512 octets; DATA goes
//! through [`crate::smtp::data::DataReader`]. Replies are buffered and
//! flushed before each read, so pipelined commands get their replies in one
//! write (RFC 2920).
//!
//! A transaction to a report address (any address at `[bounces] domain`,
//! and `[complaints] address`) is a report for the feedback intake, from
//! any client and without AUTH: it has that one recipient, is never
//! relayed, and is at most `[bounces] max_report_size` (see `rcpt`, `data`).
//!
//! STARTTLS (RFC 3207) ends the session with [`Ended::StartTls`], handing
//! the plain stream back: the server does the handshake and runs a fresh
//! session (nothing buffered, state reset) over the TLS stream. AUTH PLAIN
//! and LOGIN (RFC 4954) are offered after TLS only, unless
//! `allow_plain_auth_on_loopback` and the client is on loopback.
//!
//! Does not own what happens to a finished message: that is
//! [`crate::smtp::intake`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use smtp_proto::Request;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

mod auth;
mod data;
mod ehlo;
mod framing;
mod help;
mod mail;
mod noop;
mod quit;
mod rcpt;
mod rset;
mod starttls;
mod vrfy;

use super::intake::Intake;
use super::limiter::AuthLimiter;
use super::reply::{self, Reply};
use crate::config::Config;
use crate::token::Claims;

/// RFC 5321 4.5.3.1.4: a command line is at most 512 octets, CRLF included.
const MAX_COMMAND_LINE: usize = 512;
/// RFC 5321 4.5.3.1.6: a text line is at most 1000 octets, CRLF included.
const MAX_TEXT_LINE: usize = 998;
/// RFC 4954 4: a client's response to a 334 challenge may be 12288 octets.
const MAX_AUTH_LINE: usize = 12288;
/// RFC 5321 4.1.1.4 / RFC 5322 2.1: CR, LF and NUL never appear inside a
/// command line or a parameter.
const CONTROLS: [char; 3] = ['\r', '\n', '\0'];
/// Failed AUTH attempts before the session is closed with 421.
const MAX_AUTH_FAILURES: usize = 3;
/// RCPTs over `max_recipients` in one transaction that are answered 452
/// without counting as errors (RFC 5321 4.5.3.1.10: flow control, the
/// client sends the rest in another transaction). Past this many each one
/// counts, as Postfix's `smtpd_recipient_overshoot_limit` (also 1000), so a
/// client cannot spin on 452s forever.
const RECIPIENT_OVERSHOOT: usize = 1000;
/// Wait before answering a failed AUTH (slows password guessing).
const AUTH_FAILURE_DELAY: Duration = Duration::from_secs(1);

/// Where the session stands.
#[derive(Debug)]
enum Phase {
    /// Greeting sent; EHLO or HELO expected.
    Connected,
    /// Greeted; MAIL expected.
    Greeted,
    /// MAIL accepted; RCPT expected.
    Mail,
    /// At least one RCPT accepted; more RCPT or DATA expected.
    Rcpt,
}

/// Everything a session needs from the server.
pub struct SessionContext {
    pub config: Arc<Config>,
    pub intake: Intake,
    /// Becomes true when the server drains.
    pub shutdown: watch::Receiver<bool>,
    /// Set when `[smtp] tls_cert`/`tls_key` are: STARTTLS is offered.
    pub tls: Option<TlsAcceptor>,
    /// Failed AUTH attempts across sessions, per IP address and per user.
    pub auth_limiter: Arc<AuthLimiter>,
}

impl SessionContext {
    /// The same context with `config` (a session's, from its start on):
    /// its intake decides with it too.
    pub fn with_config(&self, config: Arc<Config>) -> SessionContext {
        SessionContext {
            intake: self.intake.with_config(config.clone()),
            config,
            shutdown: self.shutdown.clone(),
            tls: self.tls.clone(),
            auth_limiter: self.auth_limiter.clone(),
        }
    }
}

/// How the session's stream came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Plain TCP: greeting, STARTTLS offered when configured.
    Plain,
    /// Right after a STARTTLS handshake: no greeting, EHLO again (RFC 3207 4.2).
    AfterStartTls,
    /// The implicit-TLS listener: greeting over TLS.
    ImplicitTls,
}

/// How a session ended.
pub enum Ended<S> {
    Closed,
    /// `220 ready to start TLS` was sent and nothing else was buffered: the
    /// stream goes back to the server for the handshake.
    StartTls(S),
}

struct Session<'a, S> {
    ctx: &'a SessionContext,
    stream: S,
    peer: SocketAddr,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    phase: Phase,
    esmtp: bool,
    helo: String,
    mail_from: String,
    /// MAIL FROM carried SMTPUTF8 (RFC 6531): 8-bit headers and addresses allowed.
    smtputf8: bool,
    rcpt_to: Vec<String>,
    /// `unsubscribe+TOKEN@domain` recipients of this transaction (RFC 2369).
    unsubscribes: Vec<Claims>,
    /// The report address this transaction is to (its only recipient).
    report_to: Option<String>,
    /// RCPTs of this transaction refused with 452 for `max_recipients`.
    overshoot: usize,
    errors: usize,
    /// The client's address is in `allowed_networks`.
    authorized: bool,
    /// The stream is TLS.
    tls: bool,
    /// The `[[smtp.user]]` name, after a successful AUTH.
    auth_user: Option<String>,
    auth_failures: usize,
}

/// Why a read ran out of time: said in the 421.
#[derive(Clone, Copy)]
enum Late {
    /// Nothing (or not a whole command) arrived in time.
    Idle,
    /// DATA arrived slower than `min_data_rate`.
    Slow,
}

/// What the session does after a command.
enum Next {
    Continue,
    Close,
    StartTls,
}

/// Runs a session to its end. `authorized`: the client's address is in
/// `allowed_networks`.
pub async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    ctx: &SessionContext,
    stream: S,
    peer: SocketAddr,
    authorized: bool,
    start: Start,
) -> Ended<S> {
    let mut s = Session {
        ctx,
        stream,
        peer,
        inbuf: Vec::with_capacity(4096),
        out: Vec::with_capacity(1024),
        phase: Phase::Connected,
        esmtp: false,
        helo: String::new(),
        mail_from: String::new(),
        smtputf8: false,
        rcpt_to: Vec::new(),
        unsubscribes: Vec::new(),
        report_to: None,
        overshoot: 0,
        errors: 0,
        authorized,
        tls: start != Start::Plain,
        auth_user: None,
        auth_failures: 0,
    };
    if start != Start::AfterStartTls {
        let host = &ctx.config.smtp.hostname;
        s.reply(Reply::new(220, "", format!("{host} ESMTP consent-relay")));
    }
    match s.serve().await {
        Ok(true) => return Ended::StartTls(s.stream),
        Ok(false) => {}
        Err(e) => {
            tracing::debug!(peer = %peer, cause = %e, "session ended with an I/O error");
        }
    }
    let _ = s.stream.shutdown().await;
    Ended::Closed
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<'_, S> {
    /// One command line (CRLF-terminated, checked by the framing): parsed,
    /// then handled by its verb. Each handler checks the phase itself and
    /// answers a command out of phase with 503.
    async fn command(&mut self, line: &[u8]) -> std::io::Result<Next> {
        let request = match Request::parse(&mut line.iter()) {
            Ok(r) => r,
            Err(e) => return Ok(self.refuse(reply::parse_error(&e))),
        };
        Ok(match request {
            Request::Ehlo { host } => self.handle_ehlo(host.into_owned()),
            Request::Helo { host } => self.handle_helo(host.into_owned()),
            Request::Mail { from } => self.handle_mail_from(from),
            Request::Rcpt { to } => self.handle_rcpt_to(to),
            Request::Data => self.handle_data().await?,
            Request::Rset => self.handle_rset(),
            Request::Noop { .. } => self.handle_noop(),
            Request::Quit => self.handle_quit(),
            Request::Vrfy { .. } => self.handle_vrfy(),
            Request::Expn { .. } => self.handle_expn(),
            Request::Help { .. } => self.handle_help(),
            Request::StartTls => self.handle_starttls(),
            Request::Auth {
                mechanism,
                initial_response,
            } => {
                self.handle_auth(mechanism, initial_response.into_owned())
                    .await?
            }
            Request::Bdat { .. } => self.refuse(not_offered("BDAT")),
            Request::Lhlo { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Burl { .. } => self.refuse(reply::not_implemented("that command")),
        })
    }

    fn reply(&mut self, r: Reply) {
        r.write_to(&mut self.out);
    }

    /// Counts a client error; true when the session must end (421 queued).
    fn count_error(&mut self) -> bool {
        self.errors += 1;
        if self.errors >= self.ctx.config.smtp.error_limit {
            let host = self.ctx.config.smtp.hostname.clone();
            self.reply(reply::too_many_errors(&host));
            return true;
        }
        false
    }

    /// Answers `r` and counts the error.
    fn refuse(&mut self, r: Reply) -> Next {
        self.reply(r);
        if self.count_error() {
            Next::Close
        } else {
            Next::Continue
        }
    }

    fn reset_transaction(&mut self) {
        self.mail_from.clear();
        self.smtputf8 = false;
        self.rcpt_to.clear();
        self.unsubscribes.clear();
        self.report_to = None;
        self.overshoot = 0;
        if !matches!(self.phase, Phase::Connected) {
            self.phase = Phase::Greeted;
        }
    }

    /// STARTTLS is offered: a certificate is configured and TLS is not on yet.
    fn starttls_offered(&self) -> bool {
        self.ctx.tls.is_some() && !self.tls
    }

    /// The client may send mail: by network, or after AUTH.
    fn may_send(&self) -> bool {
        self.authorized || self.auth_user.is_some()
    }

    /// AUTH is offered: users exist, and the stream is TLS (or the client
    /// is on loopback and the configuration allows plain-text AUTH there).
    fn auth_allowed(&self) -> bool {
        let cfg = &self.ctx.config.smtp;
        !cfg.users.is_empty()
            && (self.tls
                || (cfg.allow_plain_auth_on_loopback
                    && self.peer.ip().to_canonical().is_loopback()))
    }
}

/// Whether a client outside `allowed_networks`, without AUTH, has
/// anything to send here: mail to the unsubscribe addresses or to the
/// report addresses.
pub fn open_to_anyone(cfg: &Config) -> bool {
    cfg.http.unsubscribe_mailto_domain.is_some()
        || cfg.bounces.domain.is_some()
        || cfg.complaints.address.is_some()
}

fn not_offered(cmd: &str) -> Reply {
    Reply::new(502, "5.5.1", format!("{cmd} is not offered here"))
}
