//! The console over real HTTP: a relay with operators of each role, and an
//! operator's browser-like client (its session cookie kept by hand, the
//! CSRF token read from the pages it is shown).

use std::path::Path;
use std::time::Duration;

use consent_relay::store::{AuditAction, AuditFilter, AuditRow};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, COOKIE, HeaderMap, LOCATION, SET_COOKIE};

use super::admin::sha256_hex;
use super::relay::{TestRelay, config_text};
use super::sink::Sink;

/// The operators' tokens: names and roles as in [`console_config`].
pub const ADMIN: (&str, &str) = ("alice", "token-of-alice-the-admin");
pub const DPO: (&str, &str) = ("dora", "token-of-dora-the-dpo");
pub const VIEWER: (&str, &str) = ("victor", "token-of-victor-the-viewer");

/// The usual test config with three operators, one of each role.
pub fn console_config(dir: &Path, upstream: &str) -> String {
    let operators = format!(
        "\n[[http.operator]]\nname = \"{}\"\ntoken_sha256 = \"{}\"\nrole = \"admin\"\n\
         \n[[http.operator]]\nname = \"{}\"\ntoken_sha256 = \"{}\"\nrole = \"dpo\"\n\
         \n[[http.operator]]\nname = \"{}\"\ntoken_sha256 = \"{}\"\nrole = \"viewer\"\n",
        ADMIN.0,
        sha256_hex(ADMIN.1),
        DPO.0,
        sha256_hex(DPO.1),
        VIEWER.0,
        sha256_hex(VIEWER.1),
    );
    // After [http]'s own keys: the operator tables must follow them.
    let text = config_text(dir, upstream, "", "");
    let anchor = "\n[signing]";
    assert!(text.contains(anchor), "config_text changed");
    text.replacen(anchor, &format!("{operators}{anchor}"), 1)
}

/// A relay with the three operators, sending to `sink`.
pub async fn start(sink: &Sink) -> TestRelay {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = console_config(dir.path(), &format!("smtp://{}", sink.addr()));
    TestRelay::start_with(dir, &text).await
}

/// [`start`] with the config text as `edit` makes it (another retry
/// schedule, `[bounces]`, …).
pub async fn start_edited(sink: &Sink, edit: impl FnOnce(String) -> String) -> TestRelay {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = edit(console_config(
        dir.path(),
        &format!("smtp://{}", sink.addr()),
    ));
    TestRelay::start_with(dir, &text).await
}

/// A config whose deferred copies wait an hour: they stay deferred for
/// the test to see, until someone retries them.
pub fn slow_retries(text: String) -> String {
    let (from, to) = ("retry_after = [\"1s\"]", "retry_after = [\"1h\"]");
    assert!(text.contains(from), "config_text changed");
    text.replacen(from, to, 1)
}

/// The audit rows of `action`, newest first.
pub async fn audit_of(relay: &TestRelay, action: AuditAction) -> Vec<AuditRow> {
    relay
        .store()
        .audit(&AuditFilter {
            action: Some(action),
            limit: 1000,
            ..Default::default()
        })
        .await
        .expect("audit rows")
}

/// A page as the console answered it.
pub struct Shown {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Shown {
    /// Where a `303` sends the browser.
    pub fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// Whether this is the sign-in form.
    pub fn is_sign_in(&self) -> bool {
        self.body.contains("name=\"token\"") && self.body.contains("/admin/sign-in")
    }

    /// The CSRF token of the page's forms.
    pub fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .unwrap_or_else(|| panic!("no CSRF field in: {}", self.body));
        let rest = &self.body[at + "name=\"csrf\" value=\"".len()..];
        rest[..rest.find('"').expect("end of value")].to_owned()
    }
}

/// An operator's client: a session cookie once signed in.
pub struct Operator {
    base: String,
    http: reqwest::Client,
    cookie: Option<String>,
    lang: &'static str,
}

impl Operator {
    /// A client for the relay's console, not signed in.
    pub fn new(relay: &TestRelay) -> Operator {
        Operator {
            base: relay.url(""),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(20))
                .build()
                .expect("http client"),
            cookie: None,
            lang: "en",
        }
    }

    pub fn french(mut self) -> Operator {
        self.lang = "fr";
        self
    }

    /// Signs in with `token`; panics unless the console took it.
    pub async fn signed_in(relay: &TestRelay, token: &str) -> Operator {
        let mut op = Operator::new(relay);
        let res = op.sign_in(token).await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
        assert!(op.cookie.is_some(), "no session cookie");
        op
    }

    /// Posts the sign-in form; keeps the cookie it sets.
    pub async fn sign_in(&mut self, token: &str) -> Shown {
        let body = format!("token={}&next=%2Fadmin", urlencode(token));
        self.send(
            self.http
                .post(self.url("/admin/sign-in"))
                .body(body)
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded"),
        )
        .await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base.trim_end_matches('/'), path)
    }

    pub fn cookie(&self) -> Option<&str> {
        self.cookie.as_deref()
    }

    pub fn set_cookie(&mut self, cookie: Option<String>) {
        self.cookie = cookie;
    }

    pub async fn get(&mut self, path: &str) -> Shown {
        self.send(self.http.get(self.url(path))).await
    }

    /// Posts `fields` (name, value) to `path`, as a form.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Shown {
        let body: String = fields
            .iter()
            .map(|(n, v)| format!("{}={}", urlencode(n), urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        self.send(
            self.http
                .post(self.url(path))
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(body),
        )
        .await
    }

    /// Posts `fields` with the CSRF token of the page at `form_page`.
    pub async fn submit(&mut self, form_page: &str, path: &str, fields: &[(&str, &str)]) -> Shown {
        let csrf = self.get(form_page).await.csrf();
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post(path, &all).await
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Shown {
        let mut req = req.header("Accept-Language", self.lang);
        if let Some(c) = &self.cookie {
            req = req.header(COOKIE, c.clone());
        }
        let res = req.send().await.expect("console request");
        for v in res.headers().get_all(SET_COOKIE) {
            let v = v.to_str().expect("cookie text");
            let pair = v.split(';').next().unwrap_or_default().trim();
            if v.contains("Max-Age=0") {
                self.cookie = None;
            } else {
                self.cookie = Some(pair.to_owned());
            }
        }
        Shown {
            status: res.status(),
            headers: res.headers().clone(),
            body: res.text().await.expect("body"),
        }
    }
}

/// Percent-encodes a form value.
pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
