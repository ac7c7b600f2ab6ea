//! `/admin/audit`: the audit trail (`Store::audit`), newest first, paged,
//! filtered by operator and by action: when, who (the operator's name, and
//! whether through the console, the API or the command line), what, about
//! whom (the subject, linked to the person while their address is still
//! held), and the detail. Read only, for every role: it is what the
//! controller shows to account for what its operators did.

use std::collections::HashMap;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::Desk;
use super::layout::{Nav, Page};
use super::parts::{self, PAGE_ROWS, Query};
use super::table::Table;
use crate::store::{AuditAction, AuditFilter, AuditRow, Via};
use crate::time::format_time;
use crate::web::WebState;
use crate::web::html::escape;

const PATH: &str = "/admin/audit";

/// The longest operator name the filter takes (names are short).
const MAX_NAME: usize = 200;

pub(super) async fn show(
    State(web): State<WebState>,
    desk: Desk,
    RawQuery(raw): RawQuery,
) -> Response {
    let query = Query::of(raw);
    let operator = query.get("operator");
    let action = match query.get("action") {
        None => None,
        Some(a) => match AuditAction::ALL.iter().find(|x| x.as_str() == a) {
            Some(x) => Some(*x),
            None => return bad_query(&web, &desk),
        },
    };
    let Ok(before) = query.before() else {
        return bad_query(&web, &desk);
    };
    if operator.is_some_and(|o| o.chars().count() > MAX_NAME) {
        return bad_query(&web, &desk);
    }
    let filter = AuditFilter {
        actor: operator.map(str::to_owned),
        action,
        subject_id: None,
        before_id: before,
        limit: PAGE_ROWS,
    };
    let rows = match web.store.audit(&filter).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(cause = %e, "console: cannot read the audit trail");
            return super::layout::unavailable(&web, desk.lang);
        }
    };
    let addresses = match addresses(&web, &rows).await {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(cause = %e, "console: cannot read the audit trail's subjects");
            return super::layout::unavailable(&web, desk.lang);
        }
    };
    let mut body = filter_form(&web, &desk, operator, action);
    let mut t = Table::new(&[
        desk.t("When", "Quand"),
        desk.t("Who", "Qui"),
        desk.t("What", "Quoi"),
        desk.t("About whom", "À propos de qui"),
        desk.t("On", "Sur"),
        desk.t("Detail", "Détail"),
    ]);
    for r in &rows {
        t.row(&[
            escape(&format_time(r.at)),
            format!(
                "<strong>{}</strong> <span class=\"tag\">{}</span>",
                escape(&r.actor),
                escape(via(&desk, r.via))
            ),
            format!(
                "{}<br><code class=\"muted\">{}</code>",
                escape(action_name(&desk, r.action)),
                escape(r.action.as_str())
            ),
            subject(&desk, r, &addresses),
            r.target
                .as_deref()
                .map(|t| format!("<code>{}</code>", escape(t)))
                .unwrap_or_else(|| "—".into()),
            r.detail
                .as_deref()
                .map(escape)
                .unwrap_or_else(|| "—".into()),
        ]);
    }
    body.push_str(&t.html(desk.t(
        "Changes made by operators, newest first",
        "Modifications faites par les opérateurs, les plus récentes d'abord",
    )));
    let action_name = action.map(|a| a.as_str()).unwrap_or_default();
    body.push_str(&parts::pager(
        &desk,
        PATH,
        &[
            ("operator", operator.unwrap_or_default()),
            ("action", action_name),
        ],
        before.is_some(),
        parts::next_cursor(rows.len(), rows.last().map(|r| r.id)),
    ));
    Page::new(desk.t("Audit trail", "Journal d'audit"), Nav::Audit)
        .body(body)
        .render(&web, &desk)
}

/// What the store holds of each subject the rows name (through a merge
/// to the subject it became): `Some(address)`, `Some(None)` once erased,
/// `None` when it holds no such subject.
type Subjects = HashMap<String, Option<Option<String>>>;

async fn addresses(
    web: &WebState,
    rows: &[AuditRow],
) -> Result<Subjects, crate::store::StoreError> {
    let mut found = HashMap::new();
    for id in rows.iter().filter_map(|r| r.subject_id.as_deref()) {
        if found.contains_key(id) {
            continue;
        }
        let subject = web.store.subject_by_id(id).await?.map(|s| s.address);
        found.insert(id.to_owned(), subject);
    }
    Ok(found)
}

