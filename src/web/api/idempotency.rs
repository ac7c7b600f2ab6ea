//! `Idempotency-Key` on `POST /api/v1/consent`: the header's checks, the
//! request's hash, and the answers (first and replayed) as the same bytes.
//! Storing the key with the answer, in the event's transaction, is the
//! store's (`Store::append_consent_event_once`).

use axum::http::StatusCode;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::ApiError;
use crate::store::StoreError;

/// The request header.
pub const HEADER: &str = "Idempotency-Key";
/// Longest key accepted, in characters (printable ASCII).
pub const KEY_MAX: usize = 255;

/// The key of a request, if it has one: 1 to [`KEY_MAX`] printable ASCII
/// characters, once.
pub fn key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let mut values = headers.get_all(HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let bad = |why: &str| {
        ApiError::bad(
            HEADER,
            format!("{why} (send 1 to {KEY_MAX} printable ASCII characters, e.g. a UUID)"),
        )
    };
    if values.next().is_some() {
        return Err(bad("sent more than once"));
    }
    let key = value
        .to_str()
        .map_err(|_| bad("is not printable ASCII"))?
        .trim();
    if key.is_empty() {
        return Err(bad("is empty"));
    }
    if key.len() > KEY_MAX {
        return Err(bad(&format!("is {} characters long", key.len())));
    }
    if !key.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err(bad("is not printable ASCII"));
    }
    Ok(Some(key.to_owned()))
}

/// SHA-256 (hex) of the request body as JSON, so the same request with
/// other spacing or member order is the same request.
pub fn request_hash(body: &[u8]) -> String {
    let canonical = serde_json::from_slice::<serde_json::Value>(body)
        .map(|v| v.to_string().into_bytes())
        .unwrap_or_else(|_| body.to_vec());
    Sha256::digest(&canonical)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A JSON answer from its stored text.
pub fn json(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// The first answer to a key, again, marked as a replay.
pub fn replay(status: u16, body: String) -> Result<Response, ApiError> {
    let status = StatusCode::from_u16(status)
        .map_err(|_| StoreError::Corrupt(format!("idempotency_keys.status {status}")))?;
    let mut res = json(status, body);
    res.headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    Ok(res)
}
