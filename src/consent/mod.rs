//! Consent events and the current state derived from them. Pure: values in,
//! values out. The store appends an event and updates the derived state in
//! the same transaction using [`apply`], so a decision is one indexed lookup
//! and the history stays whole.

pub mod identity;
pub mod logged;
pub mod policy;
pub mod subject;

/// What a consent event does (SPEC "Consent records").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Grant,
    Withdraw,
    /// Double opt-in asked for; waits for `confirm`.
    Request,
    Confirm,
    Erase,
    /// Another subject was merged into this one (two spellings of one
    /// mailbox, see [`identity`]); its events moved here. Changes no state.
    Merge,
}

/// Where a consent event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    Api,
    Form,
    OneClick,
    Link,
    PreferencePage,
    Import,
    Admin,
    /// A spam complaint from a mailbox provider's feedback loop (ARF,
    /// RFC 5965): the person objected by pressing "report spam".
    Complaint,
}

impl Source {
    /// The sources a person or an operator may name (API, CLI, import):
    /// every one but `complaint`, which only the relay's feedback intake
    /// writes, with the report as its proof.
    pub const GIVEN: &'static [Source] = &[
        Source::Api,
        Source::Form,
        Source::OneClick,
        Source::Link,
        Source::PreferencePage,
        Source::Import,
        Source::Admin,
    ];

    /// A source named from outside the relay: one of [`Source::GIVEN`].
    pub fn given(text: &str) -> Result<Source, String> {
        match text.parse::<Source>() {
            Ok(s) if Source::GIVEN.contains(&s) => Ok(s),
            _ => Err(format!(
                "{text:?} is not one of: {}",
                Source::GIVEN
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}

/// How the evidence of a withdrawal by mail (RFC 2369 `mailto:` in
/// `List-Unsubscribe`, source `one-click`) begins: what tells that channel
/// apart (the overview's `mail`). Migration 0011 reads the same text.
pub const MAILTO_EVIDENCE: &str = "mailto unsubscribe (RFC 2369)";

/// The campaign an event is about: one campaign, or all of them (`*`).
pub const ALL_CAMPAIGNS: &str = "*";

/// Current state of one (subject, campaign) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Granted,
    Withdrawn,
    /// A double opt-in request waits for confirmation.
    Pending,
}

/// The derived state row: status, since when, and the event it rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct State {
    pub status: Status,
    /// Time of the event that set this status (unix milliseconds).
    pub since: i64,
    pub event_id: i64,
}

/// Folds one event into the current state of its (subject, campaign) pair.
///
/// Events may arrive out of order (an import of old records): an event older
/// than the current state does not change it, so the state is always the one
/// of the latest event by its own time; on equal times the later-recorded wins.
/// Returns `None` when the pair has no state after the event (erasure).
pub fn apply(current: Option<State>, action: Action, at: i64, event_id: i64) -> Option<State> {
    if let Some(cur) = current
        && at < cur.since
    {
        return Some(cur);
    }
    let status = match action {
        Action::Grant | Action::Confirm => Status::Granted,
        Action::Withdraw => Status::Withdrawn,
        // A fresh request never takes away a consent already given: re-permission
        // mail asks again while the grant still stands.
        Action::Request => match current {
            Some(cur) if cur.status == Status::Granted => return Some(cur),
            _ => Status::Pending,
        },
        Action::Erase => return None,
        Action::Merge => return current,
    };
    Some(State {
        status,
        since: at,
        event_id,
    })
}

/// One subject's derived state: (campaign or `*`, state) rows.
pub type States = [(String, State)];

/// When subjects are merged into one: the campaigns (or `*`) where one of
/// them had objected and the merged state no longer does, so that a
/// withdrawal must be appended for the objection to win. A subject objects
/// to a campaign when its state for it is withdrawn, or its withdrawal
/// from all campaigns (`*`) is later than its state for it (or it has
/// none); a `*` withdrawal that the merged state lost is lost for `*`.
pub fn objections_lost(before: &[&States], merged: &States) -> Vec<String> {
    let get = |states: &States, k: &str| states.iter().find(|(c, _)| c == k).map(|(_, s)| *s);
    let later = |a: State, b: Option<State>| {
        b.is_none_or(|b| (a.since, a.event_id) > (b.since, b.event_id))
    };
    let objects = |states: &States, k: &str| {
        let own = get(states, k);
        if own.is_some_and(|s| s.status == Status::Withdrawn) {
            return true;
        }
        k != ALL_CAMPAIGNS
            && get(states, ALL_CAMPAIGNS)
                .is_some_and(|all| all.status == Status::Withdrawn && later(all, own))
    };
    let mut keys: Vec<&str> = before
        .iter()
        .flat_map(|s| s.iter().map(|(c, _)| c.as_str()))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys.into_iter()
        .filter(|k| before.iter().any(|s| objects(s, k)) && !objects(merged, k))
        .map(str::to_owned)
        .collect()
}

macro_rules! wire_names {
    ($ty:ty { $($variant:ident => $name:literal),* $(,)? }) => {
        impl $ty {
            /// The wire name, as stored and shown.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $name),* }
            }
        }
        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
        /// Compares with a wire name (`status == "sent"`).
        impl ::std::cmp::PartialEq<&str> for $ty {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
        impl ::std::str::FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($name => Ok(Self::$variant),)*
                    other => Err(format!(
                        "{other:?} is not one of: {}",
                        [$($name),*].join(", ")
                    )),
                }
            }
        }
    };
}
pub(crate) use wire_names;

