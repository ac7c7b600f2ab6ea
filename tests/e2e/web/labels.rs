//! End to end: campaign labels per language (`label = { en = …, fr = … }`)
//! on every page, in the double opt-in confirmation mail and in `GET
//! /api/v1/campaigns`, each in the visitor's language with its fallback,
//! and French texts agreeing with the label ("de la Lettre…",
//! "d'Offres…"), overridden texts included. Over real HTTP and SMTP
//! against the relay started in-process.

use std::time::Duration;

use super::asking::{PUBLIC, post_with, start_edited, url};
use super::pages::{Page, client, get, get_lang, subject};
use crate::both_stores;
use crate::common::admin::ADMIN_TOKEN;
use crate::common::relay::TestRelay;
use crate::common::sink::Sink;
use consent_relay::token::Purpose;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The usual campaigns with labels per language (`invoices` in French
/// only, `digest` in French mail), and a French override that has
/// `{label}` twice.
async fn start() -> (Sink, TestRelay) {
    start_edited(|text, _| {
        let mut text = text;
        for (from, to) in [
            (
                "label = \"Newsletter\"",
                "label = { en = \"Newsletter\", fr = \"la Lettre d'information\" }",
            ),
            (
                "label = \"Offers\"",
                "label = { en = \"Offers for professionals\", fr = \"Offres pour les professionnels\" }",
            ),
            ("label = \"Invoices\"", "label = { fr = \"les Factures\" }"),
            (
                "label = \"Weekly digest\"",
                "label = { en = \"Weekly digest\", fr = \"Hebdo des offres\" }\nlanguage = \"fr\"",
            ),
            (
                "[signing]",
                "[texts.fr]\npage_optin_done = \"C'est noté : vous recevrez {label}, et pouvez vous désabonner de {label} à tout moment.\"\n\n[signing]",
            ),
        ] {
            assert!(text.contains(from), "{from:?} not in the test config");
            text = text.replacen(from, to, 1);
        }
        assert!(text.contains(PUBLIC));
        text
    })
    .await
}

const FR: &str = "fr-FR,fr;q=0.9";

async fn post_lang(page_url: &str, lang: &str, body: &str) -> Page {
    post_with(page_url, ("Accept-Language", lang), body).await
}

fn has(page: &Page, text: &str) {
    assert!(page.body.contains(text), "{text:?} not in {}", page.body);
}

async fn pages_give_labels_in_the_visitor_language_and_french_agrees_with_them() {
    let (_sink, relay) = start().await;
    let id = subject(&relay, "ann@example.net", &[]).await;

    let news = url(&relay, Purpose::Unsubscribe, &id, Some("newsletter"));
    has(&get(&news).await, "<h1>Unsubscribe from Newsletter?</h1>");
    has(
        &get_lang(&news, FR).await,
        "<h1>Vous désabonner de la Lettre d&#39;information\u{a0}?</h1>",
    );

    let offers = url(&relay, Purpose::Unsubscribe, &id, Some("prospecting"));
    has(
        &get(&offers).await,
        "<h1>Unsubscribe from Offers for professionals?</h1>",
    );
    has(
        &get_lang(&offers, FR).await,
        "<h1>Vous désabonner d&#39;Offres pour les professionnels\u{a0}?</h1>",
    );
    has(
        &post_lang(&offers, FR, "confirm=1").await,
        "<h1>Votre désabonnement d&#39;Offres pour les professionnels est enregistré.</h1>",
    );
    has(
        &post_lang(&offers, FR, "undo=1").await,
        "<h1>Votre désabonnement d&#39;Offres pour les professionnels est annulé.</h1>",
    );
    has(
        &post_lang(&offers, "en", "confirm=1").await,
        "<h1>You are unsubscribed from Offers for professionals.</h1>",
    );

    // French only: English visitors get it too; opening a French sentence
    // its article takes a capital.
    let invoices = url(&relay, Purpose::Unsubscribe, &id, Some("invoices"));
    has(
        &get_lang(&invoices, FR).await,
        "<p>Les Factures\u{a0}: ces messages sont toujours envoyés",
    );
    has(
        &get(&invoices).await,
        "<p>les Factures: these messages are always sent",
    );

    let prefs = url(&relay, Purpose::Preferences, &id, None);
    let fr = get_lang(&prefs, FR).await;
    has(
        &fr,
        "<label for=\"c-newsletter\">La Lettre d&#39;information</label>",
    );
    has(
        &fr,
        "<label for=\"c-prospecting\">Offres pour les professionnels</label>",
    );
    has(&fr, "<label for=\"c-invoices\">Les Factures<span");
    let en = get(&prefs).await;
    has(&en, "<label for=\"c-newsletter\">Newsletter</label>");
    has(
        &en,
        "<label for=\"c-prospecting\">Offers for professionals</label>",
    );

    let optin = url(&relay, Purpose::Optin, &id, Some("newsletter"));
    has(
        &get_lang(&optin, FR).await,
        "<h1>Confirmez que vous souhaitez recevoir la Lettre d&#39;information</h1>",
    );
    // The override: `{label}` as written, `de {label}` agreeing.
    has(
        &post_lang(&optin, FR, "confirm=1").await,
        "<h1>C&#39;est noté : vous recevrez la Lettre d&#39;information, et pouvez vous \
         désabonner de la Lettre d&#39;information à tout moment.</h1>",
    );
    has(
        &post_lang(&optin, "en", "confirm=1").await,
        "<h1>Thank you: you will receive Newsletter.</h1>",
    );
}
both_stores!(pages_give_labels_in_the_visitor_language_and_french_agrees_with_them);

async fn the_confirmation_mail_is_in_the_campaign_language_with_its_label() {
    let (sink, relay) = start().await;
    let res = client()
        .post(relay.url("/api/v1/consent"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"email": "bob@example.com", "campaign": "digest", "action": "grant"}))
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let mail = sink.wait_for(1, Duration::from_secs(10)).await;
    let parsed = mail_parser::MessageParser::default()
        .parse(&mail[0].data)
        .expect("a message");
    assert_eq!(
        parsed.subject(),
        Some("Merci de confirmer\u{a0}: Hebdo des offres")
    );
    let from = parsed.from().and_then(|f| f.first()).expect("From");
    assert_eq!(from.name(), Some("Hebdo des offres"));
    let text = parsed.body_text(0).expect("a text body").into_owned();
    assert!(
        text.contains("Nous avons reçu une demande d'envoi d'Hebdo des offres à cette adresse."),
        "{text}"
    );
}
both_stores!(the_confirmation_mail_is_in_the_campaign_language_with_its_label);

