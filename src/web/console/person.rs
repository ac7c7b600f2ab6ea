//! `/admin/person?address=`: one person's whole story, for "why did ann
//! get that mail?". Found by the address's canonical identity (every
//! spelling of a mailbox is one person), or, once erased, by its keyed
//! hash. Consent per configured campaign now, with the event it rests on
//! and how the relay would decide their next mail; the consent events
//! with their proof and who recorded them; the decisions per message with
//! their reason; each copy's outcome and upstream reply; the suppressions;
//! the operators' actions about them. Long histories show their newest
//! rows and say how many more there are.
//!
//! The rights actions (record consent, export, erase, remove a
//! suppression) are [`actions`]'s and their forms [`forms`]'; the tables
//! are [`story`]'s (consent) and [`mail`]'s (decisions, copies,
//! suppressions, audit). What the
//! store holds is read through `Store::person` (bounded) and the export
//! through `rights::export`, the API's own.

mod actions;
mod forms;
mod mail;
mod story;

use axum::extract::{RawQuery, State};
use axum::response::Response;

use super::layout::{Nav, Page};
use super::{Desk, url_escape};
use crate::config::{Campaign, CampaignState, Config};
use crate::consent::identity::Identity;
use crate::consent::subject;
use crate::store::{AuditFilter, AuditRow, Person, PersonQuery};
use crate::web::WebState;
use crate::web::html::escape;

pub(super) use actions::{erase, export, record_consent, remove_suppression};

/// The most consent events, decisions and copies shown (each newest first).
const ROWS: i64 = 100;
/// The most audit rows about the person shown.
const AUDIT_ROWS: i64 = 20;

/// `GET /admin/person?address=` (and the notice of the action just done).
pub(super) async fn show(
    State(web): State<WebState>,
    desk: Desk,
    RawQuery(query): RawQuery,
) -> Response {
    let asked = Asked::of(query.as_deref().unwrap_or_default());
    let title = desk.t("Person", "Personne");
    let mut body = search_form(&desk, asked.address.as_deref().unwrap_or_default());
    if let Some(html) = actions::outcome_html(&desk, &asked) {
        body.push_str(&html);
    }
    let Some(text) = asked.address.as_deref() else {
        body.push_str(&format!(
            "<p class=\"muted\">{}</p>\n",
            desk.t(
                "Any spelling of the address finds the person: Ann@Example.NET and ann@example.net are one mailbox.",
                "Toute graphie de l'adresse trouve la personne : Ann@Example.NET et ann@example.net sont une seule boîte.",
            )
        ));
        return Page::new(title, Nav::Person).body(body).render(&web, &desk);
    };
    let identity = match Identity::of(text) {
        Ok(i) => i,
        Err(reason) => {
            body.push_str(&format!(
                "<p class=\"problem\" role=\"alert\">{} <code>{}</code> {} ({}).</p>\n",
                desk.t("The text", "Le texte"),
                escape(text),
                desk.t(
                    "is not an email address, so no one can be looked up by it",
                    "n'est pas une adresse e-mail : personne ne peut être cherché ainsi"
                ),
                escape(&reason.to_string()),
            ));
            return Page::new(title, Nav::Person).body(body).render(&web, &desk);
        }
    };
    let query = PersonQuery {
        address: identity.canonical().to_owned(),
        hashes: subject::identity_hashes(&web.config.signing, &identity),
        limit: ROWS,
    };
    let person = match web.store.person(&query).await {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(cause = %e, "console: cannot read a person");
            return super::layout::unavailable(&web, desk.lang);
        }
    };
    let audit = match person.as_ref().and_then(|p| p.subject.as_ref()) {
        Some(s) => {
            let filter = AuditFilter {
                subject_id: Some(s.id.clone()),
                limit: AUDIT_ROWS,
                ..Default::default()
            };
            match web.store.audit(&filter).await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::error!(cause = %e, "console: cannot read the audit trail");
                    return super::layout::unavailable(&web, desk.lang);
                }
            }
        }
        None => Vec::new(),
    };
    let next = match story::next_mail(&web, &identity, &query.hashes).await {
        Ok(n) => n,
        Err(e) => {
            tracing::error!(cause = %e, "console: cannot read a person's consent");
            return super::layout::unavailable(&web, desk.lang);
        }
    };
    body.push_str(&whole(
        &web,
        &desk,
        &identity,
        person.as_ref(),
        &audit,
        &next,
    ));
    Page::new(format!("{title} · {}", identity.canonical()), Nav::Person)
        .body(body)
        .render(&web, &desk)
}

