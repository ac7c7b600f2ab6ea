//! What `serve` reads beyond the TOML file, in one list: [`Loaded::load`].
//! `check-config`, `serve`'s start and a reload (SIGHUP) all call it, so a
//! file passes one exactly when it passes the others, with the same
//! message (`FILE: key: what is wrong (fix)`).
//!
//! [`Config::parse`] already reads and checks what the TOML names inline or
//! as small secrets: the signing keys, `upstream.password_file`,
//! `webhook.secret_file`, `store.url` (parsed; the store is opened by
//! `serve` only), the texts, and that every named file can be read. This
//! module parses the files that need a parser: the SMTP certificate and
//! its key, the DKIM key, and the CA bundles of the upstream and the
//! webhook. The parts that use them take them from here ([`tls_pair`],
//! [`dkim_key`], [`upstream_roots`], [`webhook_roots`]), so no other module
//! reads these files its own way.
//!
//! Knows rustls, mail-auth and reqwest's certificate type; knows nothing
//! of the listener, delivery or the webhook dispatcher.

use std::path::Path;
use std::sync::Arc;

use mail_auth::common::crypto::{DkimKey, Ed25519Key, RsaKey, Sha256};
use mail_auth::dkim::DkimSigner;
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use super::{Config, ConfigError, DkimConfig, UpstreamConfig, UpstreamTarget, UpstreamTls};

/// Everything `serve` reads beyond the configuration file, parsed and checked.
pub struct Loaded {
    /// `smtp.tls_cert` and `smtp.tls_key`: the chain and its key, checked
    /// to go together.
    pub smtp_tls: Option<CertifiedKey>,
    /// `dkim.private_key`: the key, checked to sign.
    pub dkim_key: Option<DkimKey>,
    /// `upstream.ca_file`, when the upstream uses TLS: the roots trusted
    /// instead of the system's.
    pub upstream_roots: Option<RootCertStore>,
    /// `webhook.ca_file`: the roots trusted instead of the system's.
    pub webhook_roots: Option<Vec<reqwest::Certificate>>,
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never key material.
        f.debug_struct("Loaded")
            .field("smtp_tls", &self.smtp_tls.is_some())
            .field("dkim_key", &self.dkim_key.is_some())
            .field(
                "upstream_roots",
                &self.upstream_roots.as_ref().map(|r| r.len()),
            )
            .field("webhook_roots", &self.webhook_roots.as_ref().map(Vec::len))
            .finish()
    }
}

impl Loaded {
    /// Reads every file of the list; all are tried, and every one that
    /// does not load is reported (`ConfigError::Invalid`, one line each,
    /// prefixed with the configuration file like the file's own errors).
    pub fn load(config: &Config) -> Result<Loaded, ConfigError> {
        let mut errors = Vec::new();
        let file = config.path.display();
        let smtp = &config.smtp;
        let tls = match (&smtp.tls_cert, &smtp.tls_key) {
            (Some(cert), Some(key)) => tls_pair(cert, key).map(Some),
            _ => Ok(None),
        };
        let smtp_tls = kept(tls, &mut errors, &file);
        let dkim = config.dkim.as_ref().map(dkim_key).transpose();
        let dkim_key = kept(dkim, &mut errors, &file);
        let upstream = upstream_ca(&config.upstream)
            .map(upstream_roots)
            .transpose();
        let upstream_roots = kept(upstream, &mut errors, &file);
        let webhook = config.webhook.as_ref().and_then(|w| w.ca_file.as_deref());
        let webhook_roots = kept(webhook.map(webhook_roots).transpose(), &mut errors, &file);
        match (smtp_tls, dkim_key, upstream_roots, webhook_roots) {
            (Some(smtp_tls), Some(dkim_key), Some(upstream_roots), Some(webhook_roots))
                if errors.is_empty() =>
            {
                Ok(Loaded {
                    smtp_tls,
                    dkim_key,
                    upstream_roots,
                    webhook_roots,
                })
            }
            _ => Err(ConfigError::Invalid(errors)),
        }
    }
}

/// `Ok` as `Some`; an error as `None`, its line kept, prefixed with `file`.
fn kept<T>(
    r: Result<T, String>,
    errors: &mut Vec<String>,
    file: &std::path::Display<'_>,
) -> Option<T> {
    r.map_err(|e| errors.push(format!("{file}: {e}"))).ok()
}

