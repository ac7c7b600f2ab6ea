//! The processing register (`/admin/register`): the activities as
//! `consent-relay register` gives them, under the controller's name and
//! contact (GDPR Art. 30(1)(a)), or the keys to set when they are missing.

use reqwest::StatusCode;

use crate::both_stores;
use crate::common::console::{self, Operator, VIEWER};
use crate::common::sink::Sink;

async fn the_register_names_the_controller() {
    let sink = Sink::start().await;
    let mut relay = console::start_edited(&sink, |text| {
        let public = "public_url = \"http://127.0.0.1:8080\"";
        assert!(text.contains(public), "config_text changed");
        text.replacen(
            public,
            &format!(
                "{public}\norganisation = \"Ex & Co\"\ncontact = \"dpo@example.com\"\n\
                 privacy_url = \"https://example.com/privacy?lang=en\""
            ),
            1,
        )
    })
    .await;
    let mut viewer = Operator::signed_in(&relay, VIEWER.1).await;
    let page = viewer.get("/admin/register").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let body = &page.body;
    assert!(
        body.contains("<td>Controller</td><td>Ex &amp; Co</td>"),
        "{body}"
    );
    assert!(
        body.contains("<a href=\"mailto:dpo@example.com\">dpo@example.com</a>"),
        "{body}"
    );
    assert!(
        body.contains("<a href=\"https://example.com/privacy?lang=en\">"),
        "{body}"
    );
    assert!(!body.contains("not configured"), "{body}");
    // The activities are there too, the relay's own last.
    let newsletter = body.find("<code>newsletter</code>").expect("newsletter");
    let proof = body
        .find("<code>relay:consent-proof</code>")
        .expect("proof");
    assert!(newsletter < proof);

    let mut fr = Operator::signed_in(&relay, VIEWER.1).await.french();
    let page = fr.get("/admin/register").await;
    assert!(
        page.body
            .contains("<td>Responsable du traitement</td><td>Ex &amp; Co</td>"),
        "{}",
        page.body
    );
    relay.stop().await;
}
both_stores!(the_register_names_the_controller);

async fn the_register_says_which_keys_name_the_controller() {
    let sink = Sink::start().await;
    let mut relay = console::start(&sink).await;
    let mut viewer = Operator::signed_in(&relay, VIEWER.1).await;
    let page = viewer.get("/admin/register").await;
    assert_eq!(page.status, StatusCode::OK);
    for key in ["organisation", "contact", "privacy_url"] {
        assert!(
            page.body
                .contains(&format!("not configured: set <code>[http] {key}</code>")),
            "{key}: {}",
            page.body
        );
    }
    relay.stop().await;
}
both_stores!(the_register_says_which_keys_name_the_controller);
