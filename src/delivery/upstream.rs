//! The upstream: where recipient copies go. An SMTP relay reached through
//! persistent `mail-send` connections (one per sender task, reused across
//! messages), with STARTTLS when offered (or required) and optional AUTH;
//! or an outbox directory where each copy becomes an .eml file.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mail_send::smtp::AssertReply;
use mail_send::{Credentials, SmtpClient};
use smtp_proto::{EXT_PIPELINING, EXT_SMTP_UTF8, EXT_START_TLS};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::retry::AttemptOutcome;
use crate::config::{UpstreamConfig, UpstreamTarget, UpstreamTls};

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// An open, greeted (and maybe authenticated) upstream connection.
pub struct Connection {
    client: SmtpClient<Box<dyn Io>>,
    pipelining: bool,
    /// The upstream's EHLO offered SMTPUTF8 (RFC 6531).
    smtputf8: bool,
    last_used: Instant,
    /// A transaction failed half-way: RSET before the next.
    dirty: bool,
}

impl Connection {
    /// Ends the session politely.
    pub async fn quit(mut self) {
        let _ = self.client.cmd(b"QUIT\r\n").await;
    }
}

/// One copy to hand upstream.
pub struct Copy<'a> {
    pub mail_from: &'a str,
    pub recipient: &'a str,
    pub body: &'a [u8],
    /// Unique name, used for the outbox file.
    pub name: &'a str,
    /// The message came with SMTPUTF8 (RFC 6531): MAIL FROM carries it
    /// when the upstream offers it.
    pub smtputf8: bool,
}

/// Where copies go.
pub struct Upstream {
    config: UpstreamConfig,
    hello: String,
    tls: Option<TlsConnector>,
}

/// A connection idle longer than this is probed before use.
const IDLE_PROBE: Duration = Duration::from_secs(10);

impl Upstream {
    pub fn new(config: &UpstreamConfig, hello: &str) -> Result<Upstream, String> {
        let tls = match (&config.target, config.tls) {
            (UpstreamTarget::Outbox(_), _) | (_, UpstreamTls::None) => None,
            _ => Some(tls_connector(crate::config::load::upstream_ca(config))?),
        };
        Ok(Upstream {
            config: config.clone(),
            hello: hello.to_owned(),
            tls,
        })
    }

    /// Sends one copy, reusing `conn` when it is open.
    pub async fn send(&self, conn: &mut Option<Connection>, copy: &Copy<'_>) -> AttemptOutcome {
        match &self.config.target {
            UpstreamTarget::Outbox(dir) => write_outbox(dir, copy).await,
            UpstreamTarget::Smtp { host, port } | UpstreamTarget::Smtps { host, port } => {
                let implicit = matches!(self.config.target, UpstreamTarget::Smtps { .. });
                if let Some(c) = conn.as_mut()
                    && (c.dirty || c.last_used.elapsed() > IDLE_PROBE)
                    && c.client.rset().await.is_err()
                {
                    *conn = None;
                }
                if conn.is_none() {
                    match self.connect(host, *port, implicit).await {
                        Ok(c) => *conn = Some(c),
                        Err(e) => return classify(e, "connecting"),
                    }
                }
                let Some(c) = conn.as_mut() else {
                    return AttemptOutcome::TemporaryFailure("no upstream connection".into());
                };
                let outcome = transaction(c, copy).await;
                match &outcome {
                    AttemptOutcome::Delivered(_) => {
                        c.dirty = false;
                        c.last_used = Instant::now();
                    }
                    // A rejected command leaves the session usable after RSET;
                    // anything else (I/O, timeout) closes it.
                    AttemptOutcome::PermanentFailure(r) | AttemptOutcome::TemporaryFailure(r)
                        if r.starts_with(['4', '5']) =>
                    {
                        c.dirty = true;
                    }
                    _ => *conn = None,
                }
                outcome
            }
        }
    }

