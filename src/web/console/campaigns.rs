//! `/admin/campaigns`: every configured campaign (and any paused one that
//! has left the configuration since): its label, policy, double opt-in and
//! state; whether it is paused (by whom, when, why) and how many of its
//! copies are held; its copies delivered, bounces and complaints of the
//! last 7 and 30 days with the bounce and complaint rates, marked against
//! `[complaints] warn_rate` and `pause_rate` as `consent-relay reputation`
//! marks them. An admin pauses (with a reason), resumes, and drops the
//! held copies (confirmed), through the store functions the CLI's
//! `campaign pause|resume|drop-held` call, recorded with their name.

use std::collections::HashMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::Desk;
use super::layout::{Nav, Page};
use super::parts::{self, Ask, Query};
use super::table::Table;
use crate::config::{Campaign, CampaignState, Policy, RateMark};
use crate::store::{CampaignPause, Counts};
use crate::texts::Language;
use crate::time::{day_of, format_time, now_ms};
use crate::web::WebState;
use crate::web::error::WebError;
use crate::web::form::Fields;
use crate::web::html::escape;
use crate::web::origin::Site;

const PATH: &str = "/admin/campaigns";

/// The two windows shown, in days (today included).
const WINDOWS: [i64; 2] = [7, 30];

pub(super) async fn show(
    State(web): State<WebState>,
    desk: Desk,
    RawQuery(raw): RawQuery,
) -> Response {
    let query = Query::of(raw);
    let today = day_of(now_ms());
    let (overview, pauses, held) = tokio::join!(
        web.store.overview(today - (WINDOWS[1] - 1), today),
        web.store.campaign_pauses(),
        web.store.held_by_campaign(),
    );
    let (overview, pauses, held) = match (overview, pauses, held) {
        (Ok(o), Ok(p), Ok(h)) => (o, p, h),
        (o, p, h) => {
            let cause = [o.err(), p.err(), h.err()].into_iter().flatten().next();
            tracing::error!(cause = ?cause, "console: cannot read the campaigns");
            return super::layout::unavailable(&web, desk.lang);
        }
    };
    let totals: Vec<HashMap<String, Counts>> = WINDOWS
        .iter()
        .map(|w| {
            overview
                .campaign_totals(today - (w - 1))
                .into_iter()
                .collect()
        })
        .collect();
    let mut body = done_notice(&desk, &query);
    let c = &web.config.complaints;
    body.push_str(&format!(
        "<p>{} <strong>{}</strong>, {} <strong>{}</strong> <span class=\"muted\">([complaints] warn_rate, pause_rate)</span>. {}</p>\n",
        desk.t(
            "Complaints per copy delivered: the guard warns at",
            "Plaintes par copie remise : le garde-fou alerte à"
        ),
        escape(&parts::percent(&desk, Some(c.warn_rate))),
        desk.t("and pauses at", "et met en pause à"),
        escape(&parts::percent(&desk, Some(c.pause_rate))),
        desk.t(
            "The large mailbox providers ask senders to stay below 0.1 % and never to reach 0.3 %. Rates are per copy delivered on the days the copies were sent.",
            "Les grandes messageries demandent de rester sous 0,1 % et de ne jamais atteindre 0,3 %. Les taux sont rapportés aux copies remises les jours où elles ont été envoyées."
        ),
    ));
    let mut list: Vec<&Campaign> = web.config.campaigns.iter().collect();
    list.sort_by_key(|c| c.order);
    for campaign in list {
        let pause = pauses.iter().find(|p| p.campaign == campaign.id);
        body.push_str(&card(
            &web,
            &desk,
            Shown::Configured(campaign),
            pause,
            &held,
            &totals,
        ));
    }
    // A pause outlives its campaign's removal from the configuration:
    // shown, so it can still be resumed or its copies dropped.
    for pause in pauses
        .iter()
        .filter(|p| web.config.campaign(&p.campaign).is_none())
    {
        body.push_str(&card(
            &web,
            &desk,
            Shown::Gone(&pause.campaign),
            Some(pause),
            &held,
            &totals,
        ));
    }
    Page::new(desk.t("Campaigns", "Campagnes"), Nav::Campaigns)
        .body(body)
        .render(&web, &desk)
}

