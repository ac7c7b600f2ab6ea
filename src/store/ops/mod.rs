//! The store's domain operations, written once for both backends: accept,
//! outcomes, consent events, erasure, imports and keyed events, purge,
//! the webhook outbox, the read queries and the message trace. Each write
//! is an [`Op`]: its input, and what it does in the caller's transaction
//! over a [`Conn`].
//!
//! [`Conn`] is the seam: what SQLite and PostgreSQL do differently. Binding
//! (lists as `IN (...)` or as one array), row locks (`FOR UPDATE` on
//! PostgreSQL, where several nodes write; SQLite has one writer), reading
//! an `EXISTS`, and the few statements each backend writes its own way (the
//! multi-row inserts of accepted mail, leasing due rows, recording a batch
//! of outcomes and their attempts, advisory locks). The backends own that,
//! and how a transaction is run (SQLite's group-commit writer, PostgreSQL's pool);
//! this module owns what the operations mean.

pub(super) mod accept;
pub(super) mod audit;
pub(super) mod consent;
pub(super) mod erase;
pub(super) mod feedback;
pub(super) mod guard;
pub(super) mod identity;
pub(super) mod import;
pub(super) mod nodes;
pub(super) mod outcomes;
pub(super) mod purge;
pub(super) mod queue;
pub(super) mod reads;
pub(super) mod rollups;
pub(super) mod sessions;
pub(super) mod suppressions;
pub(super) mod trace;
pub(super) mod webhooks;

use std::borrow::Cow;
use std::collections::HashSet;
use std::future::Future;

use super::rows::Cols;
use super::{AttemptRecord, ClaimedDelivery, NewMessage, StoreError};

/// A value bound to a statement.
#[derive(Debug, Clone, Copy)]
pub(super) enum Val<'a> {
    Int(i64),
    OptInt(Option<i64>),
    Text(&'a str),
    OptText(Option<&'a str>),
    Bool(bool),
    Blob(Option<&'a [u8]>),
    /// A list, bound as one array (only where [`Conn::ARRAYS`]).
    Texts(&'a [String]),
    Ints(&'a [i64]),
}

impl From<i64> for Val<'_> {
    fn from(v: i64) -> Self {
        Val::Int(v)
    }
}
impl From<bool> for Val<'_> {
    fn from(v: bool) -> Self {
        Val::Bool(v)
    }
}
impl From<Option<i64>> for Val<'_> {
    fn from(v: Option<i64>) -> Self {
        Val::OptInt(v)
    }
}
impl<'a> From<&'a str> for Val<'a> {
    fn from(v: &'a str) -> Self {
        Val::Text(v)
    }
}
impl<'a> From<&'a String> for Val<'a> {
    fn from(v: &'a String) -> Self {
        Val::Text(v)
    }
}
impl<'a> From<Option<&'a str>> for Val<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Val::OptText(v)
    }
}
impl<'a> From<&'a Option<String>> for Val<'a> {
    fn from(v: &'a Option<String>) -> Self {
        Val::OptText(v.as_deref())
    }
}

/// A statement and its values. Written with `$1`, `$2`, ... (both backends
/// read them), or built with [`Sql::bind`] and the list binders, which
/// number the placeholders themselves.
#[derive(Debug)]
pub(super) struct Sql<'a> {
    pub(super) text: Cow<'static, str>,
    pub(super) args: Vec<Val<'a>>,
}

impl<'a> Sql<'a> {
    pub(super) fn new(text: &'static str) -> Self {
        Sql {
            text: Cow::Borrowed(text),
            args: Vec::new(),
        }
    }

    /// Binds the next `$n` the text already holds.
    pub(super) fn arg(mut self, v: impl Into<Val<'a>>) -> Self {
        self.args.push(v.into());
        self
    }

    pub(super) fn push(mut self, text: &str) -> Self {
        if !text.is_empty() {
            self.text.to_mut().push_str(text);
        }
        self
    }

    /// Appends a placeholder and binds it.
    pub(super) fn bind(self, v: impl Into<Val<'a>>) -> Self {
        let n = self.args.len() + 1;
        self.push(&format!("${n}")).arg(v)
    }

    /// Appends `IN (...)` over these values (`= ANY($n)` where lists are
    /// arrays). An empty list matches nothing.
    pub(super) fn texts<C: Conn>(self, values: &'a [String]) -> Self {
        if C::ARRAYS {
            return self.push(" = ANY(").bind(Val::Texts(values)).push(")");
        }
        self.in_list(values.iter().map(|v| Val::Text(v)))
    }

    /// [`Sql::texts`] for integers.
    pub(super) fn ints<C: Conn>(self, values: &'a [i64]) -> Self {
        if C::ARRAYS {
            return self.push(" = ANY(").bind(Val::Ints(values)).push(")");
        }
        self.in_list(values.iter().map(|v| Val::Int(*v)))
    }

