//! TLS toward backends: how each shard's servers are reached (`[[shards]] tls`), the rustls
//! client configuration for each mode, and the stream a backend connection runs on.

use super::{read_pem, TlsError};
use std::io;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::rustls;

/// How Sluice uses TLS toward one shard's servers (`[[shards]] tls`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendMode {
    /// Clear text.
    #[default]
    Disabled,
    /// TLS when the server offers it, clear text otherwise; the certificate is not checked.
    Preferred,
    /// TLS or no connection; the certificate is not checked (encryption, not identity).
    Required,
    /// TLS with the certificate chained to `tls_ca`; any name.
    VerifyCa,
    /// TLS with the certificate chained to `tls_ca` and naming the address's host.
    VerifyIdentity,
}

/// TLS settings for connections to one backend.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct BackendTls {
    pub mode: BackendMode,
    /// PEM file of the CAs a server certificate must chain to (`verify_ca`, `verify_identity`).
    pub ca: Option<String>,
    /// PEM files of the client certificate chain and key presented to the server, if any.
    pub cert: Option<String>,
    pub key: Option<String>,
}

impl BackendTls {
    /// The rustls client configuration this mode needs; `Err` when the CA does not load.
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
        let verifier: Arc<dyn rustls::client::danger::ServerCertVerifier> = match self.mode {
            BackendMode::Disabled | BackendMode::Preferred | BackendMode::Required => {
                Arc::new(Relaxed { provider, chain: None })
            }
            BackendMode::VerifyCa | BackendMode::VerifyIdentity => {
                let path = self.ca.clone().unwrap_or_default();
                let bad = |message: String| TlsError::ClientCa { path: path.clone(), message };
                let mut roots = rustls::RootCertStore::empty();
                for c in read_pem(&path, |r| rustls_pemfile::certs(r).collect::<Result<Vec<_>, _>>())? {
                    roots.add(c).map_err(|e| bad(e.to_string()))?;
                }
                let webpki =
                    rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                        .build()
                        .map_err(|e| bad(e.to_string()))?;
                if self.mode == BackendMode::VerifyCa {
                    Arc::new(Relaxed { provider, chain: Some(webpki) })
                } else {
                    webpki
                }
            }
        };
        let builder = builder.dangerous().with_custom_certificate_verifier(verifier);
        Ok(Arc::new(match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                let chain = read_pem(cert, |r| rustls_pemfile::certs(r).collect::<Result<Vec<_>, _>>())?;
                if chain.is_empty() {
                    return Err(TlsError::NoCertificate(cert.clone()));
                }
                let key = read_pem(key, rustls_pemfile::private_key)?.ok_or_else(|| TlsError::NoKey(key.clone()))?;
                builder.with_client_auth_cert(chain, key)?
            }
            _ => builder.with_no_client_auth(),
        }))
    }
}

/// Runs the client side of a TLS handshake on a backend socket; `host` is the server name
/// (`verify_identity` checks the certificate against it).
pub async fn connect_backend(
    tcp: TcpStream,
    config: Arc<rustls::ClientConfig>,
    host: &str,
) -> io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("server name '{host}': {e}")))?;
    tokio_rustls::TlsConnector::from(config).connect(name, tcp).await
}

/// The server-certificate check of `required` / `preferred` (none: the connection is
/// encrypted, who answers is not checked) and `verify_ca` (the chain, not the name). The
/// handshake's signatures are always verified.
#[derive(Debug)]
struct Relaxed {
    provider: Arc<rustls::crypto::CryptoProvider>,
    chain: Option<Arc<rustls::client::WebPkiServerVerifier>>,
}

impl rustls::client::danger::ServerCertVerifier for Relaxed {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        intermediates: &[rustls::pki_types::CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        use rustls::CertificateError as C;
        let Some(chain) = &self.chain else { return Ok(rustls::client::danger::ServerCertVerified::assertion()) };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. })) => {
                Ok(rustls::client::danger::ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// A backend socket: clear, or TLS.
pub type BackendStream = super::Stream<tokio_rustls::client::TlsStream<TcpStream>>;

impl BackendStream {
    /// The TCP socket underneath (for the idle-connection probe).
    pub fn tcp(&self) -> Option<&TcpStream> {
        match self {
            super::Stream::Plain(t) => Some(t),
            super::Stream::Tls(t) => Some(t.get_ref().0),
            super::Stream::Unix(_) | super::Stream::Switching => None,
        }
    }
}
