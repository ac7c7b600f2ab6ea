//! `/admin`: the overview. A search box for a message (queue id or
//! Message-ID); today, 7 and 30 days of messages
//! accepted, copies delivered, suppressions by reason, unsubscribes by
//! channel, bounce and complaint rates; the queue now; and the same by day
//! as charts (each with its figures in a table beside it) and by campaign.
//! One read of the daily rollups (`Store::overview`), never a scan of the
//! decision log.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::Desk;
use super::chart::{self, Line, Series, Unit};
use super::layout::{Nav, Page};
use super::table::Table;
use crate::consent::policy::Reason;
use crate::store::{Channel, Counts, Overview, QueueNow};
use crate::time::{day_of, format_day, format_time};
use crate::web::WebState;
use crate::web::html::escape;

/// Days the charts cover, by default and at most.
const DAYS_DEFAULT: i64 = 30;
const DAYS_MAX: i64 = 366;
/// The lines mailbox providers judge a sender's complaint rate by (Gmail
/// and Yahoo's sender guidelines: stay under 0.1 %, never reach 0.3 %).
const RATE_LINES: [(f64, &str); 2] = [(0.001, "0.1 %"), (0.003, "0.3 %")];

#[derive(Debug, Deserialize)]
pub(super) struct Params {
    days: Option<String>,
}

pub(super) async fn show(
    State(web): State<WebState>,
    desk: Desk,
    Query(params): Query<Params>,
) -> Response {
    let span = params
        .days
        .as_deref()
        .and_then(|d| d.parse::<i64>().ok())
        .filter(|d| (1..=DAYS_MAX).contains(d))
        .unwrap_or(DAYS_DEFAULT);
    let today = day_of(crate::time::now_ms());
    // At least 30 days: the "30 days" column reads them too.
    let from = today - span.max(30) + 1;
    let overview = match web.store.overview(from, today).await {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(cause = %e, "console: cannot read the overview");
            return super::layout::unavailable(&web, desk.lang);
        }
    };
    let mut body = search_forms(&desk);
    body.push_str(&periods(&desk, &overview, today));
    body.push_str(&queue(&desk, &overview.queue));
    body.push_str(&charts(&desk, &overview, today - span + 1, span));
    body.push_str(&campaigns(&desk, &web, &overview, today - span + 1, span));
    Page::new(desk.t("Overview", "Vue d'ensemble"), Nav::Overview)
        .body(body)
        .render(&web, &desk)
}

/// The two search boxes: a person by address, a message by id.
pub(super) fn search_forms(desk: &Desk) -> String {
    format!(
        "<div class=\"grid\">\
         <form class=\"search\" method=\"get\" action=\"{person}\" role=\"search\">\
         <div><label for=\"address\">{find_person}</label>\
         <input type=\"search\" inputmode=\"email\" autocomplete=\"off\" spellcheck=\"false\" id=\"address\" name=\"address\" \
         required placeholder=\"ann@example.net\"></div>\
         <button type=\"submit\">{find}</button></form>\
         <form class=\"search\" method=\"get\" action=\"{message}\" role=\"search\">\
         <div><label for=\"id\">{find_message}</label>\
         <input type=\"search\" id=\"id\" name=\"id\" required placeholder=\"01J… / &lt;id@crm&gt;\"></div>\
         <button type=\"submit\">{find}</button></form></div>\n",
        person = escape(&desk.href("/admin/person")),
        find_person = desk.t(
            "Find a person by address",
            "Trouver une personne par adresse"
        ),
        message = escape(&desk.href("/admin/message")),
        find_message = desk.t(
            "Find a message by queue id or Message-ID",
            "Trouver un message par identifiant de file ou Message-ID"
        ),
        find = desk.t("Find", "Chercher"),
    )
}

fn percent(rate: Option<f64>) -> String {
    rate.map(|r| format!("{:.2} %", r * 100.0))
        .unwrap_or_else(|| "—".into())
}

