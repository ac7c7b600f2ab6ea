//! What PostgreSQL does its own way under the shared operations
//! ([`Conn`]): lists bound as arrays (`= ANY($1)`, `UNNEST`), the subject
//! row locked while an event or erasure changes it, leases with `FOR
//! UPDATE SKIP LOCKED` (rows another node is taking are left to it, never
//! waited for or taken twice), and advisory locks for import keys,
//! `Idempotency-Key`s and purge batches.

use std::collections::HashSet;

use sqlx::{PgConnection, Postgres, Row};

use crate::consent::policy::Outcome;
use crate::store::ops::outcomes::is_final;
use crate::store::ops::{Conn, KeySpace, accept, binds, conn_queries, rollups};
use crate::store::{
    AttemptRecord, ClaimedDelivery, MessageKind, NewMessage, NewSubject, RecipientDecision,
    StoreError,
};

/// Advisory lock spaces (first key of `pg_advisory_xact_lock(int, int)`).
const IMPORT_KEY_LOCK: i32 = 0x6372_0001;
const IDEMPOTENCY_KEY_LOCK: i32 = 0x6372_0002;
const STEP_LOCK: i32 = 0x6372_0004;
/// The advisory lock (`pg_advisory_xact_lock(bigint)`) a purge batch holds,
/// so several nodes purging at once run their batches one after another.
const PURGE_LOCK: i64 = 0x6372_0003;

binds!(Postgres, |q| { Val::Texts(v) => q.bind(v), Val::Ints(v) => q.bind(v) });

impl Conn for PgConnection {
    type Row = sqlx::postgres::PgRow;
    const ARRAYS: bool = true;
    const LIST_CHUNK: usize = usize::MAX;
    // A pool's connections have their own backends: sixteen slots make two
    // of them adding to the same counter at once rare.
    const COUNT_SLOT: &'static str = "pg_backend_pid() % 16";
    const FOR_UPDATE: &'static str = " FOR UPDATE";
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";
    // Due rows through the partial index; a row is a head when no older
    // row of its subject is left (a later event waits for the earlier
    // one, also while another node sends it). A row another node is
    // leasing right now is skipped; one it has leased meanwhile is no
    // longer `pending` when PostgreSQL rechecks it, so it is not taken.
    // Events of one subject commit in id order (the subject's row lock),
    // so an older row cannot appear after a younger one was leased.
    // Due rows, then rows whose lease expired (a node that died or
    // stopped without handing back), each with its message. `SKIP
    // LOCKED`: rows another node is taking right now are left to it.
    const LEASE_DUE_DELIVERIES: &'static str = "WITH due AS (SELECT id FROM deliveries \
            WHERE status IN ('queued', 'deferred') AND next_attempt_at <= $3 \
            ORDER BY next_attempt_at LIMIT $4 FOR UPDATE SKIP LOCKED), \
         claimed AS (UPDATE deliveries d SET status = 'sending', lease_owner = $1, lease_until = $2, updated_at = $3 \
            FROM due WHERE d.id = due.id RETURNING d.id, d.message_id, d.recipient, d.attempts, COALESCE(d.rcpt_to, d.recipient) AS rcpt_to) \
         SELECT c.id, c.message_id, c.recipient, c.attempts, m.kind, m.mail_from, m.campaign, m.received_at, m.smtputf8, c.rcpt_to \
         FROM claimed c JOIN messages m ON m.id = c.message_id";
    const LEASE_EXPIRED_DELIVERIES: &'static str = "WITH expired AS (SELECT id FROM deliveries \
            WHERE status = 'sending' AND lease_until < $3 LIMIT $4 FOR UPDATE SKIP LOCKED), \
         claimed AS (UPDATE deliveries d SET lease_owner = $1, lease_until = $2, updated_at = $3 \
            FROM expired WHERE d.id = expired.id RETURNING d.id, d.message_id, d.recipient, d.attempts, COALESCE(d.rcpt_to, d.recipient) AS rcpt_to) \
         SELECT c.id, c.message_id, c.recipient, c.attempts, m.kind, m.mail_from, m.campaign, m.received_at, m.smtputf8, c.rcpt_to \
         FROM claimed c JOIN messages m ON m.id = c.message_id";
    const LEASE_DUE_WEBHOOKS: &'static str = "WITH due AS (SELECT w.event_id FROM webhook_outbox w \
            WHERE w.status = 'pending' AND w.next_attempt_at <= $3 \
            AND NOT EXISTS (SELECT 1 FROM webhook_outbox o WHERE o.subject_id = w.subject_id AND o.event_id < w.event_id) \
            ORDER BY w.next_attempt_at, w.event_id LIMIT $4 FOR UPDATE OF w SKIP LOCKED) \
         UPDATE webhook_outbox SET status = 'sending', lease_owner = $1, lease_until = $2 \
         FROM due WHERE webhook_outbox.event_id = due.event_id \
         RETURNING webhook_outbox.event_id, webhook_outbox.attempts";
    const LEASE_EXPIRED_WEBHOOKS: &'static str = "WITH expired AS (SELECT event_id FROM webhook_outbox \
            WHERE status = 'sending' AND lease_until < $3 LIMIT $4 FOR UPDATE SKIP LOCKED) \
         UPDATE webhook_outbox SET lease_owner = $1, lease_until = $2 \
         FROM expired WHERE webhook_outbox.event_id = expired.event_id \
         RETURNING webhook_outbox.event_id, webhook_outbox.attempts";

