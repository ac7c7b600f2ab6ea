//! The person page's action forms, for the roles that may change people
//! (what each posts to is [`super::actions`]'s): record consent, export,
//! remove the suppressions, erase; for a viewer, a line saying the role
//! reads only. Every form carries the session's CSRF token and the
//! person's address.

use crate::consent::ALL_CAMPAIGNS;
use crate::consent::identity::Identity;
use crate::store::Person;
use crate::web::WebState;
use crate::web::console::Desk;
use crate::web::html::escape;

/// The action forms for `who` (`p`: what is held), or a line saying the
/// operator's role reads only.
pub(super) fn forms(web: &WebState, desk: &Desk, who: &Identity, p: Option<&Person>) -> String {
    if !desk.role.may_change_people() {
        return format!(
            "<p class=\"muted\">{}</p>\n",
            desk.t(
                "Your role reads only: recording consent, export, erasure and removing suppressions are for the admin and DPO roles.",
                "Votre rôle est en lecture seule : enregistrer un consentement, exporter, effacer et lever des suppressions reviennent aux rôles admin et DPO.",
            )
        );
    }
    let live = p.is_some_and(|p| !p.erased());
    let hidden = format!(
        "{}<input type=\"hidden\" name=\"address\" value=\"{}\">",
        desk.csrf_field(),
        escape(who.spelling())
    );
    let mut out = format!(
        "<h2 id=\"actions\">{}</h2>\n<div class=\"grid\">\n",
        desk.t("Actions", "Actions")
    );
    out.push_str(&consent_form(web, desk, &hidden));
    if live {
        out.push_str(&format!(
            "<section class=\"card\"><h3>{}</h3><p>{}</p>\
             <form method=\"post\" action=\"{}\">{hidden}<button type=\"submit\" class=\"quiet\">{}</button></form></section>\n",
            desk.t("Export", "Export"),
            desk.t(
                "Everything held about the person, as the API's access document (JSON). The export is recorded in the audit trail.",
                "Tout ce qui est conservé sur la personne, comme le document d'accès de l'API (JSON). L'export est inscrit au journal d'audit.",
            ),
            escape(&desk.href("/admin/person/export")),
            desk.t("Download the export", "Télécharger l'export"),
        ));
    }
    if live && p.is_some_and(|p| p.suppressions.iter().any(|s| s.active)) {
        out.push_str(&format!(
            "<section class=\"card\"><h3>{}</h3>\
             <form method=\"post\" action=\"{}\">{hidden}\
             <div class=\"field\"><label for=\"reason\">{}</label>\
             <textarea id=\"reason\" name=\"reason\" required maxlength=\"2000\"></textarea></div>\
             <button type=\"submit\">{}</button></form></section>\n",
            desk.t("Remove the suppressions", "Lever les suppressions"),
            escape(&desk.href("/admin/person/suppression")),
            desk.t(
                "Why the person may be mailed again (kept with your name)",
                "Pourquoi la personne peut de nouveau recevoir du courrier (conservé avec votre nom)",
            ),
            desk.t("Remove", "Lever"),
        ));
    }
    if live {
        out.push_str(&format!(
            "<section class=\"card\"><h3>{}</h3><p>{}</p>\
             <form method=\"post\" action=\"{}\">{hidden}\
             <div class=\"field\"><label for=\"confirm\">{}</label>\
             <input type=\"text\" id=\"confirm\" name=\"confirm\" autocomplete=\"off\" spellcheck=\"false\" required></div>\
             <button type=\"submit\" class=\"danger\">{}</button></form></section>\n",
            desk.t("Erase", "Effacer"),
            desk.t(
                "Right to be forgotten: the address and the proof go for good; a keyed hash stays so that no mail reaches them again. This cannot be undone.",
                "Droit à l'oubli : l'adresse et les preuves disparaissent pour de bon ; une empreinte reste pour qu'aucun courrier ne leur parvienne plus. C'est irréversible.",
            ),
            escape(&desk.href("/admin/person/erase")),
            desk.t(
                "Type the address again to confirm",
                "Saisissez de nouveau l'adresse pour confirmer"
            ),
            desk.t("Erase this person", "Effacer cette personne"),
        ));
    }
    out.push_str("</div>\n");
    out
}

/// The form recording a grant or a withdrawal.
fn consent_form(web: &WebState, desk: &Desk, hidden: &str) -> String {
    let campaigns = super::campaigns(&web.config);
    let mut options = String::new();
    for c in campaigns {
        options.push_str(&format!(
            "<option value=\"{}\">{} ({})</option>",
            escape(&c.id),
            escape(c.label_in(desk.lang, web.config.texts.default_language)),
            escape(&c.id)
        ));
    }
    options.push_str(&format!(
        "<option value=\"{ALL_CAMPAIGNS}\">* — {}</option>",
        desk.t(
            "every campaign (withdrawal only)",
            "toutes les campagnes (retrait seulement)"
        )
    ));
    format!(
        "<section class=\"card\"><h3>{title}</h3>\
         <form method=\"post\" action=\"{action}\">{hidden}\
         <div class=\"field\"><label for=\"campaign\">{campaign}</label><select id=\"campaign\" name=\"campaign\">{options}</select></div>\
         <fieldset class=\"field\"><legend>{change}</legend>\
         <label><input type=\"radio\" name=\"action\" value=\"withdraw\" checked> {withdraw}</label>\
         <label><input type=\"radio\" name=\"action\" value=\"grant\"> {grant}</label></fieldset>\
         <div class=\"field\"><label for=\"evidence\">{evidence}</label>\
         <textarea id=\"evidence\" name=\"evidence\" required maxlength=\"2000\" aria-describedby=\"evidence-hint\"></textarea>\
         <p id=\"evidence-hint\" class=\"muted\">{hint}</p></div>\
         <button type=\"submit\">{record}</button></form></section>\n",
        title = desk.t("Record consent", "Enregistrer un consentement"),
        action = escape(&desk.href("/admin/person/consent")),
        campaign = desk.t("Campaign", "Campagne"),
        change = desk.t("Change", "Changement"),
        withdraw = desk.t("Withdraw", "Retrait"),
        grant = desk.t(
            "Grant (a double opt-in campaign mails the person a confirmation link)",
            "Accord (une campagne en double opt-in envoie un lien de confirmation à la personne)"
        ),
        evidence = desk.t(
            "What the person said and where",
            "Ce que la personne a dit et où"
        ),
        hint = desk.t(
            "For example: “asked by phone on 3 March to stop the newsletter, ticket 4411”. Recorded as the event's proof, source admin, with your name.",
            "Par exemple : « a demandé par téléphone le 3 mars l'arrêt de la lettre, ticket 4411 ». Enregistré comme preuve de l'événement, source admin, avec votre nom.",
        ),
        record = desk.t("Record", "Enregistrer"),
    )
}
