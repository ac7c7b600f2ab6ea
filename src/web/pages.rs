//! The page handlers: `/u` (unsubscribe, RFC 8058 one-click), `/p`
//! (preferences) and `/o` (opt-in confirmation). Each checks the token for
//! its route's purpose, finds the subject, and shows or changes consent.
//!
//! `GET` never changes anything: mail scanners fetch links. A `POST` appends
//! one consent event per actual change, with its proof, and answers `200`
//! with a page (no redirect, no cookie).

use std::collections::HashSet;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::choices::{already_withdrawn, delivered, plan, shown_campaigns, state_of};
use super::error::WebError;
use super::form::Fields;
use super::html::{self, Choice, Target, Words};
use super::origin::Site;
use super::{Visitor, WebState, html_page};
use crate::config::{Campaign, CampaignState, Policy};
use crate::consent::{ALL_CAMPAIGNS, Action, Source, Status};
use crate::store::{NewConsentEvent, StateRow};
use crate::token::{self, Claims, Purpose};

type Token = Result<Path<String>, PathRejection>;

/// Where a change comes from, and what the person was shown.
struct Proof<'v> {
    visitor: &'v Visitor,
    source: Source,
    /// `page language texts:version`, or `one-click rfc8058`.
    evidence: String,
}

/// What a verified link names.
struct Link<'c> {
    subject_id: String,
    /// The subject's address (its canonical identity): what the store
    /// appends events by.
    address: String,
    /// `None`: all campaigns.
    campaign: Option<&'c Campaign>,
}

impl WebState {
    fn words(&self, visitor: &Visitor) -> Words<'_> {
        Words {
            texts: &self.config.texts,
            lang: visitor.lang,
        }
    }

    /// The page, or the error page, in the visitor's language.
    pub(super) fn reply(&self, visitor: &Visitor, result: Result<String, WebError>) -> Response {
        match result {
            Ok(page) => html_page(StatusCode::OK, visitor.lang, page),
            Err(e) => {
                e.log();
                html_page(
                    e.status(),
                    visitor.lang,
                    html::error(self.words(visitor), e.text()),
                )
            }
        }
    }

    /// Verifies the token for `purpose` and finds what it names; changes nothing.
    async fn resolve(&self, token: Token, purpose: Purpose) -> Result<Link<'_>, WebError> {
        let Path(token) = token.map_err(|_| WebError::BadPath)?;
        let claims = token::verify_for(&self.config.signing, &token, purpose)?;
        let campaign = match &claims.campaign {
            None => None,
            Some(id) => Some(
                self.config
                    .campaign(id)
                    .filter(|c| c.state != CampaignState::Deleted)
                    .ok_or_else(|| WebError::UnknownCampaign {
                        campaign: id.clone(),
                    })?,
            ),
        };
        let subject = self
            .store
            .subject_by_id(&claims.subject_id)
            .await?
            .ok_or(WebError::UnknownSubject)?;
        let address = subject.address.ok_or(WebError::UnknownSubject)?;
        Ok(Link {
            subject_id: subject.id,
            address,
            campaign,
        })
    }

    /// A relative link to the subject's preference page, freshly signed:
    /// relative, so it works under any path prefix of `public_url`.
    fn preferences_href(&self, link: &Link<'_>) -> Result<String, WebError> {
        let claims = Claims {
            subject_id: link.subject_id.clone(),
            campaign: None,
            purpose: Purpose::Preferences,
        };
        let token = token::sign(&self.config.signing, &claims).map_err(WebError::Signing)?;
        Ok(format!("../p/{token}"))
    }

    /// The proof of a change made on `page`, as the visitor saw it.
    fn shown<'v>(&self, page: &str, visitor: &'v Visitor, source: Source) -> Proof<'v> {
        Proof {
            visitor,
            source,
            evidence: format!(
                "{page} {} texts:{}",
                visitor.lang,
                self.config.texts.version()
            ),
        }
    }

    /// Appends one consent event with its proof.
    async fn record(
        &self,
        link: &Link<'_>,
        campaign: &str,
        action: Action,
        at: i64,
        proof: &Proof<'_>,
    ) -> Result<(), WebError> {
        let Proof {
            visitor,
            source,
            evidence,
        } = proof;
        let event = self
            .store
            .append_consent_event(NewConsentEvent {
                address: link.address.clone(),
                new_subject: crate::consent::subject::new_subject(
                    &self.config.signing,
                    &link.address,
                ),
                campaign: campaign.to_owned(),
                action,
                at,
                source: *source,
                ip: visitor.ip.clone(),
                user_agent: visitor.user_agent.clone(),
                evidence: Some(evidence.clone()),
                actor: None,
            })
            .await?;
        tracing::info!(
            event = event.id,
            campaign,
            action = %action,
            source = %source,
            "consent changed"
        );
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// /u/{token}

pub(super) async fn unsubscribe_form(
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
    let w = web.words(visitor);
    Ok(match link.campaign {
        Some(c) if c.policy == Policy::Mandatory => {
            html::mandatory(w, "page_unsubscribe_title", &c.label, &preferences)
        }
        Some(c) => html::unsubscribe_form(w, &Target::Campaign(&c.label), &preferences),
        None => html::unsubscribe_form(w, &Target::All, &preferences),
    })
}

pub(super) async fn unsubscribe(
    State(web): State<WebState>,
    visitor: Visitor,
    site: Site,
    token: Token,
    fields: Result<Fields, WebError>,
) -> Response {
    let result = do_unsubscribe(&web, &visitor, &site, token, fields).await;
    web.reply(&visitor, result)
}

/// RFC 8058 one-click (`List-Unsubscribe=One-Click`, from anywhere) or the
/// page's button (`confirm`, from our page only); any other body is
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
    let proof = if fields.has_pair("List-Unsubscribe", "One-Click") {
        // The person pressed their mail client's button: no page of ours was shown.
        Proof {
            visitor,
            source: Source::OneClick,
            evidence: "one-click rfc8058".to_owned(),
        }
    } else if fields.has("confirm") {
        site.check()?;
        web.shown("unsubscribe-page", visitor, Source::Link)
    } else {
        return Err(WebError::BadForm(
            "neither List-Unsubscribe=One-Click nor confirm",
        ));
    };
    let preferences = web.preferences_href(&link)?;
    let w = web.words(visitor);
    let (target_id, target) = match link.campaign {
        Some(c) if c.policy == Policy::Mandatory => {
            return Ok(html::mandatory(
                w,
                "page_unsubscribe_title",
                &c.label,
                &preferences,
            ));
        }
        Some(c) => (c.id.as_str(), Target::Campaign(&c.label)),
        None => (ALL_CAMPAIGNS, Target::All),
    };
    let states = web.store.subject_states(&link.subject_id).await?;
    if !already_withdrawn(&states, target_id) {
        web.record(
            &link,
            target_id,
            Action::Withdraw,
            crate::time::now_ms(),
            &proof,
        )
        .await?;
    }
    Ok(html::unsubscribe_done(w, &target, &preferences))
}

