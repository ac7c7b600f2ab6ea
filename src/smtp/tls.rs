//! The listener's TLS: the certificate chain and key of `[smtp] tls_cert` /
//! `tls_key` in a rustls acceptor (ring provider), used for STARTTLS
//! (RFC 3207) and the implicit-TLS listener.
//!
//! The acceptor picks the certificate through a resolver whose pair can be
//! swapped ([`ListenerTls::reload`], on SIGHUP): new handshakes get the new
//! pair, sessions already open keep theirs, and a pair that does not load
//! leaves the previous one in use.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

use crate::config::SmtpConfig;

/// The listener's acceptor and the certificate it serves.
#[derive(Clone)]
pub struct ListenerTls {
    pub acceptor: TlsAcceptor,
    certificate: Arc<Certificate>,
}

/// The pair in use, and where it is read from.
#[derive(Debug)]
struct Certificate {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Certificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }
}

/// The acceptor when a certificate is configured. Errors name the key
/// (`smtp.tls_cert`, `smtp.tls_key`) and say what is wrong.
pub fn acceptor(cfg: &SmtpConfig) -> Result<Option<ListenerTls>, String> {
    let (Some(cert_path), Some(key_path)) = (&cfg.tls_cert, &cfg.tls_key) else {
        return Ok(None);
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let pair = load(cert_path, key_path, &provider)?;
    let certificate = Arc::new(Certificate {
        cert_path: cert_path.clone(),
        key_path: key_path.clone(),
        provider: provider.clone(),
        current: RwLock::new(Arc::new(pair)),
    });
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("smtp.tls_cert: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(certificate.clone());
    Ok(Some(ListenerTls {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        certificate,
    }))
}

impl ListenerTls {
    /// Reads `tls_cert` and `tls_key` again. On success new handshakes use
    /// the new pair; on error the pair in use stays, and the error says why.
    pub fn reload(&self) -> Result<(), String> {
        let c = &self.certificate;
        let pair = load(&c.cert_path, &c.key_path, &c.provider)?;
        *c.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(pair);
        Ok(())
    }
}

/// Reads a chain and its key, and checks that they go together.
fn load(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, String> {
    let chain = certificates(cert)?;
    let key_der = private_key(key)?;
    CertifiedKey::from_der(chain, key_der, provider).map_err(|e| {
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
