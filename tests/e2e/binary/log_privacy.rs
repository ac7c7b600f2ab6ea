//! End to end with the real binary: its log lines name a recipient by the
//! keyed hash `consent-relay log-hash` prints, and mask the address in the
//! upstream's reply, unless `[log] recipients = "clear"`. The upstream
//! refuses the copy with Postfix's wording, which quotes the address.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::relay::{Client, config_text, message};
use crate::common::sink::{Fault, Sink};

const BIN: &str = env!("CARGO_BIN_EXE_consent-relay");
const ERIN: &str = "erin@example.net";

fn write_config(dir: &Path, upstream: SocketAddr, log: &str) -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    drop(l);
    let text = config_text(dir, &format!("smtp://{upstream}"), "", "").replace(
        "listen = \"127.0.0.1:0\"\nhostname",
        &format!("listen = \"{addr}\"\nhostname"),
    ) + log;
    std::fs::write(dir.join("consent-relay.toml"), text).expect("write config");
    addr
}

/// The log of `serve` (JSON lines on stdout) from the start until the
/// bounce of a copy to Erin, refused by the upstream, reached the sender.
async fn log_of_a_refused_copy(log: &str) -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let sink = Sink::start().await;
    sink.script([Fault::Rcpt(
        550,
        "5.1.1 <erin@example.net>: Recipient address rejected: User unknown in local recipient table",
    )]);
    let addr = write_config(dir.path(), sink.addr(), log);
    let child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(dir.path().join("consent-relay.toml"))
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let mut connected = None;
    for _ in 0..400 {
        if let Ok(s) = tokio::net::TcpStream::connect(addr).await {
            connected = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let mut c = Client::new(connected.expect("the relay listens"));
    c.expect("220").await;
    c.cmd("EHLO client.test", "250").await;
    c.cmd("MAIL FROM:<crm@example.com>", "250").await;
    c.cmd(&format!("RCPT TO:<{ERIN}>"), "250").await;
    c.cmd("DATA", "354").await;
    c.write(message("prospecting", "hello").as_bytes()).await;
    c.write(b".\r\n").await;
    c.expect("250").await;
    // The attempt is logged before its bounce exists.
    let got = sink.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(got[0].rcpt_to, ["crm@example.com"]);
    let pid = child.id().to_string();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    let out = child.wait_with_output().expect("wait for serve");
    (String::from_utf8_lossy(&out.stdout).into_owned(), dir)
}

fn log_hash(dir: &Path, email: &str) -> String {
    let out = Command::new(BIN)
        .args(["log-hash", email, "--config"])
        .arg(dir.join("consent-relay.toml"))
        .output()
        .expect("run log-hash");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The `delivery attempt` line about the copy to the first recipient.
fn refused_attempt(log: &str) -> serde_json::Value {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["fields"]["message"] == "delivery attempt" && l["fields"]["status"] == "failed")
        .unwrap_or_else(|| panic!("no refused attempt in the log:\n{log}"))
}

#[tokio::test]
async fn logs_name_recipients_by_hash_by_default() {
    let (log, dir) = log_of_a_refused_copy("").await;
    assert!(!log.to_lowercase().contains(ERIN), "{log}");
    let line = refused_attempt(&log);
    let hash = log_hash(dir.path(), ERIN);
    assert_eq!(hash.len(), 16, "{hash:?}");
    assert_eq!(line["fields"]["recipient"], hash.as_str(), "{line}");
    // Any spelling of the address gives the same hash.
    assert_eq!(log_hash(dir.path(), "<Erin@Example.NET>"), hash);
    assert_eq!(
        line["fields"]["reply"],
        "550 5.1.1 <recipient>: Recipient address rejected: User unknown in local recipient table"
    );
}

#[tokio::test]
async fn logs_name_recipients_in_clear_when_asked() {
    let (log, _dir) = log_of_a_refused_copy("\n[log]\nrecipients = \"clear\"\n").await;
    let line = refused_attempt(&log);
    assert_eq!(line["fields"]["recipient"], ERIN, "{line}");
    assert_eq!(
        line["fields"]["reply"],
        "550 5.1.1 <erin@example.net>: Recipient address rejected: User unknown in local recipient table"
    );
}
