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
//! **First contact takes 1 round trip.** The server's first flight (ML-KEM
//! ciphertext 1568 B, ML-DSA-87 key 2614 B and signature 4627 B: ~9.7 KB
//! of datagrams) is more than QUIC's anti-amplification budget allows for a
//! two-datagram ClientHello (3 x 2400 B), which made first contact 2 RTT.
//! So the client sends its ML-KEM-1024 encapsulation key twice (`kx`):
//! once under `MLKEM1024` and once under a private-use codepoint (0xFE4D)
//! that exists only to carry it. The ClientHello grows by 1.6 KB to three
//! padded Initial datagrams, a budget of 10.8 KB (1.1 KB to spare), and the
//! server sends its whole flight at once: first contact takes 1.1 RTT, like
//! classical TLS (`benches/handshake.rs`; the test
//! `first_contact_completes_on_the_clients_first_flight` drops everything
//! the client sends after its first flight). The servers' groups stay
//! `MLKEM1024` only; they ignore the unknown codepoint and select the plain
//! share, and the padding group's exchange is never completed (a server that
//! selected it would fail the handshake). No classical share, and no key
//! material but the one ML-KEM key, is ever on the wire. This relies on
//! rustls' public `ActiveKeyExchange::hybrid_component`, documented for the
//! classical half of a hybrid; a rustls upgrade that changes how it is used
//! fails `the_client_hello_carries_ml_kem_1024_twice_and_nothing_classical`.
//! Reconnects are 1 RTT anyway: the endpoint issues NEW_TOKEN address
//! validation tokens and every dial shares one token store.
//!
//! What is public here is what a raw QUIC endpoint needs to speak to a node
//! (the benchmarks and the tests that send malformed frames drive quinn
//! themselves): a [`TlsIdentity`], its client and server configs, and
//! [`server_name`]. The provider, the verifiers and what they record stay
//! inside the crate.

mod kx;
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

/// The server's crypto provider: aws-lc-rs, cut down to ML-KEM-1024, AES-256-GCM and ML-DSA-87.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(CryptoProvider {
        kx_groups: vec![awslc::kx_group::MLKEM1024],
        cipher_suites: vec![awslc::cipher_suite::TLS13_AES_256_GCM_SHA384],
        signature_verification_algorithms: verify::ML_DSA_87_ONLY,
        ..awslc::default_provider()
    })
}

