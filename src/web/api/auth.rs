//! The bearer check of every `/api/v1` route: the token's SHA-256 against
//! the operators' digests (`[[http.operator]]` and the legacy
//! `[http] admin_token_sha256`), in constant time, by
//! [`crate::config::HttpConfig::operator_by_token`]; then what the
//! operator's role allows ([`needs`]). The operator found goes into the
//! request's extensions, for the handlers to name as the actor of what
//! they change. A refusal of the token never says whether the header was
//! missing, malformed or wrong; a refusal by role (`403`) says which
//! roles may.

use axum::extract::{Request, State};
use axum::http::Method;
use axum::http::header::{self, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;
use crate::config::{Operator, Role};
use crate::store::{Actor, Via};
use crate::web::WebState;

pub(super) async fn authorize(
    State(web): State<WebState>,
    mut req: Request,
    next: Next,
) -> Response {
    let operator = bearer(req.headers())
        .and_then(|t| web.config.http.operator_by_token(t))
        .cloned();
    let Some(operator) = operator else {
        return ApiError::Unauthorized.into_response();
    };
    if let Err(refused) = needs(req.method(), req.uri().path()).allows(operator.role) {
        tracing::info!(operator = %operator.name, role = %operator.role, method = %req.method(), path = req.uri().path(), "api: refused by role");
        return refused.into_response();
    }
    req.extensions_mut().insert(operator);
    next.run(req).await
}

/// The actor of an API change: the bearer token's operator.
pub(super) fn actor(operator: &Operator) -> Actor {
    Actor::new(&operator.name, Via::Api)
}

/// What a request needs of the operator's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// A read (`GET`, `HEAD`): every role.
    Read,
    /// A change about people (consent, erasure, suppressions): admin, dpo.
    People,
    /// Any other change (feedback reports, and a change route not listed
    /// in [`needs`]): admin only, so a new route is closed until it is
    /// placed.
    Queue,
}

impl Need {
    fn allows(self, role: Role) -> Result<(), ApiError> {
        let (ok, what, needs) = match self {
            Need::Read => return Ok(()),
            Need::People => (
                role.may_change_people(),
                "change consent, erase or remove suppressions",
                "admin or dpo",
            ),
            Need::Queue => (
                role.may_run_queue(),
                "submit reports or act on the queue and campaigns",
                "admin",
            ),
        };
        if ok {
            Ok(())
        } else {
            Err(ApiError::Forbidden { role, what, needs })
        }
    }
}

/// The role a request needs, by its method and route.
fn needs(method: &Method, path: &str) -> Need {
    if method == Method::GET || method == Method::HEAD {
        return Need::Read;
    }
    let people = path == "/api/v1/consent"
        || path.starts_with("/api/v1/subjects/")
        || path.starts_with("/api/v1/suppressions/");
    if people { Need::People } else { Need::Queue }
}

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive).
fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let space = value.iter().position(|b| *b == b' ')?;
    let (scheme, token) = value.split_at(space);
    let token = token.trim_ascii();
    (scheme.eq_ignore_ascii_case(b"bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn bearer_tokens() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer abc"),
        );
        assert_eq!(bearer(&h), Some(&b"abc"[..]));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer(&h), None);
    }

    #[test]
    fn roles_are_checked_by_method_and_route() {
        let get = |p| needs(&Method::GET, p);
        assert_eq!(get("/api/v1/subjects/a@example.net"), Need::Read);
        assert_eq!(needs(&Method::HEAD, "/api/v1/feedback"), Need::Read);
        assert_eq!(needs(&Method::POST, "/api/v1/consent"), Need::People);
        assert_eq!(
            needs(&Method::DELETE, "/api/v1/subjects/a@example.net"),
            Need::People
        );
        assert_eq!(
            needs(&Method::DELETE, "/api/v1/suppressions/a@example.net"),
            Need::People
        );
        assert_eq!(needs(&Method::POST, "/api/v1/feedback"), Need::Queue);
        assert_eq!(needs(&Method::POST, "/api/v1/anything-new"), Need::Queue);
        assert!(Need::People.allows(Role::Dpo).is_ok());
        assert!(Need::People.allows(Role::Viewer).is_err());
        assert!(Need::Queue.allows(Role::Dpo).is_err());
        assert!(Need::Queue.allows(Role::Admin).is_ok());
        assert!(Need::Read.allows(Role::Viewer).is_ok());
    }
}
