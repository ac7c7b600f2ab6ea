//! The message trace's reads, and each copy's attempts: a message by its
//! queue id or its `Message-ID` (through `messages_header_message_id`),
//! its decision rows, its deliveries and their `delivery_attempts`, each
//! an indexed lookup. Run in the caller's snapshot, so the rows agree.

use std::collections::HashMap;

use super::{Conn, Sql};
use crate::mail::ids;
use crate::store::rows::{
    Cols, DECISIONS_SELECT, DELIVERIES_SELECT, attempt_from_row, decision_from_row,
    delivery_from_row,
};
use crate::store::{DeliveryAttempt, DeliveryRow, MessageTrace, StoreError};

/// The message columns of a trace.
const MESSAGE_SELECT: &str = "SELECT id, kind, campaign, mail_from, client_ip, helo, auth_user, \
     header_message_id, size, received_at, body IS NOT NULL FROM messages";

/// The messages `id` names (see `Store::message_trace`), at most `limit`.
pub(in crate::store) async fn message_trace<C: Conn>(
    c: &mut C,
    id: &str,
    limit: i64,
) -> Result<Vec<MessageTrace>, StoreError> {
    let id = id.trim();
    if id.is_empty() {
        return Ok(Vec::new());
    }
    // A queue id names one message; as the relay writes it, or as given
    // (ids the relay did not make, in stores written by tests or tools).
    let queue_id = ids::queue_id(id).unwrap_or_else(|_| id.to_owned());
    let mut rows = c
        .fetch_all(
            Sql::new(MESSAGE_SELECT)
                .push(" WHERE id = $1")
                .arg(&queue_id),
        )
        .await?;
    if rows.is_empty()
        && let Ok(bare) = ids::message_id(id)
    {
        let [bracketed, bare] = ids::stored_forms(&bare);
        rows = c
            .fetch_all(
                Sql::new(MESSAGE_SELECT)
                    .push(" WHERE header_message_id IN ($1, $2) ORDER BY received_at DESC, id DESC LIMIT $3")
                    .arg(&bracketed)
                    .arg(&bare)
                    .arg(limit),
            )
            .await?;
    }
    let mut traces = Vec::with_capacity(rows.len());
    for r in &rows {
        traces.push(MessageTrace {
            queue_id: r.text(0)?,
            kind: r
                .text(1)?
                .parse()
                .map_err(|e| StoreError::Corrupt(format!("messages.kind: {e}")))?,
            campaign: r.text(2)?,
            mail_from: r.text(3)?,
            client_ip: r.text(4)?,
            helo: r.text(5)?,
            auth_user: r.opt_text(6)?,
            header_message_id: r.opt_text(7)?,
            size: r.int(8)?,
            received_at: r.int(9)?,
            body_held: r.flag(10)?,
            decisions: Vec::new(),
            deliveries: Vec::new(),
        });
    }
    for t in &mut traces {
        t.decisions = c
            .fetch_all(
                Sql::new(DECISIONS_SELECT)
                    .push(" WHERE d.message_id = $1 ORDER BY d.id")
                    .arg(&t.queue_id),
            )
            .await?
            .iter()
            .map(decision_from_row)
            .collect::<Result<_, _>>()?;
        t.deliveries = c
            .fetch_all(
                Sql::new(DELIVERIES_SELECT)
                    .push(" WHERE d.message_id = $1 ORDER BY d.id")
                    .arg(&t.queue_id),
            )
            .await?
            .iter()
            .map(delivery_from_row)
            .collect::<Result<_, _>>()?;
        attach_attempts(c, &mut t.deliveries).await?;
    }
    Ok(traces)
}

/// Reads the attempts of these deliveries into their `attempt_log`,
/// oldest first: one lookup per chunk of ids, through the attempts' index.
pub(in crate::store) async fn attach_attempts<C: Conn>(
    c: &mut C,
    deliveries: &mut [DeliveryRow],
) -> Result<(), StoreError> {
    let ids: Vec<i64> = deliveries.iter().map(|d| d.id).collect();
    let mut by_delivery: HashMap<i64, Vec<DeliveryAttempt>> = HashMap::new();
    for chunk in ids.chunks(C::LIST_CHUNK) {
        let q = Sql::new(
            "SELECT delivery_id, at, status, reply FROM delivery_attempts WHERE delivery_id",
        )
        .ints::<C>(chunk)
        .push(" ORDER BY delivery_id, id");
        for r in c.fetch_all(q).await? {
            let (delivery, attempt) = attempt_from_row(&r)?;
            by_delivery.entry(delivery).or_default().push(attempt);
        }
    }
    for d in deliveries {
        d.attempt_log = by_delivery.remove(&d.id).unwrap_or_default();
    }
    Ok(())
}
