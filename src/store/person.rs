//! One person as the console shows them (`/admin/person`): the subject
//! (live, or erased and known by its keyed hash), consent now, the newest
//! consent events with the operator who recorded each, the newest
//! decisions and copies with how many more there are, and every
//! suppression. A bounded read, in one snapshot: a person with a hundred
//! thousand decisions costs a page of rows and a count, not the export's
//! whole record (that is [`Store::subject_record`], message bodies and all).
//!
//! The types and the [`Store`] method; the queries are `ops::person`.

use std::collections::HashMap;

use super::{Actor, ops};
use super::{ConsentEvent, DecisionRow, DeliveryRow, StateRow, Store, StoreError, Suppression};

/// Which person to read, and how much of them.
#[derive(Debug, Clone)]
pub struct PersonQuery {
    /// The address's canonical identity.
    pub address: String,
    /// The keyed hashes an erased person with this address is found by
    /// (`consent::subject::identity_hashes`).
    pub hashes: Vec<String>,
    /// The most events, decisions and copies read (each newest first).
    pub limit: i64,
}

/// The subject row of the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonSubject {
    pub id: String,
    /// `None` once erased.
    pub address: Option<String>,
    pub address_hash: String,
    pub created_at: i64,
    pub erased_at: Option<i64>,
}

/// What the store holds about one person, bounded.
#[derive(Debug, Clone)]
pub struct Person {
    /// The live subject of the address, else the erased one its keyed
    /// hash names; `None` when only decisions or copies name the address.
    pub subject: Option<PersonSubject>,
    /// When an earlier subject of this address was erased (the person
    /// came back afterwards): the newest such erasure.
    pub erased_before: Option<i64>,
    pub states: Vec<StateRow>,
    /// Newest first, at most the query's limit; `events_total` in all.
    pub events: Vec<ConsentEvent>,
    pub events_total: i64,
    /// The operator who recorded an event, by event id (from the audit
    /// trail: events the person made themselves have none).
    pub recorded_by: HashMap<i64, Actor>,
    /// Newest first, at most the limit; `decisions_total` in all.
    pub decisions: Vec<DecisionRow>,
    pub decisions_total: i64,
    /// The copies, newest first, at most the limit; `deliveries_total` in
    /// all (their attempts are not read: the message trace shows them).
    pub deliveries: Vec<DeliveryRow>,
    pub deliveries_total: i64,
    /// Every suppression, removed and expired ones too, oldest first.
    pub suppressions: Vec<Suppression>,
}

impl Person {
    /// Whether the subject shown is an erased one (its address gone).
    pub fn erased(&self) -> bool {
        self.subject.as_ref().is_some_and(|s| s.address.is_none())
    }
}

impl Store {
    /// The person `query` names, in one snapshot; `None` when nothing is
    /// held about the address (and no erased subject has its hash).
    pub async fn person(&self, query: &PersonQuery) -> Result<Option<Person>, StoreError> {
        let now = crate::time::now_ms();
        snapshot!(self, c => ops::person::person(c, query, now))
    }
}
