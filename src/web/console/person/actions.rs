//! The person page's actions, for the roles that may change people (admin,
//! dpo): record consent (a grant, or a withdrawal of one campaign or of
//! all), download the export, erase (the address typed again), remove the
//! suppressions in force (with a reason). Each is a `POST` whose CSRF
//! token is checked first, then the role; each goes through the function
//! the API uses (`web::change`, `rights::export`, `rights::erase`,
//! `Store::remove_suppressions`) with the operator as actor, so the audit
//! trail names them; then `303` back to the person with what was done.

use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::{self, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};

use super::{Asked, page_of};
use crate::consent::Action;
use crate::consent::identity::Identity;
use crate::rights;
use crate::store::{Actor, Via};
use crate::web::change::{self, Change, ChangeError, ChangeRequest};
use crate::web::console::Desk;
use crate::web::form::Fields;
use crate::web::html::escape;
use crate::web::origin::Site;
use crate::web::{WebError, WebState};

/// What an action did, as the page it sends back to says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Done {
    Granted,
    /// A grant for a double opt-in campaign: a request, the mail sent.
    Requested,
    Withdrawn,
    Erased,
    Unsuppressed,
}

/// Why an action changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Problem {
    Address,
    Campaign,
    GrantForAll,
    Evidence,
    /// The erasure's typed address is not the person's.
    Confirm,
    Reason,
    NothingHeld,
    NoSuppression,
}

crate::consent::wire_names!(Done {
    Granted => "granted", Requested => "requested", Withdrawn => "withdrawn",
    Erased => "erased", Unsuppressed => "unsuppressed",
});
crate::consent::wire_names!(Problem {
    Address => "address", Campaign => "campaign", GrantForAll => "grant-for-all",
    Evidence => "evidence", Confirm => "confirm", Reason => "reason",
    NothingHeld => "nothing-held", NoSuppression => "no-suppression",
});

/// The notice (or the problem) of the action the operator came back from.
pub(super) fn outcome_html(desk: &Desk, asked: &Asked) -> Option<String> {
    let event = asked
        .event
        .map(|id| format!(" <a href=\"#event-{id}\">#{id}</a>"))
        .unwrap_or_default();
    if let Some(done) = asked.done.as_deref().and_then(|d| d.parse::<Done>().ok()) {
        let text = match done {
            Done::Granted => desk.t("Consent recorded: a grant. Event", "Consentement enregistré : un accord. Événement"),
            Done::Requested => desk.t(
                "This campaign needs double opt-in: a request was recorded and the relay mailed the person the confirmation link; consent counts once they confirm. Event",
                "Cette campagne demande un double opt-in : une demande a été enregistrée et le relais a envoyé le lien de confirmation à la personne ; le consentement compte une fois confirmé. Événement",
            ),
            Done::Withdrawn => desk.t(
                "Withdrawal recorded: the next mail it covers is suppressed. Event",
                "Retrait enregistré : le prochain courrier qu'il couvre est écarté. Événement",
            ),
            Done::Erased => desk.t(
                "The person was erased. What remains is shown below.",
                "La personne a été effacée. Ce qui reste est affiché ci-dessous.",
            ),
            Done::Unsuppressed => desk.t(
                "The suppressions in force were removed: the next mail is decided on consent alone.",
                "Les suppressions en vigueur ont été levées : le prochain courrier est décidé selon le consentement seul.",
            ),
        };
        let event = if matches!(done, Done::Erased | Done::Unsuppressed) {
            String::new()
        } else {
            event
        };
        return Some(format!(
            "<p class=\"notice\" role=\"status\">{}{event}</p>\n",
            escape(text)
        ));
    }
    let problem = asked.problem.as_deref()?.parse::<Problem>().ok()?;
    let text = match problem {
        Problem::Address => desk.t(
            "That is not an email address. Nothing was changed.",
            "Ce n'est pas une adresse e-mail. Rien n'a été modifié.",
        ),
        Problem::Campaign => desk.t(
            "That is not a configured campaign. Nothing was changed.",
            "Ce n'est pas une campagne configurée. Rien n'a été modifié.",
        ),
        Problem::GrantForAll => desk.t(
            "A grant names one campaign ('*' is for withdrawals only). Nothing was changed.",
            "Un accord nomme une seule campagne (« * » ne sert qu'aux retraits). Rien n'a été modifié.",
        ),
        Problem::Evidence => desk.t(
            "Say what the person said and where: the evidence is required. Nothing was changed.",
            "Indiquez ce que la personne a dit et où : la preuve est obligatoire. Rien n'a été modifié.",
        ),
        Problem::Confirm => desk.t(
            "The address typed is not this person's: nothing was erased. Type the address again to confirm.",
            "L'adresse saisie n'est pas celle de cette personne : rien n'a été effacé. Saisissez de nouveau l'adresse pour confirmer.",
        ),
        Problem::Reason => desk.t(
            "Say why the person may be mailed again: the reason is required. Nothing was changed.",
            "Indiquez pourquoi la personne peut de nouveau recevoir du courrier : le motif est obligatoire. Rien n'a été modifié.",
        ),
        Problem::NothingHeld => desk.t(
            "Nothing is held about this address. Nothing was changed.",
            "Rien n'est conservé sur cette adresse. Rien n'a été modifié.",
        ),
        Problem::NoSuppression => desk.t(
            "No suppression is in force for this person. Nothing was changed.",
            "Aucune suppression n'est en vigueur pour cette personne. Rien n'a été modifié.",
        ),
    };
    Some(format!(
        "<p class=\"problem\" role=\"alert\">{}</p>\n",
        escape(text)
    ))
}

