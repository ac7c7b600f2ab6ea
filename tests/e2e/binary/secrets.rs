//! End to end with the real binary: secrets never appear in its output.
//! The config holds a signing key, an admin token digest, an upstream
//! password file, a webhook secret file, a DKIM key and an SMTP user; the
//! test drives a failing and a successful AUTH, an API call with a wrong
//! and a right token, and a delivery with upstream AUTH, all with logging
//! at debug level, then looks for every secret (raw, base64, and the AUTH
//! PLAIN forms) in stdout and stderr.
//!
//! The DKIM domain does not align with the From of the mail: the relay
//! says so in its log at signing time (and still signs).

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::relay::{CAMPAIGNS, Client, message};
use crate::common::sink::{Sink, SinkOptions};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::Digest as _;

const BIN: &str = env!("CARGO_BIN_EXE_consent-relay");

const SIGNING_KEY: &str = "signing-SECRET-4c1d9e7a2b6f80e3d5c7a9b1";
const ADMIN_TOKEN: &str = "admin-SECRET-93be1f0c7d2a5e8b6c4f";
const WRONG_ADMIN_TOKEN: &str = "admin-WRONG-SECRET-5a7c9e1b3d";
const UPSTREAM_USER: &str = "relay-upstream";
const UPSTREAM_PASSWORD: &str = "upstream-SECRET-7e2c4a6b8d0f1e3a";
const WEBHOOK_SECRET: &str = "webhook-SECRET-2b4d6f8a0c1e3a5c7e9b";
const SMTP_USER: &str = "crm";
const SMTP_PASSWORD: &str = "smtp-SECRET-6d8f0b2d4f6a8c0e";
const WRONG_SMTP_PASSWORD: &str = "smtp-WRONG-SECRET-1f3b5d7f9a";

fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

/// An argon2id hash with small parameters (the relay verifies with the
/// parameters the hash names): the debug binary on a loaded machine stays
/// well within the client's reply timeout.
fn argon2_hash(password: &str) -> String {
    use argon2::PasswordHasher as _;
    let params = argon2::Params::new(64, 1, 1, None).expect("params");
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password_with_salt(password.as_bytes(), b"secrets-test-salt")
        .expect("hash")
        .to_string()
}

