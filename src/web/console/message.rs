//! `/admin/message?id=`: a message's trace, by its queue id (the `250
//! 2.0.0 queued as ID` the CRM got) or its `Message-ID` header (which may
//! name several messages: each is shown, newest first). What it was (the
//! CRM's mail or the relay's own), where it came from, each recipient's
//! decision with its reason and the consent event it rests on, and each
//! copy with every attempt upstream and its reply. One read
//! (`Store::message_trace`).

use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::Desk;
use super::layout::{Nav, Page};
use super::table::Table;
use crate::store::{DeliveryStatus, MessageKind, MessageTrace};
use crate::time::format_time;
use crate::web::WebState;
use crate::web::html::escape;

#[derive(Debug, Deserialize)]
pub(super) struct Params {
    id: Option<String>,
}

pub(super) async fn show(
    State(web): State<WebState>,
    desk: Desk,
    Query(params): Query<Params>,
) -> Response {
    let id = params.id.as_deref().map(str::trim).unwrap_or_default();
    let mut body = search_form(&desk, id);
    let title = desk.t("Message trace", "Trace d'un message");
    if id.is_empty() {
        return Page::new(title, Nav::Message)
            .body(body)
            .render(&web, &desk);
    }
    let traces = match web.store.message_trace(id).await {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(cause = %e, "console: cannot read a message trace");
            return super::layout::unavailable(&web, desk.lang);
        }
    };
    if traces.is_empty() {
        body.push_str(&format!(
            "<p class=\"problem\" role=\"status\">{} <code class=\"mono\">{}</code>. {}</p>\n",
            desk.t("No message has the id", "Aucun message n'a l'identifiant"),
            escape(id),
            desk.t(
                "Give the queue id of the relay's 250 reply, or the Message-ID header (with or without < >). Messages purged under [retention] are gone.",
                "Donnez l'identifiant de file de la réponse 250 du relais, ou l'en-tête Message-ID (avec ou sans < >). Les messages purgés selon [retention] n'y sont plus.",
            ),
        ));
    } else if traces.len() > 1 {
        body.push_str(&format!(
            "<p class=\"notice\" role=\"status\">{} {}</p>\n",
            traces.len(),
            desk.t(
                "messages have this Message-ID (newest first).",
                "messages ont ce Message-ID (du plus récent au plus ancien)."
            )
        ));
    }
    for trace in &traces {
        body.push_str(&one(&desk, &web, trace));
    }
    Page::new(title, Nav::Message)
        .body(body)
        .render(&web, &desk)
}

fn search_form(desk: &Desk, id: &str) -> String {
    format!(
        "<form class=\"search\" method=\"get\" action=\"{action}\" role=\"search\">\
         <div><label for=\"id\">{label}</label>\
         <input type=\"search\" id=\"id\" name=\"id\" value=\"{id}\" required></div>\
         <button type=\"submit\">{find}</button></form>\n",
        action = escape(&desk.href("/admin/message")),
        label = desk.t(
            "Queue id or Message-ID",
            "Identifiant de file ou Message-ID"
        ),
        id = escape(id),
        find = desk.t("Find", "Chercher"),
    )
}

/// What kind of message it is, in words.
fn kind_words(desk: &Desk, kind: MessageKind) -> &'static str {
    match kind {
        MessageKind::Relay => desk.t("the CRM's mail, relayed", "courriel du CRM, relayé"),
        MessageKind::Dsn => desk.t(
            "a delivery status notification the relay wrote to a sender",
            "avis de non-remise écrit par le relais à un expéditeur",
        ),
        MessageKind::Notice => desk.t(
            "the relay's own double opt-in confirmation request",
            "demande de confirmation (double opt-in) écrite par le relais",
        ),
        MessageKind::ErasureNotice => desk.t(
            "the relay's notice of an erasure",
            "avis d'effacement écrit par le relais",
        ),
    }
}

fn status_tag(desk: &Desk, status: DeliveryStatus) -> String {
    let class = match status {
        DeliveryStatus::Sent => "good",
        DeliveryStatus::Failed | DeliveryStatus::Dropped => "bad",
        DeliveryStatus::Deferred | DeliveryStatus::Held => "warn",
        _ => "",
    };
    let _ = desk;
    format!("<span class=\"tag {class}\">{}</span>", status.as_str())
}

fn person_link(_desk: &Desk, recipient: &str) -> String {
    if recipient.starts_with("erased:") {
        return format!("<code class=\"mono\">{}</code>", escape(recipient));
    }
    escape(recipient)
}

