//! One SMTP session: an explicit state machine over the commands that
//! `smtp-proto` parses. Framing is ours, to be strict: command lines end in
//! CRLF and are at most 512 octets; DATA goes through [`DataReader`].
//! Replies are buffered and flushed before each read, so pipelined commands
//! get their replies in one write (RFC 2920).
//!
//! STARTTLS (RFC 3207) ends the session with [`Ended::StartTls`], handing
//! the plain stream back: the server does the handshake and runs a fresh
//! session (nothing buffered, state reset) over the TLS stream. AUTH PLAIN
//! and LOGIN (RFC 4954) are offered after TLS only, unless
//! `allow_plain_auth_on_loopback` and the client is on loopback.
//! The AUTH exchange itself is in `session/auth.rs`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use smtp_proto::Request;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

mod auth;

use super::data::{DataReader, Progress};
use super::limiter::AuthLimiter;
use super::reply::{self, Reply};
use crate::config::Config;
use crate::intake::{Envelope, Intake, Refusal};
use crate::token::{Claims, Purpose};

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
    fn reply(&mut self, r: Reply) {
        r.write_to(&mut self.out);
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out).await?;
            self.stream.flush().await?;
            self.out.clear();
        }
        Ok(())
    }

    /// Reads more input; `Ok(false)` at end of stream, past `deadline` or
    /// on shutdown (after saying so to the client).
    async fn read_more(
        &mut self,
        deadline: Instant,
        in_data: bool,
        late: Late,
    ) -> std::io::Result<bool> {
        self.flush().await?;
        let mut chunk = [0u8; 8192];
        let mut shutdown = self.ctx.shutdown.clone();
        let host = self.ctx.config.smtp.hostname.clone();
        enum Read {
            Data(std::io::Result<usize>),
            TimedOut,
            Shutdown,
        }
        let outcome = tokio::select! {
            r = tokio::time::timeout_at(deadline.into(), self.stream.read(&mut chunk)) => match r {
                Ok(r) => Read::Data(r),
                Err(_) => Read::TimedOut,
            },
            // A message in transfer is finished first; between commands the
            // client is told to come back later.
            _ = crate::until_shutdown(&mut shutdown), if !in_data => Read::Shutdown,
        };
        match outcome {
            Read::Data(Ok(0)) => Ok(false),
            Read::Data(Ok(n)) => {
                self.inbuf.extend_from_slice(&chunk[..n]);
                Ok(true)
            }
            Read::Data(Err(e)) => Err(e),
            Read::TimedOut => {
                tracing::info!(peer = %self.peer, in_data, "client too slow; session closed");
                self.reply(match late {
                    Late::Idle => reply::timeout(&host),
                    Late::Slow => reply::data_too_slow(&host),
                });
                self.flush().await?;
                Ok(false)
            }
            Read::Shutdown => {
                self.reply(reply::shutting_down(&host));
                self.flush().await?;
                Ok(false)
            }
        }
    }

    /// Serves commands; `Ok(true)` when the client is to start TLS.
    async fn serve(&mut self) -> std::io::Result<bool> {
        let command_timeout = self.ctx.config.smtp.command_timeout;
        let mut discarding = false;
        // Each command line must be whole within command_timeout of the
        // wait for it starting: trickling bytes does not extend it.
        let mut deadline = None;
        loop {
            let Some(nl) = self.inbuf.iter().position(|&b| b == b'\n') else {
                if self.inbuf.len() > line_limit(&self.inbuf) {
                    // Too long already: answer once, then drop input up to the next LF.
                    if !discarding {
                        self.reply(reply::line_too_long());
                        discarding = true;
                        if self.count_error() {
                            return self.flush().await.map(|()| false);
                        }
                    }
                    self.inbuf.clear();
                }
                let until = *deadline.get_or_insert_with(|| Instant::now() + command_timeout);
                if !self.read_more(until, false, Late::Idle).await? {
                    return Ok(false);
                }
                continue;
            };
            deadline = None;
            let line: Vec<u8> = self.inbuf.drain(..=nl).collect();
            if std::mem::take(&mut discarding) {
                continue;
            }
            if line.len() > line_limit(&line) {
                self.reply(reply::line_too_long());
                if self.count_error() {
                    return self.flush().await.map(|()| false);
                }
                continue;
            }
            let body = &line[..line.len() - 1];
            if body.last() != Some(&b'\r') {
                self.reply(reply::bare_newline_in_command());
                if self.count_error() {
                    return self.flush().await.map(|()| false);
                }
                continue;
            }
            if body[..body.len() - 1].iter().any(|&b| b == b'\r' || b == 0) {
                self.reply(reply::control_in_command());
                if self.count_error() {
                    return self.flush().await.map(|()| false);
                }
                continue;
            }
            match self.command(&line).await? {
                Next::Continue => {}
                Next::Close => return self.flush().await.map(|()| false),
                Next::StartTls => return self.flush().await.map(|()| true),
            }
        }
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
        if !matches!(self.phase, Phase::Connected) {
            self.phase = Phase::Greeted;
        }
    }

    async fn command(&mut self, line: &[u8]) -> std::io::Result<Next> {
        let request = match Request::parse(&mut line.iter()) {
            Ok(r) => r,
            Err(e) => return Ok(self.refuse(reply::parse_error(&e))),
        };
        let cfg = &self.ctx.config.smtp;
        let next = match request {
            Request::Ehlo { host } => {
                self.helo = host.into_owned();
                self.esmtp = true;
                self.phase = Phase::Greeted;
                self.reset_transaction();
                let mut lines = vec![
                    format!("{} greets {}", cfg.hostname, self.peer.ip()),
                    "PIPELINING".into(),
                    format!("SIZE {}", cfg.max_message_size),
                    "8BITMIME".into(),
                    "ENHANCEDSTATUSCODES".into(),
                    "SMTPUTF8".into(),
                ];
                if self.starttls_offered() {
                    lines.push("STARTTLS".into());
                }
                if self.auth_allowed() {
                    lines.push("AUTH PLAIN LOGIN".into());
                }
                lines.push("HELP".into());
                self.reply(Reply {
                    code: 250,
                    status: "",
                    lines,
                });
                Next::Continue
            }
            Request::Helo { host } => {
                self.helo = host.into_owned();
                self.esmtp = false;
                self.phase = Phase::Greeted;
                self.reset_transaction();
                let r = Reply::new(250, "", cfg.hostname.clone());
                self.reply(r);
                Next::Continue
            }
            Request::Mail { from } => match self.phase {
                Phase::Connected => self.refuse(reply::bad_sequence("send EHLO or HELO first")),
                Phase::Mail | Phase::Rcpt => {
                    self.refuse(reply::bad_sequence("nested MAIL command; send RSET first"))
                }
                Phase::Greeted
                    if !self.may_send()
                        && self.ctx.config.http.unsubscribe_mailto_domain.is_none() =>
                {
                    self.refuse(Reply::new(530, "5.7.0", "authentication required"))
                }
                Phase::Greeted if from.size > cfg.max_message_size => {
                    self.refuse(reply::too_large())
                }
                Phase::Greeted
                    if [&from.env_id, &from.trans_id, &from.auth]
                        .into_iter()
                        .flatten()
                        .any(|p| p.contains(CONTROLS)) =>
                {
                    // xtext (+0D+0A) decodes to CR LF: such a parameter would
                    // inject lines wherever it is written out again.
                    self.refuse(reply::control_in_command())
                }
                Phase::Greeted
                    if from.flags & smtp_proto::MAIL_SMTPUTF8 == 0 && !from.address.is_ascii() =>
                {
                    self.refuse(reply::non_ascii_address())
                }
                Phase::Greeted => {
                    self.smtputf8 = from.flags & smtp_proto::MAIL_SMTPUTF8 != 0;
                    self.mail_from = from.address.into_owned();
                    self.phase = Phase::Mail;
                    self.reply(Reply::new(250, "2.1.0", "sender OK"));
                    Next::Continue
                }
            },
            Request::Rcpt { to } => match self.phase {
                Phase::Connected | Phase::Greeted => {
                    self.refuse(reply::bad_sequence("send MAIL first"))
                }
                Phase::Mail | Phase::Rcpt => {
                    if to.orcpt.as_deref().is_some_and(|p| p.contains(CONTROLS)) {
                        return Ok(self.refuse(reply::control_in_command()));
                    }
                    let address = to.address.into_owned();
                    if !self.smtputf8 && !address.is_ascii() {
                        return Ok(self.refuse(reply::non_ascii_address()));
                    }
                    if is_routed(&address) {
                        tracing::info!(peer = %self.peer, "recipient with % or ! routing refused");
                        return Ok(self.refuse(reply::routed_address()));
                    }
                    if let Some(token) = self.unsubscribe_token(&address) {
                        return Ok(self.unsubscribe_rcpt(token));
                    }
                    if !self.may_send() {
                        // Outsiders may only write to the unsubscribe addresses.
                        return Ok(self.refuse(Reply::new(
                            554,
                            "5.7.1",
                            "relay access denied: this relay only accepts mail from its allowed networks",
                        )));
                    }
                    if self.rcpt_to.len() + self.unsubscribes.len() >= cfg.max_recipients {
                        self.refuse(reply::too_many_recipients())
                    } else if !is_mailbox(&address) {
                        self.refuse(Reply::new(
                            501,
                            "5.1.3",
                            "recipient must be a mailbox local@domain",
                        ))
                    } else {
                        self.rcpt_to.push(address);
                        self.phase = Phase::Rcpt;
                        self.reply(Reply::new(250, "2.1.5", "recipient OK"));
                        Next::Continue
                    }
                }
            },
            Request::Data => match self.phase {
                Phase::Rcpt => {
                    if !self.inbuf.is_empty() {
                        // RFC 2920: DATA ends a pipelined group; the client must
                        // wait for 354. Anything already here would be read as
                        // message text that the client did not mean as such.
                        self.reply(reply::sync_error());
                        return Ok(Next::Close);
                    }
                    self.reply(Reply::new(354, "", "end data with <CR><LF>.<CR><LF>"));
                    self.data().await?
                }
                Phase::Mail => self.refuse(Reply::new(554, "5.5.1", "no valid recipients")),
                _ => self.refuse(reply::bad_sequence("send MAIL and RCPT first")),
            },
            Request::Rset => {
                self.reset_transaction();
                self.reply(reply::ok("2.0.0"));
                Next::Continue
            }
            Request::Noop { .. } => {
                self.reply(reply::ok("2.0.0"));
                Next::Continue
            }
            Request::Quit => {
                let r = Reply::new(221, "2.0.0", format!("{} closing connection", cfg.hostname));
                self.reply(r);
                Next::Close
            }
            Request::Vrfy { .. } => {
                self.reply(Reply::new(
                    252,
                    "2.5.0",
                    "cannot verify the user, but will accept the message",
                ));
                Next::Continue
            }
            Request::Help { .. } => {
                let mut commands = vec!["EHLO", "HELO"];
                if self.starttls_offered() {
                    commands.push("STARTTLS");
                }
                if self.auth_allowed() {
                    commands.push("AUTH");
                }
                commands.extend([
                    "MAIL", "RCPT", "DATA", "RSET", "NOOP", "VRFY", "HELP", "QUIT",
                ]);
                self.reply(Reply {
                    code: 214,
                    status: "2.0.0",
                    lines: vec![
                        "consent-relay: tag each message with its campaign header".into(),
                        format!("commands: {}", commands.join(" ")),
                    ],
                });
                Next::Continue
            }
            Request::StartTls => self.starttls(),
            Request::Auth {
                mechanism,
                initial_response,
            } => {
                let initial = initial_response.into_owned();
                self.auth(mechanism, initial).await?
            }
            Request::Bdat { .. } => self.refuse(not_offered("BDAT")),
            Request::Expn { .. } => self.refuse(Reply::new(502, "5.5.1", "EXPN is not available")),
            Request::Lhlo { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Burl { .. } => self.refuse(reply::not_implemented("that command")),
        };
        Ok(next)
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

    fn starttls(&mut self) -> Next {
        if self.ctx.tls.is_none() {
            return self.refuse(not_offered("STARTTLS"));
        }
        if self.tls {
            return self.refuse(reply::bad_sequence("TLS is already active"));
        }
        match self.phase {
            Phase::Connected => return self.refuse(reply::bad_sequence("send EHLO first")),
            Phase::Mail | Phase::Rcpt => {
                return self.refuse(reply::bad_sequence(
                    "STARTTLS is not allowed during a mail transaction",
                ));
            }
            Phase::Greeted => {}
        }
        if !self.inbuf.is_empty() {
            // RFC 3207 4.2 / CVE-2011-0411: anything sent after STARTTLS
            // and before the handshake would otherwise run as if it had come
            // over TLS. The session is dropped instead.
            tracing::info!(peer = %self.peer, "commands pipelined after STARTTLS; session dropped");
            self.reply(Reply::new(
                554,
                "5.5.0",
                "protocol synchronization error: data sent after STARTTLS",
            ));
            return Next::Close;
        }
        self.reply(Reply::new(220, "2.0.0", "ready to start TLS"));
        Next::StartTls
    }

    /// Reads the message after 354 and answers it.
    async fn data(&mut self) -> std::io::Result<Next> {
        let cfg = &self.ctx.config.smtp;
        let mut reader = DataReader::new(cfg.max_message_size, MAX_TEXT_LINE);
        let mut budget = Budget::new(cfg.data_timeout, cfg.guard.min_data_rate);
        let mut pending = std::mem::take(&mut self.inbuf);
        loop {
            match reader.feed(&pending) {
                Progress::NeedMore => {
                    pending.clear();
                    let started = Instant::now();
                    let late = budget.late();
                    if !self.read_more(started + budget.left, true, late).await? {
                        // Cut by a disconnect or a timeout: nothing is stored.
                        return Ok(Next::Close);
                    }
                    pending = std::mem::take(&mut self.inbuf);
                    budget.spend(started.elapsed(), pending.len());
                }
                Progress::Done(used) => {
                    self.inbuf = pending.split_off(used);
                    break;
                }
                Progress::BareNewline => {
                    tracing::info!(peer = %self.peer, "message refused: bare CR or LF in DATA");
                    crate::metrics::refused("bare_newline");
                    self.reply(reply::bare_newline_in_data());
                    self.reset_transaction();
                    return Ok(Next::Close);
                }
            }
        }
        let header_end = crate::message::header_end(&reader.body);
        let r = if reader.oversize {
            crate::metrics::refused("too_large");
            reply::too_large()
        } else if reader.long_line {
            crate::metrics::refused("line_too_long");
            reply::text_line_too_long()
        } else if reader.nul {
            crate::metrics::refused("nul");
            reply::nul_in_data()
        } else if header_end > cfg.max_header_size {
            crate::metrics::refused("header_too_large");
            reply::header_too_large()
        } else if !self.smtputf8 && !reader.body[..header_end].is_ascii() {
            // RFC 6532 3: UTF-8 in header fields only with SMTPUTF8; 8BITMIME
            // covers the body alone.
            crate::metrics::refused("eight_bit_header");
            reply::eight_bit_header()
        } else {
            let started = std::time::Instant::now();
            let r = self.deliver(reader.body).await;
            metrics::histogram!(crate::metrics::ACCEPT_SECONDS)
                .record(started.elapsed().as_secs_f64());
            r
        };
        self.reset_transaction();
        self.reply(r);
        Ok(Next::Continue)
    }

    /// The token of an `unsubscribe+TOKEN@<unsubscribe_mailto_domain>` address.
    fn unsubscribe_token<'a>(&self, address: &'a str) -> Option<&'a str> {
        let domain = self.ctx.config.http.unsubscribe_mailto_domain.as_deref()?;
        let (local, at) = address.rsplit_once('@')?;
        if !at.eq_ignore_ascii_case(domain) {
            return None;
        }
        local.strip_prefix("unsubscribe+")
    }

    fn unsubscribe_rcpt(&mut self, token: &str) -> Next {
        match crate::token::verify_for(&self.ctx.config.signing, token, Purpose::Unsubscribe) {
            Ok(claims) => {
                self.unsubscribes.push(claims);
                self.phase = Phase::Rcpt;
                self.reply(Reply::new(250, "2.1.5", "recipient OK"));
                Next::Continue
            }
            Err(e) => {
                tracing::info!(peer = %self.peer, cause = %e, "unsubscribe address refused");
                self.refuse(Reply::new(550, "5.1.1", "no such unsubscribe address"))
            }
        }
    }

    async fn deliver(&mut self, body: Vec<u8>) -> Reply {
        if !self.unsubscribes.is_empty() {
            let claims = std::mem::take(&mut self.unsubscribes);
            let from = self.mail_from.clone();
            for c in &claims {
                if let Err(e) = self
                    .ctx
                    .intake
                    .unsubscribe_by_mail(c, self.peer.ip(), &from)
                    .await
                {
                    tracing::error!(peer = %self.peer, cause = %e, "unsubscribe by mail not recorded");
                    return reply::store_failed();
                }
            }
            if self.rcpt_to.is_empty() {
                return Reply::new(
                    250,
                    "2.0.0",
                    format!("unsubscribed ({} request(s) recorded)", claims.len()),
                );
            }
        }
        let envelope = Envelope {
            mail_from: std::mem::take(&mut self.mail_from),
            rcpt_to: std::mem::take(&mut self.rcpt_to),
            client_ip: self.peer.ip(),
            helo: self.helo.clone(),
            auth_user: self.auth_user.clone(),
            esmtp: self.esmtp,
            tls: self.tls,
            smtputf8: self.smtputf8,
        };
        match self.ctx.intake.accept(&envelope, &body).await {
            Ok(a) => Reply::new(
                250,
                "2.0.0",
                format!(
                    "queued as {} ({} delivered, {} suppressed)",
                    a.queue_id, a.delivered, a.suppressed
                ),
            ),
            Err(Refusal::Store(e)) => {
                tracing::error!(peer = %self.peer, cause = %e, "message not stored");
                crate::metrics::refused("store_failed");
                reply::store_failed()
            }
            Err(refusal) => {
                tracing::info!(peer = %self.peer, reason = %refusal, "message refused");
                crate::metrics::refused(refusal.metric_reason());
                Reply::new(550, "5.7.1", format!("message refused: {refusal}"))
            }
        }
    }
}

