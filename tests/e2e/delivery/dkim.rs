//! End to end: with `[dkim]` each copy leaves signed after rewriting, and
//! an independent verifier (dkimpy, fed the test key instead of DNS)
//! accepts the signature; `h=` covers the list headers and the feedback
//! headers (the relay's delivery header, `Feedback-ID`, `CFBL-*`). Keys are made by
//! the openssl CLI in the test: RSA 2048 and Ed25519.
//!
//! Needs `python3` with `dkimpy` and `pynacl` (for Ed25519), and `openssl`; when missing the tests say
//! "skipped", unless CONSENT_RELAY_REQUIRE_PEERS is set (CI), where they fail.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::both_stores;
use crate::common::relay::{TestRelay, config_text};
use crate::common::sink::Sink;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// Verifies a message read from stdin against the TXT record in argv[1].
const VERIFY: &str = r#"
import sys, dkim
txt = sys.argv[1].encode()
def dns(name, timeout=5):
    assert name == b"relay._domainkey.example.com.", name
    return txt
msg = sys.stdin.buffer.read()
sys.exit(0 if dkim.verify(msg, dnsfunc=dns) else 1)
"#;

/// True when the verifier and openssl are here; otherwise skips (or fails
/// under CONSENT_RELAY_REQUIRE_PEERS).
fn peers_present() -> bool {
    let ok = |cmd: &str, args: &[&str]| {
        Command::new(cmd)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let present = ok("python3", &["-c", "import dkim, nacl"]) && ok("openssl", &["version"]);
    if !present {
        assert!(
            std::env::var_os("CONSENT_RELAY_REQUIRE_PEERS").is_none(),
            "python3 with dkimpy and pynacl, or openssl, is missing (python3 -m pip install dkimpy pynacl)"
        );
        eprintln!("skipped: python3 with dkimpy, or openssl, is missing");
    }
    present
}

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl");
    assert!(out.status.success(), "openssl {args:?}: {out:?}");
    out.stdout
}

/// Writes a private key to `dir/dkim.pem`; returns the DNS TXT record.
fn key(dir: &Path, algorithm: &str) -> String {
    let path = dir.join("dkim.pem");
    let path = path.to_str().expect("utf-8 path");
    let gen_args: &[&str] = if algorithm == "rsa" {
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            path,
        ]
    } else {
        &["genpkey", "-algorithm", "ed25519", "-out", path]
    };
    openssl(gen_args);
    let spki = openssl(&["pkey", "-in", path, "-pubout", "-outform", "DER"]);
    if algorithm == "rsa" {
        format!("v=DKIM1; k=rsa; p={}", BASE64.encode(&spki))
    } else {
        // RFC 8463: p= is the raw 32-byte key, the tail of the SPKI.
        format!(
            "v=DKIM1; k=ed25519; p={}",
            BASE64.encode(&spki[spki.len() - 32..])
        )
    }
}

fn verify(message: &[u8], txt: &str) -> bool {
    let mut child = Command::new("python3")
        .args(["-c", VERIFY, txt])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3");
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(message).expect("write message");
    }
    let out = child.wait_with_output().expect("wait");
    if !out.status.success() {
        eprintln!("dkimpy: {}", String::from_utf8_lossy(&out.stderr));
    }
    out.status.success()
}

/// The tags of the first DKIM-Signature header, unfolded.
fn signature_tags(message: &str) -> String {
    let start = message
        .find("DKIM-Signature:")
        .expect("a DKIM-Signature header");
    let rest = &message[start..];
    let mut end = 0;
    for line in rest.split_inclusive("\r\n") {
        if end > 0 && !line.starts_with([' ', '\t']) {
            break;
        }
        end += line.len();
    }
    rest[..end].replace(['\r', '\n', '\t', ' '], "")
}

