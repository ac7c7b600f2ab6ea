//! Which store a test runs on. Every test runs on SQLite (a file in the
//! test's temp dir); tests declared with [`both_stores!`] run a second time
//! on PostgreSQL when `CONSENT_RELAY_TEST_PG` holds a URL (e.g.
//! `postgres://root@127.0.0.1:5432/test`), each run in a schema of its own
//! (`cr_test_<ulid>`, dropped when the test passes and no relay of it
//! still holds a lock) so tests run in parallel.
//! With `CONSENT_RELAY_REQUIRE_PG=1` an unset URL fails the test instead of
//! skipping it (CI, when a server answers).

use std::cell::RefCell;
use std::future::Future;
use std::path::Path;

use sqlx::Connection;

thread_local! {
    /// The PostgreSQL URL (with its schema) of the test on this thread.
    static PG_URL: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The `[store] url` for a relay of this test: its PostgreSQL schema in a
/// `_pg` run, else a SQLite file in `dir`.
pub fn store_url(dir: &Path) -> String {
    PG_URL
        .with(|u| u.borrow().clone())
        .unwrap_or_else(|| format!("sqlite://{}", dir.join("relay.db").display()))
}

/// A `[store]` for opening this test's store directly (store-level tests).
pub fn store_config(dir: &Path, webhook_outbox: bool) -> consent_relay::config::StoreConfig {
    use consent_relay::config::StoreUrl;
    let url = store_url(dir);
    let url = match url.strip_prefix("sqlite://") {
        Some(path) => StoreUrl::Sqlite(path.into()),
        None => StoreUrl::Postgres(url),
    };
    consent_relay::config::StoreConfig {
        url,
        pool_size: 4,
        webhook_outbox,
    }
}

/// Whether this test runs on PostgreSQL.
pub fn on_postgres() -> bool {
    PG_URL.with(|u| u.borrow().is_some())
}

/// An SQL connection to this test's store (either backend; `$1` binds).
pub async fn connect(dir: &Path) -> sqlx::AnyConnection {
    sqlx::any::install_default_drivers();
    sqlx::AnyConnection::connect(&store_url(dir))
        .await
        .expect("connect to the test store")
}

/// Every table of the store's schema (both backends), as the tests know it.
pub const STORE_TABLES: &[&str] = &[
    "subjects",
    "consent_events",
    "consent_state",
    "messages",
    "decisions",
    "deliveries",
    "delivery_attempts",
    "webhook_outbox",
    "idempotency_keys",
    "feedback_reports",
    "suppressions",
    "soft_bounces",
    "daily_counts",
    "audit_events",
];

/// The PostgreSQL tables of this test's store with a live row holding
/// `needle` (the row as text), and `messages.body` when a body does.
pub async fn rows_holding(dir: &Path, needle: &str) -> Vec<String> {
    let mut c = connect(dir).await;
    let mut found = Vec::new();
    for table in STORE_TABLES {
        let sql = format!("SELECT COUNT(*) FROM {table} t WHERE strpos(t::text, $1) > 0");
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(needle)
            .fetch_one(&mut c)
            .await
            .expect("scan a table");
        if n > 0 {
            found.push((*table).to_owned());
        }
    }
    let bodies: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM messages WHERE position(convert_to($1, 'UTF8') IN body) > 0",
    )
    .bind(needle)
    .fetch_one(&mut c)
    .await
    .expect("scan the bodies");
    if bodies > 0 {
        found.push("messages.body".to_owned());
    }
    c.close().await.expect("close");
    found
}

/// The PostgreSQL server to test on, or `None` (skip) when not set.
fn pg_base() -> Option<String> {
    match std::env::var("CONSENT_RELAY_TEST_PG") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("CONSENT_RELAY_REQUIRE_PG").as_deref() != Ok("1"),
                "CONSENT_RELAY_REQUIRE_PG=1 but CONSENT_RELAY_TEST_PG is not set"
            );
            eprintln!("skipped: CONSENT_RELAY_TEST_PG not set");
            None
        }
    }
}

/// Runs `test` with its relays on a fresh PostgreSQL schema.
pub async fn on_pg<F, Fut>(test: F)
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(base) = pg_base() else { return };
    let schema = format!(
        "cr_test_{}",
        ulid::Ulid::generate().to_string().to_lowercase()
    );
    let mut admin = sqlx::PgConnection::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("CONSENT_RELAY_TEST_PG={base}: {e}"));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut admin)
        .await
        .expect("create the test schema");
    sqlx::query("SET lock_timeout = '2s'")
        .execute(&mut admin)
        .await
        .expect("set lock_timeout");
    let mut url = url::Url::parse(&base).expect("CONSENT_RELAY_TEST_PG is a URL");
    url.query_pairs_mut()
        .append_pair("options[search_path]", &schema);
    PG_URL.with(|u| *u.borrow_mut() = Some(url.into()));
    test().await;
    PG_URL.with(|u| u.borrow_mut().take());
    // The test's relays may still be polling it (they stop with the
    // runtime): a deadlock or lock wait here is retried, then left.
    for attempt in 1..=5 {
        match sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(&mut admin)
            .await
        {
            Ok(_) => return,
            Err(e) if attempt == 5 => eprintln!("test schema {schema} left in place: {e}"),
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(300)).await,
        }
    }
}

/// `both_stores!(name);` after `async fn name()` makes two tests of it:
/// `name::sqlite` and `name::pg` (see the module doc).
#[macro_export]
macro_rules! both_stores {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name().await
            }

            #[tokio::test]
            async fn pg() {
                $crate::common::backend::on_pg(super::$name).await
            }
        }
    };
}
