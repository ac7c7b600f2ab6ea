//! The real binary reloads its configuration on SIGHUP: new sessions get
//! the new campaigns and limits, sessions already open keep theirs, a file
//! that does not pass `check-config` is refused whole (the error logged,
//! the old configuration kept), and a key that only a restart applies is
//! named in a warning. On SQLite and on PostgreSQL (see `common::backend`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use crate::both_stores;
use crate::common;
use crate::common::relay::{Client, config_text, message};
use tokio::process::{Child, Command};

/// Campaign `reload-b`, which the first configuration does not have.
const CAMPAIGN_B: &str =
    "\n[[campaign]]\nid = \"reload-b\"\nlabel = \"B\"\npolicy = \"mandatory\"\n";

/// `consent-relay serve` on a fixed loopback port, logging to a file.
pub(super) struct Serve {
    _dir: tempfile::TempDir,
    config: PathBuf,
    log: PathBuf,
    pub(super) addr: SocketAddr,
    child: Child,
}

impl Serve {
    /// Starts the binary with `config_text(…, smtp_extra, "")` (+ `extra`).
    pub(super) async fn start(smtp_extra: &str, extra: &str) -> Serve {
        let dir = tempfile::tempdir().expect("temp dir");
        let addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
            l.local_addr().expect("addr")
        };
        // The upstream is down: accepted messages just wait in the queue.
        let text = config_text(dir.path(), "smtp://127.0.0.1:9", smtp_extra, "").replacen(
            "listen = \"127.0.0.1:0\"",
            &format!("listen = \"{addr}\""),
            1,
        ) + extra;
        let config = dir.path().join("consent-relay.toml");
        std::fs::write(&config, text).expect("write config");
        let log = dir.path().join("serve.log");
        let child = Command::new(env!("CARGO_BIN_EXE_consent-relay"))
            .args(["serve", "--config"])
            .arg(&config)
            .current_dir(dir.path())
            .env("RUST_LOG", "info")
            .stdout(std::fs::File::create(&log).expect("log file"))
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn serve");
        let s = Serve {
            _dir: dir,
            config,
            log,
            addr,
            child,
        };
        s.log_has_after(0, "consent-relay started").await;
        s
    }

    pub(super) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Rewrites the configuration file with `edit` applied, sends SIGHUP and
    /// waits for `outcome` in the log; returns what was logged since.
    async fn reload(&self, edit: impl FnOnce(String) -> String, outcome: &str) -> String {
        let text = std::fs::read_to_string(&self.config).expect("read config");
        std::fs::write(&self.config, edit(text)).expect("rewrite config");
        let mark = self.log_text().len();
        self.signal("-HUP").await;
        self.log_has_after(mark, outcome).await;
        self.log_text()[mark..].to_owned()
    }

    pub(super) async fn log_has_after(&self, mark: usize, what: &str) {
        for _ in 0..400 {
            if self
                .log_text()
                .get(mark..)
                .is_some_and(|l| l.contains(what))
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the log never said {what:?}: {}", self.log_text());
    }

    async fn signal(&self, which: &str) {
        let pid = self.child.id().expect("running").to_string();
        let ok = Command::new("kill")
            .args([which, &pid])
            .status()
            .await
            .expect("kill");
        assert!(ok.success());
    }

    /// SIGTERM, and the exit is clean.
    pub(super) async fn stop(mut self) {
        self.signal("-TERM").await;
        let status = self.child.wait().await.expect("wait");
        assert!(status.success(), "{status:?}");
    }

    pub(super) async fn greeted(&self) -> Client {
        let mut c = Client::connect(self.addr).await;
        c.expect("220").await;
        c.cmd("EHLO client.test", "250").await;
        c
    }

    /// One message in a fresh session; the reply to the final dot.
    async fn send(&self, rcpts: &[&str], campaign: &str) -> String {
        let mut c = self.greeted().await;
        let reply = transaction(&mut c, rcpts, campaign).await;
        c.cmd("QUIT", "221").await;
        reply
    }

    /// A fresh session's message for `campaign` is accepted.
    async fn accepts(&self, rcpts: &[&str], campaign: &str) {
        let reply = self.send(rcpts, campaign).await;
        assert!(reply.starts_with("250"), "{reply}");
    }
}

/// MAIL, every RCPT (each must be accepted), DATA; the reply to the dot.
async fn transaction(c: &mut Client, rcpts: &[&str], campaign: &str) -> String {
    c.cmd("MAIL FROM:<crm@example.com>", "250").await;
    for r in rcpts {
        c.cmd(&format!("RCPT TO:<{r}>"), "250").await;
    }
    c.cmd("DATA", "354").await;
    c.write(message(campaign, "Hello").as_bytes()).await;
    c.write(b".\r\n").await;
    c.read_reply().await
}