/// A form that passed the CSRF check, then the role's: its fields, the
/// person it is about and the operator as actor; else the answer.
struct Admitted {
    fields: Fields,
    /// The address as the form carried it (where mail to them goes).
    written: String,
    who: Identity,
    actor: Actor,
}

fn admit(
    web: &WebState,
    desk: &Desk,
    site: &Site,
    fields: Result<Fields, WebError>,
) -> Result<Admitted, Box<Response>> {
    let fields = fields.unwrap_or_default();
    desk.check_form(&fields, site)
        .map_err(|refusal| refusal.page(web, desk))?;
    desk.require(desk.role.may_change_people())
        .map_err(|refusal| refusal.page(web, desk))?;
    let written = field(&fields, "address").unwrap_or_default();
    let who = Identity::of(&written).map_err(|_| back_problem(desk, &written, Problem::Address))?;
    Ok(Admitted {
        fields,
        written,
        who,
        actor: Actor::new(&desk.operator, Via::Console),
    })
}

/// A field's value, trimmed; `None` when missing or blank.
fn field(fields: &Fields, name: &str) -> Option<String> {
    fields
        .values(name)
        .next()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn back(desk: &Desk, address: &str, done: Done, event: Option<i64>) -> Response {
    let event = event.map(|id| format!("&event={id}")).unwrap_or_default();
    let extra = format!("&done={done}{event}");
    Redirect::to(&page_of(desk, address, &extra)).into_response()
}

fn back_problem(desk: &Desk, address: &str, problem: Problem) -> Response {
    Redirect::to(&page_of(desk, address, &format!("&problem={problem}"))).into_response()
}

fn failed(web: &WebState, desk: &Desk, what: &str, e: impl std::fmt::Display) -> Response {
    tracing::error!(cause = %e, operator = %desk.operator, "console: cannot {what}");
    crate::web::console::layout::unavailable(web, desk.lang)
}

/// `POST /admin/person/consent`: a grant or a withdrawal, as
/// `POST /api/v1/consent` records it (source `admin`).
pub(in crate::web::console) async fn record_consent(
    State(web): State<WebState>,
    desk: Desk,
    site: Site,
    fields: Result<Fields, WebError>,
) -> Response {
    let a = match admit(&web, &desk, &site, fields) {
        Ok(a) => a,
        Err(res) => return *res,
    };
    let address = a.who.canonical();
    let Some(evidence) = field(&a.fields, "evidence") else {
        return back_problem(&desk, address, Problem::Evidence);
    };
    let action = match field(&a.fields, "action").as_deref() {
        Some("grant") => Change::Grant,
        _ => Change::Withdraw,
    };
    let request = ChangeRequest {
        email: a.written.clone(),
        campaign: field(&a.fields, "campaign").unwrap_or_default(),
        action,
        source: None,
        evidence: Some(evidence),
        ip: None,
        user_agent: None,
        at: None,
    };
    let checked = match change::check(&web.config, request, a.actor, crate::time::now_ms()) {
        Ok(c) => c,
        Err(ChangeError::GrantForAll) => {
            return back_problem(&desk, address, Problem::GrantForAll);
        }
        Err(ChangeError::Address(_)) => return back_problem(&desk, address, Problem::Address),
        Err(_) => return back_problem(&desk, address, Problem::Campaign),
    };
    let follow_up = checked.confirmation(&web.config);
    let mails = follow_up.is_some();
    let event = match web
        .store
        .append_consent_event_then(checked.event, follow_up)
        .await
    {
        Ok(e) => e,
        Err(e) => return failed(&web, &desk, "record consent", e),
    };
    if mails {
        web.wake.notify_one();
    }
    tracing::info!(operator = %desk.operator, subject = %event.subject_id, campaign = %event.campaign, action = %event.action, event = event.id, "console: consent recorded");
    let done = match event.action {
        Action::Request => Done::Requested,
        Action::Grant => Done::Granted,
        _ => Done::Withdrawn,
    };
    back(&desk, address, done, Some(event.id))
}

/// `POST /admin/person/export`: the access document as a JSON download,
/// the one `GET /api/v1/subjects/{email}` answers (and an audit row).
pub(in crate::web::console) async fn export(
    State(web): State<WebState>,
    desk: Desk,
    site: Site,
    fields: Result<Fields, WebError>,
) -> Response {
    let a = match admit(&web, &desk, &site, fields) {
        Ok(a) => a,
        Err(res) => return *res,
    };
    let doc = match rights::export(&web.store, &web.config, &a.who, &a.actor).await {
        Ok(Some(doc)) => doc,
        Ok(None) => return back_problem(&desk, a.who.canonical(), Problem::NothingHeld),
        Err(e) => return failed(&web, &desk, "export a person", e),
    };
    let text = match serde_json::to_string_pretty(&doc) {
        Ok(t) => t,
        Err(e) => return failed(&web, &desk, "write an export", e),
    };
    tracing::info!(operator = %desk.operator, "console: person exported");
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"consent-relay-export.json\""),
            ),
        ],
        text,
    )
        .into_response()
}

