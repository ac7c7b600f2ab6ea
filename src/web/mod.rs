//! The recipient's side of HTTP: the one-click unsubscribe endpoint (RFC
//! 8058), the unsubscribe, preference and opt-in pages, and `/healthz`.
//! `GET` only shows; `POST` changes consent, through the same store function
//! as every other path, with the proof (IP, user agent, page, language and
//! texts version) in the event.
//!
//! Owns the router, its limits and security headers, the pages and the
//! HTTP listener ([`bind`]). The `/api/v1` routes are `api`'s; the token
//! format is `token`'s and the words are `texts`'.

mod api;
mod choices;
mod console;
mod error;
mod form;
mod frame;
mod html;
mod limit;
mod origin;
mod pages;
mod serve;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{StatusCode, request::Parts};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::config::Config;
use crate::store::Store;
use crate::texts::Language;

pub(crate) use api::FUTURE_SKEW_MS;
pub use error::WebError;
pub use serve::{HttpServer, bind};

/// Largest request body accepted: the pages' forms are a few hundred bytes.
pub const BODY_LIMIT: usize = 16 * 1024;
/// A request (body included) must be answered within this, or gets `408`.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What the handlers share.
#[derive(Clone)]
pub struct WebState {
    pub config: Arc<Config>,
    pub store: Store,
    /// Wakes the delivery worker after the web queued mail (the double
    /// opt-in confirmation), so it goes at once rather than at its next poll.
    pub wake: Arc<tokio::sync::Notify>,
    /// Wakes serve's loop over pending reports after `POST
    /// /api/v1/feedback` could not take a report whole.
    pub pending_reports: Arc<tokio::sync::Notify>,
    /// The console's sign-in rate limit (lives as long as the listener).
    pub sign_in: console::session::SignInLimiter,
}

/// Every route of the HTTP listener, with the body limit, the request
/// timeout and the security headers.
pub fn router(state: WebState) -> Router {
    let limiter = limit::Limiter::new(&state.config.http);
    router_limited(state, limiter)
}

/// [`router`] with a rate limiter that outlives it (one router is built
/// per configuration reload; the counts go on).
pub(crate) fn router_limited(state: WebState, limiter: limit::Limiter) -> Router {
    Router::new()
        .route(
            "/u/{token}",
            get(pages::unsubscribe_form).post(pages::unsubscribe),
        )
        .route(
            "/p/{token}",
            get(pages::preferences).post(pages::save_preferences),
        )
        .route("/o/{token}", get(pages::optin_form).post(pages::optin))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .merge(console::router())
        .fallback(pages::not_found)
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        // After the pages' limit: the API has its own, larger one.
        .merge(api::router(state.clone()))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        // Before the handlers, the timeout and the body: a client over
        // its quota costs nothing more.
        .layer(middleware::from_fn_with_state(limiter, limit::check))
        .layer(middleware::from_fn_with_state(state.clone(), finish))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok"
}

/// Prometheus text format, for clients in `[http] metrics_allowed_networks`
/// only; anyone else gets the same `404` as any unknown path.
async fn metrics(
    State(web): State<WebState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    visitor: Visitor,
) -> Response {
    let ip = peer.ip().to_canonical();
    if !web
        .config
        .http
        .metrics_allowed_networks
        .iter()
        .any(|n| n.contains(&ip))
    {
        return web.reply(&visitor, Err(WebError::NotFound));
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        metrics_text(&web.store).await,
    )
        .into_response()
}

/// The exposition with the queue depth read from the store now (left out,
/// with a warning, when the store cannot be read).
async fn metrics_text(store: &crate::store::Store) -> String {
    let depth = match store.queue_depth().await {
        Ok(depth) => Some(depth),
        Err(e) => {
            tracing::warn!(cause = %e, "metrics: cannot read the queue depth");
            None
        }
    };
    crate::metrics::render(depth.as_deref())
}

/// Who is asking, as far as a page needs to know: their language, and the
/// proof kept with a consent change.
pub(crate) struct Visitor {
    pub lang: Language,
    /// The TCP peer (no `X-Forwarded-For`: it cannot be trusted here).
    pub ip: Option<String>,
    /// At most [`USER_AGENT_MAX`] characters.
    pub user_agent: Option<String>,
}

/// User agents are kept as proof, but not without bound.
pub const USER_AGENT_MAX: usize = 512;

impl FromRequestParts<WebState> for Visitor {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &WebState,
    ) -> Result<Visitor, Infallible> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| peer.ip().to_canonical().to_string());
        let user_agent = parts.headers.get(header::USER_AGENT).map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .chars()
                .take(USER_AGENT_MAX)
                .collect()
        });
        Ok(Visitor {
            lang: language(&parts.headers, &state.config),
            ip,
            user_agent,
        })
    }
}

fn language(headers: &HeaderMap, config: &Config) -> Language {
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    Language::negotiate(accept, config.texts.default_language)
}

/// A `200` page (or another status) in `lang`.
fn html_page(status: StatusCode, lang: Language, body: String) -> Response {
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (
                header::CONTENT_LANGUAGE,
                HeaderValue::from_static(lang.code()),
            ),
            (header::VARY, HeaderValue::from_static("Accept-Language")),
        ],
        body,
    )
        .into_response()
}

/// Nothing but the inline stylesheet and forms back to us.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
/// [`CSP`] with the one image a page may show: the `[http] logo_file`,
/// embedded as a `data:` URI (no request to anyone). Only on HTML pages,
/// and only while a logo is configured.
const CSP_WITH_LOGO: &str = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const SECURITY_HEADERS: [(HeaderName, &str); 5] = [
    (header::CONTENT_SECURITY_POLICY, CSP),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "no-referrer"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::CACHE_CONTROL, "no-store"),
];

/// The outermost layer: answers made below the handlers (`405`, `408`,
/// `413`) become plain pages too (JSON errors under `/api/`), and every
/// response gets the security headers. Tokens are in paths: `no-store`
/// keeps pages out of shared caches and `no-referrer` keeps the path out of
/// other sites' logs.
async fn finish(State(web): State<WebState>, req: Request, next: Next) -> Response {
    let lang = language(req.headers(), &web.config);
    let is_api = req.uri().path().starts_with("/api/");
    let mut res = next.run(req).await;
    let status = res.status();
    let content_type = |prefix: &[u8]| {
        res.headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(prefix))
    };
    let is_html = content_type(b"text/html");
    let is_json = content_type(b"application/json");
    let failed = status.is_client_error() || status.is_server_error();
    if failed && is_api && !is_json {
        let kept = kept_headers(&res);
        res = api::error_response(status);
        res.headers_mut().extend(kept);
    } else if failed && !is_html && !is_json {
        let text = if status.is_server_error() {
            error::ErrorText::Server
        } else {
            error::ErrorText::Request
        };
        let words = html::Words {
            texts: &web.config.texts,
            lang,
            controller: &web.config.http.controller,
            address: None,
        };
        let kept = kept_headers(&res);
        res = html_page(status, lang, html::error(words, text));
        res.headers_mut().extend(kept);
    }
    // Read again: an error may have become a page above.
    let is_page = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    let headers = res.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if is_page && web.config.http.controller.logo.is_some() {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP_WITH_LOGO),
        );
    }
    res
}

/// Headers of a bare error kept when [`finish`] turns it into a page:
/// `Allow` (`405`) and `Retry-After` (`429`).
fn kept_headers(res: &Response) -> HeaderMap {
    let mut kept = HeaderMap::new();
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(v) = res.headers().get(&name) {
            kept.insert(name, v.clone());
        }
    }
    kept
}