/// Whom a row is about: the person (linked) while their address is held,
/// else the subject id alone.
fn subject(desk: &Desk, r: &AuditRow, subjects: &Subjects) -> String {
    let Some(id) = r.subject_id.as_deref() else {
        return "—".into();
    };
    match subjects.get(id) {
        Some(Some(Some(address))) => format!(
            "{}<br><code class=\"muted\">{}</code>",
            parts::person_link(desk, address),
            escape(id)
        ),
        Some(Some(None)) => format!(
            "<code>{}</code> <span class=\"muted\">({})</span>",
            escape(id),
            desk.t("erased", "effacée")
        ),
        _ => format!("<code>{}</code>", escape(id)),
    }
}

/// The filter: an operator (the configured ones offered; a command-line
/// user may be anyone) and an action.
fn filter_form(
    web: &WebState,
    desk: &Desk,
    operator: Option<&str>,
    action: Option<AuditAction>,
) -> String {
    let mut names = String::new();
    for o in &web.config.http.operators {
        names.push_str(&format!("<option value=\"{}\">", escape(&o.name)));
    }
    let mut actions = format!(
        "<option value=\"\">{}</option>",
        desk.t("every action", "toutes les actions")
    );
    for a in AuditAction::ALL {
        actions.push_str(&format!(
            "<option value=\"{}\"{}>{}</option>",
            escape(a.as_str()),
            if Some(a) == action { " selected" } else { "" },
            escape(action_name(desk, a))
        ));
    }
    format!(
        "<form class=\"search\" method=\"get\" action=\"{action}\" role=\"search\">\
         <div><label for=\"operator\">{operator_label}</label>\
         <input type=\"search\" id=\"operator\" name=\"operator\" list=\"operators\" value=\"{value}\" maxlength=\"{MAX_NAME}\">\
         <datalist id=\"operators\">{names}</datalist></div>\
         <div><label for=\"action\">{action_label}</label>\
         <select id=\"action\" name=\"action\">{actions}</select></div>\
         <button type=\"submit\">{show}</button></form>\n",
        action = escape(&desk.href(PATH)),
        operator_label = desk.t("Operator", "Opérateur"),
        value = escape(operator.unwrap_or_default()),
        action_label = desk.t("Action", "Action"),
        show = desk.t("Show", "Afficher"),
    )
}

fn via(desk: &Desk, via: Via) -> &'static str {
    match via {
        Via::Console => desk.t("console", "console"),
        Via::Api => desk.t("API", "API"),
        Via::Cli => desk.t("command line", "ligne de commande"),
    }
}

fn action_name(desk: &Desk, a: AuditAction) -> &'static str {
    match a {
        AuditAction::ConsentGrant => desk.t("consent recorded", "consentement enregistré"),
        AuditAction::ConsentWithdraw => desk.t("consent withdrawn", "consentement retiré"),
        AuditAction::ConsentRequest => desk.t(
            "confirmation requested (double opt-in)",
            "confirmation demandée (double opt-in)",
        ),
        AuditAction::ConsentConfirm => desk.t("confirmation recorded", "confirmation enregistrée"),
        AuditAction::ConsentImport => desk.t("consent imported", "consentements importés"),
        AuditAction::SubjectErase => desk.t("person erased", "personne effacée"),
        AuditAction::SubjectExport => desk.t("person's data exported", "données exportées"),
        AuditAction::SuppressionRemove => desk.t("suppression removed", "suppression retirée"),
        AuditAction::CampaignPause => desk.t("campaign paused", "campagne mise en pause"),
        AuditAction::CampaignResume => desk.t("campaign resumed", "campagne reprise"),
        AuditAction::CampaignDropHeld => {
            desk.t("held copies dropped", "copies retenues abandonnées")
        }
        AuditAction::DeliveryRetry => desk.t("copy retried now", "copie réessayée"),
        AuditAction::DeliveryRelease => desk.t("held copy released", "copie retenue libérée"),
        AuditAction::DeliveryDrop => desk.t("copy dropped", "copie abandonnée"),
        AuditAction::FeedbackSubmit => desk.t("report submitted", "rapport soumis"),
        AuditAction::SignIn => desk.t("signed in", "connexion"),
        AuditAction::SignInRefused => desk.t("sign-in refused", "connexion refusée"),
        AuditAction::SignOut => desk.t("signed out", "déconnexion"),
    }
}

fn bad_query(web: &WebState, desk: &Desk) -> Response {
    parts::problem(
        web,
        desk,
        StatusCode::BAD_REQUEST,
        Nav::Audit,
        desk.t(
            "This address asks for rows the audit trail cannot filter by (action is one of the list's; before is a row's number).",
            "Cette adresse demande un filtre que le journal n'a pas (action est l'une de la liste ; before est un numéro de ligne).",
        ),
        PATH,
    )
}
