//! `/u/{token}`: the unsubscribe page, RFC 8058 one-click, and the
//! "unsubscribed" page's undo.

use axum::extract::State;
use axum::response::Response;

use super::{Proof, Token};
use crate::config::Policy;
use crate::consent::{ALL_CAMPAIGNS, Action, Source};
use crate::token::Purpose;
use crate::web::choices::{already_withdrawn, undone};
use crate::web::error::WebError;
use crate::web::form::Fields;
use crate::web::html::{self, Target};
use crate::web::origin::Site;
use crate::web::{Visitor, WebState};

pub(in crate::web) async fn unsubscribe_form(
    State(web): State<WebState>,
    visitor: Visitor,
    token: Token,
) -> Response {
    let result = show_unsubscribe(&web, &visitor, token).await;
    web.reply(&visitor, result)
}

async fn show_unsubscribe(
    web: &WebState,
    visitor: &Visitor,
    token: Token,
) -> Result<String, WebError> {
    let link = web.resolve(token, Purpose::Unsubscribe).await?;
    let preferences = web.preferences_href(&link)?;
    let address = link.shown_address();
    let w = web.words_about(visitor, Some(&address));
    Ok(match link.campaign {
        Some(c) if c.policy == Policy::Mandatory => html::mandatory(
            w,
            "page_unsubscribe_title",
            web.label(c, visitor),
            &preferences,
        ),
        Some(c) => {
            html::unsubscribe_form(w, &Target::Campaign(web.label(c, visitor)), &preferences)
        }
        None => html::unsubscribe_form(w, &Target::All, &preferences),
    })
}

pub(in crate::web) async fn unsubscribe(
    State(web): State<WebState>,
    visitor: Visitor,
    site: Site,
    token: Token,
    fields: Result<Fields, WebError>,
) -> Response {
    let result = do_unsubscribe(&web, &visitor, &site, token, fields).await;
    web.reply(&visitor, result)
}

/// RFC 8058 one-click (`List-Unsubscribe=One-Click`, from anywhere), the
/// page's button (`confirm`, from our page only), or the "unsubscribed"
/// page's undo button (`undo`, from our page only); any other body is
/// refused, so that no event is recorded without a recognised intent.
async fn do_unsubscribe(
    web: &WebState,
    visitor: &Visitor,
    site: &Site,
    token: Token,
    fields: Result<Fields, WebError>,
) -> Result<String, WebError> {
    let link = web.resolve(token, Purpose::Unsubscribe).await?;
    let fields = fields?;
    let (undo, proof) = if fields.has_pair("List-Unsubscribe", "One-Click") {
        // The person pressed their mail client's button: no page of ours was shown.
        let proof = Proof {
            visitor,
            source: Source::OneClick,
            evidence: "one-click rfc8058".to_owned(),
        };
        (false, proof)
    } else if fields.has("confirm") {
        site.check()?;
        (false, web.shown("unsubscribe-page", visitor, Source::Link))
    } else if fields.has("undo") {
        site.check()?;
        (true, web.shown("unsubscribed-page", visitor, Source::Link))
    } else {
        return Err(WebError::BadForm(
            "neither List-Unsubscribe=One-Click, confirm nor undo",
        ));
    };
    let preferences = web.preferences_href(&link)?;
    let address = link.shown_address();
    let w = web.words_about(visitor, Some(&address));
    let (target_id, target) = match link.campaign {
        Some(c) if c.policy == Policy::Mandatory => {
            return Ok(html::mandatory(
                w,
                "page_unsubscribe_title",
                web.label(c, visitor),
                &preferences,
            ));
        }
        Some(c) => (c.id.as_str(), Target::Campaign(web.label(c, visitor))),
        None => (ALL_CAMPAIGNS, Target::All),
    };
    let states = web.store.subject_states(&link.subject_id).await?;
    let now = crate::time::now_ms();
    if undo {
        // The undo is a grant (of the campaign, or of `*`, which lifts an
        // "unsubscribe from all" and lets each campaign's own state apply
        // again), recorded at once, also for a `double_opt_in` campaign:
        // double opt-in is there to prove that the mailbox's owner asked,
        // by a click on a link only that mailbox received. This request
        // carries such a link (the token is signed for this subject and was
        // sent only in mail to its address) and comes from our own page
        // (the origin check above), so a confirmation mail would prove
        // nothing more; it would only leave the person who just pressed
        // "undo" without their mail until a second click. The opt-in page
        // rests a grant on the same proof.
        if !undone(link.campaign, &states, now) {
            web.record(&link, target_id, Action::Grant, now, &proof)
                .await?;
        }
        return Ok(html::undo_done(w, &target, &preferences));
    }
    if !already_withdrawn(&states, target_id) {
        web.record(&link, target_id, Action::Withdraw, now, &proof)
            .await?;
    }
    Ok(html::unsubscribe_done(w, &target, &preferences))
}
