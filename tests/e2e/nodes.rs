//! Two relay nodes on one PostgreSQL schema (only on PostgreSQL: a SQLite
//! database takes one node). Node A is the real binary, so it can be killed
//! with SIGKILL while it holds leases; node B runs in-process. Mail through
//! either node is delivered exactly once, a dead node's leased deliveries
//! are delivered by the other once the lease expires, and a withdrawal made
//! on one node applies to the next message through the other. A node killed
//! and started again under its `[queue] node` name takes its leases back at
//! once (not after the lease), and a second process under a live node's
//! name is refused. Also: TLS to the database as the URL's `sslmode` says.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common;
use crate::common::relay::{Client, TestRelay, config_text, message};
use crate::common::sink::Sink;
use consent_relay::token::Purpose;

const BIN: &str = env!("CARGO_BIN_EXE_consent-relay");

/// The shortest lease the config allows: a dead node's rows come back after it.
const LEASE: &str = "lease = \"10s\"";
/// Node B's `[queue]`: the lease, and a name of its own (node A is `a`).
const NODE_B: &str = "lease = \"10s\"\nnode = \"b\"";

/// Writes the config `file` of a binary node whose SMTP listener is on a
/// fixed free port; `upstream_timeout` replaces the test config's 5s,
/// `queue` is added to `[queue]`.
fn node_config(
    dir: &Path,
    file: &str,
    upstream: SocketAddr,
    upstream_timeout: &str,
    queue: &str,
) -> (PathBuf, SocketAddr) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let text = config_text(dir, &format!("smtp://{upstream}"), "", queue)
        .replace(
            "listen = \"127.0.0.1:0\"\nhostname",
            &format!("listen = \"{addr}\"\nhostname"),
        )
        .replace(
            "timeout = \"5s\"",
            &format!("timeout = \"{upstream_timeout}\""),
        );
    let config = dir.join(file);
    std::fs::write(&config, text).unwrap();
    (config, addr)
}

/// Starts `serve` on `config` and waits for its SMTP listener at `addr`.
async fn spawn_node(dir: &Path, config: &Path, addr: SocketAddr) -> Child {
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(config)
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn a node");
    for _ in 0..400 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the node never listened on {addr}");
}

/// Starts node A (the binary, node name `a`) on a fixed free port;
/// `upstream_timeout` replaces the test config's 5s.
async fn start_node_a(
    dir: &Path,
    upstream: SocketAddr,
    upstream_timeout: &str,
) -> (Child, SocketAddr) {
    let (config, addr) = node_config(
        dir,
        "node-a.toml",
        upstream,
        upstream_timeout,
        &format!("{LEASE}\nnode = \"a\""),
    );
    (spawn_node(dir, &config, addr).await, addr)
}

/// Sends `n` messages of `per` recipients `{tag}{i}-r{j}@example.net`.
async fn send_many(addr: SocketAddr, tag: &str, n: usize, per: usize) {
    let mut c = Client::connect(addr).await;
    c.expect("220").await;
    c.cmd("EHLO client.test", "250").await;
    for i in 0..n {
        c.cmd("MAIL FROM:<crm@example.com>", "250").await;
        for j in 0..per {
            c.cmd(&format!("RCPT TO:<{tag}{i}-r{j}@example.net>"), "250")
                .await;
        }
        c.cmd("DATA", "354").await;
        c.write(message("prospecting", &format!("{tag} {i}")).as_bytes())
            .await;
        c.write(b".\r\n").await;
        let r = c.read_reply().await;
        assert!(r.starts_with("250"), "{r}");
    }
    c.cmd("QUIT", "221").await;
}

/// Copies the sink received per recipient whose address starts with `tag`.
fn copies(sink: &Sink, tag: &str) -> HashMap<String, usize> {
    let mut n = HashMap::new();
    for m in sink.messages() {
        for r in m.rcpt_to.iter().filter(|r| r.starts_with(tag)) {
            *n.entry(r.clone()).or_default() += 1;
        }
    }
    n
}

/// Waits until the sink holds `want` recipients starting with `tag` and no
/// delivery is left to do, then asserts each got exactly one copy.
async fn exactly_once(sink: &Sink, relay: &TestRelay, tag: &str, want: usize) {
    // Up to a minute: rows leased by a dead node wait for the lease to expire.
    for _ in 0..600 {
        if copies(sink, tag).len() == want && relay.store().queue(1000).await.unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(copies(sink, tag).len(), want, "{tag}* recipients delivered");
    let got = copies(sink, tag);
    let twice: Vec<_> = got.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "copies sent more than once: {twice:?}");
}

