//! The HTML of the pages: one function per page, all words from
//! [`Texts`], every dynamic value escaped. Pure: values in, a document out.
//!
//! Plain HTML5 that works without JavaScript, with no external assets (the
//! CSP forbids them): one inline stylesheet, a viewport for phones, `lang`
//! on the document, a `<label for>` for every checkbox, fieldsets with
//! legends, and a visible focus ring. Around each page's content, what
//! every page says (who is asking, which address): [`super::frame`].

use std::fmt::Write as _;

use crate::config::Controller;
use crate::texts::{self, Language, Texts};

use super::error::ErrorText;
use super::frame::{self, heading};

/// Escapes text for HTML content and double-quoted attribute values.
pub fn escape(text: &str) -> String {
    crate::rewrite::html_escape(text)
}

/// The words of one page, in one language, and what every page says
/// around them.
#[derive(Clone, Copy)]
pub struct Words<'a> {
    pub texts: &'a Texts,
    pub lang: Language,
    /// Who is asking (`[http] organisation`, ...).
    pub controller: &'a Controller,
    /// The address the page is about, masked; `None` on a page that knows
    /// no subject (an error).
    pub address: Option<&'a str>,
}

impl Words<'_> {
    /// The text for `key`, escaped.
    pub(super) fn get(&self, key: &str) -> String {
        escape(self.texts.get(self.lang, key))
    }

    /// The text for `key` with `{label}` filled in (in French with `de`
    /// agreeing: [`texts::with_label`]), escaped.
    fn with_label(&self, key: &str, label: &str) -> String {
        escape(&texts::with_label(
            self.lang,
            self.texts.get(self.lang, key),
            label,
        ))
    }
}

const STYLE: &str = "\
*{box-sizing:border-box}\
html{-webkit-text-size-adjust:100%}\
body{margin:0;background:#eef0f3;color:#1b1f24;\
font:1.0625rem/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,\"Helvetica Neue\",Arial,sans-serif}\
main{max-width:36rem;margin:2.5rem auto;padding:1.75rem 1.75rem 1.5rem;background:#fff;\
border:1px solid #d3d8df;border-radius:10px}\
@media (max-width:40rem){main{margin:0;border:0;border-radius:0;min-height:100vh;padding:1.25rem 1rem}}\
h1{font-size:1.5rem;line-height:1.3;margin:0 0 1rem}\
p{margin:0 0 1rem}\
a{color:#0b57d0;text-underline-offset:.15em}\
a:hover{color:#0842a0}\
fieldset{border:1px solid #d3d8df;border-radius:8px;margin:0 0 1.25rem;padding:.5rem 1rem .75rem}\
legend{font-weight:600;padding:0 .375rem}\
.choice{display:flex;gap:.75rem;align-items:flex-start;padding:.625rem 0}\
.choice+.choice{border-top:1px solid #e6e9ee}\
.choice input{width:1.25rem;height:1.25rem;margin:.15rem 0 0;flex:none;accent-color:#0b57d0}\
.choice label{flex:1;min-width:0;overflow-wrap:anywhere}\
.note{display:block;color:#4b5563;font-size:.9375rem}\
.actions{margin:0 0 1rem}\
button{font:inherit;font-weight:600;color:#fff;background:#0b57d0;border:2px solid #0b57d0;\
border-radius:8px;padding:.625rem 1.5rem;min-height:2.75rem;cursor:pointer}\
button:hover{background:#0842a0;border-color:#0842a0}\
:focus-visible{outline:3px solid #1b1f24;outline-offset:3px}\
.notice{background:#e8f5ed;border:1px solid #1e7e46;border-left-width:6px;border-radius:8px;\
padding:.75rem 1rem;margin:0 0 1.25rem}\
.problem h1{color:#a4161a}\
.about{color:#4b5563;font-size:.9375rem;overflow-wrap:anywhere}\
.logo{margin:0 0 1.25rem}.logo img{display:block;max-width:100%;max-height:4rem;height:auto}\
.undo{margin-top:1.75rem}\
button.secondary{color:#0b57d0;background:#fff}\
button.secondary:hover{color:#fff}\
footer{border-top:1px solid #d3d8df;margin-top:1.5rem;padding-top:1rem;color:#4b5563;font-size:.9375rem}\
footer p{margin:0 0 .5rem;overflow-wrap:anywhere}\
@media (prefers-reduced-motion:no-preference){a,button{transition:background-color .15s}}";

/// A whole document around `body` (already HTML), with the logo above it
/// and the footer below.
fn document(w: Words<'_>, title: &str, class: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"robots\" content=\"noindex, nofollow\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n\
         <body>\n<main class=\"{class}\">\n{logo}{body}{footer}</main>\n</body>\n</html>\n",
        lang = w.lang.code(),
        logo = frame::logo(w),
        footer = frame::footer(w),
    )
}

