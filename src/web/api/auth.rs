//! The bearer check of every `/api/v1` route: the token's SHA-256 against
//! the operators' digests (`[[http.operator]]` and the legacy
//! `[http] admin_token_sha256`), in constant time, by
//! [`crate::config::HttpConfig::operator_by_token`]. The operator found
//! goes into the request's extensions, for the handlers to name as the
//! actor of what they change. A refusal never says whether the header was
//! missing, malformed or wrong.

use axum::extract::{Request, State};
use axum::http::header::{self, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;
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
    req.extensions_mut().insert(operator);
    next.run(req).await
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
}