    async fn connect(
        &self,
        host: &str,
        port: u16,
        implicit: bool,
    ) -> mail_send::Result<Connection> {
        let timeout = self.config.timeout;
        let tcp = tokio::time::timeout(timeout, TcpStream::connect((host, port)))
            .await
            .map_err(|_| mail_send::Error::Timeout)??;
        let _ = tcp.set_nodelay(true);
        let mut plain = SmtpClient {
            stream: tcp,
            timeout,
        };
        let (mut client, ehlo, encrypted): (SmtpClient<Box<dyn Io>>, _, bool) = if implicit {
            let tls = self.tls.as_ref().ok_or(mail_send::Error::MissingStartTls)?;
            let mut c = plain.into_tls(tls, host).await?;
            c.read().await?.assert_positive_completion()?;
            let ehlo = c.ehlo(&self.hello).await?;
            (boxed(c), ehlo, true)
        } else {
            plain.read().await?.assert_positive_completion()?;
            let ehlo = plain.ehlo(&self.hello).await?;
            let offered = ehlo.has_capability(EXT_START_TLS);
            match (self.config.tls, &self.tls, offered) {
                (UpstreamTls::Required | UpstreamTls::Opportunistic, Some(tls), true) => {
                    // Replies buffered before the handshake are never read:
                    // mail-send reads one reply per command.
                    let mut c = plain.start_tls(tls, host).await?;
                    let ehlo = c.ehlo(&self.hello).await?;
                    (boxed(c), ehlo, true)
                }
                (UpstreamTls::Required, _, _) => return Err(mail_send::Error::MissingStartTls),
                _ => (boxed(plain), ehlo, false),
            }
        };
        if let (Some(user), Some(password)) = (&self.config.username, &self.config.password) {
            // Credentials cross the network only encrypted, unless the
            // admin chose tls = "none": an attacker who strips STARTTLS
            // from an opportunistic session must not get the password.
            if !encrypted && self.config.tls != UpstreamTls::None {
                tracing::warn!(host = %host, "upstream offers no STARTTLS: not sending the password in clear (set upstream.tls = \"none\" to allow it)");
                return Err(mail_send::Error::MissingStartTls);
            }
            let secret = String::from_utf8_lossy(&password.0).into_owned();
            let credentials = Credentials::new(user.clone(), secret);
            client.authenticate(&credentials, &ehlo).await?;
        }
        Ok(Connection {
            pipelining: ehlo.has_capability(EXT_PIPELINING),
            smtputf8: ehlo.has_capability(EXT_SMTP_UTF8),
            client,
            last_used: Instant::now(),
            dirty: false,
        })
    }
}

fn boxed<T: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    c: SmtpClient<T>,
) -> SmtpClient<Box<dyn Io>> {
    SmtpClient {
        stream: Box::new(c.stream),
        timeout: c.timeout,
    }
}

/// MAIL, RCPT, DATA and the message, pipelined when the upstream allows it.
async fn transaction(c: &mut Connection, copy: &Copy<'_>) -> AttemptOutcome {
    let needs = needs_smtputf8(copy.mail_from, copy.recipient, copy.body);
    if !c.smtputf8
        && let Some(refusal) = needs
    {
        // RFC 6531 3.4: no downgrade; the copy fails and the sender is told.
        return AttemptOutcome::PermanentFailure(refusal.into());
    }
    let eight_bit = copy.body.iter().any(|b| !b.is_ascii());
    let mail = format!(
        "MAIL FROM:<{}>{}{}\r\n",
        copy.mail_from,
        if eight_bit { " BODY=8BITMIME" } else { "" },
        // `needs` as well: a message queued before the flag was stored.
        if (copy.smtputf8 || needs.is_some()) && c.smtputf8 {
            " SMTPUTF8"
        } else {
            ""
        }
    );
    let rcpt = format!("RCPT TO:<{}>\r\n", copy.recipient);
    let replies = if c.pipelining {
        c.client
            .cmds([mail.as_bytes(), rcpt.as_bytes(), b"DATA\r\n"])
            .await
    } else {
        sequential(
            &mut c.client,
            [mail.as_bytes(), rcpt.as_bytes(), b"DATA\r\n"],
        )
        .await
    };
    let replies = match replies {
        Ok(r) => r,
        Err(e) => return classify(e, "sending the envelope"),
    };
    for (i, r) in replies.iter().enumerate() {
        let expected = if i == 2 {
            r.code == 354
        } else {
            r.is_positive_completion()
        };
        if !expected {
            return by_code(r.code, show(r));
        }
    }
    // mail-send ends the data with CRLF "." CRLF itself.
    let body = copy.body.strip_suffix(b"\r\n").unwrap_or(copy.body);
    let sent = tokio::time::timeout(c.client.timeout, async {
        c.client.write_message(body).await?;
        c.client.read().await
    })
    .await;
    match sent {
        Ok(Ok(r)) if r.is_positive_completion() => AttemptOutcome::Delivered(show(&r)),
        Ok(Ok(r)) => by_code(r.code, show(&r)),
        Ok(Err(e)) => classify(e, "sending the message"),
        Err(_) => {
            AttemptOutcome::TemporaryFailure("timeout waiting for the reply to the message".into())
        }
    }
}