/// A form that POSTs back to the page's own URL (no `action`: it works
/// under whatever prefix `public_url` has), with one hidden field and a button.
fn button_form(field: &str, label: &str) -> String {
    format!(
        "<form method=\"post\">\n<input type=\"hidden\" name=\"{field}\" value=\"1\">\n\
         <p class=\"actions\"><button type=\"submit\">{label}</button></p>\n</form>\n"
    )
}

/// The "unsubscribed" page's second thought: a question and a button that
/// POSTs `undo` back to the page's URL.
fn undo_form(w: Words<'_>) -> String {
    format!(
        "<form method=\"post\" class=\"undo\">\n<input type=\"hidden\" name=\"undo\" value=\"1\">\n\
         <p>{}</p>\n<p class=\"actions\"><button type=\"submit\" class=\"secondary\">{}</button></p>\n</form>\n",
        w.get("page_undo_question"),
        w.get("page_undo_button"),
    )
}

fn preferences_link(w: Words<'_>, href: &str) -> String {
    format!(
        "<p><a href=\"{}\">{}</a></p>\n",
        escape(href),
        w.get("page_preferences_link")
    )
}

/// What an unsubscribe link is about: one campaign, or all of them.
pub enum Target<'a> {
    Campaign(&'a str),
    All,
}

impl Target<'_> {
    fn label(&self, w: Words<'_>) -> String {
        match self {
            Target::Campaign(label) => (*label).to_owned(),
            Target::All => w.texts.get(w.lang, "page_all_messages").to_owned(),
        }
    }
}

/// `GET /u/{token}`: the question and the button.
pub fn unsubscribe_form(w: Words<'_>, target: &Target<'_>, preferences: &str) -> String {
    let label = target.label(w);
    let mut body = format!(
        "{}<p>{}</p>\n",
        heading(w, &w.with_label("page_unsubscribe_question", &label)),
        w.get("page_unsubscribe_explain"),
    );
    if matches!(target, Target::All) {
        let _ = writeln!(body, "<p>{}</p>", w.get("page_all_messages_note"));
    }
    body.push_str(&button_form("confirm", &w.get("page_unsubscribe_button")));
    body.push_str(&preferences_link(w, preferences));
    document(w, &w.get("page_unsubscribe_title"), "", &body)
}

/// After `POST /u/{token}`: done, and a button to undo it.
pub fn unsubscribe_done(w: Words<'_>, target: &Target<'_>, preferences: &str) -> String {
    let label = target.label(w);
    let mut body = format!(
        "{}<p>{}</p>\n",
        heading(w, &w.with_label("page_unsubscribe_done", &label)),
        w.get("page_unsubscribe_done_detail"),
    );
    if matches!(target, Target::All) {
        let _ = writeln!(body, "<p>{}</p>", w.get("page_all_messages_note"));
    }
    body.push_str(&preferences_link(w, preferences));
    body.push_str(&undo_form(w));
    document(w, &w.get("page_unsubscribe_title"), "", &body)
}

/// After the "unsubscribed" page's undo button.
pub fn undo_done(w: Words<'_>, target: &Target<'_>, preferences: &str) -> String {
    let label = target.label(w);
    let body = format!(
        "{}<p>{}</p>\n{}",
        heading(w, &w.with_label("page_undo_done", &label)),
        w.get("page_undo_done_detail"),
        preferences_link(w, preferences),
    );
    document(w, &w.get("page_unsubscribe_title"), "", &body)
}

/// An unsubscribe or opt-in link for a mandatory campaign: nothing to change.
pub fn mandatory(w: Words<'_>, title_key: &str, label: &str, preferences: &str) -> String {
    let body = format!(
        "{}<p>{}</p>\n{}",
        heading(w, &w.get(title_key)),
        w.with_label("page_mandatory_unsubscribe", label),
        preferences_link(w, preferences),
    );
    document(w, &w.get(title_key), "", &body)
}

/// One campaign on the preference page.
pub struct Choice<'a> {
    pub id: &'a str,
    pub label: &'a str,
    /// Shown ticked: the campaign's messages are delivered now.
    pub ticked: bool,
    /// Mandatory: ticked, disabled, with a note.
    pub locked: bool,
}

