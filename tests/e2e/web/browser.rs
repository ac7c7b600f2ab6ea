//! End to end in a real browser: headless Chromium, driven over the W3C
//! WebDriver protocol (chromedriver, spoken to with plain HTTP), opens the
//! pages the relay serves, works them with the keyboard and the mouse, and
//! takes screenshots into `target/screenshots/` for people to look at.
//! The driver is `common::browser`'s: without Chromium the test says so
//! loudly and passes, unless CONSENT_RELAY_REQUIRE_BROWSER is set (CI).

use crate::both_stores;
use crate::common::browser::{Driver, TAB};
use crate::common::relay::TestRelay;
use crate::common::sink::Sink;
use consent_relay::consent::Action;
use consent_relay::token::Purpose;
use serde_json::json;
use std::time::Duration;

/// The event's user agent is the browser's.
fn assert_from_chromium(e: &consent_relay::store::ConsentEvent) {
    assert!(
        e.user_agent
            .as_deref()
            .unwrap_or_default()
            .contains("Chrome"),
        "{:?}",
        e.user_agent
    );
}

async fn preference_and_unsubscribe_pages_work_by_keyboard_and_mouse_in_chromium() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let sink = Sink::start().await;
    let relay = TestRelay::start(sink.addr(), "", "").await;
    let email = "pat@example.net";
    relay
        .consent(email, "newsletter", Action::Grant, None)
        .await;
    let subject = relay.subject_id(email).await;
    let preferences = relay.url(&format!(
        "/p/{}",
        relay.token(Purpose::Preferences, &subject, None)
    ));
    let unsubscribe = relay.url(&format!(
        "/u/{}",
        relay.token(Purpose::Unsubscribe, &subject, Some("newsletter"))
    ));

    // English, desktop.
    let en = driver.session("en", "en-US", false).await;
    en.open(&preferences).await;
    assert!(en.source().await.contains("<html lang=\"en\">"));
    en.screenshot("preferences-en").await;
    en.assert_accessible("preferences-en").await;

    // The keyboard reaches every control in reading order; the locked
    // (mandatory) checkbox is skipped.
    let mut order = Vec::new();
    for i in 0..4 {
        en.press(TAB).await;
        let v = en
            .script("const e = document.activeElement; return e.id || e.tagName.toLowerCase();")
            .await;
        order.push(v.as_str().unwrap_or_default().to_owned());
        if i == 1 {
            // The focus ring on a checkbox, for people to look at.
            en.screenshot("preferences-en-focus").await;
        }
    }
    assert_eq!(order, ["c-newsletter", "c-prospecting", "all", "button"]);

    // Untick the opt-out campaign and save.
    let prospecting = en.find("#c-prospecting").await;
    assert!(en.selected(&prospecting).await, "opt-out shown ticked");
    let newsletter = en.find("#c-newsletter").await;
    assert!(
        en.selected(&newsletter).await,
        "granted opt-in shown ticked"
    );
    let invoices = en.find("#c-invoices").await;
    assert!(en.selected(&invoices).await, "mandatory shown ticked");
    en.click(&prospecting).await;
    assert!(!en.selected(&prospecting).await);
    let save = en.find("button[type=submit]").await;
    en.click(&save).await;
    let notice = en.find(".notice").await;
    let text = en.get(&format!("/element/{notice}/text")).await;
    assert_eq!(
        text.as_str(),
        Some("Saved. Your choices apply to every message from now on.")
    );
    let prospecting = en.find("#c-prospecting").await;
    assert!(!en.selected(&prospecting).await, "saved state shown");
    en.screenshot("preferences-en-saved").await;

    let events = relay
        .store()
        .subject_consent(email)
        .await
        .expect("store")
        .expect("subject")
        .events;
    let e = events.last().expect("event");
    assert_eq!(
        (e.campaign.as_str(), e.action.as_str(), e.source.as_str()),
        ("prospecting", "withdraw", "preference-page")
    );
    assert_eq!(e.ip.as_deref(), Some("127.0.0.1"));
    assert_from_chromium(e);
    assert_eq!(events.len(), 2, "{events:?}");

    // The unsubscribe page, then its button.
    en.open(&unsubscribe).await;
    en.screenshot("unsubscribe-en").await;
    en.assert_accessible("unsubscribe-en").await;
    let button = en.find("button[type=submit]").await;
    en.click(&button).await;
    en.find("h1").await;
    assert!(
        en.source()
            .await
            .contains("You are unsubscribed from Newsletter.")
    );
    en.screenshot("unsubscribe-en-done").await;
    en.assert_accessible("unsubscribe-en-done").await;
    let e = relay
        .store()
        .subject_consent(email)
        .await
        .expect("store")
        .expect("subject")
        .events
        .pop()
        .expect("event");
    assert_eq!(
        (e.campaign.as_str(), e.action.as_str(), e.source.as_str()),
        ("newsletter", "withdraw", "link")
    );
    // Its preferences link leads back to the page.
    let link = en.find("a").await;
    en.click(&link).await;
    en.find("#c-newsletter").await;
    en.quit().await;

    // The other screenshots show a subject as the first one was at the
    // start: newsletter granted, nothing else said.
    relay
        .consent("sam@example.net", "newsletter", Action::Grant, None)
        .await;
    let sam = relay.subject_id("sam@example.net").await;
    let preferences = relay.url(&format!(
        "/p/{}",
        relay.token(Purpose::Preferences, &sam, None)
    ));
    let unsubscribe = relay.url(&format!(
        "/u/{}",
        relay.token(Purpose::Unsubscribe, &sam, Some("newsletter"))
    ));

    // A phone.
    let mobile = driver.session("mobile", "en-US", true).await;
    mobile.open(&preferences).await;
    mobile.assert_fits_the_width(390).await;
    mobile.screenshot("preferences-en-mobile").await;
    mobile.assert_accessible("preferences-en-mobile").await;
    mobile.quit().await;

    // French, chosen by the browser's Accept-Language.
    let fr = driver.session("fr", "fr", false).await;
    fr.open(&preferences).await;
    let source = fr.source().await;
    assert!(source.contains("<html lang=\"fr\">"), "{source}");
    assert!(source.contains("Vos préférences de messages"));
    fr.screenshot("preferences-fr").await;
    fr.assert_accessible("preferences-fr").await;
    fr.open(&unsubscribe).await;
    fr.screenshot("unsubscribe-fr").await;
    fr.assert_accessible("unsubscribe-fr").await;
    fr.open(&relay.url("/u/not-a-token")).await;
    fr.screenshot("error-fr").await;
    fr.assert_accessible("error-fr").await;
    fr.quit().await;

    drop(driver);
}
both_stores!(preference_and_unsubscribe_pages_work_by_keyboard_and_mouse_in_chromium);

