//! Where a state-changing page `POST` comes from: a form of our own pages,
//! or another site's page making the visitor's browser post (which would
//! record a change with the visitor's IP address as its proof).
//!
//! The rule, as browsers give it today: `Sec-Fetch-Site: same-origin` or
//! `none` (typed, bookmarked) is ours, any other value is not; without it,
//! an `Origin` equal to `[http] public_url`'s origin is ours, any other
//! (`null` included) is not. A request with neither header is not from a
//! browser page (every current browser sends `Origin` on a cross-site
//! `POST`): a client holding the link may post it from anywhere, so it is
//! served. RFC 8058 one-click posts come from mail providers' servers with
//! no such header, and are served whatever they carry (a withdrawal is never
//! refused for where it came from).

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use std::convert::Infallible;

use super::WebState;
use super::error::WebError;

/// What the request's headers say of its origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Site {
    /// From our own pages (or typed by the visitor).
    Same,
    /// From another site's page: what the headers said.
    Cross(String),
    /// Neither header: not a browser page.
    Unknown,
}

impl Site {
    /// What `headers` say, with `ours` the origin of `public_url`.
    pub(crate) fn of(headers: &HeaderMap, ours: &url::Origin) -> Site {
        let text = |name: &str| {
            headers.get(name).map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .trim()
                    .to_ascii_lowercase()
            })
        };
        if let Some(fetch) = text("sec-fetch-site") {
            return match fetch.as_str() {
                "same-origin" | "none" => Site::Same,
                _ => Site::Cross(format!("Sec-Fetch-Site: {fetch}")),
            };
        }
        match text("origin") {
            None => Site::Unknown,
            Some(origin) => match url::Url::parse(&origin) {
                Ok(u) if u.origin() == *ours => Site::Same,
                _ => Site::Cross(format!("Origin: {origin}")),
            },
        }
    }

    /// `Err` when another site's page sent the request.
    pub(crate) fn check(&self) -> Result<(), WebError> {
        match self {
            Site::Cross(said) => Err(WebError::CrossSite(said.clone())),
            Site::Same | Site::Unknown => Ok(()),
        }
    }
}

impl FromRequestParts<WebState> for Site {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Site, Infallible> {
        Ok(Site::of(
            &parts.headers,
            &state.config.http.public_url.origin(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn site(headers: &[(&'static str, &'static str)]) -> Site {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, HeaderValue::from_static(value));
        }
        let ours = url::Url::parse("https://relay.example.com/links").expect("url");
        Site::of(&map, &ours.origin())
    }

    #[test]
    fn our_origin_and_fetch_metadata_are_ours_anything_else_is_cross_site() {
        assert_eq!(site(&[("origin", "https://relay.example.com")]), Site::Same);
        assert_eq!(
            site(&[("origin", "https://RELAY.example.com:443")]),
            Site::Same
        );
        assert_eq!(site(&[("sec-fetch-site", "same-origin")]), Site::Same);
        assert_eq!(site(&[("sec-fetch-site", "none")]), Site::Same);
        assert_eq!(site(&[]), Site::Unknown);
        for cross in [
            site(&[("origin", "https://evil.example")]),
            site(&[("origin", "http://relay.example.com")]),
            site(&[("origin", "https://relay.example.com:8443")]),
            site(&[("origin", "null")]),
            site(&[("sec-fetch-site", "cross-site")]),
            site(&[("sec-fetch-site", "same-site")]),
            // Fetch metadata wins over an Origin that looks right.
            site(&[
                ("sec-fetch-site", "cross-site"),
                ("origin", "https://relay.example.com"),
            ]),
        ] {
            assert!(matches!(cross, Site::Cross(_)), "{cross:?}");
            assert!(cross.check().is_err());
        }
    }
}
