//! The `[retention]` purge in bounded batches (each one transaction, so
//! writers wait at most one batch; on several nodes the batches run one
//! after another, [`Conn::lock_purge`]), and its dry-run counts.

use super::{Conn, Op, Sql, first_texts};
use crate::store::rows::Cols;
use crate::store::{PurgeCutoffs, PurgeReport, PurgeStep, StoreError};

/// Rows a purge batch reads or removes at most.
const PURGE_BATCH: i64 = 2000;

/// Runs one purge step; `Out` is what it removed and the next step.
pub(in crate::store) struct Purge(pub PurgeStep);

impl Op for Purge {
    type Out = (PurgeReport, Option<PurgeStep>);

    async fn run<C: Conn>(&self, c: &mut C, _: i64) -> Result<Self::Out, StoreError> {
        // One node runs each batch: a node purging at the same time waits
        // here, then finds what the first removed already gone (no two
        // batches delete the same rows in different orders, so no deadlock).
        c.lock_purge().await?;
        c.secure_delete(true).await?;
        let purged = purge_batch(c, &self.0).await;
        c.secure_delete(false).await?;
        purged
    }
}

async fn purge_batch<C: Conn>(
    c: &mut C,
    step: &PurgeStep,
) -> Result<(PurgeReport, Option<PurgeStep>), StoreError> {
    Ok(match step {
        PurgeStep::Bodies { cutoffs, after } => purge_bodies(c, cutoffs, after).await?,
        PurgeStep::Decisions { cutoff } => {
            let ids = first_texts(
                &c.fetch_all(
                    Sql::new(
                        "DELETE FROM decisions WHERE id IN \
                         (SELECT id FROM decisions WHERE at < $1 ORDER BY at LIMIT $2) RETURNING message_id",
                    )
                    .arg(*cutoff)
                    .arg(PURGE_BATCH),
                )
                .await?,
            )?;
            let removed = PurgeReport {
                decisions: ids.len() as u64,
                messages: delete_emptied(c, &ids).await?,
                ..PurgeReport::default()
            };
            let next = if (ids.len() as i64) < PURGE_BATCH {
                PurgeStep::Deliveries {
                    cutoff: *cutoff,
                    after: 0,
                }
            } else {
                step.clone()
            };
            (removed, Some(next))
        }
        PurgeStep::Deliveries { cutoff, after } => purge_deliveries(c, *cutoff, *after).await?,
    })
}

/// Bodies of messages whose deliveries all ended before the cut-off.
async fn purge_bodies<C: Conn>(
    c: &mut C,
    cutoffs: &PurgeCutoffs,
    after: &(i64, String),
) -> Result<(PurgeReport, Option<PurgeStep>), StoreError> {
    let cutoff = cutoffs.message_bodies;
    let decisions = PurgeStep::Decisions {
        cutoff: cutoffs.decisions,
    };
    // The next messages that still hold a body, through the partial
    // index; a body goes when every delivery of its message ended
    // before the cut-off (a message with none ended when received).
    let batch = c
        .fetch_all(
            Sql::new(
                "SELECT received_at, id FROM messages WHERE body IS NOT NULL AND received_at <= $1 \
                 AND (received_at, id) > ($2, $3) ORDER BY received_at, id LIMIT $4",
            )
            .arg(cutoff)
            .arg(after.0)
            .arg(&after.1)
            .arg(PURGE_BATCH),
        )
        .await?;
    let Some(last) = batch.last() else {
        return Ok((PurgeReport::default(), Some(decisions)));
    };
    let last: (i64, String) = (last.int(0)?, last.text(1)?);
    let removed = PurgeReport {
        message_bodies: c
            .execute(
                Sql::new(
                    "UPDATE messages SET body = NULL WHERE body IS NOT NULL AND received_at <= $1 \
                     AND (received_at, id) > ($2, $3) AND (received_at, id) <= ($4, $5) \
                     AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = messages.id \
                         AND (d.status NOT IN ('sent', 'failed', 'suppressed-late', 'dropped') OR d.updated_at > $1))",
                )
                .arg(cutoff)
                .arg(after.0)
                .arg(&after.1)
                .arg(last.0)
                .arg(&last.1),
            )
            .await?,
        ..PurgeReport::default()
    };
    let next = if (batch.len() as i64) < PURGE_BATCH {
        decisions
    } else {
        PurgeStep::Bodies {
            cutoffs: *cutoffs,
            after: last,
        }
    };
    Ok((removed, Some(next)))
}