/// One message's trace.
fn one(desk: &Desk, web: &WebState, t: &MessageTrace) -> String {
    let campaign = if t.campaign.is_empty() {
        "—".to_owned()
    } else {
        let label = web
            .config
            .campaign(&t.campaign)
            .map(|c| {
                c.label_in(desk.lang, web.config.texts.default_language)
                    .to_owned()
            })
            .unwrap_or_default();
        format!("<code>{}</code> {}", escape(&t.campaign), escape(&label))
    };
    let mut facts = Table::new(&[desk.t("Field", "Champ"), desk.t("Value", "Valeur")]);
    let rows: [(&str, String); 9] = [
        (
            desk.t("Queue id", "Identifiant de file"),
            format!("<code class=\"mono\">{}</code>", escape(&t.queue_id)),
        ),
        (
            desk.t("Kind", "Nature"),
            format!(
                "<code>{}</code> — {}",
                t.kind.shown(),
                escape(kind_words(desk, t.kind))
            ),
        ),
        (desk.t("Campaign", "Campagne"), campaign),
        (
            "Message-ID",
            t.header_message_id
                .as_deref()
                .map(|m| format!("<code class=\"mono\">{}</code>", escape(m)))
                .unwrap_or_else(|| "—".into()),
        ),
        (
            desk.t("Envelope sender", "Expéditeur d'enveloppe"),
            if t.mail_from.is_empty() {
                "&lt;&gt;".into()
            } else {
                escape(&t.mail_from)
            },
        ),
        (
            desk.t("Client", "Client"),
            format!(
                "{} (HELO {}){}",
                escape(&t.client_ip),
                escape(&t.helo),
                t.auth_user
                    .as_deref()
                    .map(|u| format!(", AUTH {}", escape(u)))
                    .unwrap_or_default()
            ),
        ),
        (
            desk.t("Received", "Reçu"),
            escape(&format_time(t.received_at)),
        ),
        (
            desk.t("Size", "Taille"),
            format!("{} {}", t.size, desk.t("bytes", "octets")),
        ),
        (
            desk.t("Body", "Corps"),
            escape(if t.body_held {
                desk.t("held", "conservé")
            } else {
                desk.t("purged or erased", "purgé ou effacé")
            }),
        ),
    ];
    for (name, value) in rows {
        facts.row(&[escape(name), value]);
    }
    let mut decisions = Table::new(&[
        desk.t("Recipient", "Destinataire"),
        desk.t("Outcome", "Décision"),
        desk.t("Reason", "Motif"),
        desk.t("Consent event", "Événement de consentement"),
        desk.t("Stage", "Étape"),
        desk.t("At", "Le"),
    ]);
    for d in &t.decisions {
        let outcome_class = if d.outcome.as_str() == "deliver" {
            "good"
        } else {
            "bad"
        };
        decisions.row(&[
            person_link(desk, &d.recipient),
            format!(
                "<span class=\"tag {outcome_class}\">{}</span>",
                d.outcome.as_str()
            ),
            format!("<code>{}</code>", d.reason.as_str()),
            d.event_id
                .map(|e| format!("#{e}"))
                .unwrap_or_else(|| "—".into()),
            escape(&d.stage),
            escape(&format_time(d.at)),
        ]);
    }
    let mut copies = Table::new(&[
        desk.t("Copy to", "Copie à"),
        desk.t("Status", "État"),
        desk.t("Attempts and replies", "Tentatives et réponses"),
        desk.t("Next attempt / ended", "Prochaine tentative / fin"),
    ]);
    for c in &t.deliveries {
        let mut attempts = String::new();
        for a in &c.attempt_log {
            attempts.push_str(&format!(
                "<div>{} {} <code class=\"mono\">{}</code></div>",
                escape(&format_time(a.at)),
                status_tag(desk, a.status),
                escape(&a.reply)
            ));
        }
        if attempts.is_empty() {
            attempts = match &c.last_reply {
                Some(r) => format!("<code class=\"mono\">{}</code>", escape(r)),
                None => format!(
                    "<span class=\"muted\">{}</span>",
                    desk.t("not tried yet", "pas encore tentée")
                ),
            };
        }
        copies.row(&[
            escape(&c.sent_to),
            format!(
                "{} ({} {})",
                status_tag(desk, c.status),
                c.attempts,
                desk.t("attempts", "tentatives")
            ),
            attempts,
            escape(&format_time(c.next_attempt_at)),
        ]);
    }
    format!(
        "<section class=\"card\"><h2>{} <code class=\"mono\">{}</code></h2>\n{}{}{}</section>\n",
        desk.t("Message", "Message"),
        escape(&t.queue_id),
        facts.html(desk.t("What it is", "Ce que c'est")),
        decisions.html(desk.t(
            "Each recipient's decision",
            "La décision pour chaque destinataire"
        )),
        copies.html(desk.t("Each copy upstream", "Chaque copie vers l'amont")),
    )
}