/// `GET` and `POST /p/{token}`.
pub fn preferences(w: Words<'_>, choices: &[Choice<'_>], all: bool, saved: bool) -> String {
    let title = w.get("page_preferences_title");
    let mut body = heading(w, &title);
    if saved {
        let _ = writeln!(
            body,
            "<p class=\"notice\" role=\"status\">{}</p>",
            w.get("page_saved_notice")
        );
    }
    let _ = write!(
        body,
        "<p>{}</p>\n<form method=\"post\">\n<input type=\"hidden\" name=\"save\" value=\"1\">\n\
         <fieldset>\n<legend>{}</legend>\n",
        w.get("page_preferences_intro"),
        w.get("page_preferences_legend"),
    );
    for c in choices {
        let id = escape(&format!("c-{}", c.id));
        let value = escape(c.id);
        let label = escape(c.label);
        if c.locked {
            let _ = writeln!(
                body,
                "<div class=\"choice\"><input type=\"checkbox\" id=\"{id}\" checked disabled \
                 aria-describedby=\"{id}-note\">\
                 <label for=\"{id}\">{label}<span class=\"note\" id=\"{id}-note\">{}</span></label></div>",
                w.get("page_mandatory_note"),
            );
        } else {
            let checked = if c.ticked { " checked" } else { "" };
            let _ = writeln!(
                body,
                "<div class=\"choice\"><input type=\"checkbox\" id=\"{id}\" name=\"c\" value=\"{value}\"{checked}>\
                 <label for=\"{id}\">{label}</label></div>",
            );
        }
    }
    let checked = if all { " checked" } else { "" };
    let _ = write!(
        body,
        "</fieldset>\n<fieldset>\n<legend>{}</legend>\n\
         <div class=\"choice\"><input type=\"checkbox\" id=\"all\" name=\"all\" value=\"1\"{checked} \
         aria-describedby=\"all-note\">\
         <label for=\"all\">{}<span class=\"note\" id=\"all-note\">{}</span></label></div>\n\
         </fieldset>\n<p class=\"actions\"><button type=\"submit\">{}</button></p>\n</form>\n",
        w.get("page_all_legend"),
        w.get("page_all_label"),
        w.get("page_all_messages_note"),
        w.get("page_save_button"),
    );
    document(w, &title, "", &body)
}

/// `GET /o/{token}`: the confirmation button.
pub fn optin_form(w: Words<'_>, label: &str, preferences: &str) -> String {
    let body = format!(
        "{}{}{}",
        heading(w, &w.with_label("page_optin_question", label)),
        button_form("confirm", &w.get("page_optin_button")),
        preferences_link(w, preferences),
    );
    document(w, &w.get("page_optin_title"), "", &body)
}

/// After `POST /o/{token}`.
pub fn optin_done(w: Words<'_>, label: &str, preferences: &str) -> String {
    let body = format!(
        "{}{}",
        heading(w, &w.with_label("page_optin_done", label)),
        preferences_link(w, preferences),
    );
    document(w, &w.get("page_optin_title"), "", &body)
}

/// The plain error page.
pub fn error(w: Words<'_>, text: ErrorText) -> String {
    let (title, detail) = text.keys();
    let title = w.get(title);
    let body = format!("<h1>{title}</h1>\n<p>{}</p>\n", w.get(detail));
    document(w, &title, "problem", &body)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape(r#"<a href="x" onclick='y'>&</a>"#),
            "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
        );
        assert_eq!(escape("Café « ok »"), "Café « ok »");
    }

    #[test]
    fn labels_and_overrides_are_escaped() {
        let mut o = BTreeMap::new();
        o.insert(
            (Language::En, "page_optin_question".to_owned()),
            "<b>Receive</b> {label}?".to_owned(),
        );
        let texts = Texts::new(Language::En, o);
        let who = Controller::default();
        let w = Words {
            texts: &texts,
            lang: Language::En,
            controller: &who,
            address: None,
        };
        let page = optin_form(w, "<script>alert(1)</script>", "../p/k1.\"x");
        assert!(page.contains(
            "<h1>&lt;b&gt;Receive&lt;/b&gt; &lt;script&gt;alert(1)&lt;/script&gt;?</h1>"
        ));
        assert!(page.contains("href=\"../p/k1.&quot;x\""));
        assert!(!page.contains("<script>"));
        assert!(page.starts_with("<!doctype html>\n<html lang=\"en\">"));
    }

    #[test]
    fn preference_page_marks_ticks_and_locks() {
        let texts = Texts::default();
        let who = Controller::default();
        let w = Words {
            texts: &texts,
            lang: Language::Fr,
            controller: &who,
            address: None,
        };
        let choices = [
            Choice {
                id: "news",
                label: "News & more",
                ticked: true,
                locked: false,
            },
            Choice {
                id: "offers",
                label: "Offers",
                ticked: false,
                locked: false,
            },
            Choice {
                id: "bills",
                label: "Bills",
                ticked: true,
                locked: true,
            },
        ];
        let page = preferences(w, &choices, false, true);
        assert!(page.contains("<html lang=\"fr\">"));
        assert!(page.contains(
            "<input type=\"checkbox\" id=\"c-news\" name=\"c\" value=\"news\" checked><label for=\"c-news\">News &amp; more</label>"
        ));
        assert!(page.contains(
            "<input type=\"checkbox\" id=\"c-offers\" name=\"c\" value=\"offers\"><label"
        ));
        assert!(page.contains("id=\"c-bills\" checked disabled"));
        assert!(page.contains("role=\"status\">Enregistré."));
        assert!(page.contains("id=\"all\" name=\"all\" value=\"1\" aria-describedby"));
    }
}
