//! The daily rollups (`daily_counts`, migration 0011): what the console's
//! overview charts, counted in the transaction that makes what it counts,
//! so the overview never scans the decision log or the events.
//!
//! - accepted mail: [`count_accepted`], from `Conn::insert_messages` (on
//!   SQLite once for a whole group commit);
//! - late decisions: [`count_late`], from the outcome and erasure
//!   transactions that write them;
//! - unsubscribes: [`count_unsubscribe`], from `consent::insert_event`,
//!   which every path appending an event goes through.
//!
//! Each transaction adds its counts with one multi-row upsert, rows in key
//! order (two PostgreSQL transactions adding to the same rows take their
//! locks in one order), on the slot of its connection ([`Conn::COUNT_SLOT`]).
//! The migration fills the table from what an upgraded store held; the
//! same metric names are written here and there.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::{Conn, Sql, Val};
use crate::consent::policy::{Outcome, Reason};
use crate::store::rows::Cols;
use crate::store::{
    Channel, Counts, MessageKind, NewMessage, OldestDeferred, Overview, OverviewDay, QueueNow,
    StoreError,
};
use crate::time::day_of;

/// What a row of `daily_counts` counts (its `metric`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Metric {
    /// A message accepted.
    Accepted,
    /// A recipient decided `deliver` at accept.
    Deliver,
    /// A recipient suppressed at accept.
    Suppressed(Reason),
    /// A copy suppressed at send.
    Late(Reason),
    /// A withdraw event.
    Unsubscribed(Channel),
}

impl Metric {
    /// The stored name (the migration's backfill writes the same).
    fn key(self) -> Cow<'static, str> {
        match self {
            Metric::Accepted => Cow::Borrowed("accepted"),
            Metric::Deliver => Cow::Borrowed("deliver"),
            Metric::Suppressed(r) => Cow::Owned(format!("suppressed:{r}")),
            Metric::Late(r) => Cow::Owned(format!("late:{r}")),
            Metric::Unsubscribed(c) => Cow::Owned(format!("unsubscribed:{c}")),
        }
    }

    fn parse(key: &str) -> Result<Metric, StoreError> {
        let bad = |e: String| StoreError::Corrupt(format!("daily_counts.metric {key:?}: {e}"));
        Ok(match key.split_once(':') {
            None if key == "accepted" => Metric::Accepted,
            None if key == "deliver" => Metric::Deliver,
            Some(("suppressed", r)) => Metric::Suppressed(r.parse().map_err(bad)?),
            Some(("late", r)) => Metric::Late(r.parse().map_err(bad)?),
            Some(("unsubscribed", c)) => Metric::Unsubscribed(c.parse().map_err(bad)?),
            _ => return Err(bad("not a metric".into())),
        })
    }

    /// Adds `n` of this metric to `counts`.
    fn add_to(self, counts: &mut Counts, n: i64) {
        match self {
            Metric::Accepted => counts.accepted += n,
            Metric::Deliver => counts.to_deliver += n,
            Metric::Suppressed(r) => *counts.suppressed.entry(r).or_default() += n,
            Metric::Late(r) => *counts.suppressed_late.entry(r).or_default() += n,
            Metric::Unsubscribed(c) => *counts.unsubscribes.entry(c).or_default() += n,
        }
    }
}

/// Rows of counts to add, (day, campaign, metric) in key order.
#[derive(Default)]
struct Tally<'a>(BTreeMap<(i64, &'a str, Cow<'static, str>), i64>);

/// Rows per upsert (4 values each: well under SQLite's bound parameters).
const ROWS_PER_UPSERT: usize = 500;

impl<'a> Tally<'a> {
    fn add(&mut self, day: i64, campaign: &'a str, metric: Metric, n: i64) {
        *self.0.entry((day, campaign, metric.key())).or_default() += n;
    }

    /// Adds the rows to `daily_counts`, in the caller's transaction.
    async fn write<C: Conn>(self, c: &mut C) -> Result<(), StoreError> {
        let rows: Vec<_> = self.0.into_iter().collect();
        for chunk in rows.chunks(ROWS_PER_UPSERT) {
            // `WHERE` ends the SELECT so SQLite reads `ON CONFLICT` as the upsert.
            let q = Sql::new("INSERT INTO daily_counts (day, campaign, metric, slot, n) SELECT v.column1, v.column2, v.column3, ")
                .push(C::COUNT_SLOT)
                .push(", v.column4 FROM (VALUES ")
                .values(chunk.iter().map(|((day, campaign, metric), n)| {
                    [
                        Val::Int(*day),
                        Val::Text(campaign),
                        Val::Text(metric),
                        Val::Int(*n),
                    ]
                }))
                .push(
                    ") AS v WHERE 1 = 1 ON CONFLICT (day, campaign, metric, slot) \
                     DO UPDATE SET n = daily_counts.n + excluded.n",
                );
            c.execute(q).await?;
        }
        Ok(())
    }
}

