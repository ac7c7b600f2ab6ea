//! End to end with the real binary: `serve` killed with SIGKILL right after
//! `250` loses nothing, SIGTERM drains and exits 0, and the command line
//! (`check-config`, `consent`, `log`, `queue`) reads and writes the same store.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::both_stores;
use crate::common;
use crate::common::relay::{Client, config_text, message};
use crate::common::sink::{ReservedPort, Sink};

const BIN: &str = env!("CARGO_BIN_EXE_consent-relay");

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("--config")
        .arg(dir.join("consent-relay.toml"))
        .current_dir(dir)
        .output()
        .expect("run consent-relay")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Writes a config whose SMTP listener is on a fixed free port (the binary
/// cannot tell the test an ephemeral one).
fn write_config(dir: &Path, upstream: &str) -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    // On PostgreSQL the next start (the same node name, the hostname)
    // takes a killed node's leases back once its name went stale (twice
    // [queue] node_heartbeat), or another node takes them once they expire.
    let queue_extra = if common::backend::on_postgres() {
        "lease = \"10s\""
    } else {
        ""
    };
    let text = config_text(dir, upstream, "", queue_extra).replace(
        "listen = \"127.0.0.1:0\"\nhostname",
        &format!("listen = \"{addr}\"\nhostname"),
    );
    std::fs::write(dir.join("consent-relay.toml"), text).unwrap();
    addr
}

fn spawn_serve(dir: &Path) -> Child {
    Command::new(BIN)
        .args(["serve", "--config"])
        .arg(dir.join("consent-relay.toml"))
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve")
}

async fn wait_listening(addr: SocketAddr) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("relay did not listen on {addr}");
}

/// Sends `n` messages to `per` recipients each over one session; returns the replies.
async fn send_many(addr: SocketAddr, n: usize, per: usize) -> Vec<String> {
    let mut c = Client::connect(addr).await;
    c.expect("220").await;
    c.cmd("EHLO client.test", "250").await;
    let mut replies = Vec::new();
    for i in 0..n {
        c.cmd("MAIL FROM:<crm@example.com>", "250").await;
        for j in 0..per {
            c.cmd(&format!("RCPT TO:<m{i}-r{j}@example.net>"), "250")
                .await;
        }
        c.cmd("DATA", "354").await;
        c.write(message("prospecting", &format!("message {i}")).as_bytes())
            .await;
        c.write(b".\r\n").await;
        replies.push(c.read_reply().await);
    }
    replies
}

async fn kill_9_right_after_250_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // The upstream is down while the relay accepts: every copy is still queued.
    let upstream = ReservedPort::new();
    let addr = write_config(dir.path(), &format!("smtp://{}", upstream.addr()));
    let mut child = spawn_serve(dir.path());
    wait_listening(addr).await;
    let replies = send_many(addr, 20, 3).await;
    assert!(
        replies.iter().all(|r| r.starts_with("250 2.0.0 queued as")),
        "{replies:?}"
    );
    child.kill().expect("SIGKILL");
    child.wait().unwrap();

    let sink = Sink::start_reserved(upstream).await;
    let mut child = spawn_serve(dir.path());
    let got = sink.wait_for(60, Duration::from_secs(30)).await;
    let mut rcpts: Vec<String> = got.iter().flat_map(|m| m.rcpt_to.clone()).collect();
    rcpts.sort();
    rcpts.dedup();
    assert_eq!(rcpts.len(), 60, "every accepted recipient copy arrives");
    child.kill().unwrap();
    child.wait().unwrap();
}
both_stores!(kill_9_right_after_250_loses_nothing);

async fn kill_9_during_delivery_then_restart_delivers_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start().await;
    let addr = write_config(dir.path(), &format!("smtp://{}", sink.addr()));
    let mut child = spawn_serve(dir.path());
    wait_listening(addr).await;
    let replies = send_many(addr, 40, 5).await;
    assert!(replies.iter().all(|r| r.starts_with("250")), "{replies:?}");
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    let mut child = spawn_serve(dir.path());
    let mut seen = std::collections::HashSet::new();
    for _ in 0..300 {
        seen = sink
            .messages()
            .iter()
            .flat_map(|m| m.rcpt_to.clone())
            .collect();
        if seen.len() == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen.len(), 200, "every accepted copy arrives at least once");
    // A send whose outcome was not recorded may repeat; nothing else does.
    assert!(
        sink.count() <= 400,
        "{} copies for 200 recipients",
        sink.count()
    );
    child.kill().unwrap();
    child.wait().unwrap();
}
both_stores!(kill_9_during_delivery_then_restart_delivers_the_rest);

