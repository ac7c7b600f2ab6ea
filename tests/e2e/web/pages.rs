//! End to end: the recipient's pages and RFC 8058 one-click unsubscribe,
//! over real HTTP (reqwest, plain http to 127.0.0.1) against the relay
//! started in-process, with a real SQLite file and a real SMTP sink. What a
//! POST changes is read back from the store, and proved on the next message.

use std::time::{Duration, Instant};

use crate::both_stores;
use crate::common::relay::{CAMPAIGNS, TestRelay, config_text, message};
use crate::common::sink::Sink;
use consent_relay::consent::{Action, Status};
use consent_relay::store::{ConsentEvent, DecisionFilter, StateRow};
use consent_relay::token::Purpose;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap};

pub(super) const UA: &str = "consent-relay-test/1 (web.rs)";
const FORM: &str = "application/x-www-form-urlencoded";

pub(super) struct Page {
    pub(super) status: StatusCode,
    pub(super) headers: HeaderMap,
    pub(super) body: String,
}

pub(super) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(UA)
        // A redirect would be a bug here: make it visible.
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client")
}

pub(super) async fn read(res: reqwest::Response) -> Page {
    Page {
        status: res.status(),
        headers: res.headers().clone(),
        body: res.text().await.expect("body"),
    }
}

pub(super) async fn get(url: &str) -> Page {
    read(client().get(url).send().await.expect("GET")).await
}

pub(super) async fn get_lang(url: &str, accept_language: &str) -> Page {
    let res = client()
        .get(url)
        .header("Accept-Language", accept_language)
        .send()
        .await
        .expect("GET");
    read(res).await
}

pub(super) async fn post(url: &str, content_type: &str, body: &str) -> Page {
    let res = client()
        .post(url)
        .header(CONTENT_TYPE, content_type)
        .body(body.to_owned())
        .send()
        .await
        .expect("POST");
    read(res).await
}

pub(super) async fn post_form(url: &str, body: &str) -> Page {
    post(url, FORM, body).await
}

pub(super) async fn start() -> (Sink, TestRelay) {
    let sink = Sink::start().await;
    let relay = TestRelay::start(sink.addr(), "", "").await;
    (sink, relay)
}

/// A subject for `email` (a first consent event creates it); returns its id.
pub(super) async fn subject(relay: &TestRelay, email: &str, events: &[(&str, Action)]) -> String {
    for (campaign, action) in events {
        relay.consent(email, campaign, *action, None).await;
    }
    if events.is_empty() {
        // A delivered recipient gets a subject: prospecting is opt-out.
        let r = relay.send(&[email], &message("prospecting", "hi")).await;
        assert!(r.contains("(1 delivered, 0 suppressed)"), "{r}");
    }
    relay.subject_id(email).await
}

pub(super) async fn events(relay: &TestRelay, email: &str) -> Vec<ConsentEvent> {
    relay
        .store()
        .subject_consent(email)
        .await
        .expect("store")
        .map(|s| s.events)
        .unwrap_or_default()
}

pub(super) async fn states(relay: &TestRelay, email: &str) -> Vec<(String, Status)> {
    let id = relay.subject_id(email).await;
    let rows: Vec<StateRow> = relay.store().subject_states(&id).await.expect("store");
    rows.into_iter().map(|r| (r.campaign, r.status)).collect()
}

pub(super) async fn last_reason(relay: &TestRelay, email: &str) -> (String, String) {
    let rows = relay
        .store()
        .decisions(&DecisionFilter {
            recipient: Some(email.into()),
            limit: 1000,
            ..Default::default()
        })
        .await
        .expect("decisions");
    let d = rows.last().expect("a decision");
    (d.outcome.to_string(), d.reason.to_string())
}

pub(super) fn texts_version(relay: &TestRelay) -> String {
    relay.config.texts.version().to_owned()
}

/// The `href` of the preferences link on a page.
pub(super) fn preferences_href(body: &str) -> String {
    let start = body.find("href=\"../p/").expect("preferences link") + "href=\"".len();
    let end = start + body[start..].find('"').expect("end of href");
    body[start..end].to_owned()
}