/// Final delivery rows that ended before the cut-off, with their
/// attempts, walking by id: ids grow with `created_at`, and a row created
/// after the cut-off ended after it too, so the walk stops there.
async fn purge_deliveries<C: Conn>(
    c: &mut C,
    cutoff: i64,
    after: i64,
) -> Result<(PurgeReport, Option<PurgeStep>), StoreError> {
    let batch = c
        .fetch_all(
            Sql::new("SELECT id, created_at FROM deliveries WHERE id > $1 ORDER BY id LIMIT $2")
                .arg(after)
                .arg(PURGE_BATCH),
        )
        .await?;
    let Some(last) = batch.last() else {
        return Ok((PurgeReport::default(), None));
    };
    let (last_id, last_created) = (last.int(0)?, last.int(1)?);
    // A delivery's attempts go with it (before it: they reference it).
    c.execute(
        Sql::new(
            "DELETE FROM delivery_attempts WHERE delivery_id IN (SELECT id FROM deliveries \
             WHERE id > $1 AND id <= $2 AND status IN ('sent', 'failed', 'suppressed-late', 'dropped') \
             AND updated_at < $3)",
        )
        .arg(after)
        .arg(last_id)
        .arg(cutoff),
    )
    .await?;
    let ids = first_texts(
        &c.fetch_all(
            Sql::new(
                "DELETE FROM deliveries WHERE id > $1 AND id <= $2 AND status IN ('sent', 'failed', 'suppressed-late', 'dropped') \
                 AND updated_at < $3 RETURNING message_id",
            )
            .arg(after)
            .arg(last_id)
            .arg(cutoff),
        )
        .await?,
    )?;
    let removed = PurgeReport {
        deliveries: ids.len() as u64,
        messages: delete_emptied(c, &ids).await?,
        ..PurgeReport::default()
    };
    let next = ((batch.len() as i64) == PURGE_BATCH && last_created < cutoff).then_some(
        PurgeStep::Deliveries {
            cutoff,
            after: last_id,
        },
    );
    Ok((removed, next))
}

/// Deletes, among these messages, those left with no decision and no
/// delivery row; in the batch's transaction, so a message never outlives
/// its rows.
async fn delete_emptied<C: Conn>(c: &mut C, ids: &[String]) -> Result<u64, StoreError> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let mut deleted = 0;
    for chunk in ids.chunks(C::LIST_CHUNK) {
        deleted += c
            .execute(
                Sql::new("DELETE FROM messages WHERE id")
                    .texts::<C>(chunk)
                    .push(
                        " AND NOT EXISTS (SELECT 1 FROM decisions WHERE message_id = messages.id) \
                         AND NOT EXISTS (SELECT 1 FROM deliveries WHERE message_id = messages.id)",
                    ),
            )
            .await?;
    }
    Ok(deleted)
}

/// What a purge with `c` would remove, in the caller's (snapshot) transaction.
pub(in crate::store) async fn purge_count<C: Conn>(
    c: &mut C,
    cutoffs: PurgeCutoffs,
) -> Result<PurgeReport, StoreError> {
    Ok(PurgeReport {
        message_bodies: count(
            c,
            "SELECT COUNT(*) FROM messages WHERE body IS NOT NULL AND received_at <= $1 \
                 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = messages.id \
                     AND (d.status NOT IN ('sent', 'failed', 'suppressed-late', 'dropped') OR d.updated_at > $1))",
            cutoffs.message_bodies,
        )
        .await?,
        decisions: count(
            c,
            "SELECT COUNT(*) FROM decisions WHERE at < $1",
            cutoffs.decisions,
        )
        .await?,
        deliveries: count(
            c,
            "SELECT COUNT(*) FROM deliveries WHERE status IN ('sent', 'failed', 'suppressed-late', 'dropped') AND updated_at < $1",
            cutoffs.decisions,
        )
        .await?,
        // Messages with an old row and no row that stays.
        messages: count(
            c,
            "SELECT COUNT(*) FROM messages m WHERE received_at < $1 \
                 AND (EXISTS (SELECT 1 FROM decisions d WHERE d.message_id = m.id AND d.at < $1) \
                   OR EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id \
                       AND d.status IN ('sent', 'failed', 'suppressed-late', 'dropped') AND d.updated_at < $1)) \
                 AND NOT EXISTS (SELECT 1 FROM decisions d WHERE d.message_id = m.id AND d.at >= $1) \
                 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id \
                     AND (d.status NOT IN ('sent', 'failed', 'suppressed-late', 'dropped') OR d.updated_at >= $1))",
            cutoffs.decisions,
        )
        .await?,
    })
}

async fn count<C: Conn>(c: &mut C, sql: &'static str, cutoff: i64) -> Result<u64, StoreError> {
    Ok(c.fetch_one(Sql::new(sql).arg(cutoff)).await?.int(0)? as u64)
}
