//! The listener's TLS: the certificate chain and key of `[smtp] tls_cert` /
//! `tls_key` in a rustls acceptor (ring provider), used for STARTTLS
//! (RFC 3207) and the implicit-TLS listener.
//!
//! The acceptor picks the certificate through a resolver whose pair can be
//! swapped ([`ListenerTls::reload`], on SIGHUP): new handshakes get the new
//! pair, sessions already open keep theirs, and a pair that does not load
//! leaves the previous one in use.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

use crate::config::SmtpConfig;
use crate::config::load::{tls_pair, tls_provider};

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

/// The acceptor serving `pair`, the certificate [`crate::config::load`]
/// read, when one is configured. Errors name the key (`smtp.tls_cert`).
pub fn acceptor(
    cfg: &SmtpConfig,
    pair: Option<CertifiedKey>,
) -> Result<Option<ListenerTls>, String> {
    let (Some(cert_path), Some(key_path), Some(pair)) = (&cfg.tls_cert, &cfg.tls_key, pair) else {
        return Ok(None);
    };
    let provider = tls_provider();
    let certificate = Arc::new(Certificate {
        cert_path: cert_path.clone(),
        key_path: key_path.clone(),
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
        let pair = tls_pair(&c.cert_path, &c.key_path)?;
        *c.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(pair);
        Ok(())
    }
}