    /// Appends `(..), (..), ...`: one group of placeholders per row.
    pub(super) fn values<const N: usize>(
        mut self,
        rows: impl IntoIterator<Item = [Val<'a>; N]>,
    ) -> Self {
        for (i, row) in rows.into_iter().enumerate() {
            self = self.push(if i == 0 { "(" } else { ", (" });
            for (j, v) in row.into_iter().enumerate() {
                if j > 0 {
                    self = self.push(", ");
                }
                self = self.bind(v);
            }
            self = self.push(")");
        }
        self
    }

    fn in_list(mut self, values: impl Iterator<Item = Val<'a>>) -> Self {
        self = self.push(" IN (");
        let mut first = true;
        for v in values {
            if !first {
                self = self.push(", ");
            }
            first = false;
            self = self.bind(v);
        }
        // `x IN (NULL)` is never true: an empty list matches nothing.
        if first {
            self = self.push("NULL");
        }
        self.push(")")
    }
}

/// Advisory lock spaces for keys several nodes may write at once.
#[derive(Debug, Clone, Copy)]
pub(super) enum KeySpace {
    Import,
    Idempotency,
    /// Data steps the store runs when it opens (`store_steps`).
    Step,
}

/// A connection of one backend, in the transaction an operation runs in:
/// the statements it runs, and what the backends do differently.
pub(super) trait Conn: Send + Sized {
    type Row: Cols + Send + Sync;
    /// Lists are bound as one array (`= ANY($1)`) rather than one value each.
    const ARRAYS: bool;
    /// Values a list binds at most in one statement.
    const LIST_CHUNK: usize;
    /// Appended to a `SELECT` of the subject row an operation changes:
    /// orders concurrent writers about one person (PostgreSQL, several
    /// nodes; SQLite's one writer needs nothing).
    const FOR_UPDATE: &'static str;
    /// The `slot` of `daily_counts` this connection adds to (an SQL
    /// expression): one per connection on PostgreSQL, so concurrent
    /// transactions rarely wait for one counter's row lock; SQLite's one
    /// writer uses one.
    const COUNT_SLOT: &'static str;
    /// Ends the `SELECT` of rows to lease: rows another node is leasing
    /// right now are left to it (PostgreSQL; SQLite has one writer).
    const SKIP_LOCKED: &'static str;
    /// Leases due deliveries: `$1` owner, `$2` lease until, `$3` now, `$4`
    /// limit; returns `id, message_id, recipient, attempts` and whatever
    /// [`Conn::claimed`] reads.
    const LEASE_DUE_DELIVERIES: &'static str;
    /// Takes deliveries whose lease expired, same binds and columns.
    const LEASE_EXPIRED_DELIVERIES: &'static str;
    /// Leases due webhook rows: `$1` owner, `$2` lease until, `$3` now,
    /// `$4` limit; returns `event_id, attempts`.
    const LEASE_DUE_WEBHOOKS: &'static str;
    /// Takes webhook rows whose lease expired, same binds and columns.
    const LEASE_EXPIRED_WEBHOOKS: &'static str;

