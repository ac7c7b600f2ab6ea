//! What the console's list views (campaigns, queue, suppressions, audit)
//! share: their query string, the link to the next page, the notice after
//! a change, a page saying why a request changed nothing, the checks every
//! action makes before it acts, and the small formats (an age, a rate, a
//! link to a person or a message).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::layout::{Nav, Page};
use super::{Desk, Refusal};
use crate::web::WebState;
use crate::web::error::WebError;
use crate::web::form::Fields;
use crate::web::html::escape;
use crate::web::origin::Site;

/// Rows on one page of a list view.
pub(super) const PAGE_ROWS: i64 = 50;

/// A view's query string, as name/value pairs.
pub(super) struct Query(Vec<(String, String)>);

impl Query {
    pub fn of(raw: Option<String>) -> Query {
        Query(
            url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// The first value of `name`, trimmed; `None` when absent or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// `before=` (the paging cursor: a row id); `Err` when it is not one.
    pub fn before(&self) -> Result<Option<i64>, ()> {
        match self.get("before") {
            None => Ok(None),
            Some(v) => v.parse::<i64>().map(Some).map_err(|_| ()),
        }
    }

    /// A number the notice names (`n=`), zero when absent.
    pub fn count(&self) -> u64 {
        self.get("n").and_then(|v| v.parse().ok()).unwrap_or(0)
    }
}

/// `path?name=value&…` (values encoded; empty values left out).
pub(super) fn link(desk: &Desk, path: &str, params: &[(&str, &str)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in params.iter().filter(|(_, v)| !v.is_empty()) {
        query.append_pair(name, value);
    }
    let query = query.finish();
    if query.is_empty() {
        desk.href(path)
    } else {
        format!("{}?{query}", desk.href(path))
    }
}

/// The paging links under a list: back to the newest rows when this page
/// is not the first, and to older rows when this page was full (`last`:
/// the id of its last row). `params` keep the view's filters.
pub(super) fn pager(
    desk: &Desk,
    path: &str,
    params: &[(&str, &str)],
    paged: bool,
    full_page_last: Option<i64>,
) -> String {
    let mut links = Vec::new();
    if paged {
        links.push(format!(
            "<a href=\"{}\">{}</a>",
            escape(&link(desk, path, params)),
            desk.t("← Newest", "← Les plus récents")
        ));
    }
    if let Some(last) = full_page_last {
        let before = last.to_string();
        let mut with = params.to_vec();
        with.push(("before", &before));
        links.push(format!(
            "<a href=\"{}\" rel=\"next\">{}</a>",
            escape(&link(desk, path, &with)),
            desk.t("Older →", "Plus anciens →")
        ));
    }
    if links.is_empty() {
        return String::new();
    }
    format!(
        "<nav class=\"pager\" aria-label=\"{}\"><p>{}</p></nav>\n",
        desk.t("Pages", "Pages"),
        links.join(" · ")
    )
}

/// The id a "next page" link starts after: the last row's, when the page
/// is full (there may be more).
pub(super) fn next_cursor(len: usize, last: Option<i64>) -> Option<i64> {
    (len as i64 >= PAGE_ROWS).then_some(last).flatten()
}

/// The notice after a change (text already HTML).
pub(super) fn notice(html: &str) -> String {
    format!("<p class=\"notice\" role=\"status\">{html}</p>\n")
}

/// A page saying why the request changed nothing (a form filled wrong, a
/// copy no longer in that state), with a link back to the view.
pub(super) fn problem(
    web: &WebState,
    desk: &Desk,
    status: StatusCode,
    nav: Nav,
    text: &str,
    back: &str,
) -> Response {
    Page::new(desk.t("Nothing was changed", "Rien n'a été modifié"), nav)
        .status(status)
        .body(format!(
            "<p class=\"problem\" role=\"alert\">{}</p>\n<p><a href=\"{}\">{}</a></p>\n",
            escape(text),
            escape(&desk.href(back)),
            desk.t("Back", "Retour")
        ))
        .render(web, desk)
}

/// What every action checks before it acts, in this order: the form is
/// this session's (CSRF token, sent from this console), then the role
/// allows the action. The fields, or the refusal.
pub(super) fn may_act(
    desk: &Desk,
    site: &Site,
    fields: Result<Fields, WebError>,
    allowed: bool,
) -> Result<Fields, Refusal> {
    let fields = fields.unwrap_or_default();
    desk.check_form(&fields, site)?;
    desk.require(allowed)?;
    Ok(fields)
}

/// The first value of a form field, trimmed (empty when absent).
pub(super) fn field<'a>(fields: &'a Fields, name: &'a str) -> &'a str {
    fields.values(name).next().unwrap_or_default().trim()
}

/// The longest reason an action keeps (what an operator types in one line).
pub(super) const MAX_REASON: usize = 500;

/// The form's `reason`, trimmed: `None` when empty or longer than
/// [`MAX_REASON`] characters.
pub(super) fn reason(fields: &Fields) -> Option<&str> {
    let reason = field(fields, "reason");
    (!reason.is_empty() && reason.chars().count() <= MAX_REASON).then_some(reason)
}

/// `303 See Other` to `href` (a link made by [`link`]): after a change,
/// the browser shows the view again and a reload posts nothing.
pub(super) fn back_to(href: &str) -> Response {
    Redirect::to(href).into_response()
}

/// How long ago `then` was, shortly: `45 s`, `12 min`, `3 h 20 min`, `2 d 4 h`.
pub(super) fn age(desk: &Desk, now: i64, then: i64) -> String {
    let s = (now - then).max(0) / 1000;
    let (d, h, m) = (s / 86_400, s / 3600 % 24, s / 60 % 60);
    let day = desk.t("d", "j");
    match (d, h, m) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, m) => format!("{m} min"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, 0, _) => format!("{d} {day}"),
        (d, h, _) => format!("{d} {day} {h} h"),
    }
}

/// A rate (per copy delivered) as a percentage in the operator's
/// language (`0.25%`, `0,25 %`); a dash when nothing was delivered.
pub(super) fn percent(desk: &Desk, rate: Option<f64>) -> String {
    let Some(rate) = rate else {
        return "—".to_owned();
    };
    let text = crate::config::rate_percent(rate);
    match desk.lang {
        crate::texts::Language::En => text,
        // French writes a decimal comma and a (narrow no-break) space before %.
        crate::texts::Language::Fr => text.replace('.', ",").replace('%', "\u{202f}%"),
    }
}

/// `:` as the operator's language writes it after a label (French puts a
/// no-break space before it).
pub(super) fn colon(desk: &Desk) -> &'static str {
    desk.t(":", "\u{a0}:")
}

