//! `[retention]`: how long the relay keeps what it stored, and the purge
//! that enforces it. Message bodies go `message_bodies` after the last
//! delivery of their message ended (sent, failed, suppressed-late);
//! decision and final delivery rows (each with its attempts) go after
//! `decisions`, with messages left with no rows. Consent events are proof
//! and stay until erasure.
//!
//! The purge runs in bounded batches (one store transaction each), at the
//! start of `serve` and then every `purge_interval`, and on demand with
//! `consent-relay purge [--dry-run]`. What is removed is the store's.

use tokio::sync::watch;

use crate::config::RetentionConfig;
use crate::store::{PurgeCutoffs, PurgeReport, PurgeStep, Store, StoreError};

/// The cut-off times of a purge run at `now` (unix ms).
pub fn cutoffs(r: &RetentionConfig, now: i64) -> PurgeCutoffs {
    let before = |d: std::time::Duration| now.saturating_sub(d.as_millis() as i64);
    PurgeCutoffs {
        message_bodies: before(r.message_bodies),
        decisions: before(r.decisions),
    }
}

/// Purges what `[retention]` no longer allows to keep, as of `now`; one
/// transaction per batch. Stops between batches once `stop` turns true
/// (what was removed so far stays removed).
pub async fn purge(
    store: &Store,
    r: &RetentionConfig,
    now: i64,
    stop: Option<&watch::Receiver<bool>>,
) -> Result<PurgeReport, StoreError> {
    let mut report = PurgeReport::default();
    let mut step = Some(PurgeStep::first(cutoffs(r, now)));
    while let Some(s) = step {
        if stop.is_some_and(|rx| *rx.borrow()) {
            break;
        }
        let (removed, next) = store.purge_batch(s).await?;
        report.add(&removed);
        step = next;
    }
    // `[retention] feedback`: the raw reports (what they changed stays).
    let cutoff = now.saturating_sub(r.feedback.as_millis() as i64);
    let mut reports = 0;
    while stop.is_none_or(|rx| !*rx.borrow()) {
        let n = store.purge_reports(cutoff, REPORTS_BATCH).await?;
        reports += n;
        if n < REPORTS_BATCH as u64 {
            break;
        }
    }
    if reports > 0 {
        tracing::info!(
            raw_reports = reports,
            "retention purge of raw feedback reports"
        );
    }
    Ok(report)
}

/// Raw reports a purge batch removes at most.
const REPORTS_BATCH: i64 = 2000;

/// What [`purge`] would remove as of `now`, changing nothing.
pub async fn dry_run(
    store: &Store,
    r: &RetentionConfig,
    now: i64,
) -> Result<PurgeReport, StoreError> {
    store.purge_count(cutoffs(r, now)).await
}

/// `serve`'s purge: once at start, then every `purge_interval`, until
/// `shutdown` turns true (a run in progress stops after its batch).
pub async fn run(
    config: impl Into<crate::config::reload::LiveConfig>,
    store: Store,
    mut shutdown: watch::Receiver<bool>,
) {
    let live = config.into();
    loop {
        // Each run with the configuration in use (a reload swaps it).
        let config = live.get();
        let r = &config.retention;
        match purge(&store, r, crate::time::now_ms(), Some(&shutdown)).await {
            Ok(p) => tracing::info!(
                message_bodies = p.message_bodies,
                decisions = p.decisions,
                deliveries = p.deliveries,
                messages = p.messages,
                "retention purge"
            ),
            Err(e) => {
                tracing::error!(cause = %e, "retention purge failed; retried at the next interval")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(r.purge_interval) => {}
            _ = crate::shutdown::until_shutdown(&mut shutdown) => break,
        }
    }
}

/// One line per kind, as `consent-relay purge` prints it.
pub fn summary(p: &PurgeReport, dry_run: bool) -> String {
    let verb = if dry_run {
        "would be removed"
    } else {
        "removed"
    };
    [
        ("message bodies", p.message_bodies),
        ("decisions", p.decisions),
        ("deliveries", p.deliveries),
        ("messages", p.messages),
    ]
    .iter()
    .map(|(kind, n)| format!("{kind}: {n} {verb}\n"))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn cutoffs_count_back_from_now() {
        let r = RetentionConfig {
            message_bodies: Duration::from_secs(30 * 86_400),
            decisions: Duration::from_secs(3 * 31_557_600),
            purge_interval: Duration::from_secs(3600),
            feedback: Duration::from_secs(30 * 86_400),
        };
        let now = 200_000_000_000;
        let c = cutoffs(&r, now);
        assert_eq!(c.message_bodies, now - 30 * 86_400_000);
        assert_eq!(c.decisions, now - 3 * 31_557_600_000);
    }

    #[test]
    fn summary_names_every_kind() {
        let p = PurgeReport {
            message_bodies: 3,
            decisions: 2,
            deliveries: 1,
            messages: 0,
        };
        assert_eq!(
            summary(&p, true),
            "message bodies: 3 would be removed\ndecisions: 2 would be removed\n\
             deliveries: 1 would be removed\nmessages: 0 would be removed\n"
        );
    }
}
