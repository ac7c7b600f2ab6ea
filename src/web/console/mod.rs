//! The console (`/admin`): the data-protection officer's and the mail
//! admin's view of the relay in the browser. Server-rendered HTML, no
//! external assets, works without JavaScript, in French and English;
//! `GET` shows, `POST` changes, every change through the same store
//! functions as the CLI and the API, with the operator as its actor.
//!
//! Owns the routes, the signed-in operator ([`Desk`]: the session, the
//! role and the CSRF token), the page shell and the views (one file each).
//! Sign-in and sessions are [`session`]'s; what the store holds and how
//! it changes is `store`'s; the charts are [`chart`]'s.

mod audit;
mod campaigns;
mod chart;
mod layout;
mod message;
mod overview;
mod parts;
mod person;
mod queue;
mod register;
pub(crate) mod session;
mod suppressions;
mod table;

use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::header::{self, HeaderValue};
use axum::http::request::Parts;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use std::net::IpAddr;

use super::form::Fields;
use super::origin::Site;
use super::{Visitor, WebState};
use crate::config::{HttpConfig, Role};
use crate::store::{Actor, AuditAction, AuditEntry, Via};
use crate::texts::Language;
use layout::{Nav, Page};
use session::Cookie;

/// The console's routes.
pub(crate) fn router() -> Router<WebState> {
    Router::new()
        .route("/admin", get(overview::show))
        .route("/admin/", get(overview::show))
        .route("/admin/sign-in", post(sign_in))
        .route("/admin/sign-out", post(sign_out))
        .route("/admin/register", get(register::show))
        .route("/admin/message", get(message::show))
        .route("/admin/person", get(person::show))
        .route("/admin/person/consent", post(person::record_consent))
        .route("/admin/person/export", post(person::export))
        .route("/admin/person/erase", post(person::erase))
        .route(
            "/admin/person/suppression",
            post(person::remove_suppression),
        )
        .route("/admin/campaigns", get(campaigns::show))
        .route("/admin/campaigns/{action}", post(campaigns::act))
        .route("/admin/queue", get(queue::show))
        .route("/admin/queue/{action}", post(queue::act))
        .route("/admin/suppressions", get(suppressions::show))
        .route("/admin/suppressions/remove", post(suppressions::remove))
        .route("/admin/audit", get(audit::show))
}

/// The path the relay is served under (`public_url`'s, without the
/// trailing slash): links and the cookie's path start with it.
pub(crate) fn base_path(http: &HttpConfig) -> String {
    http.public_url.path().trim_end_matches('/').to_owned()
}

/// The signed-in operator, for one request.
pub(crate) struct Desk {
    pub operator: String,
    pub role: Role,
    pub csrf: String,
    pub lang: Language,
    /// `public_url`'s path: every link of the console starts with it.
    pub base: String,
    /// The TCP peer, when known.
    pub ip: Option<IpAddr>,
    id_hash: String,
}

impl Desk {
    /// Who the changes of this request are recorded as.
    pub fn actor(&self) -> Actor {
        Actor::new(self.operator.clone(), Via::Console)
    }

    /// A link to `path` (which starts with `/admin`).
    pub fn href(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The hidden field every form of the session carries.
    pub fn csrf_field(&self) -> String {
        format!(
            "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
            super::html::escape(&self.csrf)
        )
    }

    /// Refuses a form that does not carry this session's CSRF token, or
    /// that another site's page posted.
    pub fn check_form(&self, fields: &Fields, site: &Site) -> Result<(), Refusal> {
        if site.check().is_err() {
            return Err(Refusal::Forged);
        }
        let sent = fields.values("csrf").next().unwrap_or_default();
        if !session::same_secret(sent, &self.csrf) {
            return Err(Refusal::Forged);
        }
        Ok(())
    }

    /// Refuses what the operator's role may not do.
    pub fn require(&self, allowed: bool) -> Result<(), Refusal> {
        if allowed { Ok(()) } else { Err(Refusal::Role) }
    }

    /// English or French, as the operator's browser asks.
    pub fn t(&self, en: &'static str, fr: &'static str) -> &'static str {
        tr(self.lang, en, fr)
    }
}

