//! The admin API under `/api/v1`: JSON for the CRM and the data-protection
//! officer. Every route needs `Authorization: Bearer <token>`, whose SHA-256
//! is compared (in constant time) with the operators' digests
//! (`[[http.operator]]`, `[http] admin_token_sha256`); the operator's role
//! decides what it may do, and every change names the operator as its
//! actor in the audit trail.
//!
//! Owns the routes, the bearer check, request parsing and the JSON errors.
//! Does not own what an export holds or what erasure removes (`rights`,
//! `store`), nor the recipient's pages (`pages`).

use std::net::IpAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use tower_http::limit::RequestBodyLimitLayer;

mod auth;
mod error;
mod feedback;
mod idempotency;

pub use error::ApiError;
pub(crate) use error::error_response;

use super::{USER_AGENT_MAX, Visitor, WebState};
use crate::config::{Campaign, CampaignState, Operator, Policy};
use crate::consent::identity::Identity;
use crate::consent::subject;
use crate::consent::{ALL_CAMPAIGNS, Action, Source};
use crate::mail::ids;
use crate::rights;
use crate::store::{
    ConsentEvent, DecisionFilter, FollowUp, KeyedConsent, KeyedOutcome, NewConsentEvent,
};
use crate::texts::Language;
use crate::time::parse_rfc3339;

/// Largest API request body: a consent record with generous evidence.
pub const API_BODY_LIMIT: usize = 64 * 1024;
/// Decision rows per page: default and most.
const PAGE_DEFAULT: i64 = 100;
const PAGE_MAX: i64 = 1000;
/// How far ahead of our clock an event's `at` may be (clock skew). A grant
/// dated later would outrank every change made before that time.
pub(crate) const FUTURE_SKEW_MS: i64 = 5 * 60 * 1000;

/// The `/api/v1` routes, behind the bearer check and their own body limit.
pub(crate) fn router(state: WebState) -> Router<WebState> {
    Router::new()
        .route("/api/v1/consent", post(record_consent))
        .route(
            "/api/v1/subjects/{email}",
            get(export_subject).delete(erase_subject),
        )
        .route("/api/v1/decisions", get(decisions))
        .route("/api/v1/campaigns", get(campaigns))
        .route("/api/v1/suppressions", get(suppressions))
        .route(
            "/api/v1/suppressions/{email}",
            axum::routing::delete(remove_suppression),
        )
        .route("/api/{*rest}", any(not_found))
        .layer(RequestBodyLimitLayer::new(API_BODY_LIMIT))
        // After the 64 KB limit: a report has its own, `[bounces] max_report_size`.
        .merge(feedback::router(&state))
        .layer(middleware::from_fn_with_state(state, auth::authorize))
}

/// A JSON body, with the path of the field at fault in the error.
fn parse_json<T: serde::de::DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let body = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge
        } else {
            ApiError::Unreadable
        }
    })?;
    let mut de = serde_json::Deserializer::from_slice(&body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || inner.is_syntax() || inner.is_eof() {
            ApiError::NotJson(inner.to_string())
        } else {
            ApiError::bad(&path, inner.to_string())
        }
    })
}

/// `POST /api/v1/consent`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsentBody {
    email: String,
    campaign: String,
    action: Change,
    source: Option<String>,
    evidence: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    /// RFC 3339; default now.
    at: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Change {
    Grant,
    Withdraw,
}

async fn record_consent(
    State(web): State<WebState>,
    Extension(operator): Extension<Operator>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let key = idempotency::key(&headers)?;
    let raw = body.as_ref().ok().cloned();
    let b: ConsentBody = parse_json(body)?;
    let (mut new_event, campaign, identity) = checked_event(&web, b)?;
    new_event.actor = Some(auth::actor(&operator));
    let action = new_event.action;
    let confirm = campaign.filter(|_| action == Action::Request);
    let status = if confirm.is_some() {
        StatusCode::ACCEPTED
    } else {
        StatusCode::CREATED
    };
    let follow_up = confirm.map(|c| confirmation_mail(&web, c, &identity));
    let (event, answer) = match key {
        None => {
            let event = web
                .store
                .append_consent_event_then(new_event, follow_up)
                .await?;
            let answer = rights::event(&event).to_string();
            (event, answer)
        }
        // The key is stored with the answer in the event's transaction: a
        // retry (or a concurrent twin) gets that answer and records nothing.
        Some(key) => {
            let keyed = KeyedConsent {
                event: new_event,
                key,
                request_hash: idempotency::request_hash(raw.as_deref().unwrap_or_default()),
                status: status.as_u16(),
                respond: Arc::new(|e| rights::event(e).to_string()),
                follow_up,
            };
            match web.store.append_consent_event_once(keyed).await? {
                KeyedOutcome::Recorded { event, body } => (event, body),
                KeyedOutcome::Replay { status, body } => {
                    return idempotency::replay(status, body);
                }
                KeyedOutcome::Mismatch => return Err(ApiError::KeyReused),
            }
        }
    };
    tracing::info!(subject = %event.subject_id, campaign = %event.campaign, action = %action, event = event.id, "api: consent recorded");
    if confirm.is_some() {
        web.wake.notify_one();
    }
    Ok(idempotency::json(status, answer))
}