/// A rate with its tag against the providers' lines.
fn rate_cell(desk: &Desk, rate: Option<f64>) -> String {
    let Some(r) = rate else {
        return "—".into();
    };
    let (class, word) = if r >= RATE_LINES[1].0 {
        ("bad", desk.t("over 0.3 %", "au-delà de 0,3 %"))
    } else if r >= RATE_LINES[0].0 {
        ("warn", desk.t("over 0.1 %", "au-delà de 0,1 %"))
    } else {
        return percent(rate);
    };
    format!(
        "{} <span class=\"tag {class}\">{}</span>",
        percent(rate),
        escape(word)
    )
}

/// Today, 7 days, 30 days, side by side.
fn periods(desk: &Desk, o: &Overview, today: i64) -> String {
    let spans = [
        (desk.t("Today", "Aujourd'hui"), o.total(today)),
        (desk.t("7 days", "7 jours"), o.total(today - 6)),
        (desk.t("30 days", "30 jours"), o.total(today - 29)),
    ];
    let mut t = Table::new(&[
        desk.t("Figure", "Chiffre"),
        spans[0].0,
        spans[1].0,
        spans[2].0,
    ])
    .numeric(&[1, 2, 3]);
    let mut line = |name: &str, cell: &dyn Fn(&Counts) -> String| {
        let mut cells = vec![escape(name)];
        cells.extend(spans.iter().map(|(_, c)| cell(c)));
        t.row(&cells);
    };
    line(desk.t("Messages accepted", "Messages acceptés"), &|c| {
        c.accepted.to_string()
    });
    line(
        desk.t("Recipients to deliver", "Destinataires à servir"),
        &|c| c.to_deliver.to_string(),
    );
    line(desk.t("Copies delivered", "Copies remises"), &|c| {
        c.delivered.to_string()
    });
    line(
        desk.t("Recipients suppressed", "Destinataires écartés"),
        &|c| c.suppressed_total().to_string(),
    );
    line(desk.t("Unsubscribes", "Désabonnements"), &|c| {
        c.unsubscribes_total().to_string()
    });
    line(
        desk.t("Bounces (hard + soft)", "Rebonds (durs + temporaires)"),
        &|c| format!("{} + {}", c.hard_bounces, c.soft_bounces),
    );
    line(desk.t("Complaints", "Plaintes"), &|c| {
        c.complaints.to_string()
    });
    line(desk.t("Bounce rate", "Taux de rebond"), &|c| {
        percent(c.bounce_rate())
    });
    line(desk.t("Complaint rate", "Taux de plainte"), &|c| {
        rate_cell(desk, c.complaint_rate())
    });
    let mut out = format!("<h2>{}</h2>\n", desk.t("At a glance", "En bref"));
    out.push_str(&t.html(desk.t(
        "Every campaign, days in UTC",
        "Toutes les campagnes, jours en UTC",
    )));
    // Suppressed by reason and unsubscribes by channel over the same spans.
    let mut reasons: Vec<Reason> = spans
        .iter()
        .flat_map(|(_, c)| c.suppressed.keys().chain(c.suppressed_late.keys()).copied())
        .collect();
    reasons.sort();
    reasons.dedup();
    let mut t = Table::new(&[
        desk.t("Reason", "Motif"),
        spans[0].0,
        spans[1].0,
        spans[2].0,
    ])
    .numeric(&[1, 2, 3]);
    for reason in reasons {
        let mut cells = vec![format!("<code>{}</code>", reason.as_str())];
        cells.extend(spans.iter().map(|(_, c)| {
            let n = c.suppressed.get(&reason).copied().unwrap_or(0)
                + c.suppressed_late.get(&reason).copied().unwrap_or(0);
            n.to_string()
        }));
        t.row(&cells);
    }
    out.push_str("<div class=\"grid\"><div>");
    out.push_str(&t.html(desk.t("Suppressed, by reason", "Écartés, par motif")));
    let mut channels: Vec<Channel> = spans
        .iter()
        .flat_map(|(_, c)| c.unsubscribes.keys().copied())
        .collect();
    channels.sort();
    channels.dedup();
    let mut t = Table::new(&[
        desk.t("Channel", "Canal"),
        spans[0].0,
        spans[1].0,
        spans[2].0,
    ])
    .numeric(&[1, 2, 3]);
    for channel in channels {
        let mut cells = vec![escape(channel_name(desk, channel))];
        cells.extend(spans.iter().map(|(_, c)| {
            c.unsubscribes
                .get(&channel)
                .copied()
                .unwrap_or(0)
                .to_string()
        }));
        t.row(&cells);
    }
    out.push_str("</div><div>");
    out.push_str(&t.html(desk.t("Unsubscribes, by channel", "Désabonnements, par canal")));
    out.push_str("</div></div>\n");
    out
}

