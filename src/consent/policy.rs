//! The consent decision for one recipient of one message. Pure: the
//! campaign, what the store holds about the recipient and the time in;
//! deliver or suppress, with the reason and the consent event it rests on, out.

use crate::config::{BounceMandatory, Campaign, Policy};
use crate::consent::{State, Status};

/// What the store knows about one recipient, for one campaign.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecipientConsent {
    /// The address was erased and no new subject exists for it.
    pub erased: bool,
    /// State for this campaign.
    pub campaign: Option<State>,
    /// State for all campaigns (`*`): "unsubscribe from all".
    pub all: Option<State>,
    /// The mailbox bounced: an active suppression (hard, or soft until it
    /// expires) that no new grant or operator lifted.
    pub bounced: bool,
    /// The campaign's state rests on a complaint (a `withdraw` with source
    /// `complaint`).
    pub campaign_by_complaint: bool,
    /// The `*` state rests on a complaint.
    pub all_by_complaint: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Deliver,
    Suppress,
}

/// SPEC's closed set of decision reasons, used by logs, CLI and API alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    Granted,
    NoConsent,
    ConsentExpired,
    PendingConfirmation,
    Withdrawn,
    UnsubscribedAll,
    Erased,
    NotObjected,
    Mandatory,
    /// The mailbox bounced (a hard bounce, or soft ones within the window).
    Bounced,
    /// The person complained (spam report) and gave no new grant since.
    Complained,
}

crate::consent::wire_names!(Outcome { Deliver => "deliver", Suppress => "suppress" });
crate::consent::wire_names!(Reason {
    Granted => "granted",
    NoConsent => "no-consent",
    ConsentExpired => "consent-expired",
    PendingConfirmation => "pending-confirmation",
    Withdrawn => "withdrawn",
    UnsubscribedAll => "unsubscribed-all",
    Erased => "erased",
    NotObjected => "not-objected",
    Mandatory => "mandatory",
    Bounced => "bounced",
    Complained => "complained",
});

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub outcome: Outcome,
    pub reason: Reason,
    /// The consent event the decision rests on, when one does.
    pub event_id: Option<i64>,
}

const DAY_MS: i64 = 86_400_000;

/// Decides for one recipient. `now` is unix milliseconds; `bounces` is
/// `[bounces] mandatory`: whether a bounced mailbox still gets a mandatory
/// campaign's mail.
pub fn decide(
    campaign: &Campaign,
    consent: &RecipientConsent,
    bounces: BounceMandatory,
    now: i64,
) -> Decision {
    use Outcome::{Deliver, Suppress};
    let d = |outcome, reason, state: Option<State>| Decision {
        outcome,
        reason,
        event_id: state.map(|s| s.event_id),
    };
    if campaign.policy == Policy::Mandatory {
        if consent.bounced && bounces == BounceMandatory::Suppress {
            return d(Suppress, Reason::Bounced, None);
        }
        return d(Deliver, Reason::Mandatory, None);
    }
    if consent.erased {
        return d(Suppress, Reason::Erased, None);
    }
    if consent.bounced {
        return d(Suppress, Reason::Bounced, None);
    }
    // "Unsubscribe from all" wins over any campaign state older than it; a
    // later, explicit choice for this campaign wins over it.
    if let Some(all) = consent.all
        && all.status == Status::Withdrawn
        && consent.campaign.is_none_or(|c| is_later(all, c))
    {
        let reason = if consent.all_by_complaint {
            Reason::Complained
        } else {
            Reason::UnsubscribedAll
        };
        return d(Suppress, reason, consent.all);
    }
    let state = consent.campaign;
    match (campaign.policy, state.map(|s| s.status)) {
        (_, Some(Status::Withdrawn)) if consent.campaign_by_complaint => {
            d(Suppress, Reason::Complained, state)
        }
        (_, Some(Status::Withdrawn)) => d(Suppress, Reason::Withdrawn, state),
        (Policy::OptIn, Some(Status::Granted)) => {
            let expired = match (campaign.consent_max_age_days, state) {
                (Some(days), Some(s)) => now.saturating_sub(s.since) > i64::from(days) * DAY_MS,
                _ => false,
            };
            if expired {
                d(Suppress, Reason::ConsentExpired, state)
            } else {
                d(Deliver, Reason::Granted, state)
            }
        }
        (Policy::OptIn, Some(Status::Pending)) => d(Suppress, Reason::PendingConfirmation, state),
        (Policy::OptIn, None) => d(Suppress, Reason::NoConsent, None),
        (Policy::OptOut, Some(Status::Granted)) => d(Deliver, Reason::Granted, state),
        (Policy::OptOut, Some(Status::Pending) | None) => d(Deliver, Reason::NotObjected, None),
        (Policy::Mandatory, _) => d(Deliver, Reason::Mandatory, None),
    }
}