async fn two_nodes_share_queue_leases_and_consent() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start().await;
    let relay_b = TestRelay::start(sink.addr(), "", NODE_B).await;
    let (mut node_a, addr_a) = start_node_a(dir.path(), sink.addr(), "5s").await;

    // Mail through both nodes at once: both workers claim from one queue.
    let (_, _) = tokio::join!(
        send_many(addr_a, "a", 15, 4),
        send_many(relay_b.addr, "b", 15, 4)
    );
    exactly_once(&sink, &relay_b, "a", 60).await;
    exactly_once(&sink, &relay_b, "b", 60).await;

    // A withdrawal through node B's one-click link applies to node A's next message.
    let id = relay_b.subject_id("a0-r0@example.net").await;
    let token = relay_b.token(Purpose::Unsubscribe, &id, Some("prospecting"));
    let page = reqwest::Client::new()
        .post(relay_b.url(&format!("/u/{token}")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), reqwest::StatusCode::OK);
    let mut c = Client::connect(addr_a).await;
    c.expect("220").await;
    c.cmd("EHLO client.test", "250").await;
    c.cmd("MAIL FROM:<crm@example.com>", "250").await;
    c.cmd("RCPT TO:<a0-r0@example.net>", "250").await;
    c.cmd("DATA", "354").await;
    c.write(message("prospecting", "after the withdrawal").as_bytes())
        .await;
    let r = c.cmd(".", "250").await;
    assert!(r.contains("(0 delivered, 1 suppressed)"), "{r}");
    node_a.kill().unwrap();
    node_a.wait().unwrap();

    // Node A takes mail while its upstream never answers, so it holds the
    // leases; node B is stopped (handing back its own) so only A claims.
    let mut relay_b = relay_b;
    relay_b.stop().await;
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (mut node_a, addr_a) = start_node_a(dir.path(), silent.local_addr().unwrap(), "60s").await;
    send_many(addr_a, "k", 5, 2).await;
    let mut db = common::backend::connect(dir.path()).await;
    let mut leased = 0i64;
    for _ in 0..200 {
        leased = sqlx::query_scalar(
            "SELECT COUNT(*) FROM deliveries WHERE recipient LIKE 'k%' \
             AND status = 'sending' AND lease_owner IS NOT NULL",
        )
        .fetch_one(&mut db)
        .await
        .unwrap();
        if leased == 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(leased, 10, "node A leased every copy");
    node_a.kill().expect("SIGKILL node A");
    node_a.wait().unwrap();

    // Node B, started again on the same schema, delivers them once the
    // leases expire, each exactly once.
    let relay_b = TestRelay::start_with(
        tempfile::tempdir().unwrap(),
        &config_text(dir.path(), &format!("smtp://{}", sink.addr()), "", NODE_B),
    )
    .await;
    exactly_once(&sink, &relay_b, "k", 10).await;
    let unowned: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM deliveries WHERE recipient LIKE 'k%' AND status = 'sent' AND attempts = 1",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert_eq!(unowned, 10, "each copy sent once, by node B");
    drop(silent);
}

#[tokio::test]
async fn two_nodes_on_one_postgres_schema_deliver_once_and_share_consent() {
    common::backend::on_pg(two_nodes_share_queue_leases_and_consent).await;
}

/// Copies of `k*` recipients leased (`sending`) by `owner`.
async fn leased_by(db: &mut sqlx::AnyConnection, owner: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM deliveries WHERE recipient LIKE 'k%' \
         AND status = 'sending' AND lease_owner = $1",
    )
    .bind(owner)
    .fetch_one(db)
    .await
    .unwrap()
}

