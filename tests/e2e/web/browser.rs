//! End to end in a real browser: headless Chromium, driven over the W3C
//! WebDriver protocol (chromedriver, spoken to with plain HTTP), opens the
//! pages the relay serves, works them with the keyboard and the mouse, and
//! takes screenshots into `target/screenshots/` for people to look at.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (Debian packages
//! `chromium` and `chromium-driver`; `.ci/run` installs them). Without them
//! the test says so loudly and passes, unless CONSENT_RELAY_REQUIRE_BROWSER
//! is set (CI), where it fails.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::both_stores;
use crate::common::relay::TestRelay;
use crate::common::sink::Sink;
use base64::Engine as _;
use consent_relay::consent::Action;
use consent_relay::token::Purpose;
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The W3C name of an element reference in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
const TAB: &str = "\u{E004}";

/// chromedriver, killed with its browsers when the test ends, panics included.
struct Driver {
    child: Child,
    base: String,
    http: reqwest::Client,
    /// Chromium profiles, removed on drop.
    profiles: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // chromedriver leads its own process group (see `start`), and the
        // browsers it launched are in it: end that group, which this test made.
        let pgid = self.child.id() as i32;
        // SAFETY: kill(2) with a process group id we created; no memory involved.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    /// `None` (after saying why) when the browser is not installed here.
    async fn start() -> Option<Driver> {
        let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
            .into_iter()
            .filter(|p| !Path::new(p).exists())
            .collect();
        if !missing.is_empty() {
            if std::env::var_os("CONSENT_RELAY_REQUIRE_BROWSER").is_some() {
                panic!(
                    "CONSENT_RELAY_REQUIRE_BROWSER is set but {} is missing: \
                     install the Debian packages chromium and chromium-driver",
                    missing.join(" and ")
                );
            }
            eprintln!(
                "\n*** web::browser skipped: chromium not installed (CI installs it): \
                 missing {} ***\n",
                missing.join(", ")
            );
            return None;
        }
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").expect("free port");
            l.local_addr().expect("addr").port()
        };
        let child = {
            use std::os::unix::process::CommandExt as _;
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .expect("start chromedriver")
        };
        let driver = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client"),
            profiles: tempfile::tempdir().expect("temp dir"),
        };
        for _ in 0..100 {
            if let Ok(res) = driver
                .http
                .get(format!("{}/status", driver.base))
                .send()
                .await
                && let Ok(v) = res.json::<Value>().await
                && v["value"]["ready"] == json!(true)
            {
                return Some(driver);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not become ready on port {port}");
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = res.status();
        let v: Value = res.json().await.expect("json answer");
        assert!(status.is_success(), "{method} {path}: {status} {v}");
        v["value"].clone()
    }

    /// A new browser session. `lang` sets the UI language and Accept-Language;
    /// `mobile` emulates a 390 px wide phone screen.
    async fn session(&self, name: &str, lang: &str, mobile: bool) -> Session<'_> {
        let profile = self.profiles.path().join(name);
        let mut options = json!({
            "binary": CHROMIUM,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-breakpad",
                "--disable-crash-reporter",
                "--hide-scrollbars",
                "--force-device-scale-factor=1",
                "--window-size=1024,900",
                format!("--lang={lang}"),
                format!("--user-data-dir={}", profile.display()),
            ],
            "prefs": { "intl.accept_languages": lang },
        });
        if mobile {
            options["mobileEmulation"] = json!({
                "deviceMetrics": { "width": 390, "height": 844, "pixelRatio": 2.0 },
                "userAgent": "Mozilla/5.0 (Linux; Android 14) Mobile consent-relay-test"
            });
        }
        let v = self
            .call(
                reqwest::Method::POST,
                "/session",
                Some(json!({
                    "capabilities": { "alwaysMatch": {
                        "browserName": "chrome",
                        "goog:chromeOptions": options,
                    }}
                })),
            )
            .await;
        let id = v["sessionId"].as_str().expect("session id").to_owned();
        Session { driver: self, id }
    }
}

struct Session<'d> {
    driver: &'d Driver,
    id: String,
}

impl Session<'_> {
    async fn post(&self, path: &str, body: Value) -> Value {
        self.driver
            .call(
                reqwest::Method::POST,
                &format!("/session/{}{path}", self.id),
                Some(body),
            )
            .await
    }

    async fn get(&self, path: &str) -> Value {
        self.driver
            .call(
                reqwest::Method::GET,
                &format!("/session/{}{path}", self.id),
                None,
            )
            .await
    }

    async fn open(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    /// The element matching `css`, waiting up to 5 s for it to appear.
    async fn find(&self, css: &str) -> String {
        for _ in 0..50 {
            let res = self
                .driver
                .http
                .post(format!("{}/session/{}/element", self.driver.base, self.id))
                .json(&json!({ "using": "css selector", "value": css }))
                .send()
                .await
                .expect("find element");
            if res.status().is_success() {
                let v: Value = res.json().await.expect("json");
                return v["value"][ELEMENT]
                    .as_str()
                    .unwrap_or_else(|| panic!("element id in {v}"))
                    .to_owned();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no element matches {css:?}");
    }

    async fn click(&self, element: &str) {
        self.post(&format!("/element/{element}/click"), json!({}))
            .await;
    }

    async fn selected(&self, element: &str) -> bool {
        self.get(&format!("/element/{element}/selected"))
            .await
            .as_bool()
            .expect("bool")
    }

    async fn source(&self) -> String {
        self.get("/source")
            .await
            .as_str()
            .expect("source")
            .to_owned()
    }

    /// Asserts that the page needs no horizontal scrolling (on a phone).
    async fn assert_fits_the_width(&self, px: i64) {
        let width = self
            .script("return document.documentElement.scrollWidth;")
            .await;
        assert!(
            width.as_i64().is_some_and(|w| w <= px),
            "no horizontal scrolling on a phone: {width}"
        );
    }

    async fn script(&self, script: &str) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": [] }))
            .await
    }

    async fn press(&self, key: &str) {
        self.post(
            "/actions",
            json!({ "actions": [{
                "type": "key", "id": "keyboard",
                "actions": [{ "type": "keyDown", "value": key }, { "type": "keyUp", "value": key }],
            }]}),
        )
        .await;
        self.driver
            .call(
                reqwest::Method::DELETE,
                &format!("/session/{}/actions", self.id),
                None,
            )
            .await;
    }

    /// Writes a PNG of the viewport to `target/screenshots/NAME.png`.
    async fn screenshot(&self, name: &str) -> PathBuf {
        let b64 = self.get("/screenshot").await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().expect("base64"))
            .expect("png");
        assert!(png.starts_with(b"\x89PNG"), "{name} is not a PNG");
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        eprintln!("screenshot: {}", path.display());
        path
    }

    async fn quit(self) {
        self.driver
            .call(
                reqwest::Method::DELETE,
                &format!("/session/{}", self.id),
                None,
            )
            .await;
    }
}

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
    mobile.assert_fits_the_width(390).await;
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
    let button = fr.find("button[type=submit]").await;
    fr.click(&button).await;
    fr.find("form.undo").await;
    fr.screenshot("asking-unsubscribed-fr").await;
    let mobile = driver.session("asking-fr-mobile", "fr", true).await;
    mobile.open(&unsubscribe("max@example.net").await).await;
    mobile.screenshot("asking-unsubscribe-fr-mobile").await;
    mobile.quit().await;
    fr.quit().await;
    drop(driver);
}
both_stores!(who_is_asking_and_the_undo_button_in_chromium);
