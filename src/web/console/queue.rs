//! `/admin/queue`: the copies that need an operator's eye, one status at a
//! time (deferred, held, failed), newest first, paged; beside them the
//! queue's counts by status and its oldest deferred copy. An admin retries
//! a deferred copy now, releases a held one (refused while its campaign is
//! paused), or drops a waiting one (confirmed), through
//! `Store::queue_action`, the one operation the CLI's `queue` commands
//! use too, recorded with their name.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::Desk;
use super::layout::{Nav, Page};
use super::parts::{self, Ask, PAGE_ROWS, Query};
use super::table::Table;
use crate::store::{DeliveryStatus, MessageKind, QueueAction, QueueError, QueueRow};
use crate::texts::Language;
use crate::time::{format_time, now_ms};
use crate::web::WebState;
use crate::web::error::WebError;
use crate::web::form::Fields;
use crate::web::html::escape;
use crate::web::origin::Site;

const PATH: &str = "/admin/queue";

/// The statuses the view lists, in the order of its tabs.
const LISTED: [DeliveryStatus; 3] = [
    DeliveryStatus::Deferred,
    DeliveryStatus::Held,
    DeliveryStatus::Failed,
];

fn status_name(desk: &Desk, s: DeliveryStatus) -> &'static str {
    match s {
        DeliveryStatus::Queued => desk.t("queued", "en file"),
        DeliveryStatus::Sending => desk.t("being sent", "en cours d'envoi"),
        DeliveryStatus::Deferred => desk.t("deferred", "différée"),
        DeliveryStatus::Sent => desk.t("sent", "envoyée"),
        DeliveryStatus::Failed => desk.t("failed", "échouée"),
        DeliveryStatus::SuppressedLate => desk.t("suppressed late", "supprimée avant envoi"),
        DeliveryStatus::Held => desk.t("held", "retenue"),
        DeliveryStatus::Dropped => desk.t("dropped", "abandonnée"),
    }
}

/// The name of a status for a count of copies (French agrees in number).
fn status_plural(desk: &Desk, s: DeliveryStatus) -> &'static str {
    match s {
        DeliveryStatus::Deferred => desk.t("deferred", "différées"),
        DeliveryStatus::Held => desk.t("held", "retenues"),
        DeliveryStatus::Failed => desk.t("failed", "échouées"),
        other => status_name(desk, other),
    }
}

