//! `consent-relay migrate-store --from URL --to URL`: copies every table of
//! one store into another, empty one (SQLite to PostgreSQL, or back), ids
//! kept, in one transaction on the target, then checks the row counts.
//!
//! The source is only read (a SQLite source is opened read-only and must
//! not be in use by a `serve`); the target's schema is brought up to date by
//! the store's own open first. The tables and columns are listed here, one
//! entry per table of `migrations/sqlite/*.sql` (a unit test compares them
//! with the schema the migrations make).
use anyhow::{Context as _, bail};
use futures_util::stream::{BoxStream, StreamExt as _, TryStreamExt as _};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{
    AssertSqlSafe, ColumnIndex, Connection as _, Database, Decode, Encode, QueryBuilder, Row, Type,
};
use sqlx::{PgConnection, Postgres, Sqlite, SqliteConnection};

use crate::cli::{EXIT_CONFIG, Exit};
use crate::config::{StoreConfig, StoreUrl};
use crate::store::{Store, take_sqlite_lock};

#[derive(clap::Args, Debug)]
pub struct MigrateArgs {
    /// The store to copy from (sqlite://PATH or postgres://...); only read
    #[arg(long, value_name = "URL")]
    pub from: String,
    /// The empty store to copy into (its schema is created first)
    #[arg(long, value_name = "URL")]
    pub to: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Text,
    Blob,
    Bool,
}

struct Table {
    name: &'static str,
    /// Ordered by this (the primary key): parents before children is the
    /// table order, ids ascending within a table.
    order_by: &'static str,
    /// An identity column whose PostgreSQL sequence follows the copied ids.
    identity: Option<&'static str>,
    columns: &'static [(&'static str, Kind)],
}

use Kind::{Blob, Bool, Int, Text};

