//! AUTH PLAIN and LOGIN (RFC 4954, RFC 4616) within a session: the
//! exchange, the argon2id check (an unknown user costs the same work), and
//! the cross-session failure counters of [`crate::smtp::limiter`]: a blocked
//! address gets 421, a user locked from this address fails like a wrong
//! password, and each failure from an address waits longer than the last.

use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{
    AUTH_FAILURE_DELAY, Late, MAX_AUTH_FAILURES, MAX_AUTH_LINE, Next, Phase, Session, not_offered,
};
use crate::smtp::reply::{self, Reply};

impl<S: AsyncRead + AsyncWrite + Unpin> Session<'_, S> {
    pub(super) async fn handle_auth(
        &mut self,
        mechanism: u64,
        initial: String,
    ) -> std::io::Result<Next> {
        if let Some(r) = self.auth_refusal() {
            return Ok(self.refuse(r));
        }
        let ip = self.peer.ip().to_canonical();
        if self.ctx.auth_limiter.ip_blocked(ip, Instant::now()) {
            tracing::info!(peer = %self.peer, "auth refused: too many failures from this address");
            self.reply(reply::auth_blocked(&self.ctx.config.smtp.hostname));
            return Ok(Next::Close);
        }
        let credentials = match self.credentials(mechanism, &initial).await? {
            Ok(c) => c,
            Err(next) => return Ok(next),
        };
        let (verified, known_user) = self.check(ip, credentials).await;
        match verified {
            Some(user) => Ok(self.authenticated(user)),
            None => Ok(self.failed(ip, known_user.as_deref()).await),
        }
    }

    /// Why AUTH is refused here, if it is: no users, no TLS, out of phase,
    /// or already done.
    fn auth_refusal(&self) -> Option<Reply> {
        if self.ctx.config.smtp.users.is_empty() {
            return Some(not_offered("AUTH"));
        }
        if !self.auth_allowed() {
            return Some(Reply::new(
                538,
                "5.7.11",
                "encryption required for requested authentication mechanism",
            ));
        }
        match self.phase {
            Phase::Connected => Some(reply::bad_sequence("send EHLO first")),
            Phase::Mail | Phase::Rcpt => Some(reply::bad_sequence(
                "AUTH is not allowed during a mail transaction",
            )),
            Phase::Greeted if self.auth_user.is_some() => {
                Some(reply::bad_sequence("already authenticated"))
            }
            Phase::Greeted => None,
        }
    }

    /// The exchange of `mechanism`: the user name and password given,
    /// `None` if they do not parse; `Err(next)` when the exchange ended
    /// (client gone or answer refused).
    async fn credentials(
        &mut self,
        mechanism: u64,
        initial: &str,
    ) -> std::io::Result<Result<Option<(String, Vec<u8>)>, Next>> {
        Ok(match mechanism {
            smtp_proto::AUTH_PLAIN => match self.auth_input(initial, "").await? {
                Ok(response) => Ok(parse_plain(&response)),
                Err(next) => Err(next),
            },
            smtp_proto::AUTH_LOGIN => {
                // "Username:" and "Password:" in base64, as LOGIN clients expect.
                let user = match self.auth_input(initial, "VXNlcm5hbWU6").await? {
                    Ok(u) => u,
                    Err(next) => return Ok(Err(next)),
                };
                let password = match self.auth_input("", "UGFzc3dvcmQ6").await? {
                    Ok(p) => p,
                    Err(next) => return Ok(Err(next)),
                };
                Ok(String::from_utf8(user).ok().map(|u| (u, password)))
            }
            _ => Err(self.refuse(Reply::new(
                504,
                "5.5.4",
                "unrecognized authentication type (use PLAIN or LOGIN)",
            ))),
        })
    }

    /// The user, if the credentials are right and the user not locked from
    /// `ip`; and the configured user they name, if any (for the failure
    /// counters).
    async fn check(
        &self,
        ip: std::net::IpAddr,
        credentials: Option<(String, Vec<u8>)>,
    ) -> (Option<String>, Option<String>) {
        let Some((user, password)) = credentials else {
            return (None, None);
        };
        let known = self.known_user(&user);
        // A locked user is checked all the same (same time, same
        // reply): only the outcome is forced to a failure.
        let locked =
            known.is_some_and(|u| self.ctx.auth_limiter.user_locked(u, ip, Instant::now()));
        let ok = self.verify(user, password).await;
        (ok.filter(|_| !locked), known.map(str::to_owned))
    }

    fn authenticated(&mut self, user: String) -> Next {
        tracing::info!(peer = %self.peer, user = %user, "authenticated");
        self.ctx
            .auth_limiter
            .record_success(&user, self.peer.ip().to_canonical());
        self.auth_user = Some(user);
        self.reply(Reply::new(235, "2.7.0", "authentication succeeded"));
        Next::Continue
    }

    /// A failed AUTH: counted here and across sessions, answered after a
    /// delay that grows with each failure from the address ([`AUTH_FAILURE_DELAY`]
    /// times their number); the session closes when the address is
    /// blocked or after [`MAX_AUTH_FAILURES`].
    async fn failed(&mut self, ip: std::net::IpAddr, known_user: Option<&str>) -> Next {
        self.auth_failures += 1;
        let limiter = &self.ctx.auth_limiter;
        let now = Instant::now();
        limiter.record_failure(ip, known_user, now);
        let delay = limiter.delay(ip, AUTH_FAILURE_DELAY, now);
        tracing::info!(
            peer = %self.peer,
            failures = self.auth_failures,
            delay_ms = delay.as_millis() as u64,
            "authentication failed"
        );
        tokio::time::sleep(delay).await;
        self.reply(reply::auth_failed());
        if self.ctx.auth_limiter.ip_blocked(ip, Instant::now()) {
            self.reply(reply::auth_blocked(&self.ctx.config.smtp.hostname));
            return Next::Close;
        }
        if self.auth_failures >= MAX_AUTH_FAILURES {
            self.reply(Reply::new(
                421,
                "4.7.0",
                format!(
                    "{} too many authentication failures; closing connection",
                    self.ctx.config.smtp.hostname
                ),
            ));
            return Next::Close;
        }
        Next::Continue
    }

    /// Reads the client's answer to a 334 challenge, base64-decoded.
    /// One step of an AUTH exchange: the initial response given with the
    /// command, or else the client's answer to a `334 prompt`, decoded.
    async fn auth_input(
        &mut self,
        initial: &str,
        prompt: &str,
    ) -> std::io::Result<Result<Vec<u8>, Next>> {
        if !initial.is_empty() {
            return Ok(decode_initial(initial).map_err(|r| self.refuse(r)));
        }
        self.reply(Reply::new(334, "", prompt));
        Ok(match self.auth_response().await? {
            AuthResponse::Line(l) => Ok(l),
            AuthResponse::Closed => Err(Next::Close),
            AuthResponse::Refused(r) => Err(self.refuse(r)),
        })
    }

    async fn auth_response(&mut self) -> std::io::Result<AuthResponse> {
        let deadline = Instant::now() + self.ctx.config.smtp.command_timeout;
        let line = loop {
            if let Some(nl) = self.inbuf.iter().position(|&b| b == b'\n') {
                break self.inbuf.drain(..=nl).collect::<Vec<u8>>();
            }
            if self.inbuf.len() > MAX_AUTH_LINE {
                self.inbuf.clear();
                return Ok(AuthResponse::Refused(reply::line_too_long()));
            }
            if !self.read_more(deadline, false, Late::Idle).await? {
                return Ok(AuthResponse::Closed);
            }
        };
        let Some(text) = line.strip_suffix(b"\r\n") else {
            return Ok(AuthResponse::Refused(reply::bare_newline_in_command()));
        };
        if text == b"*" {
            return Ok(AuthResponse::Refused(Reply::new(
                501,
                "5.0.0",
                "authentication cancelled",
            )));
        }
        match BASE64.decode(text) {
            Ok(v) => Ok(AuthResponse::Line(v)),
            Err(_) => Ok(AuthResponse::Refused(invalid_base64())),
        }
    }

    /// The configured name equal to `user`, if any.
    fn known_user(&self, user: &str) -> Option<&str> {
        let users = &self.ctx.config.smtp.users;
        users
            .iter()
            .find(|u| u.name == user)
            .map(|u| u.name.as_str())
    }

    /// Checks the password against the user's argon2id hash, off the
    /// async threads. An unknown user costs the same work as a known one,
    /// so timing does not tell which part was wrong.
    async fn verify(&self, user: String, password: Vec<u8>) -> Option<String> {
        let hash = self
            .ctx
            .config
            .smtp
            .users
            .iter()
            .find(|u| u.name == user)
            .map(|u| u.password_hash.clone());
        let ok = tokio::task::spawn_blocking(move || {
            use argon2::PasswordVerifier as _;
            let argon2 = argon2::Argon2::default();
            match hash {
                Some(h) => argon2.verify_password(&password, h.as_str()).is_ok(),
                None => {
                    let _ = argon2.verify_password(&password, unknown_user_hash());
                    false
                }
            }
        })
        .await
        .unwrap_or(false);
        ok.then_some(user)
    }
}