pub(super) async fn show(
    State(web): State<WebState>,
    desk: Desk,
    RawQuery(raw): RawQuery,
) -> Response {
    let query = Query::of(raw);
    let status = match query.get("status") {
        None => DeliveryStatus::Deferred,
        Some(s) => match LISTED.iter().find(|l| l.as_str() == s) {
            Some(l) => *l,
            None => return bad_query(&web, &desk),
        },
    };
    let Ok(before) = query.before() else {
        return bad_query(&web, &desk);
    };
    let (page, pauses) = tokio::join!(
        web.store.queue_page(status, before, PAGE_ROWS),
        web.store.campaign_pauses()
    );
    let (page, paused) = match (page, pauses) {
        (Ok(p), Ok(pauses)) => (
            p,
            pauses.into_iter().map(|p| p.campaign).collect::<Vec<_>>(),
        ),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(cause = %e, "console: cannot read the queue");
            return super::layout::unavailable(&web, desk.lang);
        }
    };
    let now = now_ms();
    let q = &page.now;
    let mut body = done_notice(&desk, &query);
    // The counts of every status still in the queue, and the failed ones.
    body.push_str("<div class=\"figures\">");
    for (s, n) in [
        (DeliveryStatus::Queued, q.queued),
        (DeliveryStatus::Sending, q.sending),
        (DeliveryStatus::Deferred, q.deferred),
        (DeliveryStatus::Held, q.held),
        (DeliveryStatus::Failed, page.failed),
    ] {
        body.push_str(&format!(
            "<section class=\"card\"><div class=\"figure\">{n}</div><div class=\"muted\">{}</div></section>",
            escape(status_plural(&desk, s))
        ));
    }
    body.push_str("</div>\n");
    body.push_str(&oldest(&desk, q, now));
    // One tab per listed status.
    body.push_str(&format!(
        "<nav class=\"tabs\" aria-label=\"{}\"><p>",
        desk.t("Copies by status", "Copies par état")
    ));
    let tabs: Vec<String> = LISTED
        .iter()
        .map(|s| {
            let n = match s {
                DeliveryStatus::Deferred => q.deferred,
                DeliveryStatus::Held => q.held,
                _ => page.failed,
            };
            let current = if *s == status {
                " aria-current=\"page\""
            } else {
                ""
            };
            format!(
                "<a href=\"{}\"{current}>{} ({n})</a>",
                escape(&parts::link(&desk, PATH, &[("status", s.as_str())])),
                escape(status_plural(&desk, *s))
            )
        })
        .collect();
    body.push_str(&tabs.join(" · "));
    body.push_str("</p></nav>\n");
    let admin = desk.role.may_run_queue();
    let mut head = vec![
        desk.t("Queue id", "Identifiant de file"),
        desk.t("Recipient", "Destinataire"),
        desk.t("Campaign", "Campagne"),
        desk.t("Status", "État"),
        desk.t("Attempts", "Tentatives"),
        desk.t("Next attempt", "Prochaine tentative"),
        desk.t("Last upstream reply", "Dernière réponse du serveur amont"),
        desk.t("Age", "Âge"),
    ];
    if admin {
        head.push(desk.t("Actions", "Actions"));
    }
    let mut t = Table::new(&head).numeric(&[4]);
    for r in &page.rows {
        let mut cells = vec![
            parts::message_link(&desk, &r.message_id),
            recipient(&desk, &r.recipient),
            campaign(&desk, r),
            escape(status_name(&desk, r.status)),
            r.attempts.to_string(),
            if r.status == DeliveryStatus::Deferred {
                escape(&format_time(r.next_attempt_at))
            } else {
                "—".to_owned()
            },
            r.last_reply
                .as_deref()
                .map(|t| format!("<span class=\"mono\">{}</span>", escape(t)))
                .unwrap_or_else(|| "—".to_owned()),
            escape(&parts::age(&desk, now, r.received_at)),
        ];
        if admin {
            cells.push(actions(&desk, r, &query, paused.contains(&r.campaign)));
        }
        t.row(&cells);
    }
    let caption = match desk.lang {
        Language::En => format!("Copies {}, newest first", status_plural(&desk, status)),
        Language::Fr => format!(
            "Copies {}, les plus récentes d'abord",
            status_plural(&desk, status)
        ),
    };
    body.push_str(&t.html(&caption));
    body.push_str(&parts::pager(
        &desk,
        PATH,
        &[("status", status.as_str())],
        before.is_some(),
        parts::next_cursor(page.rows.len(), page.rows.last().map(|r| r.id)),
    ));
    Page::new(desk.t("Queue", "File d'attente"), Nav::Queue)
        .body(body)
        .render(&web, &desk)
}

/// The oldest deferred copy: how long the queue has been failing to
/// deliver something.
fn oldest(desk: &Desk, q: &crate::store::QueueNow, now: i64) -> String {
    let Some(o) = &q.oldest_deferred else {
        return format!(
            "<p class=\"muted\">{}</p>\n",
            desk.t("No copy is deferred.", "Aucune copie n'est différée.")
        );
    };
    format!(
        "<p>{}{} {} ({} {}, {} {}, {} {}){}</p>\n",
        desk.t("Oldest deferred copy", "Plus ancienne copie différée"),
        parts::colon(desk),
        parts::message_link(desk, &o.message_id),
        desk.t("queued", "en file depuis"),
        escape(&parts::age(desk, now, o.created_at)),
        o.attempts,
        desk.t("attempts", "tentatives"),
        desk.t("next at", "prochaine à"),
        escape(&format_time(o.next_attempt_at)),
        o.last_reply
            .as_deref()
            .map(|r| format!(
                "<br><span class=\"muted\">{}{} <span class=\"mono\">{}</span></span>",
                desk.t("Last reply", "Dernière réponse"),
                parts::colon(desk),
                escape(r)
            ))
            .unwrap_or_default(),
    )
}

/// The recipient, linked to the person when it is an address (an erased
/// person's copies name only a hash).
fn recipient(desk: &Desk, recipient: &str) -> String {
    if recipient.contains('@') && !recipient.starts_with("erased:") {
        parts::person_link(desk, recipient)
    } else {
        format!("<code>{}</code>", escape(recipient))
    }
}

