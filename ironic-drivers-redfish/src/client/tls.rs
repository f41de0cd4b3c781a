//! TLS to BMCs: rustls on ring, with the verification `redfish_verify_ca` asks for.
//!
//! BMC certificates are usually self-signed and often marked as a CA, which
//! WebPKI rejects even when the certificate is the only trusted root. So besides
//! CA verification, a certificate is accepted when it is byte-for-byte one of the
//! certificates of the CA bundle (the operator put the BMC's own certificate
//! there) or when its SHA-256 fingerprint is the pinned one. Handshake signatures
//! are always checked.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};

use crate::config::VerifyCa;
use crate::error::{RedfishError, Result};

/// The rustls configuration for `verify` (`None` for [`VerifyCa::Default`]:
/// reqwest's built-in WebPKI roots on ring).
pub(crate) fn client_config(verify: &VerifyCa) -> Result<Option<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = match verify {
        VerifyCa::Default => return Ok(None),
        VerifyCa::Disabled => BmcVerifier {
            webpki: None,
            pinned: Vec::new(),
            fingerprint: None,
            accept_any: true,
            provider: provider.clone(),
        },
        VerifyCa::Fingerprint(fp) => BmcVerifier {
            webpki: None,
            pinned: Vec::new(),
            fingerprint: Some(*fp),
            accept_any: false,
            provider: provider.clone(),
        },
        VerifyCa::Bundle(path) => {
            let bad = |detail: String| {
                RedfishError::InvalidParameter(format!(
                    "redfish_verify_ca {}: {detail}",
                    path.display()
                ))
            };
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| bad(format!("cannot read the CA bundle: {e}")))?
                .collect::<Result<_, _>>()
                .map_err(|e| bad(format!("not a PEM certificate bundle: {e}")))?;
            if certs.is_empty() {
                return Err(bad("the file holds no PEM certificate".into()));
            }
            let mut roots = RootCertStore::empty();
            let (_added, _ignored) = roots.add_parsable_certificates(certs.iter().cloned());
            let webpki = if roots.is_empty() {
                None
            } else {
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .ok()
            };
            BmcVerifier {
                webpki,
                pinned: certs,
                fingerprint: None,
                accept_any: false,
                provider: provider.clone(),
            }
        }
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| RedfishError::Other(format!("TLS setup failed: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Some(config))
}

/// SHA-256 fingerprint of a DER certificate, as `aa:bb:...`.
pub(crate) fn fingerprint_hex(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[derive(Debug)]
struct BmcVerifier {
    webpki: Option<Arc<WebPkiServerVerifier>>,
    pinned: Vec<CertificateDer<'static>>,
    fingerprint: Option<[u8; 32]>,
    accept_any: bool,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for BmcVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.accept_any {
            return Ok(ServerCertVerified::assertion());
        }
        if let Some(fp) = &self.fingerprint {
            let got: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
            return if &got == fp {
                Ok(ServerCertVerified::assertion())
            } else {
                Err(rustls::Error::General(format!(
                    "certificate fingerprint sha256:{} does not match the pinned one",
                    fingerprint_hex(end_entity.as_ref()).replace(':', "")
                )))
            };
        }
        if self
            .pinned
            .iter()
            .any(|p| p.as_ref() == end_entity.as_ref())
        {
            return Ok(ServerCertVerified::assertion());
        }
        match &self.webpki {
            Some(v) => {
                v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            None => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            )),
        }
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
            &self.provider.signature_verification_algorithms,
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
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// If `err` (or anything in its source chain) is a TLS certificate problem, a
/// short description of it.
pub(crate) fn tls_failure(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            return Some(r.to_string());
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
        {
            if let Some(r) = inner.downcast_ref::<rustls::Error>() {
                return Some(r.to_string());
            }
            let text = inner.to_string();
            if text.contains("certificate") {
                return Some(text);
            }
        }
        cur = e.source();
    }
    None
}
