//! `POST /api/v1/feedback`: a report (a DSN, an ARF complaint) as the raw
//! message in the body, whatever the content type (`message/rfc822` is the
//! one documented), for a mail system that hands reports over HTTP. The
//! body may be up to `[bounces] max_report_size` (413 beyond). `202` once
//! the report is stored, with what it changed; `422` for a message that is
//! not a report (not stored); `503` when the store cannot take it (retry).
//! Behind the same bearer check as every API route; role admin only (a
//! report can suppress people and pause campaigns). A stored report gets
//! an audit row naming the operator.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Extension, FromRequest as _, Request, State};
use axum::http::StatusCode;
use axum::http::header::{self, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;
use tower_http::limit::RequestBodyLimitLayer;

use super::ApiError;
use crate::config::Operator;
use crate::feedback::intake::{self, IntakeError};
use crate::store::{Door, NewReport};
use crate::web::WebState;

/// Seconds a client is told to wait when the store cannot take a report.
const RETRY_SECONDS: u64 = 60;

/// The route, with its own body limit (a report is larger than the other
/// API bodies).
pub(super) fn router(state: &WebState) -> Router<WebState> {
    let max = state.config.bounces.max_report_size;
    Router::new()
        .route("/api/v1/feedback", post(receive))
        .layer(DefaultBodyLimit::max(max))
        .layer(RequestBodyLimitLayer::new(max))
}

async fn receive(
    State(web): State<WebState>,
    Extension(operator): Extension<Operator>,
    req: Request,
) -> Result<Response, ApiError> {
    // The peer when served over a socket (not under `oneshot`).
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().cloned();
    let body = Bytes::from_request(req, &web).await;
    let body = body.map_err(|r: BytesRejection| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge
        } else {
            ApiError::Unreadable
        }
    })?;
    let client = peer.map(|ConnectInfo(p)| p.ip().to_canonical().to_string());
    let size = body.len();
    let report = NewReport {
        door: Door::Api,
        envelope_from: None,
        envelope_to: None,
        client_ip: client.clone(),
        raw: body.to_vec(),
        received_at: crate::time::now_ms(),
        actor: Some(super::auth::actor(&operator)),
    };
    match intake::receive(&web.store, &web.config, report).await {
        Ok(p) => {
            crate::feedback::door::log_report(&p, "api", client.as_deref().unwrap_or("-"), size);
            let body = json!({
                "id": p.received.id,
                "duplicate": p.received.duplicate,
                "kind": p.kind.to_string(),
                "result": p.applied.result.to_string(),
                "detail": p.applied.detail,
            });
            Ok((StatusCode::ACCEPTED, axum::Json(body)).into_response())
        }
        Err(IntakeError::NotAReport(why)) => {
            tracing::info!(reason = %why, "api: report refused: not a report");
            let body = json!({
                "error": "not-a-report",
                "message": format!("not a report: {why}"),
            });
            Ok((StatusCode::UNPROCESSABLE_ENTITY, axum::Json(body)).into_response())
        }
        Err(IntakeError::TooBig { .. }) => Err(ApiError::TooLarge),
        Err(IntakeError::Store(e)) => {
            tracing::error!(cause = %e, "api: report not stored");
            web.pending_reports.notify_one();
            let body = json!({
                "error": "unavailable",
                "message": "the store cannot take the report now; retry later",
            });
            let mut res = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_SECONDS));
            Ok(res)
        }
    }
}
