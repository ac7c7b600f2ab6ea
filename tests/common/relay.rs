//! A relay under test, in-process: a config written for the test (real
//! SQLite file in a temp dir, the test's sink as upstream, SMTP and HTTP
//! listeners on 127.0.0.1:0), plus a small raw SMTP client that shows exact
//! replies, and signed link tokens for its subjects.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use consent_relay::config::Config;
use consent_relay::consent::subject;
use consent_relay::consent::{Action, Source};
use consent_relay::server::{self, Running};
use consent_relay::store::{NewConsentEvent, NewSubject, Store};
use consent_relay::token::{self, Claims, Purpose};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

pub const KEY: &str = "dGVzdC1rZXktdGVzdC1rZXktdGVzdC1rZXktMzJieXRlcyE=";

/// The campaigns every test config has.
pub const CAMPAIGNS: &str = r#"
[[campaign]]
id = "newsletter"
label = "Newsletter"
policy = "opt-in"
consent_max_age_days = 395
list_id = "newsletter.example.com"

[[campaign]]
id = "prospecting"
label = "Offers"
policy = "opt-out"

[[campaign]]
id = "invoices"
label = "Invoices"
policy = "mandatory"

[[campaign]]
id = "old"
label = "Old"
policy = "opt-out"
state = "inactive"

[[campaign]]
id = "gone"
label = "Gone"
policy = "opt-out"
state = "deleted"
"#;

/// A config file text. `upstream` is the `[upstream] url`; `smtp_extra`
/// and `queue_extra` add keys to those tables. Each text names a node of
/// its own ([`node_line`]).
pub fn config_text(dir: &Path, upstream: &str, smtp_extra: &str, queue_extra: &str) -> String {
    format!(
        r#"
[smtp]
listen = "127.0.0.1:0"
hostname = "relay.test"
{smtp_extra}

[upstream]
url = "{upstream}"
connections = 2
tls = "none"
timeout = "5s"

[http]
listen = "127.0.0.1:0"
public_url = "http://127.0.0.1:8080"

[signing]
current = "k1"
keys = {{ k1 = "{KEY}" }}

[store]
url = "{store}"

[queue]
retry_after = ["1s"]
{node}
{queue_extra}
{CAMPAIGNS}
"#,
        store = super::backend::store_url(dir),
        node = node_line(queue_extra)
    )
}

/// A `[queue] node` name of its own for each config (unless `queue_extra`
/// names one): relays of one test may share a PostgreSQL schema at once,
/// and two live nodes may not share a name.
fn node_line(queue_extra: &str) -> String {
    if queue_extra.contains("node =") {
        return String::new();
    }
    format!(
        "node = \"test-{}\"",
        ulid::Ulid::generate().to_string().to_lowercase()
    )
}

/// Writes `text` as `dir/consent-relay.toml` and loads it (for tests that
/// open the store or start the server themselves).
pub fn write_config(dir: &Path, text: &str) -> Config {
    let path = dir.join("consent-relay.toml");
    std::fs::write(&path, text).expect("write config");
    Config::load(&path).unwrap_or_else(|e| panic!("test config: {e}"))
}

/// A consent event an admin records for `email` (subject `new_subject`
/// when the address is new), with no IP, user agent or evidence; change
/// the rest with `NewConsentEvent { source: …, ..admin_event(…) }`.
pub fn admin_event(
    email: &str,
    new_subject: NewSubject,
    campaign: &str,
    action: Action,
    at: i64,
) -> NewConsentEvent {
    NewConsentEvent {
        address: email.into(),
        new_subject,
        campaign: campaign.into(),
        action,
        at,
        source: Source::Admin,
        ip: None,
        user_agent: None,
        evidence: None,
        actor: None,
    }
}

/// A subject with made-up id and hash, `subject-{n}` and `hash-{n}` (for
/// store-level tests that name subjects without a signing key).
pub fn test_subject(n: impl std::fmt::Display) -> NewSubject {
    NewSubject {
        id: format!("subject-{n}"),
        address_hash: format!("hash-{n}"),
        key_id: "k1".into(),
    }
}

pub struct TestRelay {
    pub dir: tempfile::TempDir,
    pub config: Arc<Config>,
    pub running: Option<Running>,
    /// The SMTP listener.
    pub addr: SocketAddr,
    /// The HTTP listener (pages, one-click unsubscribe).
    pub http_addr: SocketAddr,
}

