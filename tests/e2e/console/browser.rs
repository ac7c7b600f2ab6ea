//! The console in headless Chromium: signing in by typing the token, the
//! views in English and French at desktop and phone (390 px) widths, with
//! a screenshot of each under `target/screenshots/console-*.png`, each
//! checked for labels, names, contrast and a focus ring, and a form whose
//! CSRF token was taken out refused by the relay.

use crate::both_stores;
use crate::common::browser::{Driver, Session, TAB};
use crate::common::console::{self, ADMIN, DPO, VIEWER};
use crate::common::relay::{TestRelay, eventually, message};
use crate::common::sink::{Fault, Sink};
use consent_relay::consent::Action;
use consent_relay::store::{Actor, Via};

/// The views, by the name their screenshot takes and their path.
const VIEWS: &[(&str, &str)] = &[
    ("overview", "/admin"),
    ("person", "/admin/person?address=ann%40example.net"),
    ("register", "/admin/register"),
    ("campaigns", "/admin/campaigns"),
    ("queue", "/admin/queue?status=held"),
    ("suppressions", "/admin/suppressions"),
    ("audit", "/admin/audit"),
];

/// Some history for the views to show.
async fn history(relay: &TestRelay, sink: &Sink) {
    relay
        .consent("ann@example.net", "newsletter", Action::Grant, None)
        .await;
    relay
        .consent("bob@example.net", "newsletter", Action::Withdraw, None)
        .await;
    let reply = relay
        .send(
            &["ann@example.net", "bob@example.net", "cy@example.net"],
            &message("newsletter", "Hello"),
        )
        .await;
    assert!(reply.starts_with("250"), "{reply}");
    eventually("the copy is delivered", || async {
        !sink.messages().is_empty()
    })
    .await;
    // A mailbox that does not exist (a suppression), and a paused
    // campaign's copy (held), for the campaigns, queue, suppressions and
    // audit views.
    sink.script([Fault::Rcpt(550, "5.1.1 <dee@example.net>: no such user")]);
    relay
        .send(&["dee@example.net"], &message("prospecting", "Offer"))
        .await;
    eventually("dee is suppressed", || async {
        let s = relay.store().suppressions_of("dee@example.net").await;
        s.unwrap().iter().any(|s| s.active)
    })
    .await;
    relay
        .store()
        .pause_campaign(
            "prospecting",
            &Actor::new(ADMIN.0, Via::Console),
            "complaints from one list",
        )
        .await
        .expect("pause");
    relay
        .send(&["eve@example.net"], &message("prospecting", "Offer"))
        .await;
}

/// Signs in on the form every console page shows without a session.
async fn sign_in(s: &Session<'_>, relay: &TestRelay, token: &str) {
    s.open(&relay.url("/admin")).await;
    let field = s.find("input#token").await;
    s.type_text(&field, token).await;
    let button = s.find("form[action$='/admin/sign-in'] button").await;
    s.click(&button).await;
    s.find("nav.views a[aria-current=page]").await;
}

async fn the_console_in_chromium_in_both_languages_and_widths() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let sink = Sink::start().await;
    let mut relay = console::start(&sink).await;
    history(&relay, &sink).await;
    for (lang, mobile) in [("en", false), ("fr", false), ("en", true), ("fr", true)] {
        let size = if mobile { "390" } else { "desktop" };
        let s = driver
            .session(&format!("console-{lang}-{size}"), lang, mobile)
            .await;
        s.open(&relay.url("/admin")).await;
        s.find("input#token").await;
        s.assert_accessible(&format!("the sign-in form ({lang}, {size})"))
            .await;
        sign_in(&s, &relay, ADMIN.1).await;
        let html = s.source().await;
        assert!(html.contains(&format!("<html lang=\"{lang}\">")), "{html}");
        for (name, path) in VIEWS {
            s.open(&relay.url(path)).await;
            s.find("main#main h1").await;
            let html = s.source().await;
            assert!(
                !html.contains("name=\"token\""),
                "{path}: signed out? {html}"
            );
            // Nothing overflows the phone's width (tables scroll in their box).
            if mobile {
                let wide = s
                    .script("return document.documentElement.scrollWidth > window.innerWidth")
                    .await;
                assert_eq!(
                    wide,
                    serde_json::json!(false),
                    "{path} is wider than 390 px"
                );
            }
            // Labels, names, titles, one h1, contrast; and the keyboard's
            // first stop shows a focus ring.
            s.assert_accessible(&format!("{path} ({lang}, {size})"))
                .await;
            s.press(TAB).await;
            let ring = s
                .script(
                    "const e = document.activeElement, st = getComputedStyle(e); \
                     return e !== document.body && st.outlineStyle !== 'none' \
                     && parseFloat(st.outlineWidth) >= 2;",
                )
                .await;
            assert_eq!(ring, serde_json::json!(true), "{path}: no focus ring");
            s.fit_page(if mobile { 390 } else { 1280 }, mobile).await;
            s.screenshot(&format!("console-{name}-{lang}-{size}")).await;
        }
        s.quit().await;
    }
    relay.stop().await;
}
both_stores!(the_console_in_chromium_in_both_languages_and_widths);

