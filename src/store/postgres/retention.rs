//! What the PostgreSQL store removes after the fact (see
//! `sqlite/retention.rs`, the same statements in the same order): the
//! `[retention]` purge in bounded batches, each its own transaction so
//! writers on every node wait at most one batch; its dry-run counts; and
//! the scrubbing of an erasure notice once its delivery has ended.

use sqlx::{PgConnection, Row};

use super::super::{PurgeCutoffs, PurgeReport, PurgeStep, StoreError};

/// Rows a purge batch reads or removes at most.
const PURGE_BATCH: i64 = 2000;

/// The advisory lock (`pg_advisory_xact_lock(bigint)`) a purge batch holds,
/// so several nodes purging at once run their batches one after another.
pub(super) const PURGE_LOCK: i64 = 0x6372_0003;

/// Runs one purge step, in the caller's transaction; returns what it
/// removed and the next step.
pub(super) async fn purge_batch(
    conn: &mut PgConnection,
    step: &PurgeStep,
) -> Result<(PurgeReport, Option<PurgeStep>), StoreError> {
    let mut removed = PurgeReport::default();
    let next = match step {
        PurgeStep::Bodies { cutoffs, after } => {
            let cutoff = &cutoffs.message_bodies;
            let decisions = PurgeStep::Decisions {
                cutoff: cutoffs.decisions,
            };
            // The next messages that still hold a body, through the partial
            // index; a body goes when every delivery of its message ended
            // before the cut-off (a message with none ended when received).
            let batch = sqlx::query(
                "SELECT received_at, id FROM messages WHERE body IS NOT NULL AND received_at <= $1 \
                 AND (received_at, id) > ($2, $3) ORDER BY received_at, id LIMIT $4",
            )
            .bind(cutoff)
            .bind(after.0)
            .bind(&after.1)
            .bind(PURGE_BATCH)
            .fetch_all(&mut *conn)
            .await?;
            let Some(last) = batch.last() else {
                return Ok((removed, Some(decisions)));
            };
            let last: (i64, String) = (last.try_get(0)?, last.try_get(1)?);
            removed.message_bodies = sqlx::query(
                "UPDATE messages SET body = NULL WHERE body IS NOT NULL AND received_at <= $1 \
                 AND (received_at, id) > ($2, $3) AND (received_at, id) <= ($4, $5) \
                 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = messages.id \
                     AND (d.status NOT IN ('sent', 'failed', 'suppressed-late') OR d.updated_at > $1))",
            )
            .bind(cutoff)
            .bind(after.0)
            .bind(&after.1)
            .bind(last.0)
            .bind(&last.1)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if (batch.len() as i64) < PURGE_BATCH {
                Some(decisions)
            } else {
                Some(PurgeStep::Bodies {
                    cutoffs: *cutoffs,
                    after: last,
                })
            }
        }
        PurgeStep::Decisions { cutoff } => {
            let ids: Vec<String> = first_column(
                sqlx::query(
                    "DELETE FROM decisions WHERE id IN \
                     (SELECT id FROM decisions WHERE at < $1 ORDER BY at LIMIT $2) RETURNING message_id",
                )
                .bind(cutoff)
                .bind(PURGE_BATCH)
                .fetch_all(&mut *conn)
                .await?,
            )?;
            removed.decisions = ids.len() as u64;
            removed.messages = delete_emptied(conn, ids.clone()).await?;
            if (ids.len() as i64) < PURGE_BATCH {
                Some(PurgeStep::Deliveries {
                    cutoff: *cutoff,
                    after: 0,
                })
            } else {
                Some(step.clone())
            }
        }
        PurgeStep::Deliveries { cutoff, after } => {
            // Walk by id: ids grow with `created_at`, and a row created
            // after the cut-off ended after it too, so the walk stops there.
            let batch = sqlx::query(
                "SELECT id, created_at FROM deliveries WHERE id > $1 ORDER BY id LIMIT $2",
            )
            .bind(after)
            .bind(PURGE_BATCH)
            .fetch_all(&mut *conn)
            .await?;
            let Some(last) = batch.last() else {
                return Ok((removed, None));
            };
            let (last_id, last_created): (i64, i64) = (last.try_get(0)?, last.try_get(1)?);
            let ids: Vec<String> = first_column(
                sqlx::query(
                    "DELETE FROM deliveries WHERE id > $1 AND id <= $2 AND status IN ('sent', 'failed', 'suppressed-late') \
                     AND updated_at < $3 RETURNING message_id",
                )
                .bind(after)
                .bind(last_id)
                .bind(cutoff)
                .fetch_all(&mut *conn)
                .await?,
            )?;
            removed.deliveries = ids.len() as u64;
            removed.messages = delete_emptied(conn, ids).await?;
            ((batch.len() as i64) == PURGE_BATCH && last_created < *cutoff).then_some(
                PurgeStep::Deliveries {
                    cutoff: *cutoff,
                    after: last_id,
                },
            )
        }
    };
    Ok((removed, next))
}

