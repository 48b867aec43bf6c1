//! TLS on both sides. Toward clients (here): the rustls server configuration built from
//! `[tls]`, and the stream a client connection runs on before and after it asks for TLS.
//! Toward backends ([`backend`]): each shard's mode, the rustls client configuration and the
//! backend stream.
//!
//! A client that wants TLS sends the 32-byte SSL request in place of its handshake response;
//! the TLS handshake follows on the same socket, and the real handshake response comes inside
//! it (`session::connect`). The acceptor lives in the config snapshot, so a reload with new
//! certificate files gives new connections the new certificate while open ones keep theirs,
//! and a certificate or key that does not load rejects the whole reload.

use bytes::{Buf, Bytes};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Why `[tls]` could not be turned into a server configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {source}")]
    Read { path: String, source: io::Error },
    #[error("{0}: no PEM certificate in the file")]
    NoCertificate(String),
    #[error("{0}: no PEM private key in the file")]
    NoKey(String),
    #[error("client CA {path}: {message}")]
    ClientCa { path: String, message: String },
    #[error("certificate and key: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The files `[tls]` names.
#[derive(Debug, Clone, Copy)]
pub struct Files<'a> {
    pub cert: &'a str,
    pub key: &'a str,
    pub ca: Option<&'a str>,
}

/// Builds the acceptor `[tls]` describes: its certificate chain and key, TLS 1.2 and 1.3, and,
/// with `ca`, client certificates verified against it when a client presents one (a client
/// without a certificate is still accepted: the password authenticates it).
pub fn acceptor(files: Files<'_>) -> Result<TlsAcceptor, TlsError> {
    let certs = read_pem(files.cert, |r| rustls_pemfile::certs(r).collect::<Result<Vec<_>, _>>())?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(files.cert.to_string()));
    }
    let key =
        read_pem(files.key, rustls_pemfile::private_key)?.ok_or_else(|| TlsError::NoKey(files.key.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let builder = match files.ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let path = ca.to_string();
            let bad = |message: String| TlsError::ClientCa { path: path.clone(), message };
            let mut roots = rustls::RootCertStore::empty();
            for c in read_pem(&path, |r| rustls_pemfile::certs(r).collect::<Result<Vec<_>, _>>())? {
                roots.add(c).map_err(|e| bad(e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(bad("no PEM certificate in the file".into()));
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| bad(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder.with_single_cert(certs, key)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

pub(crate) fn read_pem<T>(
    path: &str,
    parse: impl FnOnce(&mut dyn io::BufRead) -> io::Result<T>,
) -> Result<T, TlsError> {
    let read = |source| TlsError::Read { path: path.to_string(), source };
    let bytes = std::fs::read(path).map_err(read)?;
    parse(&mut &bytes[..]).map_err(read)
}

/// A socket: clear, or TLS once negotiated. `T` is the TLS side's stream (server side toward
/// clients, client side toward backends).
#[derive(Debug)]
pub enum Stream<T> {
    Plain(TcpStream),
    /// A client on Sluice's Unix socket (`[proxy] socket`): local, so never TLS.
    Unix(tokio::net::UnixStream),
    Tls(Box<T>),
    /// Only while a TLS handshake runs (the socket is owned by the handshake).
    Switching,
}

/// A client socket: clear, or TLS after an SSL request.
pub type ClientStream = Stream<TlsStream<Rewind>>;

impl<T> Stream<T> {
    /// True once TLS is established.
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// True on a Unix socket, which a server counts as secure transport.
    pub fn is_unix(&self) -> bool {
        matches!(self, Stream::Unix(_))
    }
}

impl ClientStream {
    /// Runs the TLS handshake on the socket. `early` are bytes already read past the SSL
    /// request (a client may send its ClientHello in the same segment): the handshake reads
    /// them first.
    pub async fn start_tls(&mut self, acceptor: &TlsAcceptor, early: Bytes) -> io::Result<()> {
        let Stream::Plain(tcp) = std::mem::replace(self, Stream::Switching) else {
            return Err(io::Error::other("TLS requested twice"));
        };
        let tls = acceptor.accept(Rewind { early, inner: tcp }).await?;
        *self = Stream::Tls(Box::new(tls));
        Ok(())
    }

    /// The TCP socket underneath, for peeking whether the client hung up. With TLS, bytes
    /// there are TLS records (data or a close alert), so only the end of the stream tells.
    pub fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Stream::Plain(t) => Some(t),
            Stream::Tls(t) => Some(&t.get_ref().0.inner),
            Stream::Unix(_) | Stream::Switching => None,
        }
    }

    /// The protocol version and cipher suite, for logs and `/status`.
    pub fn tls_summary(&self) -> Option<(String, String)> {
        let Stream::Tls(t) = self else { return None };
        let c = t.get_ref().1;
        Some((
            c.protocol_version().map(|v| format!("{v:?}")).unwrap_or_default(),
            c.negotiated_cipher_suite().map(|s| format!("{:?}", s.suite())).unwrap_or_default(),
        ))
    }
}

/// A rustls cipher suite (as `tls_summary` spells it) in the OpenSSL name a MariaDB or MySQL
/// server reports in `Ssl_cipher`; empty for none.
pub fn openssl_suite_name(rustls: &str) -> String {
    let name = match rustls {
        "" => "",
        "TLS13_AES_128_GCM_SHA256" => "TLS_AES_128_GCM_SHA256",
        "TLS13_AES_256_GCM_SHA384" => "TLS_AES_256_GCM_SHA384",
        "TLS13_CHACHA20_POLY1305_SHA256" => "TLS_CHACHA20_POLY1305_SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => "ECDHE-RSA-AES128-GCM-SHA256",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => "ECDHE-RSA-AES256-GCM-SHA384",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" => "ECDHE-RSA-CHACHA20-POLY1305",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => "ECDHE-ECDSA-AES128-GCM-SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => "ECDHE-ECDSA-AES256-GCM-SHA384",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" => "ECDHE-ECDSA-CHACHA20-POLY1305",
        other => other,
    };
    name.to_string()
}

/// A rustls protocol version (`TLSv1_3`) as a server reports it in `Ssl_version` (`TLSv1.3`).
pub fn openssl_version_name(rustls: &str) -> String {
    rustls.replace('_', ".")
}

fn switching() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "TLS handshake in progress")
}

impl<T: AsyncRead + Unpin> AsyncRead for Stream<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Switching => Poll::Ready(Err(switching())),
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Stream<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::Switching => Poll::Ready(Err(switching())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Switching => Poll::Ready(Err(switching())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Switching => Poll::Ready(Err(switching())),
        }
    }
}

/// A TCP stream that first yields bytes already read from it.
#[derive(Debug)]
pub struct Rewind {
    early: Bytes,
    inner: TcpStream,
}

impl AsyncRead for Rewind {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        if me.early.has_remaining() {
            let n = me.early.len().min(buf.remaining());
            buf.put_slice(&me.early[..n]);
            me.early.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut me.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

pub mod backend;
pub use backend::{connect_backend, BackendMode, BackendStream, BackendTls};