async fn restarted_node_takes_its_leases_back_and_its_name_is_its_own() {
    let dir = tempfile::tempdir().unwrap();
    // The default lease (5 minutes): anything delivered sooner was handed back.
    let queue = "node = \"k\"\nnode_heartbeat = \"1s\"";
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (config, addr) = node_config(
        dir.path(),
        "node-k.toml",
        silent.local_addr().unwrap(),
        "60s",
        queue,
    );
    let mut node = spawn_node(dir.path(), &config, addr).await;
    send_many(addr, "k", 5, 2).await;
    let mut db = common::backend::connect(dir.path()).await;
    let mut leased = 0;
    for _ in 0..200 {
        leased = leased_by(&mut db, "k").await;
        if leased == 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(leased, 10, "node k leased every copy under its name");
    node.kill().expect("SIGKILL node k");
    node.wait().unwrap();

    // Started again under the same name, now with an upstream that answers.
    let sink = Sink::start().await;
    let (config, addr) = node_config(dir.path(), "node-k.toml", sink.addr(), "5s", queue);
    let mut node = spawn_node(dir.path(), &config, addr).await;
    let mut got = HashMap::new();
    for _ in 0..600 {
        got = copies(&sink, "k");
        if got.len() == 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        got.len(),
        10,
        "its copies are delivered, well before the 5 minute lease"
    );
    assert!(got.values().all(|n| *n == 1), "each once: {got:?}");

    // A second process under the live node's name is refused, naming the key.
    let (second, _) = node_config(dir.path(), "node-k2.toml", sink.addr(), "5s", queue);
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&second)
        .current_dir(dir.path())
        .env("RUST_LOG", "warn")
        .output()
        .expect("run a second node k");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a second node k started: {stderr}");
    assert!(
        stderr.contains("queue.node") && stderr.contains("\"k\""),
        "{stderr}"
    );
    // The running node is untouched: it still delivers.
    send_many(addr, "k-after", 1, 1).await;
    for _ in 0..200 {
        if copies(&sink, "k-after").len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(copies(&sink, "k-after").len(), 1);

    // Another process takes the name while this one runs (as a start does
    // when this one's heartbeat stalled past twice node_heartbeat): this
    // one stops, failing, rather than send under a name it no longer holds.
    sqlx::query("UPDATE nodes SET instance = 'another-process', last_seen = $1 WHERE name = 'k'")
        .bind(consent_relay::time::now_ms() + 60_000)
        .execute(&mut db)
        .await
        .unwrap();
    let mut exited = None;
    for _ in 0..100 {
        exited = node.try_wait().unwrap();
        if exited.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let Some(status) = exited else {
        let _ = node.kill();
        let _ = node.wait();
        panic!("node k kept running under a name another process holds");
    };
    assert!(!status.success(), "{status}");
    drop(silent);
}

#[tokio::test]
async fn a_node_restarted_under_its_name_takes_its_leases_back_and_a_second_is_refused() {
    common::backend::on_pg(restarted_node_takes_its_leases_back_and_its_name_is_its_own).await;
}

/// TLS to the database follows the URL's `sslmode` (rustls): `require`
/// encrypts every connection of the relay's pool; `verify-full` refuses a
/// server whose certificate is not trusted (here the local snakeoil one).
async fn tls_to_postgres_follows_sslmode() {
    let dir = tempfile::tempdir().unwrap();
    let base = common::backend::store_url(dir.path());
    let app = format!(
        "cr-tls-{}",
        ulid::Ulid::generate().to_string().to_lowercase()
    );
    let mut url = url::Url::parse(&base).unwrap();
    url.query_pairs_mut()
        .append_pair("sslmode", "require")
        .append_pair("application_name", &app);
    let sink = Sink::start().await;
    let text = config_text(dir.path(), &format!("smtp://{}", sink.addr()), "", "")
        .replace(&format!("url = \"{base}\""), &format!("url = \"{url}\""));
    assert!(text.contains("sslmode=require"), "config_text changed");
    let mut relay = TestRelay::start_with(dir, &text).await;
    let r = relay
        .send(&["tls@example.net"], &message("prospecting", "x"))
        .await;
    assert!(r.starts_with("250"), "{r}");
    sink.wait_for(1, Duration::from_secs(10)).await;
    let mut db = common::backend::connect(relay.dir.path()).await;
    let (connections, all_tls): (i64, Option<bool>) = sqlx::query_as(
        "SELECT COUNT(*), bool_and(s.ssl) FROM pg_stat_activity a \
         JOIN pg_stat_ssl s ON s.pid = a.pid WHERE a.application_name = $1",
    )
    .bind(&app)
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert!(connections > 0, "the relay's connections are seen");
    assert_eq!(all_tls, Some(true), "every connection of the relay is TLS");
    relay.stop().await;

    let mut url = url::Url::parse(&base).unwrap();
    url.query_pairs_mut().append_pair("sslmode", "verify-full");
    let config = consent_relay::config::StoreConfig {
        url: consent_relay::config::StoreUrl::Postgres(url.into()),
        pool_size: 2,
        webhook_outbox: false,
    };
    let err = match consent_relay::store::Store::open(&config, false).await {
        Ok(_) => panic!("verify-full trusted a certificate no root signs"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("certificate") || err.to_lowercase().contains("tls"),
        "{err}"
    );
}

#[tokio::test]
async fn tls_to_postgres_follows_the_urls_sslmode() {
    common::backend::on_pg(tls_to_postgres_follows_sslmode).await;
}