/// The client's crypto provider: the server's, with the padding group first, so
/// the ClientHello carries the ML-KEM-1024 key twice (see [`kx`]).
pub(crate) fn client_provider() -> Arc<CryptoProvider> {
    let mut provider = Arc::unwrap_or_clone(provider());
    provider.kx_groups.insert(0, kx::MLKEM1024_PADDED);
    Arc::new(provider)
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
        QuicClientConfig::with_initial(Arc::new(self.rustls_client(observed)?), initial_suite()?)
            .map_err(|_| TlsError::NoInitialSuite)
    }

    /// The rustls part of [`Self::client_config`].
    fn rustls_client(&self, observed: Arc<Observed>) -> Result<rustls::ClientConfig, TlsError> {
        self.rustls_client_with(client_provider(), observed)
    }

    fn rustls_client_with(
        &self,
        provider: Arc<CryptoProvider>,
        observed: Arc<Observed>,
    ) -> Result<rustls::ClientConfig, TlsError> {
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ServerNameVerifier::new(observed)))
            .with_client_cert_resolver(Arc::new(
                rustls::client::AlwaysResolvesClientRawPublicKeys::new(self.key.clone()),
            ));
        config.alpn_protocols = vec![ALPN.to_vec()];
        config.enable_sni = false;
        config.resumption = Resumption::disabled();
        Ok(config)
    }

    /// A rustls server config for one incoming connection; `observed` records what its verifier saw.
    pub fn server_config(&self, observed: Arc<Observed>) -> Result<QuicServerConfig, TlsError> {
        QuicServerConfig::with_initial(Arc::new(self.rustls_server(observed)?), initial_suite()?)
            .map_err(|_| TlsError::NoInitialSuite)
    }

    /// The rustls part of [`Self::server_config`].
    fn rustls_server(&self, observed: Arc<Observed>) -> Result<rustls::ServerConfig, TlsError> {
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
        Ok(config)
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
        // The client adds the padding group, whose only share is the same ML-KEM-1024 key.
        let groups: Vec<_> = client_provider()
            .kx_groups
            .iter()
            .map(|g| g.name())
            .collect();
        assert_eq!(
            groups,
            vec![kx::PADDING_GROUP, rustls::NamedGroup::MLKEM1024]
        );
        let suites: Vec<_> = p.cipher_suites.iter().map(|s| s.suite()).collect();
        assert_eq!(suites, vec![rustls::CipherSuite::TLS13_AES_256_GCM_SHA384]);
        assert_eq!(
            p.signature_verification_algorithms.supported_schemes(),
            vec![rustls::SignatureScheme::ML_DSA_87]
        );
    }

    /// A client and a server of ours, as rustls TLS-over-TCP connections to
    /// drive in memory (the handshake messages are the same as over QUIC).
    fn pair(
        client_provider: Arc<CryptoProvider>,
    ) -> (rustls::ClientConnection, rustls::ServerConnection) {
        let server = TlsIdentity::new(&Identity::generate().unwrap()).unwrap();
        let client = TlsIdentity::new(&Identity::generate().unwrap()).unwrap();
        let client_config = client
            .rustls_client_with(client_provider, Observed::new())
            .unwrap();
        let server_config = server.rustls_server(Observed::new()).unwrap();
        let name =
            rustls::pki_types::ServerName::try_from(server_name(Some(server.node_id()))).unwrap();
        (
            rustls::ClientConnection::new(Arc::new(client_config), name).unwrap(),
            rustls::ServerConnection::new(Arc::new(server_config)).unwrap(),
        )
    }

    /// Everything `from` wants to send.
    fn flight(
        from: &mut impl std::ops::DerefMut<Target = rustls::ConnectionCommon<impl Sized>>,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        while from.wants_write() {
            from.write_tls(&mut out).unwrap();
        }
        out
    }

    fn deliver(
        bytes: &[u8],
        to: &mut impl std::ops::DerefMut<Target = rustls::ConnectionCommon<impl Sized>>,
    ) -> Result<(), rustls::Error> {
        let mut rest = bytes;
        while !rest.is_empty() {
            to.read_tls(&mut rest).unwrap();
            to.process_new_packets()?;
        }
        Ok(())
    }

    /// Runs the handshake to its end; the first error of either side.
    fn handshake(
        client: &mut rustls::ClientConnection,
        server: &mut rustls::ServerConnection,
    ) -> Result<(), rustls::Error> {
        while client.is_handshaking() || server.is_handshaking() {
            let to_server = flight(client);
            deliver(&to_server, server)?;
            let to_client = flight(server);
            deliver(&to_client, client)?;
            if to_server.is_empty() && to_client.is_empty() {
                return Err(rustls::Error::General("handshake stalled".into()));
            }
        }
        Ok(())
    }

    /// The `supported_groups` and the key shares (group, share) of a ClientHello record.
    fn client_hello_groups(record: &[u8]) -> (Vec<u16>, Vec<(u16, Vec<u8>)>) {
        let u16_at = |b: &[u8], i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
        assert_eq!(record[0], 22, "a handshake record");
        let body = &record[5..5 + usize::from(u16_at(record, 3))];
        assert_eq!(body[0], 1, "a ClientHello");
        let len = usize::from(body[2]) << 8 | usize::from(body[3]);
        let hello = &body[4..4 + len];
        let mut at = 2 + 32; // legacy_version, random
        at += 1 + usize::from(hello[at]); // legacy_session_id
        at += 2 + usize::from(u16_at(hello, at)); // cipher_suites
        at += 1 + usize::from(hello[at]); // legacy_compression_methods
        let end = at + 2 + usize::from(u16_at(hello, at));
        at += 2;
        let (mut supported, mut shares) = (Vec::new(), Vec::new());
        while at < end {
            let (kind, len) = (u16_at(hello, at), usize::from(u16_at(hello, at + 2)));
            let ext = &hello[at + 4..at + 4 + len];
            match kind {
                10 => supported = ext[2..].chunks(2).map(|g| u16_at(g, 0)).collect(),
                51 => {
                    let mut i = 2;
                    while i < ext.len() {
                        let share_len = usize::from(u16_at(ext, i + 2));
                        shares.push((u16_at(ext, i), ext[i + 4..i + 4 + share_len].to_vec()));
                        i += 4 + share_len;
                    }
                }
                _ => {}
            }
            at += 4 + len;
        }
        (supported, shares)
    }

    #[test]
    fn the_client_hello_carries_ml_kem_1024_twice_and_nothing_classical() {
        let (mut client, mut server) = pair(client_provider());
        let hello = flight(&mut client);
        let (supported, shares) = client_hello_groups(&hello);
        let padding = u16::from(kx::PADDING_GROUP);
        let mlkem = u16::from(rustls::NamedGroup::MLKEM1024);
        assert_eq!(supported, vec![padding, mlkem]);
        let groups: Vec<u16> = shares.iter().map(|(g, _)| *g).collect();
        assert_eq!(groups, vec![padding, mlkem]);
        // Both shares are the one ML-KEM-1024 encapsulation key: no other key material.
        assert_eq!(shares[0].1.len(), 1568);
        assert_eq!(shares[0].1, shares[1].1);

        deliver(&hello, &mut server).unwrap();
        handshake(&mut client, &mut server).unwrap();
        for negotiated in [
            client.negotiated_key_exchange_group(),
            server.negotiated_key_exchange_group(),
        ] {
            assert_eq!(negotiated.unwrap().name(), rustls::NamedGroup::MLKEM1024);
        }
    }

    #[test]
    fn the_server_never_accepts_the_padding_group() {
        // A client that offers the padding group alone (so no MLKEM1024 share):
        // the server has no group in common with it.
        let only_padding = Arc::new(CryptoProvider {
            kx_groups: vec![kx::MLKEM1024_PADDED],
            ..Arc::unwrap_or_clone(provider())
        });
        let (mut client, mut server) = pair(only_padding);
        let err = handshake(&mut client, &mut server).unwrap_err();
        assert!(
            matches!(
                err,
                rustls::Error::PeerIncompatible(rustls::PeerIncompatible::NoKxGroupsInCommon)
            ),
            "{err:?}"
        );
    }
}