/// Another site's page that posts the opt-in form as soon as it opens (the
/// attack that recorded a grant with the visitor's IP as proof): Chromium
/// sends it with `Origin: null` and `Sec-Fetch-Site: cross-site`; the relay
/// answers `403` and records nothing. The same form on our own page works.
async fn a_form_another_site_posts_from_chromium_is_refused() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let sink = Sink::start().await;
    let relay = TestRelay::start(sink.addr(), "", "").await;
    let email = "mallory-target@example.net";
    relay
        .consent(email, "prospecting", Action::Grant, None)
        .await;
    let subject = relay.subject_id(email).await;
    let optin = relay.url(&format!(
        "/o/{}",
        relay.token(Purpose::Optin, &subject, Some("newsletter"))
    ));
    let attack = format!(
        "<!doctype html><form method=post action=\"{optin}\">\
         <input type=hidden name=confirm value=1></form>\
         <script>document.forms[0].submit()</script>"
    );
    let data_url = format!(
        "data:text/html;charset=utf-8,{}",
        url::form_urlencoded::byte_serialize(attack.as_bytes())
            .collect::<String>()
            .replace('+', "%20")
    );
    let s = driver.session("cross-site", "en-US", false).await;
    s.open(&data_url).await;
    let mut source = String::new();
    for _ in 0..100 {
        source = s.source().await;
        if source.contains("<h1") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let events = relay.events(email).await;
    assert_eq!(events.len(), 1, "no grant recorded: {events:?}");
    assert!(source.contains("<h1"), "the relay answered: {source}");
    s.screenshot("optin-cross-site-refused").await;

    // Our own page's form, same browser: recorded.
    s.open(&optin).await;
    let button = s.find("button[type=submit]").await;
    s.click(&button).await;
    let mut events = Vec::new();
    for _ in 0..100 {
        events = relay.events(email).await;
        if events.len() > 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let e = events.last().expect("event");
    assert_eq!(
        (e.campaign.as_str(), e.action.as_str(), events.len()),
        ("newsletter", "grant", 2)
    );
    s.quit().await;
    drop(driver);
}
both_stores!(a_form_another_site_posts_from_chromium_is_refused);

/// A small logo for the pages (an SVG, as `[http] logo_file`).
const LOGO: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"168\" height=\"48\" viewBox=\"0 0 168 48\">\
<rect width=\"48\" height=\"48\" rx=\"10\" fill=\"#0b57d0\"/>\
<path d=\"M12 14h10a10 10 0 0 1 0 20H12zM28 14h10v4h-6v4h5v4h-5v8h-4z\" fill=\"#fff\"/>\
<text x=\"58\" y=\"31\" font-family=\"sans-serif\" font-size=\"17\" font-weight=\"700\" fill=\"#1b1f24\">Dupont &amp; Fils</text></svg>";

/// Pages that say who is asking, in Chromium: the logo (a `data:` URI)
/// really shows under the pages' CSP, the footer names the organisation,
/// and the "unsubscribed" page's undo button works from the keyboard and
/// records a grant. Screenshots in EN and FR, desktop and 390 px.
async fn who_is_asking_and_the_undo_button_in_chromium() {
    use super::asking::{PUBLIC, WHO};
    let Some(driver) = Driver::start().await else {
        return;
    };
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("logo.svg"), LOGO).expect("write logo");
    let text =
        crate::common::relay::config_text(dir.path(), &format!("smtp://{}", sink.addr()), "", "")
            .replacen(
                PUBLIC,
                &format!("{PUBLIC}\n{WHO}\nlogo_file = \"logo.svg\""),
                1,
            )
            .replacen(
                "label = \"Newsletter\"",
                "label = { en = \"Newsletter\", fr = \"la Lettre d'information\" }",
                1,
            );
    let relay = TestRelay::start_with(dir, &text).await;
    let unsubscribe = |who: &str| {
        let who = who.to_owned();
        let relay = &relay;
        async move {
            relay.consent(&who, "newsletter", Action::Grant, None).await;
            let subject = relay.subject_id(&who).await;
            relay.url(&format!(
                "/u/{}",
                relay.token(Purpose::Unsubscribe, &subject, Some("newsletter"))
            ))
        }
    };
    let logo_shown = "const i = document.querySelector('.logo img'); \
                      return i.complete ? i.naturalWidth : -1;";

    // English, desktop.
    let email = "pat@example.net";
    let en = driver.session("asking-en", "en-US", false).await;
    en.open(&unsubscribe(email).await).await;
    assert_eq!(en.script(logo_shown).await, json!(168), "the logo shows");
    assert!(en.source().await.contains("p•••@example.net"));
    en.screenshot("asking-unsubscribe-en").await;
    let button = en.find("button[type=submit]").await;
    en.click(&button).await;
    en.find("form.undo").await;
    en.screenshot("asking-unsubscribed-en").await;
    en.assert_accessible("asking-unsubscribed-en").await;
    // By keyboard: the preferences link, then the undo button.
    for want in ["a", "button"] {
        en.press(TAB).await;
        let got = en
            .script("return document.activeElement.tagName.toLowerCase();")
            .await;
        assert_eq!(got, json!(want));
    }
    en.screenshot("asking-unsubscribed-en-focus").await;
    en.press("\u{E007}").await;
    en.find("h1").await;
    let mut source = String::new();
    for _ in 0..50 {
        source = en.source().await;
        if source.contains("is cancelled") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        source.contains("Your unsubscription from Newsletter is cancelled."),
        "{source}"
    );
    en.screenshot("asking-undone-en").await;
    en.assert_accessible("asking-undone-en").await;
    let e = relay.events(email).await.pop().expect("event");
    assert_eq!(
        (e.campaign.as_str(), e.action.as_str(), e.source.as_str()),
        ("newsletter", "grant", "link")
    );
    assert_from_chromium(&e);
    assert!(
        e.evidence
            .as_deref()
            .unwrap_or_default()
            .starts_with("unsubscribed-page en texts:")
    );
    en.quit().await;

    // A phone.
    let mobile = driver.session("asking-mobile", "en-US", true).await;
    mobile.open(&unsubscribe("sam@example.net").await).await;
    let button = mobile.find("button[type=submit]").await;
    mobile.click(&button).await;
    mobile.find("form.undo").await;
    mobile.assert_fits_the_width(390).await;
    mobile.screenshot("asking-unsubscribed-en-mobile").await;
    mobile.quit().await;

    // French.
    let fr = driver.session("asking-fr", "fr", false).await;
    fr.open(&unsubscribe("lou@example.net").await).await;
    assert_eq!(fr.script(logo_shown).await, json!(168));
    let source = fr.source().await;
    assert!(
        source.contains("Vous désabonner de la Lettre d'information"),
        "{source}"
    );
    fr.screenshot("asking-unsubscribe-fr").await;
    fr.assert_accessible("asking-unsubscribe-fr").await;
    let button = fr.find("button[type=submit]").await;
    fr.click(&button).await;
    fr.find("form.undo").await;
    fr.screenshot("asking-unsubscribed-fr").await;
    fr.assert_accessible("asking-unsubscribed-fr").await;
    let mobile = driver.session("asking-fr-mobile", "fr", true).await;
    mobile.open(&unsubscribe("max@example.net").await).await;
    mobile.screenshot("asking-unsubscribe-fr-mobile").await;
    mobile.quit().await;
    fr.quit().await;
    drop(driver);
}
both_stores!(who_is_asking_and_the_undo_button_in_chromium);