    conn_queries!(Postgres);

    /// Inserts messages with their subjects, decisions and deliveries, and
    /// their counts: five statements, each binding its columns as arrays
    /// (the counts: one multi-row upsert), however many rows.
    async fn insert_messages(
        &mut self,
        messages: &[&NewMessage],
        now: i64,
    ) -> Result<(), StoreError> {
        accept::insert_message_rows(self, messages).await?;

        // Sorted by address: two transactions creating some of the same
        // subjects take the unique index's locks in one order (no deadlock).
        let mut new_subjects: Vec<(&NewSubject, &String)> = messages
            .iter()
            .flat_map(|m| &m.recipients)
            .filter_map(|r| r.new_subject.as_ref().map(|s| (s, &r.recipient)))
            .collect();
        new_subjects.sort_by(|a, b| a.1.cmp(b.1));
        new_subjects.dedup_by(|a, b| a.1 == b.1);
        if !new_subjects.is_empty() {
            let (ids, addresses, hashes, key_ids) = new_subjects.iter().fold(
                (Vec::new(), Vec::new(), Vec::new(), Vec::new()),
                |mut v, (s, address)| {
                    v.0.push(s.id.as_str());
                    v.1.push(address.as_str());
                    v.2.push(s.address_hash.as_str());
                    v.3.push(s.key_id.as_str());
                    v
                },
            );
            sqlx::query(
                "INSERT INTO subjects (id, address, address_hash, key_id, created_at) \
                 SELECT id, address, address_hash, key_id, $5 \
                 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[]) AS v (id, address, address_hash, key_id) \
                 ORDER BY address ON CONFLICT (address) DO NOTHING",
            )
            .bind(&ids)
            .bind(&addresses)
            .bind(&hashes)
            .bind(&key_ids)
            .bind(now)
            .execute(&mut *self)
            .await?;
        }

        let rows: Vec<(&NewMessage, &RecipientDecision)> = messages
            .iter()
            .flat_map(|m| m.recipients.iter().map(move |r| (*m, r)))
            .collect();
        if !rows.is_empty() {
            // A new subject is named by its address: two messages may have
            // made one for the same address at once, and the one that exists
            // is the one to name.
            sqlx::query(
                "INSERT INTO decisions (message_id, recipient, subject_id, campaign, outcome, reason, event_id, stage, at) \
                 SELECT v.message_id, v.recipient, \
                   CASE WHEN v.new THEN (SELECT id FROM subjects WHERE address = v.recipient) ELSE v.subject_id END, \
                   v.campaign, v.outcome, v.reason, v.event_id, 'accept', v.at \
                 FROM UNNEST($1::text[], $2::text[], $3::bool[], $4::text[], $5::text[], $6::text[], $7::text[], \
                   $8::bigint[], $9::bigint[]) WITH ORDINALITY \
                   AS v (message_id, recipient, new, subject_id, campaign, outcome, reason, event_id, at, n) \
                 ORDER BY v.n",
            )
            .bind(rows.iter().map(|(m, _)| m.id.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|(_, r)| r.recipient.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|(_, r)| r.new_subject.is_some()).collect::<Vec<_>>())
            .bind(rows.iter().map(|(_, r)| r.subject_id.as_deref()).collect::<Vec<_>>())
            .bind(rows.iter().map(|(m, _)| m.campaign.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|(_, r)| r.outcome.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|(_, r)| r.reason.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|(_, r)| r.event_id).collect::<Vec<_>>())
            .bind(rows.iter().map(|(m, _)| m.received_at).collect::<Vec<_>>())
            .execute(&mut *self)
            .await?;
        }

        let delivered: Vec<&(&NewMessage, &RecipientDecision)> = rows
            .iter()
            .filter(|(_, r)| r.outcome == Outcome::Deliver)
            .collect();
        if !delivered.is_empty() {
            sqlx::query(
                "INSERT INTO deliveries (message_id, recipient, rcpt_to, status, attempts, next_attempt_at, created_at, updated_at) \
                 SELECT v.message_id, v.recipient, v.rcpt_to, \
                   CASE WHEN v.campaign IS NOT NULL AND EXISTS (SELECT 1 FROM campaign_pauses p WHERE p.campaign = v.campaign) \
                   THEN 'held' ELSE 'queued' END, 0, v.next_attempt_at, $4, $4 \
                 FROM UNNEST($1::text[], $2::text[], $3::bigint[], $5::text[], $6::text[]) WITH ORDINALITY \
                   AS v (message_id, recipient, next_attempt_at, rcpt_to, campaign, n) \
                 ORDER BY v.n",
            )
            .bind(delivered.iter().map(|(m, _)| m.id.as_str()).collect::<Vec<_>>())
            .bind(delivered.iter().map(|(_, r)| r.recipient.as_str()).collect::<Vec<_>>())
            .bind(delivered.iter().map(|(m, _)| m.received_at).collect::<Vec<_>>())
            .bind(now)
            .bind(delivered.iter().map(|(_, r)| r.rcpt_to.as_deref()).collect::<Vec<_>>())
            // Relayed copies are held while their campaign is paused
            // (`ops::guard`); the relay's own mail never is.
            .bind(
                delivered
                    .iter()
                    .map(|(m, _)| (m.kind == MessageKind::Relay).then_some(m.campaign.as_str()))
                    .collect::<Vec<_>>(),
            )
            .execute(&mut *self)
            .await?;
        }
        rollups::count_accepted(self, messages).await
    }

