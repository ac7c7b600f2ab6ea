//! Data-subject rights shared by the admin API and the command line: the
//! access/portability document (`GET /api/v1/subjects/{email}`,
//! `consent-relay export`) and erasure (`DELETE /api/v1/subjects/{email}`,
//! `consent-relay erase`). What is erased, and how, is the store's
//! (`store::Erasure`); this module only shapes requests and documents.

use serde_json::{Value, json};

use crate::config::Config;
use crate::consent::Source;
use crate::store::{
    ConsentEvent, DecisionRow, DeliveryRow, Erasure, ErasureReport, Store, StoreError,
    SubjectRecord,
};
use crate::subject;

/// RFC 3339, UTC, with milliseconds: the store's clock readings, unrounded.
pub fn time(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

/// Everything held about `email` as one JSON document; `None` if nothing is.
pub async fn export(store: &Store, email: &str) -> Result<Option<Value>, StoreError> {
    let address = subject::normalise(email);
    Ok(store
        .subject_record(&address)
        .await?
        .map(|r| document(&address, &r)))
}

/// Erases `email` (see `store::Erasure`); `None` if nothing was held.
pub async fn erase(
    store: &Store,
    config: &Config,
    email: &str,
    source: Source,
) -> Result<Option<ErasureReport>, StoreError> {
    let address = subject::normalise(email);
    store
        .erase(Erasure {
            new_subject: subject::new_subject(&config.signing, &address),
            address,
            source,
            at: crate::now_ms(),
        })
        .await
}

/// The access document: the subject, consent state per campaign, every
/// consent event with its proof, the decision log and the deliveries.
pub fn document(address: &str, r: &SubjectRecord) -> Value {
    json!({
        "address": address,
        "subject": r.subject.as_ref().map(|s| json!({
            "id": s.id, "address": s.address, "created_at": time(s.created_at),
        })),
        "consent": r.states.iter().map(|s| json!({
            "campaign": s.campaign, "status": s.status, "since": time(s.since), "event_id": s.event_id,
        })).collect::<Vec<_>>(),
        "events": r.events.iter().map(event).collect::<Vec<_>>(),
        "decisions": r.decisions.iter().map(decision).collect::<Vec<_>>(),
        "deliveries": r.deliveries.iter().map(delivery).collect::<Vec<_>>(),
    })
}

/// A consent event with its proof.
pub fn event(e: &ConsentEvent) -> Value {
    json!({
        "id": e.id, "subject_id": e.subject_id, "campaign": e.campaign, "action": e.action,
        "at": time(e.at), "source": e.source, "ip": e.ip, "user_agent": e.user_agent,
        "evidence": e.evidence, "recorded_at": time(e.recorded_at),
    })
}

/// A row of the decision log.
pub fn decision(d: &DecisionRow) -> Value {
    json!({
        "id": d.id, "at": time(d.at), "queue_id": d.message_id, "recipient": d.recipient,
        "campaign": d.campaign, "outcome": d.outcome, "reason": d.reason,
        "consent_event": d.event_id, "stage": d.stage,
    })
}

fn delivery(d: &DeliveryRow) -> Value {
    json!({
        "id": d.id, "queue_id": d.message_id, "campaign": d.campaign, "status": d.status,
        "attempts": d.attempts, "last_reply": d.last_reply,
        "created_at": time(d.created_at), "updated_at": time(d.updated_at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_keep_milliseconds() {
        assert_eq!(time(1_500), "1970-01-01T00:00:01.500Z");
    }
}