async fn get_never_changes_consent() {
    let (_sink, relay) = start().await;
    let id = subject(&relay, "ann@example.net", &[("newsletter", Action::Grant)]).await;
    let before = (
        events(&relay, "ann@example.net").await.len(),
        states(&relay, "ann@example.net").await,
    );

    let token = relay.token(Purpose::Unsubscribe, &id, Some("newsletter"));
    let url = relay.url(&format!("/u/{token}"));
    // Twice, and HEAD too, as link scanners do.
    for _ in 0..2 {
        let page = get(&url).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(
            page.body.contains("<h1>Unsubscribe from Newsletter?</h1>"),
            "{}",
            page.body
        );
        assert!(page.body.contains("<form method=\"post\">"));
        assert!(page.body.contains("name=\"confirm\""));
        assert!(
            page.body
                .contains("<button type=\"submit\">Unsubscribe</button>")
        );
    }
    let head = client().head(&url).send().await.expect("HEAD");
    assert_eq!(head.status(), StatusCode::OK);

    // The preferences link is a fresh Preferences token for the same subject.
    let page = get(&url).await;
    let href = preferences_href(&page.body);
    let prefs = get(&relay.url(&href[2..])).await;
    assert_eq!(prefs.status, StatusCode::OK);
    assert!(prefs.body.contains("Your email preferences"));
    // The opt-in and preference pages are just as inert.
    get(&relay.url(&href[2..])).await;
    get(&relay.url(&format!(
        "/o/{}",
        relay.token(Purpose::Optin, &id, Some("newsletter"))
    )))
    .await;

    let after = (
        events(&relay, "ann@example.net").await.len(),
        states(&relay, "ann@example.net").await,
    );
    assert_eq!(before, after);
}
both_stores!(get_never_changes_consent);

