//! End to end: STARTTLS (RFC 3207), the implicit-TLS listener, AUTH PLAIN
//! and LOGIN (RFC 4954), and `hash-password`. Certificates come from rcgen
//! in the test (a CA and a leaf for relay.test); the client is tokio-rustls
//! trusting only that CA.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::both_stores;
use crate::common;
use crate::common::relay::{Client, TestRelay, config_text, message, password_hash as hash};
use crate::common::sink::Sink;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

const USER: &str = "crm";
const PASSWORD: &str = "correct horse battery staple";

/// A test CA, and a client that trusts only it.
struct TestCa {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
    connector: TlsConnector,
}

impl TestCa {
    fn new() -> TestCa {
        let ca_key = rcgen::KeyPair::generate().expect("ca key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "consent-relay test CA");
        let issuer = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("ca");
        let mut roots = rustls::RootCertStore::empty();
        roots.add(issuer.der().clone()).expect("trust the test CA");
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        // Every handshake in full: a resumed session reports the certificate
        // of the session it resumes, not the one the relay serves now.
        config.resumption = rustls::client::Resumption::disabled();
        TestCa {
            issuer,
            connector: TlsConnector::from(Arc::new(config)),
        }
    }

    /// A new key and server certificate for relay.test, written to
    /// `dir`/cert.pem and key.pem; returns the certificate.
    fn issue(&self, dir: &std::path::Path) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().expect("server key");
        let params = rcgen::CertificateParams::new(vec!["relay.test".to_owned()]).expect("params");
        let cert = params.signed_by(&key, &self.issuer).expect("server cert");
        std::fs::write(dir.join("cert.pem"), cert.pem()).expect("write cert");
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).expect("write key");
        cert.der().clone()
    }
}

/// A CA and a server certificate for relay.test signed by it; the files
/// are written to `dir`. Returns the client's connector.
pub(crate) fn certificates(dir: &std::path::Path) -> TlsConnector {
    let ca = TestCa::new();
    ca.issue(dir);
    ca.connector
}

struct Tls {
    relay: TestRelay,
    connector: TlsConnector,
    sink: Sink,
}

/// A relay with a certificate, one user, an implicit-TLS listener, and
/// `smtp_extra` (e.g. allowed_networks).
async fn start(smtp_extra: &str) -> Tls {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let connector = certificates(dir.path());
    let extra = format!(
        "tls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\nlisten_tls = \"127.0.0.1:0\"\n{smtp_extra}\n\
         [[smtp.user]]\nname = \"{USER}\"\npassword_hash = \"{}\"\n",
        hash(PASSWORD)
    );
    let text = config_text(dir.path(), &format!("smtp://{}", sink.addr()), &extra, "");
    let relay = TestRelay::start_with(dir, &text).await;
    Tls {
        relay,
        connector,
        sink,
    }
}

/// The tests' raw client (tests/common/relay.rs) over TCP or TLS.
type Conn<S> = Client<S>;

/// Sends one message to a deliverable recipient; expects 250.
async fn send_message<S: AsyncRead + AsyncWrite + Unpin>(c: &mut Conn<S>, rcpt: &str) {
    c.cmd("MAIL FROM:<crm@example.com>", "250").await;
    c.cmd(&format!("RCPT TO:<{rcpt}>"), "250").await;
    c.cmd("DATA", "354").await;
    c.write(message("prospecting", "hello over TLS").as_bytes())
        .await;
    c.cmd(".", "250 2.0.0 queued as").await;
}

pub(crate) type TlsConn = Conn<tokio_rustls::client::TlsStream<TcpStream>>;

async fn handshake(connector: &TlsConnector, tcp: TcpStream) -> TlsConn {
    let name = ServerName::try_from("relay.test").expect("name");
    let tls = connector
        .connect(name, tcp)
        .await
        .expect("TLS handshake with the relay");
    Conn::new(tls)
}

