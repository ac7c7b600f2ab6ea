//! `consent-relay hash-password`: an argon2id hash for `[[smtp.user]]`.

use anyhow::{Context as _, bail};

/// `hash-password`: the first line of stdin (without its line end) as an
/// argon2id PHC string, for `[[smtp.user]] password_hash`.
pub(super) fn run() -> anyhow::Result<()> {
    use argon2::PasswordHasher as _;
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the password from stdin")?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        bail!("no password on stdin (write it on the first line)");
    }
    let hash = argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))?;
    println!("{hash}");
    Ok(())
}
