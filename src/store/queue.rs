//! An operator's hand on single copies in the queue (the console's Queue
//! view, `consent-relay queue retry|release|drop`): retry a deferred copy
//! now, release a held one, drop one still waiting. Each is one
//! transaction with its audit row; a copy in another state, or a held
//! copy whose campaign is still paused, is refused with a
//! [`QueueError`] and nothing changes. The types and the [`Store`]
//! methods; the operation is `ops::queue`.

use super::ops;
use super::{Actor, DeliveryStatus, Store, StoreError};

/// What an operator does to one copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum QueueAction {
    /// A `deferred` copy is due now (its next attempt is not waited for).
    Retry,
    /// A `held` copy goes back to the queue, due now (`queued`, or
    /// `deferred` when it was tried before), once its campaign is not paused.
    Release,
    /// A `queued`, `deferred` or `held` copy ends as `dropped` (never
    /// sent), as `campaign drop-held` ends a held one: no decision row,
    /// the copy was decided and is withdrawn by hand.
    Drop,
}
crate::consent::wire_names!(QueueAction { Retry => "retry", Release => "release", Drop => "drop" });

impl QueueAction {
    /// The states a copy may be in for this action.
    pub fn from_states(self) -> &'static [DeliveryStatus] {
        match self {
            QueueAction::Retry => &[DeliveryStatus::Deferred],
            QueueAction::Release => &[DeliveryStatus::Held],
            QueueAction::Drop => &[
                DeliveryStatus::Queued,
                DeliveryStatus::Deferred,
                DeliveryStatus::Held,
            ],
        }
    }
}

/// What an action did to a copy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct QueueChange {
    pub delivery_id: i64,
    /// The message's queue id.
    pub message_id: String,
    pub campaign: String,
    pub from: DeliveryStatus,
    pub to: DeliveryStatus,
    /// The audit row written with the change.
    pub audit_id: i64,
}

/// Why an action changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("delivery {0} does not exist")]
    NotFound(i64),
    #[error("delivery {id} is {status}: {action} applies to {} copies only", states(*.action))]
    WrongState {
        id: i64,
        action: QueueAction,
        status: DeliveryStatus,
    },
    #[error(
        "delivery {id} is held because campaign {campaign} is paused: resume the campaign (or drop the copy)"
    )]
    CampaignPaused { id: i64, campaign: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `queued, deferred or held`.
fn states(action: QueueAction) -> String {
    let names: Vec<&str> = action.from_states().iter().map(|s| s.as_str()).collect();
    match names.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

impl Store {
    /// Does `action` to the copy `delivery_id`, recording `actor` in the
    /// audit trail in the same transaction.
    pub async fn queue_action(
        &self,
        action: QueueAction,
        delivery_id: i64,
        actor: &Actor,
    ) -> Result<QueueChange, QueueError> {
        let (done, _) = self
            .write(ops::queue::Act {
                action,
                delivery_id,
                actor: actor.clone(),
            })
            .await?;
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_say_what_the_action_applies_to() {
        let wrong = |action, status| QueueError::WrongState {
            id: 7,
            action,
            status,
        };
        assert_eq!(
            wrong(QueueAction::Drop, DeliveryStatus::Sent).to_string(),
            "delivery 7 is sent: drop applies to queued, deferred or held copies only"
        );
        assert_eq!(
            wrong(QueueAction::Retry, DeliveryStatus::Held).to_string(),
            "delivery 7 is held: retry applies to deferred copies only"
        );
    }
}