/// The event a request body asks for, every field checked, its campaign
/// (`None` for `*`) and who it is about. A grant for a double opt-in
/// campaign is a `request` until the person confirms.
fn checked_event(
    web: &WebState,
    b: ConsentBody,
) -> Result<(NewConsentEvent, Option<&Campaign>, Identity), ApiError> {
    let identity = Identity::of(&b.email).map_err(|reason| ApiError::Address {
        field: "email",
        reason,
    })?;
    let address = identity.canonical().to_owned();
    let mut action = match b.action {
        Change::Grant => Action::Grant,
        Change::Withdraw => Action::Withdraw,
    };
    if b.campaign == ALL_CAMPAIGNS && action == Action::Grant {
        return Err(ApiError::bad(
            "campaign",
            "a grant names one campaign ('*' is for withdraw only)",
        ));
    }
    let campaign = web
        .config
        .campaign(&b.campaign)
        .filter(|c| c.state != CampaignState::Deleted);
    if b.campaign != ALL_CAMPAIGNS && campaign.is_none() {
        return Err(ApiError::bad("campaign", "is not a configured campaign"));
    }
    if action == Action::Grant && campaign.is_some_and(|c| c.double_opt_in) {
        action = Action::Request;
    }
    let source = match &b.source {
        Some(s) => Source::given(s).map_err(|e| ApiError::bad("source", e))?,
        None => Source::Api,
    };
    let at = checked_at(b.at.as_deref(), crate::time::now_ms())?;
    let ip = b.ip.as_deref().map(checked_ip).transpose()?;
    let user_agent = b
        .user_agent
        .map(|ua| ua.chars().take(USER_AGENT_MAX).collect());
    let event = NewConsentEvent {
        new_subject: subject::new_subject(&web.config.signing, &address),
        address,
        campaign: b.campaign,
        action,
        at,
        source,
        ip,
        user_agent,
        evidence: b.evidence,
        actor: None,
    };
    Ok((event, campaign, identity))
}

/// When the change happened: `now` by default, never in the future.
fn checked_at(at: Option<&str>, now: i64) -> Result<i64, ApiError> {
    let Some(t) = at else {
        return Ok(now);
    };
    let at = parse_rfc3339(t).ok_or_else(|| {
        ApiError::bad("at", "is not an RFC 3339 time (e.g. 2026-11-01T08:00:00Z)")
    })?;
    if at > now + FUTURE_SKEW_MS {
        return Err(ApiError::bad("at", "is in the future"));
    }
    Ok(at)
}

/// The person's IP address as proof, in its canonical form.
fn checked_ip(ip: &str) -> Result<String, ApiError> {
    Ok(ip
        .trim()
        .parse::<IpAddr>()
        .map_err(|_| ApiError::bad("ip", "is not an IP address"))?
        .to_canonical()
        .to_string())
}

/// The double opt-in mail. The relay mails the confirmation link itself,
/// through its queue: the mail is built from the recorded event (its id,
/// its subject) and queued in the event's transaction, so there is never a
/// request without its mail, even when the answer is replayed to a retry.
fn confirmation_mail(web: &WebState, campaign: &Campaign, to: &Identity) -> FollowUp {
    let (config, campaign, to) = (web.config.clone(), campaign.clone(), to.clone());
    Arc::new(move |e: &ConsentEvent| {
        crate::rights::confirmation::message(
            &config,
            &campaign,
            &e.subject_id,
            &to,
            e.id,
            crate::time::now_ms(),
        )
        .map_err(|e| e.to_string())
    })
}