async fn one_click_withdraws_and_the_next_message_is_suppressed() {
    let (_sink, relay) = start().await;
    let id = subject(&relay, "ann@example.net", &[("newsletter", Action::Grant)]).await;
    let r = relay
        .send(&["ann@example.net"], &message("newsletter", "before"))
        .await;
    assert!(r.contains("(1 delivered, 0 suppressed)"), "{r}");

    let token = relay.token(Purpose::Unsubscribe, &id, Some("newsletter"));
    let page = post_form(
        &relay.url(&format!("/u/{token}")),
        "List-Unsubscribe=One-Click",
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.headers.get("location").is_none());
    assert!(page.headers.get("set-cookie").is_none());
    assert!(
        page.body
            .contains("<h1>You are unsubscribed from Newsletter.</h1>"),
        "{}",
        page.body
    );

    let evs = events(&relay, "ann@example.net").await;
    let last = evs.last().expect("event");
    assert_eq!(
        (
            last.campaign.as_str(),
            last.action.as_str(),
            last.source.as_str()
        ),
        ("newsletter", "withdraw", "one-click")
    );
    assert_eq!(last.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(last.user_agent.as_deref(), Some(UA));
    assert_eq!(last.evidence.as_deref(), Some("one-click rfc8058"));

    let r = relay
        .send(&["ann@example.net"], &message("newsletter", "after"))
        .await;
    assert!(r.contains("(0 delivered, 1 suppressed)"), "{r}");
    assert_eq!(
        last_reason(&relay, "ann@example.net").await,
        ("suppress".into(), "withdrawn".into())
    );
}
both_stores!(one_click_withdraws_and_the_next_message_is_suppressed);

/// The path of the first `PREFIX...` link in `text` (`/u/TOKEN`, `/p/TOKEN`).
fn link_path(text: &str, prefix: &str) -> String {
    let start = text
        .find(prefix)
        .unwrap_or_else(|| panic!("no {prefix} link in {text}"));
    let token: String = text[start + prefix.len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
        .collect();
    format!("{prefix}{token}")
}

async fn the_links_in_a_delivered_copy_work() {
    let (sink, relay) = start().await;
    relay
        .consent("max@example.net", "newsletter", Action::Grant, None)
        .await;
    let r = relay
        .send(
            &["max@example.net"],
            &message("newsletter", "Manage: [[PREFERENCES_URL]]"),
        )
        .await;
    assert!(r.contains("(1 delivered, 0 suppressed)"), "{r}");
    let copy = sink.wait_for(1, Duration::from_secs(10)).await;
    let copy = String::from_utf8_lossy(&copy[0].data).into_owned();
    assert!(copy.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));
    let header = &copy[copy.find("List-Unsubscribe:").expect("List-Unsubscribe")..];
    let unsubscribe = link_path(header, "/u/");
    let preferences = link_path(&copy, "/p/");

    // The mail client's one-click POST, on the link as the copy has it.
    let page = get(&relay.url(&preferences)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("value=\"newsletter\" checked><label"));
    let page = post_form(&relay.url(&unsubscribe), "List-Unsubscribe=One-Click").await;
    assert_eq!(page.status, StatusCode::OK);
    let r = relay
        .send(&["max@example.net"], &message("newsletter", "again"))
        .await;
    assert!(r.contains("(0 delivered, 1 suppressed)"), "{r}");
}
both_stores!(the_links_in_a_delivered_copy_work);

async fn one_click_twice_is_idempotent_in_either_encoding() {
    let (_sink, relay) = start().await;
    let id = subject(&relay, "ann@example.net", &[("newsletter", Action::Grant)]).await;
    let url = relay.url(&format!(
        "/u/{}",
        relay.token(Purpose::Unsubscribe, &id, Some("newsletter"))
    ));
    let first = post_form(&url, "List-Unsubscribe=One-Click").await;
    assert_eq!(first.status, StatusCode::OK);
    // RFC 8058 also allows multipart/form-data.
    let boundary = "----consentrelay7d93";
    let multipart = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--{boundary}--\r\n"
    );
    let second = post(
        &url,
        &format!("multipart/form-data; boundary={boundary}"),
        &multipart,
    )
    .await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(first.body, second.body);

    let withdrawals: Vec<_> = events(&relay, "ann@example.net")
        .await
        .into_iter()
        .filter(|e| e.action == "withdraw")
        .collect();
    assert_eq!(withdrawals.len(), 1, "{withdrawals:?}");
    assert!(
        states(&relay, "ann@example.net")
            .await
            .contains(&("newsletter".into(), Status::Withdrawn))
    );
}
both_stores!(one_click_twice_is_idempotent_in_either_encoding);

async fn the_page_button_records_a_link_withdrawal_with_its_evidence() {
    let (_sink, relay) = start().await;
    let id = subject(&relay, "bob@example.net", &[]).await;
    let url = relay.url(&format!(
        "/u/{}",
        relay.token(Purpose::Unsubscribe, &id, Some("prospecting"))
    ));
    // A POST that is neither one-click nor the button changes nothing.
    let page = post_form(&url, "").await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(events(&relay, "bob@example.net").await.is_empty());

    let page = post_form(&url, "confirm=1").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("You are unsubscribed from Offers."));
    let evs = events(&relay, "bob@example.net").await;
    assert_eq!(evs.len(), 1);
    assert_eq!(
        (evs[0].action.as_str(), evs[0].source.as_str()),
        ("withdraw", "link")
    );
    assert_eq!(
        evs[0].evidence.as_deref(),
        Some(format!("unsubscribe-page en texts:{}", texts_version(&relay)).as_str())
    );
    let r = relay
        .send(&["bob@example.net"], &message("prospecting", "x"))
        .await;
    assert!(r.contains("(0 delivered, 1 suppressed)"), "{r}");
}
both_stores!(the_page_button_records_a_link_withdrawal_with_its_evidence);

