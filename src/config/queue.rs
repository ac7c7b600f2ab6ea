//! `[queue]`: how delivery retries, how long it tries, and how it leases
//! and batches deliveries.

use std::time::Duration;

use serde::Deserialize;

use super::{Check, NONZERO};

/// `queue.retry_after`: the waits after each failed attempt; the last repeats.
pub const DEFAULT_RETRY_AFTER: [&str; 7] = ["30s", "2m", "10m", "30m", "1h", "2h", "4h"];
/// `queue.max_age`.
pub const DEFAULT_MAX_AGE: &str = "5d";
/// `queue.lease`.
pub const DEFAULT_LEASE: &str = "5m";
/// `queue.batch`.
pub const DEFAULT_BATCH: usize = 200;
/// The example offered for a bad `queue.retry_after` entry.
const EXAMPLE_RETRY: &str = "30s";

#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Backoff after each failed attempt; the last repeats. Never empty.
    pub retry_after: Vec<Duration>,
    /// After this long since the message was received, a delivery fails for good.
    pub max_age: Duration,
    /// How long a claimed delivery stays leased to a worker (default 5m).
    pub lease: Duration,
    /// Deliveries claimed per batch (default 200).
    pub batch: usize,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawQueue {
    retry_after: Option<Vec<String>>,
    max_age: Option<String>,
    lease: Option<String>,
    batch: Option<i64>,
}

pub(super) fn check(c: &mut Check<'_>, raw: &RawQueue) -> Option<QueueConfig> {
    let texts: Vec<&str> = match &raw.retry_after {
        Some(list) => list.iter().map(String::as_str).collect(),
        None => DEFAULT_RETRY_AFTER.to_vec(),
    };
    if texts.is_empty() {
        c.error(
            "queue.retry_after",
            r#"is empty (use e.g. ["30s", "2m", "10m", "1h"])"#,
        );
    }
    let retry_after: Vec<Option<Duration>> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            c.duration_of(
                &format!("queue.retry_after[{i}]"),
                t,
                EXAMPLE_RETRY,
                NONZERO,
            )
        })
        .collect();
    let max_age = c.duration("queue.max_age", &raw.max_age, DEFAULT_MAX_AGE, NONZERO);
    let lease = c.duration(
        "queue.lease",
        &raw.lease,
        DEFAULT_LEASE,
        Duration::from_secs(10),
    );
    let batch = c.number("queue.batch", raw.batch, DEFAULT_BATCH, 1..=10_000);
    let retry_after: Vec<Duration> = retry_after.into_iter().collect::<Option<_>>()?;
    Some(QueueConfig {
        retry_after: (!retry_after.is_empty()).then_some(retry_after)?,
        max_age: max_age?,
        lease: lease?,
        batch: batch?,
    })
}
