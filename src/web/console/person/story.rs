//! The person page's consent tables: who they are (or were), consent per
//! campaign now and how the relay decides their next mail, the consent
//! events with their proof; and the cells every table of the page uses.
//! (The mail's tables are [`super::mail`]'s.) Values escaped here; words
//! in FR and EN.

use std::collections::HashMap;

use crate::config::{CampaignState, Policy};
use crate::consent::identity::Identity;
use crate::consent::policy::{self, Decision, Outcome};
use crate::consent::{ALL_CAMPAIGNS, Status};
use crate::store::{MessageKind, Person, StoreError};
use crate::texts::Language;
use crate::time::format_time;
use crate::web::WebState;
use crate::web::console::Desk;
use crate::web::console::table::Table;
use crate::web::html::escape;

/// How the relay would decide a message to the person now, per campaign id.
pub(super) type NextMail = HashMap<String, Decision>;

/// The decision of a message to `who` for each configured campaign, as
/// the SMTP side makes it: the same store read and `policy::decide`.
pub(super) async fn next_mail(
    web: &WebState,
    who: &Identity,
    hashes: &[String],
) -> Result<NextMail, StoreError> {
    let address = vec![who.canonical().to_owned()];
    let hashes = vec![hashes.to_vec()];
    let mut out = HashMap::new();
    for c in super::campaigns(&web.config) {
        let known = web
            .store
            .recipients_consent(&c.id, &address, &hashes)
            .await?;
        let k = known.get(who.canonical()).cloned().unwrap_or_default();
        let d = policy::decide(
            c,
            &k.consent,
            web.config.bounces.mandatory,
            crate::time::now_ms(),
        );
        out.insert(c.id.clone(), d);
    }
    Ok(out)
}

/// Who the person is, or was: the subject, what is held, an erasure.
pub(super) fn summary(desk: &Desk, who: &Identity, p: &Person) -> String {
    let mut out = String::new();
    match &p.subject {
        Some(s) if s.address.is_none() => {
            out.push_str(&format!(
                "<p class=\"problem\" role=\"status\"><strong>{}</strong> {} {}.</p>\n<p>{}</p>\n",
                escape(who.canonical()),
                desk.t("was erased on", "a été effacée le"),
                escape(&s.erased_at.map(format_time).unwrap_or_default()),
                desk.t(
                    "What remains: the subject id and the keyed hash of the address, so that mail to it stays suppressed (reason erased; mandatory mail still goes); the consent events without their proof; decision and copy rows that name the hash instead of the address; the suppressions, under the hash.",
                    "Ce qui reste : l'identifiant du sujet et l'empreinte (HMAC) de l'adresse, pour que le courrier vers elle reste écarté (motif erased ; le courrier obligatoire part toujours) ; les événements de consentement sans leur preuve ; les décisions et copies qui nomment l'empreinte au lieu de l'adresse ; les suppressions, sous l'empreinte.",
                ),
            ));
        }
        _ => {}
    }
    let mut facts = vec![(
        desk.t("Address", "Adresse"),
        format!("<strong>{}</strong>", escape(who.canonical())),
    )];
    if let Some(s) = &p.subject {
        facts.push((
            desk.t("Subject", "Sujet"),
            format!("<code>{}</code>", escape(&s.id)),
        ));
        facts.push((
            desk.t("Keyed hash", "Empreinte"),
            format!("<code>{}</code>", escape(&s.address_hash)),
        ));
        facts.push((desk.t("Known since", "Connue depuis"), time(s.created_at)));
    }
    if let Some(at) = p.erased_before {
        facts.push((
            desk.t("Erased before", "Effacée auparavant"),
            format!(
                "{} <span class=\"muted\">{}</span>",
                time(at),
                desk.t(
                    "(this address came back after an erasure; the earlier record is gone)",
                    "(cette adresse est revenue après un effacement ; l'ancien dossier n'existe plus)",
                )
            ),
        ));
    }
    facts.push((
        desk.t("Records", "Enregistrements"),
        [
            count(
                desk.lang,
                p.events_total,
                ("consent event", "consent events"),
                ("événement de consentement", "événements de consentement"),
            ),
            count(
                desk.lang,
                p.decisions_total,
                ("decision", "decisions"),
                ("décision", "décisions"),
            ),
            count(
                desk.lang,
                p.deliveries_total,
                ("copy", "copies"),
                ("copie", "copies"),
            ),
            suppressed(desk, p),
        ]
        .join(" · "),
    ));
    // A table: the keyed hash wraps on a phone rather than overflow.
    let mut t = Table::new(&[desk.t("About", "Objet"), desk.t("Held", "Conservé")]);
    for (name, value) in facts {
        t.row(&[name.to_owned(), value]);
    }
    out.push_str(&t.html(desk.t("Who this is", "De qui il s'agit")));
    out
}