/// The page below the search box, for a valid address.
fn whole(
    web: &WebState,
    desk: &Desk,
    who: &Identity,
    person: Option<&Person>,
    audit: &[AuditRow],
    next: &story::NextMail,
) -> String {
    let mut out = String::new();
    let Some(p) = person else {
        out.push_str(&format!(
            "<p class=\"notice\" role=\"status\">{} <strong>{}</strong>. {}</p>\n",
            desk.t("Nothing is held about", "Rien n'est conservé sur"),
            escape(who.canonical()),
            desk.t(
                "No consent event, decision or copy names this address, and no erased person's keyed hash matches it.",
                "Aucun événement de consentement, aucune décision ni aucune copie ne nomme cette adresse, et l'empreinte d'aucune personne effacée ne lui correspond.",
            )
        ));
        out.push_str(&story::consent_now(web, desk, None, next));
        out.push_str(&forms::forms(web, desk, who, None));
        return out;
    };
    out.push_str(&story::summary(desk, who, p));
    out.push_str(&story::consent_now(web, desk, Some(p), next));
    out.push_str(&story::events(desk, p));
    out.push_str(&mail::decisions(desk, p));
    out.push_str(&mail::copies(desk, p));
    out.push_str(&mail::suppressions(desk, p));
    out.push_str(&mail::audit(desk, audit));
    out.push_str(&forms::forms(web, desk, who, Some(p)));
    out
}

/// The search box, holding the address asked for.
fn search_form(desk: &Desk, address: &str) -> String {
    format!(
        "<form class=\"search\" method=\"get\" action=\"{action}\" role=\"search\">\
         <div><label for=\"address\">{label}</label>\
         <input type=\"search\" inputmode=\"email\" autocomplete=\"off\" spellcheck=\"false\" id=\"address\" name=\"address\" \
         required value=\"{value}\" placeholder=\"ann@example.net\"></div>\
         <button type=\"submit\">{find}</button></form>\n",
        action = escape(&desk.href("/admin/person")),
        label = desk.t("Address", "Adresse"),
        value = escape(address),
        find = desk.t("Find", "Chercher"),
    )
}

/// What the query string asks: the address, and the outcome of the
/// action the operator was sent back from.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Asked {
    pub address: Option<String>,
    /// What was done (`actions::Done`'s wire name).
    pub done: Option<String>,
    /// Why nothing was done (`actions::Problem`'s wire name).
    pub problem: Option<String>,
    /// The event recorded.
    pub event: Option<i64>,
}

impl Asked {
    fn of(query: &str) -> Asked {
        let mut asked = Asked::default();
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let value = value.trim().to_owned();
            match &*name {
                "address" if !value.is_empty() => asked.address = Some(value),
                "done" => asked.done = Some(value),
                "problem" => asked.problem = Some(value),
                "event" => asked.event = value.parse().ok(),
                _ => {}
            }
        }
        asked
    }
}

/// The campaigns a person can hear from (not deleted), in display order.
fn campaigns(config: &Config) -> Vec<&Campaign> {
    let mut list: Vec<&Campaign> = config
        .campaigns
        .iter()
        .filter(|c| c.state != CampaignState::Deleted)
        .collect();
    list.sort_by_key(|c| c.order);
    list
}

/// The person's page, with `extra` (`&done=…`) in its query.
fn page_of(desk: &Desk, address: &str, extra: &str) -> String {
    desk.href(&format!(
        "/admin/person?address={}{extra}",
        url_escape(address)
    ))
}

#[cfg(test)]
mod tests {
    use super::Asked;

    #[test]
    fn the_query_names_the_address_and_what_was_done() {
        let a = Asked::of("address=Ann%40Example.NET+&done=granted&event=12&x=1");
        assert_eq!(a.address.as_deref(), Some("Ann@Example.NET"));
        assert_eq!(a.done.as_deref(), Some("granted"));
        assert_eq!(a.event, Some(12));
        assert_eq!(Asked::of("address=&problem=confirm").address, None);
    }
}