/// A campaign as the view shows it.
enum Shown<'a> {
    Configured(&'a Campaign),
    /// Paused, but no longer in the configuration.
    Gone(&'a str),
}

/// One campaign's card.
fn card(
    web: &WebState,
    desk: &Desk,
    shown: Shown<'_>,
    pause: Option<&CampaignPause>,
    held: &HashMap<String, i64>,
    totals: &[HashMap<String, Counts>],
) -> String {
    let (id, heading, about) = match &shown {
        Shown::Configured(c) => (
            c.id.as_str(),
            format!(
                "{} <code>{}</code> {}",
                escape(c.label_in(desk.lang, web.config.texts.default_language)),
                escape(&c.id),
                state_tag(desk, c.state)
            ),
            about(desk, c, web.config.texts.default_language),
        ),
        Shown::Gone(id) => (
            *id,
            format!(
                "<code>{}</code> <span class=\"tag\">{}</span>",
                escape(id),
                desk.t("not in the configuration", "absente de la configuration")
            ),
            String::new(),
        ),
    };
    let held = held.get(id).copied().unwrap_or(0);
    let mut html = format!(
        "<section class=\"card\" id=\"campaign-{}\" aria-labelledby=\"h-{}\">\n<h2 id=\"h-{}\">{heading}{}</h2>\n{about}",
        escape(id),
        escape(id),
        escape(id),
        if pause.is_some() {
            format!(
                " <span class=\"tag bad\">{}</span>",
                desk.t("paused", "en pause")
            )
        } else {
            String::new()
        },
    );
    if let Some(p) = pause {
        html.push_str(&format!(
            "<p>{} {} {} <strong>{}</strong>{} {}</p>\n",
            desk.t("Paused", "En pause depuis le"),
            escape(&format_time(p.paused_at)),
            desk.t("by", "par"),
            escape(&p.paused_by),
            parts::colon(desk),
            escape(&p.reason),
        ));
    }
    if held > 0 || pause.is_some() {
        html.push_str(&format!(
            "<p>{}{} <strong>{held}</strong></p>\n",
            desk.t(
                "Copies held until the campaign is resumed",
                "Copies retenues jusqu'à la reprise"
            ),
            parts::colon(desk),
        ));
    }
    html.push_str(&figures(web, desk, id, totals));
    if desk.role.may_run_queue() {
        html.push_str(&actions(desk, id, pause.is_some(), held));
    }
    html.push_str("</section>\n");
    html
}

/// Policy, double opt-in, how long consent lasts, and the label in each
/// language when the file gives one per language.
fn about(desk: &Desk, c: &Campaign, default_language: Language) -> String {
    let policy = match c.policy {
        Policy::OptIn => desk.t(
            "opt-in (mailed once they agreed)",
            "opt-in (envoi après accord)",
        ),
        Policy::OptOut => desk.t(
            "opt-out (mailed unless they objected)",
            "opt-out (envoi sauf opposition)",
        ),
        Policy::Mandatory => desk.t(
            "mandatory (always mailed)",
            "obligatoire (toujours envoyée)",
        ),
    };
    let mut parts = vec![
        format!(
            "{}{} {policy}",
            desk.t("Policy", "Politique"),
            parts::colon(desk)
        ),
        format!(
            "{}{} {}",
            desk.t("double opt-in", "double opt-in"),
            parts::colon(desk),
            if c.double_opt_in {
                desk.t("yes", "oui")
            } else {
                desk.t("no", "non")
            }
        ),
    ];
    if let Some(days) = c.consent_max_age_days {
        parts.push(format!(
            "{} {days} {}",
            desk.t("consent lasts", "consentement valable"),
            desk.t("days", "jours")
        ));
    }
    // A label per language: each, as recipients reading it see it.
    if c.label.is_per_language() {
        let labels: Vec<String> = Language::ALL
            .iter()
            .map(|l| format!("{} “{}”", l.code(), c.label_in(*l, default_language)))
            .collect();
        parts.push(format!(
            "{}{} {}",
            desk.t("label", "libellé"),
            parts::colon(desk),
            labels.join(", ")
        ));
    }
    format!("<p class=\"muted\">{}</p>\n", escape(&parts.join(" · ")))
}

fn state_tag(desk: &Desk, state: CampaignState) -> String {
    let (class, text) = match state {
        CampaignState::Active => ("good", desk.t("active", "active")),
        CampaignState::Inactive => ("warn", desk.t("inactive", "inactive")),
        CampaignState::Deleted => ("bad", desk.t("deleted", "supprimée")),
    };
    format!("<span class=\"tag {class}\">{text}</span>")
}

/// The table of the two windows' counts and rates.
fn figures(web: &WebState, desk: &Desk, id: &str, totals: &[HashMap<String, Counts>]) -> String {
    let mut t = Table::new(&[
        desk.t("Period", "Période"),
        desk.t("Delivered", "Remises"),
        desk.t("Hard bounces", "Rejets définitifs"),
        desk.t("Soft bounces", "Rejets temporaires"),
        desk.t("Complaints", "Plaintes"),
        desk.t("Bounce rate", "Taux de rejet"),
        desk.t("Complaint rate", "Taux de plainte"),
    ])
    .numeric(&[1, 2, 3, 4, 5, 6]);
    let none = Counts::default();
    for (days, totals) in WINDOWS.iter().zip(totals) {
        let n = totals.get(id).unwrap_or(&none);
        t.row(&[
            match days {
                7 => desk.t("7 days", "7 jours").to_owned(),
                _ => desk.t("30 days", "30 jours").to_owned(),
            },
            n.delivered.to_string(),
            n.hard_bounces.to_string(),
            n.soft_bounces.to_string(),
            n.complaints.to_string(),
            rate(web, desk, n.bounce_rate()),
            rate(web, desk, n.complaint_rate()),
        ]);
    }
    t.html(desk.t(
        "Copies delivered, bounces and complaints",
        "Copies remises, rejets et plaintes",
    ))
}

/// A rate and, at or above a line, a tag saying which.
fn rate(web: &WebState, desk: &Desk, rate: Option<f64>) -> String {
    let shown = escape(&parts::percent(desk, rate));
    match web.config.complaints.mark(rate) {
        RateMark::Ok => shown,
        RateMark::Warn => format!(
            "{shown} <span class=\"tag warn\">{}</span>",
            desk.t("warning line", "seuil d'alerte")
        ),
        RateMark::Pause => format!(
            "{shown} <span class=\"tag bad\">{}</span>",
            desk.t("pause line", "seuil de pause")
        ),
    }
}

/// An admin's forms: pause (with a reason) or resume; drop the held copies.
fn actions(desk: &Desk, id: &str, paused: bool, held: i64) -> String {
    let mut html = String::from("<div class=\"actions\">");
    if paused {
        html.push_str(&parts::action_form(
            desk,
            "/admin/campaigns/resume",
            &[("campaign", id)],
            desk.t(
                "Resume (held copies go out)",
                "Reprendre (les copies retenues partent)",
            ),
            false,
            Ask::Nothing,
        ));
    } else {
        html.push_str(&parts::action_form(
            desk,
            "/admin/campaigns/pause",
            &[("campaign", id)],
            desk.t("Pause", "Mettre en pause"),
            false,
            Ask::Reason {
                id,
                label: desk.t("Why pause it", "Motif de la pause"),
            },
        ));
    }
    if held > 0 {
        html.push_str(&parts::action_form(
            desk,
            "/admin/campaigns/drop-held",
            &[("campaign", id)],
            desk.t("Drop the held copies", "Abandonner les copies retenues"),
            true,
            Ask::Confirm(desk.t(
                "They are never sent; this cannot be undone",
                "Elles ne partiront jamais ; c'est irréversible",
            )),
        ));
    }
    html.push_str("</div>\n");
    html
}

/// The notice after a change (`?done=`), from a closed set of texts.
fn done_notice(desk: &Desk, query: &Query) -> String {
    let (Some(done), Some(campaign)) = (query.get("done"), query.get("campaign")) else {
        return String::new();
    };
    let n = query.count();
    let c = format!("<code>{}</code>", escape(campaign));
    let fr = desk.lang == Language::Fr;
    let text = match (done, fr) {
        ("paused", false) => format!("Campaign {c} paused; {n} copies held."),
        ("paused", true) => format!("Campagne {c} mise en pause ; {n} copies retenues."),
        ("already-paused", false) => format!("Campaign {c} was paused already; nothing changed."),
        ("already-paused", true) => {
            format!("La campagne {c} était déjà en pause ; rien n'a changé.")
        }
        ("resumed", false) => format!("Campaign {c} resumed; {n} held copies queued."),
        ("resumed", true) => {
            format!("Campagne {c} reprise ; {n} copies retenues remises en file.")
        }
        ("not-paused", false) => format!("Campaign {c} was not paused; nothing changed."),
        ("not-paused", true) => format!("La campagne {c} n'était pas en pause ; rien n'a changé."),
        ("dropped", false) => {
            format!("{n} held copies of {c} dropped; the campaign stays paused.")
        }
        ("dropped", true) => {
            format!("{n} copies retenues de {c} abandonnées ; la campagne reste en pause.")
        }
        _ => return String::new(),
    };
    parts::notice(&text)
}

/// The campaign a form names: configured, or paused now (`paused_ok`),
/// else the page saying so.
async fn campaign_of(
    web: &WebState,
    desk: &Desk,
    fields: &Fields,
    paused_ok: bool,
) -> Result<String, Response> {
    let id = parts::field(fields, "campaign");
    if web.config.campaign(id).is_some() {
        return Ok(id.to_owned());
    }
    if paused_ok && !id.is_empty() {
        match web.store.campaign_pauses().await {
            Ok(p) if p.iter().any(|p| p.campaign == id) => return Ok(id.to_owned()),
            Ok(_) => {}
            Err(e) => {
                tracing::error!(cause = %e, "console: cannot read the pauses");
                return Err(super::layout::unavailable(web, desk.lang));
            }
        }
    }
    Err(parts::problem(
        web,
        desk,
        StatusCode::NOT_FOUND,
        Nav::Campaigns,
        desk.t(
            "No such campaign in the configuration.",
            "Aucune campagne de ce nom dans la configuration.",
        ),
        PATH,
    ))
}

/// What an admin does to a campaign (the last part of the form's path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// `pause`: `campaign`, `reason` (required).
    Pause,
    /// `resume`: `campaign`.
    Resume,
    /// `drop-held`: `campaign`, `confirm=yes`.
    DropHeld,
}