fn channel_name(desk: &Desk, c: Channel) -> &'static str {
    match c {
        Channel::OneClick => desk.t("one-click", "un clic"),
        Channel::Mail => desk.t("mail", "courriel"),
        Channel::PreferencePage => desk.t("preference page", "page de préférences"),
        Channel::Link => desk.t("link", "lien"),
        Channel::Form => desk.t("form", "formulaire"),
        Channel::Api => desk.t("API", "API"),
        Channel::Admin => desk.t("operator", "opérateur"),
        Channel::Import => desk.t("import", "import"),
        Channel::Complaint => desk.t("spam complaint", "plainte pour spam"),
    }
}

/// The queue now, and its oldest deferred copy.
fn queue(desk: &Desk, q: &QueueNow) -> String {
    let mut out = format!(
        "<h2>{}</h2>\n<div class=\"figures\">",
        desk.t("Queue now", "File d'attente maintenant")
    );
    for (name, n) in [
        (desk.t("queued", "en attente"), q.queued),
        (desk.t("deferred", "différées"), q.deferred),
        (desk.t("sending", "en cours d'envoi"), q.sending),
        (
            desk.t("held (campaign paused)", "retenues (campagne en pause)"),
            q.held,
        ),
    ] {
        out.push_str(&format!(
            "<section class=\"card\"><div class=\"figure\">{n}</div><div class=\"muted\">{}</div></section>",
            escape(name)
        ));
    }
    out.push_str("</div>\n");
    match &q.oldest_deferred {
        Some(d) => {
            let age_h = (crate::time::now_ms() - d.created_at).max(0) / 3_600_000;
            out.push_str(&format!(
                "<p>{} <a href=\"{}\"><code>{}</code></a>, {} {} h ({} {}, {}: {}). {}: {}</p>\n",
                desk.t("Oldest deferred copy:", "Plus ancienne copie différée :"),
                escape(&desk.href(&format!(
                    "/admin/message?id={}",
                    crate::web::console::url_escape(&d.message_id)
                ))),
                escape(&d.message_id),
                desk.t("queued", "en file depuis"),
                age_h,
                d.attempts,
                desk.t("attempts", "tentatives"),
                desk.t("next", "prochaine"),
                escape(&format_time(d.next_attempt_at)),
                desk.t("Last reply", "Dernière réponse"),
                escape(d.last_reply.as_deref().unwrap_or("—")),
            ));
        }
        None => out.push_str(&format!(
            "<p class=\"muted\">{}</p>\n",
            desk.t("No copy is deferred.", "Aucune copie n'est différée.")
        )),
    }
    out.push_str(&format!(
        "<p><a href=\"{}\">{}</a></p>\n",
        escape(&desk.href("/admin/queue")),
        desk.t("Open the queue", "Ouvrir la file d'attente")
    ));
    out
}

/// The days from `from` on, as the charts label them (`MM-DD`).
fn day_labels(o: &Overview, from: i64) -> Vec<String> {
    o.days
        .iter()
        .filter(|d| d.day >= from)
        .map(|d| format_day(d.day).get(5..).unwrap_or_default().to_owned())
        .collect()
}

fn per_day(o: &Overview, from: i64, f: impl Fn(&Counts) -> f64) -> Vec<f64> {
    o.days
        .iter()
        .filter(|d| d.day >= from)
        .map(|d| f(&d.all))
        .collect()
}