async fn unsubscribe_link_without_campaign_withdraws_all() {
    let (_sink, relay) = start().await;
    let id = subject(&relay, "cy@example.net", &[("newsletter", Action::Grant)]).await;
    let url = relay.url(&format!(
        "/u/{}",
        relay.token(Purpose::Unsubscribe, &id, None)
    ));
    let page = get(&url).await;
    assert!(page.body.contains("Unsubscribe from all our messages?"));
    assert!(page.body.contains("such as invoices, are still sent"));

    let page = post_form(&url, "List-Unsubscribe=One-Click").await;
    assert_eq!(page.status, StatusCode::OK);
    let last = events(&relay, "cy@example.net").await.pop().expect("event");
    assert_eq!(
        (last.campaign.as_str(), last.action.as_str()),
        ("*", "withdraw")
    );

    for campaign in ["newsletter", "prospecting"] {
        let r = relay
            .send(&["cy@example.net"], &message(campaign, "x"))
            .await;
        assert!(r.contains("(0 delivered, 1 suppressed)"), "{campaign}: {r}");
        assert_eq!(
            last_reason(&relay, "cy@example.net").await,
            ("suppress".into(), "unsubscribed-all".into())
        );
    }
    let r = relay
        .send(&["cy@example.net"], &message("invoices", "x"))
        .await;
    assert!(r.contains("(1 delivered, 0 suppressed)"), "{r}");

    // A campaign granted since is stopped by unsubscribing from all again.
    relay
        .consent("cy@example.net", "newsletter", Action::Grant, None)
        .await;
    post_form(&url, "List-Unsubscribe=One-Click").await;
    let r = relay
        .send(&["cy@example.net"], &message("newsletter", "x"))
        .await;
    assert!(r.contains("(0 delivered, 1 suppressed)"), "{r}");
}
both_stores!(unsubscribe_link_without_campaign_withdraws_all);

