//! TLS settings of an HTTPS check, turned into a rustls client configuration.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// TLS settings of an HTTPS check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with the CA certificate(s) to trust; the system roots when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// The name sent as SNI and verified in the certificate; the URL's host when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// PEM file with the client certificate chain (for servers that require one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<PathBuf>,
    /// PEM file with the client certificate's private key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<PathBuf>,
    /// Accept any server certificate. Only for self-signed endpoints on a trusted path: the
    /// connection is still encrypted but the server is not authenticated.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_certs(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let bytes = std::fs::read(path).map_err(|source| ConfigError::ReadFile {
        what,
        path: path.to_owned(),
        source,
    })?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ConfigError::BadPem {
            what,
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(ConfigError::EmptyPem {
            what,
            path: path.to_owned(),
            expected: "CERTIFICATE block",
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, ConfigError> {
    const WHAT: &str = "client key";
    let bytes = std::fs::read(path).map_err(|source| ConfigError::ReadFile {
        what: WHAT,
        path: path.to_owned(),
        source,
    })?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => ConfigError::EmptyPem {
            what: WHAT,
            path: path.to_owned(),
            expected: "PRIVATE KEY block",
        },
        other => ConfigError::BadPem {
            what: WHAT,
            path: path.to_owned(),
            reason: other.to_string(),
        },
    })
}

fn roots(config: &TlsConfig) -> Result<RootCertStore, ConfigError> {
    let mut store = RootCertStore::empty();
    if let Some(path) = &config.ca_file {
        for cert in read_certs("CA file", path)? {
            store.add(cert).map_err(|e| ConfigError::BadPem {
                what: "CA file",
                path: path.clone(),
                reason: e.to_string(),
            })?;
        }
        return Ok(store);
    }
    let loaded = rustls_native_certs::load_native_certs();
    let (added, _ignored) = store.add_parsable_certificates(loaded.certs);
    if added == 0 {
        let reason = loaded
            .errors
            .first()
            .map_or_else(|| "the store is empty".to_owned(), |e| e.to_string());
        return Err(ConfigError::NoSystemRoots { reason });
    }
    Ok(store)
}

/// Builds the rustls client configuration, reading every file now so that a missing or bad
/// file is a configuration error rather than a failing check.
pub(crate) fn client_config(config: &TlsConfig) -> Result<Arc<ClientConfig>, ConfigError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::Tls(e.to_string()))?;
    let builder = if config.insecure_skip_verify {
        if config.ca_file.is_some() {
            return Err(ConfigError::Invalid {
                field: "insecure_skip_verify",
                reason: "cannot be combined with `ca_file`; drop one of them".to_owned(),
            });
        }
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert {
                algorithms: provider.signature_verification_algorithms,
            }))
    } else {
        builder.with_root_certificates(roots(config)?)
    };
    let mut client = match (&config.client_cert, &config.client_key) {
        (Some(cert), Some(key)) => {
            let chain = read_certs("client certificate", cert)?;
            let key = read_key(key)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| ConfigError::Tls(format!("client certificate and key: {e}")))?
        }
        (None, None) => builder.with_no_client_auth(),
        (Some(_), None) => {
            return Err(ConfigError::Invalid {
                field: "client_key",
                reason: "`client_cert` is set but `client_key` is missing".to_owned(),
            })
        }
        (None, Some(_)) => {
            return Err(ConfigError::Invalid {
                field: "client_cert",
                reason: "`client_key` is set but `client_cert` is missing".to_owned(),
            })
        }
    };
    client.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(client))
}

/// Parses the name to send as SNI and to verify.
pub(crate) fn server_name(name: &str) -> Result<ServerName<'static>, ConfigError> {
    let trimmed = name.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(trimmed.to_owned()).map_err(|e| ConfigError::Invalid {
        field: "server_name",
        reason: format!("{name:?} is not a DNS name or IP address: {e}"),
    })
}

/// The verifier behind `insecure_skip_verify`: any certificate is accepted, but the handshake
/// signature is still checked so the peer must hold the key of the certificate it sent.
#[derive(Debug)]
struct AcceptAnyCert {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
