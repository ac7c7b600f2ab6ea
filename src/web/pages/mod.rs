//! The page handlers: `/u` (unsubscribe, RFC 8058 one-click), `/p`
//! (preferences) and `/o` (opt-in confirmation). Each checks the token for
//! its route's purpose, finds the subject, and shows or changes consent.
//!
//! `GET` never changes anything: mail scanners fetch links. A `POST` appends
//! one consent event per actual change, with its proof, and answers `200`
//! with a page (no redirect, no cookie). The "unsubscribed" page offers to
//! undo it: a `POST` of its own, recorded as a grant.
//!
//! Every page names who is asking and, when reached by a link, the address
//! it is about, masked ([`super::frame`]); campaign labels are in the
//! visitor's language ([`Campaign::label_in`]).

mod optin;
mod preferences;
mod unsubscribe;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::error::WebError;
use super::html::{self, Words};
use super::{Visitor, WebState, html_page};
use crate::config::{Campaign, CampaignState};
use crate::consent::{Action, Source};
use crate::mail::mask;
use crate::store::NewConsentEvent;
use crate::token::{self, Claims, Purpose};

pub(super) use optin::{optin, optin_form};
pub(super) use preferences::{preferences, save_preferences};
pub(super) use unsubscribe::{unsubscribe, unsubscribe_form};

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

impl Link<'_> {
    /// The address as the page shows it: `a•••@example.net`.
    fn shown_address(&self) -> String {
        mask::partial(&self.address)
    }
}

impl WebState {
    /// The words of a page that knows no subject (an error).
    fn words(&self, visitor: &Visitor) -> Words<'_> {
        self.words_about(visitor, None)
    }

    /// The words of a page about `address` (masked).
    fn words_about<'a>(&'a self, visitor: &Visitor, address: Option<&'a str>) -> Words<'a> {
        Words {
            texts: &self.config.texts,
            lang: visitor.lang,
            controller: &self.config.http.controller,
            address,
        }
    }

    /// `campaign`'s label in the visitor's language.
    fn label<'c>(&self, campaign: &'c Campaign, visitor: &Visitor) -> &'c str {
        campaign.label_in(visitor.lang, self.config.texts.default_language)
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

/// Any other path.
pub(super) async fn not_found(State(web): State<WebState>, visitor: Visitor) -> Response {
    web.reply(&visitor, Err(WebError::NotFound))
}
