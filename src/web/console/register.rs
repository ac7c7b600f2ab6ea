//! `/admin/register`: the record of processing activities (GDPR Art. 30)
//! the configuration implies, as `consent-relay register` prints it
//! (`rights::register` builds it; this only lays it out).

use axum::extract::State;
use axum::response::Response;

use super::Desk;
use super::layout::{Nav, Page};
use super::table::Table;
use crate::rights::register;
use crate::web::WebState;
use crate::web::html::escape;

pub(super) async fn show(State(web): State<WebState>, desk: Desk) -> Response {
    let reg = register::register(&web.config);
    let mut t = Table::new(&[
        desk.t("Activity", "Activité"),
        desk.t("Purpose", "Finalité"),
        desk.t("Policy", "Politique"),
        desk.t("State", "État"),
        desk.t("Legal basis", "Base légale"),
        desk.t("Consent lasts", "Durée du consentement"),
        desk.t("Retention", "Conservation"),
        desk.t("Recipients", "Destinataires"),
    ]);
    for a in &reg.activities {
        t.row(&[
            format!("<code>{}</code>", escape(&a.id)),
            escape(&a.purpose),
            escape(a.policy.as_deref().unwrap_or("—")),
            escape(a.state.as_deref().unwrap_or("—")),
            format!(
                "{}<br><span class=\"muted\">{}</span>",
                escape(&a.legal_basis),
                escape(&a.article)
            ),
            a.consent_max_age_days
                .map(|d| format!("{d} {}", desk.t("days", "jours")))
                .unwrap_or_else(|| "—".into()),
            escape(&a.retention),
            escape(&a.recipients.join(", ")),
        ]);
    }
    let who = &reg.controller;
    let unset = |key: &str| {
        format!(
            "<span class=\"muted\">{} <code>[http] {key}</code></span>",
            desk.t("not configured: set", "non configuré : définir")
        )
    };
    let mut controller = Table::new(&[desk.t("Field", "Champ"), desk.t("Value", "Valeur")]);
    controller.row(&[
        escape(desk.t("Controller", "Responsable du traitement")),
        who.organisation
            .as_deref()
            .map_or_else(|| unset("organisation"), escape),
    ]);
    controller.row(&[
        escape(desk.t("Data-protection contact", "Contact protection des données")),
        who.contact.as_deref().map_or_else(
            || unset("contact"),
            |c| format!("<a href=\"mailto:{0}\">{0}</a>", escape(c)),
        ),
    ]);
    controller.row(&[
        escape(desk.t("Privacy notice", "Politique de confidentialité")),
        who.privacy_url.as_deref().map_or_else(
            || unset("privacy_url"),
            |u| format!("<a href=\"{0}\">{0}</a>", escape(u)),
        ),
    ]);
    let controller = controller.html(desk.t(
        "Who keeps this register (Art. 30(1)(a))",
        "Qui tient ce registre (art. 30(1)(a))",
    ));
    let body = format!(
        "{controller}<p>{} <code>{}</code>. {}</p>\n{}",
        desk.t("Processing done by the relay", "Traitements faits par le relais"),
        escape(&reg.relay),
        desk.t(
            "Built from the configuration: it changes when the configuration does. <code>consent-relay register --json</code> gives the same.",
            "Établi d'après la configuration : il change avec elle. <code>consent-relay register --json</code> donne le même.",
        ),
        t.html(desk.t("Processing activities", "Activités de traitement")),
    );
    Page::new(
        desk.t("Processing register", "Registre des traitements"),
        Nav::Register,
    )
    .body(body)
    .render(&web, &desk)
}
