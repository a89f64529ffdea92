//! Serving certificates that are reloaded from disk without a restart.
//!
//! cert-manager and Secret volume mounts replace the files in place (an atomic `..data` symlink
//! swap); the resolver hands every new handshake the newest valid pair. A pair that fails to
//! parse, or whose key does not match its certificate, is logged and the previous one kept: a
//! half-written rotation must never take the webhook down.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::crypto::ring::default_provider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum TlsError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: no PEM certificate found")]
    NoCertificate { path: PathBuf },
    #[error("{path}: no PEM private key found")]
    NoKey { path: PathBuf },
    #[error("{path}: {source}")]
    Pem {
        path: PathBuf,
        source: rustls_pki_types::pem::Error,
    },
    #[error("the key does not fit the certificate, or is of an unsupported type: {0}")]
    Key(rustls::Error),
    #[error("building the TLS configuration: {0}")]
    Config(rustls::Error),
}

/// The certificate and key file paths.
#[derive(Debug, Clone)]
pub struct CertPaths {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Loads and checks a certificate chain and its key.
pub fn load_pair(paths: &CertPaths) -> Result<(Arc<CertifiedKey>, Vec<u8>), TlsError> {
    let cert_pem = read(&paths.cert)?;
    let key_pem = read(&paths.key)?;
    let ck = certified_key_at(&cert_pem, &key_pem, &paths.cert, &paths.key)?;
    let mut fingerprint = cert_pem;
    fingerprint.extend_from_slice(&key_pem);
    Ok((ck, fingerprint))
}

/// A checked pair from PEM bytes (e.g. a Secret's `tls.crt` and `tls.key`).
pub fn certified_key(cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<CertifiedKey>, TlsError> {
    certified_key_at(
        cert_pem,
        key_pem,
        Path::new("tls.crt"),
        Path::new("tls.key"),
    )
}

fn certified_key_at(
    cert_pem: &[u8],
    key_pem: &[u8],
    cert_path: &Path,
    key_path: &Path,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            path: cert_path.to_path_buf(),
            source,
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert_path.to_path_buf(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|source| match source {
        rustls_pki_types::pem::Error::NoItemsFound => TlsError::NoKey {
            path: key_path.to_path_buf(),
        },
        source => TlsError::Pem {
            path: key_path.to_path_buf(),
            source,
        },
    })?;
    let provider = default_provider();
    Ok(Arc::new(
        CertifiedKey::from_der(chain, key, &provider).map_err(TlsError::Key)?,
    ))
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Hands out the current certificate; swapped atomically on rotation.
pub struct ReloadingResolver {
    current: ArcSwap<CertifiedKey>,
    /// The current leaf's notAfter (Unix seconds; `i64::MIN` when unreadable), for the metrics.
    not_after: std::sync::atomic::AtomicI64,
}

impl fmt::Debug for ReloadingResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReloadingResolver")
    }
}

impl ResolvesServerCert for ReloadingResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

impl ReloadingResolver {
    pub fn new(initial: Arc<CertifiedKey>) -> Arc<Self> {
        let not_after = std::sync::atomic::AtomicI64::new(leaf_not_after(&initial));
        Arc::new(ReloadingResolver {
            current: ArcSwap::new(initial),
            not_after,
        })
    }

    pub fn set(&self, ck: Arc<CertifiedKey>) {
        let end = leaf_not_after(&ck);
        self.current.store(ck);
        self.not_after
            .store(end, std::sync::atomic::Ordering::Release);
    }

