//! A tiny **test** PKI, generated at run time with [`rcgen`]: nothing here is
//! fit for production, and no private key is ever committed to the
//! repository (each [`TestPki::generate`] makes fresh keys).
//!
//! [`TestPki::generate`] makes:
//!
//! * a CA (`logferry test CA`, self-signed, ECDSA P-256);
//! * a server certificate for `localhost` and `127.0.0.1` signed by that CA
//!   (extended key usage `serverAuth`), which the
//!   [Elasticsearch double](crate::elasticsearch) presents when started with
//!   [`EsDoubleConfig::tls`](crate::elasticsearch::EsDoubleConfig::tls);
//! * a client certificate (`CN=logferry`, `clientAuth`) signed by the same CA,
//!   for mutual TLS;
//! * a second, unrelated CA (`logferry other CA`) that signed nothing here,
//!   for the "wrong CA" case.
//!
//! Everything is PEM text (certificates `CERTIFICATE`, keys PKCS#8
//! `PRIVATE KEY`, [RFC 7468](https://www.rfc-editor.org/rfc/rfc7468)).
//! Clients that read files (logferry's `tls.ca_file`, `tls.cert_file`,
//! `tls.key_file`) get them from [`TestPki::write_to`].
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use logferry_testkit::elasticsearch::{EsDouble, EsDoubleConfig};
//! use logferry_testkit::tls::TestPki;
//!
//! let pki = TestPki::generate()?;
//! let files = pki.write_to(std::path::Path::new("/tmp/pki"))?;
//! let double = EsDouble::start_with(EsDoubleConfig {
//!     tls: Some(pki.server_tls()),
//!     ..EsDoubleConfig::default()
//! })
//! .await?;
//! assert!(double.url().starts_with("https://localhost:"));
//! # let _ = files; Ok(()) }
//! ```

use crate::elasticsearch::EsDoubleTls;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use std::path::{Path, PathBuf};

/// Certificates and keys of a test PKI, all PEM text. See the
/// [module documentation](self).
#[derive(Clone)]
pub struct TestPki {
    /// The CA certificate that signed the server and client certificates.
    pub ca_pem: String,
    /// The server certificate (`localhost`, `127.0.0.1`), signed by the CA.
    pub server_cert_pem: String,
    /// The server certificate's private key (PKCS#8).
    pub server_key_pem: String,
    /// The client certificate (`CN=logferry`), signed by the CA.
    pub client_cert_pem: String,
    /// The client certificate's private key (PKCS#8).
    pub client_key_pem: String,
    /// An unrelated CA certificate that signed nothing here.
    pub other_ca_pem: String,
}

impl std::fmt::Debug for TestPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPki").finish_non_exhaustive()
    }
}

/// Where [`TestPki::write_to`] put each PEM file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PkiFiles {
    /// `ca.pem`: the CA that signed the server and client certificates.
    pub ca: PathBuf,
    /// `other-ca.pem`: the unrelated CA.
    pub other_ca: PathBuf,
    /// `server.pem`: the server certificate.
    pub server_cert: PathBuf,
    /// `server-key.pem`: the server key.
    pub server_key: PathBuf,
    /// `client.pem`: the client certificate.
    pub client_cert: PathBuf,
    /// `client-key.pem`: the client key.
    pub client_key: PathBuf,
}

fn make_ca(name: &str) -> Result<(CertifiedIssuer<'static, KeyPair>, String), rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
    let pem = issuer.pem();
    Ok((issuer, pem))
}