async fn sighup_applies_new_campaigns_and_limits_to_new_sessions() {
    let s = Serve::start("max_recipients = 1", "").await;
    let refused = s.send(&["ann@example.net"], "reload-b").await;
    assert!(
        refused.starts_with("550") && refused.contains("unknown campaign"),
        "{refused}"
    );
    let mut open = s.greeted().await;

    let logged = s
        .reload(
            |t| t.replace("max_recipients = 1", "max_recipients = 3") + CAMPAIGN_B,
            "configuration reloaded",
        )
        .await;
    assert!(logged.contains("campaigns added: reload-b"), "{logged}");
    assert!(
        logged.contains("campaigns added: reload-b; smtp"),
        "{logged}"
    );

    // A new session: campaign B and three recipients.
    s.accepts(
        &["ann@example.net", "bob@example.net", "cy@example.net"],
        "reload-b",
    )
    .await;

    // The session opened before the reload is still usable, with the
    // configuration it started with: one recipient, no campaign B.
    open.cmd("MAIL FROM:<crm@example.com>", "250").await;
    open.cmd("RCPT TO:<dan@example.net>", "250").await;
    open.cmd("RCPT TO:<eve@example.net>", "452").await;
    open.cmd("DATA", "354").await;
    open.write(message("reload-b", "Hello").as_bytes()).await;
    open.write(b".\r\n").await;
    let old = open.read_reply().await;
    assert!(
        old.starts_with("550") && old.contains("unknown campaign"),
        "{old}"
    );
    let reply = transaction(&mut open, &["dan@example.net"], "invoices").await;
    assert!(reply.starts_with("250"), "{reply}");
    open.cmd("QUIT", "221").await;
    s.stop().await;
}
both_stores!(sighup_applies_new_campaigns_and_limits_to_new_sessions);

async fn a_file_that_does_not_check_is_refused_and_the_old_config_stays() {
    let s = Serve::start("", CAMPAIGN_B).await;
    let logged = s
        .reload(
            |t| t.replace("policy = \"mandatory\"", "policy = \"sometimes\""),
            "configuration not reloaded",
        )
        .await;
    assert!(logged.contains("consent-relay.toml: campaign"), "{logged}");
    assert!(
        logged.contains("policy"),
        "the error names the key: {logged}"
    );
    assert!(!logged.contains("configuration reloaded"), "{logged}");
    s.accepts(&["ann@example.net"], "reload-b").await;

    // An unreadable TOML: the same.
    let logged = s
        .reload(|t| t + "\n[smtp\n", "configuration not reloaded")
        .await;
    assert!(logged.contains("consent-relay.toml"), "{logged}");
    s.accepts(&["bob@example.net"], "reload-b").await;
    s.stop().await;
}
both_stores!(a_file_that_does_not_check_is_refused_and_the_old_config_stays);

async fn a_key_that_needs_a_restart_is_named_and_the_rest_applied() {
    let s = Serve::start("", "").await;
    let logged = s
        .reload(
            |t| t.replace("connections = 2", "connections = 3") + CAMPAIGN_B,
            "configuration reloaded",
        )
        .await;
    assert!(logged.contains("only a restart"), "{logged}");
    assert!(logged.contains("upstream.connections"), "{logged}");
    assert!(logged.contains("campaigns added: reload-b"), "{logged}");
    s.accepts(&["ann@example.net"], "reload-b").await;
    s.stop().await;
}
both_stores!(a_key_that_needs_a_restart_is_named_and_the_rest_applied);

