//! A change of consent an operator records for a person, checked one way
//! for every door that takes one (`POST /api/v1/consent`, the console's
//! person page): the address by its canonical identity, a configured
//! campaign (or `*` to withdraw from all), a grant for a double opt-in
//! campaign turned into a `request` whose confirmation mail the relay
//! sends itself, the source, the time and the person's IP.
//!
//! Owns the checks and the confirmation mail's follow-up; the doors own
//! how they read the request and how they answer (JSON, a page), the
//! store how the event is recorded.

use std::net::IpAddr;
use std::sync::Arc;

use serde::Deserialize;

use super::USER_AGENT_MAX;
use crate::config::{Campaign, CampaignState, Config};
use crate::consent::identity::Identity;
use crate::consent::subject;
use crate::consent::{ALL_CAMPAIGNS, Action, Source};
use crate::mail::address::AddressError;
use crate::store::{Actor, ConsentEvent, FollowUp, NewConsentEvent};
use crate::time::parse_rfc3339;

/// How far ahead of our clock an event's `at` may be (clock skew). A grant
/// dated later would outrank every change made before that time.
pub(crate) const FUTURE_SKEW_MS: i64 = 5 * 60 * 1000;

/// Grant or withdraw: what an operator may record (a request, a
/// confirmation and an erasure come about otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Change {
    Grant,
    Withdraw,
}

/// A change as asked (the API's JSON body, field for field).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChangeRequest {
    pub email: String,
    pub campaign: String,
    pub action: Change,
    pub source: Option<String>,
    pub evidence: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// RFC 3339; default now.
    pub at: Option<String>,
}

/// Why a change cannot be recorded; [`ChangeError::field`] names the
/// field at fault, the text says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ChangeError {
    #[error("is not an email address ({0})")]
    Address(AddressError),
    #[error("a grant names one campaign ('*' is for withdraw only)")]
    GrantForAll,
    #[error("is not a configured campaign")]
    UnknownCampaign,
    #[error("{0}")]
    Source(String),
    #[error("is not an RFC 3339 time (e.g. 2026-11-01T08:00:00Z)")]
    At,
    #[error("is in the future")]
    Future,
    #[error("is not an IP address")]
    Ip,
}

impl ChangeError {
    /// The request's field at fault.
    pub fn field(&self) -> &'static str {
        match self {
            ChangeError::Address(_) => "email",
            ChangeError::GrantForAll | ChangeError::UnknownCampaign => "campaign",
            ChangeError::Source(_) => "source",
            ChangeError::At | ChangeError::Future => "at",
            ChangeError::Ip => "ip",
        }
    }
}

/// A change checked, ready for the store.
#[derive(Debug)]
pub(crate) struct Checked {
    pub event: NewConsentEvent,
    /// The campaign (`None` for `*`).
    pub campaign: Option<Campaign>,
    /// Who it is about.
    pub identity: Identity,
}

impl Checked {
    /// The double opt-in mail the event makes the relay send, if it is a
    /// `request`.
    pub fn confirmation(&self, config: &Arc<Config>) -> Option<FollowUp> {
        let campaign = self
            .campaign
            .as_ref()
            .filter(|_| self.event.action == Action::Request)?;
        Some(confirmation_mail(config, campaign, &self.identity))
    }
}

/// The event `r` asks for, every field checked, recorded by `actor`. A
/// grant for a double opt-in campaign is a `request` until the person
/// confirms.
pub(crate) fn check(
    config: &Config,
    r: ChangeRequest,
    actor: Actor,
    now: i64,
) -> Result<Checked, ChangeError> {
    let identity = Identity::of(&r.email).map_err(ChangeError::Address)?;
    let address = identity.canonical().to_owned();
    let mut action = match r.action {
        Change::Grant => Action::Grant,
        Change::Withdraw => Action::Withdraw,
    };
    if r.campaign == ALL_CAMPAIGNS && action == Action::Grant {
        return Err(ChangeError::GrantForAll);
    }
    let campaign = config
        .campaign(&r.campaign)
        .filter(|c| c.state != CampaignState::Deleted);
    if r.campaign != ALL_CAMPAIGNS && campaign.is_none() {
        return Err(ChangeError::UnknownCampaign);
    }
    if action == Action::Grant && campaign.is_some_and(|c| c.double_opt_in) {
        action = Action::Request;
    }
    let source = match &r.source {
        Some(s) => Source::given(s).map_err(ChangeError::Source)?,
        None => actor.via.source(),
    };
    let at = checked_at(r.at.as_deref(), now)?;
    let ip = r.ip.as_deref().map(checked_ip).transpose()?;
    let user_agent = r
        .user_agent
        .map(|ua| ua.chars().take(USER_AGENT_MAX).collect());
    let event = NewConsentEvent {
        new_subject: subject::new_subject(&config.signing, &address),
        address,
        campaign: r.campaign,
        action,
        at,
        source,
        ip,
        user_agent,
        evidence: r.evidence,
        actor: Some(actor),
    };
    Ok(Checked {
        event,
        campaign: campaign.cloned(),
        identity,
    })
}

/// When the change happened: `now` by default, never in the future.
fn checked_at(at: Option<&str>, now: i64) -> Result<i64, ChangeError> {
    let Some(t) = at else {
        return Ok(now);
    };
    let at = parse_rfc3339(t).ok_or(ChangeError::At)?;
    if at > now + FUTURE_SKEW_MS {
        return Err(ChangeError::Future);
    }
    Ok(at)
}

/// The person's IP address as proof, in its canonical form.
fn checked_ip(ip: &str) -> Result<String, ChangeError> {
    Ok(ip
        .trim()
        .parse::<IpAddr>()
        .map_err(|_| ChangeError::Ip)?
        .to_canonical()
        .to_string())
}

/// The double opt-in mail. The relay mails the confirmation link itself,
/// through its queue: the mail is built from the recorded event (its id,
/// its subject) and queued in the event's transaction, so there is never a
/// request without its mail, even when the answer is replayed to a retry.
fn confirmation_mail(config: &Arc<Config>, campaign: &Campaign, to: &Identity) -> FollowUp {
    let (config, campaign, to) = (config.clone(), campaign.clone(), to.clone());
    Arc::new(move |e: &ConsentEvent| {
        crate::rights::confirmation::message(
            &config,
            &campaign,
            &e.subject_id,
            &to,
            e.id,
            crate::time::now_ms(),
        )
        .map_err(|e| e.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_is_now_by_default_and_never_ahead() {
        assert_eq!(checked_at(None, 1_000), Ok(1_000));
        assert_eq!(checked_at(Some("1970-01-01T00:00:01Z"), 5_000), Ok(1_000));
        assert!(matches!(
            checked_at(Some("2999-01-01T00:00:00Z"), 0),
            Err(ChangeError::Future)
        ));
        assert!(matches!(checked_at(Some("soon"), 0), Err(ChangeError::At)));
        assert_eq!(checked_ip(" ::ffff:192.0.2.1 ").as_deref(), Ok("192.0.2.1"));
        assert!(matches!(checked_ip("example.net"), Err(ChangeError::Ip)));
    }
}