/// `POST /admin/person/erase`: erasure as `DELETE /api/v1/subjects/{email}`
/// makes it, once the operator typed the person's address again.
pub(in crate::web::console) async fn erase(
    State(web): State<WebState>,
    desk: Desk,
    site: Site,
    fields: Result<Fields, WebError>,
) -> Response {
    let a = match admit(&web, &desk, &site, fields) {
        Ok(a) => a,
        Err(res) => return *res,
    };
    let address = a.who.canonical();
    let typed = field(&a.fields, "confirm").and_then(|t| Identity::of(&t).ok());
    if typed.as_ref().map(Identity::canonical) != Some(address) {
        return back_problem(&desk, address, Problem::Confirm);
    }
    match rights::erase(&web.store, &web.config, &a.who, &a.actor).await {
        Ok(Some(r)) => {
            tracing::info!(operator = %desk.operator, subject = %r.subject_id, decisions = r.decisions, deliveries = r.deliveries, cancelled = r.cancelled, "console: subject erased");
            back(&desk, address, Done::Erased, None)
        }
        Ok(None) => back_problem(&desk, address, Problem::NothingHeld),
        Err(e) => failed(&web, &desk, "erase a person", e),
    }
}

/// `POST /admin/person/suppression`: the person's suppressions in force
/// removed, with the operator's reason.
pub(in crate::web::console) async fn remove_suppression(
    State(web): State<WebState>,
    desk: Desk,
    site: Site,
    fields: Result<Fields, WebError>,
) -> Response {
    let a = match admit(&web, &desk, &site, fields) {
        Ok(a) => a,
        Err(res) => return *res,
    };
    let address = a.who.canonical();
    let Some(reason) = field(&a.fields, "reason") else {
        return back_problem(&desk, address, Problem::Reason);
    };
    match web
        .store
        .remove_suppressions(address, &a.actor, &reason)
        .await
    {
        Ok(removed) if removed.is_empty() => back_problem(&desk, address, Problem::NoSuppression),
        Ok(removed) => {
            tracing::info!(operator = %desk.operator, removed = removed.len(), "console: suppressions removed");
            back(&desk, address, Done::Unsuppressed, None)
        }
        Err(e) => failed(&web, &desk, "remove suppressions", e),
    }
}