/// The campaign, and what kind of mail it is when the relay wrote it.
fn campaign(desk: &Desk, r: &QueueRow) -> String {
    let kind = match r.kind {
        MessageKind::Relay => None,
        MessageKind::Dsn => Some(desk.t("bounce to the sender", "avis de non-remise")),
        MessageKind::Notice => Some(desk.t("confirmation mail", "courriel de confirmation")),
        MessageKind::ErasureNotice => Some(desk.t("erasure notice", "avis d'effacement")),
    };
    let mut html = format!("<code>{}</code>", escape(&r.campaign));
    if let Some(kind) = kind {
        html.push_str(&format!(" <span class=\"tag\">{}</span>", escape(kind)));
    }
    html
}

/// An admin's forms for one copy; each comes back to this page. A held
/// copy of a paused campaign is released by resuming the campaign: its
/// row links there instead.
fn actions(desk: &Desk, r: &QueueRow, query: &Query, paused: bool) -> String {
    let id = r.id.to_string();
    let back = back_fields(query);
    let mut fields: Vec<(&str, &str)> = vec![("id", id.as_str())];
    fields.extend(back.iter().map(|(n, v)| (*n, v.as_str())));
    let mut html = Vec::new();
    match r.status {
        DeliveryStatus::Deferred => html.push(parts::action_form(
            desk,
            "/admin/queue/retry",
            &fields,
            desk.t("Retry now", "Réessayer maintenant"),
            false,
            Ask::Nothing,
        )),
        DeliveryStatus::Held if paused => html.push(format!(
            "<a href=\"{}#campaign-{}\">{}</a>",
            escape(&desk.href("/admin/campaigns")),
            escape(&r.campaign),
            desk.t("campaign paused", "campagne en pause")
        )),
        DeliveryStatus::Held => html.push(parts::action_form(
            desk,
            "/admin/queue/release",
            &fields,
            desk.t("Release", "Libérer"),
            false,
            Ask::Nothing,
        )),
        _ => {}
    }
    if QueueAction::Drop.from_states().contains(&r.status) {
        html.push(parts::action_form(
            desk,
            "/admin/queue/drop",
            &fields,
            desk.t("Drop", "Abandonner"),
            true,
            Ask::Confirm(desk.t("never send it", "ne jamais l'envoyer")),
        ));
    }
    html.join(" ")
}

/// The page a form came from (status, cursor), to go back to.
fn back_fields(query: &Query) -> Vec<(&'static str, String)> {
    ["status", "before"]
        .into_iter()
        .filter_map(|n| query.get(n).map(|v| (n, v.to_owned())))
        .collect()
}

fn bad_query(web: &WebState, desk: &Desk) -> Response {
    parts::problem(
        web,
        desk,
        StatusCode::BAD_REQUEST,
        Nav::Queue,
        desk.t(
            "This address asks for a list the queue view does not have (status is deferred, held or failed; before is a copy's number).",
            "Cette adresse demande une liste que la file n'a pas (status vaut deferred, held ou failed ; before est un numéro de copie).",
        ),
        PATH,
    )
}

/// The notice after a change (`?done=`), from a closed set of texts.
fn done_notice(desk: &Desk, query: &Query) -> String {
    let (Some(done), Some(id)) = (query.get("done"), query.get("id")) else {
        return String::new();
    };
    let Ok(id) = id.parse::<i64>() else {
        return String::new();
    };
    let fr = desk.lang == Language::Fr;
    let text = match (done, fr) {
        ("retry", false) => format!("Copy {id} is due now; the next attempt starts shortly."),
        ("retry", true) => format!("La copie {id} est due maintenant ; l'essai part sous peu."),
        ("release", false) => format!("Copy {id} released; it goes back to the queue."),
        ("release", true) => format!("La copie {id} est libérée ; elle retourne dans la file."),
        ("drop", false) => format!("Copy {id} dropped; it will never be sent."),
        ("drop", true) => format!("La copie {id} est abandonnée ; elle ne partira jamais."),
        _ => return String::new(),
    };
    parts::notice(&escape(&text))
}

