//! The person page's mail tables: the decisions per message, each copy's
//! outcome and upstream reply, the suppressions, and the operators'
//! actions about the person. Values escaped here; words in FR and EN.

use super::story::{event_link, kind_name, message_link, more, opt, outcome, time};
use crate::store::{AuditRow, DeliveryStatus, Person};
use crate::web::console::Desk;
use crate::web::console::table::Table;
use crate::web::html::escape;

/// The decisions, one per message, newest first.
pub(super) fn decisions(desk: &Desk, p: &Person) -> String {
    let mut t = Table::new(&[
        desk.t("At", "Le"),
        desk.t("Queue id", "Id de file"),
        desk.t("Message", "Message"),
        desk.t("Campaign", "Campagne"),
        desk.t("Outcome", "Issue"),
        desk.t("Reason", "Motif"),
        desk.t("Stage", "Étape"),
        desk.t("Rests on", "Repose sur"),
    ]);
    for d in &p.decisions {
        t.row(&[
            time(d.at),
            message_link(desk, &d.message_id),
            match &d.header_message_id {
                Some(id) => format!(
                    "{}<br><code>{}</code>",
                    escape(kind_name(desk, d.kind)),
                    escape(id)
                ),
                None => escape(kind_name(desk, d.kind)),
            },
            format!("<code>{}</code>", escape(&d.campaign)),
            outcome(desk, d.outcome),
            format!("<code>{}</code>", escape(d.reason.as_str())),
            escape(&d.stage),
            event_link(d.event_id),
        ]);
    }
    format!(
        "<h2 id=\"decisions\">{}</h2>\n{}{}",
        desk.t("Decisions", "Décisions"),
        more(desk, p.decisions.len(), p.decisions_total),
        t.html(desk.t(
            "Decisions per message, newest first",
            "Décisions par message, de la plus récente à la plus ancienne"
        ))
    )
}

/// Each copy's outcome and the upstream's last reply.
pub(super) fn copies(desk: &Desk, p: &Person) -> String {
    let mut t = Table::new(&[
        desk.t("Queue id", "Id de file"),
        desk.t("Campaign", "Campagne"),
        desk.t("Sent to", "Envoyée à"),
        desk.t("Status", "État"),
        desk.t("Attempts", "Tentatives"),
        desk.t("Upstream reply", "Réponse du relais amont"),
        desk.t("Queued", "Mise en file"),
        desk.t("Last change", "Dernier changement"),
    ])
    .numeric(&[4]);
    for d in &p.deliveries {
        let class = match d.status {
            DeliveryStatus::Sent => "tag good",
            DeliveryStatus::Failed | DeliveryStatus::SuppressedLate | DeliveryStatus::Dropped => {
                "tag bad"
            }
            _ => "tag warn",
        };
        t.row(&[
            message_link(desk, &d.message_id),
            format!("<code>{}</code>", escape(&d.campaign)),
            escape(&d.sent_to),
            format!(
                "<span class=\"{class}\">{}</span>",
                escape(d.status.as_str())
            ),
            d.attempts.to_string(),
            opt(d.last_reply.as_deref()),
            time(d.created_at),
            time(d.updated_at),
        ]);
    }
    format!(
        "<h2 id=\"copies\">{}</h2>\n{}{}",
        desk.t("Copies", "Copies"),
        more(desk, p.deliveries.len(), p.deliveries_total),
        t.html(desk.t(
            "Copies sent upstream, newest first",
            "Copies envoyées au relais amont, de la plus récente à la plus ancienne"
        ))
    )
}

/// Every suppression, in force or not, with who removed it and why.
pub(super) fn suppressions(desk: &Desk, p: &Person) -> String {
    let mut t = Table::new(&[
        desk.t("Since", "Depuis"),
        desk.t("Kind", "Type"),
        desk.t("Reason", "Motif"),
        desk.t("Status code", "Code"),
        desk.t("Diagnostic", "Diagnostic"),
        desk.t("Campaign", "Campagne"),
        desk.t("Until", "Jusqu'au"),
        desk.t("In force", "En vigueur"),
        desk.t("Removed", "Levée"),
    ]);
    for s in &p.suppressions {
        let removed = match s.removed_at {
            Some(at) => format!(
                "{} {} <strong>{}</strong>: {}",
                time(at),
                desk.t("by", "par"),
                escape(s.removed_by.as_deref().unwrap_or("?")),
                escape(s.removed_reason.as_deref().unwrap_or_default()),
            ),
            None => "—".into(),
        };
        let force = if s.active {
            format!("<span class=\"tag bad\">{}</span>", desk.t("yes", "oui"))
        } else {
            format!("<span class=\"tag\">{}</span>", desk.t("no", "non"))
        };
        t.row(&[
            time(s.since),
            escape(&s.kind),
            format!("<code>{}</code>", escape(s.reason.as_str())),
            opt(s.status_code.as_deref()),
            opt(s.diagnostic.as_deref()),
            opt(s.campaign.as_deref()),
            s.until.map(time).unwrap_or_else(|| "—".into()),
            force,
            removed,
        ]);
    }
    format!(
        "<h2 id=\"suppressions\">{}</h2>\n{}",
        desk.t("Suppressions", "Suppressions"),
        t.html(desk.t(
            "Suppressions (bounces), removed ones too",
            "Suppressions (rebonds), levées comprises"
        ))
    )
}

/// The operators' actions about the person, newest first.
pub(super) fn audit(desk: &Desk, rows: &[AuditRow]) -> String {
    let mut t = Table::new(&[
        desk.t("At", "Le"),
        desk.t("Operator", "Opérateur"),
        desk.t("Through", "Par"),
        desk.t("Action", "Action"),
        desk.t("On", "Sur"),
        desk.t("Detail", "Détail"),
    ]);
    for r in rows {
        t.row(&[
            time(r.at),
            format!("<strong>{}</strong>", escape(&r.actor)),
            escape(r.via.as_str()),
            format!("<code>{}</code>", escape(r.action.as_str())),
            opt(r.target.as_deref()),
            opt(r.detail.as_deref()),
        ]);
    }
    format!(
        "<h2 id=\"audit\">{}</h2>\n{}",
        desk.t("Operators' actions", "Actions des opérateurs"),
        t.html(desk.t(
            "The audit trail about this person, newest first",
            "Le journal d'audit sur cette personne, du plus récent au plus ancien"
        ))
    )
}
