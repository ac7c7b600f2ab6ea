//! The store round trips of one accepted message, counted from the SQL
//! statements sqlx itself reports (target `sqlx::query`, one event per
//! statement sent): the consent of all of a message's recipients is read
//! with one statement, and accepting a message takes as many statements
//! with 1000 recipients as with 10 — no per-recipient query. On SQLite
//! always, on PostgreSQL when `CONSENT_RELAY_TEST_PG` is set.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::both_stores;
use crate::common::relay::{admin_event, config_text, message, write_config};
use consent_relay::consent::Action;
use consent_relay::consent::subject;
use consent_relay::smtp::intake::{Envelope, Intake};
use consent_relay::store::Store;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};

/// The statements seen while counting is on (their SQL text).
#[derive(Default)]
struct Statements {
    on: AtomicBool,
    seen: Mutex<Vec<String>>,
}

struct Counter(Arc<Statements>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Counter {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() != "sqlx::query" || !self.0.on.load(Ordering::SeqCst) {
            return;
        }
        struct Sql(String);
        impl Visit for Sql {
            fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
                if matches!(field.name(), "summary" | "db.statement") {
                    self.0.push_str(&format!("{value:?} "));
                }
            }
            fn record_str(&mut self, field: &Field, value: &str) {
                if matches!(field.name(), "summary" | "db.statement") {
                    self.0.push_str(value);
                    self.0.push(' ');
                }
            }
        }
        let mut sql = Sql(String::new());
        event.record(&mut sql);
        self.0.seen.lock().unwrap().push(sql.0);
    }
}

/// The process-wide statement counter (installed once); the tests of this
/// binary take turns on it ([`crate::ALONE`]).
fn statements() -> &'static Arc<Statements> {
    static S: OnceLock<Arc<Statements>> = OnceLock::new();
    S.get_or_init(|| {
        let s = Arc::new(Statements::default());
        let filter = tracing_subscriber::filter::Targets::new()
            .with_target("sqlx::query", tracing::Level::TRACE);
        let subscriber = tracing_subscriber::registry()
            .with(Counter(s.clone()))
            .with(filter);
        tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
        s
    })
}

/// The statements `f` sends (the counter is this test's while it runs),
/// less the setup of a connection the pool opens meanwhile: SQLite's
/// `PRAGMA` line, sent once per connection, not per message. (The pool
/// opens one when the warm-up's connection is not back yet; counted, it
/// made 1000 recipients cost 7 statements against 6 for ten.)
async fn counted<T>(f: impl std::future::Future<Output = T>) -> (T, Vec<String>) {
    let s = statements();
    s.seen.lock().unwrap().clear();
    s.on.store(true, Ordering::SeqCst);
    let out = f.await;
    s.on.store(false, Ordering::SeqCst);
    let mut seen = std::mem::take(&mut *s.seen.lock().unwrap());
    seen.retain(|sql| !sql.starts_with("PRAGMA "));
    (out, seen)
}

fn envelope(rcpt_to: Vec<String>) -> Envelope {
    Envelope {
        mail_from: "crm@example.com".into(),
        rcpt_to,
        client_ip: "127.0.0.1".parse().unwrap(),
        helo: "client.test".into(),
        auth_user: None,
        esmtp: true,
        tls: false,
        smtputf8: false,
    }
}

/// `p{i}@example.net`: 0..500 granted the newsletter, 500..750 withdrew it,
/// the rest unknown.
fn person(i: usize) -> String {
    format!("p{i}@example.net")
}

async fn a_thousand_recipients_cost_the_round_trips_of_ten() {
    let _alone = crate::ALONE.lock().await;
    statements();
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(dir.path(), "smtp://127.0.0.1:9", "", "");
    let config = Arc::new(write_config(dir.path(), &text));
    let store = Store::open(&config.store, false).await.unwrap();
    for i in 0..750 {
        let address = person(i);
        store
            .append_consent_event(admin_event(
                &address,
                subject::new_subject(&config.signing, &address),
                "newsletter",
                if i < 500 {
                    Action::Grant
                } else {
                    Action::Withdraw
                },
                consent_relay::time::now_ms(),
            ))
            .await
            .unwrap();
    }
    let intake = Intake::new(config.clone(), store.clone(), Default::default());
    let raw = message("newsletter", "wide");
    // Warm up: the pool's connections are open, statements prepared.
    intake
        .accept(&envelope(vec![person(0)]), raw.as_bytes())
        .await
        .unwrap();

    // Ten: 5 granted, 5 unknown. A thousand: 500 granted, 250 withdrawn,
    // 250 unknown.
    let ten: Vec<String> = (0..5).chain(995..1000).map(person).collect();
    let (accepted, small) = counted(intake.accept(&envelope(ten), raw.as_bytes())).await;
    let accepted = accepted.unwrap();
    assert_eq!((accepted.delivered, accepted.suppressed), (5, 5));
    let thousand: Vec<String> = (0..1000).map(person).collect();
    let (accepted, wide) = counted(intake.accept(&envelope(thousand), raw.as_bytes())).await;
    let accepted = accepted.unwrap();
    assert_eq!((accepted.delivered, accepted.suppressed), (500, 500));

    // The consent of the 1000 is read by one statement.
    let lookups: Vec<&String> = wide
        .iter()
        .filter(|s| s.contains("consent_state"))
        .collect();
    assert_eq!(lookups.len(), 1, "consent lookups: {lookups:#?}");
    // And the whole accept costs what ten recipients cost.
    assert!(!small.is_empty(), "the counter saw no statement");
    assert_eq!(
        wide.len(),
        small.len(),
        "10 recipients: {small:#?}\n1000 recipients: {wide:#?}"
    );
    store.close().await;
}
both_stores!(a_thousand_recipients_cost_the_round_trips_of_ten);
