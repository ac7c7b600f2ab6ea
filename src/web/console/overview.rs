//! `/admin`: the overview. A search box for a person (by address) and for
//! a message (queue id or Message-ID), and the queue now.

use axum::extract::State;
use axum::response::Response;

use super::Desk;
use super::layout::{Nav, Page};
use crate::web::WebState;
use crate::web::html::escape;

pub(super) async fn show(State(web): State<WebState>, desk: Desk) -> Response {
    let mut body = search_forms(&desk);
    match web.store.queue_depth().await {
        Ok(depth) => {
            body.push_str(&format!(
                "<h2>{}</h2>\n<ul>",
                desk.t("Queue now", "File d'attente")
            ));
            for (status, n) in depth {
                body.push_str(&format!("<li>{}: {n}</li>", escape(&status)));
            }
            body.push_str("</ul>\n");
        }
        Err(e) => {
            tracing::error!(cause = %e, "console: cannot read the queue depth");
            return super::layout::unavailable(&web, desk.lang);
        }
    }
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
         <input type=\"email\" id=\"address\" name=\"address\" required placeholder=\"ann@example.net\"></div>\
         <button type=\"submit\">{find}</button></form>\
         <form class=\"search\" method=\"get\" action=\"{message}\" role=\"search\">\
         <div><label for=\"id\">{find_message}</label>\
         <input type=\"search\" id=\"id\" name=\"id\" required placeholder=\"01J… / &lt;id@crm&gt;\"></div>\
         <button type=\"submit\">{find}</button></form></div>\n",
        person = escape(&desk.href("/admin/person")),
        message = escape(&desk.href("/admin/message")),
        find_person = desk.t(
            "Find a person by address",
            "Trouver une personne par adresse"
        ),
        find_message = desk.t(
            "Find a message by queue id or Message-ID",
            "Trouver un message par identifiant de file ou Message-ID"
        ),
        find = desk.t("Find", "Chercher"),
    )
}