fn write_config(dir: &Path, smtp: SocketAddr, http: SocketAddr, upstream: SocketAddr) -> String {
    std::fs::write(
        dir.join("upstream.password"),
        format!("{UPSTREAM_PASSWORD}\n"),
    )
    .expect("write");
    std::fs::write(dir.join("webhook.secret"), format!("{WEBHOOK_SECRET}\n")).expect("write");
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("dkim key");
    let dkim_pem = key.serialize_pem();
    std::fs::write(dir.join("dkim.pem"), &dkim_pem).expect("write");
    let text = format!(
        r#"
[smtp]
listen = "{smtp}"
hostname = "relay.example.org"
allowed_networks = []
allow_plain_auth_on_loopback = true
[[smtp.user]]
name = "{SMTP_USER}"
password_hash = "{hash}"

[upstream]
url = "smtp://{upstream}"
tls = "none"
username = "{UPSTREAM_USER}"
password_file = "upstream.password"
timeout = "5s"

[http]
listen = "{http}"
public_url = "http://{http}"
admin_token_sha256 = ["{digest}"]

[signing]
current = "k1"
keys = {{ k1 = "{key}" }}

[store]
url = "sqlite://{db}"

[queue]
retry_after = ["1s"]

[dkim]
domain = "example.org"
selector = "relay"
private_key = "dkim.pem"

[webhook]
url = "http://127.0.0.1:9/hooks/consent"
secret_file = "webhook.secret"
{CAMPAIGNS}
"#,
        hash = argon2_hash(SMTP_PASSWORD),
        digest = hex(&sha2::Sha256::digest(ADMIN_TOKEN.as_bytes())),
        key = BASE64.encode(SIGNING_KEY),
        db = dir.join("relay.db").display(),
    );
    std::fs::write(dir.join("consent-relay.toml"), text).expect("write config");
    dkim_pem
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn wait_listening(addr: SocketAddr) {
    for _ in 0..400 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("relay did not listen on {addr}");
}

struct KillOnDrop(Option<std::process::Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn plain(user: &str, password: &str) -> String {
    BASE64.encode(format!("\0{user}\0{password}"))
}

#[tokio::test]
async fn no_secret_appears_in_the_logs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sink = Sink::start_with(
        "127.0.0.1:0".parse().expect("addr"),
        SinkOptions {
            auth: Some((UPSTREAM_USER.into(), UPSTREAM_PASSWORD.into())),
            ..SinkOptions::default()
        },
    )
    .await;
    let (smtp, http) = (free_port(), free_port());
    let dkim_pem = write_config(dir.path(), smtp, http, sink.addr());
    let stdout = std::fs::File::create(dir.path().join("stdout.log")).expect("log file");
    let stderr = std::fs::File::create(dir.path().join("stderr.log")).expect("log file");
    let child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(dir.path().join("consent-relay.toml"))
        .current_dir(dir.path())
        .env("RUST_LOG", "debug")
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr))
        .spawn()
        .expect("spawn serve");
    // Killed if the test fails before its SIGTERM.
    let mut serve = KillOnDrop(Some(child));
    wait_listening(smtp).await;
    wait_listening(http).await;

    // SMTP AUTH: wrong password (PLAIN), then LOGIN with the right one.
    let mut c = Client::connect(smtp).await;
    c.expect("220").await;
    c.cmd("EHLO crm.test", "250").await;
    c.cmd(
        &format!("AUTH PLAIN {}", plain(SMTP_USER, WRONG_SMTP_PASSWORD)),
        "535",
    )
    .await;
    c.cmd("AUTH LOGIN", "334").await;
    c.cmd(&BASE64.encode(SMTP_USER), "334").await;
    c.cmd(&BASE64.encode(SMTP_PASSWORD), "235").await;
    c.cmd("MAIL FROM:<crm@example.com>", "250").await;
    c.cmd("RCPT TO:<zoe@example.net>", "250").await;
    c.cmd("DATA", "354").await;
    c.write(message("prospecting", "Hello").as_bytes()).await;
    c.write(b".\r\n").await;
    let reply = c.read_reply().await;
    assert!(reply.starts_with("250"), "{reply}");
    c.cmd("QUIT", "221").await;

    // The copy goes upstream with AUTH.
    let got = sink.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(got[0].auth_user.as_deref(), Some(UPSTREAM_USER));
    assert!(
        String::from_utf8_lossy(&got[0].data).contains("DKIM-Signature:"),
        "the copy is signed even though its From does not align"
    );

    // The API with a wrong and a right token.
    let api = format!("http://{http}/api/v1/campaigns");
    let client = reqwest::Client::new();
    let wrong = client
        .get(&api)
        .bearer_auth(WRONG_ADMIN_TOKEN)
        .send()
        .await
        .expect("api");
    assert_eq!(wrong.status(), reqwest::StatusCode::UNAUTHORIZED);
    let right = client
        .get(&api)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("api");
    assert_eq!(right.status(), reqwest::StatusCode::OK);

    // SIGTERM: drains and exits; every log line is written.
    let mut child = serve.0.take().expect("child");
    // SAFETY: kill(2) on the child this test spawned.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("wait");
    assert!(status.success(), "{status}");

    let out = std::fs::read_to_string(dir.path().join("stdout.log")).expect("stdout");
    let err = std::fs::read_to_string(dir.path().join("stderr.log")).expect("stderr");
    let logs = format!("{out}\n{err}");
    assert!(
        logs.contains("consent-relay started"),
        "the log was captured: {logs}"
    );
    assert!(
        logs.contains("does not align with dkim.domain"),
        "the misaligned From is logged when delivery reads the message: {logs}"
    );
    let dkim_body: String = dkim_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let mut secrets: Vec<(String, String)> = Vec::new();
    for (what, secret) in [
        ("signing key", SIGNING_KEY),
        ("admin token", ADMIN_TOKEN),
        ("wrong admin token", WRONG_ADMIN_TOKEN),
        ("upstream password", UPSTREAM_PASSWORD),
        ("webhook secret", WEBHOOK_SECRET),
        ("smtp password", SMTP_PASSWORD),
        ("wrong smtp password", WRONG_SMTP_PASSWORD),
    ] {
        secrets.push((what.into(), secret.into()));
        secrets.push((format!("{what} (base64)"), BASE64.encode(secret)));
    }
    secrets.push(("smtp AUTH PLAIN".into(), plain(SMTP_USER, SMTP_PASSWORD)));
    secrets.push((
        "wrong smtp AUTH PLAIN".into(),
        plain(SMTP_USER, WRONG_SMTP_PASSWORD),
    ));
    secrets.push((
        "upstream AUTH PLAIN".into(),
        plain(UPSTREAM_USER, UPSTREAM_PASSWORD),
    ));
    secrets.push(("dkim private key".into(), dkim_body));
    // The shared "SECRET" marker catches partial leaks too.
    secrets.push(("a secret marker".into(), "SECRET".into()));
    for (what, secret) in secrets {
        assert!(!logs.contains(&secret), "the {what} is in the logs");
    }
}
