//! Retention's purge (`[retention]`): its cut-offs, its bounded batches and
//! what they removed. The types and the [`Store`] methods; the operation is
//! `ops::purge`.

use super::ops;
use super::{Store, StoreError};

/// Cut-off times of a purge under `[retention]` (unix ms): what ended
/// before them goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurgeCutoffs {
    /// Bodies of messages whose deliveries all reached a final outcome
    /// (sent, failed, suppressed-late) before this are set to NULL.
    pub message_bodies: i64,
    /// Decision rows, and final delivery rows (with their attempts), older
    /// than this are deleted, with the messages left with no rows.
    pub decisions: i64,
}

/// One bounded batch of a purge (one transaction); each batch names the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PurgeStep {
    /// Message bodies, walking messages that hold one after (received_at,
    /// id); then decisions with `cutoffs.decisions`.
    Bodies {
        cutoffs: PurgeCutoffs,
        after: (i64, String),
    },
    /// Decision rows, oldest first.
    Decisions { cutoff: i64 },
    /// Final delivery rows, walking deliveries after this id.
    Deliveries { cutoff: i64, after: i64 },
}

impl PurgeStep {
    /// The first step of a purge.
    pub fn first(c: PurgeCutoffs) -> PurgeStep {
        PurgeStep::Bodies {
            cutoffs: c,
            after: (i64::MIN, String::new()),
        }
    }
}

/// What a purge removed (or, dry run, would remove), per kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PurgeReport {
    pub message_bodies: u64,
    pub decisions: u64,
    pub deliveries: u64,
    /// Messages deleted because none of their rows was left.
    pub messages: u64,
}

impl PurgeReport {
    pub fn add(&mut self, o: &PurgeReport) {
        self.message_bodies += o.message_bodies;
        self.decisions += o.decisions;
        self.deliveries += o.deliveries;
        self.messages += o.messages;
    }

    pub fn is_empty(&self) -> bool {
        *self == PurgeReport::default()
    }
}

impl Store {
    /// Runs one batch of a purge in its own transaction: what it removed,
    /// and the step to run next (`None` when the purge is done).
    pub async fn purge_batch(
        &self,
        step: PurgeStep,
    ) -> Result<(PurgeReport, Option<PurgeStep>), StoreError> {
        self.write(ops::purge::Purge(step)).await
    }

    /// What a purge with these cut-offs would remove, changing nothing.
    pub async fn purge_count(&self, cutoffs: PurgeCutoffs) -> Result<PurgeReport, StoreError> {
        snapshot!(self, c => ops::purge::purge_count(c, cutoffs))
    }
}
