//! Our two certificate verifiers. There is no PKI: a node's "certificate" is
//! its raw ML-DSA-87 public key (RFC 7250), and its identity is the node id
//! that key hashes to.

use std::sync::{Arc, OnceLock};

use pqnode_crypto::{DSA_PUBLIC_KEY_LEN, NodeId};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls13_signature_with_raw_key};
use rustls::pki_types::{CertificateDer, ServerName, SubjectPublicKeyInfoDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, Error, PeerIncompatible,
    SignatureScheme,
};

use super::UNPINNED_SERVER_NAME;

/// Signature verification: ML-DSA-87 and nothing else.
pub(crate) static ML_DSA_87_ONLY: WebPkiSupportedAlgorithms = WebPkiSupportedAlgorithms {
    all: &[webpki::aws_lc_rs::ML_DSA_87],
    mapping: &[(SignatureScheme::ML_DSA_87, &[webpki::aws_lc_rs::ML_DSA_87])],
};

/// DER prefix of an ML-DSA-87 SubjectPublicKeyInfo: SEQUENCE (2610 bytes) {
/// SEQUENCE { OID 2.16.840.1.101.3.4.3.19 }, BIT STRING (2593 bytes, 0 unused bits) }.
/// The encoding is fixed-length, so an exact prefix match is a full parse.
const ML_DSA_87_SPKI_PREFIX: [u8; 22] = [
    0x30, 0x82, 0x0a, 0x32, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03,
    0x13, 0x03, 0x82, 0x0a, 0x21, 0x00,
];

/// The raw 2592-byte ML-DSA-87 key inside an SPKI, or `None` if it is anything else.
pub(crate) fn ml_dsa_87_raw_key(spki: &[u8]) -> Option<&[u8]> {
    spki.strip_prefix(ML_DSA_87_SPKI_PREFIX.as_slice())
        .filter(|raw| raw.len() == DSA_PUBLIC_KEY_LEN)
}

/// Why one of our verifiers refused a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefusalKind {
    /// The peer proved a key, but not the one for the node id we dialed.
    WrongNodeId,
    /// The peer's "certificate" is not a raw ML-DSA-87 public key.
    NotMlDsa87,
    /// The handshake signature did not verify (or used another scheme).
    BadSignature,
}

impl RefusalKind {
    /// Stable label for stats and logs.
    pub(crate) const fn label(self) -> &'static str {
        match self {
            RefusalKind::WrongNodeId => "wrong_node_id",
            RefusalKind::NotMlDsa87 => "not_ml_dsa_87",
            RefusalKind::BadSignature => "bad_signature",
        }
    }
}

/// What one handshake's verifier saw: the peer's proven node id and the
/// signature scheme it signed the handshake with (both set only by a
/// verification that succeeded), or why it refused the peer.
#[derive(Debug, Default)]
pub struct Observed {
    peer: OnceLock<NodeId>,
    signature: OnceLock<SignatureScheme>,
    refusal: OnceLock<(RefusalKind, String)>,
}

impl Observed {
    /// Nothing seen yet: hand it to one config, read it after that config's handshake.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The node id bound to the key the peer presented.
    pub fn peer(&self) -> Option<NodeId> {
        self.peer.get().copied()
    }

    /// The scheme of the peer's verified CertificateVerify.
    pub(crate) fn signature(&self) -> Option<SignatureScheme> {
        self.signature.get().copied()
    }

    /// Why our verifier refused the peer, if it did, with details for the log.
    pub(crate) fn refusal(&self) -> Option<(RefusalKind, &str)> {
        self.refusal
            .get()
            .map(|(kind, detail)| (*kind, detail.as_str()))
    }

    fn refuse(&self, kind: RefusalKind, detail: String, error: Error) -> Error {
        let _ = self.refusal.set((kind, detail));
        error
    }

