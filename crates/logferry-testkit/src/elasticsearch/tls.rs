//! The double's HTTPS settings ([`EsDoubleTls`]) and the rustls acceptor
//! built from them.

use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

/// The double's server-side TLS settings, all PEM text
/// ([RFC 7468](https://www.rfc-editor.org/rfc/rfc7468)).
/// [`TestPki::server_tls`](crate::tls::TestPki::server_tls) and
/// [`TestPki::mutual_tls`](crate::tls::TestPki::mutual_tls) make them.
#[derive(Clone)]
pub struct EsDoubleTls {
    /// The server certificate first, then any intermediates. It must be valid
    /// for `localhost`, the host name of [`EsDouble::url`](super::EsDouble::url).
    pub cert_chain_pem: String,
    /// The server certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub key_pem: String,
    /// When set, clients must present a certificate signed by one of these CA
    /// certificates (mutual TLS); when `None`, no client certificate is asked for.
    pub client_ca_pem: Option<String>,
}

impl std::fmt::Debug for EsDoubleTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EsDoubleTls")
            .field("mutual", &self.client_ca_pem.is_some())
            .finish_non_exhaustive()
    }
}

impl EsDoubleTls {
    /// Builds the rustls acceptor.
    pub(super) fn acceptor(&self) -> std::io::Result<TlsAcceptor> {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let invalid = |what: &str, e: &dyn std::fmt::Display| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("invalid TLS {what} for the Elasticsearch double: {e}"),
            )
        };
        let certs = |pem: &str, what: &str| -> std::io::Result<Vec<CertificateDer<'static>>> {
            let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| invalid(what, &e))?;
            if certs.is_empty() {
                return Err(invalid(what, &"no PEM certificate found"));
            }
            Ok(certs)
        };
        let chain = certs(&self.cert_chain_pem, "certificate chain")?;
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes())
            .map_err(|e| invalid("private key", &e))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid("protocol versions", &e))?;
        let builder = match &self.client_ca_pem {
            None => builder.with_no_client_auth(),
            Some(pem) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in certs(pem, "client CA")? {
                    roots.add(cert).map_err(|e| invalid("client CA", &e))?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .map_err(|e| invalid("client CA", &e))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(chain, key)
            .map_err(|e| invalid("certificate or key", &e))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}
