//! What follows from one attempt: sent, deferred until when, or failed for
//! good. Pure: the outcome, the attempt count, the times and the queue
//! settings in; the new status and the next attempt time out.

use crate::config::QueueConfig;
use crate::store::DeliveryStatus;

/// How an attempt ended. An error that is not classified is temporary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    Delivered(String),
    /// 4xx, a connection fault, a timeout: try again later.
    TemporaryFailure(String),
    /// 5xx: the upstream will never take it.
    PermanentFailure(String),
}

impl AttemptOutcome {
    pub fn reply(&self) -> &str {
        match self {
            AttemptOutcome::Delivered(r)
            | AttemptOutcome::TemporaryFailure(r)
            | AttemptOutcome::PermanentFailure(r) => r,
        }
    }

    /// The class of the outcome for `consent_relay_delivery_attempts_total`:
    /// `2xx`, `4xx`, `5xx`, or `error` when a temporary failure had no SMTP
    /// reply (connection, TLS, signing, the outbox directory).
    pub fn class(&self) -> &'static str {
        match self {
            AttemptOutcome::Delivered(_) => "2xx",
            AttemptOutcome::PermanentFailure(_) => "5xx",
            AttemptOutcome::TemporaryFailure(r) if r.starts_with('4') => "4xx",
            AttemptOutcome::TemporaryFailure(_) => "error",
        }
    }
}

/// The status after an attempt, and when the next one is due.
/// `attempts_before` counts attempts made before this one.
pub fn next_step(
    outcome: &AttemptOutcome,
    attempts_before: i64,
    received_at: i64,
    now: i64,
    queue: &QueueConfig,
) -> (DeliveryStatus, i64) {
    match outcome {
        AttemptOutcome::Delivered(_) => (DeliveryStatus::Sent, now),
        AttemptOutcome::PermanentFailure(_) => (DeliveryStatus::Failed, now),
        AttemptOutcome::TemporaryFailure(_) => {
            let max_age = queue.max_age.as_millis() as i64;
            if now.saturating_sub(received_at) >= max_age {
                return (DeliveryStatus::Failed, now);
            }
            let i = usize::try_from(attempts_before)
                .unwrap_or(0)
                .min(queue.retry_after.len().saturating_sub(1));
            let wait = queue
                .retry_after
                .get(i)
                .map_or(60_000, |d| d.as_millis() as i64);
            (DeliveryStatus::Deferred, now + wait)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn queue() -> QueueConfig {
        QueueConfig {
            retry_after: vec![Duration::from_secs(30), Duration::from_secs(120)],
            max_age: Duration::from_secs(3600),
            lease: Duration::from_secs(300),
            batch: 100,
            node: "test".into(),
            node_heartbeat: Duration::from_secs(5),
        }
    }
    const T: AttemptOutcome = AttemptOutcome::TemporaryFailure(String::new());

    #[test]
    fn delivered_and_permanent_are_final() {
        let q = queue();
        assert_eq!(
            next_step(&AttemptOutcome::Delivered("250".into()), 0, 0, 5, &q),
            (DeliveryStatus::Sent, 5)
        );
        assert_eq!(
            next_step(&AttemptOutcome::PermanentFailure("550".into()), 0, 0, 5, &q),
            (DeliveryStatus::Failed, 5)
        );
    }

    #[test]
    fn backoff_follows_the_schedule_then_repeats_the_last() {
        let q = queue();
        assert_eq!(
            next_step(&T, 0, 0, 1000, &q),
            (DeliveryStatus::Deferred, 31_000)
        );
        assert_eq!(
            next_step(&T, 1, 0, 1000, &q),
            (DeliveryStatus::Deferred, 121_000)
        );
        assert_eq!(
            next_step(&T, 7, 0, 1000, &q),
            (DeliveryStatus::Deferred, 121_000)
        );
    }

    #[test]
    fn reply_classes() {
        let class = |o: AttemptOutcome| o.class();
        assert_eq!(
            class(AttemptOutcome::Delivered("250 2.0.0 ok".into())),
            "2xx"
        );
        assert_eq!(
            class(AttemptOutcome::TemporaryFailure("451 4.3.0 later".into())),
            "4xx"
        );
        assert_eq!(
            class(AttemptOutcome::TemporaryFailure(
                "connection refused".into()
            )),
            "error"
        );
        assert_eq!(
            class(AttemptOutcome::PermanentFailure("550 5.1.1 no".into())),
            "5xx"
        );
    }

    #[test]
    fn max_age_ends_retries() {
        let q = queue();
        assert_eq!(
            next_step(&T, 3, 0, 3_600_000, &q),
            (DeliveryStatus::Failed, 3_600_000)
        );
        assert_eq!(
            next_step(&T, 3, 0, 3_599_999, &q).0,
            DeliveryStatus::Deferred
        );
    }
}
