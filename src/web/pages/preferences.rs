//! `/p/{token}`: the preference page and its save.

use std::collections::HashSet;

use axum::extract::State;
use axum::response::Response;

use super::{Link, Token};
use crate::config::Policy;
use crate::consent::{ALL_CAMPAIGNS, Source, Status};
use crate::store::StateRow;
use crate::token::Purpose;
use crate::web::choices::{delivered, plan, shown_campaigns, state_of};
use crate::web::error::WebError;
use crate::web::form::Fields;
use crate::web::html::{self, Choice};
use crate::web::origin::Site;
use crate::web::{Visitor, WebState};

pub(in crate::web) async fn preferences(
    State(web): State<WebState>,
    visitor: Visitor,
    token: Token,
) -> Response {
    let result = show_preferences(&web, &visitor, token).await;
    web.reply(&visitor, result)
}

async fn show_preferences(
    web: &WebState,
    visitor: &Visitor,
    token: Token,
) -> Result<String, WebError> {
    let link = web.resolve(token, Purpose::Preferences).await?;
    let states = web.store.subject_states(&link.subject_id).await?;
    Ok(preference_page(web, visitor, &link, &states, false))
}

pub(in crate::web) async fn save_preferences(
    State(web): State<WebState>,
    visitor: Visitor,
    site: Site,
    token: Token,
    fields: Result<Fields, WebError>,
) -> Response {
    let result = match site.check() {
        Ok(()) => do_save_preferences(&web, &visitor, token, fields).await,
        Err(e) => Err(e),
    };
    web.reply(&visitor, result)
}

async fn do_save_preferences(
    web: &WebState,
    visitor: &Visitor,
    token: Token,
    fields: Result<Fields, WebError>,
) -> Result<String, WebError> {
    let link = web.resolve(token, Purpose::Preferences).await?;
    let fields = fields?;
    // The page always sends `save`: a bare POST is not "untick everything".
    if !fields.has("save") {
        return Err(WebError::BadForm("no save field"));
    }
    let ticked: HashSet<&str> = fields.values("c").collect();
    let states = web.store.subject_states(&link.subject_id).await?;
    let now = crate::time::now_ms();
    let changes = plan(
        &shown_campaigns(&web.config.campaigns),
        &states,
        &ticked,
        fields.has("all"),
        now,
    );
    let proof = web.shown("preference-page", visitor, Source::PreferencePage);
    for (campaign, action) in changes {
        web.record(&link, campaign, action, now, &proof).await?;
    }
    let states = web.store.subject_states(&link.subject_id).await?;
    Ok(preference_page(web, visitor, &link, &states, true))
}

fn preference_page(
    web: &WebState,
    visitor: &Visitor,
    link: &Link<'_>,
    states: &[StateRow],
    saved: bool,
) -> String {
    let now = crate::time::now_ms();
    let all = state_of(states, ALL_CAMPAIGNS);
    let shown = shown_campaigns(&web.config.campaigns);
    // Items of a list: standing alone (in French, `La Lettre`).
    let labels: Vec<String> = shown
        .iter()
        .map(|c| crate::texts::label_alone(visitor.lang, web.label(c, visitor)))
        .collect();
    let choices: Vec<Choice<'_>> = shown
        .into_iter()
        .zip(&labels)
        .map(|(c, label)| Choice {
            id: &c.id,
            label,
            ticked: delivered(c, states, all, now),
            locked: c.policy == Policy::Mandatory,
        })
        .collect();
    let unsubscribed_all = all.is_some_and(|s| s.status == Status::Withdrawn);
    let address = link.shown_address();
    let w = web.words_about(visitor, Some(&address));
    html::preferences(w, &choices, unsubscribed_all, saved)
}
