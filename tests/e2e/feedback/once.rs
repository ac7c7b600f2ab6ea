//! A report is applied once: the same bytes again (a retry, another door)
//! make no second suppression, and a `kill -9` of the real binary while reports stream in
//! loses none that was answered `250` and applies none twice (the restart
//! applies what was stored but not applied, and the senders' retries are
//! the rows they made).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::Row as _;

use super::api::post;
use super::cli::feedback;
use super::smtp::send_report;
use super::{count, delivered_copy, dsn, return_path};
use crate::both_stores;
use crate::common::admin::ADMIN_TOKEN;
use crate::common::binary::{Serve, free_port};
use crate::common::relay::{Client, eventually, message};
use crate::common::sink::Sink;

async fn the_same_report_twice_by_a_door_or_by_two_doors_is_applied_once() {
    let sink = Sink::start().await;
    let relay = super::start(&sink, "").await;
    let id = delivered_copy(&relay, &sink, "ann@example.net").await;
    let raw = dsn(&relay.config, id, "ann@example.net", "5.1.1");
    let to = return_path(&relay.config, id);
    // An MTA's retry: the same bytes to the same return path, one row.
    for _ in 0..2 {
        let r = send_report(&relay, &to, &raw).await;
        assert!(r.starts_with("250 "), "{r}");
    }
    let rows = "SELECT count(*) FROM feedback_reports";
    assert_eq!(count(relay.dir.path(), rows).await, 1);
    // The same bytes by the command line and the API (no return path): one
    // more row between them (the store keys a report by its return path
    // and bytes), and the person is still suppressed once.
    let out = feedback(
        &relay.dir.path().join("consent-relay.toml"),
        &[],
        raw.as_bytes(),
    )
    .await;
    assert_eq!(out.status.code(), Some(0));
    let a = post(&relay, Some(ADMIN_TOKEN), &raw).await;
    assert_eq!(a.body["duplicate"], true, "{}", a.body);
    assert_eq!(count(relay.dir.path(), rows).await, 2);
    let active = "SELECT count(*) FROM suppressions WHERE removed_at IS NULL";
    assert_eq!(count(relay.dir.path(), active).await, 1);
}
both_stores!(the_same_report_twice_by_a_door_or_by_two_doors_is_applied_once);

/// People in the kill test, each with one copy and one bounce.
const PEOPLE: usize = 120;
/// Concurrent senders of reports.
const SENDERS: usize = 8;

/// Sends `reports[i]` for each `i` taken from `next`, recording the
/// indexes answered 250; stops at the first failure (the relay killed).
async fn stream(
    addr: std::net::SocketAddr,
    reports: Arc<Vec<(String, String)>>,
    next: Arc<Mutex<usize>>,
    acked: Arc<Mutex<Vec<usize>>>,
) {
    let Ok(stream) = tokio::net::TcpStream::connect(addr).await else {
        return;
    };
    let mut c = Client::new(stream);
    if !c.read_reply().await.starts_with("220") {
        return;
    }
    c.write(b"EHLO mx.example.net\r\n").await;
    if !c.read_reply().await.starts_with("250") {
        return;
    }
    loop {
        let i = {
            let mut n = next.lock().expect("lock");
            if *n >= reports.len() {
                return;
            }
            *n += 1;
            *n - 1
        };
        let (to, data) = &reports[i];
        let sent = c
            .try_write(format!("MAIL FROM:<>\r\nRCPT TO:<{to}>\r\n").as_bytes())
            .await;
        if !sent
            || !c.read_reply().await.starts_with("250")
            || !c.read_reply().await.starts_with("250")
        {
            return;
        }
        if !c.try_write(b"DATA\r\n").await || !c.read_reply().await.starts_with("354") {
            return;
        }
        if !c.try_write(format!("{data}.\r\n").as_bytes()).await {
            return;
        }
        if !c.read_reply().await.starts_with("250") {
            return;
        }
        acked.lock().expect("lock").push(i);
    }
}

