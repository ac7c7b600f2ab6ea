//! The console's page shell: the document, its one stylesheet, the
//! navigation, the sign-in form and the pages every view may end on.
//! Plain HTML5 without scripts: a skip link, landmarks, `aria-current` on
//! the view shown, a visible focus ring, tables that scroll sideways on a
//! phone rather than overflow, contrast of at least 4.5:1.

use axum::http::StatusCode;
use axum::response::Response;

use super::{Desk, tr};
use crate::texts::Language;
use crate::web::html::escape;
use crate::web::{WebState, html_page};

const STYLE: &str = "\
*{box-sizing:border-box}\
html{-webkit-text-size-adjust:100%}\
body{margin:0;background:#f3f4f6;color:#1b1f24;\
font:1rem/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,\"Helvetica Neue\",Arial,sans-serif}\
a{color:#0b57d0;text-underline-offset:.15em}\
a:hover{color:#0842a0}\
:focus-visible{outline:3px solid #1b1f24;outline-offset:2px}\
.skip{position:absolute;left:-999px;top:0;background:#fff;padding:.5rem 1rem}\
.skip:focus{left:.5rem;z-index:2}\
header.top{background:#1b1f24;color:#fff}\
header.top .bar{max-width:76rem;margin:0 auto;padding:.5rem 1rem;display:flex;flex-wrap:wrap;gap:.5rem 1.25rem;align-items:center}\
header.top .brand{font-weight:700;color:#fff;text-decoration:none;margin-right:auto}\
header.top .who{font-size:.875rem;color:#d1d5db}\
header.top form{margin:0}\
header.top button{background:transparent;color:#fff;border:1px solid #9ca3af;min-height:2rem;padding:.125rem .75rem;font-weight:400}\
nav.views{background:#fff;border-bottom:1px solid #d3d8df}\
nav.views ul{list-style:none;margin:0 auto;padding:0 .5rem;max-width:76rem;display:flex;flex-wrap:wrap}\
nav.views a{display:block;padding:.625rem .75rem;text-decoration:none;color:#1b1f24;border-bottom:3px solid transparent}\
nav.views a[aria-current=page]{border-bottom-color:#0b57d0;font-weight:600}\
main{max-width:76rem;margin:0 auto;padding:1.25rem 1rem 3rem}\
h1{font-size:1.5rem;line-height:1.3;margin:.25rem 0 1rem}\
h2{font-size:1.1875rem;margin:1.75rem 0 .625rem}\
h3{font-size:1rem;margin:1.25rem 0 .5rem}\
p{margin:0 0 1rem}\
section.card{background:#fff;border:1px solid #d3d8df;border-radius:8px;padding:1rem 1.25rem;margin:0 0 1.25rem}\
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,15rem),1fr));gap:1rem}\
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,30rem),1fr));gap:1rem}\
.figure{font-size:1.75rem;font-weight:700;line-height:1.2}\
.muted{color:#4b5563;font-size:.875rem}\
.scroll{overflow-x:auto;margin:0 0 1rem;-webkit-overflow-scrolling:touch}\
table{border-collapse:collapse;width:100%;font-size:.9375rem;background:#fff}\
caption{text-align:left;font-weight:600;padding:.375rem 0;position:sticky;left:0;max-width:calc(100vw - 4rem);box-sizing:border-box}\
th,td{text-align:left;padding:.375rem .625rem;border-bottom:1px solid #e5e7eb;vertical-align:top}\
th{background:#f9fafb;font-weight:600;white-space:nowrap}\
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}\
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.8125rem}\
td code{white-space:nowrap}td .mono{overflow-wrap:anywhere}\
.figures{display:grid;grid-template-columns:repeat(auto-fit,minmax(8.5rem,1fr));gap:.75rem}\
form.inline{display:inline}\
label.check{display:inline;font-weight:400;margin:0 .375rem 0 0}\
.actions{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:flex-end}\
td form.inline{display:inline-block;margin:0 .25rem .25rem 0;white-space:nowrap}\
section.card>h2:first-child{margin-top:.25rem}\
nav.tabs a[aria-current=page]{font-weight:700;color:#1b1f24;text-decoration:none}\
form.search{display:flex;flex-wrap:wrap;gap:.5rem;align-items:flex-end;margin:0 0 1rem}\
label{font-weight:600;display:block;margin:0 0 .25rem}\
.field{margin:0 0 .75rem}\
input[type=text],input[type=email],input[type=password],input[type=search],select,textarea{font:inherit;padding:.5rem .625rem;\
border:1px solid #6b7280;border-radius:6px;min-height:2.5rem;max-width:100%;background:#fff;color:#1b1f24}\
input[type=search],input[type=email]{width:22rem}\
textarea{width:100%;min-height:4rem}\
button{font:inherit;font-weight:600;color:#fff;background:#0b57d0;border:2px solid #0b57d0;\
border-radius:6px;padding:.375rem 1rem;min-height:2.5rem;cursor:pointer}\
button:hover{background:#0842a0;border-color:#0842a0}\
button.danger{background:#a4161a;border-color:#a4161a}\
button.danger:hover{background:#7f1114;border-color:#7f1114}\
button.quiet{background:#fff;color:#0b57d0}\
.notice{background:#e8f5ed;border:1px solid #1e7e46;border-left-width:6px;border-radius:6px;padding:.625rem 1rem;margin:0 0 1rem}\
.problem{background:#fdecea;border:1px solid #a4161a;border-left-width:6px;border-radius:6px;padding:.625rem 1rem;margin:0 0 1rem}\
.tag{display:inline-block;border-radius:999px;padding:0 .5rem;font-size:.8125rem;border:1px solid #9ca3af;white-space:nowrap}\
.tag.good{background:#e8f5ed;border-color:#1e7e46;color:#14532d}\
.tag.bad{background:#fdecea;border-color:#a4161a;color:#7f1114}\
.tag.warn{background:#fff7e0;border-color:#8a5a00;color:#5c3c00}\
svg.chart{width:100%;height:auto;max-width:40rem;display:block}\
svg.chart text{font:12px system-ui,sans-serif;fill:#374151}\
.legend{display:flex;flex-wrap:wrap;gap:.25rem 1rem;list-style:none;padding:0;margin:.25rem 0 .5rem;font-size:.875rem}\
.legend i{display:inline-block;width:.75rem;height:.75rem;border-radius:2px;margin-right:.375rem;vertical-align:-.05rem}\
details{margin:0 0 1rem}\
summary{cursor:pointer;color:#0b57d0}\
.signin{max-width:26rem;margin:3rem auto;background:#fff;border:1px solid #d3d8df;border-radius:10px;padding:1.5rem}\
@media (max-width:40rem){main{padding:1rem .75rem 2rem}input[type=search],input[type=email]{width:100%}\
nav.views ul{flex-wrap:nowrap;overflow-x:auto;white-space:nowrap}nav.views a{padding:.5rem .625rem}\
header.top .who{flex-basis:100%;order:3}\
.signin{margin:0;border:0;border-radius:0;min-height:100vh}}";