/// Why a message cannot go to an upstream without SMTPUTF8: a UTF-8
/// address in the envelope, or UTF-8 in the header (RFC 6531 3.4, the
/// enhanced codes of RFC 6531 3.7.5). `None` when plain SMTP carries it
/// (the message may still have been sent with SMTPUTF8).
pub fn needs_smtputf8(mail_from: &str, recipient: &str, body: &[u8]) -> Option<&'static str> {
    if !mail_from.is_ascii() || !recipient.is_ascii() {
        Some("553 5.6.7 upstream does not support SMTPUTF8, needed for a UTF-8 address")
    } else if !body[..crate::mail::header::header_end(body)].is_ascii() {
        Some("550 5.6.9 upstream does not support SMTPUTF8, needed for the UTF-8 header")
    } else {
        None
    }
}

/// Commands one at a time, stopping at the first refusal (no PIPELINING).
async fn sequential<const N: usize>(
    client: &mut SmtpClient<Box<dyn Io>>,
    cmds: [&[u8]; N],
) -> mail_send::Result<Vec<smtp_proto::Response<String>>> {
    let mut out = Vec::with_capacity(N);
    for cmd in cmds {
        let r = client.cmd(cmd).await?;
        let stop = !(r.is_positive_completion() || r.code == 354);
        out.push(r);
        if stop {
            break;
        }
    }
    Ok(out)
}

/// A reply as text: "550 5.1.1 no such user" (the enhanced code is parsed
/// apart by smtp-proto; put it back).
fn show(r: &smtp_proto::Response<String>) -> String {
    if r.esc[0] > 0 {
        format!(
            "{} {}.{}.{} {}",
            r.code, r.esc[0], r.esc[1], r.esc[2], r.message
        )
    } else {
        format!("{} {}", r.code, r.message)
    }
}

fn by_code(code: u16, text: String) -> AttemptOutcome {
    let text = text.replace(['\r', '\n'], " ");
    if (500..600).contains(&code) {
        AttemptOutcome::PermanentFailure(text)
    } else {
        AttemptOutcome::TemporaryFailure(text)
    }
}

/// Temporary unless the upstream said 5xx: an unclassified error is temporary.
fn classify(e: mail_send::Error, when: &str) -> AttemptOutcome {
    match e {
        mail_send::Error::UnexpectedReply(r) | mail_send::Error::AuthenticationFailed(r) => {
            by_code(r.code, show(&r))
        }
        other => AttemptOutcome::TemporaryFailure(format!("{when}: {other}")),
    }
}

/// The system roots, or those of `upstream.ca_file` read by
/// [`crate::config::load::upstream_roots`].
fn tls_connector(ca_file: Option<&Path>) -> Result<TlsConnector, String> {
    let Some(path) = ca_file else {
        return mail_send::smtp::tls::build_tls_connector(false);
    };
    let roots = crate::config::load::upstream_roots(path)?;
    let config = rustls::ClientConfig::builder_with_provider(crate::config::load::tls_provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Writes the copy as DIR/NAME.eml: write a temporary file, fsync, rename,
/// fsync the directory, so a file that exists is whole.
async fn write_outbox(dir: &Path, copy: &Copy<'_>) -> AttemptOutcome {
    let dir = dir.to_owned();
    let name = format!("{}.eml", copy.name);
    let mut content = Vec::with_capacity(copy.body.len() + 128);
    content.extend_from_slice(
        format!(
            "Return-Path: <{}>\r\nDelivered-To: {}\r\n",
            copy.mail_from, copy.recipient
        )
        .as_bytes(),
    );
    content.extend_from_slice(copy.body);
    let result = tokio::task::spawn_blocking(move || -> std::io::Result<PathBuf> {
        let tmp_dir = dir.join(".tmp");
        std::fs::create_dir_all(&tmp_dir)?;
        let tmp = tmp_dir.join(&name);
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&content)?;
        f.sync_all()?;
        drop(f);
        let target = dir.join(&name);
        std::fs::rename(&tmp, &target)?;
        std::fs::File::open(&dir)?.sync_all()?;
        Ok(target)
    })
    .await;
    match result {
        Ok(Ok(path)) => AttemptOutcome::Delivered(format!("250 written to {}", path.display())),
        Ok(Err(e)) => AttemptOutcome::TemporaryFailure(format!("outbox: {e}")),
        Err(e) => AttemptOutcome::TemporaryFailure(format!("outbox: {e}")),
    }
}