/// A chart, its legend, and its figures in a table a screen reader (or a
/// curious DPO) can read.
fn figure(
    desk: &Desk,
    heading: &str,
    svg: String,
    days: &[String],
    series: &[Series<'_>],
    unit: Unit,
) -> String {
    let mut rows = String::new();
    for (d, day) in days.iter().enumerate() {
        rows.push_str(&format!("<tr><th scope=\"row\">{}</th>", escape(day)));
        for s in series {
            let v = s.values.get(d).copied().unwrap_or(0.0);
            let text = match unit {
                Unit::Count => format!("{v:.0}"),
                Unit::Percent => format!("{:.3} %", v * 100.0),
            };
            rows.push_str(&format!("<td class=\"num\">{text}</td>"));
        }
        rows.push_str("</tr>\n");
    }
    let mut head_html = format!("<th scope=\"col\">{}</th>", desk.t("Day", "Jour"));
    for s in series {
        head_html.push_str(&format!(
            "<th scope=\"col\" class=\"num\">{}</th>",
            escape(s.name)
        ));
    }
    format!(
        "<section class=\"card\"><h3>{heading}</h3>{legend}{svg}\
         <details><summary>{figures}</summary><div class=\"scroll\"><table><thead><tr>{head_html}</tr></thead>\
         <tbody>{rows}</tbody></table></div></details></section>\n",
        heading = escape(heading),
        legend = chart::legend(series),
        figures = desk.t("Figures", "Chiffres"),
    )
}

/// The charts by day over the last `span` days (from `from`).
fn charts(desk: &Desk, o: &Overview, from: i64, span: i64) -> String {
    let days = day_labels(o, from);
    let mut out = format!(
        "<h2>{}</h2>\n<p>{}</p>\n<div class=\"charts\">",
        desk.t("By day", "Par jour"),
        span_links(desk, span)
    );
    // Messages and copies.
    let series = [
        Series {
            name: desk.t("messages accepted", "messages acceptés"),
            values: per_day(o, from, |c| c.accepted as f64),
        },
        Series {
            name: desk.t("copies delivered", "copies remises"),
            values: per_day(o, from, |c| c.delivered as f64),
        },
    ];
    let title = desk.t("Accepted and delivered", "Acceptés et remis");
    let svg = chart::lines(
        title,
        desk.t(
            "Messages accepted and copies delivered, per day",
            "Messages acceptés et copies remises, par jour",
        ),
        Unit::Count,
        &days,
        &series,
        &[],
    );
    out.push_str(&figure(desk, title, svg, &days, &series, Unit::Count));
    // Suppressed by reason.
    let mut reasons: Vec<Reason> = o
        .days
        .iter()
        .filter(|d| d.day >= from)
        .flat_map(|d| {
            d.all
                .suppressed
                .keys()
                .chain(d.all.suppressed_late.keys())
                .copied()
        })
        .collect();
    reasons.sort();
    reasons.dedup();
    let series: Vec<Series<'_>> = reasons
        .iter()
        .map(|r| Series {
            name: r.as_str(),
            values: per_day(o, from, |c| {
                (c.suppressed.get(r).copied().unwrap_or(0)
                    + c.suppressed_late.get(r).copied().unwrap_or(0)) as f64
            }),
        })
        .collect();
    let title = desk.t("Suppressed, by reason", "Écartés, par motif");
    let svg = chart::bars(
        title,
        desk.t(
            "Recipients suppressed per day, stacked by reason",
            "Destinataires écartés par jour, empilés par motif",
        ),
        &days,
        &series,
    );
    out.push_str(&figure(desk, title, svg, &days, &series, Unit::Count));
    // Unsubscribes by channel.
    let mut channels: Vec<Channel> = o
        .days
        .iter()
        .filter(|d| d.day >= from)
        .flat_map(|d| d.all.unsubscribes.keys().copied())
        .collect();
    channels.sort();
    channels.dedup();
    let series: Vec<Series<'_>> = channels
        .iter()
        .map(|ch| Series {
            name: channel_name(desk, *ch),
            values: per_day(o, from, |c| {
                c.unsubscribes.get(ch).copied().unwrap_or(0) as f64
            }),
        })
        .collect();
    let title = desk.t("Unsubscribes, by channel", "Désabonnements, par canal");
    let svg = chart::bars(
        title,
        desk.t(
            "Withdrawals per day, stacked by channel",
            "Retraits par jour, empilés par canal",
        ),
        &days,
        &series,
    );
    out.push_str(&figure(desk, title, svg, &days, &series, Unit::Count));
    // Rates against the providers' lines.
    let series = [
        Series {
            name: desk.t("bounce rate", "taux de rebond"),
            values: per_day(o, from, |c| c.bounce_rate().unwrap_or(0.0)),
        },
        Series {
            name: desk.t("complaint rate", "taux de plainte"),
            values: per_day(o, from, |c| c.complaint_rate().unwrap_or(0.0)),
        },
    ];
    let lines: Vec<Line<'_>> = RATE_LINES
        .iter()
        .map(|(value, label)| Line {
            label,
            value: *value,
        })
        .collect();
    let title = desk.t("Bounce and complaint rates", "Taux de rebond et de plainte");
    let svg = chart::lines(
        title,
        desk.t(
            "Per copy delivered, per day of sending, against the 0.1 % and 0.3 % lines",
            "Par copie remise, par jour d'envoi, face aux seuils de 0,1 % et 0,3 %",
        ),
        Unit::Percent,
        &days,
        &series,
        &lines,
    );
    out.push_str(&figure(desk, title, svg, &days, &series, Unit::Percent));
    out.push_str("</div>\n");
    out
}

/// Links to the other spans the charts can cover.
fn span_links(desk: &Desk, span: i64) -> String {
    let mut out = String::new();
    for (days, name) in [
        (7, desk.t("7 days", "7 jours")),
        (30, desk.t("30 days", "30 jours")),
        (90, desk.t("90 days", "90 jours")),
    ] {
        if !out.is_empty() {
            out.push_str(" · ");
        }
        if days == span {
            out.push_str(&format!(
                "<strong aria-current=\"true\">{}</strong>",
                escape(name)
            ));
        } else {
            out.push_str(&format!(
                "<a href=\"{}\">{}</a>",
                escape(&desk.href(&format!("/admin?days={days}"))),
                escape(name)
            ));
        }
    }
    out
}

/// Per campaign over the charts' span.
fn campaigns(desk: &Desk, web: &WebState, o: &Overview, from: i64, span: i64) -> String {
    let totals: BTreeMap<String, Counts> = o.campaign_totals(from);
    let mut t = Table::new(&[
        desk.t("Campaign", "Campagne"),
        desk.t("Accepted", "Acceptés"),
        desk.t("To deliver", "À servir"),
        desk.t("Suppressed", "Écartés"),
        desk.t("Delivered", "Remis"),
        desk.t("Unsubscribes", "Désabonnements"),
        desk.t("Bounces", "Rebonds"),
        desk.t("Complaints", "Plaintes"),
        desk.t("Complaint rate", "Taux de plainte"),
    ])
    .numeric(&[1, 2, 3, 4, 5, 6, 7, 8]);
    for (campaign, c) in &totals {
        let label = if campaign == crate::consent::ALL_CAMPAIGNS {
            desk.t(
                "(all: unsubscribe from all)",
                "(toutes : désabonnement de tout)",
            )
            .to_owned()
        } else {
            web.config
                .campaign(campaign)
                .map(|k| {
                    k.label_in(desk.lang, web.config.texts.default_language)
                        .to_owned()
                })
                .unwrap_or_default()
        };
        t.row(&[
            format!("<code>{}</code> {}", escape(campaign), escape(&label)),
            c.accepted.to_string(),
            c.to_deliver.to_string(),
            c.suppressed_total().to_string(),
            c.delivered.to_string(),
            c.unsubscribes_total().to_string(),
            (c.hard_bounces + c.soft_bounces).to_string(),
            c.complaints.to_string(),
            rate_cell(desk, c.complaint_rate()),
        ]);
    }
    let caption = format!(
        "{} {span} {}",
        desk.t("Per campaign, last", "Par campagne, derniers"),
        desk.t("days", "jours")
    );
    format!(
        "<h2>{}</h2>\n{}<p><a href=\"{}\">{}</a></p>\n",
        desk.t("Campaigns", "Campagnes"),
        t.html(&caption),
        escape(&desk.href("/admin/campaigns")),
        desk.t("Open the campaigns", "Ouvrir les campagnes")
    )
}