/// Every table, parents before the tables that reference them.
const TABLES: &[Table] = &[
    Table {
        name: "subjects",
        order_by: "id",
        identity: None,
        columns: &[
            ("id", Text),
            ("address", Text),
            ("address_hash", Text),
            ("key_id", Text),
            ("created_at", Int),
            ("erased_at", Int),
            ("merged_into", Text),
        ],
    },
    Table {
        name: "consent_events",
        order_by: "id",
        identity: Some("id"),
        columns: &[
            ("id", Int),
            ("subject_id", Text),
            ("campaign", Text),
            ("action", Text),
            ("at", Int),
            ("source", Text),
            ("ip", Text),
            ("user_agent", Text),
            ("evidence", Text),
            ("recorded_at", Int),
            ("import_key", Text),
        ],
    },
    Table {
        name: "consent_state",
        order_by: "subject_id, campaign",
        identity: None,
        columns: &[
            ("subject_id", Text),
            ("campaign", Text),
            ("status", Text),
            ("since", Int),
            ("event_id", Int),
        ],
    },
    Table {
        name: "messages",
        order_by: "id",
        identity: None,
        columns: &[
            ("id", Text),
            ("kind", Text),
            ("mail_from", Text),
            ("client_ip", Text),
            ("helo", Text),
            ("auth_user", Text),
            ("campaign", Text),
            ("header_message_id", Text),
            ("size", Int),
            ("body", Blob),
            ("received_at", Int),
            ("smtputf8", Bool),
            ("about_delivery", Int),
        ],
    },
    Table {
        name: "decisions",
        order_by: "id",
        identity: Some("id"),
        columns: &[
            ("id", Int),
            ("message_id", Text),
            ("recipient", Text),
            ("subject_id", Text),
            ("campaign", Text),
            ("outcome", Text),
            ("reason", Text),
            ("event_id", Int),
            ("stage", Text),
            ("at", Int),
        ],
    },
    Table {
        name: "deliveries",
        order_by: "id",
        identity: Some("id"),
        columns: &[
            ("id", Int),
            ("message_id", Text),
            ("recipient", Text),
            ("status", Text),
            ("attempts", Int),
            ("next_attempt_at", Int),
            ("last_reply", Text),
            ("lease_owner", Text),
            ("lease_until", Int),
            ("created_at", Int),
            ("updated_at", Int),
            ("rcpt_to", Text),
        ],
    },
    Table {
        name: "delivery_attempts",
        order_by: "id",
        identity: Some("id"),
        columns: &[
            ("id", Int),
            ("delivery_id", Int),
            ("at", Int),
            ("status", Text),
            ("reply", Text),
        ],
    },
    Table {
        name: "webhook_outbox",
        order_by: "event_id",
        identity: None,
        columns: &[
            ("event_id", Int),
            ("subject_id", Text),
            ("status", Text),
            ("attempts", Int),
            ("next_attempt_at", Int),
            ("lease_owner", Text),
            ("lease_until", Int),
            ("last_error", Text),
            ("created_at", Int),
        ],
    },
    Table {
        name: "idempotency_keys",
        order_by: "key",
        identity: None,
        columns: &[
            ("key", Text),
            ("request_hash", Text),
            ("status", Int),
            ("response", Text),
            ("event_id", Int),
            ("created_at", Int),
        ],
    },
    // Copied as they are: a node starting on the new store under its name
    // finds its row stale and takes it.
    Table {
        name: "nodes",
        order_by: "name",
        identity: None,
        columns: &[
            ("name", Text),
            ("instance", Text),
            ("started_at", Int),
            ("last_seen", Int),
        ],
    },
    Table {
        name: "feedback_reports",
        order_by: "id",
        identity: Some("id"),
        columns: &[
            ("id", Int),
            ("digest", Text),
            ("door", Text),
            ("envelope_from", Text),
            ("envelope_to", Text),
            ("client_ip", Text),
            ("size", Int),
            ("raw", Blob),
            ("received_at", Int),
            ("state", Text),
            ("kind", Text),
            ("delivery_id", Int),
            ("subject_id", Text),
            ("campaign", Text),
            ("result", Text),
            ("detail", Text),
            ("processed_at", Int),
        ],
    },
    Table {
        name: "suppressions",
        order_by: "id",
        identity: Some("id"),
        columns: &[
            ("id", Int),
            ("subject_id", Text),
            ("kind", Text),
            ("status_code", Text),
            ("diagnostic", Text),
            ("source", Text),
            ("report_id", Int),
            ("delivery_id", Int),
            ("campaign", Text),
            ("since", Int),
            ("until_at", Int),
            ("removed_at", Int),
            ("removed_by", Text),
            ("removed_reason", Text),
        ],
    },
    Table {
        name: "soft_bounces",
        order_by: "subject_id, day",
        identity: None,
        columns: &[
            ("subject_id", Text),
            ("day", Int),
            ("sent_at", Int),
            ("report_id", Int),
            ("delivery_id", Int),
        ],
    },
    Table {
        name: "campaign_days",
        order_by: "campaign, day",
        identity: None,
        columns: &[
            ("campaign", Text),
            ("day", Int),
            ("delivered", Int),
            ("hard_bounces", Int),
            ("soft_bounces", Int),
            ("complaints", Int),
            ("warned_at", Int),
        ],
    },
    Table {
        name: "daily_counts",
        order_by: "day, campaign, metric, slot",
        identity: None,
        columns: &[
            ("day", Int),
            ("campaign", Text),
            ("metric", Text),
            ("slot", Int),
            ("n", Int),
        ],
    },
    Table {
        name: "campaign_pauses",
        order_by: "campaign",
        identity: None,
        columns: &[
            ("campaign", Text),
            ("paused_at", Int),
            ("paused_by", Text),
            ("reason", Text),
        ],
    },
    Table {
        name: "webhook_notices",
        order_by: "id",
        identity: Some("id"),
        columns: &[
            ("id", Int),
            ("kind", Text),
            ("subject_id", Text),
            ("payload", Text),
            ("status", Text),
            ("attempts", Int),
            ("next_attempt_at", Int),
            ("lease_owner", Text),
            ("lease_until", Int),
            ("last_error", Text),
            ("created_at", Int),
        ],
    },
    Table {
        name: "operator_sessions",
        order_by: "id_hash",
        identity: None,
        columns: &[
            ("id_hash", Text),
            ("operator", Text),
            ("csrf", Text),
            ("created_at", Int),
            ("seen_at", Int),
            ("ip", Text),
            ("user_agent", Text),
        ],
    },
    Table {
        name: "audit_events",
        order_by: "id",
        identity: Some("id"),
        columns: &[
            ("id", Int),
            ("at", Int),
            ("actor", Text),
            ("via", Text),
            ("action", Text),
            ("subject_id", Text),
            ("target", Text),
            ("detail", Text),
        ],
    },
    Table {
        name: "store_steps",
        order_by: "name",
        identity: None,
        columns: &[("name", Text), ("done_at", Int)],
    },
];

