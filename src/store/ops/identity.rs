//! Bringing a store to the identity rules (`consent::identity`), once, when
//! it opens after its SQL migrations: canonical forms are computed in Rust,
//! so this is a data step, not a migration. Stores made before the rules
//! hold addresses as written, trimmed and lowercased; two such subjects may
//! be one mailbox (`ann@example.net.` and `ann@example.net`).
//!
//! - A subject whose address is not canonical and collides with nothing
//!   gets the canonical address (an address the parser refuses as written,
//!   as the API took some before it, is read as SMTP reads it: quoted
//!   where needed, `"john..doe"@example.net`).
//! - Subjects whose canonical forms collide are merged into one (the one
//!   already canonical, else the oldest): events, decisions and webhook
//!   rows are re-pointed to it and kept, its state is derived again from
//!   all of them, and a `merge` event records each merge. The merged
//!   subject keeps its row without an address (`merged_into`), so links
//!   that name it still work. Where the merged subjects disagreed and one
//!   had objected, a `withdraw` naming the merge is appended: the
//!   objection wins.
//! - Decision and delivery rows naming an old form name the canonical one,
//!   whether a subject held that form or not (a suppressed recipient has
//!   none); a delivery keeps the old form as the address to send to.
//!
//! One transaction; on PostgreSQL under an advisory lock, so nodes that
//! start together run it once; done when `store_steps` holds its name (an
//! empty store is not marked: there is nothing to bring).

use std::collections::{BTreeMap, HashMap};

use super::consent::{EventRow, insert_event, put_state};
use super::{Conn, KeySpace, Op, Sql};
use crate::consent::identity::Identity;
use crate::consent::{self, ALL_CAMPAIGNS, Action, Source, State};
use crate::mail::address::Mailbox;
use crate::store::StoreError;
use crate::store::rows::{Cols, state_from};

/// The step's name in `store_steps`: a new version of the identity rules
/// names a new step, which runs again over every subject.
pub(in crate::store) const STEP: &str = "identity-1";

/// Subjects read per statement while scanning.
const PAGE: i64 = 1000;

/// What the step did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(in crate::store) struct IdentityReport {
    /// Subjects whose address was rewritten to its canonical form.
    pub rewritten: u64,
    /// Subjects merged into another.
    pub merged: u64,
    /// Withdrawals appended where a merge would have lost an objection.
    pub objections_kept: u64,
    /// Subjects whose stored address is not a mailbox (left as they are).
    pub unparsable: u64,
}

/// Brings the store to the identity rules (`webhook`: the events it
/// appends go to the outbox too).
pub(in crate::store) struct BringToIdentity {
    pub webhook: bool,
}

impl Op for BringToIdentity {
    type Out = IdentityReport;

    async fn run<C: Conn>(&self, c: &mut C, now: i64) -> Result<IdentityReport, StoreError> {
        c.lock_keys(KeySpace::Step, &[STEP]).await?;
        let done = c
            .fetch_optional(Sql::new("SELECT done_at FROM store_steps WHERE name = $1").arg(STEP))
            .await?;
        if done.is_some() {
            return Ok(IdentityReport::default());
        }
        let (subjects, mut report) = not_canonical(c).await?;
        let Some(subjects) = subjects else {
            rename_unheld_rows(c).await?;
            return Ok(report);
        };
        for (canonical, members) in subjects {
            let (rewritten, merged, kept) =
                bring(c, &canonical, members, self.webhook, now).await?;
            report.rewritten += rewritten;
            report.merged += merged;
            report.objections_kept += kept;
        }
        rename_unheld_rows(c).await?;
        c.execute(
            Sql::new("INSERT INTO store_steps (name, done_at) VALUES ($1, $2)")
                .arg(STEP)
                .arg(now),
        )
        .await?;
        Ok(report)
    }

    fn wrote_events(report: &IdentityReport) -> bool {
        report.merged > 0
    }
}

/// A stored subject: id, address, created_at.
type Subject = (String, String, i64);