/// `GET /api/v1/subjects/{email}`: access and portability.
async fn export_subject(
    State(web): State<WebState>,
    Extension(operator): Extension<Operator>,
    Path(email): Path<String>,
) -> Result<Response, ApiError> {
    let actor = auth::actor(&operator);
    match rights::export(&web.store, &web.config, &subject_path(&email)?, &actor).await? {
        Some(doc) => Ok(axum::Json(doc).into_response()),
        None => Err(ApiError::NotFound("nothing is held about this address")),
    }
}

/// `DELETE /api/v1/subjects/{email}`: erasure.
async fn erase_subject(
    State(web): State<WebState>,
    Extension(operator): Extension<Operator>,
    Path(email): Path<String>,
) -> Result<Response, ApiError> {
    let actor = auth::actor(&operator);
    match rights::erase(&web.store, &web.config, &subject_path(&email)?, &actor).await? {
        Some(r) => {
            tracing::info!(operator = %operator.name, subject = %r.subject_id, decisions = r.decisions, deliveries = r.deliveries, cancelled = r.cancelled, "api: subject erased");
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        None => Err(ApiError::NotFound("nothing is held about this address")),
    }
}

/// `GET /api/v1/decisions?recipient=&campaign=&queue_id=&message_id=&since=&order=&limit=&cursor=`:
/// oldest first (`order=oldest`, the default) or newest first
/// (`order=newest`); `next_cursor` names the next page in the same order.
async fn decisions(
    State(web): State<WebState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let mut filter = DecisionFilter {
        limit: PAGE_DEFAULT,
        ..Default::default()
    };
    let mut cursor = None;
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match &*name {
            "recipient" => filter.recipient = Some(recipient_filter(&value)?),
            "campaign" => filter.campaign = Some(value.into_owned()),
            "queue_id" => {
                filter.queue_id =
                    Some(ids::queue_id(&value).map_err(|e| ApiError::bad("queue_id", e))?)
            }
            "message_id" => {
                filter.message_id =
                    Some(ids::message_id(&value).map_err(|e| ApiError::bad("message_id", e))?)
            }
            "since" => {
                filter.since = Some(parse_rfc3339(&value).ok_or_else(|| {
                    ApiError::bad("since", "is not an RFC 3339 time or a date (2026-11-01)")
                })?)
            }
            "order" => {
                filter.newest_first = match &*value {
                    "oldest" => false,
                    "newest" => true,
                    _ => return Err(ApiError::bad("order", "must be oldest or newest")),
                }
            }
            "limit" => filter.limit = page_limit(&value)?,
            "cursor" => cursor = Some(page_cursor(&value)?),
            other => {
                return Err(ApiError::bad(
                    other,
                    "is not a parameter (use recipient, campaign, queue_id, message_id, since, order, limit, cursor)",
                ));
            }
        }
    }
    // The cursor is the last row of the page before: the next page starts
    // after it in the order asked for.
    if filter.newest_first {
        filter.before_id = cursor;
    } else {
        filter.after_id = cursor;
    }
    let page = filter.limit;
    // One row more than asked tells whether there is a next page.
    filter.limit = page + 1;
    let mut rows = web.store.decisions(&filter).await?;
    let next_cursor = if rows.len() as i64 > page {
        rows.truncate(page as usize);
        rows.last().map(|r| r.id.to_string())
    } else {
        None
    };
    let decisions: Vec<Value> = rows.iter().map(rights::decision).collect();
    Ok(axum::Json(json!({ "decisions": decisions, "next_cursor": next_cursor })).into_response())
}

/// A page size from `limit`: 1 to [`PAGE_MAX`].
fn page_limit(value: &str) -> Result<i64, ApiError> {
    value
        .parse::<i64>()
        .ok()
        .filter(|n| (1..=PAGE_MAX).contains(n))
        .ok_or_else(|| ApiError::bad("limit", format!("must be a number from 1 to {PAGE_MAX}")))
}

/// A `cursor` this API returned (a row id).
fn page_cursor(value: &str) -> Result<i64, ApiError> {
    value
        .parse::<i64>()
        .map_err(|_| ApiError::bad("cursor", "is not a cursor this API returned"))
}