fn not_offered(cmd: &str) -> Reply {
    Reply::new(502, "5.5.1", format!("{cmd} is not offered here"))
}

/// How long a DATA transfer may still take (Postfix's smtpd_min_data_rate
/// model): it starts at `data_timeout`, each read spends the time it waited
/// and earns `octets / min_data_rate` seconds, never above `data_timeout`.
/// So an idle client is cut after `data_timeout`, and one that trickles
/// bytes slower than the minimum rate soon after.
struct Budget {
    left: Duration,
    full: Duration,
    min_rate: u64,
    received: bool,
}

impl Budget {
    fn new(full: Duration, min_rate: u64) -> Budget {
        Budget {
            left: full,
            full,
            min_rate,
            received: false,
        }
    }

    fn spend(&mut self, waited: Duration, octets: usize) {
        self.received |= octets > 0;
        let earned = Duration::from_secs_f64(octets as f64 / self.min_rate as f64);
        self.left = (self.left.saturating_sub(waited) + earned).min(self.full);
    }

    /// What running out now would mean.
    fn late(&self) -> Late {
        if self.received && self.left < self.full {
            Late::Slow
        } else {
            Late::Idle
        }
    }
}

/// The longest line allowed for the command `buf` starts with: RFC 4954 4
/// lets an AUTH line carry an initial response of up to 12288 octets.
fn line_limit(buf: &[u8]) -> usize {
    if buf.len() >= 5 && buf[..5].eq_ignore_ascii_case(b"AUTH ") {
        MAX_AUTH_LINE
    } else {
        MAX_COMMAND_LINE
    }
}