/// Rows per INSERT, and the most body bytes one INSERT carries.
const BATCH_ROWS: usize = 1000;
const BATCH_BYTES: usize = 16 << 20;

/// One column's value, typed by its column.
#[derive(Debug, Clone)]
enum Value {
    Int(Option<i64>),
    Text(Option<String>),
    Blob(Option<Vec<u8>>),
    Bool(Option<bool>),
}

impl Value {
    fn size(&self) -> usize {
        match self {
            Value::Text(Some(s)) => s.len(),
            Value::Blob(Some(b)) => b.len(),
            _ => 8,
        }
    }
}

/// What one table held: rows in the source, rows copied, rows in the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCount {
    pub table: &'static str,
    pub source: i64,
    pub target: i64,
}

/// Runs `migrate-store`: prints one line per table with its row count.
pub async fn run(args: MigrateArgs) -> anyhow::Result<()> {
    let from = parse_url("--from", &args.from)?;
    let to = parse_url("--to", &args.to)?;
    if from == to {
        return Err(usage("--from and --to name the same store"));
    }
    let counts = migrate(&from, &to).await?;
    println!("{:<18} {:>10}", "table", "rows");
    for c in &counts {
        println!("{:<18} {:>10}", c.table, c.target);
    }
    println!(
        "copied {} rows from {} to {}; every table's count matches",
        counts.iter().map(|c| c.target).sum::<i64>(),
        shown(&args.from),
        shown(&args.to)
    );
    Ok(())
}

fn usage(message: impl Into<String>) -> anyhow::Error {
    Exit {
        code: EXIT_CONFIG,
        message: message.into(),
    }
    .into()
}