// ---------------------------------------------------------------------------
// /p/{token}

pub(super) async fn preferences(
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
    Ok(preference_page(web, visitor, &states, false))
}

pub(super) async fn save_preferences(
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
    Ok(preference_page(web, visitor, &states, true))
}

fn preference_page(web: &WebState, visitor: &Visitor, states: &[StateRow], saved: bool) -> String {
    let now = crate::time::now_ms();
    let all = state_of(states, ALL_CAMPAIGNS);
    let choices: Vec<Choice<'_>> = shown_campaigns(&web.config.campaigns)
        .into_iter()
        .map(|c| Choice {
            id: &c.id,
            label: &c.label,
            ticked: delivered(c, states, all, now),
            locked: c.policy == Policy::Mandatory,
        })
        .collect();
    let unsubscribed_all = all.is_some_and(|s| s.status == Status::Withdrawn);
    html::preferences(web.words(visitor), &choices, unsubscribed_all, saved)
}

// ---------------------------------------------------------------------------
// /o/{token}

pub(super) async fn optin_form(
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
    let w = web.words(visitor);
    Ok(if campaign.policy == Policy::Mandatory {
        html::mandatory(w, "page_optin_title", &campaign.label, &preferences)
    } else {
        html::optin_form(w, &campaign.label, &preferences)
    })
}

pub(super) async fn optin(
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
    let w = web.words(visitor);
    if campaign.policy == Policy::Mandatory {
        return Ok(html::mandatory(
            w,
            "page_optin_title",
            &campaign.label,
            &preferences,
        ));
    }
    let states = web.store.subject_states(&link.subject_id).await?;
    let action = match state_of(&states, &campaign.id) {
        Some(s) if s.status == Status::Pending => Action::Confirm,
        _ => Action::Grant,
    };
    let proof = web.shown("optin-page", visitor, Source::Link);
    web.record(&link, &campaign.id, action, crate::time::now_ms(), &proof)
        .await?;
    Ok(html::optin_done(w, &campaign.label, &preferences))
}

/// Any other path.
pub(super) async fn not_found(State(web): State<WebState>, visitor: Visitor) -> Response {
    web.reply(&visitor, Err(WebError::NotFound))
}