async fn bad_tokens_get_an_error_page_and_change_nothing() {
    let (_sink, relay) = start().await;
    let id = subject(&relay, "dee@example.net", &[("newsletter", Action::Grant)]).await;
    let good = relay.token(Purpose::Unsubscribe, &id, Some("newsletter"));
    let before = events(&relay, "dee@example.net").await.len();

    let (key_id, payload) = good.split_once('.').expect("dot");
    let mut flipped: Vec<char> = payload.chars().collect();
    let mid = flipped.len() / 2;
    flipped[mid] = if flipped[mid] == 'A' { 'B' } else { 'A' };
    let flipped: String = flipped.into_iter().collect();
    let other_subject = consent_relay::consent::subject::new_id();

    let cases: Vec<(String, String, StatusCode)> = vec![
        (
            "flipped".into(),
            format!("/u/{key_id}.{flipped}"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "truncated".into(),
            format!("/u/{}", &good[..good.len() - 3]),
            StatusCode::BAD_REQUEST,
        ),
        (
            "garbage".into(),
            "/u/not-a-token".into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "bad percent-encoding".into(),
            "/u/k1.%FF%FE".into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "unknown key".into(),
            format!("/u/k9.{payload}"),
            StatusCode::NOT_FOUND,
        ),
        (
            "preferences token at /o".into(),
            format!("/o/{}", relay.token(Purpose::Preferences, &id, None)),
            StatusCode::BAD_REQUEST,
        ),
        (
            "unsubscribe token at /p".into(),
            format!("/p/{good}"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "optin token at /u".into(),
            format!(
                "/u/{}",
                relay.token(Purpose::Optin, &id, Some("newsletter"))
            ),
            StatusCode::BAD_REQUEST,
        ),
        (
            "unknown subject".into(),
            format!(
                "/u/{}",
                relay.token(Purpose::Unsubscribe, &other_subject, Some("newsletter"))
            ),
            StatusCode::NOT_FOUND,
        ),
        (
            "campaign not configured".into(),
            format!(
                "/u/{}",
                relay.token(Purpose::Unsubscribe, &id, Some("nope"))
            ),
            StatusCode::NOT_FOUND,
        ),
        (
            "deleted campaign".into(),
            format!("/o/{}", relay.token(Purpose::Optin, &id, Some("gone"))),
            StatusCode::NOT_FOUND,
        ),
        (
            "opt-in token without campaign".into(),
            format!("/o/{}", relay.token(Purpose::Optin, &id, None)),
            StatusCode::NOT_FOUND,
        ),
    ];
    for (what, path, status) in &cases {
        let url = relay.url(path);
        let page = get(&url).await;
        assert_eq!(page.status, *status, "GET {what}");
        assert!(page.body.contains("<html lang=\"en\">"), "{what}");
        assert!(page.body.contains("Nothing was changed."), "{what}");
        // The token never comes back in the page.
        assert!(!page.body.contains(&good), "{what}");
        for body in ["List-Unsubscribe=One-Click", "confirm=1", "save=1&all=1"] {
            let page = post_form(&url, body).await;
            assert_eq!(page.status, *status, "POST {what} {body}");
        }
    }
    assert_eq!(events(&relay, "dee@example.net").await.len(), before);
    let r = relay
        .send(&["dee@example.net"], &message("newsletter", "x"))
        .await;
    assert!(r.contains("(1 delivered, 0 suppressed)"), "{r}");
}
both_stores!(bad_tokens_get_an_error_page_and_change_nothing);

async fn preference_page_shows_the_effective_state() {
    let (_sink, relay) = start().await;
    let id = subject(
        &relay,
        "eve@example.net",
        &[
            ("newsletter", Action::Grant),
            ("prospecting", Action::Withdraw),
        ],
    )
    .await;
    let page = get(&relay.url(&format!(
        "/p/{}",
        relay.token(Purpose::Preferences, &id, None)
    )))
    .await;
    assert_eq!(page.status, StatusCode::OK);
    let b = &page.body;
    assert!(b.contains("<html lang=\"en\">"));
    assert!(b.contains(
        "id=\"c-newsletter\" name=\"c\" value=\"newsletter\" checked><label for=\"c-newsletter\">Newsletter</label>"
    ), "{b}");
    assert!(b.contains(
        "id=\"c-prospecting\" name=\"c\" value=\"prospecting\"><label for=\"c-prospecting\">Offers</label>"
    ), "{b}");
    assert!(b.contains("id=\"c-invoices\" checked disabled"), "{b}");
    assert!(b.contains("Always sent: needed for your account or contract."));
    assert!(b.contains("id=\"all\" name=\"all\" value=\"1\" aria-describedby"));
    assert!(!b.contains("id=\"all\" name=\"all\" value=\"1\" checked"));
    // Only active campaigns, in order; every checkbox has its label.
    assert!(!b.contains("c-old") && !b.contains("c-gone"));
    let pos = |s: &str| b.find(s).unwrap_or_else(|| panic!("{s}"));
    assert!(pos("c-newsletter") < pos("c-prospecting") && pos("c-prospecting") < pos("c-invoices"));
    assert_eq!(
        b.matches("type=\"checkbox\"").count(),
        b.matches("<label for=").count()
    );
    assert!(b.contains("<fieldset>") && b.contains("<legend>"));
    assert!(b.contains("<meta name=\"viewport\""));
    assert!(!b.contains("<script") && !b.contains("src=") && !b.contains("<link"));
}
both_stores!(preference_page_shows_the_effective_state);

async fn saving_preferences_records_one_event_per_change_with_its_proof() {
    let (_sink, relay) = start().await;
    let id = subject(&relay, "fay@example.net", &[("newsletter", Action::Grant)]).await;
    let url = relay.url(&format!(
        "/p/{}",
        relay.token(Purpose::Preferences, &id, None)
    ));
    let before = events(&relay, "fay@example.net").await.len();

    // As shown: newsletter ticked, prospecting ticked. Untick prospecting.
    // A forged tick for the mandatory campaign and an unknown id are ignored.
    let long_ua = "x".repeat(600);
    let res = client()
        .post(&url)
        .header("User-Agent", &long_ua)
        .form(&[
            ("save", "1"),
            ("c", "newsletter"),
            ("c", "unknown"),
            ("c", "old"),
        ])
        .send()
        .await
        .expect("POST");
    let page = read(res).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.headers.get("location").is_none());
    assert!(
        page.body.contains("role=\"status\">Saved."),
        "{}",
        page.body
    );
    assert!(page.body.contains("value=\"prospecting\"><label"));
    assert!(page.body.contains("value=\"newsletter\" checked><label"));

    let evs = events(&relay, "fay@example.net").await;
    assert_eq!(evs.len(), before + 1, "{evs:?}");
    let e = evs.last().expect("event");
    assert_eq!(
        (e.campaign.as_str(), e.action.as_str(), e.source.as_str()),
        ("prospecting", "withdraw", "preference-page")
    );
    assert_eq!(e.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(e.user_agent.as_deref(), Some(&long_ua[..512]));
    assert_eq!(
        e.evidence.as_deref(),
        Some(format!("preference-page en texts:{}", texts_version(&relay)).as_str())
    );

    // Saving the same choices again changes nothing.
    let page = post_form(&url, "save=1&c=newsletter").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(events(&relay, "fay@example.net").await.len(), before + 1);
    // A POST without the page's `save` field is not "untick everything".
    let page = post_form(&url, "").await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert_eq!(events(&relay, "fay@example.net").await.len(), before + 1);

    let r = relay
        .send(&["fay@example.net"], &message("prospecting", "x"))
        .await;
    assert!(r.contains("(0 delivered, 1 suppressed)"), "{r}");
    let r = relay
        .send(&["fay@example.net"], &message("newsletter", "x"))
        .await;
    assert!(r.contains("(1 delivered, 0 suppressed)"), "{r}");
}
both_stores!(saving_preferences_records_one_event_per_change_with_its_proof);

async fn unsubscribe_from_all_on_the_preference_page_and_back() {
    let (_sink, relay) = start().await;
    let id = subject(&relay, "gus@example.net", &[("newsletter", Action::Grant)]).await;
    let url = relay.url(&format!(
        "/p/{}",
        relay.token(Purpose::Preferences, &id, None)
    ));
    let before = events(&relay, "gus@example.net").await.len();

    // "All" wins over the campaign boxes left ticked: one `*` withdrawal.
    let page = post_form(&url, "save=1&all=1&c=newsletter&c=prospecting").await;
    assert_eq!(page.status, StatusCode::OK);
    let evs = events(&relay, "gus@example.net").await;
    assert_eq!(evs.len(), before + 1);
    let e = evs.last().expect("event");
    assert_eq!(
        (e.campaign.as_str(), e.action.as_str(), e.source.as_str()),
        ("*", "withdraw", "preference-page")
    );
    // The page shows the effective state: nothing but the mandatory one.
    let b = &page.body;
    assert!(
        b.contains("id=\"all\" name=\"all\" value=\"1\" checked"),
        "{b}"
    );
    assert!(b.contains("value=\"newsletter\"><label"), "{b}");
    assert!(b.contains("value=\"prospecting\"><label"), "{b}");
    assert!(b.contains("id=\"c-invoices\" checked disabled"));
    for campaign in ["newsletter", "prospecting"] {
        let r = relay
            .send(&["gus@example.net"], &message(campaign, "x"))
            .await;
        assert!(r.contains("(0 delivered, 1 suppressed)"), "{r}");
        assert_eq!(
            last_reason(&relay, "gus@example.net").await,
            ("suppress".into(), "unsubscribed-all".into())
        );
    }

    // Unticked again with both campaigns ticked: one `*` grant brings back
    // the older newsletter grant and the opt-out default.
    let page = post_form(&url, "save=1&c=newsletter&c=prospecting").await;
    assert_eq!(page.status, StatusCode::OK);
    let evs = events(&relay, "gus@example.net").await;
    assert_eq!(evs.len(), before + 2);
    let e = evs.last().expect("event");
    assert_eq!((e.campaign.as_str(), e.action.as_str()), ("*", "grant"));
    assert!(page.body.contains("value=\"newsletter\" checked><label"));
    assert!(page.body.contains("value=\"prospecting\" checked><label"));
    let r = relay
        .send(&["gus@example.net"], &message("newsletter", "x"))
        .await;
    assert!(r.contains("(1 delivered, 0 suppressed)"), "{r}");
}
both_stores!(unsubscribe_from_all_on_the_preference_page_and_back);

async fn optin_confirms_a_pending_request_and_grants_otherwise() {
    let (_sink, relay) = start().await;
    let pending = subject(
        &relay,
        "hal@example.net",
        &[("newsletter", Action::Request)],
    )
    .await;
    let fresh = subject(&relay, "ida@example.net", &[]).await;

    let url = relay.url(&format!(
        "/o/{}",
        relay.token(Purpose::Optin, &pending, Some("newsletter"))
    ));
    let page = get(&url).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains("<h1>Confirm that you want to receive Newsletter</h1>"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("<button type=\"submit\">Confirm</button>")
    );
    assert_eq!(
        states(&relay, "hal@example.net").await,
        [("newsletter".to_owned(), Status::Pending)]
    );

    let page = post_form(&url, "confirm=1").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains("Thank you: you will receive Newsletter.")
    );
    let e = events(&relay, "hal@example.net")
        .await
        .pop()
        .expect("event");
    assert_eq!(
        (e.campaign.as_str(), e.action.as_str(), e.source.as_str()),
        ("newsletter", "confirm", "link")
    );
    assert_eq!(
        e.evidence.as_deref(),
        Some(format!("optin-page en texts:{}", texts_version(&relay)).as_str())
    );
    assert_eq!(e.ip.as_deref(), Some("127.0.0.1"));

    let url = relay.url(&format!(
        "/o/{}",
        relay.token(Purpose::Optin, &fresh, Some("newsletter"))
    ));
    post_form(&url, "confirm=1").await;
    let e = events(&relay, "ida@example.net")
        .await
        .pop()
        .expect("event");
    assert_eq!((e.action.as_str(), e.source.as_str()), ("grant", "link"));
    for who in ["hal@example.net", "ida@example.net"] {
        let r = relay.send(&[who], &message("newsletter", "x")).await;
        assert!(r.contains("(1 delivered, 0 suppressed)"), "{who}: {r}");
    }

    // A mandatory campaign needs no consent: the page says so, nothing is recorded.
    let n = events(&relay, "ida@example.net").await.len();
    let url = relay.url(&format!(
        "/o/{}",
        relay.token(Purpose::Optin, &fresh, Some("invoices"))
    ));
    let page = post_form(&url, "confirm=1").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("these messages are always sent"));
    assert_eq!(events(&relay, "ida@example.net").await.len(), n);
}
both_stores!(optin_confirms_a_pending_request_and_grants_otherwise);

