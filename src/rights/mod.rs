//! Data-subject rights shared by the admin API and the command line: the
//! access/portability document (`GET /api/v1/subjects/{email}`,
//! `consent-relay export`) and erasure (`DELETE /api/v1/subjects/{email}`,
//! `consent-relay erase`). What is erased, and how, is the store's
//! (`store::Erasure`); this module only shapes requests and documents.
//! The access document says what it leaves out and why (`withheld`): a
//! message body shared with other recipients, a bounce that returns such a
//! message's header, the relay's log lines.

pub mod confirmation;
pub mod register;
pub mod retention;

use serde_json::{Value, json};

use crate::config::Config;
use crate::consent::identity::Identity;
use crate::consent::policy::{Outcome, Reason};
use crate::consent::subject;
use crate::store::{
    Actor, AuditAction, AuditEntry, ConsentEvent, DecisionRow, DeliveryRow, DeliveryStatus,
    Erasure, ErasureReport, MessageKind, NewMessage, RecipientDecision, Store, StoreError,
    SubjectRecord, Suppression,
};
use crate::texts::Language;

/// RFC 3339, UTC, with milliseconds: the store's clock readings, unrounded.
pub fn time(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

/// Everything held about the person `who` names as one JSON document,
/// handed to `actor` (an audit row says so); `None` if nothing is held
/// (and nothing is recorded).
pub async fn export(
    store: &Store,
    config: &Config,
    who: &Identity,
    actor: &Actor,
) -> Result<Option<Value>, StoreError> {
    let address = who.canonical();
    let Some(record) = store.subject_record(address).await? else {
        return Ok(None);
    };
    store
        .record_audit(AuditEntry {
            actor: actor.clone(),
            action: AuditAction::SubjectExport,
            subject_id: record.subject.as_ref().map(|s| s.id.clone()),
            target: None,
            detail: Some(format!(
                "{} events, {} decisions, {} deliveries",
                record.events.len(),
                record.decisions.len(),
                record.deliveries.len()
            )),
        })
        .await?;
    Ok(Some(document(config, address, &record)))
}

/// Erases the person `who` names, every spelling of their address (see
/// `store::Erasure`); `None` if nothing was held. With `[erasure] notify`,
/// the person's notice is queued in the same transaction, to the address
/// as it was written. The `erase` event's source and the audit row
/// follow `actor` (`api` through the API, `admin` otherwise).
pub async fn erase(
    store: &Store,
    config: &Config,
    who: &Identity,
    actor: &Actor,
) -> Result<Option<ErasureReport>, StoreError> {
    let address = who.canonical().to_owned();
    let now = crate::time::now_ms();
    let notice = if config.erasure.notify {
        let lang = match store.subject_record(&address).await? {
            Some(record) => notice_language(config, &record),
            // Nothing held: nothing is erased, and no one is mailed.
            None => return Ok(None),
        };
        erasure_notice(config, who, lang, now)
    } else {
        None
    };
    store
        .erase(Erasure {
            new_subject: subject::new_subject(&config.signing, &address),
            address,
            source: actor.via.source(),
            at: now,
            actor: actor.clone(),
            notice,
        })
        .await
}

/// The language of the erasure notice: that of the campaign the person
/// last heard from or about (a decision, else a consent event), when that
/// campaign has one, as the confirmation mail speaks its campaign's
/// language; else `[texts] default_language`.
fn notice_language(config: &Config, r: &SubjectRecord) -> Language {
    let decisions = r.decisions.iter().rev().map(|d| d.campaign.as_str());
    let events = r.events.iter().rev().map(|e| e.campaign.as_str());
    decisions
        .chain(events)
        .find_map(|id| config.campaign(id))
        .and_then(|c| c.language)
        .unwrap_or(config.texts.default_language)
}

/// The notice telling `to` that its data was erased (null sender, no
/// bounce); `None`, logged, if it cannot be built: the erasure goes on.
fn erasure_notice(config: &Config, to: &Identity, lang: Language, now: i64) -> Option<NewMessage> {
    let address = to.spelling();
    let id = ulid::Ulid::generate().to_string();
    let texts = (
        config.texts.get(lang, "erasure_mail_subject"),
        config.texts.get(lang, "erasure_mail_text"),
    );
    let built = crate::rights::confirmation::mail(
        config,
        None,
        address,
        lang,
        texts,
        &format!("{id}.erasure"),
        now,
    );
    let body = match built {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(cause = %e, "cannot build the erasure notice; erasing without it");
            return None;
        }
    };
    Some(NewMessage {
        id,
        kind: MessageKind::ErasureNotice,
        mail_from: String::new(),
        client_ip: "127.0.0.1".into(),
        helo: config.smtp.hostname.clone(),
        auth_user: None,
        campaign: String::new(),
        header_message_id: crate::mail::header::message_id(&body),
        body,
        received_at: now,
        recipients: vec![RecipientDecision {
            recipient: to.canonical().to_owned(),
            rcpt_to: (address != to.canonical()).then(|| address.to_owned()),
            // The store names the erased subject and the erase event.
            subject_id: None,
            new_subject: None,
            outcome: Outcome::Deliver,
            // The person asked for the erasure; the notice answers it.
            reason: Reason::Erased,
            event_id: None,
        }],
        // RFC 6531: a UTF-8 address is only reachable with SMTPUTF8.
        smtputf8: !address.is_ascii(),
    })
}