    /// When the certificate being served expires (Unix seconds).
    pub fn not_after(&self) -> Option<i64> {
        let end = self.not_after.load(std::sync::atomic::Ordering::Acquire);
        (end != i64::MIN).then_some(end)
    }
}

fn leaf_not_after(ck: &CertifiedKey) -> i64 {
    ck.cert
        .first()
        .and_then(|der| x509_parser::parse_x509_certificate(der).ok())
        .map_or(i64::MIN, |(_, c)| c.validity().not_after.timestamp())
}

/// A TLS 1.2/1.3 server configuration (rustls offers nothing older) that serves whatever
/// `resolver` currently holds, with ALPN for HTTP/2 and HTTP/1.1.
pub fn server_config(resolver: Arc<ReloadingResolver>) -> Result<Arc<ServerConfig>, TlsError> {
    let mut cfg = ServerConfig::builder_with_provider(Arc::new(default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Polls the files and swaps in a changed, valid pair. Polling (not inotify) because Secret
/// volume updates are symlink swaps that inotify watches on the files themselves miss.
pub async fn watch(
    paths: CertPaths,
    resolver: Arc<ReloadingResolver>,
    mut fingerprint: Vec<u8>,
    every: Duration,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let p = paths.clone();
        let loaded = tokio::task::spawn_blocking(move || load_pair(&p)).await;
        match loaded {
            Ok(Ok((ck, fp))) if fp != fingerprint => {
                resolver.set(ck);
                fingerprint = fp;
                tracing::info!(cert = %paths.cert.display(), "serving certificate reloaded");
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "serving certificate not reloaded; keeping the previous one")
            }
            Err(e) => tracing::warn!(error = %e, "certificate reload task failed"),
        }
    }
}

/// A self-signed CA and a serving certificate it signed, as PEM, for tests and local runs.
pub struct GeneratedCerts {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// Generates a CA and a serving certificate for `names` (DNS names or IP addresses).
pub fn generate(names: &[&str], ca_common_name: &str) -> Result<GeneratedCerts, rcgen::Error> {
    generate_valid(names, ca_common_name, None)
}

/// Like [`generate`], with the serving certificate valid from yesterday until `not_after`
/// (the CA ten years), for certificates that are rotated.
pub fn generate_valid(
    names: &[&str],
    ca_common_name: &str,
    not_after: Option<jiff::civil::Date>,
) -> Result<GeneratedCerts, rcgen::Error> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name
        .push(DnType::CommonName, ca_common_name);
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ymd = |d: jiff::civil::Date| {
        rcgen::date_time_ymd(i32::from(d.year()), d.month() as u8, d.day() as u8)
    };
    let today = crate::base::clock::today_utc();
    if not_after.is_some() {
        ca.not_before = ymd(today.yesterday().unwrap_or(today));
        ca.not_after = ymd(today.saturating_add(jiff::Span::new().years(10)));
    }
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = rcgen::Issuer::new(ca, ca_key);

    let key = KeyPair::generate()?;
    let mut leaf = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
    leaf.distinguished_name.push(
        DnType::CommonName,
        names.first().copied().unwrap_or("supportgate"),
    );
    // The serving certificate ends on `not_after` as documented (it used to get rcgen's default
    // of year 4096, so its own expiry, and the expiry gauge, never moved).
    if let Some(end) = not_after {
        leaf.not_before = ymd(today.yesterday().unwrap_or(today));
        leaf.not_after = ymd(end);
    }
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let cert = leaf.signed_by(&key, &issuer)?;
    Ok(GeneratedCerts {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resolver_knows_when_the_served_certificate_expires() {
        let end = jiff::civil::date(2031, 3, 4);
        let g = generate_valid(&["127.0.0.1"], "test-ca", Some(end)).unwrap();
        let r = ReloadingResolver::new(
            certified_key(g.cert_pem.as_bytes(), g.key_pem.as_bytes()).unwrap(),
        );
        let midnight = end.to_zoned(jiff::tz::TimeZone::UTC).unwrap().timestamp();
        assert_eq!(r.not_after(), Some(midnight.as_second()));
        let later =
            generate_valid(&["127.0.0.1"], "test-ca", Some(end.tomorrow().unwrap())).unwrap();
        r.set(certified_key(later.cert_pem.as_bytes(), later.key_pem.as_bytes()).unwrap());
        assert_eq!(r.not_after(), Some(midnight.as_second() + 86_400));
    }

    #[test]
    fn pairs_load_and_bad_files_say_why() {
        let dir = tempfile::tempdir().unwrap();
        let g = generate(&["127.0.0.1", "localhost"], "test-ca").unwrap();
        let paths = CertPaths {
            cert: dir.path().join("tls.crt"),
            key: dir.path().join("tls.key"),
        };
        std::fs::write(&paths.cert, &g.cert_pem).unwrap();
        std::fs::write(&paths.key, &g.key_pem).unwrap();
        assert!(load_pair(&paths).is_ok());

        std::fs::write(&paths.key, "garbage").unwrap();
        assert!(matches!(load_pair(&paths), Err(TlsError::NoKey { .. })));

        let other = generate(&["127.0.0.1"], "other").unwrap();
        std::fs::write(&paths.key, &other.key_pem).unwrap();
        assert!(
            matches!(load_pair(&paths), Err(TlsError::Key(_))),
            "mismatched key"
        );

        std::fs::write(&paths.cert, "").unwrap();
        assert!(matches!(
            load_pair(&paths),
            Err(TlsError::NoCertificate { .. })
        ));
        std::fs::remove_file(&paths.cert).unwrap();
        let e = load_pair(&paths).unwrap_err().to_string();
        assert!(e.contains("tls.crt"), "{e}");
    }
}
