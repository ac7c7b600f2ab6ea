//! What an API request can fail with, and the JSON error answers:
//! `{"error": code, "message": text}`, plus `field` for a bad request.
//! Clients see generic text; the details go to the log.

use axum::http::StatusCode;
use axum::http::header::{self, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::config::Role;
use crate::mail::address::AddressError;
use crate::store::StoreError;

/// `Retry-After` of a `503` for a full disk: long enough for an operator
/// or a log rotation to make room, short enough for a CRM's retry loop.
const RETRY_FULL_SECONDS: u64 = 60;

/// What an API request can fail with; clients see the status and a generic
/// text (plus, for a bad request, what to fix), logs see the rest.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or invalid bearer token")]
    Unauthorized,
    /// The operator's role does not allow the request: 403.
    #[error("role {role} may not {what} (needs role {needs})")]
    Forbidden {
        role: Role,
        /// What the request does, e.g. "change consent, erase or remove suppressions".
        what: &'static str,
        /// The roles that may, e.g. "admin or dpo".
        needs: &'static str,
    },
    /// `field` names the JSON field or query parameter at fault.
    #[error("{field}: {message}")]
    BadRequest { field: String, message: String },
    /// An address that is not a mailbox (the one parser's reason): 422.
    #[error("{field}: is not an email address ({reason})")]
    Address {
        field: &'static str,
        reason: AddressError,
    },
    #[error("the request body is not JSON: {0}")]
    NotJson(String),
    #[error("{0}")]
    NotFound(&'static str),
    #[error("the request body is too large")]
    TooLarge,
    #[error("the request body cannot be read")]
    Unreadable,
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("Idempotency-Key: this key was used with a different request body")]
    KeyReused,
}

impl ApiError {
    pub(super) fn bad(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::BadRequest {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::BadRequest { .. } | ApiError::NotJson(_) | ApiError::Unreadable => {
                StatusCode::BAD_REQUEST
            }
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Store(e) if e.is_full() => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::KeyReused | ApiError::Address { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut body = error_body(status);
        match &self {
            ApiError::BadRequest { field, message } => {
                body["field"] = json!(field);
                body["message"] = json!(format!("{field}: {message}"));
            }
            ApiError::Address { field, .. } => {
                body["error"] = json!("invalid-address");
                body["field"] = json!(field);
                body["message"] = json!(self.to_string());
            }
            ApiError::Forbidden { role, .. } => {
                body["role"] = json!(role.as_str());
                body["message"] = json!(format!("this operator's {self}"));
            }
            ApiError::NotJson(m) => body["message"] = json!(m),
            ApiError::NotFound(m) => body["message"] = json!(m),
            ApiError::KeyReused => {
                body["error"] = json!("idempotency-key-reused");
                body["field"] = json!("Idempotency-Key");
                body["message"] = json!(
                    "Idempotency-Key: this key was used within 24 h with a different request body (send a new key for a new request, or the same body to get the first answer)"
                );
            }
            _ => {}
        }
        if status.is_server_error() {
            tracing::error!(cause = %self, "api request failed");
        } else {
            tracing::debug!(cause = %self, status = status.as_u16(), "api request refused");
        }
        let mut res = (status, axum::Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_FULL_SECONDS));
        }
        if status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"consent-relay\""),
            );
        }
        res
    }
}

/// The generic JSON error for a status: `{"error": code, "message": text}`.
pub(crate) fn error_body(status: StatusCode) -> Value {
    let (code, message) = match status {
        StatusCode::UNAUTHORIZED => ("unauthorized", "a valid bearer token is required"),
        StatusCode::FORBIDDEN => ("forbidden", "the operator's role does not allow this"),
        StatusCode::NOT_FOUND => ("not-found", "not found"),
        StatusCode::METHOD_NOT_ALLOWED => ("method-not-allowed", "method not allowed"),
        StatusCode::PAYLOAD_TOO_LARGE => ("too-large", "the request body is too large"),
        StatusCode::REQUEST_TIMEOUT => ("timeout", "the request took too long"),
        StatusCode::SERVICE_UNAVAILABLE => (
            "unavailable",
            "the store cannot take writes now (its disk is full); retry later",
        ),
        s if s.is_server_error() => ("internal", "internal error; see the relay's log"),
        _ => ("bad-request", "bad request"),
    };
    json!({ "error": code, "message": message })
}

/// An error answer made below the handlers (`405`, `408`, `413`), as JSON.
pub(crate) fn error_response(status: StatusCode) -> Response {
    (status, axum::Json(error_body(status))).into_response()
}