async fn a_form_without_its_csrf_token_is_refused_in_chromium() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let sink = Sink::start().await;
    let mut relay = console::start(&sink).await;
    let s = driver.session("console-csrf", "en", false).await;
    sign_in(&s, &relay, VIEWER.1).await;
    // The sign-out form, its token taken out by a script, sent.
    s.script(
        "const f = document.querySelector(\"form[action$='/admin/sign-out']\");\
         f.querySelector(\"input[name=csrf]\").remove(); f.submit(); return 1",
    )
    .await;
    let refused = s.find("p.problem").await;
    let _ = refused;
    let html = s.source().await;
    assert!(html.contains("Nothing was changed"), "{html}");
    // Still signed in: the session was not ended by the forged form.
    s.open(&relay.url("/admin")).await;
    s.find("nav.views").await;
    s.quit().await;
    relay.stop().await;
}
both_stores!(a_form_without_its_csrf_token_is_refused_in_chromium);

async fn a_dpo_finds_a_person_and_erases_them_with_the_confirmation_in_chromium() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let sink = Sink::start().await;
    let mut relay = console::start(&sink).await;
    history(&relay, &sink).await;
    // A viewer reads the history and is offered no erasure.
    let s = driver.session("console-person-viewer", "en", false).await;
    sign_in(&s, &relay, VIEWER.1).await;
    s.open(&relay.url("/admin/person?address=ann%40example.net"))
        .await;
    s.find("h2#events").await;
    let html = s.source().await;
    assert!(html.contains("Consent events"), "{html}");
    assert!(!html.contains("/admin/person/erase"), "{html}");
    s.quit().await;
    // A DPO finds ann from the overview's search box, reads her history.
    let s = driver.session("console-person-dpo", "en", false).await;
    sign_in(&s, &relay, DPO.1).await;
    let search = s.find("input#address").await;
    s.type_text(&search, "Ann@Example.NET").await;
    let find = s.find("form[action$='/admin/person'] button").await;
    s.click(&find).await;
    s.find("h2#events").await;
    assert!(s.source().await.contains("<code>granted</code>"));
    // A wrong confirmation erases nothing; the right one erases.
    for (typed, answer) in [
        ("bob@example.net", "p.problem"),
        ("ann@example.net", "p.notice"),
    ] {
        let confirm = s.find("input#confirm").await;
        s.type_text(&confirm, typed).await;
        let erase = s.find("form[action$='/admin/person/erase'] button").await;
        s.click(&erase).await;
        s.find(answer).await;
    }
    let html = s.source().await;
    assert!(html.contains("The person was erased"), "{html}");
    // The audit entry, with the operator's name, on the person's page.
    assert!(html.contains("<code>subject-erase</code>"), "{html}");
    assert!(
        html.contains(&format!("<strong>{}</strong>", DPO.0)),
        "{html}"
    );
    s.screenshot("console-person-erased-en-desktop").await;
    s.quit().await;
    relay.stop().await;
}
both_stores!(a_dpo_finds_a_person_and_erases_them_with_the_confirmation_in_chromium);