async fn a_kill_9_while_reports_stream_in_loses_none_and_applies_none_twice() {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let smtp = free_port();
    let text = super::feedback_config(dir.path(), &format!("smtp://{}", sink.addr()), "").replacen(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"{smtp}\""),
        1,
    );
    let config = crate::common::relay::write_config(dir.path(), &text);
    let path = dir.path().join("consent-relay.toml");
    let mut serve = Serve::start(&path, "serve1", "info");
    serve.listening(smtp).await;
    // One copy to each of PEOPLE people.
    let rcpts: Vec<String> = (0..PEOPLE).map(|i| format!("p{i}@example.net")).collect();
    let mut c = Client::connect(smtp).await;
    c.expect("220").await;
    c.cmd("EHLO client.test", "250").await;
    c.cmd("MAIL FROM:<crm@example.com>", "250").await;
    for r in &rcpts {
        c.cmd(&format!("RCPT TO:<{r}>"), "250").await;
    }
    c.cmd("DATA", "354").await;
    c.write(message("prospecting", "Hello").as_bytes()).await;
    c.cmd(".", "250").await;
    sink.wait_for(PEOPLE, Duration::from_secs(30)).await;
    let mut db = crate::common::backend::connect(dir.path()).await;
    let copies: Vec<(i64, String)> =
        sqlx::query("SELECT id, recipient FROM deliveries ORDER BY id")
            .fetch_all(&mut db)
            .await
            .expect("deliveries")
            .iter()
            .map(|r| (r.get::<i64, _>(0), r.get::<String, _>(1)))
            .collect();
    assert_eq!(copies.len(), PEOPLE);
    let reports: Arc<Vec<(String, String)>> = Arc::new(
        copies
            .iter()
            .map(|(id, rcpt)| (return_path(&config, *id), dsn(&config, *id, rcpt, "5.1.1")))
            .collect(),
    );
    // Stream them in; kill -9 a third of the way.
    let next = Arc::new(Mutex::new(0));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let senders: Vec<_> = (0..SENDERS)
        .map(|_| tokio::spawn(stream(smtp, reports.clone(), next.clone(), acked.clone())))
        .collect();
    eventually("a third of the reports answered", || {
        let n = acked.lock().expect("lock").len();
        async move { n >= PEOPLE / 3 }
    })
    .await;
    serve.kill();
    for s in senders {
        let _ = s.await;
    }
    let acked_before: Vec<usize> = acked.lock().expect("lock").clone();
    assert!(acked_before.len() < PEOPLE, "the kill came before the end");
    // Restarted: what was stored is applied, and every report answered 250 is there.
    let mut serve = Serve::start(&path, "serve2", "info");
    serve.listening(smtp).await;
    let pending = "SELECT count(*) FROM feedback_reports WHERE state <> 'done'";
    let dir_path = dir.path().to_owned();
    eventually("the pending reports applied after the restart", || {
        let dir_path = dir_path.clone();
        async move { count(&dir_path, pending).await == 0 }
    })
    .await;
    let stored = count(dir.path(), "SELECT count(*) FROM feedback_reports").await;
    assert!(
        stored as usize >= acked_before.len(),
        "{stored} stored, {} answered 250",
        acked_before.len()
    );
    // The senders retry all of them (an MTA retries what got no 250).
    let next = Arc::new(Mutex::new(0));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let senders: Vec<_> = (0..SENDERS)
        .map(|_| tokio::spawn(stream(smtp, reports.clone(), next.clone(), acked.clone())))
        .collect();
    for s in senders {
        s.await.expect("sender");
    }
    assert_eq!(acked.lock().expect("lock").len(), PEOPLE, "{}", serve.log());
    let n = PEOPLE as i64;
    assert_eq!(
        count(dir.path(), "SELECT count(*) FROM feedback_reports").await,
        n
    );
    assert_eq!(count(dir.path(), pending).await, 0);
    assert_eq!(
        count(dir.path(), "SELECT count(*) FROM suppressions").await,
        n
    );
    assert_eq!(
        count(
            dir.path(),
            "SELECT count(DISTINCT subject_id) FROM suppressions"
        )
        .await,
        n
    );
    serve.term().await;
}
both_stores!(a_kill_9_while_reports_stream_in_loses_none_and_applies_none_twice);