/// A URL as printed: without its password.
fn shown(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

fn parse_url(flag: &str, text: &str) -> anyhow::Result<StoreUrl> {
    StoreUrl::parse(text).map_err(|what| usage(format!("{flag}: {what}")))
}

/// Copies every table of `from` into the empty store `to`, in one
/// transaction on `to`, and returns the per-table counts (all matching).
pub async fn migrate(from: &StoreUrl, to: &StoreUrl) -> anyhow::Result<Vec<TableCount>> {
    // The source first: a missing file or a running serve is said before
    // the target is touched.
    let _source_lock;
    let source = match from {
        StoreUrl::Sqlite(path) => {
            if !path.is_file() {
                return Err(usage(format!(
                    "--from: {} does not exist (name the database file serve uses)",
                    path.display()
                )));
            }
            _source_lock = Some(take_sqlite_lock(path).map_err(|e| {
                anyhow::anyhow!("--from: {e}; stop that serve before migrate-store")
            })?);
            let options = SqliteConnectOptions::new()
                .filename(path)
                .read_only(true)
                .busy_timeout(std::time::Duration::from_secs(10));
            let conn = SqliteConnection::connect_with(&options)
                .await
                .with_context(|| format!("--from: cannot open {}", path.display()))?;
            Conn::Sqlite(conn)
        }
        StoreUrl::Postgres(url) => {
            _source_lock = None;
            let conn = PgConnection::connect(url)
                .await
                .with_context(|| format!("--from: cannot connect to {}", shown(url)))?;
            Conn::Pg(conn)
        }
    };
    let mut source = source;
    source.check_source().await?;

    // The target's schema by the store's own open (migrations run), then a
    // connection of our own for one transaction. A SQLite target is locked
    // like `serve` locks it, so no relay starts on it midway.
    let _target_lock = match to {
        StoreUrl::Sqlite(path) => Some(
            take_sqlite_lock(path)
                .map_err(|e| anyhow::anyhow!("--to: {e}; stop that serve before migrate-store"))?,
        ),
        StoreUrl::Postgres(_) => None,
    };
    let config = StoreConfig {
        url: to.clone(),
        pool_size: 2,
        webhook_outbox: false,
    };
    let store = Store::open(&config, false)
        .await
        .context("--to: cannot open the target store")?;
    store.close().await;
    let mut target = match to {
        StoreUrl::Sqlite(path) => {
            let options = SqliteConnectOptions::new()
                .filename(path)
                .busy_timeout(std::time::Duration::from_secs(10))
                .foreign_keys(true);
            Conn::Sqlite(SqliteConnection::connect_with(&options).await?)
        }
        StoreUrl::Postgres(url) => Conn::Pg(PgConnection::connect(url).await?),
    };

    source.begin_snapshot().await?;
    target.execute("BEGIN").await?;
    let copied = copy_all(&mut source, &mut target).await;
    match copied {
        Ok(counts) => {
            target.execute("COMMIT").await?;
            source.execute("ROLLBACK").await?;
            Ok(counts)
        }
        Err(e) => {
            let _ = target.execute("ROLLBACK").await;
            let _ = source.execute("ROLLBACK").await;
            Err(e)
        }
    }
}

async fn copy_all(source: &mut Conn, target: &mut Conn) -> anyhow::Result<Vec<TableCount>> {
    let mut full = Vec::new();
    for t in TABLES {
        if target.count(t.name).await? > 0 {
            full.push(t.name);
        }
    }
    if !full.is_empty() {
        bail!(
            "--to: the target store is not empty (rows in {}); migrate-store copies only into an empty store: name a new database or schema",
            full.join(", ")
        );
    }
    let mut counts = Vec::new();
    for t in TABLES {
        let expected = source.count(t.name).await?;
        let written = copy_table(source, target, t)
            .await
            .with_context(|| format!("copying {}", t.name))?;
        if let (Conn::Pg(pg), Some(id)) = (&mut *target, t.identity) {
            sqlx::query(AssertSqlSafe(format!(
                "SELECT setval(pg_get_serial_sequence('{0}', '{id}'), COALESCE(MAX({id}), 0) + 1, false) FROM {0}",
                t.name
            )))
            .execute(&mut *pg)
            .await?;
        }
        let got = target.count(t.name).await?;
        if got != expected || written != expected {
            bail!(
                "{}: the source holds {expected} rows, {written} were read and the target holds {got}; nothing was committed",
                t.name
            );
        }
        counts.push(TableCount {
            table: t.name,
            source: expected,
            target: got,
        });
    }
    Ok(counts)
}

/// Streams one table from the source and writes it in batches.
async fn copy_table(source: &mut Conn, target: &mut Conn, t: &Table) -> anyhow::Result<i64> {
    let columns: Vec<&str> = t.columns.iter().map(|c| c.0).collect();
    let select = format!(
        "SELECT {} FROM {} ORDER BY {}",
        columns.join(", "),
        t.name,
        t.order_by
    );
    let mut rows: BoxStream<'_, anyhow::Result<Vec<Value>>> = match source {
        Conn::Sqlite(c) => sqlx::query(AssertSqlSafe(select.as_str()))
            .fetch(c)
            .map(|r| decode_row::<Sqlite>(&r?, t.columns))
            .boxed(),
        Conn::Pg(c) => sqlx::query(AssertSqlSafe(select.as_str()))
            .fetch(c)
            .map(|r| decode_row::<Postgres>(&r?, t.columns))
            .boxed(),
    };
    let mut batch: Vec<Vec<Value>> = Vec::new();
    let (mut bytes, mut total) = (0, 0i64);
    while let Some(row) = rows.try_next().await? {
        bytes += row.iter().map(Value::size).sum::<usize>();
        batch.push(row);
        if batch.len() >= BATCH_ROWS || bytes >= BATCH_BYTES {
            total += batch.len() as i64;
            target
                .insert(t, &columns, std::mem::take(&mut batch))
                .await?;
            bytes = 0;
        }
    }
    if !batch.is_empty() {
        total += batch.len() as i64;
        target.insert(t, &columns, batch).await?;
    }
    Ok(total)
}

