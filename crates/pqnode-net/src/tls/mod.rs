//! TLS 1.3 for QUIC, restricted to post-quantum algorithms.
//!
//! Key exchange is ML-KEM-1024 only, handshake signatures are ML-DSA-87
//! only, both sides authenticate with RFC 7250 raw public keys (no X.509),
//! records use AES-256-GCM. A peer that offers anything else finds no
//! algorithm in common and the handshake fails.
//!
//! Whom we talk to is decided by our own verifiers (`verify`): the dialer
//! checks that the server's key hashes to the node id it dialed, the server
//! derives the caller's node id from the caller's key. The dialed id travels
//! to the verifier as the local server name `"n" + hex(node_id)`; SNI is off
//! so it is never sent in clear.
//!
//! **Resumption is disabled on both sides.** A TLS 1.3 resumption skips the
//! CertificateVerify messages, so the peer would not prove possession of its
//! ML-DSA-87 key again; the key exchange would still be ML-KEM-1024
//! (psk_dhe_ke), but the authentication would rest on a ticket we issued.
//! Connections are long-lived and reused, so full handshakes are rare and
//! the ~0.4 ms they cost is not worth weakening that guarantee.
//!
//! **First contact takes 2 round trips, reconnects take 1.** The server's
//! flight (ML-KEM ciphertext 1568 B, ML-DSA-87 key 2592 B and signature
//! 4627 B: ~9.9 KB) exceeds QUIC's anti-amplification budget of 3x the
//! client's two padded Initial datagrams (7.2 KB), so the server waits one
//! RTT for the client's ACK (measured in `benches/handshake.rs`: 2.15 RTT vs
//! 1.05 for X25519 + Ed25519). The endpoint issues NEW_TOKEN address
//! validation tokens and every dial shares one token store, so a reconnect
//! to a known peer is 1 RTT. Making first contact 1 RTT would need a larger
//! ClientHello, e.g. a second key share smuggled in through a hybrid group's
//! `hybrid_component` (research note §2.3); that relies on rustls behaviour
//! documented for a different purpose and puts a classical share on the
//! wire, so we do not do it. Connections are long-lived: the extra RTT is
//! paid once per peer.
//!
//! What is public here is what a raw QUIC endpoint needs to speak to a node
//! (the benchmarks and the tests that send malformed frames drive quinn
//! themselves): a [`TlsIdentity`], its client and server configs, and
//! [`server_name`]. The provider, the verifiers and what they record stay
//! inside the crate.

mod verify;

use std::sync::Arc;

use pqnode_crypto::{Identity, NodeId};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::client::Resumption;
use rustls::crypto::{CryptoProvider, aws_lc_rs as awslc};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::NoServerSessionStorage;
use rustls::sign::CertifiedKey;

pub use verify::Observed;
pub(crate) use verify::{PeerVerifier, ServerNameVerifier};

/// The ALPN protocol id of pqnode's node-to-node protocol.
pub(crate) const ALPN: &[u8] = b"pqnode/1";
/// Name of the only key-exchange group we allow (draft-ietf-tls-mlkem, 0x0202).
pub(crate) const KEY_EXCHANGE: &str = "MLKEM1024";
/// Name of the only signature algorithm we allow (FIPS 204).
pub(crate) const SIGNATURE: &str = "ML-DSA-87";
/// Server name used when dialing an address without knowing its node id.
pub(crate) const UNPINNED_SERVER_NAME: &str = "unpinned";

/// Building a TLS configuration from this node's identity failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The identity's key could not be exported as PKCS#8 for rustls.
    #[error("could not export the identity key: {0}")]
    Identity(#[from] pqnode_crypto::CryptoError),
    /// rustls refused the key or the configuration.
    #[error("rustls refused the configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The provider lacks the AES-128-GCM suite QUIC Initial packets need (RFC 9001 §5.2).
    #[error("the provider has no AES-128-GCM QUIC suite for Initial packets")]
    NoInitialSuite,
}

/// The crypto provider: aws-lc-rs, cut down to ML-KEM-1024, AES-256-GCM and ML-DSA-87.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(CryptoProvider {
        kx_groups: vec![awslc::kx_group::MLKEM1024],
        cipher_suites: vec![awslc::cipher_suite::TLS13_AES_256_GCM_SHA384],
        signature_verification_algorithms: verify::ML_DSA_87_ONLY,
        ..awslc::default_provider()
    })
}

