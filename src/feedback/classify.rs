//! What a report means for the people it is about (SPEC "What comes back"):
//! pure, values in and values out; the rules that act on it (suppress,
//! count soft days, withdraw) come after.
//!
//! - A recipient with `Action: failed` whose status is in the hard list
//!   (`[bounces] hard`, default [`DEFAULT_HARD`]) is a hard bounce; any
//!   other failure is soft: 5.7.x policy and reputation blocks, size, a
//!   4.x.x status (also with `Action: failed`), a catch-all or missing
//!   status.
//! - `delayed`, `relayed`, `delivered` and `expanded` change nothing.
//! - A block without a (known) `Action` is judged by its status: 5.x.x as
//!   failed, 4.x.x soft, 2.x.x nothing, none soft.
//! - The status judged is [`RecipientStatus::effective_status`] (Exim's
//!   `5.0.0` with `550 5.1.1` in the diagnostic is 5.1.1).
//! - An ARF report of type `abuse` or `fraud` is a complaint; other types
//!   are recorded, not acted on.
//! - Automatic replies and what is not a report change nothing.

use crate::feedback::report::{Action, FeedbackType, Kind, RecipientStatus, Report, StatusCode};

/// RFC 3463 statuses that mean the mailbox does not exist (or never will
/// take mail): bad mailbox, bad system, bad syntax, mailbox moved, an
/// address that is not found by lookup (5.1.10, Microsoft), and a disabled
/// mailbox.
pub const DEFAULT_HARD: &[StatusCode] = &[
    StatusCode::new(5, 1, 1),
    StatusCode::new(5, 1, 2),
    StatusCode::new(5, 1, 3),
    StatusCode::new(5, 1, 6),
    StatusCode::new(5, 1, 10),
    StatusCode::new(5, 2, 1),
];

/// What one recipient block of a bounce means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BounceOutcome {
    /// Permanent and in the hard list: suppress at once.
    Hard(StatusCode),
    /// Any other failure: counted as a soft day.
    Soft(Option<StatusCode>),
    /// Delayed, relayed, delivered, expanded: nothing changes.
    NoChange,
}

/// What a report means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// One outcome per recipient block, in the report's order.
    Bounce(Vec<BounceOutcome>),
    /// `abuse` or `fraud`: an objection from the person.
    Complaint,
    /// Another feedback type: kept, not acted on.
    FeedbackRecorded(FeedbackType),
    /// An automatic reply: ignored.
    AutoReply,
    /// Not a report (the intake answers 65).
    NotAReport,
}

/// The outcome for a recipient's action and status; also for the
/// upstream's own reply to a copy (`Action::Failed` and
/// `StatusCode::from_reply`).
pub fn outcome(action: &Action, status: Option<StatusCode>, hard: &[StatusCode]) -> BounceOutcome {
    let failed = |status: Option<StatusCode>| match status {
        Some(s) if hard.contains(&s) && s.class == 5 => BounceOutcome::Hard(s),
        s => BounceOutcome::Soft(s),
    };
    match action {
        Action::Failed => failed(status),
        Action::Delayed | Action::Delivered | Action::Relayed | Action::Expanded => {
            BounceOutcome::NoChange
        }
        Action::Other(_) | Action::Missing => match status.map(|s| s.class) {
            Some(2) => BounceOutcome::NoChange,
            _ => failed(status),
        },
    }
}

/// The outcome of one recipient block.
pub fn recipient(r: &RecipientStatus, hard: &[StatusCode]) -> BounceOutcome {
    outcome(&r.action, r.effective_status(), hard)
}

/// What the report means, given the hard statuses.
pub fn classify(report: &Report, hard: &[StatusCode]) -> Verdict {
    match &report.kind {
        Kind::Bounce(b) => Verdict::Bounce(
            b.status
                .recipients
                .iter()
                .map(|r| recipient(r, hard))
                .collect(),
        ),
        Kind::Complaint(c) => match c.feedback_type {
            FeedbackType::Abuse | FeedbackType::Fraud => Verdict::Complaint,
            ref other => Verdict::FeedbackRecorded(other.clone()),
        },
        Kind::AutoReply(_) => Verdict::AutoReply,
        Kind::NotAReport(_) => Verdict::NotAReport,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(s: &str) -> Option<StatusCode> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn failed_with_a_hard_status_is_hard_and_others_soft() {
        for hard in ["5.1.1", "5.1.2", "5.1.3", "5.1.6", "5.1.10", "5.2.1"] {
            assert_eq!(
                outcome(&Action::Failed, code(hard), DEFAULT_HARD),
                BounceOutcome::Hard(hard.parse().unwrap()),
                "{hard}"
            );
        }
        for soft in [
            "5.7.1", "5.3.4", "5.2.2", "5.0.0", "4.2.2", "4.1.1", "5.1.0",
        ] {
            assert_eq!(
                outcome(&Action::Failed, code(soft), DEFAULT_HARD),
                BounceOutcome::Soft(code(soft)),
                "{soft}"
            );
        }
        assert_eq!(
            outcome(&Action::Failed, None, DEFAULT_HARD),
            BounceOutcome::Soft(None)
        );
    }

    #[test]
    fn the_hard_list_is_the_callers() {
        let only_5_7_1 = ["5.7.1".parse().unwrap()];
        assert_eq!(
            outcome(&Action::Failed, code("5.7.1"), &only_5_7_1),
            BounceOutcome::Hard("5.7.1".parse().unwrap())
        );
        assert_eq!(
            outcome(&Action::Failed, code("5.1.1"), &only_5_7_1),
            BounceOutcome::Soft(code("5.1.1"))
        );
        // A transient status is never hard, whatever the list says.
        let odd = ["4.1.1".parse().unwrap()];
        assert_eq!(
            outcome(&Action::Failed, code("4.1.1"), &odd),
            BounceOutcome::Soft(code("4.1.1"))
        );
    }

    #[test]
    fn other_actions_change_nothing() {
        for action in [
            Action::Delayed,
            Action::Delivered,
            Action::Relayed,
            Action::Expanded,
        ] {
            assert_eq!(
                outcome(&action, code("5.1.1"), DEFAULT_HARD),
                BounceOutcome::NoChange
            );
        }
    }

    #[test]
    fn a_missing_action_is_judged_by_the_status() {
        assert_eq!(
            outcome(&Action::Missing, code("5.1.1"), DEFAULT_HARD),
            BounceOutcome::Hard("5.1.1".parse().unwrap())
        );
        assert_eq!(
            outcome(&Action::Other("weird".into()), code("4.4.1"), DEFAULT_HARD),
            BounceOutcome::Soft(code("4.4.1"))
        );
        assert_eq!(
            outcome(&Action::Missing, code("2.0.0"), DEFAULT_HARD),
            BounceOutcome::NoChange
        );
    }
}
