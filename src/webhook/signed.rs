//! What goes on the wire for one webhook attempt, and when the next one is
//! due. Pure: the event, the clock and the secret in; bytes, a header value
//! and a delay out.
//!
//! The body is the API's event object (`rights::event`) plus `type`
//! (`consent.<action>`, or `complained` for the withdrawal a complaint
//! made: action `withdraw`, source `complaint`), `email` (null once the
//! subject was erased) and `timestamp` (unix seconds of this attempt). A
//! notice's body is its payload plus `type` (`bounced`,
//! `suppression-removed`, `campaign-paused`, `campaign-warning`), `id`
//! (`notice-<n>`, to dedup on), `email` and `timestamp`. `X-Consent-Relay-Signature: sha256=<hex>` is the
//! HMAC-SHA256 of the exact body bytes under the webhook secret: the
//! timestamp is inside what is signed, so a receiver that refuses old
//! timestamps refuses replays.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::consent::{Action, Source};
use crate::store::{ClaimedNotice, ClaimedWebhook};

/// The header carrying the body's signature.
pub const SIGNATURE_HEADER: &str = "X-Consent-Relay-Signature";

/// The JSON body of one attempt; `timestamp` in unix seconds.
pub fn body(claimed: &ClaimedWebhook, timestamp: i64) -> Vec<u8> {
    let mut doc = crate::rights::event(&claimed.event);
    if let Some(o) = doc.as_object_mut() {
        let e = &claimed.event;
        let kind = if e.source == Source::Complaint && e.action == Action::Withdraw {
            "complained".to_owned()
        } else {
            format!("consent.{}", e.action)
        };
        o.insert("type".into(), kind.into());
        o.insert("email".into(), claimed.email.clone().into());
        o.insert("timestamp".into(), timestamp.into());
    }
    doc.to_string().into_bytes()
}

/// The JSON body of one attempt to post a notice; `timestamp` in unix seconds.
pub fn notice_body(claimed: &ClaimedNotice, timestamp: i64) -> Vec<u8> {
    let mut doc = match &claimed.payload {
        serde_json::Value::Object(o) => o.clone(),
        other => {
            let mut o = serde_json::Map::new();
            o.insert("payload".into(), other.clone());
            o
        }
    };
    doc.insert("type".into(), claimed.kind.as_str().into());
    doc.insert("id".into(), format!("notice-{}", claimed.id).into());
    doc.insert("email".into(), claimed.email.clone().into());
    doc.insert("timestamp".into(), timestamp.into());
    serde_json::Value::Object(doc).to_string().into_bytes()
}

/// `sha256=<hex HMAC-SHA256 of body under secret>`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The wait after the `attempts`-th failed attempt (1 for the first):
/// `min`, doubling each time, never more than `max`.
pub fn backoff(attempts: i64, min: Duration, max: Duration) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 32)).unwrap_or(32);
    min.saturating_mul(1u32 << doublings.min(31)).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ConsentEvent;

    fn claimed(email: Option<&str>) -> ClaimedWebhook {
        ClaimedWebhook {
            event: ConsentEvent {
                id: 7,
                subject_id: "s1".into(),
                campaign: "newsletter".into(),
                action: crate::consent::Action::Grant,
                at: 1_500,
                source: crate::consent::Source::Api,
                ip: Some("192.0.2.1".into()),
                user_agent: None,
                evidence: Some("form v2".into()),
                recorded_at: 2_000,
            },
            email: email.map(str::to_owned),
            attempts: 0,
        }
    }

    #[test]
    fn body_carries_the_event_the_address_and_the_timestamp() {
        let b: serde_json::Value =
            serde_json::from_slice(&body(&claimed(Some("a@example.com")), 1_764_000_000))
                .expect("json");
        assert_eq!(b["id"], 7);
        assert_eq!(b["type"], "consent.grant");
        assert_eq!(b["subject_id"], "s1");
        assert_eq!(b["email"], "a@example.com");
        assert_eq!(b["campaign"], "newsletter");
        assert_eq!(b["action"], "grant");
        assert_eq!(b["at"], "1970-01-01T00:00:01.500Z");
        assert_eq!(b["source"], "api");
        assert_eq!(b["ip"], "192.0.2.1");
        assert_eq!(b["user_agent"], serde_json::Value::Null);
        assert_eq!(b["evidence"], "form v2");
        assert_eq!(b["recorded_at"], "1970-01-01T00:00:02.000Z");
        assert_eq!(b["timestamp"], 1_764_000_000);
        let erased: serde_json::Value =
            serde_json::from_slice(&body(&claimed(None), 1)).expect("json");
        assert_eq!(erased["email"], serde_json::Value::Null);
    }

    #[test]
    fn a_complaints_withdrawal_is_complained() {
        let mut c = claimed(Some("a@example.com"));
        c.event.action = crate::consent::Action::Withdraw;
        c.event.source = crate::consent::Source::Complaint;
        let b: serde_json::Value = serde_json::from_slice(&body(&c, 1)).expect("json");
        assert_eq!(b["type"], "complained");
        assert_eq!(b["action"], "withdraw");
        assert_eq!(b["source"], "complaint");
        c.event.source = crate::consent::Source::Api;
        let b: serde_json::Value = serde_json::from_slice(&body(&c, 1)).expect("json");
        assert_eq!(b["type"], "consent.withdraw");
    }

    #[test]
    fn a_notice_is_its_payload_with_type_id_email_and_timestamp() {
        let n = ClaimedNotice {
            id: 3,
            kind: crate::store::NoticeKind::SuppressionRemoved,
            payload: serde_json::json!({ "subject_id": "s1", "removed_by": "admin" }),
            email: None,
            attempts: 0,
        };
        let b: serde_json::Value = serde_json::from_slice(&notice_body(&n, 9)).expect("json");
        assert_eq!(b["type"], "suppression-removed");
        assert_eq!(b["id"], "notice-3");
        assert_eq!(b["subject_id"], "s1");
        assert_eq!(b["removed_by"], "admin");
        assert_eq!(b["email"], serde_json::Value::Null);
        assert_eq!(b["timestamp"], 9);
    }

    #[test]
    fn signature_is_the_hmac_of_the_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let (min, max) = (Duration::from_secs(5), Duration::from_secs(60));
        let waits: Vec<u64> = (1..=6).map(|n| backoff(n, min, max).as_secs()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 60, 60]);
        assert_eq!(backoff(10_000, min, max), max);
    }
}