/// The suppressions in force; for an erased person, with the erasure
/// beside them: it keeps mail out with no suppression row of its own, and
/// "0 suppressions in force" alone would read as if mail could go.
fn suppressed(desk: &Desk, p: &Person) -> String {
    let active = p.suppressions.iter().filter(|s| s.active).count();
    let mut out = count(
        desk.lang,
        active as i64,
        ("suppression in force", "suppressions in force"),
        ("suppression en vigueur", "suppressions en vigueur"),
    );
    if p.erased() {
        out.push_str(desk.t(
            " (besides the erasure, which keeps out all but mandatory mail)",
            " (en plus de l'effacement, qui écarte tout courrier sauf l'obligatoire)",
        ));
    }
    out
}

/// `n` and its noun in the operator's language: English takes the
/// singular for one, French for zero and one.
fn count(lang: Language, n: i64, en: (&str, &str), fr: (&str, &str)) -> String {
    let (one, many) = match lang {
        Language::En => (en.0, en.1),
        Language::Fr => (fr.0, fr.1),
    };
    let singular = match lang {
        Language::En => n == 1,
        Language::Fr => n <= 1,
    };
    format!("{n} {}", if singular { one } else { many })
}

/// Consent per configured campaign now (and "all campaigns" when the
/// person has a state for it), the event each rests on, the next mail.
pub(super) fn consent_now(
    web: &WebState,
    desk: &Desk,
    p: Option<&Person>,
    next: &NextMail,
) -> String {
    let mut t = Table::new(&[
        desk.t("Campaign", "Campagne"),
        desk.t("Policy", "Politique"),
        desk.t("Consent now", "Consentement actuel"),
        desk.t("Since", "Depuis"),
        desk.t("Rests on", "Repose sur"),
        desk.t("Next mail", "Prochain courrier"),
    ]);
    let state_of =
        |campaign: &str| p.and_then(|p| p.states.iter().find(|s| s.campaign == campaign));
    if let Some(s) = state_of(ALL_CAMPAIGNS) {
        t.row(&[
            format!(
                "<code>*</code> {}",
                desk.t("every campaign", "toutes les campagnes")
            ),
            "—".into(),
            status(desk, Some(s.status)),
            time(s.since),
            event_link(Some(s.event_id)),
            "—".into(),
        ]);
    }
    let campaigns = super::campaigns(&web.config);
    for c in campaigns {
        let s = state_of(&c.id);
        let mut policy = escape(policy_name(desk, c.policy));
        if c.double_opt_in {
            policy.push_str(&format!(", {}", desk.t("double opt-in", "double opt-in")));
        }
        if let Some(days) = c.consent_max_age_days {
            policy.push_str(&format!(
                "<br><span class=\"muted\">{} {days} {}</span>",
                desk.t("consent lasts", "consentement valable"),
                desk.t("days", "jours")
            ));
        }
        if c.state == CampaignState::Inactive {
            policy.push_str(&format!(
                " <span class=\"tag\">{}</span>",
                desk.t("inactive", "inactive")
            ));
        }
        t.row(&[
            format!(
                "{} <code>{}</code>",
                escape(c.label_in(desk.lang, web.config.texts.default_language)),
                escape(&c.id)
            ),
            policy,
            status(desk, s.map(|s| s.status)),
            s.map(|s| time(s.since)).unwrap_or_else(|| "—".into()),
            event_link(s.map(|s| s.event_id)),
            if c.state == CampaignState::Inactive {
                format!(
                    "<span class=\"muted\">{}</span>",
                    desk.t(
                        "refused at SMTP (campaign inactive)",
                        "refusé en SMTP (campagne inactive)"
                    )
                )
            } else {
                next.get(&c.id)
                    .map(|d| decision(desk, d))
                    .unwrap_or_default()
            },
        ]);
    }
    format!(
        "<h2 id=\"consent\">{}</h2>\n<p class=\"muted\">{}</p>\n{}",
        desk.t("Consent now", "Consentement actuel"),
        desk.t(
            "Next mail: how the relay decides a message of that campaign to this person if it arrived now (consent, expiry, suppressions, erasure).",
            "Prochain courrier : ce que le relais déciderait pour un message de cette campagne à cette personne s'il arrivait maintenant (consentement, expiration, suppressions, effacement).",
        ),
        t.html(desk.t("Consent per campaign", "Consentement par campagne"))
    )
}

/// The consent events, newest first, with their proof.
pub(super) fn events(desk: &Desk, p: &Person) -> String {
    let mut t = Table::new(&[
        desk.t("Event", "Événement"),
        desk.t("At", "Le"),
        desk.t("Action", "Action"),
        desk.t("Campaign", "Campagne"),
        desk.t("Source", "Source"),
        desk.t("IP", "IP"),
        desk.t("User agent", "Navigateur"),
        desk.t("Evidence (text shown)", "Preuve (texte présenté)"),
        desk.t("Recorded at", "Enregistré le"),
        desk.t("Recorded by", "Enregistré par"),
    ]);
    for e in &p.events {
        let by = match p.recorded_by.get(&e.id) {
            Some(a) => format!(
                "<strong>{}</strong> <span class=\"muted\">({})</span>",
                escape(&a.name),
                escape(a.via.as_str())
            ),
            None => format!(
                "<span class=\"muted\">{}</span>",
                desk.t("the person, or the relay", "la personne, ou le relais")
            ),
        };
        t.row(&[
            format!(
                "<span id=\"event-{id}\" class=\"mono\">#{id}</span>",
                id = e.id
            ),
            time(e.at),
            format!("<code>{}</code>", escape(e.action.as_str())),
            format!("<code>{}</code>", escape(&e.campaign)),
            format!("<code>{}</code>", escape(e.source.as_str())),
            opt(e.ip.as_deref()),
            opt(e.user_agent.as_deref()),
            opt(e.evidence.as_deref()),
            time(e.recorded_at),
            by,
        ]);
    }
    format!(
        "<h2 id=\"events\">{}</h2>\n{}{}",
        desk.t("Consent events", "Événements de consentement"),
        more(desk, p.events.len(), p.events_total),
        t.html(desk.t(
            "Consent events, newest first",
            "Événements de consentement, du plus récent au plus ancien"
        ))
    )
}