/// `upstream.ca_file` when the upstream uses TLS (an outbox, or `tls =
/// "none"`, never reads it).
pub fn upstream_ca(config: &UpstreamConfig) -> Option<&Path> {
    match (&config.target, config.tls) {
        (UpstreamTarget::Outbox(_), _) | (_, UpstreamTls::None) => None,
        _ => config.ca_file.as_deref(),
    }
}

/// The provider every TLS part of the relay uses.
pub fn tls_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads a certificate chain and its key, and checks that they go
/// together. Errors name `smtp.tls_cert` or `smtp.tls_key`.
pub fn tls_pair(cert: &Path, key: &Path) -> Result<CertifiedKey, String> {
    let chain = certificates(cert)?;
    let key_der = private_key(key)?;
    CertifiedKey::from_der(chain, key_der, &tls_provider()).map_err(|e| {
        format!(
            "smtp.tls_key: {} does not go with the certificate in smtp.tls_cert, or is not an RSA, ECDSA or Ed25519 key ({e})",
            key.display()
        )
    })
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("smtp.tls_cert: cannot read {}: {e}", path.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "smtp.tls_cert: {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(chain)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| {
        format!(
            "smtp.tls_key: cannot read a PEM private key from {}: {e}",
            path.display()
        )
    })
}

/// Reads the DKIM key and checks that it signs. Errors name
/// `dkim.private_key` and say what is wrong; they never contain key
/// material.
pub fn dkim_key(cfg: &DkimConfig) -> Result<DkimKey, String> {
    let path = cfg.private_key.display();
    let pem = std::fs::read(&cfg.private_key)
        .map_err(|e| format!("dkim.private_key: cannot read {path}: {e}"))?;
    // A key that parses but cannot sign (e.g. too short for ring) is found
    // now, not at the first delivery: one signature with a key of its own
    // (a key is used up by its signer), then the key to hand out.
    let probe = DkimSigner::from_key(parse_dkim_key(&pem, &path)?)
        .domain(cfg.domain.clone())
        .selector(cfg.selector.clone())
        .headers(["From"]);
    probe
        .sign(b"From: a@example.com\r\n\r\ncheck\r\n")
        .map_err(|e| format!("dkim.private_key: {path} cannot sign: {e}"))?;
    parse_dkim_key(&pem, &path)
}

fn parse_dkim_key(pem: &[u8], path: &std::path::Display<'_>) -> Result<DkimKey, String> {
    let der = PrivateKeyDer::from_pem_slice(pem).map_err(|e| {
        format!("dkim.private_key: {path} holds no PEM private key ({e}); use an RSA (2048 bits or more) or Ed25519 key")
    })?;
    match der {
        PrivateKeyDer::Pkcs1(_) => rsa(der, path),
        PrivateKeyDer::Pkcs8(ref p) => {
            // openssl genpkey writes Ed25519 as PKCS#8 v1, which only the
            // "maybe unchecked" loader accepts.
            match Ed25519Key::from_pkcs8_maybe_unchecked_der(p.secret_pkcs8_der()) {
                Ok(k) => Ok(DkimKey::Ed25519(k)),
                Err(_) => rsa(der, path),
            }
        }
        _ => Err(format!(
            "dkim.private_key: {path} is neither an RSA nor an Ed25519 key (EC keys cannot sign DKIM)"
        )),
    }
}

fn rsa(der: PrivateKeyDer<'_>, path: &std::path::Display<'_>) -> Result<DkimKey, String> {
    RsaKey::<Sha256>::from_key_der(der)
        .map(DkimKey::Rsa)
        .map_err(|e| {
            format!(
                "dkim.private_key: {path} is not a usable RSA or Ed25519 key ({e}); RSA keys need 2048 bits or more"
            )
        })
}

