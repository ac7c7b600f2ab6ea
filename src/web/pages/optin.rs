//! `/o/{token}`: the opt-in confirmation page.

use axum::extract::State;
use axum::response::Response;

use super::Token;
use crate::config::Policy;
use crate::consent::{Action, Source, Status};
use crate::token::Purpose;
use crate::web::choices::state_of;
use crate::web::error::WebError;
use crate::web::form::Fields;
use crate::web::html;
use crate::web::origin::Site;
use crate::web::{Visitor, WebState};

pub(in crate::web) async fn optin_form(
    State(web): State<WebState>,
    visitor: Visitor,
    token: Token,
) -> Response {
    let result = show_optin(&web, &visitor, token).await;
    web.reply(&visitor, result)
}

async fn show_optin(web: &WebState, visitor: &Visitor, token: Token) -> Result<String, WebError> {
    let link = web.resolve(token, Purpose::Optin).await?;
    let campaign = link.campaign.ok_or(WebError::NoCampaign)?;
    let preferences = web.preferences_href(&link)?;
    let address = link.shown_address();
    let w = web.words_about(visitor, Some(&address));
    let label = web.label(campaign, visitor);
    Ok(if campaign.policy == Policy::Mandatory {
        html::mandatory(w, "page_optin_title", label, &preferences)
    } else {
        html::optin_form(w, label, &preferences)
    })
}

pub(in crate::web) async fn optin(
    State(web): State<WebState>,
    visitor: Visitor,
    site: Site,
    token: Token,
    fields: Result<Fields, WebError>,
) -> Response {
    let result = match site.check() {
        Ok(()) => do_optin(&web, &visitor, token, fields).await,
        Err(e) => Err(e),
    };
    web.reply(&visitor, result)
}

/// `confirm` when a double opt-in request is pending, else `grant` (which
/// also renews an existing grant: re-permission).
async fn do_optin(
    web: &WebState,
    visitor: &Visitor,
    token: Token,
    fields: Result<Fields, WebError>,
) -> Result<String, WebError> {
    let link = web.resolve(token, Purpose::Optin).await?;
    let campaign = link.campaign.ok_or(WebError::NoCampaign)?;
    if !fields?.has("confirm") {
        return Err(WebError::BadForm("no confirm field"));
    }
    let preferences = web.preferences_href(&link)?;
    let address = link.shown_address();
    let w = web.words_about(visitor, Some(&address));
    let label = web.label(campaign, visitor);
    if campaign.policy == Policy::Mandatory {
        return Ok(html::mandatory(w, "page_optin_title", label, &preferences));
    }
    let states = web.store.subject_states(&link.subject_id).await?;
    let action = match state_of(&states, &campaign.id) {
        Some(s) if s.status == Status::Pending => Action::Confirm,
        _ => Action::Grant,
    };
    let proof = web.shown("optin-page", visitor, Source::Link);
    web.record(&link, &campaign.id, action, crate::time::now_ms(), &proof)
        .await?;
    Ok(html::optin_done(w, label, &preferences))
}
