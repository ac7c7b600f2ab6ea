//! The real binary's log: every refused message gets one line `message
//! refused` with its reason (the 552 at `MAIL FROM ... SIZE=` and after
//! DATA, a line over `max_line_length`, NUL, a header block too large, an
//! 8-bit header without SMTPUTF8, a header that is not UTF-8, an unknown
//! campaign, which names the known ids), and the session's span says
//! `"tls":true` on every line after STARTTLS.

use std::time::Duration;

use super::reload::Serve;
use crate::common::relay::{Client, message};
use crate::smtp::tls::{TlsConn, certificates, starttls_at};

/// The `message refused` lines of the log, decoded.
fn refusals(s: &Serve) -> Vec<serde_json::Value> {
    s.log_text()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["fields"]["message"] == "message refused")
        .collect()
}

async fn refusals_when(s: &Serve, n: usize) -> Vec<serde_json::Value> {
    for _ in 0..400 {
        let found = refusals(s);
        if found.len() >= n {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("fewer than {n} refusals logged: {}", s.log_text());
}

/// One transaction; the reply to the final dot.
async fn refused<S>(c: &mut Client<S>, mail: &str, data: &[u8]) -> String
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    c.cmd(mail, "250").await;
    c.cmd("RCPT TO:<a@example.net>", "250").await;
    c.cmd("DATA", "354").await;
    c.write(data).await;
    c.cmd(".", "5").await
}

#[tokio::test]
async fn every_refused_message_is_logged_once_and_spans_say_tls_after_starttls() {
    let certs = tempfile::tempdir().expect("temp dir");
    let connector = certificates(certs.path());
    let smtp_extra = format!(
        "max_message_size = 20000\nmax_header_size = 1024\nmax_line_length = 5000\n\
         tls_cert = \"{}\"\ntls_key = \"{}\"",
        certs.path().join("cert.pem").display(),
        certs.path().join("key.pem").display()
    );
    let s = Serve::start(&smtp_extra, "").await;

    let mut c = s.greeted().await;
    c.cmd("MAIL FROM:<crm@example.com> SIZE=30000", "552 5.3.4")
        .await;
    let mail = "MAIL FROM:<crm@example.com>";
    let big = message("prospecting", &"z\r\n".repeat(8000));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (mail, big.into_bytes(), "552 5.3.4"),
        (
            mail,
            message("prospecting", &"y".repeat(5001)).into_bytes(),
            "550 5.6.0",
        ),
        (
            mail,
            message("prospecting", "a\0b").into_bytes(),
            "550 5.6.0",
        ),
        (
            mail,
            message("prospecting", "x")
                .replacen(
                    "Subject:",
                    &format!("X-Pad: {}\r\nSubject:", "p".repeat(1100)),
                    1,
                )
                .into_bytes(),
            "552 5.3.4",
        ),
        (
            mail,
            message("prospecting", "x")
                .replacen("Subject: News", "Subject: caf\u{e9}", 1)
                .into_bytes(),
            "550 5.6.7",
        ),
        (
            "MAIL FROM:<crm@example.com> SMTPUTF8",
            b"Subject: caf\xe9\r\nX-Campaign: prospecting\r\n\r\nx\r\n".to_vec(),
            "550 5.6.7",
        ),
        (mail, message("Nope", "x").into_bytes(), "550 5.7.1"),
    ];
    for (mail, data, code) in &cases {
        let r = refused(&mut c, mail, data).await;
        assert!(r.starts_with(code), "{code}: {r}");
    }
    c.cmd("QUIT", "221").await;

    // A session that did STARTTLS: its refusal says tls, as every line of it.
    let mut t: TlsConn = starttls_at(s.addr, &connector).await;
    t.cmd("EHLO client.test", "250").await;
    let r = refused(&mut t, mail, message("tls-probe", "x").as_bytes()).await;
    assert!(r.starts_with("550 5.7.1"), "{r}");
    t.cmd("QUIT", "221").await;

    let lines = refusals_when(&s, cases.len() + 2).await;
    assert_eq!(lines.len(), cases.len() + 2, "one line each: {lines:#?}");
    let reason = |v: &serde_json::Value| v["fields"]["reason"].as_str().unwrap_or("").to_owned();
    let tls = |v: &serde_json::Value| v["spans"][0]["tls"].as_bool();
    for (line, want) in lines.iter().zip([
        "SIZE= over max_message_size",
        "maximum message size",
        "longer than 5000 octets",
        "NUL octet",
        "header block exceeds",
        "8-bit octets in the header",
        "not valid UTF-8",
        "unknown campaign \"Nope\"",
        "unknown campaign \"tls-probe\"",
    ]) {
        assert!(reason(line).contains(want), "{want}: {line}");
    }
    for line in &lines[..lines.len() - 1] {
        assert_eq!(tls(line), Some(false), "{line}");
    }
    let last = &lines[lines.len() - 1];
    assert_eq!(tls(last), Some(true), "after STARTTLS: {last}");
    // The known ids are in the log line, never in the reply.
    for v in [&lines[lines.len() - 2], last] {
        assert_eq!(
            v["fields"]["known_campaigns"], "newsletter, prospecting, invoices, old, gone",
            "{v}"
        );
    }
    s.stop().await;
}