/// Why a queue action changed nothing, in the operator's language.
fn refused(desk: &Desk, e: &QueueError) -> (StatusCode, String) {
    let fr = desk.lang == Language::Fr;
    match e {
        QueueError::NotFound(id) => (
            StatusCode::NOT_FOUND,
            if fr {
                format!("La copie {id} n'existe pas (ou plus).")
            } else {
                format!("Copy {id} does not exist (any more).")
            },
        ),
        QueueError::WrongState { id, action, status } => {
            let applies = action
                .from_states()
                .iter()
                .map(|s| status_name(desk, *s))
                .collect::<Vec<_>>()
                .join(desk.t(" or ", " ou "));
            (
                StatusCode::CONFLICT,
                if fr {
                    format!(
                        "La copie {id} est {} : cette action ne s'applique qu'à une copie {applies}.",
                        status_name(desk, *status)
                    )
                } else {
                    format!(
                        "Copy {id} is {}: this applies to a {applies} copy only.",
                        status_name(desk, *status)
                    )
                },
            )
        }
        QueueError::CampaignPaused { id, campaign } => (
            StatusCode::CONFLICT,
            if fr {
                format!(
                    "La copie {id} est retenue parce que la campagne {campaign} est en pause : reprenez la campagne (page Campagnes) ou abandonnez la copie."
                )
            } else {
                format!(
                    "Copy {id} is held because campaign {campaign} is paused: resume the campaign (Campaigns page) or drop the copy."
                )
            },
        ),
        QueueError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, String::new()),
    }
}

/// `POST /admin/queue/{retry|release|drop}`: one action on the copy a
/// form names (`id`; `confirm=yes` to drop), after the checks every
/// action makes; then back to the page the form was on.
pub(super) async fn act(
    State(web): State<WebState>,
    Path(action): Path<String>,
    desk: Desk,
    site: Site,
    fields: Result<Fields, WebError>,
) -> Response {
    let Some(action) = [QueueAction::Retry, QueueAction::Release, QueueAction::Drop]
        .into_iter()
        .find(|a| a.as_str() == action)
    else {
        return parts::problem(
            &web,
            &desk,
            StatusCode::NOT_FOUND,
            Nav::Queue,
            desk.t(
                "The console has no such queue action.",
                "La console n'a pas cette action sur la file.",
            ),
            PATH,
        );
    };
    let fields = match parts::may_act(&desk, &site, fields, desk.role.may_run_queue()) {
        Ok(f) => f,
        Err(refusal) => return refusal.page(&web, &desk),
    };
    let Ok(id) = parts::field(&fields, "id").parse::<i64>() else {
        return parts::problem(
            &web,
            &desk,
            StatusCode::UNPROCESSABLE_ENTITY,
            Nav::Queue,
            desk.t(
                "The form names no copy (id is a copy's number).",
                "Le formulaire ne désigne aucune copie (id est un numéro de copie).",
            ),
            PATH,
        );
    };
    if action == QueueAction::Drop && !fields.has_pair("confirm", "yes") {
        return parts::problem(
            &web,
            &desk,
            StatusCode::UNPROCESSABLE_ENTITY,
            Nav::Queue,
            desk.t(
                "Tick the box to confirm: a dropped copy is never sent.",
                "Cochez la case pour confirmer : une copie abandonnée ne part jamais.",
            ),
            PATH,
        );
    }
    match web.store.queue_action(action, id, &desk.actor()).await {
        Ok(change) => {
            if action != QueueAction::Drop {
                // Due now: the worker need not wait for its next poll.
                web.wake.notify_one();
            }
            tracing::info!(delivery = id, action = %action, by = %desk.operator, from = %change.from, to = %change.to, "console: queue action");
            let mut back: Vec<(&str, String)> =
                vec![("done", action.as_str().to_owned()), ("id", id.to_string())];
            // The page the form was on, if it still lists something.
            for name in ["status", "before"] {
                let v = parts::field(&fields, name);
                if !v.is_empty() {
                    back.push((name, v.to_owned()));
                }
            }
            let params: Vec<(&str, &str)> = back.iter().map(|(n, v)| (*n, v.as_str())).collect();
            parts::back_to(&parts::link(&desk, PATH, &params))
        }
        Err(QueueError::Store(e)) => {
            tracing::error!(cause = %e, delivery = id, "console: queue action failed");
            super::layout::unavailable(&web, desk.lang)
        }
        Err(e) => {
            tracing::info!(delivery = id, action = %action, by = %desk.operator, refused = %e, "console: queue action refused");
            let (status, text) = refused(&desk, &e);
            parts::problem(&web, &desk, status, Nav::Queue, &text, PATH)
        }
    }
}
