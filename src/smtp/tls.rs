//! The listener's TLS: the certificate chain and key of `[smtp] tls_cert` /
//! `tls_key`, read once at start into a rustls acceptor (ring provider).
//! Used for STARTTLS (RFC 3207) and the implicit-TLS listener.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::SmtpConfig;

/// The acceptor when a certificate is configured. Errors name the key
/// (`smtp.tls_cert`, `smtp.tls_key`) and say what is wrong.
pub fn acceptor(cfg: &SmtpConfig) -> Result<Option<TlsAcceptor>, String> {
    let (Some(cert), Some(key)) = (&cfg.tls_cert, &cfg.tls_key) else {
        return Ok(None);
    };
    let chain = certificates(cert)?;
    let key = private_key(key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("smtp.tls_cert: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| {
            format!(
                "smtp.tls_key: {} does not go with the certificate in smtp.tls_cert, or is not an RSA, ECDSA or Ed25519 key ({e})",
                cfg.tls_key.as_deref().unwrap_or(Path::new("")).display()
            )
        })?;
    Ok(Some(TlsAcceptor::from(Arc::new(config))))
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