/// Connects, EHLO, STARTTLS, handshake: a TLS session before its EHLO.
async fn starttls(t: &Tls) -> TlsConn {
    starttls_at(t.relay.addr, &t.connector).await
}

pub(crate) async fn starttls_at(addr: SocketAddr, connector: &TlsConnector) -> TlsConn {
    let mut c = Conn::new(TcpStream::connect(addr).await.expect("connect"));
    c.expect("220").await;
    let ehlo = c.cmd("EHLO client.test", "250").await;
    assert!(ehlo.contains("250-STARTTLS\r\n"), "{ehlo}");
    c.cmd("STARTTLS", "220 2.0.0 ready to start TLS").await;
    assert_eq!(c.buffered(), 0);
    handshake(connector, c.stream).await
}

/// The certificate the relay presented in this session.
fn served(c: &TlsConn) -> CertificateDer<'static> {
    c.stream
        .get_ref()
        .1
        .peer_certificates()
        .expect("a certificate")[0]
        .clone()
}

fn tls_addr(t: &Tls) -> SocketAddr {
    t.relay
        .running
        .as_ref()
        .expect("running")
        .smtp_tls_addr
        .expect("listen_tls is bound")
}

fn plain(user: &str, password: &str) -> String {
    BASE64.encode(format!("\0{user}\0{password}"))
}

async fn starttls_then_ehlo_then_a_message_is_delivered() {
    let t = start("").await;
    let mut c = starttls(&t).await;
    // State is reset by the handshake: EHLO is required again.
    c.cmd("MAIL FROM:<crm@example.com>", "503 5.5.1").await;
    let ehlo = c.cmd("EHLO client.test", "250").await;
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    assert!(ehlo.contains("AUTH PLAIN LOGIN"), "{ehlo}");
    c.cmd("STARTTLS", "503 5.5.1").await;
    send_message(&mut c, "ann@example.net").await;
    c.cmd("QUIT", "221").await;
    let got = t.sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].rcpt_to, ["ann@example.net"]);
    let data = String::from_utf8_lossy(&got[0].data);
    assert!(
        data.contains("hello over TLS") && data.contains("with ESMTPS id"),
        "{data}"
    );
}
both_stores!(starttls_then_ehlo_then_a_message_is_delivered);

async fn commands_pipelined_after_starttls_are_never_run() {
    let t = start("").await;
    let mut c = Conn::new(TcpStream::connect(t.relay.addr).await.expect("connect"));
    c.expect("220").await;
    c.cmd("EHLO client.test", "250").await;
    // The injected MAIL would run as if it came over TLS (CVE-2011-0411).
    c.write(b"STARTTLS\r\nMAIL FROM:<mallory@example.com>\r\n")
        .await;
    let first = c.read_reply().await;
    // Normally both lines arrive in one read: refused, session dropped. If
    // they were split, the MAIL bytes reach the handshake and break it.
    assert!(
        first.starts_with("554 5.5.0") || first.starts_with("220 2.0.0"),
        "{first:?}"
    );
    let rest = c.read_reply().await;
    assert_eq!(rest, "", "nothing more is answered");
}
both_stores!(commands_pipelined_after_starttls_are_never_run);

async fn auth_before_tls_is_refused_with_538() {
    let t = start("").await;
    let mut c = Conn::new(TcpStream::connect(t.relay.addr).await.expect("connect"));
    c.expect("220").await;
    let ehlo = c.cmd("EHLO client.test", "250").await;
    assert!(
        !ehlo.contains("AUTH"),
        "AUTH is not offered in clear: {ehlo}"
    );
    c.cmd(
        &format!("AUTH PLAIN {}", plain(USER, PASSWORD)),
        "538 5.7.11",
    )
    .await;
    c.cmd("AUTH LOGIN", "538 5.7.11").await;
}
both_stores!(auth_before_tls_is_refused_with_538);