async fn language_follows_accept_language() {
    let (_sink, relay) = start().await;
    let id = subject(&relay, "jo@example.net", &[]).await;
    let url = relay.url(&format!(
        "/p/{}",
        relay.token(Purpose::Preferences, &id, None)
    ));

    let fr = get_lang(&url, "fr-FR,fr;q=0.9").await;
    assert!(fr.body.contains("<html lang=\"fr\">"));
    assert!(
        fr.body
            .contains("<title>Vos préférences de messages</title>")
    );
    assert!(fr.body.contains("Me désabonner de tout"));
    assert!(
        fr.body
            .contains("<button type=\"submit\">Enregistrer</button>")
    );
    assert_eq!(fr.headers["content-language"], "fr");

    let en = get(&url).await;
    assert!(en.body.contains("<html lang=\"en\">"));
    assert!(en.body.contains("<title>Your email preferences</title>"));
    assert_eq!(en.headers["content-language"], "en");
    let en = get_lang(&url, "de-DE, en;q=0.5, fr;q=0.4").await;
    assert!(en.body.contains("<html lang=\"en\">"));

    // Error pages too.
    let err = get_lang(&relay.url("/u/garbage"), "fr").await;
    assert!(err.body.contains("Ce lien ne fonctionne pas"));

    // The evidence names the language of the page that was shown.
    let res = client()
        .post(&url)
        .header("Accept-Language", "fr-FR,fr;q=0.9")
        .form(&[("save", "1")])
        .send()
        .await
        .expect("POST");
    let page = read(res).await;
    assert!(page.body.contains("Enregistré."));
    let e = events(&relay, "jo@example.net").await.pop().expect("event");
    assert_eq!(
        e.evidence.as_deref(),
        Some(format!("preference-page fr texts:{}", texts_version(&relay)).as_str())
    );
}
both_stores!(language_follows_accept_language);