/// `GET /api/v1/suppressions?limit=&cursor=`: the suppressions in force,
/// newest first; `next_cursor` names the next page, as for decisions.
async fn suppressions(
    State(web): State<WebState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let (mut page, mut before) = (PAGE_DEFAULT, None);
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match &*name {
            "limit" => page = page_limit(&value)?,
            "cursor" => before = Some(page_cursor(&value)?),
            other => {
                return Err(ApiError::bad(
                    other,
                    "is not a parameter (use limit, cursor)",
                ));
            }
        }
    }
    // One row more than asked tells whether there is a next page.
    let mut rows = web.store.active_suppressions(page + 1, before).await?;
    let next_cursor = if rows.len() as i64 > page {
        rows.truncate(page as usize);
        rows.last().map(|r| r.suppression.id.to_string())
    } else {
        None
    };
    let list: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut doc = rights::suppression(&r.suppression);
            doc["subject_id"] = json!(r.subject_id);
            doc["email"] = json!(r.address);
            doc["address_hash"] = json!(r.address_hash);
            doc
        })
        .collect();
    Ok(axum::Json(json!({ "suppressions": list, "next_cursor": next_cursor })).into_response())
}

/// `DELETE /api/v1/suppressions/{email}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RemovalBody {
    reason: String,
}

/// `DELETE /api/v1/suppressions/{email}` with `{"reason": ...}` (or
/// `?reason=`): the person's suppressions in force are removed, recorded
/// as by the operator with the reason; `404` when none was in force.
async fn remove_suppression(
    State(web): State<WebState>,
    Extension(operator): Extension<Operator>,
    Path(email): Path<String>,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let who = subject_path(&email)?;
    let mut reason = None;
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match &*name {
            "reason" => reason = Some(value.into_owned()),
            other => return Err(ApiError::bad(other, "is not a parameter (use reason)")),
        }
    }
    if body.as_ref().is_ok_and(|b| !b.is_empty()) || body.is_err() {
        let b: RemovalBody = parse_json(body)?;
        reason = Some(b.reason);
    }
    let reason = reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty())
        .ok_or_else(|| {
            ApiError::bad(
                "reason",
                "is required: say why the person may be mailed again",
            )
        })?;
    let removed = web
        .store
        .remove_suppressions(who.canonical(), &auth::actor(&operator), &reason)
        .await?;
    if removed.is_empty() {
        return Err(ApiError::NotFound(
            "no suppression in force for this address",
        ));
    }
    tracing::info!(
        removed = removed.len(),
        by = %operator.name,
        "api: suppressions removed"
    );
    let list: Vec<Value> = removed.iter().map(rights::suppression).collect();
    Ok(axum::Json(json!({ "removed": list })).into_response())
}

/// `GET /api/v1/campaigns`: every configured campaign, in display order.
/// `label` is in the language of `Accept-Language` (else `[texts]
/// default_language`), as a page would show it; a label given per
/// language also comes as `labels`, one per language the relay speaks.
async fn campaigns(State(web): State<WebState>, visitor: Visitor) -> Response {
    let default = web.config.texts.default_language;
    let mut list: Vec<_> = web.config.campaigns.iter().collect();
    list.sort_by_key(|c| c.order);
    let campaigns: Vec<Value> = list
        .into_iter()
        .map(|c| {
            let mut campaign = json!({
                "id": c.id, "label": c.label_in(visitor.lang, default),
                "policy": match c.policy {
                    Policy::OptIn => "opt-in",
                    Policy::OptOut => "opt-out",
                    Policy::Mandatory => "mandatory",
                },
                "state": match c.state {
                    CampaignState::Active => "active",
                    CampaignState::Inactive => "inactive",
                    CampaignState::Deleted => "deleted",
                },
                "order": c.order, "list_id": c.list_id, "double_opt_in": c.double_opt_in,
                "consent_max_age_days": c.consent_max_age_days,
            });
            if c.label.is_per_language() {
                let labels: serde_json::Map<String, Value> = Language::ALL
                    .into_iter()
                    .map(|lang| (lang.code().to_owned(), json!(c.label_in(lang, default))))
                    .collect();
                campaign["labels"] = Value::Object(labels);
            }
            campaign
        })
        .collect();
    axum::Json(json!({ "campaigns": campaigns })).into_response()
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such API route")
}

/// The person `/api/v1/subjects/{email}` names.
fn subject_path(email: &str) -> Result<Identity, ApiError> {
    Identity::of(email).map_err(|reason| ApiError::Address {
        field: "email",
        reason,
    })
}

/// The `recipient` a decision filter names: an address's identity, or the
/// `erased:HASH` tag that replaced an erased one.
fn recipient_filter(value: &str) -> Result<String, ApiError> {
    if value.starts_with("erased:") {
        return Ok(value.to_owned());
    }
    Identity::of(value)
        .map(|i| i.canonical().to_owned())
        .map_err(|reason| ApiError::Address {
            field: "recipient",
            reason,
        })
}