/// The server name that carries the expected peer id to our verifier.
pub fn server_name(expected: Option<NodeId>) -> String {
    match expected {
        Some(id) => format!("n{}", id.to_hex()),
        None => UNPINNED_SERVER_NAME.to_owned(),
    }
}

/// This node's key in the form rustls wants: a signing key and its raw public key (SPKI).
#[derive(Clone)]
pub struct TlsIdentity {
    node_id: NodeId,
    key: Arc<CertifiedKey>,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

impl TlsIdentity {
    /// `identity`'s ML-DSA-87 key, exported for rustls, with its raw public key as the
    /// "certificate" (RFC 7250).
    pub fn new(identity: &Identity) -> Result<Self, TlsError> {
        let pkcs8 = identity.to_pkcs8_der()?;
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8.as_slice()));
        let signing_key = awslc::sign::any_supported_type(&der)?;
        let spki = signing_key.public_key().ok_or(rustls::Error::General(
            "signing key has no public key".into(),
        ))?;
        let cert = CertificateDer::from(spki.as_ref().to_vec());
        Ok(Self {
            node_id: identity.node_id(),
            key: Arc::new(CertifiedKey::new(vec![cert], signing_key)),
        })
    }

    /// The node id this identity proves in a handshake.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// A rustls client config for one dial; `observed` records what its verifier saw.
    pub fn client_config(&self, observed: Arc<Observed>) -> Result<QuicClientConfig, TlsError> {
        let mut config = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ServerNameVerifier::new(observed)))
            .with_client_cert_resolver(Arc::new(
                rustls::client::AlwaysResolvesClientRawPublicKeys::new(self.key.clone()),
            ));
        config.alpn_protocols = vec![ALPN.to_vec()];
        config.enable_sni = false;
        config.resumption = Resumption::disabled();
        QuicClientConfig::with_initial(Arc::new(config), initial_suite()?)
            .map_err(|_| TlsError::NoInitialSuite)
    }

    /// A rustls server config for one incoming connection; `observed` records what its verifier saw.
    pub fn server_config(&self, observed: Arc<Observed>) -> Result<QuicServerConfig, TlsError> {
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(Arc::new(PeerVerifier::new(observed)))
            .with_cert_resolver(Arc::new(
                rustls::server::AlwaysResolvesServerRawPublicKeys::new(self.key.clone()),
            ));
        config.alpn_protocols = vec![ALPN.to_vec()];
        config.send_tls13_tickets = 0;
        config.session_storage = Arc::new(NoServerSessionStorage {});
        config.max_early_data_size = 0;
        QuicServerConfig::with_initial(Arc::new(config), initial_suite()?)
            .map_err(|_| TlsError::NoInitialSuite)
    }
}

/// QUIC Initial packets are always AES-128-GCM (RFC 9001 §5.2): their keys
/// come from the public connection id, so they protect nothing either way,
/// and our negotiated suites are AES-256 only.
fn initial_suite() -> Result<rustls::quic::Suite, TlsError> {
    awslc::cipher_suite::TLS13_AES_128_GCM_SHA256
        .tls13()
        .and_then(|suite| suite.quic_suite())
        .ok_or(TlsError::NoInitialSuite)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_key_material() {
        let identity = Identity::generate().unwrap();
        let tls = TlsIdentity::new(&identity).unwrap();
        let shown = format!("{tls:?}");
        assert!(!shown.contains(&hex::encode(identity.seed().as_ref())));
        assert!(!shown.contains(&hex::encode(&identity.public_key().as_bytes()[..16])));
        assert!(shown.contains("NodeId("));
    }

    #[test]
    fn server_names_carry_the_expected_id() {
        let id = NodeId::from_public_key(b"k");
        let name = server_name(Some(id));
        assert_eq!(name, format!("n{}", id.to_hex()));
        assert!(rustls::pki_types::ServerName::try_from(name.as_str()).is_ok());
        assert_eq!(server_name(None), UNPINNED_SERVER_NAME);
    }

    #[test]
    fn provider_offers_post_quantum_algorithms_only() {
        let p = provider();
        let groups: Vec<_> = p.kx_groups.iter().map(|g| g.name()).collect();
        assert_eq!(groups, vec![rustls::NamedGroup::MLKEM1024]);
        let suites: Vec<_> = p.cipher_suites.iter().map(|s| s.suite()).collect();
        assert_eq!(suites, vec![rustls::CipherSuite::TLS13_AES_256_GCM_SHA384]);
        assert_eq!(
            p.signature_verification_algorithms.supported_schemes(),
            vec![rustls::SignatureScheme::ML_DSA_87]
        );
    }
}
