//! End to end: `[webhook]` posts every consent event to a real HTTP
//! receiver on 127.0.0.1 (the "CRM" below), which checks each request's
//! signature and timestamp the way README "Webhooks" says, and answers as
//! the test tells it (500 to refuse). Events come from the API, the
//! one-click page, the real binary's `consent grant` and `import`, and
//! erasure.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use consent_relay::consent::Action;
use consent_relay::token::Purpose;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::both_stores;
use crate::common;
use crate::common::admin::{self, admin};
use crate::common::relay::{TestRelay, eventually};
use crate::common::sink::Sink;

const SECRET: &str = "webhook-secret-0123456789abcdef";

/// One request the CRM received with a valid signature.
#[derive(Debug, Clone)]
struct Attempt {
    id: i64,
    subject_id: String,
    /// What the CRM answered.
    status: u16,
    body: Vec<u8>,
    signature: String,
    /// Requests being answered when this one arrived, itself included.
    in_flight: usize,
}

#[derive(Default)]
struct CrmState {
    /// Requests still to refuse with 500, then 200.
    refuse_next: usize,
    /// Refuse every request with 500 while set.
    refuse_all: bool,
    attempts: Vec<Attempt>,
    /// Events accepted (answered 200) for the first time, in order.
    accepted: Vec<Value>,
    /// Requests refused for a bad signature or timestamp, with the reason.
    forged: Vec<String>,
    /// How long each answer takes (so that parallel requests overlap).
    delay: Duration,
    in_flight: usize,
}

