//! TLS termination: the certificate and key from PEM files, reloadable while serving.
//!
//! [`CertStore`] reads the two files named by `tls.cert` and `tls.key` and holds the
//! certificate currently served. It is the rustls certificate resolver, so every new
//! handshake asks it for the certificate: [`CertStore::reload`] swaps in freshly read files
//! without a restart, open connections keep the keys they negotiated, and a bad new file
//! leaves the old certificate in place. [`server_config`] and [`acceptor`] build the rustls
//! configuration (TLS 1.2 and 1.3, ALPN `h2` then `http/1.1`) with the `ring` provider given
//! explicitly, so nothing depends on a process-wide default provider.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::version::{TLS12, TLS13};

/// Which of the two PEM files an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFile {
    /// The certificate chain (`tls.cert`).
    Certificate,
    /// The private key (`tls.key`).
    Key,
}

impl fmt::Display for TlsFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsFile::Certificate => "TLS certificate file",
            TlsFile::Key => "TLS key file",
        })
    }
}

/// Error loading TLS material; Display names the file and the reason.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file could not be read (missing, unreadable, a directory).
    #[error("{file} {}: cannot read it: {source}", .path.display())]
    Read {
        /// Which file.
        file: TlsFile,
        /// Its path.
        path: PathBuf,
        /// Why reading failed.
        source: io::Error,
    },
    /// The file has a malformed PEM block.
    #[error("{file} {}: not valid PEM: {reason}", .path.display())]
    Pem {
        /// Which file.
        file: TlsFile,
        /// Its path.
        path: PathBuf,
        /// What is wrong with the PEM.
        reason: String,
    },
    /// The certificate file holds no `CERTIFICATE` block.
    #[error(
        "{} {}: no certificate in it (expected a PEM \"CERTIFICATE\" block, leaf first)",
        TlsFile::Certificate,
        .path.display()
    )]
    NoCertificate {
        /// The certificate file's path.
        path: PathBuf,
    },
    /// A certificate in the chain is not valid X.509.
    #[error(
        "{} {}: certificate {index} of the chain is not valid X.509: {reason}",
        TlsFile::Certificate,
        .path.display()
    )]
    BadCertificate {
        /// The certificate file's path.
        path: PathBuf,
        /// Position in the chain, 1 for the leaf.
        index: usize,
        /// What the parser said.
        reason: String,
    },
    /// The key file holds no private key block.
    #[error(
        "{} {}: no private key in it (expected a PEM \"PRIVATE KEY\", \"RSA PRIVATE KEY\" or \
         \"EC PRIVATE KEY\" block)",
        TlsFile::Key,
        .path.display()
    )]
    NoKey {
        /// The key file's path.
        path: PathBuf,
    },
    /// The private key is corrupt or of a kind the crypto provider cannot sign with.
    #[error("{} {}: unusable private key: {source}", TlsFile::Key, .path.display())]
    BadKey {
        /// The key file's path.
        path: PathBuf,
        /// What rustls said.
        source: rustls::Error,
    },
    /// The private key is not the one of the leaf certificate.
    #[error(
        "{} {}: the private key does not match the certificate in {}",
        TlsFile::Key,
        .key.display(),
        .cert.display()
    )]
    KeyMismatch {
        /// The certificate file's path.
        cert: PathBuf,
        /// The key file's path.
        key: PathBuf,
    },
}

/// The certificate currently served, reloadable.
///
/// It is the rustls certificate resolver of [`server_config`]: each new handshake takes the
/// current certificate, so a [`reload`](CertStore::reload) affects new connections only.
pub struct CertStore {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: RwLock<Arc<Served>>,
}

/// One loaded certificate chain and key, with the leaf's serial for logs.
struct Served {
    certified: Arc<CertifiedKey>,
    serial_hex: String,
}

impl CertStore {
    /// Reads the certificate chain (leaf first) from `cert` and the private key (PKCS#8,
    /// PKCS#1 RSA or SEC1 EC) from `key`, and checks that the key belongs to the leaf. The
    /// two paths may name the same file holding both.
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<CertStore>, TlsError> {
        let served = load_served(cert, key)?;
        Ok(Arc::new(CertStore {
            cert_path: cert.to_path_buf(),
            key_path: key.to_path_buf(),
            current: RwLock::new(Arc::new(served)),
        }))
    }

    /// Re-reads the same two files; on error the old certificate stays and the error is
    /// returned. Connections already open are not affected either way.
    pub fn reload(&self) -> Result<(), TlsError> {
        let served = Arc::new(load_served(&self.cert_path, &self.key_path)?);
        // The lock only guards an `Arc` swap, which cannot be left half done: a poisoned
        // lock still holds a consistent value.
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = served;
        Ok(())
    }

