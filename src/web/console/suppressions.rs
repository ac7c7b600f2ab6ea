//! `/admin/suppressions`: the suppressions in force (a hard bounce, soft
//! bounces over the limit), newest first, paged as the API pages them
//! (`Store::active_suppressions`): kind, reason, status code, diagnostic,
//! source, since, until, campaign, and the person (their address, linked
//! to their page, or "erased" and the keyed hash that is left). An admin
//! or a DPO removes a person's suppressions with a reason, through the
//! store function `DELETE /api/v1/suppressions/{email}` calls, recorded
//! with their name as `removed_by`.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::Desk;
use super::layout::{Nav, Page};
use super::parts::{self, Ask, PAGE_ROWS, Query};
use super::table::Table;
use crate::consent::identity::Identity;
use crate::store::ActiveSuppression;
use crate::texts::Language;
use crate::time::format_time;
use crate::web::WebState;
use crate::web::error::WebError;
use crate::web::form::Fields;
use crate::web::html::escape;
use crate::web::origin::Site;

const PATH: &str = "/admin/suppressions";

pub(super) async fn show(
    State(web): State<WebState>,
    desk: Desk,
    RawQuery(raw): RawQuery,
) -> Response {
    let query = Query::of(raw);
    let Ok(before) = query.before() else {
        return parts::problem(
            &web,
            &desk,
            StatusCode::BAD_REQUEST,
            Nav::Suppressions,
            desk.t(
                "This address asks for a page that does not exist (before is a suppression's number).",
                "Cette adresse demande une page qui n'existe pas (before est un numéro de suppression).",
            ),
            PATH,
        );
    };
    let rows = match web.store.active_suppressions(PAGE_ROWS, before).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(cause = %e, "console: cannot read the suppressions");
            return super::layout::unavailable(&web, desk.lang);
        }
    };
    let mut body = done_notice(&desk, &query);
    body.push_str(&format!(
        "<p>{}</p>\n",
        desk.t(
            "The relay does not mail these people, whatever their consent, until the suppression ends, a new grant lifts it, or an operator removes it.",
            "Le relais n'écrit pas à ces personnes, quel que soit leur consentement, tant que la suppression court, qu'un nouvel accord ne la lève pas ou qu'un opérateur ne la retire pas.",
        )
    ));
    let may_remove = desk.role.may_change_people();
    let mut head = vec![
        desk.t("Person", "Personne"),
        desk.t("Kind", "Type"),
        desk.t("Reason", "Motif"),
        desk.t("Status", "Code"),
        desk.t("Diagnostic", "Diagnostic"),
        desk.t("Source", "Source"),
        desk.t("Campaign", "Campagne"),
        desk.t("Since", "Depuis"),
        desk.t("Until", "Jusqu'à"),
    ];
    if may_remove {
        head.push(desk.t("Remove", "Retirer"));
    }
    let mut t = Table::new(&head);
    for r in &rows {
        let s = &r.suppression;
        let mut cells = vec![
            person(&desk, r),
            escape(kind(&desk, &s.kind)),
            format!("<code>{}</code>", escape(s.reason.as_str())),
            s.status_code
                .as_deref()
                .map(|c| format!("<code>{}</code>", escape(c)))
                .unwrap_or_else(|| "—".into()),
            s.diagnostic
                .as_deref()
                .map(|d| format!("<span class=\"mono\">{}</span>", escape(d)))
                .unwrap_or_else(|| "—".into()),
            escape(source(&desk, &s.source)),
            s.campaign
                .as_deref()
                .map(|c| format!("<code>{}</code>", escape(c)))
                .unwrap_or_else(|| "—".into()),
            escape(&format_time(s.since)),
            s.until.map(|u| escape(&format_time(u))).unwrap_or_else(|| {
                desk.t("a grant or a removal", "un accord ou un retrait")
                    .to_owned()
            }),
        ];
        if may_remove {
            cells.push(match &r.address {
                Some(address) => remove_form(&desk, s.id, address),
                None => format!(
                    "<span class=\"muted\">{}</span>",
                    desk.t(
                        "erased: kept so they are never mailed",
                        "effacée : gardée pour ne plus lui écrire"
                    )
                ),
            });
        }
        t.row(&cells);
    }
    body.push_str(&t.html(desk.t(
        "Suppressions in force, newest first",
        "Suppressions en vigueur, les plus récentes d'abord",
    )));
    body.push_str(&parts::pager(
        &desk,
        PATH,
        &[],
        before.is_some(),
        parts::next_cursor(rows.len(), rows.last().map(|r| r.suppression.id)),
    ));
    Page::new(desk.t("Suppressions", "Suppressions"), Nav::Suppressions)
        .body(body)
        .render(&web, &desk)
}