enum Conn {
    Sqlite(SqliteConnection),
    Pg(PgConnection),
}

impl Conn {
    async fn execute(&mut self, sql: &'static str) -> anyhow::Result<()> {
        match self {
            Conn::Sqlite(c) => sqlx::raw_sql(sql).execute(c).await.map(drop)?,
            Conn::Pg(c) => sqlx::raw_sql(sql).execute(c).await.map(drop)?,
        }
        Ok(())
    }

    /// One consistent view of the source for the whole copy.
    async fn begin_snapshot(&mut self) -> anyhow::Result<()> {
        match self {
            Conn::Sqlite(_) => self.execute("BEGIN").await,
            Conn::Pg(_) => {
                self.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await
            }
        }
    }

    async fn count(&mut self, table: &str) -> anyhow::Result<i64> {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        Ok(match self {
            Conn::Sqlite(c) => {
                sqlx::query_scalar(AssertSqlSafe(sql.as_str()))
                    .fetch_one(c)
                    .await?
            }
            Conn::Pg(c) => {
                sqlx::query_scalar(AssertSqlSafe(sql.as_str()))
                    .fetch_one(c)
                    .await?
            }
        })
    }

    /// The source's schema is the one this build copies: every migration
    /// applied, and no table this build does not know.
    async fn check_source(&mut self) -> anyhow::Result<()> {
        let (applied, latest, tables): (Option<i64>, i64, Vec<String>) = match self {
            Conn::Sqlite(c) => (
                sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
                    .fetch_one(&mut *c)
                    .await
                    .context("--from: not a consent-relay database (no _sqlx_migrations)")?,
                latest(&sqlx::migrate!("migrations/sqlite")),
                sqlx::query_scalar(
                    "SELECT name FROM sqlite_master WHERE type = 'table' \
                     AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations'",
                )
                .fetch_all(&mut *c)
                .await?,
            ),
            Conn::Pg(c) => (
                sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
                    .fetch_one(&mut *c)
                    .await
                    .context("--from: not a consent-relay database (no _sqlx_migrations)")?,
                latest(&sqlx::migrate!("migrations/postgres")),
                sqlx::query_scalar(
                    "SELECT table_name::TEXT FROM information_schema.tables \
                     WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' \
                     AND table_name <> '_sqlx_migrations'",
                )
                .fetch_all(&mut *c)
                .await?,
            ),
        };
        if applied != Some(latest) {
            bail!(
                "--from: the store's schema is at migration {}, this build's at {latest}: start this version's serve on it once (it migrates), stop it, then run migrate-store",
                applied.map_or("none".to_owned(), |v| v.to_string())
            );
        }
        let unknown: Vec<&str> = tables
            .iter()
            .map(String::as_str)
            .filter(|n| !TABLES.iter().any(|t| t.name == *n))
            .collect();
        if !unknown.is_empty() {
            bail!(
                "--from: the store has tables this build does not copy ({}): use the consent-relay version that made them",
                unknown.join(", ")
            );
        }
        Ok(())
    }

    async fn insert(
        &mut self,
        t: &Table,
        columns: &[&str],
        rows: Vec<Vec<Value>>,
    ) -> anyhow::Result<()> {
        match self {
            Conn::Sqlite(c) => {
                let mut q = insert_query::<Sqlite>(t, columns, rows);
                q.build().execute(c).await?;
            }
            Conn::Pg(c) => {
                let mut q = insert_query::<Postgres>(t, columns, rows);
                q.build().execute(c).await?;
            }
        }
        Ok(())
    }
}

fn latest(m: &sqlx::migrate::Migrator) -> i64 {
    m.iter().map(|m| m.version).max().unwrap_or(0)
}