/// `text` percent-encoded for a query string's value.
pub(crate) fn url_escape(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// One text in the visitor's language.
pub(crate) fn tr(lang: Language, en: &'static str, fr: &'static str) -> &'static str {
    match lang {
        Language::En => en,
        Language::Fr => fr,
    }
}

/// Why the console refused a request made with a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No CSRF token, a wrong one, or a cross-site post.
    Forged,
    /// The role does not allow it.
    Role,
}

impl Refusal {
    pub fn page(self, web: &WebState, desk: &Desk) -> Response {
        let (status, text) = match self {
            Refusal::Forged => (
                StatusCode::FORBIDDEN,
                desk.t(
                    "This form has expired or did not come from this console. Nothing was changed: open the page again and resend it.",
                    "Ce formulaire a expiré ou ne vient pas de cette console. Rien n'a été modifié : rouvrez la page et renvoyez-le.",
                ),
            ),
            Refusal::Role => (
                StatusCode::FORBIDDEN,
                desk.t(
                    "Your role does not allow this. Nothing was changed.",
                    "Votre rôle ne le permet pas. Rien n'a été modifié.",
                ),
            ),
        };
        tracing::info!(operator = %desk.operator, refusal = ?self, "console: request refused");
        Page::new(desk.t("Refused", "Refusé"), Nav::None)
            .status(status)
            .body(format!(
                "<p class=\"problem\" role=\"alert\">{}</p>",
                super::html::escape(text)
            ))
            .render(web, desk)
    }
}

impl FromRequestParts<WebState> for Desk {
    /// Without a live session: the sign-in form.
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, web: &WebState) -> Result<Desk, Response> {
        let lang = super::language(&parts.headers, &web.config);
        let cookie = Cookie::of(&web.config.http);
        let next = next_of(&parts.uri);
        let Some(id) = cookie.read(&parts.headers) else {
            return Err(layout::sign_in_page(web, lang, &next, None));
        };
        let id_hash = session::id_hash(id);
        let session = match web.store.session(&id_hash, session::RULES).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(cause = %e, "console: cannot read the session");
                return Err(layout::unavailable(web, lang));
            }
        };
        // The role is the configuration's now: a removed operator's
        // session signs in nobody.
        let found = session.and_then(|s| {
            web.config
                .http
                .operators
                .iter()
                .find(|o| o.name == s.operator)
                .map(|o| (s, o.role))
        });
        let Some((session, role)) = found else {
            let mut res = layout::sign_in_page(web, lang, &next, None);
            if let Ok(v) = HeaderValue::from_str(&cookie.clear()) {
                res.headers_mut().insert(header::SET_COOKIE, v);
            }
            return Err(res);
        };
        let ip = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip().to_canonical());
        Ok(Desk {
            ip,
            operator: session.operator,
            role,
            csrf: session.csrf,
            lang,
            base: base_path(&web.config.http),
            id_hash,
        })
    }
}

/// Where to go after signing in: this console page (path and query),
/// never elsewhere.
fn next_of(uri: &Uri) -> String {
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/admin");
    safe_next(path)
}

/// `next` if it is a console page, else the overview.
fn safe_next(next: &str) -> String {
    let ok = (next == "/admin" || next.starts_with("/admin/") || next.starts_with("/admin?"))
        && !next.contains("//")
        && !next.contains('\\')
        && !next.starts_with("/admin/sign-");
    if ok {
        next.to_owned()
    } else {
        "/admin".to_owned()
    }
}

/// The actor of a refused sign-in: the token named nobody.
const UNKNOWN_OPERATOR: &str = "(unknown token)";

/// Records a sign-in, a refused one or a sign-out, from `ip`; `false`
/// (logged) when the audit trail cannot be written.
async fn audit(web: &WebState, actor: Actor, action: AuditAction, ip: IpAddr) -> bool {
    let entry = AuditEntry {
        actor,
        action,
        subject_id: None,
        target: None,
        detail: Some(format!("from {ip}")),
    };
    match web.store.record_audit(entry).await {
        Ok(_) => true,
        Err(e) => {
            tracing::error!(cause = %e, action = %action, "console: cannot write the audit trail");
            false
        }
    }
}

