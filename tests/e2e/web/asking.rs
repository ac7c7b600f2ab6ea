//! End to end: pages that say who is asking (GDPR Art. 13). Every
//! recipient page names `[http] organisation`, links `privacy_url`, gives
//! `contact`, shows the `logo_file` embedded; a page reached by a link says
//! which address it is about, masked; the "unsubscribed" page's undo button
//! records a grant with its proof. Over real HTTP against the relay started
//! in-process, in English and French, with what a POST changed read back
//! from the store and proved on the next message.

use std::path::Path;
use std::time::Duration;

use super::pages::{
    Page, UA, client, events, get, get_lang, post_form, read, states, subject, texts_version,
};
use crate::both_stores;
use crate::common::admin::admin_config;
use crate::common::relay::{TestRelay, config_text, message};
use crate::common::sink::Sink;
use consent_relay::consent::{Action, Status};
use consent_relay::token::Purpose;
use reqwest::StatusCode;

pub(super) const PUBLIC: &str = "public_url = \"http://127.0.0.1:8080\"";

/// `[http]` keys naming who is asking, with text that must be escaped.
pub(super) const WHO: &str = "organisation = \"Dupont & Fils <SA>\"\n\
                   privacy_url = \"https://dupont.example/vie-privee?x=1&y=2\"\n\
                   contact = \"DPO@Dupont.example\"";

/// A relay whose config is the usual one (with the admin token and the
/// double opt-in campaign `digest`) made by `edit`, given the config's
/// directory (to write files the config names).
pub(super) async fn start_edited(edit: impl FnOnce(String, &Path) -> String) -> (Sink, TestRelay) {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let text = admin_config(dir.path(), &format!("smtp://{}", sink.addr()));
    assert!(text.contains(PUBLIC), "config_text changed");
    let text = edit(text, dir.path());
    let relay = TestRelay::start_with(dir, &text).await;
    (sink, relay)
}

/// The usual config with `keys` added to `[http]`.
async fn start_with_http(keys: &str) -> (Sink, TestRelay) {
    let keys = keys.to_owned();
    start_edited(move |text, _| text.replacen(PUBLIC, &format!("{PUBLIC}\n{keys}"), 1)).await
}

/// A form POST (urlencoded `body`) with one more request header.
pub(super) async fn post_with(page_url: &str, (name, value): (&str, &str), body: &str) -> Page {
    let res = client()
        .post(page_url)
        .header(name, value)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body.to_owned())
        .send()
        .await
        .expect("POST");
    read(res).await
}

pub(super) fn url(relay: &TestRelay, purpose: Purpose, id: &str, campaign: Option<&str>) -> String {
    let prefix = match purpose {
        Purpose::Unsubscribe => "u",
        Purpose::Preferences => "p",
        Purpose::Optin => "o",
    };
    relay.url(&format!("/{prefix}/{}", relay.token(purpose, id, campaign)))
}

const FOOTER_EN: &str = "<footer>\n<p>Data controller: Dupont &amp; Fils &lt;SA&gt;</p>\n\
    <p><a href=\"https://dupont.example/vie-privee?x=1&amp;y=2\" rel=\"noreferrer\">Privacy notice</a></p>\n\
    <p>Questions about your data: <a href=\"mailto:DPO@dupont.example\">DPO@dupont.example</a></p>\n\
    </footer>\n</main>";
const FOOTER_FR: &str = "<footer>\n<p>Responsable du traitement\u{a0}: Dupont &amp; Fils &lt;SA&gt;</p>\n\
    <p><a href=\"https://dupont.example/vie-privee?x=1&amp;y=2\" rel=\"noreferrer\">Politique de confidentialité</a></p>\n\
    <p>Questions sur vos données\u{a0}: <a href=\"mailto:DPO@dupont.example\">DPO@dupont.example</a></p>\n\
    </footer>\n</main>";