/// A CRM's webhook endpoint, on its own listener; stops when dropped.
struct Crm {
    addr: SocketAddr,
    scheme: &'static str,
    state: Arc<Mutex<CrmState>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Crm {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Crm {
    async fn start() -> Crm {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind CRM");
        Crm::serve(listener, "http")
    }

    /// Over TLS, with a certificate for 127.0.0.1 from a CA made here,
    /// whose certificate is written to `ca_pem`.
    async fn start_tls(ca_pem: &std::path::Path) -> Crm {
        let ca_key = rcgen::KeyPair::generate().expect("ca key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("ca");
        std::fs::write(ca_pem, ca.pem()).expect("write CA");
        let key = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("params");
        let cert = params.signed_by(&key, &ca).expect("cert");
        let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .expect("server config");
        let listener = TlsListener {
            tcp: tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind CRM"),
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(tls)),
        };
        Crm::serve(listener, "https")
    }

    fn serve<L>(listener: L, scheme: &'static str) -> Crm
    where
        L: axum::serve::Listener<Addr = SocketAddr>,
    {
        let addr = listener.local_addr().expect("CRM address");
        let state = Arc::new(Mutex::new(CrmState::default()));
        let app = axum::Router::new()
            .route("/hooks/consent", axum::routing::post(receive))
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Crm {
            addr,
            scheme,
            state,
            task,
        }
    }

    fn url(&self) -> String {
        format!("{}://{}/hooks/consent", self.scheme, self.addr)
    }

    fn with<T>(&self, f: impl FnOnce(&mut CrmState) -> T) -> T {
        f(&mut self.state.lock().expect("CRM state"))
    }

    fn attempts(&self) -> Vec<Attempt> {
        self.with(|s| s.attempts.clone())
    }

    fn accepted(&self) -> Vec<Value> {
        self.with(|s| s.accepted.clone())
    }

    fn accepted_ids(&self) -> Vec<i64> {
        self.accepted()
            .iter()
            .map(|e| e["id"].as_i64().expect("id"))
            .collect()
    }

    async fn wait_accepted(&self, n: usize) {
        eventually(&format!("{n} events accepted by the CRM"), || async {
            self.with(|s| s.accepted.len() >= n)
        })
        .await;
    }
}

/// TLS on accept (a failed handshake is dropped, the next one accepted).
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

/// The receiver README "Webhooks" describes: the HMAC-SHA256 of the raw
/// body under the secret, compared in constant time, then a timestamp at
/// most 5 minutes old.
async fn receive(
    State(state): State<Arc<Mutex<CrmState>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let (delay, in_flight) = {
        let mut s = state.lock().expect("CRM state");
        s.in_flight += 1;
        (s.delay, s.in_flight)
    };
    tokio::time::sleep(delay).await;
    let mut s = state.lock().expect("CRM state");
    s.in_flight -= 1;
    let signature = headers
        .get("x-consent-relay-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let digest = signature
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok());
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(&body);
    if digest.is_none_or(|d| mac.verify_slice(&d).is_err()) {
        s.forged.push(format!("bad signature {signature:?}"));
        return StatusCode::UNAUTHORIZED;
    }
    let event: Value = serde_json::from_slice(&body).expect("JSON body");
    let now = consent_relay::time::now_ms() / 1000;
    let timestamp = event["timestamp"].as_i64().unwrap_or(0);
    if (now - timestamp).abs() > 300 {
        s.forged.push(format!("stale timestamp {timestamp}"));
        return StatusCode::UNAUTHORIZED;
    }
    if headers.get("content-type").and_then(|v| v.to_str().ok()) != Some("application/json") {
        s.forged.push("content type".into());
        return StatusCode::UNSUPPORTED_MEDIA_TYPE;
    }
    let id = event["id"].as_i64().expect("id");
    let status = if s.refuse_all {
        StatusCode::INTERNAL_SERVER_ERROR
    } else if s.refuse_next > 0 {
        s.refuse_next -= 1;
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        // At-least-once: a receiver dedups on the id.
        if !s.accepted.iter().any(|e| e["id"] == id) {
            s.accepted.push(event.clone());
        }
        StatusCode::OK
    };
    s.attempts.push(Attempt {
        id,
        subject_id: event["subject_id"].as_str().unwrap_or_default().to_owned(),
        status: status.as_u16(),
        body: body.to_vec(),
        signature,
        in_flight,
    });
    status
}

/// The admin test config (API token, usual campaigns) plus `[webhook]` to `url`.
fn config(dir: &std::path::Path, sink: &Sink, url: &str) -> String {
    std::fs::write(dir.join("webhook.secret"), format!("{SECRET}\n")).expect("write secret");
    let text = admin::admin_config(dir, &format!("smtp://{}", sink.addr()));
    format!(
        "{text}\n[webhook]\nurl = \"{url}\"\nsecret_file = \"webhook.secret\"\ntimeout = \"5s\"\n\
         retry_min = \"100ms\"\nretry_max = \"400ms\"\n"
    )
}

async fn start(sink: &Sink, crm: &Crm) -> TestRelay {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = config(dir.path(), sink, &crm.url());
    TestRelay::start_with(dir, &text).await
}

async fn api_consent(relay: &TestRelay, email: &str, campaign: &str, action: &str) -> Value {
    let a = admin(
        relay,
        Method::POST,
        "/api/v1/consent",
        Some(json!({
            "email": email, "campaign": campaign, "action": action,
            "evidence": "signup form v3", "ip": "192.0.2.7", "user_agent": "Mozilla/5.0",
        })),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    a.body
}

async fn api_erase(relay: &TestRelay, email: &str) {
    let path = format!("/api/v1/subjects/{email}");
    let a = admin(relay, Method::DELETE, &path, None).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.body);
}

/// The real binary with these arguments and `--config CONFIG`, awaited
/// (never blocking the runtime the in-process relay runs on).
async fn run_binary(config: &std::path::Path, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_consent-relay"))
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .await
        .expect("run consent-relay")
}

async fn outbox_is_empty(relay: &TestRelay) -> bool {
    relay
        .store()
        .webhook_outbox(100)
        .await
        .expect("outbox")
        .is_empty()
}

async fn refused_twice_then_accepted_once_with_the_same_id() {
    let sink = Sink::start().await;
    let crm = Crm::start().await;
    crm.with(|s| s.refuse_next = 2);
    let relay = start(&sink, &crm).await;

    let recorded = api_consent(&relay, "ann@example.com", "newsletter", "grant").await;
    let id = recorded["id"].as_i64().expect("event id");
    crm.wait_accepted(1).await;
    eventually("the outbox emptied", || outbox_is_empty(&relay)).await;

    let attempts = crm.attempts();
    let seen: Vec<(i64, u16)> = attempts.iter().map(|a| (a.id, a.status)).collect();
    assert_eq!(seen, [(id, 500), (id, 500), (id, 200)]);
    assert_eq!(crm.with(|s| s.forged.clone()), Vec::<String>::new());
    let event = &crm.accepted()[0];
    let mut expected = recorded.clone();
    let fields = expected.as_object_mut().expect("object");
    fields.insert("type".into(), "consent.grant".into());
    fields.insert("email".into(), "ann@example.com".into());
    fields.insert("timestamp".into(), event["timestamp"].clone());
    assert_eq!(event, &expected);
    assert_eq!(event["source"], "api");
    assert_eq!(event["ip"], "192.0.2.7");

    // The README's verification snippet, run as written, accepts what the
    // relay sent and refuses a changed body.
    let last = attempts.last().expect("attempt");
    assert_eq!(
        readme_verify(&last.body, &last.signature),
        "ok consent.grant"
    );
    let mut forged = last.body.clone();
    let at = forged.len() - 2;
    forged[at] ^= 1;
    assert_eq!(
        readme_verify(&forged, &last.signature),
        "refused bad signature"
    );
}
both_stores!(refused_twice_then_accepted_once_with_the_same_id);

/// Runs the Python block of README "Webhooks" on a request; its answer.
fn readme_verify(body: &[u8], signature: &str) -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let section = readme
        .split("\n## Webhooks\n")
        .nth(1)
        .expect("README has a Webhooks section");
    let snippet = section
        .split("```python\n")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .expect("a python block in the Webhooks section");
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("body"), body).expect("write body");
    let script = format!(
        "{snippet}\nimport sys\nbody = open(sys.argv[1], 'rb').read()\n\
         try:\n    print('ok', verify(sys.argv[2].encode(), body, sys.argv[3])['type'])\n\
         except ValueError as e:\n    print('refused', e)\n"
    );
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(dir.path().join("body"))
        .arg(SECRET)
        .arg(signature)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

async fn a_subjects_events_arrive_in_order_while_others_go_on() {
    let sink = Sink::start().await;
    let crm = Crm::start().await;
    crm.with(|s| s.refuse_all = true);
    let relay = start(&sink, &crm).await;

    relay
        .consent("ann@example.com", "newsletter", Action::Grant, None)
        .await;
    relay
        .consent("ann@example.com", "newsletter", Action::Withdraw, None)
        .await;
    relay
        .consent("ann@example.com", "prospecting", Action::Withdraw, None)
        .await;
    relay
        .consent("bob@example.com", "newsletter", Action::Grant, None)
        .await;
    let ann = relay.subject_id("ann@example.com").await;
    let bob = relay.subject_id("bob@example.com").await;
    let store = relay.store();
    let ann_events: Vec<i64> = store
        .subject_consent("ann@example.com")
        .await
        .expect("store")
        .expect("ann")
        .events
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(ann_events.len(), 3);

    // While the CRM refuses, only each person's first event is tried, again
    // and again, and both people are tried.
    eventually("both people's first events retried", || async {
        let a = crm.attempts();
        let tries = |s: &str| a.iter().filter(|x| x.subject_id == s).count();
        tries(&ann) >= 3 && tries(&bob) >= 3
    })
    .await;
    let refused = crm.attempts();
    assert!(
        refused
            .iter()
            .filter(|a| a.subject_id == ann)
            .all(|a| a.id == ann_events[0]),
        "a later event of ann was sent before her first was accepted: {refused:?}"
    );
    let rows = store.webhook_outbox(100).await.expect("outbox");
    assert_eq!(rows.len(), 4);
    assert!(
        rows.iter().any(|r| r.attempts >= 2
            && r.last_error.as_deref() == Some("HTTP 500 Internal Server Error"))
    );

    crm.with(|s| s.refuse_all = false);
    crm.wait_accepted(4).await;
    let ann_accepted: Vec<i64> = crm
        .accepted()
        .iter()
        .filter(|e| e["subject_id"] == ann.as_str())
        .map(|e| e["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(ann_accepted, ann_events);
    // Every try of ann's events, refused or not, went in order.
    let tried: Vec<i64> = crm
        .attempts()
        .iter()
        .filter(|a| a.subject_id == ann)
        .map(|a| a.id)
        .collect();
    assert!(tried.is_sorted(), "{tried:?}");
    eventually("the outbox emptied", || outbox_is_empty(&relay)).await;
    assert_eq!(crm.with(|s| s.forged.len()), 0);
}
both_stores!(a_subjects_events_arrive_in_order_while_others_go_on);

async fn people_go_in_parallel_until_the_crm_refuses_everything() {
    let sink = Sink::start().await;
    let crm = Crm::start().await;
    crm.with(|s| {
        s.refuse_all = true;
        s.delay = Duration::from_millis(300);
    });
    let relay = start(&sink, &crm).await;
    let people: Vec<String> = (0..6).map(|n| format!("p{n}@example.com")).collect();
    for p in &people {
        relay.consent(p, "newsletter", Action::Grant, None).await;
    }
    // concurrency = 4 (the default): the first requests overlap; once four
    // in a row were refused, one at a time.
    eventually("a dozen attempts", || async { crm.attempts().len() >= 12 }).await;
    let attempts = crm.attempts();
    assert!(
        attempts[..4].iter().any(|a| a.in_flight > 1),
        "no parallel requests: {:?}",
        attempts.iter().map(|a| a.in_flight).collect::<Vec<_>>()
    );
    assert!(
        attempts[8..].iter().all(|a| a.in_flight == 1),
        "parallel requests to a CRM refusing everything: {:?}",
        attempts.iter().map(|a| a.in_flight).collect::<Vec<_>>()
    );

    crm.with(|s| {
        s.refuse_all = false;
        s.delay = Duration::ZERO;
    });
    crm.wait_accepted(6).await;
    eventually("the outbox emptied", || outbox_is_empty(&relay)).await;
}
both_stores!(people_go_in_parallel_until_the_crm_refuses_everything);

async fn events_from_the_page_the_api_the_cli_an_import_and_erasure_reach_the_crm() {
    let sink = Sink::start().await;
    let crm = Crm::start().await;
    let relay = start(&sink, &crm).await;

    // The API.
    let granted = api_consent(&relay, "ann@example.com", "newsletter", "grant").await;
    crm.wait_accepted(1).await;

    // The one-click unsubscribe page (RFC 8058 POST).
    let ann = relay.subject_id("ann@example.com").await;
    let token = relay.token(Purpose::Unsubscribe, &ann, Some("newsletter"));
    let res = reqwest::Client::new()
        .post(relay.url(&format!("/u/{token}")))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .expect("one-click POST");
    assert_eq!(res.status(), StatusCode::OK);
    crm.wait_accepted(2).await;

    // The real binary, writing to the store while the relay runs: found by the poll.
    let grant = [
        "consent",
        "grant",
        "bob@example.com",
        "--campaign",
        "prospecting",
    ];
    let out = run_binary(
        &relay.dir.path().join("consent-relay.toml"),
        &[&grant[..], &["--evidence", "phone call"]].concat(),
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    crm.wait_accepted(3).await;

    // A CSV import by the real binary.
    let csv = relay.dir.path().join("list.csv");
    std::fs::write(
        &csv,
        "email,campaign,action,evidence\ncy@example.com,newsletter,grant,paper form 12\n",
    )
    .expect("write the CSV");
    let out = run_binary(
        &relay.dir.path().join("consent-relay.toml"),
        &["import", csv.to_str().expect("utf-8 path")],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    crm.wait_accepted(4).await;

    // Erasure through the API: the `erase` event names no address.
    api_erase(&relay, "ann@example.com").await;
    crm.wait_accepted(5).await;

    let got: Vec<(String, String, String, Value)> = crm
        .accepted()
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap_or_default().to_owned(),
                e["source"].as_str().unwrap_or_default().to_owned(),
                e["campaign"].as_str().unwrap_or_default().to_owned(),
                e["email"].clone(),
            )
        })
        .collect();
    let s = |v: &str| v.to_owned();
    assert_eq!(
        got,
        [
            (
                s("consent.grant"),
                s("api"),
                s("newsletter"),
                json!("ann@example.com")
            ),
            (
                s("consent.withdraw"),
                s("one-click"),
                s("newsletter"),
                json!("ann@example.com")
            ),
            (
                s("consent.grant"),
                s("admin"),
                s("prospecting"),
                json!("bob@example.com")
            ),
            (
                s("consent.grant"),
                s("import"),
                s("newsletter"),
                json!("cy@example.com")
            ),
            (s("consent.erase"), s("api"), s("*"), Value::Null),
        ]
    );
    let accepted = crm.accepted();
    assert_eq!(accepted[0]["id"], granted["id"]);
    assert_eq!(accepted[1]["evidence"], "one-click rfc8058");
    assert_eq!(accepted[2]["evidence"], "phone call");
    assert!(
        accepted[3]["evidence"]
            .as_str()
            .is_some_and(|e| e.starts_with("paper form 12")),
        "{}",
        accepted[3]
    );
    assert_eq!(accepted[4]["subject_id"], ann.as_str());
    let ids = crm.accepted_ids();
    assert!(ids.is_sorted(), "{ids:?}");
    assert_eq!(crm.with(|s| s.forged.len()), 0);
}
both_stores!(events_from_the_page_the_api_the_cli_an_import_and_erasure_reach_the_crm);

async fn an_event_sent_after_an_erasure_carries_no_address_or_proof() {
    let sink = Sink::start().await;
    let crm = Crm::start().await;
    crm.with(|s| s.refuse_all = true);
    let relay = start(&sink, &crm).await;

    api_consent(&relay, "carol@example.com", "newsletter", "grant").await;
    eventually("the grant was tried", || async {
        !crm.attempts().is_empty()
    })
    .await;
    let first = crm.attempts()[0].body.clone();
    let first: Value = serde_json::from_slice(&first).expect("json");
    assert_eq!(first["email"], "carol@example.com");

    api_erase(&relay, "carol@example.com").await;
    crm.with(|s| s.refuse_all = false);
    crm.wait_accepted(2).await;

    let accepted = crm.accepted();
    assert_eq!(accepted[0]["type"], "consent.grant");
    assert_eq!(accepted[1]["type"], "consent.erase");
    for e in &accepted {
        for field in ["email", "ip", "user_agent", "evidence"] {
            assert_eq!(e[field], Value::Null, "{field} in {e}");
        }
    }
    let later: Vec<String> = crm
        .attempts()
        .iter()
        .filter(|a| a.status == 200)
        .map(|a| String::from_utf8_lossy(&a.body).into_owned())
        .collect();
    assert!(
        later.iter().all(|b| !b.contains("carol")),
        "the address was sent after its erasure: {later:?}"
    );
}
both_stores!(an_event_sent_after_an_erasure_carries_no_address_or_proof);

async fn the_outbox_survives_a_restart() {
    let sink = Sink::start().await;
    // A port with nothing listening yet: every attempt fails to connect.
    let port = common::sink::ReservedPort::new();
    let addr = port.addr();
    let dir = tempfile::tempdir().expect("temp dir");
    let text = config(dir.path(), &sink, &format!("http://{addr}/hooks/consent"));
    let mut relay = TestRelay::start_with(dir, &text).await;

    let recorded = api_consent(&relay, "dan@example.com", "newsletter", "grant").await;
    eventually("a failed attempt recorded", || async {
        let rows = relay.store().webhook_outbox(10).await.expect("outbox");
        rows.len() == 1 && rows[0].attempts >= 1 && rows[0].last_error.is_some()
    })
    .await;
    relay.stop().await;

    // What is waiting, as `consent-relay webhooks` lists it.
    let config = relay.dir.path().join("consent-relay.toml");
    let out = run_binary(&config, &["webhooks", "--json"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(listed[0]["event"], recorded["id"]);
    assert_eq!(listed[0]["status"], "pending");
    assert!(listed[0]["attempts"].as_i64() >= Some(1), "{listed}");
    assert!(listed[0]["last_error"].as_str().is_some(), "{listed}");
    assert_eq!(listed.as_array().map(Vec::len), Some(1));

    let crm = Crm::serve(port.listen(), "http");
    let relay = TestRelay::start_with(relay.dir, &text).await;
    crm.wait_accepted(1).await;
    assert_eq!(crm.accepted_ids(), [recorded["id"].as_i64().expect("id")]);
    assert_eq!(crm.accepted()[0]["email"], "dan@example.com");
    eventually("the outbox emptied", || outbox_is_empty(&relay)).await;
}
both_stores!(the_outbox_survives_a_restart);

async fn without_a_webhook_section_nothing_is_queued() {
    let sink = Sink::start().await;
    let relay = admin::start(&sink).await;
    api_consent(&relay, "eve@example.com", "newsletter", "grant").await;
    relay
        .consent("eve@example.com", "newsletter", Action::Withdraw, None)
        .await;
    assert!(outbox_is_empty(&relay).await);
}
both_stores!(without_a_webhook_section_nothing_is_queued);

/// Two nodes sharing one outbox (the store ops PostgreSQL will serve):
/// a lease keeps a row from the other node until it expires; an outcome
/// counts only from the node holding the lease.
async fn a_lease_keeps_a_row_to_one_node_until_it_expires() {
    use common::relay::{admin_event, test_subject};
    use consent_relay::store::{Store, WebhookOutcome};

    let dir = tempfile::tempdir().expect("temp dir");
    let config = common::backend::store_config(dir.path(), true);
    let store = Store::open(&config, false).await.expect("store");
    let mut ids = Vec::new();
    for (n, (email, action)) in [
        ("ann@example.com", Action::Grant),
        ("ann@example.com", Action::Withdraw),
        ("bob@example.com", Action::Grant),
    ]
    .into_iter()
    .enumerate()
    {
        let event = store
            .append_consent_event(admin_event(
                email,
                test_subject(n),
                "newsletter",
                action,
                1_000,
            ))
            .await
            .expect("event");
        ids.push(event.id);
    }
    let now = consent_relay::time::now_ms();
    let claimed = |c: Vec<consent_relay::store::ClaimedWebhook>| -> Vec<i64> {
        c.iter().map(|w| w.event.id).collect()
    };

    // Node a takes the head of each subject; ann's second event waits.
    let a = store
        .claim_webhooks("a", now, now + 1_000, 10)
        .await
        .expect("claim");
    assert_eq!(claimed(a.clone()), [ids[0], ids[2]]);
    assert_eq!(a[0].email.as_deref(), Some("ann@example.com"));
    assert_eq!(a[0].attempts, 0);
    // Node b gets nothing while a's leases hold, both once they expired.
    let b = store
        .claim_webhooks("b", now, now + 1_000, 10)
        .await
        .expect("claim");
    assert!(b.is_empty());
    let b = store
        .claim_webhooks("b", now + 2_000, now + 60_000, 10)
        .await
        .expect("claim");
    assert_eq!(claimed(b), [ids[0], ids[2]]);

    // a's late outcome is ignored; b's counts, and ann's next event is due.
    let delivered = WebhookOutcome::Delivered { event_id: ids[0] };
    store
        .record_webhook("a", delivered.clone())
        .await
        .expect("record");
    assert_eq!(store.webhook_outbox(10).await.expect("outbox").len(), 3);
    store.record_webhook("b", delivered).await.expect("record");
    let b = store
        .claim_webhooks("b", now + 2_000, now + 60_000, 10)
        .await
        .expect("claim");
    assert_eq!(claimed(b), [ids[1]]);

    let failed = WebhookOutcome::Failed {
        event_id: ids[2],
        error: "HTTP 503 Service Unavailable".into(),
        next_attempt_at: now + 30_000,
    };
    store.record_webhook("b", failed).await.expect("record");
    assert_eq!(store.release_webhooks("b").await.expect("release"), 1);
    let rows = store.webhook_outbox(10).await.expect("outbox");
    let bob = rows
        .iter()
        .find(|r| r.event_id == ids[2])
        .expect("bob's row");
    assert_eq!((bob.status.as_str(), bob.attempts), ("pending", 1));
    assert_eq!(bob.next_attempt_at, now + 30_000);
    assert_eq!(
        bob.last_error.as_deref(),
        Some("HTTP 503 Service Unavailable")
    );
    // Not due before its time; ann's released row is.
    let c = store
        .claim_webhooks("c", now + 2_000, now + 60_000, 10)
        .await
        .expect("claim");
    assert_eq!(claimed(c), [ids[1]]);
    store.close().await;
}
both_stores!(a_lease_keeps_a_row_to_one_node_until_it_expires);

/// Two nodes (two store handles on one database) dispatch at once, failing
/// every third attempt: each event is accepted once, each subject's in
/// order, and no subject ever has an event leased on both nodes.
async fn two_nodes_send_each_subjects_events_once_and_in_order() {
    use std::collections::{HashMap, HashSet};

    use common::relay::{admin_event, test_subject};
    use consent_relay::store::{Store, WebhookOutcome};

    let dir = tempfile::tempdir().expect("temp dir");
    let config = common::backend::store_config(dir.path(), true);
    let a = Store::open(&config, false).await.expect("store a");
    let b = Store::open(&config, false).await.expect("store b");
    let mut appended: HashMap<String, Vec<i64>> = HashMap::new();
    for round in 0..4 {
        for person in 0..12 {
            let email = format!("p{person}@example.com");
            let action = if round % 2 == 0 {
                Action::Grant
            } else {
                Action::Withdraw
            };
            let event = [&a, &b][person % 2]
                .append_consent_event(admin_event(
                    &email,
                    test_subject(person),
                    "newsletter",
                    action,
                    1_000 + round,
                ))
                .await
                .expect("event");
            appended.entry(event.subject_id).or_default().push(event.id);
        }
    }

    let in_flight: Mutex<HashSet<String>> = Mutex::new(HashSet::new());
    let accepted: Mutex<HashMap<String, Vec<i64>>> = Mutex::new(HashMap::new());
    let dispatch = |store: &Store, owner: &'static str| {
        let (store, in_flight, accepted) = (store.clone(), &in_flight, &accepted);
        async move {
            let mut attempts = 0u32;
            for _ in 0..1_000 {
                let now = consent_relay::time::now_ms();
                let claimed = store
                    .claim_webhooks(owner, now, now + 60_000, 5)
                    .await
                    .expect("claim");
                if claimed.is_empty() {
                    if store.webhook_outbox(1).await.expect("outbox").is_empty() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
                for w in &claimed {
                    let fresh = in_flight.lock().unwrap().insert(w.event.subject_id.clone());
                    assert!(
                        fresh,
                        "{owner} leased a second event of {}",
                        w.event.subject_id
                    );
                }
                tokio::task::yield_now().await;
                for w in claimed {
                    attempts += 1;
                    // Out of the set before the outcome commits: the next
                    // event may be leased only after that.
                    in_flight.lock().unwrap().remove(&w.event.subject_id);
                    let outcome = if attempts.is_multiple_of(3) {
                        WebhookOutcome::Failed {
                            event_id: w.event.id,
                            error: "HTTP 500".into(),
                            next_attempt_at: 0,
                        }
                    } else {
                        accepted
                            .lock()
                            .unwrap()
                            .entry(w.event.subject_id.clone())
                            .or_default()
                            .push(w.event.id);
                        WebhookOutcome::Delivered {
                            event_id: w.event.id,
                        }
                    };
                    store.record_webhook(owner, outcome).await.expect("record");
                }
            }
            panic!("{owner}: the outbox never emptied");
        }
    };
    tokio::join!(dispatch(&a, "node-a"), dispatch(&b, "node-b"));
    assert_eq!(*accepted.lock().unwrap(), appended);
    a.close().await;
    b.close().await;
}
both_stores!(two_nodes_send_each_subjects_events_once_and_in_order);

async fn https_to_a_crm_with_a_private_ca_is_refused_until_ca_file_names_it() {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let crm = Crm::start_tls(&dir.path().join("crm-ca.pem")).await;
    let text = config(dir.path(), &sink, &crm.url());
    let mut relay = TestRelay::start_with(dir, &text).await;

    // The system roots do not know the CRM's CA: refused, kept, retried.
    api_consent(&relay, "fay@example.com", "newsletter", "grant").await;
    eventually("a failed TLS attempt recorded", || async {
        let rows = relay.store().webhook_outbox(10).await.expect("outbox");
        rows.first()
            .and_then(|r| r.last_error.as_deref())
            .is_some_and(|e| e.contains("certificate"))
    })
    .await;
    assert!(crm.attempts().is_empty());
    relay.stop().await;

    let text = text.replace(
        "secret_file = \"webhook.secret\"\n",
        "secret_file = \"webhook.secret\"\nca_file = \"crm-ca.pem\"\n",
    );
    assert!(text.contains("ca_file"));
    let relay = TestRelay::start_with(relay.dir, &text).await;
    crm.wait_accepted(1).await;
    assert_eq!(crm.accepted()[0]["email"], "fay@example.com");
    eventually("the outbox emptied", || outbox_is_empty(&relay)).await;
}
both_stores!(https_to_a_crm_with_a_private_ca_is_refused_until_ca_file_names_it);

async fn check_config_refuses_a_ca_file_without_certificates() {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("crm-ca.pem"), "not a certificate\n").expect("write");
    let text = config(dir.path(), &sink, "https://crm.test/hooks/consent").replace(
        "secret_file = \"webhook.secret\"\n",
        "secret_file = \"webhook.secret\"\nca_file = \"crm-ca.pem\"\n",
    );
    let path = dir.path().join("consent-relay.toml");
    std::fs::write(&path, text).expect("write config");
    let out = run_binary(&path, &["check-config"]).await;
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let ca = dir.path().join("crm-ca.pem");
    assert!(
        stderr.contains(&format!(
            "{}: webhook.ca_file: {} holds no certificate (use a PEM file with -----BEGIN CERTIFICATE-----)",
            path.display(),
            ca.display()
        )),
        "{stderr}"
    );
}
both_stores!(check_config_refuses_a_ca_file_without_certificates);
