//! What the preference page shows and what a save changes, and whether an
//! unsubscription would change anything. Pure: the configured campaigns,
//! the subject's stored consent state, the form and the time in; ticks and
//! consent events out. The page shows the effective state (what the next
//! message would get, from `policy::decide`), so each save records exactly
//! the boxes that differ from it.

use std::collections::HashSet;

use crate::config::{BounceMandatory, Campaign, CampaignState, Policy};
use crate::consent::policy::{self, Outcome, RecipientConsent};
use crate::consent::{self, ALL_CAMPAIGNS, Action, State as ConsentState, Status};
use crate::store::StateRow;

/// The campaigns the preference page lists: the active ones, by `order`
/// (ties in file order).
pub(super) fn shown_campaigns(campaigns: &[Campaign]) -> Vec<&Campaign> {
    let mut shown: Vec<&Campaign> = campaigns
        .iter()
        .filter(|c| c.state == CampaignState::Active)
        .collect();
    shown.sort_by_key(|c| c.order);
    shown
}

pub(super) fn state_of(states: &[StateRow], campaign: &str) -> Option<ConsentState> {
    states
        .iter()
        .find(|s| s.campaign == campaign)
        .map(|s| ConsentState {
            status: s.status,
            since: s.since,
            event_id: s.event_id,
        })
}

/// Whether the campaign's next message would be delivered: the page shows
/// the effective state, as `policy::decide` sees it (an expired grant or an
/// "unsubscribe from all" shows unticked).
pub(super) fn delivered(
    campaign: &Campaign,
    states: &[StateRow],
    all: Option<ConsentState>,
    now: i64,
) -> bool {
    let consent = RecipientConsent {
        erased: false,
        campaign: state_of(states, &campaign.id),
        all,
        ..RecipientConsent::default()
    };
    // The page shows the person's own choices; a bounce is not one.
    policy::decide(campaign, &consent, BounceMandatory::Deliver, now).outcome == Outcome::Deliver
}

/// The events a save makes, in order: one per actual change between what
/// the page showed (the effective state) and what was ticked.
///
/// "Unsubscribe from all" newly ticked is one `*` withdrawal and nothing
/// else (it wins over the campaign boxes). Unticked after being set, it is a
/// `*` grant, and the campaign boxes are then compared with the state that
/// grant leaves. Mandatory campaigns never change.
pub(super) fn plan<'c>(
    campaigns: &[&'c Campaign],
    states: &[StateRow],
    ticked: &HashSet<&str>,
    all: bool,
    now: i64,
) -> Vec<(&'c str, Action)> {
    let mut all_state = state_of(states, ALL_CAMPAIGNS);
    let unsubscribed_all = all_state.is_some_and(|s| s.status == Status::Withdrawn);
    let mut changes = Vec::new();
    match (all, unsubscribed_all) {
        (true, false) => return vec![(ALL_CAMPAIGNS, Action::Withdraw)],
        (false, true) => {
            changes.push((ALL_CAMPAIGNS, Action::Grant));
            // Its id is not known yet; it is later than every stored one.
            all_state = consent::apply(all_state, Action::Grant, now, i64::MAX);
        }
        _ => {}
    }
    for c in campaigns {
        if c.policy == Policy::Mandatory {
            continue;
        }
        let wanted = ticked.contains(c.id.as_str());
        match (wanted, delivered(c, states, all_state, now)) {
            (true, false) => changes.push((c.id.as_str(), Action::Grant)),
            (false, true) => changes.push((c.id.as_str(), Action::Withdraw)),
            _ => {}
        }
    }
    changes
}

/// Whether withdrawing `target` again would change nothing: its state is
/// already withdrawn and, for all campaigns, no campaign was granted since
/// (a later grant wins over "unsubscribe from all", so a repeated
/// unsubscribe-from-all must be recorded again to stop it).
///
/// Two POSTs racing each other can both append; the state is withdrawn either way.
pub(super) fn already_withdrawn(states: &[StateRow], target: &str) -> bool {
    let Some(current) = states.iter().find(|s| s.campaign == target) else {
        return false;
    };
    if current.status != Status::Withdrawn {
        return false;
    }
    target != ALL_CAMPAIGNS
        || states
            .iter()
            .filter(|s| s.campaign != ALL_CAMPAIGNS && s.status == Status::Granted)
            .all(|s| (current.since, current.event_id) > (s.since, s.event_id))
}