async fn every_page_names_the_organisation_its_privacy_notice_and_contact() {
    let (_sink, relay) = start_with_http(WHO).await;
    let id = subject(&relay, "ann@example.net", &[("newsletter", Action::Grant)]).await;
    let u = url(&relay, Purpose::Unsubscribe, &id, Some("newsletter"));
    let pages = [
        ("unsubscribe", u.clone()),
        (
            "unsubscribe all",
            url(&relay, Purpose::Unsubscribe, &id, None),
        ),
        (
            "mandatory",
            url(&relay, Purpose::Unsubscribe, &id, Some("invoices")),
        ),
        ("preferences", url(&relay, Purpose::Preferences, &id, None)),
        (
            "opt-in",
            url(&relay, Purpose::Optin, &id, Some("newsletter")),
        ),
        ("bad link", relay.url("/u/garbage")),
        ("no such page", relay.url("/nowhere")),
    ];
    for (what, page_url) in &pages {
        for (lang, footer) in [("en", FOOTER_EN), ("fr-FR, fr;q=0.9", FOOTER_FR)] {
            let page = get_lang(page_url, lang).await;
            assert!(page.body.contains(footer), "{what} {lang}: {}", page.body);
            assert!(!page.body.contains("<img"), "{what}: no logo configured");
            // No logo: no image may load.
            assert!(
                !page.headers["content-security-policy"]
                    .to_str()
                    .expect("ascii")
                    .contains("img-src"),
                "{what}"
            );
        }
    }
    // The pages a POST answers with, and the errors made below the handlers.
    let done = post_form(&u, "confirm=1").await;
    assert_eq!(done.status, StatusCode::OK);
    assert!(done.body.contains(FOOTER_EN), "{}", done.body);
    let undone = post_form(&u, "undo=1").await;
    assert!(undone.body.contains(FOOTER_EN), "{}", undone.body);
    let saved = post_form(&pages[3].1, "save=1&c=newsletter").await;
    assert!(saved.body.contains(FOOTER_EN), "{}", saved.body);
    let put = read(client().put(&u).send().await.expect("PUT")).await;
    assert_eq!(put.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(put.body.contains(FOOTER_EN), "{}", put.body);
    let big = post_form(&u, &format!("confirm=1&x={}", "x".repeat(20_000))).await;
    assert_eq!(big.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(big.body.contains(FOOTER_EN), "{}", big.body);
}
both_stores!(every_page_names_the_organisation_its_privacy_notice_and_contact);

async fn pages_say_which_address_they_are_about_masked() {
    let (_sink, relay) = start_with_http(WHO).await;
    // Recorded by the store directly: SMTP would want SMTPUTF8 for it.
    let id = subject(
        &relay,
        "Zoé.Martin@Example.net",
        &[("prospecting", Action::Grant)],
    )
    .await;
    for page_url in [
        url(&relay, Purpose::Unsubscribe, &id, Some("prospecting")),
        url(&relay, Purpose::Unsubscribe, &id, Some("invoices")),
        url(&relay, Purpose::Preferences, &id, None),
        url(&relay, Purpose::Optin, &id, Some("newsletter")),
    ] {
        let en = get(&page_url).await;
        assert!(
            en.body.contains(
                "</h1>\n<p class=\"about\">This page is about the address z•••@example.net.</p>\n"
            ),
            "{}",
            en.body
        );
        let fr = get_lang(&page_url, "fr").await;
        assert!(
            fr.body.contains(
                "<p class=\"about\">Cette page concerne l&#39;adresse z•••@example.net.</p>"
            ),
            "{}",
            fr.body
        );
        for page in [&en, &fr] {
            let lower = page.body.to_lowercase();
            assert!(!lower.contains("zoé.martin"), "{}", page.body);
            assert!(!lower.contains("zo%c3%a9"), "{}", page.body);
        }
    }
    let done = post_form(
        &url(&relay, Purpose::Unsubscribe, &id, Some("prospecting")),
        "confirm=1",
    )
    .await;
    assert!(
        done.body
            .contains("This page is about the address z•••@example.net.")
    );
    // A page that knows no subject names no address.
    let err = get(&relay.url("/u/garbage")).await;
    assert!(!err.body.contains("class=\"about\""), "{}", err.body);
}
both_stores!(pages_say_which_address_they_are_about_masked);

async fn without_them_the_pages_work_and_say_nothing_of_it() {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let text = config_text(dir.path(), &format!("smtp://{}", sink.addr()), "", "");
    let relay = TestRelay::start_with(dir, &text).await;
    assert!(
        relay
            .config
            .warnings
            .iter()
            .any(|w| w.contains("http.organisation, http.privacy_url, http.contact: not set")),
        "{:?}",
        relay.config.warnings
    );
    let id = subject(&relay, "ann@example.net", &[]).await;
    let page = get(&url(&relay, Purpose::Unsubscribe, &id, Some("prospecting"))).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("<footer>") && !page.body.contains("<img"));
    assert!(
        page.body
            .contains("This page is about the address a•••@example.net.")
    );
    let page = post_form(
        &url(&relay, Purpose::Unsubscribe, &id, Some("prospecting")),
        "confirm=1",
    )
    .await;
    assert!(page.body.contains("You are unsubscribed from Offers."));
}
both_stores!(without_them_the_pages_work_and_say_nothing_of_it);

const SVG: &str = "<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"120\" height=\"40\"><rect width=\"120\" height=\"40\" fill=\"#0b57d0\"/></svg>\n";

async fn the_logo_is_embedded_and_images_are_allowed_only_then() {
    let (_sink, relay) = start_edited(|text, dir| {
        std::fs::write(dir.join("logo.svg"), SVG).expect("write logo");
        text.replacen(
            PUBLIC,
            &format!("{PUBLIC}\n{WHO}\nlogo_file = \"logo.svg\""),
            1,
        )
    })
    .await;
    use base64::Engine as _;
    let data = base64::engine::general_purpose::STANDARD.encode(SVG);
    let img = format!(
        "<main class=\"\">\n<p class=\"logo\"><img src=\"data:image/svg+xml;base64,{data}\" alt=\"Dupont &amp; Fils &lt;SA&gt;\"></p>\n<h1>"
    );
    let id = subject(&relay, "ann@example.net", &[]).await;
    let csp_with_logo = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
    for page_url in [
        url(&relay, Purpose::Unsubscribe, &id, Some("prospecting")),
        url(&relay, Purpose::Preferences, &id, None),
        relay.url("/u/garbage"),
    ] {
        let page = get_lang(&page_url, "fr").await;
        assert!(
            page.body.contains(&img)
                || page
                    .body
                    .contains(&img.replace("class=\"\"", "class=\"problem\"")),
            "{}",
            page.body
        );
        assert_eq!(page.headers["content-security-policy"], csp_with_logo);
        // Nothing to fetch from anywhere.
        assert!(!page.body.contains("src=\"http"), "{}", page.body);
    }
    // Not an HTML page: no image allowed.
    let health = get(&relay.url("/healthz")).await;
    assert_eq!(
        health.headers["content-security-policy"],
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    );
}
both_stores!(the_logo_is_embedded_and_images_are_allowed_only_then);

async fn undo_on_the_unsubscribed_page_records_a_grant_with_its_proof() {
    let (sink, relay) = start_with_http(WHO).await;
    let email = "ann@example.net";
    let id = subject(&relay, email, &[("newsletter", Action::Grant)]).await;
    let u = url(&relay, Purpose::Unsubscribe, &id, Some("newsletter"));

    let done = post_form(&u, "confirm=1").await;
    assert_eq!(done.status, StatusCode::OK);
    assert!(
        done.body.contains(
            "<form method=\"post\" class=\"undo\">\n<input type=\"hidden\" name=\"undo\" value=\"1\">\n\
             <p>Changed your mind?</p>\n<p class=\"actions\"><button type=\"submit\" class=\"secondary\">Undo the unsubscription</button></p>\n</form>\n"
        ),
        "{}",
        done.body
    );
    let before = events(&relay, email).await.len();

    // GET never changes anything, whatever its query says; nor does a form
    // posted by another site's page.
    for _ in 0..2 {
        let page = get(&format!("{u}?undo=1")).await;
        assert_eq!(page.status, StatusCode::OK);
    }
    let cross = post_with(&u, ("Origin", "https://evil.example"), "undo=1").await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);
    assert_eq!(events(&relay, email).await.len(), before);
    let r = relay.send(&[email], &message("newsletter", "x")).await;
    assert!(r.contains("(0 delivered, 1 suppressed)"), "{r}");

    let page = post_with(&u, ("Origin", "http://127.0.0.1:8080"), "undo=1").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.headers.get("location").is_none());
    assert!(
        page.body
            .contains("<h1>Your unsubscription from Newsletter is cancelled.</h1>"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("Your earlier choices apply again; you can change them")
    );
    assert!(page.body.contains("href=\"../p/"));
    let evs = events(&relay, email).await;
    assert_eq!(evs.len(), before + 1, "{evs:?}");
    let e = evs.last().expect("event");
    assert_eq!(
        (e.campaign.as_str(), e.action.as_str(), e.source.as_str()),
        ("newsletter", "grant", "link")
    );
    assert_eq!(e.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(e.user_agent.as_deref(), Some(UA));
    assert_eq!(
        e.evidence.as_deref(),
        Some(format!("unsubscribed-page en texts:{}", texts_version(&relay)).as_str())
    );
    let r = relay.send(&[email], &message("newsletter", "x")).await;
    assert!(r.contains("(1 delivered, 0 suppressed)"), "{r}");
    sink.wait_for(1, Duration::from_secs(10)).await;

    // Pressed twice: the second changes nothing.
    let again = post_form(&u, "undo=1").await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(events(&relay, email).await.len(), before + 1);
    // One-click wins over a stray undo field: a mail client never undoes.
    post_form(&u, "List-Unsubscribe=One-Click&undo=1").await;
    assert_eq!(
        states(&relay, email).await,
        [("newsletter".to_owned(), Status::Withdrawn)]
    );

    // A mandatory campaign is never unsubscribed: nothing to undo.
    let n = events(&relay, email).await.len();
    let page = post_form(
        &url(&relay, Purpose::Unsubscribe, &id, Some("invoices")),
        "undo=1",
    )
    .await;
    assert!(page.body.contains("these messages are always sent"));
    assert_eq!(events(&relay, email).await.len(), n);
}
both_stores!(undo_on_the_unsubscribed_page_records_a_grant_with_its_proof);

async fn undoing_unsubscribe_from_all_lets_earlier_choices_apply_in_french() {
    let (_sink, relay) = start_with_http(WHO).await;
    let email = "bea@example.net";
    let id = subject(&relay, email, &[("newsletter", Action::Grant)]).await;
    let u = url(&relay, Purpose::Unsubscribe, &id, None);
    let fr = ("Accept-Language", "fr-FR,fr;q=0.9");
    let done = post_with(&u, fr, "List-Unsubscribe=One-Click").await;
    assert!(
        done.body
            .contains("<h1>Votre désabonnement de tous nos messages est enregistré.</h1>"),
        "{}",
        done.body
    );
    assert!(
        done.body
            .contains("<p>Vous avez changé d&#39;avis\u{a0}?</p>")
    );
    assert!(done.body.contains(">Annuler le désabonnement</button>"));
    for campaign in ["newsletter", "prospecting"] {
        let r = relay.send(&[email], &message(campaign, "x")).await;
        assert!(r.contains("(0 delivered, 1 suppressed)"), "{campaign}: {r}");
    }

    let page = post_with(&u, fr, "undo=1").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains("<h1>Votre désabonnement de tous nos messages est annulé.</h1>"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("Vos choix précédents s&#39;appliquent de nouveau")
    );
    let e = events(&relay, email).await.pop().expect("event");
    assert_eq!(
        (e.campaign.as_str(), e.action.as_str(), e.source.as_str()),
        ("*", "grant", "link")
    );
    assert_eq!(
        e.evidence.as_deref(),
        Some(format!("unsubscribed-page fr texts:{}", texts_version(&relay)).as_str())
    );
    // The newsletter grant before and the opt-out default apply again.
    for campaign in ["newsletter", "prospecting"] {
        let r = relay.send(&[email], &message(campaign, "x")).await;
        assert!(r.contains("(1 delivered, 0 suppressed)"), "{campaign}: {r}");
    }
}
both_stores!(undoing_unsubscribe_from_all_lets_earlier_choices_apply_in_french);

async fn undo_for_a_double_opt_in_campaign_is_a_grant_without_a_new_confirmation() {
    let (sink, relay) = start_with_http(WHO).await;
    let email = "cy@example.net";
    let id = subject(
        &relay,
        email,
        &[("digest", Action::Request), ("digest", Action::Confirm)],
    )
    .await;
    let u = url(&relay, Purpose::Unsubscribe, &id, Some("digest"));
    post_form(&u, "confirm=1").await;
    let page = post_form(&u, "undo=1").await;
    assert!(
        page.body
            .contains("Your unsubscription from Weekly digest is cancelled."),
        "{}",
        page.body
    );
    let actions: Vec<String> = events(&relay, email)
        .await
        .into_iter()
        .map(|e| e.action.as_str().to_owned())
        .collect();
    assert_eq!(actions, ["request", "confirm", "withdraw", "grant"]);
    // No confirmation mail: the next mail is the campaign's own.
    let r = relay.send(&[email], &message("digest", "this week")).await;
    assert!(r.contains("(1 delivered, 0 suppressed)"), "{r}");
    let mail = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(mail.len(), 1);
    assert!(String::from_utf8_lossy(&mail[0].data).contains("this week"));
}
both_stores!(undo_for_a_double_opt_in_campaign_is_a_grant_without_a_new_confirmation);
