//! The fields of a POSTed form, from either encoding RFC 8058 allows for
//! one-click unsubscription: `application/x-www-form-urlencoded` (what the
//! pages send) or `multipart/form-data`.

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;

use super::error::WebError;

/// More fields than any page sends; a body of nothing but separators stops here.
const MAX_FIELDS: usize = 200;

/// The name/value pairs of a form, in order.
#[derive(Debug, Default)]
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    /// Whether a field `name` was sent (with any value).
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n == name)
    }

    /// Whether `name=value` was sent.
    pub fn has_pair(&self, name: &str, value: &str) -> bool {
        self.0.iter().any(|(n, v)| n == name && v == value)
    }

    /// Every value of `name`.
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl<S: Send + Sync> FromRequest<S> for Fields {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &S) -> Result<Self, WebError> {
        let multipart = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("multipart/form-data")
            });
        let too_large = |status: StatusCode| {
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                WebError::TooLarge
            } else {
                WebError::BadForm("unreadable body")
            }
        };
        let mut fields = Vec::new();
        if multipart {
            let mut parts = Multipart::from_request(req, state)
                .await
                .map_err(|e| too_large(e.status()))?;
            while let Some(field) = parts
                .next_field()
                .await
                .map_err(|e| too_large(e.status()))?
            {
                if fields.len() == MAX_FIELDS {
                    return Err(WebError::BadForm("too many fields"));
                }
                let name = field.name().unwrap_or_default().to_owned();
                let value = field.text().await.map_err(|e| too_large(e.status()))?;
                fields.push((name, value));
            }
        } else {
            // Any other type (or none) is read as urlencoded: a mail client
            // that forgets the header still unsubscribes.
            let body = Bytes::from_request(req, state)
                .await
                .map_err(|e| too_large(e.status()))?;
            for (name, value) in url::form_urlencoded::parse(&body) {
                if fields.len() == MAX_FIELDS {
                    return Err(WebError::BadForm("too many fields"));
                }
                fields.push((name.into_owned(), value.into_owned()));
            }
        }
        Ok(Fields(fields))
    }
}