impl TestRelay {
    /// Starts a relay whose upstream is `smtp://ADDR`.
    pub async fn start(upstream: SocketAddr, smtp_extra: &str, queue_extra: &str) -> TestRelay {
        let dir = tempfile::tempdir().expect("temp dir");
        let text = config_text(
            dir.path(),
            &format!("smtp://{upstream}"),
            smtp_extra,
            queue_extra,
        );
        Self::start_with(dir, &text).await
    }

    pub async fn start_with(dir: tempfile::TempDir, text: &str) -> TestRelay {
        let config = Arc::new(write_config(dir.path(), text));
        let running = server::start(config.clone()).await.expect("relay starts");
        let addr = running.smtp_addr;
        let http_addr = running.http_addr;
        TestRelay {
            dir,
            config,
            running: Some(running),
            addr,
            http_addr,
        }
    }

    /// `http://127.0.0.1:PORT{path}` on the relay's HTTP listener.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http_addr)
    }

    /// A link token signed with the relay's current key.
    pub fn token(&self, purpose: Purpose, subject_id: &str, campaign: Option<&str>) -> String {
        token::sign(
            &self.config.signing,
            &Claims {
                subject_id: subject_id.to_owned(),
                campaign: campaign.map(str::to_owned),
                purpose,
            },
        )
        .expect("sign a token")
    }

    /// The subject id of a known address.
    pub async fn subject_id(&self, email: &str) -> String {
        self.store()
            .subject_consent(&canonical(email))
            .await
            .expect("store")
            .unwrap_or_else(|| panic!("{email} has no subject"))
            .subject_id
    }

    /// The consent events of a known address, oldest first.
    pub async fn events(&self, email: &str) -> Vec<consent_relay::store::ConsentEvent> {
        self.store()
            .subject_consent(&canonical(email))
            .await
            .expect("store")
            .unwrap_or_else(|| panic!("{email} has no subject"))
            .events
    }

    pub fn store(&self) -> &Store {
        &self.running.as_ref().expect("running").store
    }

    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
    }

    /// Records a consent event for `email`, `at` milliseconds (default now).
    pub async fn consent(&self, email: &str, campaign: &str, action: Action, at: Option<i64>) {
        let address = canonical(email);
        let new_subject = subject::new_subject(&self.config.signing, &address);
        let at = at.unwrap_or_else(consent_relay::time::now_ms);
        self.store()
            .append_consent_event(NewConsentEvent {
                evidence: Some("test".into()),
                ..admin_event(&address, new_subject, campaign, action, at)
            })
            .await
            .expect("consent event");
    }

    /// Runs the real binary with `args` on this relay's config and store,
    /// as the user `user` (`$USER`, the CLI's actor), without blocking the
    /// runtime the relay runs on.
    pub async fn cli_as(&self, user: &str, args: &[&str]) -> std::process::Output {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_consent-relay"))
            .args(args)
            .arg("--config")
            .arg(self.dir.path().join("consent-relay.toml"))
            .current_dir(self.dir.path())
            .env("USER", user)
            .output()
            .await
            .expect("run consent-relay")
    }

    pub async fn client(&self) -> Client {
        Client::connect(self.addr).await
    }

    /// Sends one message in a fresh session; returns the reply to the final dot.
    pub async fn send(&self, rcpts: &[&str], message: &str) -> String {
        self.send_with("MAIL FROM:<crm@example.com>", rcpts, message)
            .await
    }

    /// [`TestRelay::send`] with this MAIL command (another sender, or
    /// parameters such as `SMTPUTF8`).
    pub async fn send_with(&self, mail: &str, rcpts: &[&str], message: &str) -> String {
        let mut c = self.client().await;
        c.expect("220").await;
        c.cmd("EHLO client.test", "250").await;
        c.cmd(mail, "250").await;
        for r in rcpts {
            c.cmd(&format!("RCPT TO:<{r}>"), "250").await;
        }
        c.cmd("DATA", "354").await;
        c.write(message.as_bytes()).await;
        c.write(b".\r\n").await;
        let reply = c.read_reply().await;
        c.cmd("QUIT", "221").await;
        reply
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("relay.db")
    }

    /// Runs the real binary with `args` on this relay's config file (and
    /// store), in its directory.
    pub async fn cli(&self, args: &[&str]) -> std::process::Output {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_consent-relay"))
            .args(args)
            .arg("--config")
            .arg(self.dir.path().join("consent-relay.toml"))
            .current_dir(self.dir.path())
            .output()
            .await
            .expect("run consent-relay")
    }
}