async fn signed_copy_verifies(algorithm: &str) {
    if !peers_present() {
        return;
    }
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let txt = key(dir.path(), algorithm);
    let mut text = config_text(dir.path(), &format!("smtp://{}", sink.addr()), "", "");
    text.push_str(
        "\n[dkim]\ndomain = \"example.com\"\nselector = \"relay\"\nprivate_key = \"dkim.pem\"\nexpire = \"7d\"\n\
         \n[complaints]\ncfbl_address = \"fbl@example.com\"\n",
    );
    let relay = TestRelay::start_with(dir, &text).await;
    let msg = "From: shop@example.com\r\nTo: ann@example.net\r\nSubject: News\r\n\
               Date: Thu, 26 Nov 2026 10:00:00 +0000\r\nMessage-ID: <n1@example.com>\r\n\
               X-Campaign: prospecting\r\nMIME-Version: 1.0\r\n\
               Content-Type: text/plain; charset=utf-8\r\n\r\n\
               Hello!\r\nUnsubscribe: [[UNSUBSCRIBE_URL]]\r\n";
    let r = relay.send(&["ann@example.net"], msg).await;
    assert!(r.contains("(1 delivered, 0 suppressed)"), "{r}");
    let got = sink.wait_for(1, Duration::from_secs(10)).await;
    let copy = &got[0].data;
    let text = String::from_utf8_lossy(copy);
    assert!(text.starts_with("DKIM-Signature:"), "{text}");
    assert!(text.contains("List-Unsubscribe-Post:"), "{text}");
    let tags = signature_tags(&text);
    let h = tags
        .split(';')
        .find_map(|t| t.strip_prefix("h="))
        .expect("h= tag")
        .to_ascii_lowercase();
    let names: Vec<&str> = h.split(':').collect();
    for name in [
        "from",
        "list-unsubscribe",
        "list-unsubscribe-post",
        "list-id",
        "x-consent-relay-delivery",
        "feedback-id",
        "cfbl-address",
        "cfbl-feedback-id",
    ] {
        // Present once, and over-signed: named once more than it occurs.
        assert!(
            names.iter().filter(|n| **n == name).count() >= 2,
            "{name} over-signed in h={h}"
        );
    }
    assert!(tags.contains("c=relaxed/relaxed"), "{tags}");
    assert!(
        tags.contains("d=example.com") && tags.contains("s=relay"),
        "{tags}"
    );
    assert!(tags.contains("x="), "expiry set: {tags}");
    assert!(verify(copy, &txt), "dkimpy verifies the copy:\n{text}");

    // Tampering with a signed list header breaks the signature.
    let tampered = text.replace(
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
        "List-Unsubscribe-Post: List-Unsubscribe=Two-Click",
    );
    assert_ne!(tampered, text);
    assert!(!verify(tampered.as_bytes(), &txt));
    // So does adding a second one (over-signing).
    let added = text.replacen(
        "List-Unsubscribe-Post:",
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\nList-Unsubscribe-Post:",
        1,
    );
    assert!(!verify(added.as_bytes(), &txt));
    // And changing which delivery the copy names, or adding a second name.
    let delivery = text
        .split("\r\n")
        .find(|l| l.starts_with("X-Consent-Relay-Delivery: b-"))
        .expect("the delivery header")
        .to_owned();
    let changed = text.replace(
        &delivery,
        "X-Consent-Relay-Delivery: b-aeaaaaaaaaabbeuv2fmsxbjr72de3ta",
    );
    assert_ne!(changed, text);
    assert!(!verify(changed.as_bytes(), &txt));
    let added = text.replacen(
        "CFBL-Feedback-ID:",
        "CFBL-Feedback-ID: b-aeaaaaaaaaabbeuv2fmsxbjr72de3ta\r\nCFBL-Feedback-ID:",
        1,
    );
    assert_ne!(added, text);
    assert!(!verify(added.as_bytes(), &txt));
}

async fn rsa_signed_copy_verifies_and_covers_the_list_headers() {
    signed_copy_verifies("rsa").await;
}
both_stores!(rsa_signed_copy_verifies_and_covers_the_list_headers);

async fn ed25519_signed_copy_verifies_and_covers_the_list_headers() {
    signed_copy_verifies("ed25519").await;
}
both_stores!(ed25519_signed_copy_verifies_and_covers_the_list_headers);

/// A 5,000-octet HTML line is re-encoded before signing: the signed copy
/// has no line over 998 octets and verifies.
async fn a_copy_with_a_re_encoded_long_line_verifies() {
    if !peers_present() {
        return;
    }
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let txt = key(dir.path(), "rsa");
    let mut text = config_text(dir.path(), &format!("smtp://{}", sink.addr()), "", "");
    text.push_str(
        "\n[dkim]\ndomain = \"example.com\"\nselector = \"relay\"\nprivate_key = \"dkim.pem\"\n",
    );
    let relay = TestRelay::start_with(dir, &text).await;
    let cells: String = (0..200)
        .map(|i| format!("<td style=\"padding:0\">{i}</td>"))
        .collect();
    let msg = format!(
        "From: shop@example.com\r\nTo: ann@example.net\r\nSubject: News\r\n\
         X-Campaign: prospecting\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/html; charset=utf-8\r\n\r\n\
         <html><body><table><tr>{cells}</tr></table></body></html>\r\n"
    );
    assert!(msg.lines().any(|l| l.len() > 5000));
    let r = relay.send(&["ann@example.net"], &msg).await;
    assert!(r.contains("(1 delivered, 0 suppressed)"), "{r}");
    let got = sink.wait_for(1, Duration::from_secs(10)).await;
    let copy = &got[0].data;
    assert!(copy.split(|&b| b == b'\n').all(|l| l.len() <= 999));
    let text = String::from_utf8_lossy(copy);
    assert!(text.starts_with("DKIM-Signature:"), "{text}");
    assert!(
        text.contains("Content-Transfer-Encoding: quoted-printable"),
        "{text}"
    );
    assert!(verify(copy, &txt), "dkimpy verifies the copy:\n{text}");
}
both_stores!(a_copy_with_a_re_encoded_long_line_verifies);

#[test]
fn check_config_refuses_an_unusable_dkim_key() {
    if !peers_present() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    // An RSA key of 1024 bits: PEM, readable, but too short to sign with.
    let path = dir.path().join("dkim.pem");
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:1024",
        "-out",
        path.to_str().expect("utf-8"),
    ]);
    let mut text = config_text(dir.path(), "smtp://127.0.0.1:9", "", "");
    text.push_str(
        "\n[dkim]\ndomain = \"example.com\"\nselector = \"relay\"\nprivate_key = \"dkim.pem\"\n",
    );
    let config = dir.path().join("consent-relay.toml");
    std::fs::write(&config, text).expect("write config");
    let out = Command::new(env!("CARGO_BIN_EXE_consent-relay"))
        .arg("check-config")
        .arg("--config")
        .arg(&config)
        .output()
        .expect("run check-config");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("dkim.private_key"), "{stderr}");
}