/// Whether undoing an unsubscription from `campaign` (`None`: from all)
/// would change nothing: "unsubscribe from all" is not in force, or the
/// campaign's next message would be delivered already.
pub(super) fn undone(campaign: Option<&Campaign>, states: &[StateRow], now: i64) -> bool {
    let all = state_of(states, ALL_CAMPAIGNS);
    match campaign {
        None => all.is_none_or(|s| s.status != Status::Withdrawn),
        Some(c) => delivered(c, states, all, now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn campaign(id: &str, policy: Policy) -> Campaign {
        Campaign {
            id: id.into(),
            label: id.into(),
            policy,
            state: CampaignState::Active,
            consent_max_age_days: None,
            list_id: None,
            double_opt_in: false,
            order: 1,
            language: None,
        }
    }

    fn row(campaign: &str, status: Status, since: i64, event_id: i64) -> StateRow {
        StateRow {
            campaign: campaign.into(),
            status,
            since,
            event_id,
        }
    }

    const NOW: i64 = 1_000_000;

    fn run(states: &[StateRow], ticked: &[&str], all: bool) -> Vec<(String, Action)> {
        let news = campaign("news", Policy::OptIn);
        let offers = campaign("offers", Policy::OptOut);
        let bills = campaign("bills", Policy::Mandatory);
        let ticked: HashSet<&str> = ticked.iter().copied().collect();
        plan(&[&news, &offers, &bills], states, &ticked, all, NOW)
            .into_iter()
            .map(|(c, a)| (c.to_owned(), a))
            .collect()
    }

    fn ch(c: &str, a: Action) -> (String, Action) {
        (c.to_owned(), a)
    }

    #[test]
    fn unchanged_page_changes_nothing() {
        // Fresh subject: news (opt-in) unticked, offers (opt-out) ticked.
        assert_eq!(run(&[], &["offers"], false), []);
        let states = [row("news", Status::Granted, 10, 1)];
        assert_eq!(run(&states, &["news", "offers", "bills"], false), []);
    }

    #[test]
    fn one_event_per_change_and_mandatory_ignored() {
        assert_eq!(
            run(&[], &["news"], false),
            [ch("news", Action::Grant), ch("offers", Action::Withdraw)]
        );
        // Unticking a mandatory campaign (a forged form) changes nothing.
        assert_eq!(run(&[], &["offers"], false), []);
    }

    #[test]
    fn unsubscribe_from_all_is_one_event_and_wins() {
        let states = [row("news", Status::Granted, 10, 1)];
        assert_eq!(
            run(&states, &["news", "offers"], true),
            [ch("*", Action::Withdraw)]
        );
    }

    #[test]
    fn unticking_all_grants_star_then_compares_campaigns() {
        // All withdrawn after a news grant: the page showed everything unticked.
        let states = [
            row("news", Status::Granted, 10, 1),
            row("*", Status::Withdrawn, 20, 2),
        ];
        // Left as shown, with "all" unticked: news would come back, so it is withdrawn.
        assert_eq!(
            run(&states, &[], false),
            [
                ch("*", Action::Grant),
                ch("news", Action::Withdraw),
                ch("offers", Action::Withdraw)
            ]
        );
        assert_eq!(
            run(&states, &["news", "offers"], false),
            [ch("*", Action::Grant)]
        );
        // Still all, but one campaign ticked again: a later grant wins over "*".
        assert_eq!(
            run(&states, &["offers"], true),
            [ch("offers", Action::Grant)]
        );
    }

    #[test]
    fn an_undo_is_recorded_only_when_it_changes_something() {
        let news = campaign("news", Policy::OptIn);
        let offers = campaign("offers", Policy::OptOut);
        let w = |c: &str, at: i64| row(c, Status::Withdrawn, at, at);
        let g = |c: &str, at: i64| row(c, Status::Granted, at, at);
        assert!(!undone(Some(&news), &[w("news", 10)], NOW));
        assert!(undone(Some(&news), &[g("news", 10)], NOW));
        assert!(!undone(Some(&news), &[], NOW));
        assert!(undone(Some(&offers), &[], NOW));
        assert!(!undone(Some(&offers), &[w("offers", 10)], NOW));
        // Granted, but "unsubscribe from all" came later: not delivered.
        assert!(!undone(Some(&news), &[g("news", 10), w("*", 20)], NOW));
        assert!(!undone(None, &[g("news", 10), w("*", 20)], NOW));
        assert!(undone(None, &[g("news", 10)], NOW));
        assert!(undone(None, &[w("news", 10), g("*", 20)], NOW));
    }

    #[test]
    fn repeated_withdrawals_are_skipped() {
        let w = |c: &str| row(c, Status::Withdrawn, 10, 5);
        assert!(already_withdrawn(&[w("news")], "news"));
        assert!(!already_withdrawn(&[w("offers")], "news"));
        assert!(!already_withdrawn(
            &[row("news", Status::Granted, 10, 1)],
            "news"
        ));
        assert!(already_withdrawn(
            &[row("news", Status::Granted, 5, 1), w("*")],
            "*"
        ));
        // A grant after "unsubscribe from all": unsubscribing from all again counts.
        assert!(!already_withdrawn(
            &[row("news", Status::Granted, 20, 9), w("*")],
            "*"
        ));
    }
}
