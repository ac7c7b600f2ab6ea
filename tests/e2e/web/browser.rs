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
    assert!(
        e.user_agent
            .as_deref()
            .unwrap_or_default()
            .contains("Chrome"),
        "{:?}",
        e.user_agent
    );
    assert_eq!(events.len(), 2, "{events:?}");

    // The unsubscribe page, then its button.
    en.open(&unsubscribe).await;
    en.screenshot("unsubscribe-en").await;
    let button = en.find("button[type=submit]").await;
    en.click(&button).await;
    en.find("h1").await;
    assert!(
        en.source()
            .await
            .contains("You are unsubscribed from Newsletter.")
    );
    en.screenshot("unsubscribe-en-done").await;
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
    let width = mobile
        .script("return document.documentElement.scrollWidth;")
        .await;
    assert!(
        width.as_i64().is_some_and(|w| w <= 390),
        "no horizontal scrolling on a phone: {width}"
    );
    mobile.screenshot("preferences-en-mobile").await;
    mobile.quit().await;

    // French, chosen by the browser's Accept-Language.
    let fr = driver.session("fr", "fr", false).await;
    fr.open(&preferences).await;
    let source = fr.source().await;
    assert!(source.contains("<html lang=\"fr\">"), "{source}");
    assert!(source.contains("Vos préférences de messages"));
    fr.screenshot("preferences-fr").await;
    fr.open(&unsubscribe).await;
    fr.screenshot("unsubscribe-fr").await;
    fr.open(&relay.url("/u/not-a-token")).await;
    fr.screenshot("error-fr").await;
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
