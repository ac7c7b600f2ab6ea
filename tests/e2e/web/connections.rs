//! End to end with the real binary: one client holding many idle
//! connections to the HTTP port. It gets `[http] max_connections_per_client`
//! of them (the rest are closed on accept); another client's `/healthz` and
//! RFC 8058 one-click still work; the idle connections are closed after
//! `header_timeout`, which frees their slots; the refusals are counted
//! (`/metrics`) and logged at most once a second, with a count. The start
//! line shows the store's URL as written (no password, no debug value).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::both_stores;
use crate::common::binary::{Serve, free_port};
use crate::common::relay::{admin_event, canonical, config_text, write_config};
use crate::common::sink::Sink;
use consent_relay::consent::{Action, subject};
use consent_relay::token::{self, Claims, Purpose};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const CAP: usize = 8;
const EXTRA: usize = 60;

/// A connection from `from` (any 127/8 address is loopback on Linux).
async fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(from.parse::<IpAddr>().expect("ip"), 0))
        .expect("bind");
    socket.connect(to).await.expect("connect")
}

/// Sends `GET /healthz` on `stream`; whether `200 ok` came back (`false`:
/// the server had closed the connection).
async fn healthz_on(stream: &mut TcpStream) -> bool {
    let sent = stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: relay.test\r\n\r\n")
        .await;
    let mut got = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut got))
        .await
        .expect("an answer or a close");
    sent.is_ok() && String::from_utf8_lossy(&got[..n.unwrap_or(0)]).starts_with("HTTP/1.1 200")
}

fn client_from(from: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(from.parse::<IpAddr>().expect("ip"))
        .build()
        .expect("client")
}

async fn idle_connections_of_one_client_leave_the_others_served() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sink = Sink::start().await;
    let (smtp, http) = (free_port(), free_port());
    let text = config_text(dir.path(), &format!("smtp://{}", sink.addr()), "", "")
        .replace(
            "listen = \"127.0.0.1:0\"\nhostname",
            &format!("listen = \"{smtp}\"\nhostname"),
        )
        .replace(
            "listen = \"127.0.0.1:0\"\npublic_url = \"http://127.0.0.1:8080\"",
            &format!(
                "listen = \"{http}\"\npublic_url = \"http://127.0.0.1:8080\"\n\
                 max_connections_per_client = {CAP}\nheader_timeout = \"5s\"\nrate_limit = 0"
            ),
        );
    let config = write_config(dir.path(), &text);
    // A subscriber with a one-click link, recorded before serve starts.
    let email = "idle@example.net";
    let subject_id = {
        let store = consent_relay::store::Store::open(&config.store, false)
            .await
            .expect("store");
        let address = canonical(email);
        let event = store
            .append_consent_event(admin_event(
                &address,
                subject::new_subject(&config.signing, &address),
                "newsletter",
                Action::Grant,
                consent_relay::time::now_ms(),
            ))
            .await
            .expect("grant");
        store.close().await;
        event.subject_id
    };
    let link = token::sign(
        &config.signing,
        &Claims {
            subject_id,
            campaign: Some("newsletter".into()),
            purpose: Purpose::Unsubscribe,
        },
    )
    .expect("token");
    let mut serve = Serve::start(&dir.path().join("consent-relay.toml"), "serve", "info");
    serve.listening(smtp).await;
    // Waited for from another address: no connection of 127.0.0.1 is
    // left open before the test's own.
    let other = client_from("127.0.0.2");
    let mut up = false;
    for _ in 0..400 {
        if other
            .get(format!("http://{http}/healthz"))
            .send()
            .await
            .is_ok()
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(up, "the HTTP listener never answered");

    // One client opens many more than its cap and sends nothing.
    let mut idle = Vec::new();
    for _ in 0..CAP + EXTRA {
        idle.push(connect_from("127.0.0.1", http).await);
    }
    // Another client is served meanwhile: liveness and one-click.
    let res = other
        .get(format!("http://{http}/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(res.status(), reqwest::StatusCode::OK);
    let res = other
        .post(format!("http://{http}/u/{link}"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .expect("one-click");
    assert_eq!(res.status(), reqwest::StatusCode::OK, "one-click works");

    // The first CAP connections are served; the others were closed on accept.
    let mut served = 0;
    for stream in &mut idle {
        served += usize::from(healthz_on(stream).await);
    }
    assert_eq!(served, CAP, "the client got exactly its cap of connections");

    // Connections that send nothing are closed after header_timeout, which
    // frees the client's slots.
    drop(idle);
    let mut freed = false;
    for _ in 0..100 {
        if healthz_on(&mut connect_from("127.0.0.1", http).await).await {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(freed, "closed connections give their slots back");
    let mut waiting = Vec::new();
    for _ in 0..CAP {
        waiting.push(connect_from("127.0.0.1", http).await);
    }
    for mut stream in waiting {
        let mut got = Vec::new();
        let read =
            tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut got)).await;
        assert!(read.is_ok(), "an idle connection was never closed");
        assert!(got.is_empty() || String::from_utf8_lossy(&got).starts_with("HTTP/1.1 408"));
    }
    let mut again = connect_from("127.0.0.1", http).await;
    assert!(healthz_on(&mut again).await, "the client is served again");

    // Counted, by limit.
    let metrics = other
        .get(format!("http://{http}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let line = metrics
        .lines()
        .find(|l| {
            l.starts_with("consent_relay_http_connections_refused_total")
                && l.contains("per-client")
        })
        .unwrap_or_else(|| panic!("no refusal counter: {metrics}"));
    let counted: u64 = line.rsplit(' ').next().unwrap().parse().expect("count");
    assert!(counted >= EXTRA as u64, "{line}");

    // Logged with a count, a bounded number of lines.
    assert!(serve.term().await.success());
    let log = serve.log();
    // No field of any line holds a Rust debug value (`None`, `Some(..)`):
    // the start lines and the refusal line say what an operator reads.
    for line in log.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        for (key, value) in v["fields"].as_object().into_iter().flatten() {
            let text = value.as_str().unwrap_or_default();
            assert!(
                text != "None" && !text.starts_with("Some("),
                "{key} is a debug value: {line}"
            );
        }
    }
    // (And the start line names the store by its URL, not a debug value.)
    let started: serde_json::Value = log
        .lines()
        .find(|l| l.contains("consent-relay started"))
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .expect("a start line");
    let store = started["fields"]["store"].as_str().expect("store");
    assert!(
        store.starts_with("sqlite://") || store.starts_with("postgres://"),
        "{store}"
    );
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| l.contains("http connections refused"))
        .map(|l| serde_json::from_str(l).expect("a JSON log line"))
        .collect();
    let logged: u64 = lines
        .iter()
        .map(|l| l["fields"]["refused"].as_u64().expect("refused count"))
        .sum();
    assert_eq!(
        logged, counted,
        "every refusal is in a line's count: {lines:?}"
    );
    assert!(
        !lines.is_empty() && lines.len() <= 4,
        "{} lines for {counted} refusals: {lines:?}",
        lines.len()
    );
}
both_stores!(idle_connections_of_one_client_leave_the_others_served);