/// Deletes, among these messages, those left with no decision and no
/// delivery row; in the batch's transaction, so a message never outlives
/// its rows.
async fn delete_emptied(conn: &mut PgConnection, mut ids: Vec<String>) -> Result<u64, StoreError> {
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(0);
    }
    Ok(sqlx::query(
        "DELETE FROM messages WHERE id = ANY($1) \
         AND NOT EXISTS (SELECT 1 FROM decisions WHERE message_id = messages.id) \
         AND NOT EXISTS (SELECT 1 FROM deliveries WHERE message_id = messages.id)",
    )
    .bind(&ids)
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

/// The first column of every row.
fn first_column<T>(rows: Vec<sqlx::postgres::PgRow>) -> Result<Vec<T>, StoreError>
where
    T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    Ok(rows
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?)
}

/// What a purge with `c` would remove, in the caller's (snapshot) transaction.
pub(super) async fn purge_count(
    conn: &mut PgConnection,
    c: PurgeCutoffs,
) -> Result<PurgeReport, StoreError> {
    Ok(PurgeReport {
        message_bodies: count(
            conn,
            "SELECT COUNT(*) FROM messages WHERE body IS NOT NULL AND received_at <= $1 \
                 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = messages.id \
                     AND (d.status NOT IN ('sent', 'failed', 'suppressed-late') OR d.updated_at > $1))",
            c.message_bodies,
        )
        .await?,
        decisions: count(
            conn,
            "SELECT COUNT(*) FROM decisions WHERE at < $1",
            c.decisions,
        )
        .await?,
        deliveries: count(
            conn,
            "SELECT COUNT(*) FROM deliveries WHERE status IN ('sent', 'failed', 'suppressed-late') AND updated_at < $1",
            c.decisions,
        )
        .await?,
        // Messages with an old row and no row that stays.
        messages: count(
            conn,
            "SELECT COUNT(*) FROM messages m WHERE received_at < $1 \
                 AND (EXISTS (SELECT 1 FROM decisions d WHERE d.message_id = m.id AND d.at < $1) \
                   OR EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id \
                       AND d.status IN ('sent', 'failed', 'suppressed-late') AND d.updated_at < $1)) \
                 AND NOT EXISTS (SELECT 1 FROM decisions d WHERE d.message_id = m.id AND d.at >= $1) \
                 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id \
                     AND (d.status NOT IN ('sent', 'failed', 'suppressed-late') OR d.updated_at >= $1))",
            c.decisions,
        )
        .await?,
    })
}

async fn count(conn: &mut PgConnection, sql: &'static str, cutoff: i64) -> Result<u64, StoreError> {
    let n: i64 = sqlx::query(sql)
        .bind(cutoff)
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)?;
    Ok(n as u64)
}

/// Scrubs the erasure notices among these deliveries, whose outcome was
/// just recorded as final (see `sqlite/retention.rs`): their decision and
/// delivery rows name `erased:<address_hash>`, the upstream's reply keeps
/// only its code, and the body goes. Returns the number of notices scrubbed.
pub(super) async fn scrub_erasure_notices(
    conn: &mut PgConnection,
    final_ids: &[i64],
) -> Result<u64, StoreError> {
    if final_ids.is_empty() {
        return Ok(0);
    }
    let messages: Vec<String> = first_column(
        sqlx::query(
            "SELECT DISTINCT d.message_id FROM deliveries d JOIN messages m ON m.id = d.message_id \
             WHERE m.kind = 'erasure-notice' AND d.id = ANY($1)",
        )
        .bind(final_ids)
        .fetch_all(&mut *conn)
        .await?,
    )?;
    for id in &messages {
        // The notice's decision row names the erased subject (erase() set it).
        sqlx::query(
            "UPDATE decisions SET recipient = 'erased:' || \
             (SELECT address_hash FROM subjects s WHERE s.id = decisions.subject_id) \
             WHERE message_id = $1 AND subject_id IS NOT NULL",
        )
        .bind(id)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "UPDATE deliveries SET recipient = \
             (SELECT recipient FROM decisions WHERE decisions.message_id = deliveries.message_id LIMIT 1), \
             last_reply = substr(last_reply, 1, 3) || ' (reply removed with the erased address)' \
             WHERE message_id = $1",
        )
        .bind(id)
        .execute(&mut *conn)
        .await?;
        sqlx::query("UPDATE messages SET body = NULL WHERE id = $1")
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(messages.len() as u64)
}