/// A message tagged with a campaign, CRLF line ends.
pub fn message(campaign: &str, body: &str) -> String {
    format!(
        "From: CRM <crm@example.com>\r\nTo: list@example.net\r\nSubject: News\r\nMessage-ID: <m1@example.com>\r\nX-Campaign: {campaign}\r\n\r\n{body}\r\n"
    )
}

/// [`message`] with this `Message-ID` header value instead of `<m1@example.com>`.
pub fn message_with_id(campaign: &str, message_id: &str, body: &str) -> String {
    message(campaign, body).replace(
        "Message-ID: <m1@example.com>",
        &format!("Message-ID: {message_id}"),
    )
}

/// The queue id of a `250 2.0.0 queued as ID (...)` reply.
pub fn queue_id_of(reply: &str) -> String {
    assert!(reply.starts_with("250 2.0.0 queued as "), "{reply}");
    reply
        .split_whitespace()
        .nth(4)
        .expect("a queue id")
        .to_owned()
}

/// A raw SMTP client over any stream (TCP, or TLS after STARTTLS): writes
/// exactly what it is given, reads whole replies.
pub struct Client<S = TcpStream> {
    pub stream: S,
    buf: Vec<u8>,
}

impl Client<TcpStream> {
    pub async fn connect(addr: SocketAddr) -> Client {
        Client::new(TcpStream::connect(addr).await.expect("connect to relay"))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    pub fn new(stream: S) -> Client<S> {
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    /// Bytes read from the server but not yet taken as a reply.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    pub async fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
        self.stream.flush().await.expect("flush");
    }

    /// Writes; false when the server has closed the connection.
    pub async fn try_write(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).await.is_ok() && self.stream.flush().await.is_ok()
    }

    /// Reads one (possibly multi-line) reply; "" when the server closed.
    pub async fn read_reply(&mut self) -> String {
        loop {
            if let Some(end) = reply_end(&self.buf) {
                let r: Vec<u8> = self.buf.drain(..end).collect();
                return String::from_utf8_lossy(&r).into_owned();
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut chunk))
                .await
                .expect("reply within 10 s")
                .unwrap_or(0);
            if n == 0 {
                return String::from_utf8_lossy(&std::mem::take(&mut self.buf)).into_owned();
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    pub async fn expect(&mut self, code: &str) -> String {
        let r = self.read_reply().await;
        assert!(r.starts_with(code), "expected {code}, got {r:?}");
        r
    }

    pub async fn cmd(&mut self, line: &str, code: &str) -> String {
        self.write(format!("{line}\r\n").as_bytes()).await;
        self.expect(code).await
    }

    /// True when the server closed the connection (reads EOF within 10 s).
    pub async fn closed(&mut self) -> bool {
        let mut chunk = [0u8; 1024];
        loop {
            match tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut chunk)).await
            {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
    }
}

/// End of the first complete reply in `buf`: the line whose code is followed by a space.
fn reply_end(buf: &[u8]) -> Option<usize> {
    let mut start = 0;
    while let Some(p) = buf[start..].windows(2).position(|w| w == b"\r\n") {
        let line = &buf[start..start + p];
        let end = start + p + 2;
        if line.len() < 4 || line[3] == b' ' {
            return Some(end);
        }
        start = end;
    }
    None
}

/// Waits until `check` holds, polling the store (for outcomes recorded after a send).
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// A fresh session past the greeting and `EHLO client.test`.
pub async fn greeted(relay: &TestRelay) -> Client {
    let mut c = relay.client().await;
    c.expect("220 relay.test ESMTP").await;
    c.cmd("EHLO client.test", "250").await;
    c
}

/// An argon2id PHC string for `[[smtp.user]] password_hash`, as
/// `hash-password` prints.
pub fn password_hash(password: &str) -> String {
    use argon2::PasswordHasher as _;
    argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .expect("hash")
        .to_string()
}

/// The canonical identity of an address, as the store keeps it.
pub fn canonical(email: &str) -> String {
    consent_relay::consent::identity::Identity::of(email)
        .unwrap_or_else(|e| panic!("{email:?}: {e}"))
        .canonical()
        .to_owned()
}