/// The person: their address (linked), or "erased" and the hash left.
fn person(desk: &Desk, r: &ActiveSuppression) -> String {
    match &r.address {
        Some(a) => parts::person_link(desk, a),
        None => format!(
            "{} <code title=\"{}\">{}</code>",
            desk.t("erased", "effacée"),
            escape(desk.t(
                "the keyed hash of the address",
                "l'empreinte à clé de l'adresse"
            )),
            escape(&r.address_hash)
        ),
    }
}

fn kind<'a>(desk: &Desk, kind: &'a str) -> &'a str {
    match kind {
        "hard" => desk.t("hard bounce", "rejet définitif"),
        "soft" => desk.t("soft bounces", "rejets temporaires"),
        other => other,
    }
}

fn source<'a>(desk: &Desk, source: &'a str) -> &'a str {
    match source {
        "dsn" => desk.t("bounce report", "avis de non-remise"),
        "upstream" => desk.t("upstream reply", "réponse du serveur amont"),
        other => other,
    }
}

/// The removal form of one row (the reason is required).
fn remove_form(desk: &Desk, id: i64, address: &str) -> String {
    parts::action_form(
        desk,
        "/admin/suppressions/remove",
        &[("address", address)],
        desk.t("Remove", "Retirer"),
        false,
        Ask::Reason {
            id: &id.to_string(),
            label: desk.t(
                "Why they may be mailed again",
                "Pourquoi lui écrire à nouveau",
            ),
        },
    )
}

/// The notice after a removal (`?done=removed&n=`).
fn done_notice(desk: &Desk, query: &Query) -> String {
    if query.get("done") != Some("removed") {
        return String::new();
    }
    let n = query.count();
    let text = match desk.lang {
        Language::En => format!(
            "{n} suppression(s) removed; the person's next mail is decided on consent alone."
        ),
        Language::Fr => format!(
            "{n} suppression(s) retirée(s) ; le prochain envoi à cette personne ne dépend plus que de son consentement."
        ),
    };
    parts::notice(&escape(&text))
}

/// `POST /admin/suppressions/remove`: `address`, `reason` (required).
pub(super) async fn remove(
    State(web): State<WebState>,
    desk: Desk,
    site: Site,
    fields: Result<Fields, WebError>,
) -> Response {
    let fields = match parts::may_act(&desk, &site, fields, desk.role.may_change_people()) {
        Ok(f) => f,
        Err(refusal) => return refusal.page(&web, &desk),
    };
    let problem =
        |status, text: &str| parts::problem(&web, &desk, status, Nav::Suppressions, text, PATH);
    let Ok(who) = Identity::of(parts::field(&fields, "address")) else {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            desk.t(
                "The form names no address.",
                "Le formulaire ne désigne aucune adresse.",
            ),
        );
    };
    let Some(reason) = parts::reason(&fields) else {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            desk.t(
                "Say why the person may be mailed again (one line, at most 500 characters).",
                "Indiquez pourquoi on peut écrire à nouveau à cette personne (une ligne, 500 caractères au plus).",
            ),
        );
    };
    match web
        .store
        .remove_suppressions(who.canonical(), &desk.actor(), reason)
        .await
    {
        Ok(removed) if removed.is_empty() => problem(
            StatusCode::NOT_FOUND,
            desk.t(
                "No suppression is in force for this address (removed or expired meanwhile?).",
                "Aucune suppression n'est en vigueur pour cette adresse (retirée ou expirée entre-temps ?).",
            ),
        ),
        Ok(removed) => {
            tracing::info!(removed = removed.len(), by = %desk.operator, "console: suppressions removed");
            let n = removed.len().to_string();
            parts::back_to(&parts::link(
                &desk,
                PATH,
                &[("done", "removed"), ("n", &n)],
            ))
        }
        Err(e) => {
            tracing::error!(cause = %e, "console: cannot remove suppressions");
            super::layout::unavailable(&web, desk.lang)
        }
    }
}
