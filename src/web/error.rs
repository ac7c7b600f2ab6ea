//! Why a page request failed, and what the visitor is shown: a status and a
//! plain page with a generic text in their language. The details (which
//! check failed, the store's error) go to the log only, and never the token.

use axum::http::StatusCode;

use crate::store::StoreError;
use crate::token::TokenError;

/// Everything a page handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The token in the link was refused (malformed, tampered, wrong purpose,
    /// or signed with a key no longer listed).
    #[error("token refused: {0}")]
    Token(#[from] TokenError),
    /// The path segment is not text (bad percent-encoding).
    #[error("the link's path cannot be read")]
    BadPath,
    /// The token is authentic but its subject is unknown or was erased.
    #[error("the subject is unknown or erased")]
    UnknownSubject,
    /// The token names a campaign the configuration no longer has (or deleted).
    #[error("campaign {campaign:?} is not configured (or deleted)")]
    UnknownCampaign { campaign: String },
    /// An opt-in link must name one campaign.
    #[error("the opt-in token names no campaign")]
    NoCampaign,
    /// The form is not one this page sends (missing field, unreadable body).
    #[error("bad form: {0}")]
    BadForm(&'static str),
    /// The body is over the limit.
    #[error("the request body is too large")]
    TooLarge,
    /// A form posted by another site's page (what its headers said).
    #[error("cross-site form post refused ({0})")]
    CrossSite(String),
    /// No such page.
    #[error("no such page")]
    NotFound,
    /// Signing the preferences link failed (a configuration the loader
    /// should have refused).
    #[error("cannot sign a link: {0}")]
    Signing(TokenError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// Which of the page texts explains an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorText {
    /// The link itself is broken.
    Link,
    /// The link was fine once; what it names is gone.
    Gone,
    /// The request (not the link) is wrong.
    Request,
    /// Our fault.
    Server,
}

impl ErrorText {
    /// The (title, detail) text keys.
    pub(crate) fn keys(self) -> (&'static str, &'static str) {
        match self {
            ErrorText::Link => ("page_error_link_title", "page_error_link_detail"),
            ErrorText::Gone => ("page_error_gone_title", "page_error_gone_detail"),
            ErrorText::Request => ("page_error_request_title", "page_error_request_detail"),
            ErrorText::Server => ("page_error_server_title", "page_error_server_detail"),
        }
    }
}

impl WebError {
    /// `400` for a link that cannot be authentic or is used on the wrong
    /// route, `403` for a form another site posted, `404` for an
    /// authentic-looking link whose key, subject or campaign is gone, `503`
    /// when the store's disk is full, `500` for our other failures.
    pub fn status(&self) -> StatusCode {
        match self {
            WebError::Token(TokenError::UnknownKey { .. })
            | WebError::UnknownSubject
            | WebError::UnknownCampaign { .. }
            | WebError::NoCampaign
            | WebError::NotFound => StatusCode::NOT_FOUND,
            WebError::Token(_) | WebError::BadPath | WebError::BadForm(_) => {
                StatusCode::BAD_REQUEST
            }
            WebError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            WebError::CrossSite(_) => StatusCode::FORBIDDEN,
            WebError::Store(e) if e.is_full() => StatusCode::SERVICE_UNAVAILABLE,
            WebError::Signing(_) | WebError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub(crate) fn text(&self) -> ErrorText {
        match self {
            WebError::Token(TokenError::UnknownKey { .. })
            | WebError::UnknownSubject
            | WebError::UnknownCampaign { .. }
            | WebError::NoCampaign
            | WebError::NotFound => ErrorText::Gone,
            WebError::Token(_) | WebError::BadPath => ErrorText::Link,
            WebError::BadForm(_) | WebError::TooLarge | WebError::CrossSite(_) => {
                ErrorText::Request
            }
            WebError::Signing(_) | WebError::Store(_) => ErrorText::Server,
        }
    }

    /// Logs the details: client errors at debug (anyone can send garbage
    /// links), our failures at error. The message never holds the token
    /// (`TokenError` carries none).
    pub(crate) fn log(&self) {
        if self.status().is_server_error() {
            tracing::error!(cause = %self, "page request failed");
        } else {
            tracing::debug!(cause = %self, status = self.status().as_u16(), "page request refused");
        }
    }
}

/// Only for axum's own use of the type (as an extractor's rejection): the
/// handlers render errors themselves, in the visitor's language. A bare
/// status here gets the generic page from the outer layer.
impl axum::response::IntoResponse for WebError {
    fn into_response(self) -> axum::response::Response {
        self.log();
        self.status().into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::Purpose;

    #[test]
    fn statuses() {
        let cases = [
            (WebError::Token(TokenError::Malformed), 400),
            (WebError::Token(TokenError::BadSignature), 400),
            (
                WebError::Token(TokenError::WrongPurpose {
                    expected: Purpose::Optin,
                    found: Purpose::Preferences,
                }),
                400,
            ),
            (
                WebError::Token(TokenError::UnknownKey {
                    key_id: "k0".into(),
                }),
                404,
            ),
            (WebError::UnknownSubject, 404),
            (
                WebError::UnknownCampaign {
                    campaign: "gone".into(),
                },
                404,
            ),
            (WebError::BadForm("x"), 400),
            (WebError::TooLarge, 413),
            (
                WebError::CrossSite("Origin: https://evil.example".into()),
                403,
            ),
            (WebError::Store(StoreError::Closed), 500),
        ];
        for (e, status) in cases {
            assert_eq!(e.status().as_u16(), status, "{e}");
        }
    }
}
