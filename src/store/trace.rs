//! The message trace (the console's `/admin/message?id=`): one message,
//! found by its queue id or by its `Message-ID`, with every recipient's
//! decision and every copy's attempts and replies. The type and the
//! [`Store`] method; the reads are `ops::trace`.

use super::ops;
use super::{DecisionRow, DeliveryRow, MessageKind, Store, StoreError};

/// Messages one trace returns at most: a Message-ID the CRM reused (or
/// sent again) names several, newest first.
pub const TRACE_MAX: i64 = 20;

/// A message as the trace shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MessageTrace {
    pub queue_id: String,
    pub kind: MessageKind,
    /// The campaign (`''` for the relay's DSNs and erasure notices).
    pub campaign: String,
    /// The envelope sender (`''` for the null sender).
    pub mail_from: String,
    pub client_ip: String,
    pub helo: String,
    pub auth_user: Option<String>,
    /// The `Message-ID` header as written, if it had one.
    pub header_message_id: Option<String>,
    /// Bytes as stored (the `Received:` header added).
    pub size: i64,
    pub received_at: i64,
    /// Whether the body is still held (not yet purged or erased).
    pub body_held: bool,
    /// One row per envelope recipient, and one per late suppression, oldest first.
    pub decisions: Vec<DecisionRow>,
    /// One per copy, each with its attempts, oldest first.
    pub deliveries: Vec<DeliveryRow>,
}

impl Store {
    /// The message `id` names, read in one snapshot: a queue id (in any
    /// case), or else a `Message-ID` with or without its angle brackets,
    /// which may name several messages (newest first, at most
    /// [`TRACE_MAX`]). Empty when nothing matches.
    pub async fn message_trace(&self, id: &str) -> Result<Vec<MessageTrace>, StoreError> {
        snapshot!(self, c => ops::trace::message_trace(c, id, TRACE_MAX))
    }
}