/// `%`, `!` or a quoted `@` in the local part: the old routing hacks
/// (`user%other.example@relay`, `host!user@relay`) by which a relay that
/// passes them on becomes an open relay. Refused, never interpreted.
fn is_routed(address: &str) -> bool {
    address
        .rsplit_once('@')
        .is_some_and(|(local, _)| local.contains(['%', '!', '@']))
}

/// A forward-path this relay accepts: `local@domain`, no source route.
fn is_mailbox(address: &str) -> bool {
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty() && !domain.is_empty() && !domain.contains(['@', ' '])
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_budget_runs_out_for_a_trickle_and_never_grows_past_the_timeout() {
        let full = Duration::from_secs(1);
        let mut b = Budget::new(full, 1000);
        assert!(matches!(b.late(), Late::Idle));
        // 1 octet every 250 ms earns 1 ms each time: gone after 4 reads.
        for _ in 0..4 {
            b.spend(Duration::from_millis(250), 1);
        }
        assert_eq!(b.left, Duration::from_millis(4));
        assert!(matches!(b.late(), Late::Slow));
        // A fast burst refills the budget, but only up to data_timeout.
        b.spend(Duration::from_millis(1), 1_000_000);
        assert_eq!(b.left, full);
        assert!(matches!(b.late(), Late::Idle));
    }

    #[test]
    fn only_auth_lines_may_be_long() {
        assert_eq!(line_limit(b"AUTH PLAIN AGNybQ"), MAX_AUTH_LINE);
        assert_eq!(line_limit(b"auth plain"), MAX_AUTH_LINE);
        assert_eq!(line_limit(b"AUTHX"), MAX_COMMAND_LINE);
        assert_eq!(line_limit(b"MAIL FROM:<a@b>"), MAX_COMMAND_LINE);
    }

    #[test]
    fn percent_bang_and_at_routing_is_recognised_in_the_local_part_only() {
        assert!(is_routed("user%other.example@relay.example"));
        assert!(is_routed("host!user@relay.example"));
        assert!(is_routed("user@other.example@relay.example"));
        assert!(!is_routed("user@relay.example"));
        assert!(!is_routed("first.last+tag@relay.example"));
    }
}
