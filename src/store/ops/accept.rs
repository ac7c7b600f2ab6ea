//! Accepting mail: the message rows (the same statement on both backends;
//! its subjects, decisions and deliveries each backend inserts its own
//! way, see [`Conn::insert_messages`]), mail queued with a consent event,
//! and the queue's leases.

use super::{Conn, Op, Sql, Val};
use crate::consent::policy::Outcome;
use crate::store::{ClaimedDelivery, ConsentEvent, FollowUp, NewMessage, StoreError};

/// Messages per multi-row INSERT (12 values each, well under SQLite's
/// 32766 bound parameters).
const MESSAGES_PER_INSERT: usize = 100;

/// Inserts the `messages` rows of these messages.
pub(in crate::store) async fn insert_message_rows<C: Conn>(
    c: &mut C,
    messages: &[&NewMessage],
) -> Result<(), StoreError> {
    for chunk in messages.chunks(MESSAGES_PER_INSERT) {
        let q = Sql::new(
            "INSERT INTO messages (id, kind, mail_from, client_ip, helo, auth_user, campaign, \
             header_message_id, size, body, received_at, smtputf8) VALUES ",
        )
        .values(chunk.iter().map(|m| {
            [
                Val::Text(&m.id),
                Val::Text(m.kind.as_str()),
                Val::Text(&m.mail_from),
                Val::Text(&m.client_ip),
                Val::Text(&m.helo),
                Val::from(&m.auth_user),
                Val::Text(&m.campaign),
                Val::from(&m.header_message_id),
                Val::Int(m.body.len() as i64),
                // Nothing to deliver, nothing to keep: a body may name its
                // recipients (To:, a greeting), suppressed ones included.
                Val::Blob(
                    m.recipients
                        .iter()
                        .any(|r| r.outcome == Outcome::Deliver)
                        .then_some(&m.body[..]),
                ),
                Val::Int(m.received_at),
                Val::Bool(m.smtputf8),
            ]
        }));
        c.execute(q).await?;
    }
    Ok(())
}

/// Queues the mail `follow_up` builds from `event`, in the event's
/// transaction (its failure rolls the event back).
pub(super) async fn queue_follow_up<C: Conn>(
    c: &mut C,
    follow_up: Option<&FollowUp>,
    event: &ConsentEvent,
    now: i64,
) -> Result<(), StoreError> {
    match crate::store::follow_up_mail(follow_up, event)? {
        Some(mail) => c.insert_messages(&[&mail], now).await,
        None => Ok(()),
    }
}

/// Stores a message, its decisions and its deliveries.
pub(in crate::store) struct Accept(pub Box<NewMessage>);

impl Op for Accept {
    type Out = ();

    async fn run<C: Conn>(&self, c: &mut C, now: i64) -> Result<(), StoreError> {
        c.insert_messages(&[&self.0], now).await
    }

    fn accepted(&self) -> Option<&NewMessage> {
        Some(&self.0)
    }
}

/// Leases up to `limit` due deliveries to `owner`, then ones whose lease
/// expired (see [`Conn::LEASE_DUE_DELIVERIES`]).
pub(in crate::store) struct ClaimDue {
    pub owner: String,
    pub now: i64,
    pub lease_until: i64,
    pub limit: i64,
}

impl Op for ClaimDue {
    type Out = Vec<ClaimedDelivery>;
    const ATOMIC: bool = false;

    async fn run<C: Conn>(&self, c: &mut C, _: i64) -> Result<Self::Out, StoreError> {
        let lease = |sql| {
            Sql::new(sql)
                .arg(&self.owner)
                .arg(self.lease_until)
                .arg(self.now)
        };
        let mut rows = c
            .fetch_all(lease(C::LEASE_DUE_DELIVERIES).arg(self.limit))
            .await?;
        let room = self.limit - rows.len() as i64;
        if room > 0 {
            rows.extend(
                c.fetch_all(lease(C::LEASE_EXPIRED_DELIVERIES).arg(room))
                    .await?,
            );
        }
        c.claimed(rows).await
    }
}

/// Hands the leases of `owner` back to the queue.
pub(in crate::store) struct ReleaseLeases(pub String);

impl Op for ReleaseLeases {
    type Out = u64;
    const ATOMIC: bool = false;

    async fn run<C: Conn>(&self, c: &mut C, _: i64) -> Result<u64, StoreError> {
        super::nodes::release_deliveries(c, &self.0).await
    }
}