async fn campaigns(relay: &TestRelay, accept_language: Option<&str>) -> Vec<Value> {
    let mut req = client()
        .get(relay.url("/api/v1/campaigns"))
        .bearer_auth(ADMIN_TOKEN);
    if let Some(lang) = accept_language {
        req = req.header("Accept-Language", lang);
    }
    let res = req.send().await.expect("GET");
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.expect("json");
    body["campaigns"].as_array().expect("campaigns").clone()
}

async fn the_api_keeps_label_and_adds_the_labels_per_language() {
    let (_sink, relay) = start().await;
    let by_id = |list: &[Value], id: &str| {
        list.iter()
            .find(|c| c["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id}"))
    };
    let en = campaigns(&relay, None).await;
    let news = by_id(&en, "newsletter");
    assert_eq!(news["label"], "Newsletter");
    assert_eq!(
        news["labels"],
        json!({"en": "Newsletter", "fr": "la Lettre d'information"})
    );
    let invoices = by_id(&en, "invoices");
    assert_eq!(invoices["label"], "les Factures");
    assert_eq!(
        invoices["labels"],
        json!({"en": "les Factures", "fr": "les Factures"})
    );
    // One text for every language: `label` only, as before.
    let old = by_id(&en, "old");
    assert_eq!(old["label"], "Old");
    assert!(old.get("labels").is_none(), "{old}");

    let fr = campaigns(&relay, Some(FR)).await;
    assert_eq!(by_id(&fr, "newsletter")["label"], "la Lettre d'information");
    assert_eq!(by_id(&fr, "digest")["label"], "Hebdo des offres");
    assert_eq!(by_id(&fr, "old")["label"], "Old");
    assert_eq!(
        by_id(&fr, "newsletter")["labels"],
        by_id(&en, "newsletter")["labels"]
    );
}
both_stores!(the_api_keeps_label_and_adds_the_labels_per_language);

#[test]
fn check_config_names_bad_labels_and_logos_and_warns_without_the_controller() {
    let dir = tempfile::tempdir().expect("temp dir");
    let base = crate::common::relay::config_text(dir.path(), "smtp://127.0.0.1:25", "", "");
    std::fs::write(dir.path().join("logo.gif"), b"GIF89a\x01\x00").expect("write logo");
    let bad = base
        .replacen(
            "label = \"Newsletter\"",
            "label = { de = \"Rundbrief\" }",
            1,
        )
        .replacen(
            PUBLIC,
            &format!(
                "{PUBLIC}\norganisation = \"Ex\"\ncontact = \"nobody\"\nlogo_file = \"logo.gif\""
            ),
            1,
        );
    let path = dir.path().join("consent-relay.toml");
    let run = |text: &str| {
        std::fs::write(&path, text).expect("write config");
        std::process::Command::new(env!("CARGO_BIN_EXE_consent-relay"))
            .args(["check-config", "--config"])
            .arg(&path)
            .output()
            .expect("run check-config")
    };
    let out = run(&bad);
    assert_eq!(out.status.code(), Some(78), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    let file = path.display().to_string();
    for line in [
        format!("{file}: campaign[0].label.de: \"de\" is not a language (use \"en\" or \"fr\")"),
        format!(
            "{file}: http.contact: \"nobody\" is not a plain address (use e.g. \"dpo@example.com\")"
        ),
        format!(
            "{file}: http.logo_file: {} is not a PNG, JPEG or SVG image (convert the logo to one of these)",
            dir.path().join("logo.gif").display()
        ),
    ] {
        assert!(err.contains(&line), "{line:?} not in {err}");
    }

    let out = run(&base);
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "warning: {file}: http.organisation, http.privacy_url, http.contact: not set: GDPR Art. 13"
        )),
        "{err}"
    );
}