/// The views, as the navigation lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Overview,
    Person,
    Message,
    Campaigns,
    Queue,
    Suppressions,
    Register,
    Audit,
    /// A page that is none of them (a refusal).
    None,
}

impl Nav {
    const ALL: [Nav; 8] = [
        Nav::Overview,
        Nav::Person,
        Nav::Message,
        Nav::Campaigns,
        Nav::Queue,
        Nav::Suppressions,
        Nav::Register,
        Nav::Audit,
    ];

    fn path(self) -> &'static str {
        match self {
            Nav::Overview | Nav::None => "/admin",
            Nav::Person => "/admin/person",
            Nav::Message => "/admin/message",
            Nav::Campaigns => "/admin/campaigns",
            Nav::Queue => "/admin/queue",
            Nav::Suppressions => "/admin/suppressions",
            Nav::Register => "/admin/register",
            Nav::Audit => "/admin/audit",
        }
    }

    fn name(self, lang: Language) -> &'static str {
        match self {
            Nav::Overview | Nav::None => tr(lang, "Overview", "Vue d'ensemble"),
            Nav::Person => tr(lang, "Person", "Personne"),
            Nav::Message => tr(lang, "Message", "Message"),
            Nav::Campaigns => tr(lang, "Campaigns", "Campagnes"),
            Nav::Queue => tr(lang, "Queue", "File d'attente"),
            Nav::Suppressions => tr(lang, "Suppressions", "Suppressions"),
            Nav::Register => tr(lang, "Register", "Registre"),
            Nav::Audit => tr(lang, "Audit", "Journal d'audit"),
        }
    }
}

/// A page of the console being made.
pub(crate) struct Page {
    title: String,
    nav: Nav,
    status: StatusCode,
    body: String,
}

impl Page {
    pub fn new(title: impl Into<String>, nav: Nav) -> Page {
        Page {
            title: title.into(),
            nav,
            status: StatusCode::OK,
            body: String::new(),
        }
    }

    pub fn status(mut self, status: StatusCode) -> Page {
        self.status = status;
        self
    }

    /// The page's content (HTML, its values already escaped), after its `<h1>`.
    pub fn body(mut self, html: impl Into<String>) -> Page {
        self.body = html.into();
        self
    }