    fn key_id(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
    ) -> Result<NodeId, Error> {
        match ml_dsa_87_raw_key(end_entity) {
            Some(raw) if intermediates.is_empty() => Ok(NodeId::from_public_key(raw)),
            _ => Err(self.refuse(
                RefusalKind::NotMlDsa87,
                "peer key is not an ML-DSA-87 raw public key".into(),
                Error::InvalidCertificate(CertificateError::BadEncoding),
            )),
        }
    }

    fn verify_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        let valid = verify_tls13_signature_with_raw_key(
            message,
            &SubjectPublicKeyInfoDer::from(cert.as_ref()),
            dss,
            &ML_DSA_87_ONLY,
        )
        .map_err(|e| {
            self.refuse(
                RefusalKind::BadSignature,
                format!("handshake signature: {e}"),
                e,
            )
        })?;
        let _ = self.signature.set(dss.scheme);
        Ok(valid)
    }
}

/// Dialer side: the server must prove the node id we dialed (carried in the
/// server name), or any ML-DSA-87 key when we dialed unpinned.
#[derive(Debug)]
pub(crate) struct ServerNameVerifier {
    observed: Arc<Observed>,
}

impl ServerNameVerifier {
    pub(crate) fn new(observed: Arc<Observed>) -> Self {
        Self { observed }
    }
}

impl ServerCertVerifier for ServerNameVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let proven = self.observed.key_id(end_entity, intermediates)?;
        let ServerName::DnsName(name) = server_name else {
            return Err(Error::InvalidCertificate(CertificateError::NotValidForName));
        };
        let name = name.as_ref();
        if name != UNPINNED_SERVER_NAME {
            let expected = name
                .strip_prefix('n')
                .and_then(|hex| hex.parse::<NodeId>().ok())
                .ok_or(Error::InvalidCertificate(CertificateError::NotValidForName))?;
            if expected != proven {
                return Err(self.observed.refuse(
                    RefusalKind::WrongNodeId,
                    format!("peer proved node id {proven}, expected {expected}"),
                    Error::InvalidCertificate(CertificateError::NotValidForName),
                ));
            }
        }
        let _ = self.observed.peer.set(proven);
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Err(Error::PeerIncompatible(
            PeerIncompatible::Tls13RequiredForQuic,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.observed.verify_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ML_DSA_87]
    }

    fn requires_raw_public_keys(&self) -> bool {
        true
    }
}

/// Server side: any node may call, and its node id is derived from its key.
#[derive(Debug)]
pub(crate) struct PeerVerifier {
    observed: Arc<Observed>,
}

impl PeerVerifier {
    pub(crate) fn new(observed: Arc<Observed>) -> Self {
        Self { observed }
    }
}

impl ClientCertVerifier for PeerVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let proven = self.observed.key_id(end_entity, intermediates)?;
        let _ = self.observed.peer.set(proven);
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Err(Error::PeerIncompatible(
            PeerIncompatible::Tls13RequiredForQuic,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.observed.verify_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ML_DSA_87]
    }

    fn requires_raw_public_keys(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::TlsIdentity;
    use pqnode_crypto::Identity;

    #[test]
    fn spki_prefix_matches_what_aws_lc_produces() {
        let identity = Identity::generate().unwrap();
        let tls = TlsIdentity::new(&identity).unwrap();
        let spki = tls.key.end_entity_cert().unwrap();
        assert_eq!(spki.len(), 2614);
        let raw = ml_dsa_87_raw_key(spki).unwrap();
        assert_eq!(raw, identity.public_key().as_bytes());
        assert_eq!(NodeId::from_public_key(raw), identity.node_id());
    }

    #[test]
    fn rejects_other_keys() {
        assert!(ml_dsa_87_raw_key(&[]).is_none());
        assert!(ml_dsa_87_raw_key(&ML_DSA_87_SPKI_PREFIX).is_none());
        let mut long = ML_DSA_87_SPKI_PREFIX.to_vec();
        long.resize(ML_DSA_87_SPKI_PREFIX.len() + DSA_PUBLIC_KEY_LEN + 1, 0);
        assert!(ml_dsa_87_raw_key(&long).is_none());
    }
}
