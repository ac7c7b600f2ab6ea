//! What SQLite does its own way under the shared operations
//! ([`Conn`]): lists bound one value each, no row locks (one writer),
//! multi-row `VALUES` inserts (accepted mail, each batch's attempts), leases by `UPDATE ... RETURNING`, and
//! `secure_delete` for what erasure and purge remove.

use std::collections::{HashMap, HashSet};

use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use crate::consent::policy::Outcome;
use crate::store::ops::outcomes::is_final;
use crate::store::ops::{Conn, KeySpace, Sql, accept, binds, conn_queries, rollups};
use crate::store::{
    AttemptRecord, ClaimedDelivery, MessageKind, NewMessage, NewSubject, RecipientDecision,
    StoreError,
};

/// Rows per multi-row INSERT, well under SQLite's 32766 bound parameters.
const ROWS_PER_INSERT: usize = 1000;

// Lists are expanded to one value each (`Conn::ARRAYS` is false), so no
// list value reaches the binder; were one to, it matches nothing.
binds!(Sqlite, |q| { Val::Texts(_) | Val::Ints(_) => q.bind(None::<i64>) });

impl Conn for SqliteConnection {
    type Row = sqlx::sqlite::SqliteRow;
    const ARRAYS: bool = false;
    const LIST_CHUNK: usize = 500;
    const COUNT_SLOT: &'static str = "0";
    const FOR_UPDATE: &'static str = "";
    const SKIP_LOCKED: &'static str = "";
    // Due rows through the partial index; a row is a head when no older
    // row of its subject is left (a later event waits for the earlier one).
    // Due rows first, through the partial index; then rows whose lease
    // expired (a worker that stopped without handing back).
    const LEASE_DUE_DELIVERIES: &'static str = "UPDATE deliveries SET status = 'sending', lease_owner = $1, lease_until = $2, updated_at = $3 \
         WHERE id IN (SELECT id FROM deliveries \
            WHERE status IN ('queued', 'deferred') AND next_attempt_at <= $3 \
            ORDER BY next_attempt_at LIMIT $4) \
         RETURNING id, message_id, recipient, attempts, COALESCE(rcpt_to, recipient)";
    const LEASE_EXPIRED_DELIVERIES: &'static str = "UPDATE deliveries SET lease_owner = $1, lease_until = $2, updated_at = $3 \
         WHERE id IN (SELECT id FROM deliveries WHERE status = 'sending' AND lease_until < $3 LIMIT $4) \
         RETURNING id, message_id, recipient, attempts, COALESCE(rcpt_to, recipient)";
    const LEASE_DUE_WEBHOOKS: &'static str = "UPDATE webhook_outbox SET status = 'sending', lease_owner = $1, lease_until = $2 \
         WHERE event_id IN (SELECT w.event_id FROM webhook_outbox w \
            WHERE w.status = 'pending' AND w.next_attempt_at <= $3 \
            AND NOT EXISTS (SELECT 1 FROM webhook_outbox o WHERE o.subject_id = w.subject_id AND o.event_id < w.event_id) \
            ORDER BY w.next_attempt_at, w.event_id LIMIT $4) \
         RETURNING event_id, attempts";
    const LEASE_EXPIRED_WEBHOOKS: &'static str = "UPDATE webhook_outbox SET lease_owner = $1, lease_until = $2 \
         WHERE event_id IN (SELECT event_id FROM webhook_outbox \
            WHERE status = 'sending' AND lease_until < $3 LIMIT $4) \
         RETURNING event_id, attempts";

    conn_queries!(Sqlite);