    /// The served leaf certificate's serial number as lowercase hex digits, without
    /// separators or leading zeros (`"1"`, `"7c0ffee"`), as `openssl x509 -serial` prints
    /// it apart from case and a leading zero.
    pub fn serial_hex(&self) -> String {
        self.served().serial_hex.clone()
    }

    fn served(&self) -> Arc<Served> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl fmt::Debug for CertStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertStore")
            .field("cert", &self.cert_path)
            .field("key", &self.key_path)
            .field("serial", &self.served().serial_hex)
            .finish()
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.served().certified.clone())
    }
}

/// A rustls ServerConfig (TLS 1.2 + 1.3, ALPN h2 then http/1.1) resolving through `store`.
pub fn server_config(store: Arc<CertStore>) -> Arc<rustls::ServerConfig> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&TLS13, &TLS12])
        .expect("the ring provider has cipher suites for TLS 1.2 and 1.3")
        .with_no_client_auth()
        .with_cert_resolver(store);
    // The server's order wins: h2 whenever the client offers it.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

/// A TLS acceptor for that config.
pub fn acceptor(store: Arc<CertStore>) -> tokio_rustls::TlsAcceptor {
    tokio_rustls::TlsAcceptor::from(server_config(store))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads and checks both files; nothing is swapped in until all of this succeeded.
fn load_served(cert_path: &Path, key_path: &Path) -> Result<Served, TlsError> {
    let chain = read_chain(cert_path)?;
    let serial_hex = check_chain(cert_path, &chain)?;
    let key = read_key(key_path)?;
    let signing_key = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|source| TlsError::BadKey {
            path: key_path.to_path_buf(),
            source,
        })?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        // Unknown: the provider cannot tell the key's public half; the handshake will.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(rustls::Error::InconsistentKeys(_)) => {
            return Err(TlsError::KeyMismatch {
                cert: cert_path.to_path_buf(),
                key: key_path.to_path_buf(),
            });
        }
        Err(other) => {
            return Err(TlsError::BadCertificate {
                path: cert_path.to_path_buf(),
                index: 1,
                reason: other.to_string(),
            });
        }
    }
    Ok(Served {
        certified: Arc::new(certified),
        serial_hex,
    })
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let file = TlsFile::Certificate;
    let chain = CertificateDer::pem_slice_iter(&read(file, path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(file, path, e))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(chain)
}

/// Parses every certificate of the chain, so a corrupt one is refused at load rather than
/// sent to clients, and returns the leaf's serial.
fn check_chain(path: &Path, chain: &[CertificateDer<'_>]) -> Result<String, TlsError> {
    let mut leaf_serial = None;
    for (index, cert) in chain.iter().enumerate() {
        let serial = serial_hex_of(cert).map_err(|reason| TlsError::BadCertificate {
            path: path.to_path_buf(),
            index: index + 1,
            reason,
        })?;
        leaf_serial.get_or_insert(serial);
    }
    Ok(leaf_serial.expect("read_chain refuses an empty chain"))
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let file = TlsFile::Key;
    PrivateKeyDer::from_pem_slice(&read(file, path)?).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::NoKey {
            path: path.to_path_buf(),
        },
        other => pem_error(file, path, other),
    })
}

fn read(file: TlsFile, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        file,
        path: path.to_path_buf(),
        source,
    })
}

/// Words for a PEM error: the library's own Display prints marker lines as byte arrays.
fn pem_error(file: TlsFile, path: &Path, error: pem::Error) -> TlsError {
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    let reason = match error {
        pem::Error::MissingSectionEnd { end_marker } => {
            let label = text(&end_marker);
            format!("a {label:?} block has no \"-----END {label}-----\" line")
        }
        pem::Error::IllegalSectionStart { line } => {
            format!("malformed BEGIN line {:?}", text(&line))
        }
        pem::Error::Base64Decode(why) => format!("bad base64 in a block: {why}"),
        other => other.to_string(),
    };
    TlsError::Pem {
        file,
        path: path.to_path_buf(),
        reason,
    }
}

/// A certificate's serial number in the format of [`CertStore::serial_hex`].
fn serial_hex_of(cert: &CertificateDer<'_>) -> Result<String, String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert).map_err(|e| e.to_string())?;
    Ok(format!("{:x}", parsed.tbs_certificate.serial))
}

#[cfg(test)]
mod tests;
