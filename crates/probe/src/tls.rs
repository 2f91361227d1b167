//! TLS for HTTPS checks: a verifying configuration (Mozilla roots plus the operator's own
//! CAs) and the `allow_insecure` one, and names for handshake failures.

use std::io;
use std::path::Path;
use std::sync::Arc;

use crate::net::Reset;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use vantage_core::health::FailureReason;

#[derive(Debug)]
pub struct TlsError(pub String);

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsError {}

pub(crate) struct Configs {
    verified: TlsConnector,
    insecure: TlsConnector,
}

impl std::fmt::Debug for Configs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Configs").finish_non_exhaustive()
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn config(
    verifier: Option<Arc<dyn ServerCertVerifier>>,
    roots: RootCertStore,
) -> Result<ClientConfig, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(e.to_string()))?;
    let mut cfg = match verifier {
        None => builder.with_root_certificates(roots).with_no_client_auth(),
        Some(v) => builder
            .dangerous()
            .with_custom_certificate_verifier(v)
            .with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

impl Configs {
    pub(crate) fn new(extra_ca: Option<&Path>) -> Result<Self, TlsError> {
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        if let Some(path) = extra_ca {
            let pem = std::fs::read(path)
                .map_err(|e| TlsError(format!("reading {}: {e}", path.display())))?;
            let mut added = 0;
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert = cert.map_err(|e| TlsError(format!("{}: {e}", path.display())))?;
                roots
                    .add(cert)
                    .map_err(|e| TlsError(format!("{}: {e}", path.display())))?;
                added += 1;
            }
            if added == 0 {
                return Err(TlsError(format!(
                    "{} holds no PEM certificate",
                    path.display()
                )));
            }
        }
        Ok(Self {
            verified: TlsConnector::from(Arc::new(config(None, roots)?)),
            insecure: TlsConnector::from(Arc::new(config(
                Some(Arc::new(AcceptAny(provider()))),
                RootCertStore::empty(),
            )?)),
        })
    }

    /// Runs the handshake with `sni` as the server name.
    pub(crate) async fn connect(
        &self,
        stream: Reset,
        sni: &str,
        insecure: bool,
    ) -> Result<TlsStream<Reset>, FailureReason> {
        let name = ServerName::try_from(sni.to_owned()).map_err(|_| FailureReason::TlsHandshake)?;
        let connector = if insecure {
            &self.insecure
        } else {
            &self.verified
        };
        connector
            .connect(name, stream)
            .await
            .map_err(|e| classify(&e))
    }
}

fn classify(e: &io::Error) -> FailureReason {
    let Some(tls) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        return crate::net::io_failure(e);
    };
    match tls {
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => FailureReason::TlsNameMismatch,
        rustls::Error::InvalidCertificate(_) => FailureReason::TlsUntrusted,
        _ => FailureReason::TlsHandshake,
    }
}

/// `allow_insecure`: any certificate is accepted, but the handshake signatures are still
/// checked, so the connection is at least to whoever holds the presented key.
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