/// The live subjects whose address is not canonical, by canonical form;
/// `None` when the store has no live subject at all.
async fn not_canonical<C: Conn>(
    c: &mut C,
) -> Result<(Option<BTreeMap<String, Vec<Subject>>>, IdentityReport), StoreError> {
    let mut report = IdentityReport::default();
    let mut found: BTreeMap<String, Vec<Subject>> = BTreeMap::new();
    let (mut after, mut any) = (String::new(), false);
    loop {
        let rows = c
            .fetch_all(
                Sql::new(
                    "SELECT id, address, created_at FROM subjects WHERE address IS NOT NULL AND id > $1 \
                     ORDER BY id LIMIT $2",
                )
                .arg(&after)
                .arg(PAGE),
            )
            .await?;
        let Some(last) = rows.last() else { break };
        after = last.text(0)?;
        any = true;
        for r in &rows {
            let address = r.text(1)?;
            // An address the parser refuses as written (the API took
            // `john..doe@example.net` before it) is taken as SMTP takes
            // it, quoted where needed, so that access and erasure reach it.
            let identity = Identity::of(&address).or_else(|e| {
                Mailbox::from_unquoted(&address)
                    .map(|m| Identity::of_mailbox(&m, &address))
                    .map_err(|_| e)
            });
            match identity {
                Ok(i) if i.canonical() == address => {}
                Ok(i) => found.entry(i.canonical().to_owned()).or_default().push((
                    r.text(0)?,
                    address,
                    r.int(2)?,
                )),
                Err(_) => report.unparsable += 1,
            }
        }
    }
    Ok((any.then_some(found), report))
}

/// Gives `canonical` to one subject: the one holding it already, else the
/// oldest of `members`, into which the others are merged. Returns the
/// subjects rewritten, merged, and the withdrawals appended.
async fn bring<C: Conn>(
    c: &mut C,
    canonical: &str,
    mut members: Vec<Subject>,
    webhook: bool,
    now: i64,
) -> Result<(u64, u64, u64), StoreError> {
    let holder = c
        .fetch_optional(
            Sql::new("SELECT id, address, created_at FROM subjects WHERE address = $1")
                .push(C::FOR_UPDATE)
                .arg(canonical),
        )
        .await?;
    if let Some(h) = holder {
        members.insert(0, (h.text(0)?, h.text(1)?, h.int(2)?));
    } else {
        members.sort_by(|a, b| (a.2, &a.0).cmp(&(b.2, &b.0)));
    }
    let survivor = members[0].0.clone();
    let losers: Vec<&Subject> = members[1..].iter().collect();
    // What each member's state was, for the objection rule; a plain rename
    // (no loser) needs none.
    let mut before: Vec<Vec<(String, State)>> = Vec::with_capacity(members.len());
    if !losers.is_empty() {
        for m in &members {
            before.push(states(c, &m.0).await?);
        }
    }
    // The losers give up their addresses first (the column is unique).
    for l in &losers {
        c.execute(
            Sql::new("UPDATE subjects SET address = NULL, merged_into = $2 WHERE id = $1")
                .arg(&l.0)
                .arg(&survivor),
        )
        .await?;
    }
    let rewritten = u64::from(members[0].1 != canonical);
    if rewritten == 1 {
        c.execute(
            Sql::new("UPDATE subjects SET address = $2 WHERE id = $1")
                .arg(&survivor)
                .arg(canonical),
        )
        .await?;
    }
    for (_, old, _) in members.iter().filter(|m| m.1 != canonical) {
        rename_rows(c, old, canonical).await?;
    }
    if losers.is_empty() {
        return Ok((rewritten, 0, 0));
    }
    for l in &losers {
        for sql in [
            "UPDATE consent_events SET subject_id = $2 WHERE subject_id = $1",
            "UPDATE webhook_outbox SET subject_id = $2 WHERE subject_id = $1",
            "UPDATE decisions SET subject_id = $2 WHERE subject_id = $1",
            "UPDATE subjects SET merged_into = $2 WHERE merged_into = $1",
        ] {
            c.execute(Sql::new(sql).arg(&l.0).arg(&survivor)).await?;
        }
        c.execute(Sql::new("DELETE FROM consent_state WHERE subject_id = $1").arg(&l.0))
            .await?;
    }
    let merged = derive_again(c, &survivor).await?;
    for l in &losers {
        insert_event(
            c,
            EventRow {
                subject_id: &survivor,
                campaign: ALL_CAMPAIGNS,
                action: Action::Merge,
                at: now,
                source: Source::Admin,
                ip: None,
                user_agent: None,
                evidence: Some(&format!(
                    "subject {} ({}) merged into this one: one mailbox, {canonical}, under the identity rules",
                    l.0, l.1
                )),
            },
            webhook,
            now,
        )
        .await?;
    }
    let befores: Vec<&consent::States> = before.iter().map(Vec::as_slice).collect();
    let lost = consent::objections_lost(&befores, &merged);
    let spellings: Vec<&str> = members.iter().map(|m| m.1.as_str()).collect();
    for campaign in &lost {
        let evidence = format!(
            "merge of {}: a withdrawal recorded under one of these spellings wins",
            spellings.join(", ")
        );
        let event = insert_event(
            c,
            EventRow {
                subject_id: &survivor,
                campaign,
                action: Action::Withdraw,
                at: now,
                source: Source::Admin,
                ip: None,
                user_agent: None,
                evidence: Some(&evidence),
            },
            webhook,
            now,
        )
        .await?;
        let current = merged.iter().find(|(k, _)| k == campaign).map(|(_, s)| *s);
        if let Some(s) = consent::apply(current, Action::Withdraw, now, event.id) {
            put_state(c, &survivor, campaign, s).await?;
        }
    }
    Ok((rewritten, losers.len() as u64, lost.len() as u64))
}