/// In process: each HTTP request is served with the configuration of its
/// arrival, on the same listener (a new admin token and campaign apply to
/// the next request, the old token no longer opens the API).
async fn http_requests_after_a_reload_see_the_new_configuration() {
    use common::admin::{ADMIN_TOKEN, call, sha256_hex, start};
    use common::sink::Sink;
    use reqwest::Method;

    let sink = Sink::start().await;
    let mut relay = start(&sink).await;
    let listed = |a: &common::admin::Answer| a.body.to_string().contains("reload-b");
    let campaigns = |token| call(&relay, Method::GET, "/api/v1/campaigns", Some(token), None);
    let before = campaigns(ADMIN_TOKEN).await;
    assert_eq!(before.status, 200);
    assert!(!listed(&before), "{}", before.body);

    let path = relay.dir.path().join("consent-relay.toml");
    let text = std::fs::read_to_string(&path).expect("config");
    let new_token = "test-admin-token-after-reload";
    let text = text.replace(&sha256_hex(ADMIN_TOKEN), &sha256_hex(new_token)) + CAMPAIGN_B;
    std::fs::write(&path, text).expect("rewrite config");
    let running = relay.running.as_ref().expect("running");
    assert!(running.reload_config(), "the new file is in use");

    let old = campaigns(ADMIN_TOKEN).await;
    assert_eq!(old.status, 401);
    let after = campaigns(new_token).await;
    assert_eq!(after.status, 200);
    assert!(listed(&after), "{}", after.body);

    // A DKIM key that does not load (what `check-config` reads too): refused.
    std::fs::write(relay.dir.path().join("dkim.pem"), "not a key\n").expect("key");
    let dkim =
        "\n[dkim]\ndomain = \"example.com\"\nselector = \"relay\"\nprivate_key = \"dkim.pem\"\n";
    let text = std::fs::read_to_string(&path).expect("config") + dkim;
    std::fs::write(&path, text).expect("add dkim");
    let running = relay.running.as_ref().expect("running");
    assert!(!running.reload_config(), "the unusable DKIM key is refused");

    // A file that does not check: refused, the API answers as before.
    std::fs::write(&path, "[smtp]\nlisten = 25\n").expect("break config");
    let running = relay.running.as_ref().expect("running");
    assert!(!running.reload_config(), "the broken file is refused");
    let kept = campaigns(new_token).await;
    assert_eq!(kept.status, 200);
    relay.stop().await;
}
both_stores!(http_requests_after_a_reload_see_the_new_configuration);

/// The messages of `serve`'s log from `mark` on, each line decoded (the log
/// is JSON when stdout is a file).
fn logged_messages(s: &Serve, mark: usize) -> Vec<String> {
    s.log_text()[mark..]
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["fields"]["message"].as_str().map(str::to_owned))
        .collect()
}

/// Files that `serve` reads beyond the TOML and cannot load (a DKIM key
/// that is PEM but not a key, a TLS certificate that is not one) fail
/// `check-config`, `serve`'s start and a reload alike, with the same lines.
async fn a_file_that_does_not_load_fails_check_config_start_and_reload_alike() {
    let s = Serve::start("", "").await;
    let dir = s.config.parent().expect("dir").to_owned();
    std::fs::write(
        dir.join("dkim.pem"),
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .expect("write key");
    std::fs::write(dir.join("cert.pem"), "not a certificate\n").expect("write cert");
    std::fs::write(dir.join("key.pem"), "not a key\n").expect("write key");
    let mark = s.log_text().len();
    s.reload(
        |t| {
            t.replacen(
                "[smtp]\n",
                "[smtp]\ntls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\n",
                1,
            ) + "\n[dkim]\ndomain = \"example.com\"\nselector = \"relay\"\nprivate_key = \"dkim.pem\"\n"
        },
        "configuration not reloaded",
    )
    .await;
    let reload = logged_messages(&s, mark);

    let check = std::process::Command::new(env!("CARGO_BIN_EXE_consent-relay"))
        .args(["check-config", "--config"])
        .arg(&s.config)
        .output()
        .expect("run check-config");
    assert_eq!(check.status.code(), Some(78));
    let check = String::from_utf8_lossy(&check.stderr).into_owned();
    let config = s.config.display().to_string();
    let expected: Vec<&str> = check
        .lines()
        .map(|l| l.trim_start_matches("consent-relay: "))
        .filter(|l| l.starts_with(&config))
        .collect();
    assert_eq!(expected.len(), 2, "{check}");
    assert!(
        expected[0].starts_with(&format!("{config}: smtp.tls_cert: ")),
        "{check}"
    );
    assert!(
        expected[1].starts_with(&format!("{config}: dkim.private_key: ")),
        "{check}"
    );

    let start = std::process::Command::new(env!("CARGO_BIN_EXE_consent-relay"))
        .args(["serve", "--config"])
        .arg(&s.config)
        .current_dir(&dir)
        .stdout(Stdio::null())
        .output()
        .expect("run serve");
    assert!(!start.status.success());
    let start = String::from_utf8_lossy(&start.stderr).into_owned();
    for line in &expected {
        assert!(
            start.contains(line),
            "serve's start: {start}\nexpected: {line}"
        );
        assert!(
            reload.iter().any(|m| m == line),
            "the reload: {reload:?}\nexpected: {line}"
        );
    }
    s.stop().await;
}
both_stores!(a_file_that_does_not_load_fails_check_config_start_and_reload_alike);
