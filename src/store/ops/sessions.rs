//! Operators' console sessions (`operator_sessions`): opened at sign-in,
//! read and kept alive at each request, closed at sign-out. The cookie's
//! id is never stored, only its SHA-256; expiry is the caller's
//! ([`crate::store::SessionRules`]) so every node applies the same.

use super::{Conn, Op, Sql};
use crate::store::rows::Cols;
use crate::store::{OperatorSession, SessionRules, StoreError};

/// Opens a session; first deletes every session past its expiry (so the
/// table holds live sessions only, without a sweeper of its own).
pub(in crate::store) struct Open {
    pub id_hash: String,
    pub operator: String,
    pub csrf: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub rules: SessionRules,
}

impl Op for Open {
    type Out = ();

    async fn run<C: Conn>(&self, c: &mut C, now: i64) -> Result<(), StoreError> {
        c.execute(
            Sql::new("DELETE FROM operator_sessions WHERE seen_at <= $1 OR created_at <= $2")
                .arg(now - self.rules.idle_ms)
                .arg(now - self.rules.lifetime_ms),
        )
        .await?;
        c.execute(
            Sql::new(
                "INSERT INTO operator_sessions (id_hash, operator, csrf, created_at, seen_at, ip, user_agent) \
                 VALUES ($1, $2, $3, $4, $4, $5, $6)",
            )
            .arg(&self.id_hash)
            .arg(&self.operator)
            .arg(&self.csrf)
            .arg(now)
            .arg(&self.ip)
            .arg(&self.user_agent),
        )
        .await?;
        Ok(())
    }
}

/// The columns [`session_from_row`] reads.
const COLUMNS: &str = "operator, csrf, created_at, seen_at";

fn session_from_row(r: &impl Cols) -> Result<OperatorSession, StoreError> {
    Ok(OperatorSession {
        operator: r.text(0)?,
        csrf: r.text(1)?,
        created_at: r.int(2)?,
        seen_at: r.int(3)?,
    })
}

/// The session `id_hash` names, if it is live at `now`.
pub(in crate::store) async fn live<C: Conn>(
    c: &mut C,
    id_hash: &str,
    rules: SessionRules,
    now: i64,
) -> Result<Option<OperatorSession>, StoreError> {
    let row = c
        .fetch_optional(
            Sql::new("SELECT ")
                .push(COLUMNS)
                .push(" FROM operator_sessions WHERE id_hash = $1 AND seen_at > $2 AND created_at > $3")
                .arg(id_hash)
                .arg(now - rules.idle_ms)
                .arg(now - rules.lifetime_ms),
        )
        .await?;
    row.as_ref().map(session_from_row).transpose()
}

/// Marks a live session seen now (its idle expiry starts again); `false`
/// when it expired or was closed meanwhile.
pub(in crate::store) struct Touch {
    pub id_hash: String,
    pub rules: SessionRules,
}

impl Op for Touch {
    type Out = bool;

    async fn run<C: Conn>(&self, c: &mut C, now: i64) -> Result<bool, StoreError> {
        let n = c
            .execute(
                Sql::new(
                    "UPDATE operator_sessions SET seen_at = $1 \
                     WHERE id_hash = $2 AND seen_at > $3 AND created_at > $4",
                )
                .arg(now)
                .arg(&self.id_hash)
                .arg(now - self.rules.idle_ms)
                .arg(now - self.rules.lifetime_ms),
            )
            .await?;
        Ok(n > 0)
    }
}

/// Closes one session (sign-out); `false` when there was none.
pub(in crate::store) struct Close {
    pub id_hash: String,
}

impl Op for Close {
    type Out = bool;

    async fn run<C: Conn>(&self, c: &mut C, _now: i64) -> Result<bool, StoreError> {
        let n = c
            .execute(
                Sql::new("DELETE FROM operator_sessions WHERE id_hash = $1").arg(&self.id_hash),
            )
            .await?;
        Ok(n > 0)
    }
}
