//! Which configuration file to read: `--config`, else the first of
//! [`DEFAULT_LOCATIONS`] that exists.

use std::path::{Path, PathBuf};

use super::ConfigError;

/// Where [`locate`] looks when no `--config` is given, in order.
pub const DEFAULT_LOCATIONS: [&str; 2] = [
    "consent-relay.toml",
    "/etc/consent-relay/consent-relay.toml",
];

/// `--config` if given, else `consent-relay.toml`, else `/etc/consent-relay/consent-relay.toml`.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, ConfigError> {
    let candidates = DEFAULT_LOCATIONS.map(PathBuf::from);
    locate_among(explicit, &candidates)
}

/// [`locate`] over a given list of candidates (tests pass their own).
fn locate_among(explicit: Option<&Path>, candidates: &[PathBuf]) -> Result<PathBuf, ConfigError> {
    if let Some(path) = explicit {
        // Taken even when missing: `Config::load` then says it cannot be read.
        return Ok(path.to_owned());
    }
    if let Some(found) = candidates.iter().find(|p| p.exists()) {
        return Ok(found.clone());
    }
    let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    Err(ConfigError::NotFound {
        tried: tried.join(", "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::TempDir;

    #[test]
    fn locate_order() {
        let dir = TempDir::new("locate");
        let first = dir.0.join("consent-relay.toml");
        let second = dir.0.join("etc.toml");
        std::fs::write(&second, "").expect("write");
        let candidates = [first.clone(), second.clone()];

        let explicit = dir.0.join("not-there.toml");
        assert_eq!(
            locate_among(Some(&explicit), &candidates).expect("explicit"),
            explicit
        );
        assert_eq!(locate_among(None, &candidates).expect("second"), second);
        std::fs::write(&first, "").expect("write");
        assert_eq!(locate_among(None, &candidates).expect("first"), first);

        let none = [dir.0.join("a.toml"), dir.0.join("b.toml")];
        let err = locate_among(None, &none).expect_err("nothing there");
        assert_eq!(
            err.to_string(),
            format!(
                "no configuration file found (looked for {}, {}); pass --config FILE",
                none[0].display(),
                none[1].display()
            )
        );
        let explicit = Path::new("/x/y.toml");
        assert_eq!(locate(Some(explicit)).expect("explicit"), explicit);
    }
}