/// "Showing the newest n of total" when rows were left out.
pub(super) fn more(desk: &Desk, shown: usize, total: i64) -> String {
    if total <= shown as i64 {
        return String::new();
    }
    format!(
        "<p class=\"muted\">{} {shown} {} {total}. {}</p>\n",
        desk.t("Showing the newest", "Affichage des"),
        desk.t("of", "plus récents sur"),
        desk.t("The export holds them all.", "L'export les contient tous."),
    )
}

pub(super) fn time(ms: i64) -> String {
    format!(
        "<time datetime=\"{t}\">{t}</time>",
        t = escape(&format_time(ms))
    )
}

pub(super) fn opt(text: Option<&str>) -> String {
    match text {
        Some(t) if !t.is_empty() => escape(t),
        _ => "<span class=\"muted\">—</span>".into(),
    }
}

pub(super) fn event_link(id: Option<i64>) -> String {
    match id {
        Some(id) => format!("<a href=\"#event-{id}\">#{id}</a>"),
        None => "—".into(),
    }
}

pub(super) fn message_link(desk: &Desk, queue_id: &str) -> String {
    format!(
        "<a class=\"mono\" href=\"{}\">{}</a>",
        escape(&desk.href(&format!(
            "/admin/message?id={}",
            crate::web::console::url_escape(queue_id)
        ))),
        escape(queue_id)
    )
}

fn status(desk: &Desk, s: Option<Status>) -> String {
    match s {
        Some(Status::Granted) => {
            format!(
                "<span class=\"tag good\">{}</span>",
                desk.t("granted", "accordé")
            )
        }
        Some(Status::Withdrawn) => {
            format!(
                "<span class=\"tag bad\">{}</span>",
                desk.t("withdrawn", "retiré")
            )
        }
        Some(Status::Pending) => format!(
            "<span class=\"tag warn\">{}</span>",
            desk.t("pending confirmation", "en attente de confirmation")
        ),
        None => format!("<span class=\"muted\">{}</span>", desk.t("none", "aucun")),
    }
}

fn decision(desk: &Desk, d: &Decision) -> String {
    format!(
        "{} <code>{}</code>",
        outcome(desk, d.outcome),
        escape(d.reason.as_str())
    )
}

pub(super) fn outcome(desk: &Desk, o: Outcome) -> String {
    match o {
        Outcome::Deliver => format!(
            "<span class=\"tag good\">{}</span>",
            desk.t("deliver", "remettre")
        ),
        Outcome::Suppress => format!(
            "<span class=\"tag bad\">{}</span>",
            desk.t("suppress", "écarter")
        ),
    }
}

fn policy_name(desk: &Desk, p: Policy) -> &'static str {
    match p {
        Policy::OptIn => "opt-in",
        Policy::OptOut => "opt-out",
        Policy::Mandatory => desk.t("mandatory", "obligatoire"),
    }
}

/// What a message is, as a person reads it: the relay's double opt-in
/// mail is not the campaign's own mail.
pub(super) fn kind_name(desk: &Desk, k: MessageKind) -> &'static str {
    match k {
        MessageKind::Relay => desk.t("the CRM's mail", "courrier du CRM"),
        MessageKind::Notice => desk.t(
            "the relay's confirmation request",
            "demande de confirmation du relais",
        ),
        MessageKind::ErasureNotice => {
            desk.t("the relay's erasure notice", "avis d'effacement du relais")
        }
        MessageKind::Dsn => desk.t(
            "a bounce to the sender (DSN)",
            "avis de non-remise à l'expéditeur (DSN)",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_agree_with_their_noun() {
        let en = ("copy", "copies");
        let fr = ("copie", "copies");
        assert_eq!(count(Language::En, 0, en, fr), "0 copies");
        assert_eq!(count(Language::En, 1, en, fr), "1 copy");
        assert_eq!(count(Language::En, 2, en, fr), "2 copies");
        assert_eq!(count(Language::Fr, 0, en, fr), "0 copie");
        assert_eq!(count(Language::Fr, 1, en, fr), "1 copie");
        assert_eq!(count(Language::Fr, 2, en, fr), "2 copies");
    }
}