async fn sigterm_drains_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start().await;
    let addr = write_config(dir.path(), &format!("smtp://{}", sink.addr()));
    let mut child = spawn_serve(dir.path());
    wait_listening(addr).await;
    send_many(addr, 3, 2).await;
    sink.wait_for(6, Duration::from_secs(10)).await;
    let mut idle = Client::connect(addr).await;
    idle.expect("220").await;
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let r = idle.read_reply().await;
    assert!(
        r.starts_with("421 4.3.2"),
        "idle session told to come back: {r:?}"
    );
    let mut exited = None;
    for _ in 0..200 {
        if let Some(s) = child.try_wait().unwrap() {
            exited = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = exited.expect("exits within 10 s");
    assert!(status.success(), "{status}");
}
both_stores!(sigterm_drains_and_exits_zero);

#[tokio::test]
async fn second_serve_on_the_same_sqlite_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start().await;
    let addr = write_config(dir.path(), &format!("smtp://{}", sink.addr()));
    let mut child = spawn_serve(dir.path());
    wait_listening(addr).await;
    let o = run(dir.path(), &["serve"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("in use by another consent-relay serve"),
        "{o:?}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

async fn cli_records_consent_that_the_relay_applies() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start().await;
    let addr = write_config(dir.path(), &format!("smtp://{}", sink.addr()));

    let o = run(dir.path(), &["check-config"]);
    assert!(o.status.success(), "{o:?}");
    assert!(stdout(&o).contains("OK (5 campaigns)"));

    let o = run(
        dir.path(),
        &[
            "consent",
            "grant",
            "Ann@Example.net",
            "--campaign",
            "newsletter",
            "--evidence",
            "signup form v3",
        ],
    );
    assert!(o.status.success(), "{o:?}");
    assert!(stdout(&o).contains("recorded grant of newsletter for ann@example.net"));
    let o = run(
        dir.path(),
        &["consent", "grant", "ann@example.net", "--campaign", "nope"],
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown campaign \"nope\""));

    let mut child = spawn_serve(dir.path());
    wait_listening(addr).await;
    let mut c = Client::connect(addr).await;
    c.expect("220").await;
    c.cmd("HELO client.test", "250").await;
    c.cmd("MAIL FROM:<crm@example.com>", "250").await;
    c.cmd("RCPT TO:<ann@example.net>", "250").await;
    c.cmd("RCPT TO:<bob@example.net>", "250").await;
    c.cmd("DATA", "354").await;
    c.write(message("newsletter", "news").as_bytes()).await;
    c.write(b".\r\n").await;
    c.expect("250 2.0.0 queued as").await;
    sink.wait_for(1, Duration::from_secs(10)).await;

    let o = run(dir.path(), &["log", "--campaign", "newsletter"]);
    let text = stdout(&o);
    assert!(
        text.contains("ann@example.net") && text.contains("granted"),
        "{text}"
    );
    assert!(
        text.contains("bob@example.net") && text.contains("no-consent"),
        "{text}"
    );
    let o = run(
        dir.path(),
        &["log", "--recipient", "BOB@example.net", "--json"],
    );
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["reason"], "no-consent");
    let o = run(dir.path(), &["log", "--since", "1h", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(rows.as_array().unwrap().len(), 2);

    let o = run(dir.path(), &["consent", "show", "ann@example.net"]);
    let text = stdout(&o);
    assert!(
        text.contains("newsletter") && text.contains("granted") && text.contains("signup form v3"),
        "{text}"
    );
    let o = run(dir.path(), &["queue", "--json"]);
    assert!(o.status.success());
    let o = run(
        dir.path(),
        &[
            "consent",
            "withdraw",
            "ann@example.net",
            "--campaign",
            "newsletter",
            "--source",
            "form",
        ],
    );
    assert!(o.status.success(), "{o:?}");
    child.kill().unwrap();
    child.wait().unwrap();
}
both_stores!(cli_records_consent_that_the_relay_applies);

#[test]
fn config_errors_name_the_key_and_exit_78() {
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(dir.path(), "smtp://127.0.0.1:25", "lisen = \"x\"", "")
        .replace("policy = \"opt-out\"", "policy = \"optout\"");
    std::fs::write(dir.path().join("consent-relay.toml"), text).unwrap();
    let o = run(dir.path(), &["check-config"]);
    assert_eq!(o.status.code(), Some(78), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("smtp.lisen"), "{err}");
    let o = Command::new(BIN)
        .args([
            "check-config",
            "--config",
            "/nonexistent/consent-relay.toml",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/consent-relay.toml"));
}

#[test]
fn shipped_example_config_passes_check_config() {
    let o = Command::new(BIN)
        .args([
            "check-config",
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config/consent-relay.toml"),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("example key"),
        "the example key is flagged"
    );
}

/// A CRM as a new user would try it: Python's smtplib against the real binary.
async fn python_smtplib_client_is_served() {
    if Command::new("python3").arg("--version").output().is_err() {
        panic!("python3 is needed for this test (CI installs it)");
    }
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start().await;
    let addr = write_config(dir.path(), &format!("smtp://{}", sink.addr()));
    let mut child = spawn_serve(dir.path());
    wait_listening(addr).await;
    let script = format!(
        r#"
import smtplib, sys
msg = "From: shop@example.com\r\nSubject: hi\r\nX-Campaign: prospecting\r\n\r\n.leading dot\r\nbye\r\n"
with smtplib.SMTP("127.0.0.1", {port}) as s:
    refused = s.sendmail("shop@example.com", ["ann@example.net", "bob@example.net"], msg)
    code, text = s.noop()
    print(refused, code)
try:
    with smtplib.SMTP("127.0.0.1", {port}) as s:
        s.sendmail("shop@example.com", ["ann@example.net"], msg.replace("prospecting", "nope"))
except smtplib.SMTPDataError as e:
    print("refused", e.smtp_code, e.smtp_error.decode())
"#,
        port = addr.port()
    );
    let out = tokio::process::Command::new("python3")
        .args(["-c", &script])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.contains("{} 250"), "{text}");
    assert!(
        text.contains("refused 550 5.7.1 message refused: unknown campaign \"nope\""),
        "{text}"
    );
    let got = sink.wait_for(2, Duration::from_secs(10)).await;
    assert!(String::from_utf8_lossy(&got[0].data).contains("\r\n\r\n.leading dot\r\nbye\r\n"));
    child.kill().unwrap();
    child.wait().unwrap();
}
both_stores!(python_smtplib_client_is_served);