/// Counts these accepted messages (the CRM's; the relay's own mail is not
/// the overview's) and their recipients' decisions, on the day received.
pub(in crate::store) async fn count_accepted<C: Conn>(
    c: &mut C,
    messages: &[&NewMessage],
) -> Result<(), StoreError> {
    let mut tally = Tally::default();
    for m in messages.iter().filter(|m| m.kind == MessageKind::Relay) {
        let day = day_of(m.received_at);
        tally.add(day, &m.campaign, Metric::Accepted, 1);
        for r in &m.recipients {
            let metric = match r.outcome {
                Outcome::Deliver => Metric::Deliver,
                Outcome::Suppress => Metric::Suppressed(r.reason),
            };
            tally.add(day, &m.campaign, metric, 1);
        }
    }
    tally.write(c).await
}

/// Counts late decisions (stage `send`) of relayed copies, by campaign
/// and reason, on the day of `now`.
pub(in crate::store) async fn count_late<'a, C: Conn>(
    c: &mut C,
    decisions: impl IntoIterator<Item = (&'a str, Reason)>,
    now: i64,
) -> Result<(), StoreError> {
    let day = day_of(now);
    let mut tally = Tally::default();
    for (campaign, reason) in decisions {
        tally.add(day, campaign, Metric::Late(reason), 1);
    }
    tally.write(c).await
}

/// Counts one withdraw event, on the day it happened (`at`).
pub(in crate::store) async fn count_unsubscribe<C: Conn>(
    c: &mut C,
    campaign: &str,
    channel: Channel,
    at: i64,
) -> Result<(), StoreError> {
    let mut tally = Tally::default();
    tally.add(day_of(at), campaign, Metric::Unsubscribed(channel), 1);
    tally.write(c).await
}

/// The overview of `from_day..=to_day` (the caller checked the range),
/// read on `c` (a snapshot): the rollups of the range through their
/// primary key and the `campaign_days` day index, the queue's counts
/// through the status indexes, the oldest deferred copy through
/// `deliveries_deferred`.
pub(in crate::store) async fn overview<C: Conn>(
    c: &mut C,
    from_day: i64,
    to_day: i64,
) -> Result<Overview, StoreError> {
    let mut days: Vec<OverviewDay> = (from_day..=to_day)
        .map(|day| OverviewDay {
            day,
            all: Counts::default(),
            campaigns: BTreeMap::new(),
        })
        .collect();
    for r in c
        .fetch_all(
            Sql::new(
                "SELECT day, campaign, metric, CAST(SUM(n) AS BIGINT) FROM daily_counts \
                 WHERE day >= $1 AND day <= $2 GROUP BY day, campaign, metric",
            )
            .arg(from_day)
            .arg(to_day),
        )
        .await?
    {
        let metric = Metric::parse(&r.text(2)?)?;
        let n = r.int(3)?;
        let (all, campaign) = day_counts(&mut days, from_day, r.int(0)?, r.text(1)?)?;
        metric.add_to(all, n);
        metric.add_to(campaign, n);
    }
    for r in c
        .fetch_all(
            Sql::new(
                "SELECT day, campaign, delivered, hard_bounces, soft_bounces, complaints \
                 FROM campaign_days WHERE day >= $1 AND day <= $2",
            )
            .arg(from_day)
            .arg(to_day),
        )
        .await?
    {
        let (all, campaign) = day_counts(&mut days, from_day, r.int(0)?, r.text(1)?)?;
        for counts in [all, campaign] {
            counts.delivered += r.int(2)?;
            counts.hard_bounces += r.int(3)?;
            counts.soft_bounces += r.int(4)?;
            counts.complaints += r.int(5)?;
        }
    }
    Ok(Overview {
        from_day,
        to_day,
        days,
        queue: queue_now(c).await?,
    })
}

/// The counts of `day` in `days` (which starts at `from_day`): every
/// campaign's, and `campaign`'s.
fn day_counts(
    days: &mut [OverviewDay],
    from_day: i64,
    day: i64,
    campaign: String,
) -> Result<(&mut Counts, &mut Counts), StoreError> {
    let d = usize::try_from(day - from_day)
        .ok()
        .and_then(|i| days.get_mut(i))
        .ok_or_else(|| StoreError::Corrupt(format!("day {day} read outside the range")))?;
    Ok((&mut d.all, d.campaigns.entry(campaign).or_default()))
}

/// The queue's counts by status and its oldest deferred copy.
pub(in crate::store) async fn queue_now<C: Conn>(c: &mut C) -> Result<QueueNow, StoreError> {
    let mut queue = QueueNow::default();
    for (status, n) in super::reads::queue_depth(c).await? {
        match status.as_str() {
            "queued" => queue.queued = n,
            "deferred" => queue.deferred = n,
            "sending" => queue.sending = n,
            "held" => queue.held = n,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "queue depth of status {other:?}"
                )));
            }
        }
    }
    queue.oldest_deferred = c
        .fetch_optional(Sql::new(
            "SELECT id, message_id, created_at, attempts, next_attempt_at, last_reply \
             FROM deliveries WHERE status = 'deferred' ORDER BY created_at, id LIMIT 1",
        ))
        .await?
        .map(|r| {
            Ok::<_, StoreError>(OldestDeferred {
                delivery_id: r.int(0)?,
                message_id: r.text(1)?,
                created_at: r.int(2)?,
                attempts: r.int(3)?,
                next_attempt_at: r.int(4)?,
                last_reply: r.opt_text(5)?,
            })
        })
        .transpose()?;
    Ok(queue)
}