async fn auth_plain_with_wrong_credentials_is_535_then_421() {
    let t = start("").await;
    let mut c = starttls(&t).await;
    c.cmd("EHLO client.test", "250").await;
    // A wrong password and an unknown user get the same answer.
    c.cmd(
        &format!("AUTH PLAIN {}", plain(USER, "wrong")),
        "535 5.7.8 authentication credentials invalid",
    )
    .await;
    c.cmd(
        &format!("AUTH PLAIN {}", plain("nobody", PASSWORD)),
        "535 5.7.8 authentication credentials invalid",
    )
    .await;
    c.cmd(
        &format!("AUTH PLAIN {}", plain(USER, "")),
        "535 5.7.8 authentication credentials invalid",
    )
    .await;
    c.expect("421 4.7.0").await;
    assert_eq!(c.read_reply().await, "", "the session is closed");
}
both_stores!(auth_plain_with_wrong_credentials_is_535_then_421);

async fn a_client_outside_allowed_networks_sends_after_auth() {
    let t = start("allowed_networks = [\"10.0.0.0/8\"]").await;
    let mut c = starttls(&t).await;
    c.cmd("EHLO client.test", "250").await;
    c.cmd("MAIL FROM:<crm@example.com>", "530 5.7.0").await;
    // PLAIN without an initial response: the credentials follow a 334.
    c.cmd("AUTH PLAIN", "334").await;
    c.cmd(&plain(USER, PASSWORD), "235 2.7.0").await;
    c.cmd(&format!("AUTH PLAIN {}", plain(USER, PASSWORD)), "503")
        .await;
    send_message(&mut c, "bob@example.net").await;
    let got = t.sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].rcpt_to, ["bob@example.net"]);
    // The trace header says the client used TLS and authenticated (RFC 3848).
    assert!(
        String::from_utf8_lossy(&got[0].data).contains("with ESMTPSA"),
        "{}",
        String::from_utf8_lossy(&got[0].data)
    );
    // The authenticated user is recorded with the message.
    let mut db = common::backend::connect(t.relay.dir.path()).await;
    let users: Vec<Option<String>> = sqlx::query_scalar("SELECT auth_user FROM messages")
        .fetch_all(&mut db)
        .await
        .expect("query");
    assert_eq!(users, [Some(USER.to_owned())]);
}
both_stores!(a_client_outside_allowed_networks_sends_after_auth);

async fn auth_login_lets_a_client_send_and_a_star_cancels_with_501() {
    let t = start("allowed_networks = [\"10.0.0.0/8\"]").await;
    let mut c = starttls(&t).await;
    c.cmd("EHLO client.test", "250").await;
    c.cmd("AUTH LOGIN", "334 VXNlcm5hbWU6").await;
    c.cmd(&BASE64.encode(USER), "334 UGFzc3dvcmQ6").await;
    c.cmd(&BASE64.encode(PASSWORD), "235 2.7.0").await;
    send_message(&mut c, "carl@example.net").await;
    // Cancelling with "*" is answered 501, not counted as a failure.
    let mut c = starttls(&t).await;
    c.cmd("EHLO client.test", "250").await;
    c.cmd("AUTH LOGIN", "334").await;
    c.cmd("*", "501 5.0.0").await;
    c.cmd("AUTH CRAM-MD5", "504 5.5.4").await;
}
both_stores!(auth_login_lets_a_client_send_and_a_star_cancels_with_501);

async fn implicit_tls_listener_offers_auth_without_starttls_and_delivers() {
    let t = start("").await;
    let tcp = TcpStream::connect(tls_addr(&t)).await.expect("connect");
    let mut c = handshake(&t.connector, tcp).await;
    c.expect("220 relay.test ESMTP").await;
    let ehlo = c.cmd("EHLO client.test", "250").await;
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    assert!(ehlo.contains("AUTH PLAIN LOGIN"), "{ehlo}");
    send_message(&mut c, "dan@example.net").await;
    c.cmd("QUIT", "221").await;
    let got = t.sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].rcpt_to, ["dan@example.net"]);
}
both_stores!(implicit_tls_listener_offers_auth_without_starttls_and_delivers);