/// `POST /admin/sign-in`: the operator's token → a session.
async fn sign_in(
    State(web): State<WebState>,
    visitor: Visitor,
    site: Site,
    fields: Result<Fields, super::WebError>,
) -> Response {
    let lang = visitor.lang;
    let fields = fields.unwrap_or_default();
    let next = safe_next(fields.values("next").next().unwrap_or("/admin"));
    // Without a peer address (a router served without ConnectInfo), every
    // such request shares one quota.
    let ip: IpAddr = visitor
        .ip
        .as_deref()
        .and_then(|ip| ip.parse().ok())
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    if site.check().is_err() {
        return layout::sign_in_page(&web, lang, &next, Some(layout::SignInProblem::Forged));
    }
    if !web.sign_in.allow(ip) {
        tracing::warn!(peer = %ip, "console: sign-in rate limit");
        let mut res = layout::sign_in_page(&web, lang, &next, Some(layout::SignInProblem::TooMany));
        *res.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        return res;
    }
    let token = fields.values("token").next().unwrap_or_default().trim();
    let operator = (!token.is_empty())
        .then(|| web.config.http.operator_by_token(token.as_bytes()))
        .flatten();
    let Some(operator) = operator else {
        tracing::warn!(peer = %ip, "console: sign-in refused (unknown token)");
        audit(
            &web,
            Actor::new(UNKNOWN_OPERATOR, Via::Console),
            AuditAction::SignInRefused,
            ip,
        )
        .await;
        let mut res = layout::sign_in_page(&web, lang, &next, Some(layout::SignInProblem::Wrong));
        *res.status_mut() = StatusCode::UNAUTHORIZED;
        return res;
    };
    if !audit(
        &web,
        Actor::new(operator.name.clone(), Via::Console),
        AuditAction::SignIn,
        ip,
    )
    .await
    {
        return layout::unavailable(&web, lang);
    }
    let id = session::random_token();
    if let Err(e) = web
        .store
        .open_session(
            &session::id_hash(&id),
            &operator.name,
            &session::random_token(),
            visitor.ip.clone(),
            visitor.user_agent.clone(),
            session::RULES,
        )
        .await
    {
        tracing::error!(cause = %e, "console: cannot open a session");
        return layout::unavailable(&web, lang);
    }
    tracing::info!(operator = %operator.name, role = %operator.role, peer = %ip, "console: signed in");
    let cookie = Cookie::of(&web.config.http);
    let mut res = Redirect::to(&format!("{}{next}", base_path(&web.config.http))).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie.set(&id)) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

/// `POST /admin/sign-out`: ends the session (CSRF-checked: another site
/// cannot sign the operator out either).
async fn sign_out(
    State(web): State<WebState>,
    desk: Desk,
    site: Site,
    fields: Result<Fields, super::WebError>,
) -> Response {
    let fields = fields.unwrap_or_default();
    if let Err(refusal) = desk.check_form(&fields, &site) {
        return refusal.page(&web, &desk);
    }
    if let Err(e) = web.store.close_session(&desk.id_hash).await {
        tracing::error!(cause = %e, "console: cannot close a session");
        return layout::unavailable(&web, desk.lang);
    }
    tracing::info!(operator = %desk.operator, "console: signed out");
    let ip = desk
        .ip
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    audit(&web, desk.actor(), AuditAction::SignOut, ip).await;
    let cookie = Cookie::of(&web.config.http);
    let mut res = Redirect::to(&desk.href("/admin")).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie.clear()) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn after_sign_in_only_console_pages() {
        assert_eq!(
            safe_next("/admin/person?address=a%40b"),
            "/admin/person?address=a%40b"
        );
        assert_eq!(safe_next("/admin?x=1"), "/admin?x=1");
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "/adminx",
            "/admin//evil",
            "/admin/\\evil",
            "/u/x",
            "/admin/sign-in",
            "",
        ] {
            assert_eq!(safe_next(bad), "/admin", "{bad}");
        }
    }
}