/// The PEM certificates of `upstream.ca_file`, as delivery's trusted roots.
pub fn upstream_roots(path: &Path) -> Result<RootCertStore, String> {
    let shown = path.display();
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("upstream.ca_file: {shown}: {e}"))?;
    for cert in certs {
        let cert = cert.map_err(|e| format!("upstream.ca_file: {shown}: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("upstream.ca_file: {shown}: {e}"))?;
    }
    Ok(roots)
}

/// The PEM certificates of `webhook.ca_file`, at least one.
pub fn webhook_roots(path: &Path) -> Result<Vec<reqwest::Certificate>, String> {
    let shown = path.display();
    let pem = std::fs::read(path).map_err(|e| format!("webhook.ca_file: {shown}: {e}"))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| format!("webhook.ca_file: {shown}: {e}"))?;
    if certs.is_empty() {
        return Err(format!(
            "webhook.ca_file: {shown} holds no certificate (use a PEM file with -----BEGIN CERTIFICATE-----)"
        ));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::{TempDir, minimal};

    /// `minimal()` with `smtp_extra` under `[smtp]` and `extra` at the end,
    /// in `dir`.
    fn config(dir: &TempDir, smtp_extra: &str, extra: &str) -> Config {
        let text = minimal().replacen("[smtp]\n", &format!("[smtp]\n{smtp_extra}"), 1) + extra;
        Config::parse(&dir.0.join("relay.toml"), &text).expect("the file itself is valid")
    }

    fn lines(config: &Config) -> Vec<String> {
        match Loaded::load(config) {
            Err(ConfigError::Invalid(lines)) => lines,
            Err(other) => panic!("expected Invalid, got {other}"),
            Ok(loaded) => panic!("expected errors, got {loaded:?}"),
        }
    }

    #[test]
    fn nothing_to_load_loads() {
        let dir = TempDir::new("load-nothing");
        let loaded = Loaded::load(&config(&dir, "", "")).expect("loads");
        assert!(loaded.smtp_tls.is_none() && loaded.dkim_key.is_none());
        assert!(loaded.upstream_roots.is_none() && loaded.webhook_roots.is_none());
    }

    #[test]
    fn every_file_that_does_not_load_is_named_with_the_file_and_key() {
        let dir = TempDir::new("load-bad");
        std::fs::write(dir.0.join("cert.pem"), "not a certificate\n").expect("write");
        std::fs::write(dir.0.join("key.pem"), "not a key\n").expect("write");
        std::fs::write(
            dir.0.join("dkim.pem"),
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .expect("write");
        std::fs::write(dir.0.join("ca.pem"), "no certificate here\n").expect("write");
        std::fs::write(dir.0.join("hook.secret"), "0123456789abcdef\n").expect("write");
        let config = config(
            &dir,
            "tls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\n",
            "\n[dkim]\ndomain = \"example.com\"\nselector = \"relay\"\nprivate_key = \"dkim.pem\"\n\
             [webhook]\nurl = \"https://crm.test/hook\"\nsecret_file = \"hook.secret\"\nca_file = \"ca.pem\"\n",
        );
        let (file, d) = (config.path.display(), dir.0.display());
        let lines = lines(&config);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(
            lines[0],
            format!(
                "{file}: smtp.tls_cert: {d}/cert.pem holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
            )
        );
        assert!(
            lines[1].starts_with(&format!("{file}: dkim.private_key: {d}/dkim.pem ")),
            "{lines:?}"
        );
        assert_eq!(
            lines[2],
            format!(
                "{file}: webhook.ca_file: {d}/ca.pem holds no certificate (use a PEM file with -----BEGIN CERTIFICATE-----)"
            )
        );
    }

    #[test]
    fn the_upstream_ca_is_read_only_when_the_upstream_uses_tls() {
        let dir = TempDir::new("load-upstream-ca");
        std::fs::write(
            dir.0.join("ca.pem"),
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .expect("write");
        let with = |url: &str, tls: &str| {
            let text = minimal().replacen(
                "url = \"smtp://mail.test\"",
                &format!("url = \"{url}\"\n{tls}ca_file = \"ca.pem\""),
                1,
            );
            Config::parse(&dir.0.join("relay.toml"), &text).expect("valid")
        };
        let lines = lines(&with("smtp://mail.test", ""));
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains(": upstream.ca_file: "), "{lines:?}");
        assert!(Loaded::load(&with("smtp://mail.test", "tls = \"none\"\n")).is_ok());
        assert!(Loaded::load(&with("outbox:./out", "")).is_ok());
    }
}