fn leaf(
    names: &[&str],
    common_name: &str,
    usage: ExtendedKeyUsagePurpose,
    issuer: &CertifiedIssuer<'static, KeyPair>,
) -> Result<(String, String), rcgen::Error> {
    let mut params = CertificateParams::new(
        names
            .iter()
            .map(|n| (*n).to_owned())
            .collect::<Vec<String>>(),
    )?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

impl TestPki {
    /// Generates fresh keys and certificates (a few milliseconds). The
    /// certificates are valid from 1975 to 4096 (rcgen's defaults), so clock
    /// skew never matters.
    ///
    /// # Errors
    ///
    /// When `rcgen` cannot generate a key or sign a certificate (not expected
    /// with the `ring` backend).
    pub fn generate() -> Result<TestPki, rcgen::Error> {
        let (ca, ca_pem) = make_ca("logferry test CA")?;
        let (server_cert_pem, server_key_pem) = leaf(
            &["localhost", "127.0.0.1"],
            "localhost",
            ExtendedKeyUsagePurpose::ServerAuth,
            &ca,
        )?;
        let (client_cert_pem, client_key_pem) =
            leaf(&[], "logferry", ExtendedKeyUsagePurpose::ClientAuth, &ca)?;
        let (_, other_ca_pem) = make_ca("logferry other CA")?;
        Ok(TestPki {
            ca_pem,
            server_cert_pem,
            server_key_pem,
            client_cert_pem,
            client_key_pem,
            other_ca_pem,
        })
    }

    /// Server-side TLS for the Elasticsearch double: the server certificate
    /// and key, no client certificate asked for.
    pub fn server_tls(&self) -> EsDoubleTls {
        EsDoubleTls {
            cert_chain_pem: self.server_cert_pem.clone(),
            key_pem: self.server_key_pem.clone(),
            client_ca_pem: None,
        }
    }

    /// Like [`server_tls`](Self::server_tls), but every client must present a
    /// certificate signed by this PKI's CA (mutual TLS).
    pub fn mutual_tls(&self) -> EsDoubleTls {
        EsDoubleTls {
            client_ca_pem: Some(self.ca_pem.clone()),
            ..self.server_tls()
        }
    }

    /// Writes the six PEM files into `dir` (which must exist), keys with mode
    /// 0600 on Unix, and returns their paths.
    ///
    /// # Errors
    ///
    /// When a file cannot be written.
    pub fn write_to(&self, dir: &Path) -> std::io::Result<PkiFiles> {
        let files = PkiFiles {
            ca: dir.join("ca.pem"),
            other_ca: dir.join("other-ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server-key.pem"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client-key.pem"),
        };
        for (path, text, secret) in [
            (&files.ca, &self.ca_pem, false),
            (&files.other_ca, &self.other_ca_pem, false),
            (&files.server_cert, &self.server_cert_pem, false),
            (&files.server_key, &self.server_key_pem, true),
            (&files.client_cert, &self.client_cert_pem, false),
            (&files.client_key, &self.client_key_pem, true),
        ] {
            write_file(path, text, secret)?;
        }
        Ok(files)
    }
}

fn write_file(path: &Path, text: &str, secret: bool) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options.open(path)?;
    std::io::Write::write_all(&mut file, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_distinct_pems_and_writes_them() {
        let pki = TestPki::generate().unwrap();
        for pem in [
            &pki.ca_pem,
            &pki.server_cert_pem,
            &pki.client_cert_pem,
            &pki.other_ca_pem,
        ] {
            assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
        }
        for pem in [&pki.server_key_pem, &pki.client_key_pem] {
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        }
        assert_ne!(pki.ca_pem, pki.other_ca_pem);
        assert_ne!(pki.server_key_pem, pki.client_key_pem);
        assert_ne!(
            TestPki::generate().unwrap().ca_pem,
            pki.ca_pem,
            "fresh keys each time"
        );
        let dir = tempfile_dir();
        let files = pki.write_to(&dir).unwrap();
        assert_eq!(std::fs::read_to_string(&files.ca).unwrap(), pki.ca_pem);
        assert_eq!(
            std::fs::read_to_string(&files.client_key).unwrap(),
            pki.client_key_pem
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&files.server_key)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "keys are private: {mode:o}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "logferry-testkit-pki-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