/// A person's address, linked to their page (HTML).
pub(super) fn person_link(desk: &Desk, address: &str) -> String {
    format!(
        "<a href=\"{}\">{}</a>",
        escape(&link(desk, "/admin/person", &[("address", address)])),
        escape(address)
    )
}

/// A queue id, linked to the message's trace (HTML).
pub(super) fn message_link(desk: &Desk, queue_id: &str) -> String {
    format!(
        "<a href=\"{}\"><code>{}</code></a>",
        escape(&link(desk, "/admin/message", &[("id", queue_id)])),
        escape(queue_id)
    )
}

/// What an action's form asks before its button.
pub(super) enum Ask<'a> {
    Nothing,
    /// A required checkbox with this label (a change that cannot be undone).
    Confirm(&'a str),
    /// A required one-line reason with this label; `id` tells the forms
    /// of one page apart.
    Reason {
        id: &'a str,
        label: &'a str,
    },
}

/// A form that posts `fields` (name, value; hidden) to `action` with the
/// session's CSRF token, after what `ask` asks.
pub(super) fn action_form(
    desk: &Desk,
    action: &str,
    fields: &[(&str, &str)],
    button: &str,
    danger: bool,
    ask: Ask<'_>,
) -> String {
    let class = match ask {
        Ask::Reason { .. } => "search",
        _ => "inline",
    };
    let mut form = format!(
        "<form class=\"{class}\" method=\"post\" action=\"{}\">{}",
        escape(&desk.href(action)),
        desk.csrf_field()
    );
    for (name, value) in fields {
        form.push_str(&format!(
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            escape(name),
            escape(value)
        ));
    }
    match ask {
        Ask::Nothing => {}
        Ask::Confirm(label) => form.push_str(&format!(
            "<label class=\"check\"><input type=\"checkbox\" name=\"confirm\" value=\"yes\" required> {}</label> ",
            escape(label)
        )),
        Ask::Reason { id, label } => form.push_str(&format!(
            "<div><label for=\"reason-{id}\">{}</label>\
             <input type=\"text\" id=\"reason-{id}\" name=\"reason\" required maxlength=\"{MAX_REASON}\"></div>",
            escape(label),
            id = escape(id),
        )),
    }
    form.push_str(&format!(
        "<button type=\"submit\"{}>{}</button></form>",
        if danger { " class=\"danger\"" } else { "" },
        escape(button)
    ));
    form
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cursor_is_a_row_id_or_nothing() {
        assert_eq!(Query::of(None).before(), Ok(None));
        assert_eq!(Query::of(Some("before=42".into())).before(), Ok(Some(42)));
        assert_eq!(Query::of(Some("before=".into())).before(), Ok(None));
        assert!(Query::of(Some("before=x".into())).before().is_err());
        assert_eq!(Query::of(Some("n=3&n=4".into())).count(), 3);
    }

    #[test]
    fn a_next_page_only_after_a_full_one() {
        assert_eq!(next_cursor(PAGE_ROWS as usize, Some(7)), Some(7));
        assert_eq!(next_cursor(PAGE_ROWS as usize - 1, Some(7)), None);
        assert_eq!(next_cursor(0, None), None);
    }
}