/// Decision and delivery rows naming `old` name `canonical`; a delivery
/// keeps `old` as the address its copy goes (or went) to.
async fn rename_rows<C: Conn>(c: &mut C, old: &str, canonical: &str) -> Result<(), StoreError> {
    c.execute(
        Sql::new("UPDATE decisions SET recipient = $2 WHERE recipient = $1")
            .arg(old)
            .arg(canonical),
    )
    .await?;
    c.execute(
        Sql::new(
            "UPDATE deliveries SET rcpt_to = COALESCE(rcpt_to, recipient), recipient = $2 WHERE recipient = $1",
        )
        .arg(old)
        .arg(canonical),
    )
    .await?;
    Ok(())
}

/// Decision and delivery rows naming an old form that no subject held (a
/// recipient suppressed for want of consent gets no subject): they name
/// the canonical form too, so that access and erasure by the identity
/// find them.
async fn rename_unheld_rows<C: Conn>(c: &mut C) -> Result<(), StoreError> {
    let rows = c
        .fetch_all(Sql::new(
            "SELECT recipient FROM decisions WHERE recipient NOT LIKE 'erased:%' \
             UNION SELECT recipient FROM deliveries WHERE recipient NOT LIKE 'erased:%'",
        ))
        .await?;
    for r in &rows {
        let old = r.text(0)?;
        if let Ok(i) = Identity::of(&old)
            && i.canonical() != old
        {
            rename_rows(c, &old, i.canonical()).await?;
        }
    }
    Ok(())
}

/// A subject's derived state rows.
async fn states<C: Conn>(c: &mut C, subject_id: &str) -> Result<Vec<(String, State)>, StoreError> {
    c.fetch_all(
        Sql::new(
            "SELECT campaign, status, since, event_id FROM consent_state WHERE subject_id = $1",
        )
        .arg(subject_id),
    )
    .await?
    .iter()
    .map(|r| Ok((r.text(0)?, state_from(&r.text(1)?, r.int(2)?, r.int(3)?)?)))
    .collect()
}

/// Derives the subject's state again from all its events, in the order
/// they were recorded (as each was applied when it was), and stores it.
async fn derive_again<C: Conn>(
    c: &mut C,
    subject_id: &str,
) -> Result<Vec<(String, State)>, StoreError> {
    let rows = c
        .fetch_all(
            Sql::new(
                "SELECT id, campaign, action, at FROM consent_events WHERE subject_id = $1 ORDER BY id",
            )
            .arg(subject_id),
        )
        .await?;
    let mut derived: HashMap<String, Option<State>> = HashMap::new();
    for r in &rows {
        let action: Action = r
            .text(2)?
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("consent_events.action: {e}")))?;
        let slot = derived.entry(r.text(1)?).or_default();
        *slot = consent::apply(*slot, action, r.int(3)?, r.int(0)?);
    }
    c.execute(Sql::new("DELETE FROM consent_state WHERE subject_id = $1").arg(subject_id))
        .await?;
    let mut merged: Vec<(String, State)> = derived
        .into_iter()
        .filter_map(|(k, s)| s.map(|s| (k, s)))
        .collect();
    merged.sort_by(|a, b| a.0.cmp(&b.0));
    for (campaign, s) in &merged {
        put_state(c, subject_id, campaign, *s).await?;
    }
    Ok(merged)
}