wire_names!(Action { Grant => "grant", Withdraw => "withdraw", Request => "request", Confirm => "confirm", Erase => "erase", Merge => "merge" });
wire_names!(Source { Api => "api", Form => "form", OneClick => "one-click", Link => "link", PreferencePage => "preference-page", Import => "import", Admin => "admin", Complaint => "complaint" });
wire_names!(Status { Granted => "granted", Withdrawn => "withdrawn", Pending => "pending" });

#[cfg(test)]
mod tests {
    use super::*;

    fn st(status: Status, since: i64, event_id: i64) -> Option<State> {
        Some(State {
            status,
            since,
            event_id,
        })
    }

    #[test]
    fn first_event_sets_state() {
        assert_eq!(
            apply(None, Action::Grant, 10, 1),
            st(Status::Granted, 10, 1)
        );
        assert_eq!(
            apply(None, Action::Withdraw, 10, 1),
            st(Status::Withdrawn, 10, 1)
        );
        assert_eq!(
            apply(None, Action::Request, 10, 1),
            st(Status::Pending, 10, 1)
        );
        assert_eq!(
            apply(None, Action::Confirm, 10, 1),
            st(Status::Granted, 10, 1)
        );
        assert_eq!(apply(None, Action::Erase, 10, 1), None);
    }

    #[test]
    fn later_event_replaces_state() {
        let granted = st(Status::Granted, 10, 1);
        assert_eq!(
            apply(granted, Action::Withdraw, 20, 2),
            st(Status::Withdrawn, 20, 2)
        );
        let withdrawn = st(Status::Withdrawn, 10, 1);
        assert_eq!(
            apply(withdrawn, Action::Grant, 20, 2),
            st(Status::Granted, 20, 2)
        );
        let pending = st(Status::Pending, 10, 1);
        assert_eq!(
            apply(pending, Action::Confirm, 20, 2),
            st(Status::Granted, 20, 2)
        );
    }

    #[test]
    fn older_event_does_not_change_state() {
        let withdrawn = st(Status::Withdrawn, 20, 2);
        assert_eq!(apply(withdrawn, Action::Grant, 10, 3), withdrawn);
    }

    #[test]
    fn equal_time_later_recorded_wins() {
        let granted = st(Status::Granted, 20, 2);
        assert_eq!(
            apply(granted, Action::Withdraw, 20, 3),
            st(Status::Withdrawn, 20, 3)
        );
    }

    #[test]
    fn request_keeps_an_existing_grant() {
        let granted = st(Status::Granted, 10, 1);
        assert_eq!(apply(granted, Action::Request, 20, 2), granted);
        let withdrawn = st(Status::Withdrawn, 10, 1);
        assert_eq!(
            apply(withdrawn, Action::Request, 20, 2),
            st(Status::Pending, 20, 2)
        );
    }

    #[test]
    fn erase_clears_state() {
        assert_eq!(
            apply(st(Status::Granted, 10, 1), Action::Erase, 20, 2),
            None
        );
    }

    #[test]
    fn merge_changes_no_state() {
        let granted = st(Status::Granted, 10, 1);
        assert_eq!(apply(granted, Action::Merge, 20, 2), granted);
        assert_eq!(apply(None, Action::Merge, 20, 2), None);
    }

    fn states(rows: &[(&str, Status, i64)]) -> Vec<(String, State)> {
        rows.iter()
            .map(|(c, status, at)| {
                (
                    c.to_string(),
                    State {
                        status: *status,
                        since: *at,
                        event_id: *at,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn an_objection_lost_in_a_merge_is_found() {
        use Status::*;
        let withdrew = states(&[("news", Withdrawn, 10)]);
        let granted_later = states(&[("news", Granted, 20)]);
        let merged = states(&[("news", Granted, 20)]);
        assert_eq!(
            objections_lost(&[&withdrew, &granted_later], &merged),
            ["news"]
        );
        // Agreeing subjects, or an objection the merge keeps: nothing to add.
        let merged_withdrawn = states(&[("news", Withdrawn, 20)]);
        assert!(objections_lost(&[&withdrew, &withdrew], &merged_withdrawn).is_empty());
        assert!(objections_lost(&[&granted_later, &granted_later], &merged).is_empty());
        // Withdrawn from everything under one spelling, granted under another.
        let all = states(&[("*", Withdrawn, 10)]);
        let merged = states(&[("*", Withdrawn, 10), ("news", Granted, 20)]);
        assert_eq!(objections_lost(&[&all, &granted_later], &merged), ["news"]);
        // The same person's own later grant after a `*` withdrawal is theirs.
        let own = states(&[("*", Withdrawn, 10), ("news", Granted, 20)]);
        assert!(objections_lost(&[&own], &own).is_empty());
    }

    #[test]
    fn wire_names_round_trip() {
        for a in [
            Action::Grant,
            Action::Withdraw,
            Action::Request,
            Action::Confirm,
            Action::Erase,
            Action::Merge,
        ] {
            assert_eq!(a.as_str().parse::<Action>(), Ok(a));
        }
        assert_eq!("one-click".parse::<Source>(), Ok(Source::OneClick));
        assert!("click".parse::<Source>().unwrap_err().contains("one-click"));
    }
}