async fn texts_can_be_overridden_and_labels_are_escaped() {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let text = config_text(dir.path(), &format!("smtp://{}", sink.addr()), "", "")
        .replace(
            CAMPAIGNS,
            &CAMPAIGNS.replace(
                "label = \"Offers\"",
                "label = \"Offers <script>alert('x')</script> & \\\"deals\\\"\"",
            ),
        )
        .replace(
            "[signing]",
            "[texts.en]\npage_preferences_title = \"Choose <wisely>\"\n\n[signing]",
        );
    let relay = TestRelay::start_with(dir, &text).await;
    let id = subject(&relay, "kim@example.net", &[]).await;
    let page = get(&relay.url(&format!(
        "/p/{}",
        relay.token(Purpose::Preferences, &id, None)
    )))
    .await;
    assert!(
        page.body.contains(
            "Offers &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;deals&quot;"
        ),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<script>"));
    assert!(page.body.contains("<h1>Choose &lt;wisely&gt;</h1>"));
    assert_ne!(
        relay.config.texts.version(),
        consent_relay::texts::Texts::default().version()
    );
}
both_stores!(texts_can_be_overridden_and_labels_are_escaped);

async fn security_headers_are_on_every_response() {
    let (_sink, relay) = start().await;
    let id = subject(&relay, "lou@example.net", &[]).await;
    let page_url = relay.url(&format!(
        "/p/{}",
        relay.token(Purpose::Preferences, &id, None)
    ));

    let health = get(&relay.url("/healthz")).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.body, "ok");

    let mut responses = vec![
        ("healthz", health),
        ("page", get(&page_url).await),
        ("bad token", get(&relay.url("/u/garbage")).await),
        ("no route", get(&relay.url("/nowhere")).await),
        ("saved", post_form(&page_url, "save=1&c=prospecting").await),
    ];
    let put = client().put(&page_url).send().await.expect("PUT");
    responses.push(("wrong method", read(put).await));
    let big = post_form(&page_url, &format!("save=1&c={}", "x".repeat(20_000))).await;
    responses.push(("too large", big));

    for (what, page) in &responses {
        let h = &page.headers;
        assert_eq!(
            h["content-security-policy"],
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            "{what}"
        );
        assert_eq!(h["x-frame-options"], "DENY", "{what}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{what}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
        assert_eq!(h["cache-control"], "no-store", "{what}");
        assert!(h.get("set-cookie").is_none(), "{what}");
    }
    let status = |what: &str| {
        responses
            .iter()
            .find(|(w, _)| *w == what)
            .map(|(_, p)| p.status)
            .expect(what)
    };
    assert_eq!(status("no route"), StatusCode::NOT_FOUND);
    assert_eq!(status("wrong method"), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(status("too large"), StatusCode::PAYLOAD_TOO_LARGE);
    // Errors made below the handlers are plain pages as well.
    for what in ["wrong method", "too large"] {
        let page = &responses.iter().find(|(w, _)| *w == what).expect(what).1;
        assert!(
            page.headers["content-type"]
                .to_str()
                .expect("ascii")
                .starts_with("text/html"),
            "{what}"
        );
        assert!(page.body.contains("Nothing was changed."), "{what}");
    }
    assert!(events(&relay, "lou@example.net").await.is_empty());
}
both_stores!(security_headers_are_on_every_response);

async fn stop_closes_idle_connections_without_waiting_for_the_grace_period() {
    let (_sink, mut relay) = start().await;
    // A kept-alive connection, idle in the client's pool.
    let http = client();
    let res = http.get(relay.url("/healthz")).send().await.expect("GET");
    assert_eq!(res.text().await.expect("body"), "ok");

    let started = Instant::now();
    relay.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stop took {:?}",
        started.elapsed()
    );
    assert!(http.get(relay.url("/healthz")).send().await.is_err());
}
both_stores!(stop_closes_idle_connections_without_waiting_for_the_grace_period);