async fn a_bad_certificate_stops_the_start_naming_the_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("cert.pem"), "not a certificate\n").expect("write");
    std::fs::write(dir.path().join("key.pem"), "not a key\n").expect("write");
    let text = config_text(
        dir.path(),
        "smtp://127.0.0.1:9",
        "tls_cert = \"cert.pem\"\ntls_key = \"key.pem\"",
        "",
    );
    let config = common::relay::write_config(dir.path(), &text);
    let Err(e) = consent_relay::server::start(Arc::new(config)).await else {
        panic!("the relay started with a bad certificate");
    };
    let e = format!("{e:#}");
    assert!(e.contains("smtp.tls_cert"), "{e}");
}
both_stores!(a_bad_certificate_stops_the_start_naming_the_key);

#[test]
fn hash_password_prints_a_verifiable_argon2id_hash() {
    use argon2::PasswordVerifier as _;
    use std::io::Write as _;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_consent-relay"))
        .arg("hash-password")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run consent-relay");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{PASSWORD}\nignored second line\n").as_bytes())
        .expect("write password");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{out:?}");
    let phc = String::from_utf8(out.stdout).expect("utf-8");
    let phc = phc.trim_end();
    assert!(phc.starts_with("$argon2id$"), "{phc}");
    let argon2 = argon2::Argon2::default();
    assert!(argon2.verify_password(PASSWORD.as_bytes(), phc).is_ok());
    assert!(argon2.verify_password(b"wrong", phc).is_err());
}

async fn auth_in_clear_on_loopback_only_when_allowed() {
    let sink = Sink::start().await;
    let extra = format!(
        "allowed_networks = [\"10.0.0.0/8\"]\nallow_plain_auth_on_loopback = true\n\
         [[smtp.user]]\nname = \"{USER}\"\npassword_hash = \"{}\"\n",
        hash(PASSWORD)
    );
    let relay = TestRelay::start(sink.addr(), &extra, "").await;
    let mut c = Conn::new(TcpStream::connect(relay.addr).await.expect("connect"));
    c.expect("220").await;
    let ehlo = c.cmd("EHLO client.test", "250").await;
    assert!(!ehlo.contains("STARTTLS"), "no certificate: {ehlo}");
    assert!(ehlo.contains("AUTH PLAIN LOGIN"), "{ehlo}");
    c.cmd(
        &format!("AUTH PLAIN {}", plain(USER, PASSWORD)),
        "235 2.7.0",
    )
    .await;
    send_message(&mut c, "erin@example.net").await;
    let got = sink.wait_for(1, Duration::from_secs(10)).await;
    assert!(String::from_utf8_lossy(&got[0].data).contains("with ESMTPA id"));
}
both_stores!(auth_in_clear_on_loopback_only_when_allowed);

async fn an_outsider_on_the_implicit_tls_listener_is_refused_over_tls() {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let connector = certificates(dir.path());
    let extra = "tls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\nlisten_tls = \"127.0.0.1:0\"\n\
                 allowed_networks = [\"10.0.0.0/8\"]";
    let text = config_text(dir.path(), &format!("smtp://{}", sink.addr()), extra, "");
    let relay = TestRelay::start_with(dir, &text).await;
    let t = Tls {
        relay,
        connector,
        sink,
    };
    let tcp = TcpStream::connect(tls_addr(&t)).await.expect("connect");
    let mut c = handshake(&t.connector, tcp).await;
    c.expect("554 5.7.1").await;
}

#[tokio::test]
async fn help_lists_starttls_before_tls_and_auth_after() {
    let t = start("").await;
    let mut c = Conn::new(TcpStream::connect(t.relay.addr).await.expect("connect"));
    c.expect("220").await;
    c.cmd("EHLO client.test", "250").await;
    let help = c.cmd("HELP", "214").await;
    assert!(
        help.contains("STARTTLS") && !help.contains("AUTH"),
        "{help}"
    );
    let mut c = starttls(&t).await;
    c.cmd("EHLO client.test", "250").await;
    let help = c.cmd("HELP", "214").await;
    assert!(
        help.contains("AUTH") && !help.contains("STARTTLS"),
        "{help}"
    );
}

