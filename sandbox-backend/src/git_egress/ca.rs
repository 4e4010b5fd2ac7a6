//! The deployment's egress CA: made once, kept in the backend's data directory (key
//! 0600, never leaving the host), trusted by nothing but the sandboxes' git, and used
//! only to sign a leaf certificate for the one host whose TLS the egress terminates
//! (the session's repository's host, see [`super`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The CA's files in its directory.
const KEY_FILE: &str = "ca.key";
const CERT_FILE: &str = "ca.crt";
/// A leaf certificate is made again after this long (it is valid a little longer).
const LEAF_REUSE: Duration = Duration::from_secs(24 * 3600);
const LEAF_VALID_DAYS: i64 = 3;
/// Leaf certificates kept at once (one per repository host; a handful in practice).
const MAX_LEAVES: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the egress CA: {0}")]
    Certificate(String),
}

/// The CA and the leaf certificates it signed.
pub struct EgressCa {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    leaves: Mutex<HashMap<String, (Instant, Arc<rustls::ServerConfig>)>>,
}

impl std::fmt::Debug for EgressCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EgressCa { key: <redacted> }")
    }
}

/// The CA's parameters. They are the same every time, so an issuer rebuilt from the
/// stored key signs leaves whose issuer name is the stored certificate's subject.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "Nightshift");
    name.push(DnType::CommonName, "Nightshift sandbox egress CA");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(3650);
    params
}

fn certificate_error(error: impl std::fmt::Display) -> CaError {
    CaError::Certificate(error.to_string())
}

impl EgressCa {
    /// Loads the CA from `dir`, or makes it there (directory 0700, key 0600) when
    /// there is none yet.
    pub fn load_or_create(dir: &Path) -> Result<EgressCa, CaError> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| CaError::Io { path, source }
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io(dir))?;
        let key_path = dir.join(KEY_FILE);
        let cert_path = dir.join(CERT_FILE);
        if key_path.exists() && cert_path.exists() {
            let key_pem = std::fs::read_to_string(&key_path).map_err(io(&key_path))?;
            let cert_pem = std::fs::read_to_string(&cert_path).map_err(io(&cert_path))?;
            let key = KeyPair::from_pem(&key_pem).map_err(certificate_error)?;
            return Ok(EgressCa::with(Issuer::new(ca_params(), key), cert_pem));
        }
        let key = KeyPair::generate().map_err(certificate_error)?;
        let params = ca_params();
        let cert_pem = params.self_signed(&key).map_err(certificate_error)?.pem();
        // The key first, written whole under another name and renamed, so a crash
        // never leaves a certificate without its key or a key readable by others.
        let partial = dir.join(format!("{KEY_FILE}.partial"));
        let _ = std::fs::remove_file(&partial);
        {
            use std::io::Write;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&partial)
                .map_err(io(&partial))?;
            file.write_all(key.serialize_pem().as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(io(&partial))?;
        }
        std::fs::rename(&partial, &key_path).map_err(io(&key_path))?;
        std::fs::write(&cert_path, &cert_pem).map_err(io(&cert_path))?;
        Ok(EgressCa::with(Issuer::new(params, key), cert_pem))
    }

    fn with(issuer: Issuer<'static, KeyPair>, cert_pem: String) -> EgressCa {
        EgressCa {
            issuer,
            cert_pem,
            leaves: Mutex::new(HashMap::new()),
        }
    }

    /// The CA's certificate (PEM): what sandboxes are given to trust.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A TLS server configuration presenting a leaf certificate for `host` (a name
    /// or an IP address), signed by the CA; made once a day per host.
    pub fn server_config(&self, host: &str) -> Result<Arc<rustls::ServerConfig>, CaError> {
        let host = host.to_ascii_lowercase();
        let mut leaves = self.leaves.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((made, config)) = leaves.get(&host)
            && made.elapsed() < LEAF_REUSE
        {
            return Ok(config.clone());
        }
        let config = Arc::new(self.leaf(&host)?);
        if leaves.len() >= MAX_LEAVES {
            leaves.clear();
        }
        leaves.insert(host, (Instant::now(), config.clone()));
        Ok(config)
    }

    fn leaf(&self, host: &str) -> Result<rustls::ServerConfig, CaError> {
        let mut params = CertificateParams::default();
        params.subject_alt_names = vec![match host.parse::<std::net::IpAddr>() {
            Ok(address) => SanType::IpAddress(address),
            Err(_) => SanType::DnsName(host.try_into().map_err(certificate_error)?),
        }];
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, host);
        params.distinguished_name = name;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now + time::Duration::days(LEAF_VALID_DAYS);
        let key = KeyPair::generate().map_err(certificate_error)?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(certificate_error)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(certificate_error)?
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone(), ca_der(&self.cert_pem)?],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .map_err(certificate_error)?;
        // git speaks HTTP/1.1 to it; nothing else is offered.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

fn ca_der(pem: &str) -> Result<CertificateDer<'static>, CaError> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes()).map_err(certificate_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_ca_is_made_once_with_an_owner_only_key_and_signs_leaves_clients_accept() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let first = EgressCa::load_or_create(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = EgressCa::load_or_create(dir.path()).unwrap();
        assert_eq!(first.cert_pem(), again.cert_pem());
        assert!(!again.cert_pem().contains("PRIVATE KEY"));

        // A leaf signed by the reloaded CA passes a client that trusts the stored
        // certificate, for a name and for an address.
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca_der(first.cert_pem()).unwrap()).unwrap();
        let client = Arc::new(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
        );
        for host in ["github.com", "127.0.0.1"] {
            let server = again.server_config(host).unwrap();
            let (near, far) = tokio::io::duplex(64 * 1024);
            let name = rustls::pki_types::ServerName::try_from(host.to_string()).unwrap();
            let connector = tokio_rustls::TlsConnector::from(client.clone());
            let acceptor = tokio_rustls::TlsAcceptor::from(server);
            let (client, server) =
                tokio::join!(connector.connect(name, near), acceptor.accept(far));
            client.unwrap_or_else(|error| panic!("{host}: {error}"));
            server.unwrap();
        }
        // Another host's leaf is refused by the same client.
        let server = again.server_config("example.org").unwrap();
        let (near, far) = tokio::io::duplex(64 * 1024);
        let name = rustls::pki_types::ServerName::try_from("github.com").unwrap();
        let connector = tokio_rustls::TlsConnector::from(client.clone());
        let acceptor = tokio_rustls::TlsAcceptor::from(server);
        let (client, _) = tokio::join!(connector.connect(name, near), acceptor.accept(far));
        assert!(client.is_err());
    }
}