enum AuthResponse {
    Line(Vec<u8>),
    Closed,
    Refused(Reply),
}

fn invalid_base64() -> Reply {
    Reply::new(501, "5.5.2", "invalid base64 in the authentication data")
}

/// An initial response on the AUTH line; "=" is an empty one (RFC 4954 4).
fn decode_initial(initial: &str) -> Result<Vec<u8>, Reply> {
    if initial == "=" {
        return Ok(Vec::new());
    }
    BASE64.decode(initial).map_err(|_| invalid_base64())
}

/// RFC 4616: `[authzid] NUL authcid NUL passwd`. An authorization identity
/// other than the user's own is not supported: it fails like a wrong password.
fn parse_plain(response: &[u8]) -> Option<(String, Vec<u8>)> {
    let mut parts = response.splitn(3, |&b| b == 0);
    let authzid = parts.next()?;
    let authcid = std::str::from_utf8(parts.next()?).ok()?;
    let password = parts.next()?;
    if !authzid.is_empty() && authzid != authcid.as_bytes() {
        return None;
    }
    Some((authcid.to_owned(), password.to_vec()))
}

/// A hash to verify against when the user is unknown (same cost as a real one).
fn unknown_user_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        use argon2::PasswordHasher as _;
        argon2::Argon2::default()
            .hash_password(b"consent-relay: no such user")
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_response_is_split_into_user_and_password() {
        assert_eq!(
            parse_plain(b"\0crm\0secret"),
            Some(("crm".to_owned(), b"secret".to_vec()))
        );
        assert_eq!(
            parse_plain(b"crm\0crm\0pass\0word"),
            Some(("crm".to_owned(), b"pass\0word".to_vec()))
        );
        // Acting as someone else is not supported: it fails like a wrong password.
        assert_eq!(parse_plain(b"admin\0crm\0secret"), None);
        assert_eq!(parse_plain(b"crm secret"), None);
        assert_eq!(parse_plain(b"\0crm"), None);
    }

    #[test]
    fn initial_response_is_base64_or_an_empty_equals_sign() {
        assert_eq!(decode_initial("="), Ok(Vec::new()));
        assert_eq!(decode_initial("AGNybQBz"), Ok(b"\0crm\0s".to_vec()));
        assert_eq!(decode_initial("not base64!").map_err(|r| r.code), Err(501));
    }
}
