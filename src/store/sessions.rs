//! The store's side of operators' console sessions: the types and the
//! [`Store`] methods; the operations are `ops::sessions`. What a session
//! may do is the console's (`web::console`), from the operator's role in
//! the configuration.

use super::ops;
use super::{Store, StoreError};

/// How long sessions live: `idle_ms` without a request, `lifetime_ms` in
/// all from sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionRules {
    pub idle_ms: i64,
    pub lifetime_ms: i64,
}

/// A live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorSession {
    /// The operator's name in `[[http.operator]]`.
    pub operator: String,
    /// The token every form of the session carries.
    pub csrf: String,
    pub created_at: i64,
    pub seen_at: i64,
}

/// A session seen this recently is not written again (a page of the
/// console makes one write a minute at most, not one per request).
pub const TOUCH_EVERY_MS: i64 = 60_000;

impl Store {
    /// Opens a session (sign-in). `id_hash`: SHA-256 hex of the cookie's id.
    pub async fn open_session(
        &self,
        id_hash: &str,
        operator: &str,
        csrf: &str,
        ip: Option<String>,
        user_agent: Option<String>,
        rules: SessionRules,
    ) -> Result<(), StoreError> {
        self.write(ops::sessions::Open {
            id_hash: id_hash.to_owned(),
            operator: operator.to_owned(),
            csrf: csrf.to_owned(),
            ip,
            user_agent,
            rules,
        })
        .await
    }

    /// The live session `id_hash` names, kept alive (its idle expiry
    /// starts again, written at most every [`TOUCH_EVERY_MS`]).
    pub async fn session(
        &self,
        id_hash: &str,
        rules: SessionRules,
    ) -> Result<Option<OperatorSession>, StoreError> {
        let now = crate::time::now_ms();
        let Some(session) = read!(self, c => ops::sessions::live(c, id_hash, rules, now))? else {
            return Ok(None);
        };
        if now - session.seen_at < TOUCH_EVERY_MS {
            return Ok(Some(session));
        }
        let touched = self
            .write(ops::sessions::Touch {
                id_hash: id_hash.to_owned(),
                rules,
            })
            .await?;
        Ok(touched.then_some(session))
    }

    /// Closes the session `id_hash` names (sign-out); `false` when none was open.
    pub async fn close_session(&self, id_hash: &str) -> Result<bool, StoreError> {
        self.write(ops::sessions::Close {
            id_hash: id_hash.to_owned(),
        })
        .await
    }
}
