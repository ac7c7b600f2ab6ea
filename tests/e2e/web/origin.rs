//! End to end: a page form posted by another site is refused (`403`, a
//! plain page, nothing recorded), whatever the route (`/p`, `/o`, the `/u`
//! button); our own origin (`[http] public_url`), `Sec-Fetch-Site:
//! same-origin` and a client that sends neither header are served; an RFC
//! 8058 one-click post is served whatever it carries.

use crate::both_stores;
use crate::common::relay::TestRelay;
use crate::common::sink::Sink;
use consent_relay::consent::Action;
use consent_relay::token::Purpose;
use reqwest::StatusCode;

async fn post(relay: &TestRelay, path: &str, body: &str, headers: &[(&str, &str)]) -> StatusCode {
    let mut req = reqwest::Client::new()
        .post(relay.url(path))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body.to_owned());
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let res = req.send().await.expect("post");
    let status = res.status();
    if status == StatusCode::FORBIDDEN {
        let body = res.text().await.expect("body");
        assert!(body.contains("<html"), "a plain page: {body}");
    }
    status
}

async fn events(relay: &TestRelay, email: &str) -> usize {
    relay.events(email).await.len()
}

async fn page_forms_posted_by_another_site_are_refused_and_change_nothing() {
    let sink = Sink::start().await;
    let relay = TestRelay::start(sink.addr(), "", "").await;
    let email = "victim@example.net";
    relay
        .consent(email, "prospecting", Action::Withdraw, None)
        .await;
    let id = relay.subject_id(email).await;
    let optin = format!(
        "/o/{}",
        relay.token(Purpose::Optin, &id, Some("newsletter"))
    );
    let preferences = format!("/p/{}", relay.token(Purpose::Preferences, &id, None));
    let unsubscribe = format!(
        "/u/{}",
        relay.token(Purpose::Unsubscribe, &id, Some("newsletter"))
    );
    let cross: [&[(&str, &str)]; 4] = [
        &[("Origin", "https://evil.example")],
        &[("Origin", "null")],
        &[("Sec-Fetch-Site", "cross-site")],
        &[
            ("Sec-Fetch-Site", "same-site"),
            ("Origin", "http://sub.127.0.0.1:8080"),
        ],
    ];
    for headers in cross {
        for (path, body) in [
            (&optin, "confirm=1"),
            (&preferences, "save=1&c=newsletter&c=prospecting"),
            (&unsubscribe, "confirm=1"),
        ] {
            assert_eq!(
                post(&relay, path, body, headers).await,
                StatusCode::FORBIDDEN,
                "{path} {headers:?}"
            );
        }
    }
    assert_eq!(events(&relay, email).await, 1, "nothing was recorded");

    // Our own pages: public_url's origin, or fetch metadata saying so.
    assert_eq!(
        post(
            &relay,
            &optin,
            "confirm=1",
            &[("Origin", "http://127.0.0.1:8080")]
        )
        .await,
        StatusCode::OK
    );
    assert_eq!(
        post(
            &relay,
            &preferences,
            "save=1&c=newsletter&c=prospecting",
            &[
                ("Sec-Fetch-Site", "same-origin"),
                ("Origin", "http://127.0.0.1:8080")
            ],
        )
        .await,
        StatusCode::OK
    );
    // Neither header: not a browser page of another site.
    assert_eq!(
        post(&relay, &unsubscribe, "confirm=1", &[]).await,
        StatusCode::OK
    );
    assert_eq!(
        events(&relay, email).await,
        4,
        "grant, grant (prospecting), withdraw"
    );
}
both_stores!(page_forms_posted_by_another_site_are_refused_and_change_nothing);

async fn one_click_is_served_from_anywhere() {
    let sink = Sink::start().await;
    let relay = TestRelay::start(sink.addr(), "", "").await;
    for (i, headers) in [
        &[][..],
        &[("Origin", "https://mail.provider.example")][..],
        &[("Sec-Fetch-Site", "cross-site"), ("Origin", "null")][..],
    ]
    .into_iter()
    .enumerate()
    {
        let email = format!("oneclick{i}@example.net");
        relay
            .consent(&email, "newsletter", Action::Grant, None)
            .await;
        let id = relay.subject_id(&email).await;
        let path = format!(
            "/u/{}",
            relay.token(Purpose::Unsubscribe, &id, Some("newsletter"))
        );
        assert_eq!(
            post(&relay, &path, "List-Unsubscribe=One-Click", headers).await,
            StatusCode::OK,
            "{headers:?}"
        );
        assert_eq!(
            events(&relay, &email).await,
            2,
            "the withdrawal is recorded"
        );
    }
}
both_stores!(one_click_is_served_from_anywhere);