impl Action {
    fn of(path: &str) -> Option<Action> {
        match path {
            "pause" => Some(Action::Pause),
            "resume" => Some(Action::Resume),
            "drop-held" => Some(Action::DropHeld),
            _ => None,
        }
    }
}

/// `POST /admin/campaigns/{pause|resume|drop-held}`: the checks every
/// action makes, the campaign (configured, or paused for resume and
/// drop-held: it may have left the configuration since), then the change,
/// then back to the view with a notice.
pub(super) async fn act(
    State(web): State<WebState>,
    Path(action): Path<String>,
    desk: Desk,
    site: Site,
    fields: Result<Fields, WebError>,
) -> Response {
    let Some(action) = Action::of(&action) else {
        return parts::problem(
            &web,
            &desk,
            StatusCode::NOT_FOUND,
            Nav::Campaigns,
            desk.t(
                "The console has no such campaign action.",
                "La console n'a pas cette action sur les campagnes.",
            ),
            PATH,
        );
    };
    let fields = match parts::may_act(&desk, &site, fields, desk.role.may_run_queue()) {
        Ok(f) => f,
        Err(refusal) => return refusal.page(&web, &desk),
    };
    let id = match campaign_of(&web, &desk, &fields, action != Action::Pause).await {
        Ok(id) => id,
        Err(page) => return page,
    };
    let refuse = |text: &str| {
        parts::problem(
            &web,
            &desk,
            StatusCode::UNPROCESSABLE_ENTITY,
            Nav::Campaigns,
            text,
            PATH,
        )
    };
    let actor = desk.actor();
    let done = match action {
        Action::Pause => {
            let Some(reason) = parts::reason(&fields) else {
                return refuse(desk.t(
                    "Say why the campaign is paused (one line, at most 500 characters).",
                    "Indiquez pourquoi la campagne est mise en pause (une ligne, 500 caractères au plus).",
                ));
            };
            web.store
                .pause_campaign(&id, &actor, reason)
                .await
                .map(|p| match p.paused {
                    true => ("paused", p.held),
                    false => ("already-paused", 0),
                })
        }
        Action::Resume => web.store.resume_campaign(&id, &actor).await.map(|r| {
            // Its copies are due now: the worker need not wait for its poll.
            web.wake.notify_one();
            match (r.pause, r.copies) {
                (None, 0) => ("not-paused", 0),
                (_, n) => ("resumed", n),
            }
        }),
        Action::DropHeld => {
            if !fields.has_pair("confirm", "yes") {
                return refuse(desk.t(
                    "Tick the box to confirm: dropped copies are never sent.",
                    "Cochez la case pour confirmer : les copies abandonnées ne partiront jamais.",
                ));
            }
            web.store
                .drop_held(&id, &actor)
                .await
                .map(|r| ("dropped", r.copies))
        }
    };
    match done {
        Ok((what, n)) => {
            tracing::info!(campaign = %id, by = %desk.operator, done = what, copies = n, "console: campaign action");
            let n = n.to_string();
            parts::back_to(&parts::link(
                &desk,
                PATH,
                &[("done", what), ("campaign", &id), ("n", &n)],
            ))
        }
        Err(e) => {
            tracing::error!(cause = %e, campaign = %id, action = ?action, "console: campaign action failed");
            super::layout::unavailable(&web, desk.lang)
        }
    }
}