/// The access document: the subject, consent state per campaign, every
/// consent event with its proof, the decision log, the deliveries, the
/// messages to the address alone and the bounces about it, the
/// suppressions (removed ones too), and what is withheld, with why.
pub fn document(config: &Config, address: &str, r: &SubjectRecord) -> Value {
    let mut withheld = Vec::new();
    let messages: Vec<Value> = r
        .messages
        .iter()
        .filter(|m| {
            let shared = m.other_recipients > 0;
            if shared {
                withheld.push(json!({
                    "item": "message", "queue_id": m.id,
                    "reason": format!(
                        "the message as received was sent to {} other recipient(s) too: its body may name them or hold their data, \
                         so it is not given out to one of them (the decision and delivery rows above are this address's part of it)",
                        m.other_recipients
                    ),
                }));
            }
            !shared
        })
        .map(|m| {
            json!({
                "queue_id": m.id, "kind": m.kind, "campaign": m.campaign,
                "received_at": time(m.received_at), "raw": raw(&m.body),
            })
        })
        .collect();
    let bounces: Vec<Value> = r
        .bounces
        .iter()
        .map(|b| {
            let reason = match b.other_recipients {
                _ if b.body.is_none() => None,
                Some(0) => None,
                Some(n) => Some(format!(
                    "the bounce returns the header block of a message sent to {n} other recipient(s) too, which may name them"
                )),
                None => Some(
                    "written before the relay linked a bounce to the delivery it reports on: whether the header block it returns \
                     names other recipients is not known"
                        .to_owned(),
                ),
            };
            if let Some(reason) = &reason {
                withheld.push(json!({"item": "bounce", "queue_id": b.id, "reason": reason}));
            }
            let body = b.body.as_deref().filter(|_| reason.is_none());
            json!({
                "queue_id": b.id,
                "about": b.about.as_ref().map(|(queue_id, delivery)| json!({"queue_id": queue_id, "delivery": delivery})),
                "to": b.to, "status": b.status, "created_at": time(b.created_at),
                "raw": body.map(raw),
            })
        })
        .collect();
    withheld.push(log_lines(config, address));
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
        "messages": messages,
        "bounces": bounces,
        "suppressions": r.suppressions.iter().map(suppression).collect::<Vec<_>>(),
        "withheld": withheld,
    })
}

/// A stored message: its text, or base64 when it is not UTF-8.
fn raw(body: &[u8]) -> Value {
    match std::str::from_utf8(body) {
        Ok(text) => json!({"encoding": "utf-8", "text": text}),
        Err(_) => {
            use base64::Engine as _;
            let text = base64::engine::general_purpose::STANDARD.encode(body);
            json!({"encoding": "base64", "text": text})
        }
    }
}

/// The relay's log lines: not in the store, so not in the document; how
/// they name the address, to find them.
fn log_lines(config: &Config, address: &str) -> Value {
    let reason = match config.log.recipients {
        crate::config::LogRecipients::Hash => format!(
            "the relay's log is kept by the operator's log system, not in the store; its lines name this address by the hash {} \
             (consent-relay log-hash), and upstream replies in them have the address masked",
            crate::consent::logged::logged_recipient(config, address)
        ),
        crate::config::LogRecipients::Clear => {
            "the relay's log is kept by the operator's log system, not in the store; its lines name this address in clear \
             ([log] recipients = \"clear\")"
                .to_owned()
        }
    };
    json!({"item": "log lines", "reason": reason})
}

/// A suppression (a bounce the relay acts on), with its removal if any.
pub fn suppression(s: &Suppression) -> Value {
    json!({
        "id": s.id, "kind": s.kind, "reason": s.reason, "status_code": s.status_code,
        "diagnostic": s.diagnostic, "source": s.source, "campaign": s.campaign,
        "since": time(s.since), "until": s.until.map(time), "active": s.active,
        "removed_at": s.removed_at.map(time), "removed_by": s.removed_by,
        "removed_reason": s.removed_reason,
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

/// A row of the decision log: `kind` says what the message was (`relay`
/// for the CRM's mail, `confirmation`, `erasure-notice`, `dsn` for the
/// relay's own), `message_id` its `Message-ID` header.
pub fn decision(d: &DecisionRow) -> Value {
    json!({
        "id": d.id, "at": time(d.at), "queue_id": d.message_id, "kind": d.kind,
        "message_id": d.header_message_id, "recipient": d.recipient,
        "campaign": d.campaign, "outcome": d.outcome, "reason": d.reason,
        "consent_event": d.event_id, "stage": d.stage,
    })
}

/// A copy, with each attempt upstream and its reply; `next_attempt` while
/// it waits for one.
pub fn delivery(d: &DeliveryRow) -> Value {
    let waiting = matches!(d.status, DeliveryStatus::Queued | DeliveryStatus::Deferred);
    json!({
        "id": d.id, "queue_id": d.message_id, "kind": d.kind, "message_id": d.header_message_id,
        "campaign": d.campaign, "sent_to": d.sent_to, "status": d.status,
        "attempts": d.attempts, "next_attempt": waiting.then(|| time(d.next_attempt_at)),
        "last_reply": d.last_reply,
        "attempt_log": d.attempt_log.iter().map(|a| json!({
            "at": time(a.at), "status": a.status, "reply": a.reply,
        })).collect::<Vec<_>>(),
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