    /// Each leased row holds its message's columns already.
    async fn claimed(&mut self, rows: Vec<Self::Row>) -> Result<Vec<ClaimedDelivery>, StoreError> {
        rows.iter()
            .map(|r| {
                let kind: String = r.try_get(4)?;
                Ok(ClaimedDelivery {
                    id: r.try_get(0)?,
                    message_id: r.try_get(1)?,
                    kind: kind
                        .parse()
                        .map_err(|e| StoreError::Corrupt(format!("messages.kind: {e}")))?,
                    recipient: r.try_get(2)?,
                    rcpt_to: r.try_get(9)?,
                    mail_from: r.try_get(5)?,
                    campaign: r.try_get(6)?,
                    received_at: r.try_get(7)?,
                    attempts: r.try_get(3)?,
                    smtputf8: r.try_get(8)?,
                })
            })
            .collect()
    }

    async fn set_outcomes(
        &mut self,
        records: &[AttemptRecord],
        now: i64,
    ) -> Result<HashSet<i64>, StoreError> {
        // One statement: the rows set, then (a data-modifying CTE, run
        // whether read or not) the real attempts among them logged.
        sqlx::query(
            "WITH updated AS (UPDATE deliveries SET status = v.status, attempts = attempts + v.attempted, \
             next_attempt_at = v.next_attempt_at, last_reply = v.reply, lease_owner = NULL, lease_until = NULL, updated_at = $6 \
             FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::text[]) \
               AS v (id, status, attempted, next_attempt_at, reply) \
             WHERE deliveries.id = v.id AND deliveries.status = 'sending' \
             RETURNING deliveries.id, v.status, v.attempted, v.reply), \
             logged AS (INSERT INTO delivery_attempts (delivery_id, at, status, reply) \
               SELECT id, $6, status, reply FROM updated WHERE attempted = 1 ORDER BY id) \
             SELECT id FROM updated",
        )
        .bind(records.iter().map(|r| r.delivery_id).collect::<Vec<_>>())
        .bind(records.iter().map(|r| r.status.as_str()).collect::<Vec<_>>())
        .bind(records.iter().map(|r| i64::from(r.attempted)).collect::<Vec<_>>())
        .bind(
            records
                .iter()
                .map(|r| if is_final(r.status) { now } else { r.next_attempt_at })
                .collect::<Vec<_>>(),
        )
        .bind(records.iter().map(|r| r.reply.as_str()).collect::<Vec<_>>())
        .bind(now)
        .fetch_all(&mut *self)
        .await?
        .iter()
        .map(|r| Ok(r.try_get(0)?))
        .collect()
    }

    /// Locks these keys for the rest of the transaction (in one order).
    async fn lock_keys(&mut self, space: KeySpace, keys: &[&str]) -> Result<(), StoreError> {
        let space = match space {
            KeySpace::Import => IMPORT_KEY_LOCK,
            KeySpace::Idempotency => IDEMPOTENCY_KEY_LOCK,
            KeySpace::Step => STEP_LOCK,
        };
        sqlx::query(
            "SELECT pg_advisory_xact_lock($1, hashtext(k)) \
             FROM (SELECT DISTINCT k FROM UNNEST($2::text[]) AS k ORDER BY k) AS sorted",
        )
        .bind(space)
        .bind(keys)
        .fetch_all(&mut *self)
        .await?;
        Ok(())
    }

    async fn lock_purge(&mut self) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(PURGE_LOCK)
            .execute(&mut *self)
            .await?;
        Ok(())
    }

    /// PostgreSQL keeps no freed page to zero (old row versions go with
    /// vacuum, see README).
    async fn secure_delete(&mut self, _: bool) -> Result<(), StoreError> {
        Ok(())
    }
}