/// A client that connects and never starts the handshake is dropped after
/// `tls_handshake_timeout`, not after the 5-minute command timeout.
#[tokio::test]
async fn a_stalled_tls_handshake_is_cut_by_its_own_timeout() {
    let t = start("tls_handshake_timeout = \"300ms\"").await;
    let mut c = Conn::new(TcpStream::connect(tls_addr(&t)).await.expect("connect"));
    assert!(c.closed().await, "implicit TLS: still open");
    let mut c = Conn::new(TcpStream::connect(t.relay.addr).await.expect("connect"));
    c.expect("220").await;
    c.cmd("EHLO client.test", "250").await;
    c.cmd("STARTTLS", "220 2.0.0").await;
    assert!(c.closed().await, "after STARTTLS: still open");
    // A prompt handshake is not affected.
    let mut c = starttls(&t).await;
    c.cmd("EHLO client.test", "250").await;
}

/// The real binary: SIGHUP re-reads tls_cert/tls_key. New sessions get the
/// new certificate, an open session goes on, and a broken file leaves the
/// certificate in use with an error in the log.
#[tokio::test]
async fn sighup_reloads_the_certificate_without_dropping_sessions() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new();
    let cert_a = ca.issue(dir.path());
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        l.local_addr().expect("addr")
    };
    // The upstream is down: accepted messages just wait in the queue.
    let text = config_text(
        dir.path(),
        "smtp://127.0.0.1:9",
        "tls_cert = \"cert.pem\"\ntls_key = \"key.pem\"",
        "",
    )
    .replacen(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"{addr}\""),
        1,
    );
    let config = dir.path().join("consent-relay.toml");
    std::fs::write(&config, text).expect("write config");
    let log_path = dir.path().join("serve.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_consent-relay"))
        .args(["serve", "--config"])
        .arg(&config)
        .current_dir(dir.path())
        .env("RUST_LOG", "info")
        .stdout(log)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn serve");
    let log_has = |what: &str| {
        let what = what.to_owned();
        let log_path = log_path.clone();
        async move {
            for _ in 0..200 {
                if std::fs::read_to_string(&log_path).is_ok_and(|l| l.contains(&what)) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            panic!("the log never said {what:?}");
        }
    };
    let hup = || {
        let ok = std::process::Command::new("kill")
            .args(["-HUP", &child.id().to_string()])
            .status()
            .expect("kill -HUP");
        assert!(ok.success());
    };
    log_has("consent-relay started").await;

    let mut open = starttls_at(addr, &ca.connector).await;
    assert_eq!(served(&open), cert_a);
    open.cmd("EHLO client.test", "250").await;

    let cert_b = ca.issue(dir.path());
    assert_ne!(cert_a, cert_b);
    hup();
    log_has("tls certificate reloaded").await;
    let mut c = starttls_at(addr, &ca.connector).await;
    assert_eq!(served(&c), cert_b, "a new session gets the new certificate");
    c.cmd("EHLO client.test", "250").await;
    send_message(&mut c, "fay@example.net").await;
    // The session opened before the reload goes on with its certificate.
    send_message(&mut open, "gus@example.net").await;
    open.cmd("QUIT", "221").await;

    std::fs::write(
        dir.path().join("cert.pem"),
        "-----BEGIN CERTIFICATE-----\nbroken\n",
    )
    .expect("break the certificate");
    hup();
    log_has("tls certificate not reloaded").await;
    let c = starttls_at(addr, &ca.connector).await;
    assert_eq!(served(&c), cert_b, "the certificate in use stays");
    let text = std::fs::read_to_string(&log_path).expect("log");
    assert!(
        text.contains("smtp.tls_cert"),
        "the error names the key: {text}"
    );

    let ok = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(ok.success());
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status:?}");
}
both_stores!(an_outsider_on_the_implicit_tls_listener_is_refused_over_tls);