fn decode_row<DB: Database>(row: &DB::Row, columns: &[(&str, Kind)]) -> anyhow::Result<Vec<Value>>
where
    usize: ColumnIndex<DB::Row>,
    for<'r> Option<i64>: Decode<'r, DB> + Type<DB>,
    for<'r> Option<String>: Decode<'r, DB> + Type<DB>,
    for<'r> Option<Vec<u8>>: Decode<'r, DB> + Type<DB>,
    for<'r> Option<bool>: Decode<'r, DB> + Type<DB>,
{
    columns
        .iter()
        .enumerate()
        .map(|(i, (name, kind))| {
            let v = match kind {
                Int => row.try_get(i).map(Value::Int),
                Text => row.try_get(i).map(Value::Text),
                Blob => row.try_get(i).map(Value::Blob),
                Bool => row.try_get(i).map(Value::Bool),
            };
            v.with_context(|| format!("column {name}"))
        })
        .collect()
}

fn insert_query<DB: Database>(
    t: &Table,
    columns: &[&str],
    rows: Vec<Vec<Value>>,
) -> QueryBuilder<DB>
where
    DB::Arguments: Default,
    for<'a> Option<i64>: Encode<'a, DB> + Type<DB>,
    for<'a> Option<String>: Encode<'a, DB> + Type<DB>,
    for<'a> Option<Vec<u8>>: Encode<'a, DB> + Type<DB>,
    for<'a> Option<bool>: Encode<'a, DB> + Type<DB>,
{
    let mut q = QueryBuilder::new(format!("INSERT INTO {} ({}) ", t.name, columns.join(", ")));
    q.push_values(rows, |mut b, row| {
        for v in row {
            match v {
                Value::Int(x) => b.push_bind(x),
                Value::Text(x) => b.push_bind(x),
                Value::Blob(x) => b.push_bind(x),
                Value::Bool(x) => b.push_bind(x),
            };
        }
    });
    q
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// The copied columns are exactly those `migrations/sqlite/*.sql` make,
    /// with their types; and no table is left out.
    #[tokio::test]
    async fn tables_match_the_sqlite_schema() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("schema.db");
        let store = crate::store::SqliteStore::open(&path, 1, false)
            .await
            .expect("open");
        store.close().await;
        let options = SqliteConnectOptions::new().filename(&path).read_only(true);
        let mut c = SqliteConnection::connect_with(&options)
            .await
            .expect("connect");
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations' ORDER BY name",
        )
        .fetch_all(&mut c)
        .await
        .expect("tables");
        let mut ours: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
        ours.sort_unstable();
        assert_eq!(tables, ours);
        for t in TABLES {
            let columns: Vec<(String, String)> = sqlx::query_as(AssertSqlSafe(format!(
                "SELECT name, type FROM pragma_table_info('{}')",
                t.name
            )))
            .fetch_all(&mut c)
            .await
            .expect("columns");
            let names: Vec<&str> = columns.iter().map(|c| c.0.as_str()).collect();
            let ours: Vec<&str> = t.columns.iter().map(|c| c.0).collect();
            assert_eq!(names, ours, "{}", t.name);
            for ((name, ty), (_, kind)) in columns.iter().zip(t.columns) {
                let types: &[&str] = match kind {
                    Int => &["INTEGER", "BIGINT"],
                    Text => &["TEXT"],
                    Blob => &["BLOB"],
                    Bool => &["BOOLEAN"],
                };
                assert!(types.contains(&ty.as_str()), "{}.{name} is {ty}", t.name);
            }
        }
    }

    #[test]
    fn urls() {
        assert!(
            matches!(parse_url("--to", "sqlite:///x/y.db"), Ok(StoreUrl::Sqlite(p)) if p == Path::new("/x/y.db"))
        );
        assert!(matches!(
            parse_url("--to", "postgres://u@h/db"),
            Ok(StoreUrl::Postgres(_))
        ));
        for bad in ["mysql://x", "sqlite://", "sqlite::memory:", "x.db"] {
            let e = parse_url("--to", bad).expect_err(bad);
            assert_eq!(
                e.downcast_ref::<Exit>().map(|x| x.code),
                Some(EXIT_CONFIG),
                "{bad}"
            );
            assert!(e.to_string().starts_with("--to: "), "{e}");
        }
        assert_eq!(shown("postgres://u:secret@h/db"), "postgres://u:***@h/db");
    }
}