    /// Inserts messages with their subjects, decisions and deliveries, and
    /// their counts: five multi-row statements for the whole group, not
    /// five per message.
    async fn insert_messages(
        &mut self,
        messages: &[&NewMessage],
        now: i64,
    ) -> Result<(), StoreError> {
        accept::insert_message_rows(self, messages).await?;

        let new_subjects: Vec<(&NewSubject, &String)> = messages
            .iter()
            .flat_map(|m| &m.recipients)
            .filter_map(|r| r.new_subject.as_ref().map(|s| (s, &r.recipient)))
            .collect();
        for chunk in new_subjects.chunks(ROWS_PER_INSERT) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO subjects (id, address, address_hash, key_id, created_at) ",
            );
            q.push_values(chunk, |mut b, (s, address)| {
                b.push_bind(&s.id)
                    .push_bind(*address)
                    .push_bind(&s.address_hash)
                    .push_bind(&s.key_id)
                    .push_bind(now);
            });
            q.push(" ON CONFLICT (address) DO NOTHING");
            q.build().execute(&mut *self).await?;
        }

        let rows: Vec<(&NewMessage, &RecipientDecision)> = messages
            .iter()
            .flat_map(|m| m.recipients.iter().map(move |r| (*m, r)))
            .collect();
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO decisions (message_id, recipient, subject_id, campaign, outcome, reason, event_id, stage, at) ",
            );
            q.push_values(chunk, |mut b, (m, r)| {
                b.push_bind(&m.id).push_bind(&r.recipient);
                if r.new_subject.is_some() {
                    // Two messages may have made a new subject for the same
                    // address at once; the one that exists is the one to name.
                    b.push("(SELECT id FROM subjects WHERE address = ")
                        .push_bind_unseparated(&r.recipient)
                        .push_unseparated(")");
                } else {
                    b.push_bind(&r.subject_id);
                }
                b.push_bind(&m.campaign)
                    .push_bind(r.outcome.as_str())
                    .push_bind(r.reason.as_str())
                    .push_bind(r.event_id)
                    .push_bind("accept")
                    .push_bind(m.received_at);
            });
            q.build().execute(&mut *self).await?;
        }

        let delivered: Vec<&(&NewMessage, &RecipientDecision)> = rows
            .iter()
            .filter(|(_, r)| r.outcome == Outcome::Deliver)
            .collect();
        for chunk in delivered.chunks(ROWS_PER_INSERT) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO deliveries (message_id, recipient, rcpt_to, status, attempts, next_attempt_at, created_at, updated_at) ",
            );
            q.push_values(chunk, |mut b, (m, r)| {
                b.push_bind(&m.id)
                    .push_bind(&r.recipient)
                    .push_bind(&r.rcpt_to);
                if m.kind == MessageKind::Relay {
                    // Held while its campaign is paused (`ops::guard`).
                    b.push("CASE WHEN EXISTS (SELECT 1 FROM campaign_pauses WHERE campaign = ")
                        .push_bind_unseparated(&m.campaign)
                        .push_unseparated(") THEN 'held' ELSE 'queued' END");
                } else {
                    b.push_bind("queued");
                }
                b.push_bind(0i64)
                    .push_bind(m.received_at)
                    .push_bind(now)
                    .push_bind(now);
            });
            q.build().execute(&mut *self).await?;
        }
        rollups::count_accepted(self, messages).await
    }

    /// The messages of the leased rows, in one statement.
    async fn claimed(&mut self, rows: Vec<Self::Row>) -> Result<Vec<ClaimedDelivery>, StoreError> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let mut claimed: Vec<ClaimedDelivery> = Vec::with_capacity(rows.len());
        let mut message_ids: Vec<String> = Vec::new();
        for r in &rows {
            let message_id: String = r.try_get(1)?;
            if !message_ids.contains(&message_id) {
                message_ids.push(message_id.clone());
            }
            claimed.push(ClaimedDelivery {
                id: r.try_get(0)?,
                message_id,
                kind: MessageKind::Relay,
                recipient: r.try_get(2)?,
                rcpt_to: r.try_get(4)?,
                mail_from: String::new(),
                campaign: String::new(),
                received_at: 0,
                attempts: r.try_get(3)?,
                smtputf8: false,
            });
        }
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT id, kind, mail_from, campaign, received_at, smtputf8 FROM messages WHERE id IN (",
        );
        let mut sep = q.separated(", ");
        for id in &message_ids {
            sep.push_bind(id);
        }
        q.push(")");
        let mut meta = HashMap::new();
        for r in q.build().fetch_all(&mut *self).await? {
            let id: String = r.try_get(0)?;
            let kind: String = r.try_get(1)?;
            let kind: MessageKind = kind
                .parse()
                .map_err(|e| StoreError::Corrupt(format!("messages.kind: {e}")))?;
            meta.insert(
                id,
                (
                    kind,
                    r.try_get::<String, _>(2)?,
                    r.try_get::<String, _>(3)?,
                    r.try_get::<i64, _>(4)?,
                    r.try_get::<bool, _>(5)?,
                ),
            );
        }
        for c in &mut claimed {
            let (kind, from, campaign, received_at, smtputf8) = meta
                .get(&c.message_id)
                .ok_or_else(|| StoreError::Corrupt(format!("delivery {} has no message", c.id)))?;
            c.kind = *kind;
            c.mail_from.clone_from(from);
            c.campaign.clone_from(campaign);
            c.received_at = *received_at;
            c.smtputf8 = *smtputf8;
        }
        Ok(claimed)
    }

    async fn set_outcomes(
        &mut self,
        records: &[AttemptRecord],
        now: i64,
    ) -> Result<HashSet<i64>, StoreError> {
        let mut q = QueryBuilder::<Sqlite>::new(
            "UPDATE deliveries SET status = v.column2, attempts = attempts + v.column3, \
             next_attempt_at = v.column4, last_reply = v.column5, lease_owner = NULL, lease_until = NULL, updated_at = ",
        );
        q.push_bind(now).push(" FROM (");
        q.push_values(records, |mut b, r| {
            b.push_bind(r.delivery_id)
                .push_bind(r.status.as_str())
                .push_bind(i64::from(r.attempted))
                .push_bind(if is_final(r.status) {
                    now
                } else {
                    r.next_attempt_at
                })
                .push_bind(&r.reply);
        });
        q.push(
            ") AS v WHERE deliveries.id = v.column1 AND deliveries.status = 'sending' RETURNING id",
        );
        let recorded = q
            .build()
            .fetch_all(&mut *self)
            .await?
            .iter()
            .map(|r| Ok(r.try_get(0)?))
            .collect::<Result<HashSet<i64>, StoreError>>()?;
        let attempts: Vec<&AttemptRecord> = records
            .iter()
            .filter(|r| r.attempted && recorded.contains(&r.delivery_id))
            .collect();
        for chunk in attempts.chunks(ROWS_PER_INSERT) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO delivery_attempts (delivery_id, at, status, reply) ",
            );
            q.push_values(chunk, |mut b, r| {
                b.push_bind(r.delivery_id)
                    .push_bind(now)
                    .push_bind(r.status.as_str())
                    .push_bind(&r.reply);
            });
            q.build().execute(&mut *self).await?;
        }
        Ok(recorded)
    }

    /// One writer: nothing else writes meanwhile.
    async fn lock_keys(&mut self, _: KeySpace, _: &[&str]) -> Result<(), StoreError> {
        Ok(())
    }

    async fn lock_purge(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn secure_delete(&mut self, on: bool) -> Result<(), StoreError> {
        let pragma = if on {
            "PRAGMA secure_delete = ON"
        } else {
            "PRAGMA secure_delete = FAST"
        };
        self.execute(Sql::new(pragma)).await.map(drop)
    }
}