fn is_later(a: State, b: State) -> bool {
    (a.since, a.event_id) > (b.since, b.event_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CampaignState;

    fn campaign(policy: Policy, max_age: Option<u32>) -> Campaign {
        Campaign {
            id: "c".into(),
            label: "C".into(),
            policy,
            state: CampaignState::Active,
            consent_max_age_days: max_age,
            list_id: None,
            double_opt_in: false,
            order: 1,
            language: None,
        }
    }
    fn st(status: Status, since: i64, event_id: i64) -> Option<State> {
        Some(State {
            status,
            since,
            event_id,
        })
    }
    const NOW: i64 = 1_000 * DAY_MS;

    fn check(
        policy: Policy,
        max_age: Option<u32>,
        consent: RecipientConsent,
    ) -> (Outcome, Reason, Option<i64>) {
        let d = decide(
            &campaign(policy, max_age),
            &consent,
            BounceMandatory::Suppress,
            NOW,
        );
        (d.outcome, d.reason, d.event_id)
    }

    use Outcome::{Deliver, Suppress};
    use Policy::{Mandatory, OptIn, OptOut};

    #[test]
    fn every_policy_and_state() {
        let none = RecipientConsent::default();
        let granted = RecipientConsent {
            campaign: st(Status::Granted, NOW - DAY_MS, 7),
            ..none
        };
        let withdrawn = RecipientConsent {
            campaign: st(Status::Withdrawn, NOW - DAY_MS, 8),
            ..none
        };
        let pending = RecipientConsent {
            campaign: st(Status::Pending, NOW - DAY_MS, 9),
            ..none
        };
        let erased = RecipientConsent {
            erased: true,
            ..none
        };

        assert_eq!(
            check(OptIn, None, none),
            (Suppress, Reason::NoConsent, None)
        );
        assert_eq!(
            check(OptIn, None, granted),
            (Deliver, Reason::Granted, Some(7))
        );
        assert_eq!(
            check(OptIn, None, withdrawn),
            (Suppress, Reason::Withdrawn, Some(8))
        );
        assert_eq!(
            check(OptIn, None, pending),
            (Suppress, Reason::PendingConfirmation, Some(9))
        );
        assert_eq!(check(OptIn, None, erased), (Suppress, Reason::Erased, None));

        assert_eq!(
            check(OptOut, None, none),
            (Deliver, Reason::NotObjected, None)
        );
        assert_eq!(
            check(OptOut, None, granted),
            (Deliver, Reason::Granted, Some(7))
        );
        assert_eq!(
            check(OptOut, None, withdrawn),
            (Suppress, Reason::Withdrawn, Some(8))
        );
        assert_eq!(
            check(OptOut, None, pending),
            (Deliver, Reason::NotObjected, None)
        );
        assert_eq!(
            check(OptOut, None, erased),
            (Suppress, Reason::Erased, None)
        );

        for c in [none, granted, withdrawn, pending, erased] {
            assert_eq!(
                check(Mandatory, None, c),
                (Deliver, Reason::Mandatory, None)
            );
        }
    }

    #[test]
    fn grant_older_than_max_age_is_expired() {
        let old = RecipientConsent {
            campaign: st(Status::Granted, NOW - 31 * DAY_MS, 3),
            ..Default::default()
        };
        assert_eq!(
            check(OptIn, Some(30), old),
            (Suppress, Reason::ConsentExpired, Some(3))
        );
        assert_eq!(
            check(OptIn, Some(31), old),
            (Deliver, Reason::Granted, Some(3))
        );
        assert_eq!(check(OptIn, None, old), (Deliver, Reason::Granted, Some(3)));
        // Exactly at the limit still counts as current.
        let edge = RecipientConsent {
            campaign: st(Status::Granted, NOW - 30 * DAY_MS, 4),
            ..Default::default()
        };
        assert_eq!(
            check(OptIn, Some(30), edge),
            (Deliver, Reason::Granted, Some(4))
        );
    }

    #[test]
    fn unsubscribe_from_all_wins_over_older_choices() {
        let all = st(Status::Withdrawn, NOW - DAY_MS, 20);
        let older_grant = RecipientConsent {
            campaign: st(Status::Granted, NOW - 2 * DAY_MS, 10),
            all,
            ..Default::default()
        };
        assert_eq!(
            check(OptIn, None, older_grant),
            (Suppress, Reason::UnsubscribedAll, Some(20))
        );
        assert_eq!(
            check(OptOut, None, older_grant),
            (Suppress, Reason::UnsubscribedAll, Some(20))
        );
        let only_all = RecipientConsent {
            all,
            ..Default::default()
        };
        assert_eq!(
            check(OptIn, None, only_all),
            (Suppress, Reason::UnsubscribedAll, Some(20))
        );
        assert_eq!(
            check(OptOut, None, only_all),
            (Suppress, Reason::UnsubscribedAll, Some(20))
        );
        assert_eq!(
            check(Mandatory, None, only_all),
            (Deliver, Reason::Mandatory, None)
        );
    }

    #[test]
    fn later_campaign_grant_wins_over_unsubscribe_from_all() {
        let all = st(Status::Withdrawn, NOW - 2 * DAY_MS, 20);
        let newer_grant = RecipientConsent {
            campaign: st(Status::Granted, NOW - DAY_MS, 21),
            all,
            ..Default::default()
        };
        assert_eq!(
            check(OptIn, None, newer_grant),
            (Deliver, Reason::Granted, Some(21))
        );
        assert_eq!(
            check(OptOut, None, newer_grant),
            (Deliver, Reason::Granted, Some(21))
        );
    }

    #[test]
    fn lifting_unsubscribe_from_all_does_not_grant_opt_in() {
        let all = st(Status::Granted, NOW - DAY_MS, 30);
        let c = RecipientConsent {
            all,
            ..Default::default()
        };
        assert_eq!(check(OptIn, None, c), (Suppress, Reason::NoConsent, None));
        assert_eq!(check(OptOut, None, c), (Deliver, Reason::NotObjected, None));
        let withdrawn = RecipientConsent {
            campaign: st(Status::Withdrawn, NOW - 2 * DAY_MS, 5),
            all,
            ..Default::default()
        };
        assert_eq!(
            check(OptOut, None, withdrawn),
            (Suppress, Reason::Withdrawn, Some(5))
        );
    }

    #[test]
    fn reasons_have_spec_names() {
        let names: Vec<&str> = [
            Reason::Granted,
            Reason::NoConsent,
            Reason::ConsentExpired,
            Reason::PendingConfirmation,
            Reason::Withdrawn,
            Reason::UnsubscribedAll,
            Reason::Erased,
            Reason::NotObjected,
            Reason::Mandatory,
        ]
        .iter()
        .map(|r| r.as_str())
        .collect();
        assert_eq!(
            names,
            [
                "granted",
                "no-consent",
                "consent-expired",
                "pending-confirmation",
                "withdrawn",
                "unsubscribed-all",
                "erased",
                "not-objected",
                "mandatory"
            ]
        );
        assert_eq!("no-consent".parse::<Reason>(), Ok(Reason::NoConsent));
    }

    #[test]
    fn a_bounced_mailbox_is_suppressed_mandatory_too_unless_told() {
        let granted = RecipientConsent {
            campaign: st(Status::Granted, NOW - DAY_MS, 7),
            bounced: true,
            ..RecipientConsent::default()
        };
        for policy in [OptIn, OptOut] {
            assert_eq!(
                check(policy, None, granted),
                (Suppress, Reason::Bounced, None)
            );
        }
        assert_eq!(
            check(Mandatory, None, granted),
            (Suppress, Reason::Bounced, None)
        );
        let d = decide(
            &campaign(Mandatory, None),
            &granted,
            BounceMandatory::Deliver,
            NOW,
        );
        assert_eq!((d.outcome, d.reason), (Deliver, Reason::Mandatory));
        // With [bounces] mandatory = "deliver", other campaigns still wait.
        let d = decide(
            &campaign(OptIn, None),
            &granted,
            BounceMandatory::Deliver,
            NOW,
        );
        assert_eq!((d.outcome, d.reason), (Suppress, Reason::Bounced));
        // Erasure still says erased.
        let erased = RecipientConsent {
            erased: true,
            bounced: true,
            ..RecipientConsent::default()
        };
        assert_eq!(check(OptIn, None, erased), (Suppress, Reason::Erased, None));
    }

    #[test]
    fn a_withdrawal_by_complaint_says_complained() {
        let by_complaint = RecipientConsent {
            campaign: st(Status::Withdrawn, NOW - DAY_MS, 8),
            campaign_by_complaint: true,
            ..RecipientConsent::default()
        };
        assert_eq!(
            check(OptIn, None, by_complaint),
            (Suppress, Reason::Complained, Some(8))
        );
        assert_eq!(
            check(OptOut, None, by_complaint),
            (Suppress, Reason::Complained, Some(8))
        );
        let all = RecipientConsent {
            all: st(Status::Withdrawn, NOW - DAY_MS, 9),
            all_by_complaint: true,
            ..RecipientConsent::default()
        };
        assert_eq!(
            check(OptOut, None, all),
            (Suppress, Reason::Complained, Some(9))
        );
        // A later grant lifts it: the campaign's grant is newer.
        let regranted = RecipientConsent {
            campaign: st(Status::Granted, NOW, 10),
            ..all
        };
        assert_eq!(
            check(OptIn, None, regranted),
            (Deliver, Reason::Granted, Some(10))
        );
        // Mandatory mail is not consent-based: a complaint does not stop it.
        assert_eq!(
            check(Mandatory, None, all),
            (Deliver, Reason::Mandatory, None)
        );
        assert_eq!(Reason::Bounced.as_str(), "bounced");
        assert_eq!("complained".parse::<Reason>(), Ok(Reason::Complained));
    }
}