    /// The whole document, for a signed-in operator.
    pub fn render(self, web: &WebState, desk: &Desk) -> Response {
        let mut nav = String::new();
        for view in Nav::ALL {
            let current = if view == self.nav {
                " aria-current=\"page\""
            } else {
                ""
            };
            nav.push_str(&format!(
                "<li><a href=\"{}\"{current}>{}</a></li>",
                escape(&desk.href(view.path())),
                escape(view.name(desk.lang))
            ));
        }
        let organisation = web
            .config
            .http
            .public_url
            .host_str()
            .unwrap_or_default()
            .to_owned();
        let header = format!(
            "<a class=\"skip\" href=\"#main\">{skip}</a>\n\
             <header class=\"top\"><div class=\"bar\">\
             <a class=\"brand\" href=\"{home}\">consent-relay · {organisation}</a>\
             <span class=\"who\">{signed} <strong>{name}</strong> ({role})</span>\
             <form method=\"post\" action=\"{out}\">{csrf}<button type=\"submit\">{sign_out}</button></form>\
             </div></header>\n\
             <nav class=\"views\" aria-label=\"{views}\"><ul>{nav}</ul></nav>\n",
            skip = desk.t("Skip to content", "Aller au contenu"),
            home = escape(&desk.href("/admin")),
            organisation = escape(&organisation),
            signed = desk.t("Signed in as", "Connecté en tant que"),
            name = escape(&desk.operator),
            role = role_name(desk),
            out = escape(&desk.href("/admin/sign-out")),
            csrf = desk.csrf_field(),
            sign_out = desk.t("Sign out", "Se déconnecter"),
            views = desk.t("Views", "Vues"),
        );
        let body = format!(
            "{header}<main id=\"main\">\n<h1>{}</h1>\n{}</main>\n",
            escape(&self.title),
            self.body
        );
        html_page(
            self.status,
            desk.lang,
            document(desk.lang, &self.title, &body),
        )
    }
}

fn role_name(desk: &Desk) -> &'static str {
    match desk.role {
        crate::config::Role::Admin => desk.t("admin", "admin"),
        crate::config::Role::Dpo => desk.t("DPO", "DPO"),
        crate::config::Role::Viewer => desk.t("viewer", "lecture seule"),
    }
}

/// A whole document around `body` (already HTML).
fn document(lang: Language, title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"robots\" content=\"noindex, nofollow\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n\
         <title>{title} · consent-relay</title>\n<style>{STYLE}</style>\n</head>\n\
         <body>\n{body}</body>\n</html>\n",
        lang = lang.code(),
        title = escape(title),
    )
}

/// Why the sign-in form is shown again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignInProblem {
    Wrong,
    TooMany,
    Forged,
}

/// The sign-in form (what every console route answers without a
/// session), going on to `next` once signed in.
pub(crate) fn sign_in_page(
    web: &WebState,
    lang: Language,
    next: &str,
    problem: Option<SignInProblem>,
) -> Response {
    let problem = problem.map(|p| {
        let text = match p {
            SignInProblem::Wrong => tr(
                lang,
                "That token is not an operator's. Check it and try again.",
                "Ce jeton n'est pas celui d'un opérateur. Vérifiez-le et réessayez.",
            ),
            SignInProblem::TooMany => tr(
                lang,
                "Too many attempts from your address. Wait a minute, then try again.",
                "Trop de tentatives depuis votre adresse. Attendez une minute, puis réessayez.",
            ),
            SignInProblem::Forged => tr(
                lang,
                "This form did not come from this console. Open the console's address and sign in there.",
                "Ce formulaire ne vient pas de cette console. Ouvrez l'adresse de la console et connectez-vous là.",
            ),
        };
        format!("<p class=\"problem\" role=\"alert\">{}</p>\n", escape(text))
    });
    let title = tr(lang, "Sign in to the console", "Connexion à la console");
    let base = super::base_path(&web.config.http);
    let body = format!(
        "<main id=\"main\" class=\"signin\">\n<h1>{title}</h1>\n{problem}\
         <p>{explain}</p>\n\
         <form method=\"post\" action=\"{action}\">\n\
         <input type=\"hidden\" name=\"next\" value=\"{next}\">\n\
         <div class=\"field\"><label for=\"token\">{token}</label>\
         <input type=\"password\" id=\"token\" name=\"token\" autocomplete=\"current-password\" required autofocus></div>\n\
         <button type=\"submit\">{submit}</button>\n</form>\n</main>\n",
        title = escape(title),
        problem = problem.unwrap_or_default(),
        explain = escape(tr(
            lang,
            "Operators sign in with the token whose SHA-256 is listed for them in [[http.operator]].",
            "Les opérateurs se connectent avec le jeton dont l'empreinte SHA-256 figure pour eux dans [[http.operator]].",
        )),
        action = escape(&format!("{base}/admin/sign-in")),
        next = escape(next),
        token = escape(tr(lang, "Operator token", "Jeton d'opérateur")),
        submit = escape(tr(lang, "Sign in", "Se connecter")),
    );
    html_page(StatusCode::OK, lang, document(lang, title, &body))
}

/// The store cannot be read or written now.
pub(crate) fn unavailable(_web: &WebState, lang: Language) -> Response {
    let title = tr(
        lang,
        "Temporarily unavailable",
        "Momentanément indisponible",
    );
    let body = format!(
        "<main id=\"main\" class=\"signin\">\n<h1>{}</h1>\n<p class=\"problem\" role=\"alert\">{}</p>\n</main>\n",
        escape(title),
        escape(tr(
            lang,
            "The console cannot reach its store right now. Nothing was changed. Try again in a moment; the relay's log says more.",
            "La console ne peut pas joindre sa base pour l'instant. Rien n'a été modifié. Réessayez dans un instant ; le journal du relais en dit plus.",
        ))
    );
    html_page(
        StatusCode::SERVICE_UNAVAILABLE,
        lang,
        document(lang, title, &body),
    )
}