    fn execute(&mut self, q: Sql<'_>) -> impl Future<Output = Result<u64, StoreError>> + Send;
    fn fetch_all(
        &mut self,
        q: Sql<'_>,
    ) -> impl Future<Output = Result<Vec<Self::Row>, StoreError>> + Send;
    fn fetch_optional(
        &mut self,
        q: Sql<'_>,
    ) -> impl Future<Output = Result<Option<Self::Row>, StoreError>> + Send;

    fn fetch_one(
        &mut self,
        q: Sql<'_>,
    ) -> impl Future<Output = Result<Self::Row, StoreError>> + Send {
        async move {
            self.fetch_optional(q)
                .await?
                .ok_or(StoreError::Db(sqlx::Error::RowNotFound))
        }
    }

    /// Inserts messages with their subjects, decisions and deliveries, a
    /// few multi-row statements for all of them, and adds them to the
    /// day's counts (`rollups::count_accepted`, last: on PostgreSQL the
    /// counters' row locks are held for the rest of the transaction only).
    fn insert_messages(
        &mut self,
        messages: &[&NewMessage],
        now: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The deliveries these leased rows name, with their messages' columns.
    fn claimed(
        &mut self,
        rows: Vec<Self::Row>,
    ) -> impl Future<Output = Result<Vec<ClaimedDelivery>, StoreError>> + Send;

    /// Sets these outcomes on rows still `sending`, and appends each real
    /// attempt upstream (`attempted`) of those rows to `delivery_attempts`:
    /// a statement for the batch, not one per row. Returns the ids it set.
    fn set_outcomes(
        &mut self,
        records: &[AttemptRecord],
        now: i64,
    ) -> impl Future<Output = Result<HashSet<i64>, StoreError>> + Send;

    /// Serialises transactions writing one of these keys (other nodes').
    fn lock_keys(
        &mut self,
        space: KeySpace,
        keys: &[&str],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Serialises purge batches (of several nodes).
    fn lock_purge(&mut self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Whether freed pages are zeroed (SQLite's `secure_delete`): on for
    /// erasure and purge, so no copy of what they remove stays.
    fn secure_delete(&mut self, on: bool) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Implements the statement-running part of [`Conn`] for a connection type.
macro_rules! conn_queries {
    ($db:ty) => {
        async fn execute(
            &mut self,
            q: $crate::store::ops::Sql<'_>,
        ) -> Result<u64, $crate::store::StoreError> {
            let query = $crate::store::ops::bound::<$db>(q);
            Ok(query.execute(&mut *self).await?.rows_affected())
        }

        async fn fetch_all(
            &mut self,
            q: $crate::store::ops::Sql<'_>,
        ) -> Result<Vec<Self::Row>, $crate::store::StoreError> {
            let query = $crate::store::ops::bound::<$db>(q);
            Ok(query.fetch_all(&mut *self).await?)
        }

        async fn fetch_optional(
            &mut self,
            q: $crate::store::ops::Sql<'_>,
        ) -> Result<Option<Self::Row>, $crate::store::StoreError> {
            let query = $crate::store::ops::bound::<$db>(q);
            Ok(query.fetch_optional(&mut *self).await?)
        }
    };
}
pub(super) use conn_queries;

/// How a backend binds a [`Val`].
pub(super) trait Binds: sqlx::Database {
    fn bind_val<'q>(
        q: sqlx::query::Query<'q, Self, <Self as sqlx::Database>::Arguments>,
        v: Val<'_>,
    ) -> sqlx::query::Query<'q, Self, <Self as sqlx::Database>::Arguments>;
}

/// `q` as a sqlx query with its values bound.
pub(super) fn bound<'q, DB: Binds>(
    q: Sql<'_>,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments> {
    let mut query = sqlx::query::<DB>(sqlx::AssertSqlSafe(q.text));
    for v in q.args {
        query = DB::bind_val(query, v);
    }
    query
}

/// Implements [`Binds`] for a backend: the scalars alike, then its arms
/// for [`Val::Texts`] and [`Val::Ints`].
macro_rules! binds {
    ($db:ty, |$q:ident| { $($list:pat => $bind:expr),* $(,)? }) => {
        impl $crate::store::ops::Binds for $db {
            fn bind_val<'q>(
                $q: sqlx::query::Query<'q, Self, <Self as sqlx::Database>::Arguments>,
                v: $crate::store::ops::Val<'_>,
            ) -> sqlx::query::Query<'q, Self, <Self as sqlx::Database>::Arguments> {
                use $crate::store::ops::Val;
                match v {
                    Val::Int(v) => $q.bind(v),
                    Val::OptInt(v) => $q.bind(v),
                    Val::Text(v) => $q.bind(v),
                    Val::OptText(v) => $q.bind(v),
                    Val::Bool(v) => $q.bind(v),
                    Val::Blob(v) => $q.bind(v),
                    $($list => $bind),*
                }
            }
        }
    };
}
pub(super) use binds;

/// One write of the store: its input, and what it does in a transaction.
/// Run by SQLite's writer (in a group transaction) or in a PostgreSQL
/// transaction of its own; the caller gets `Out` after the commit.
pub(super) trait Op: Send + Sync + 'static {
    type Out: Send + 'static;
    /// Runs in a transaction (false: statement by statement on PostgreSQL,
    /// as leases are, each statement atomic by itself).
    const ATOMIC: bool = true;

    fn run<C: Conn>(
        &self,
        c: &mut C,
        now: i64,
    ) -> impl Future<Output = Result<Self::Out, StoreError>> + Send;

    /// The message this op accepts: SQLite's writer inserts those of a
    /// group together instead of running them one by one.
    fn accepted(&self) -> Option<&NewMessage> {
        None
    }

    /// Whether `out` says consent events were written (the webhook
    /// dispatcher of this process wakes after the commit).
    fn wrote_events(_out: &Self::Out) -> bool {
        false
    }

    /// Whether `out` says personal data was removed (SQLite then truncates
    /// its WAL, which still holds the pages as they were).
    fn removed_personal_data(_out: &Self::Out) -> bool {
        false
    }
}

/// The first column of every row.
pub(super) fn first_texts(rows: &[impl Cols]) -> Result<Vec<String>, StoreError> {
    rows.iter().map(|r| r.text(0)).collect()
}

/// The first column of `select` (ending in the column a list matches) for
/// `values`, bound in chunks where lists bind one value each.
pub(super) async fn lookup<C: Conn>(
    c: &mut C,
    select: &'static str,
    values: &[String],
) -> Result<HashSet<String>, StoreError> {
    let mut found = HashSet::new();
    for chunk in values.chunks(C::LIST_CHUNK) {
        for row in c.fetch_all(Sql::new(select).texts::<C>(chunk)).await? {
            found.insert(row.text(0)?);
        }
    }
    Ok(found)
}
