//! The client's key-exchange groups: ML-KEM-1024, offered twice.
//!
//! rustls sends one key share for the first group of the client's provider,
//! plus, when that share's [`ActiveKeyExchange::hybrid_component`] names
//! another group of the provider, a second share for that group. We use this
//! public API to put a second copy of our ML-KEM-1024 encapsulation key in
//! the ClientHello: the first group is [`PADDING_GROUP`], a private-use
//! codepoint whose share is the ML-KEM-1024 key and whose "component" is
//! [`NamedGroup::MLKEM1024`] with the same key. The ClientHello grows by one
//! key (1568 bytes), so the client's first flight is three padded Initial
//! datagrams instead of two, and QUIC's anti-amplification allowance (3x what
//! the client sent) covers the server's whole first flight: first contact
//! takes one round trip. See the module doc of [`crate::tls`].
//!
//! Nothing here completes a key exchange in the padding group: our servers do
//! not know it and select `MLKEM1024`, and if any server selected it,
//! [`ActiveKeyExchange::complete`] fails and so does the handshake.

use rustls::crypto::{ActiveKeyExchange, SharedSecret, SupportedKxGroup, aws_lc_rs as awslc};
use rustls::{Error, NamedGroup, ProtocolVersion};

/// The private-use codepoint (RFC 8446 §4.2.7, `0xFE00..=0xFEFF`) of the padding
/// group. Arbitrary within that range; no peer ever selects it.
pub(crate) const PADDING_GROUP: NamedGroup = NamedGroup::Unknown(0xFE4D);

/// The ML-KEM-1024 group the padding group carries a second share of.
static MLKEM1024: &dyn SupportedKxGroup = awslc::kx_group::MLKEM1024;

/// The padding group: offered by clients only, first in their list, so rustls
/// starts its key exchange and sends both of its shares.
pub(crate) static MLKEM1024_PADDED: &dyn SupportedKxGroup = &PaddedMlKem;

#[derive(Debug)]
struct PaddedMlKem;

impl SupportedKxGroup for PaddedMlKem {
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, Error> {
        Ok(Box::new(ActivePaddedMlKem {
            mlkem: MLKEM1024.start()?,
        }))
    }

    /// A server's side of the exchange. No config of ours lists this group on a
    /// server, and the exchange is never completed: refuse.
    fn start_and_complete(
        &self,
        _peer_pub_key: &[u8],
    ) -> Result<rustls::crypto::CompletedKeyExchange, Error> {
        Err(never_completed())
    }

    fn ffdhe_group(&self) -> Option<rustls::ffdhe_groups::FfdheGroup<'static>> {
        None
    }

    fn name(&self) -> NamedGroup {
        PADDING_GROUP
    }

    fn fips(&self) -> bool {
        MLKEM1024.fips()
    }

    fn usable_for_version(&self, version: ProtocolVersion) -> bool {
        version == ProtocolVersion::TLSv1_3
    }
}

/// One ML-KEM-1024 key pair, offered under both codepoints.
struct ActivePaddedMlKem {
    mlkem: Box<dyn ActiveKeyExchange>,
}

impl ActiveKeyExchange for ActivePaddedMlKem {
    /// The server selected the padding group: it is never completed.
    fn complete(self: Box<Self>, _peer_pub_key: &[u8]) -> Result<SharedSecret, Error> {
        Err(never_completed())
    }

    /// The padding share: the same ML-KEM-1024 encapsulation key as the real share.
    fn pub_key(&self) -> &[u8] {
        self.mlkem.pub_key()
    }

    fn group(&self) -> NamedGroup {
        PADDING_GROUP
    }

    fn ffdhe_group(&self) -> Option<rustls::ffdhe_groups::FfdheGroup<'static>> {
        None
    }

    /// The share rustls sends second, and the one our servers select.
    fn hybrid_component(&self) -> Option<(NamedGroup, &[u8])> {
        Some((NamedGroup::MLKEM1024, self.mlkem.pub_key()))
    }

    /// The server selected `MLKEM1024`: decapsulate its ciphertext.
    fn complete_hybrid_component(
        self: Box<Self>,
        peer_pub_key: &[u8],
    ) -> Result<SharedSecret, Error> {
        self.mlkem.complete(peer_pub_key)
    }
}

fn never_completed() -> Error {
    Error::General(
        "the peer selected the private-use padding key-exchange group, which is never completed"
            .into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_shares_are_one_ml_kem_1024_key() {
        let kx = MLKEM1024_PADDED.start().unwrap();
        assert_eq!(kx.group(), PADDING_GROUP);
        let (component, key) = kx.hybrid_component().unwrap();
        assert_eq!(component, NamedGroup::MLKEM1024);
        assert_eq!(key.len(), 1568);
        assert_eq!(kx.pub_key(), key);
    }

    #[test]
    fn the_ml_kem_share_completes_with_a_server_ciphertext() {
        let kx = MLKEM1024_PADDED.start().unwrap();
        let (_, key) = kx.hybrid_component().unwrap();
        let server = MLKEM1024.start_and_complete(key).unwrap();
        let ours = kx.complete_hybrid_component(&server.pub_key).unwrap();
        assert_eq!(ours.secret_bytes(), server.secret.secret_bytes());
    }

    #[test]
    fn the_padding_group_is_never_completed() {
        let kx = MLKEM1024_PADDED.start().unwrap();
        let key = kx.pub_key().to_vec();
        let ciphertext = MLKEM1024.start_and_complete(&key).unwrap().pub_key;
        // A server that selected the padding group, with a valid ML-KEM ciphertext.
        assert!(kx.complete(&ciphertext).is_err());
        // A server configured with it: no shared secret either.
        assert!(MLKEM1024_PADDED.start_and_complete(&key).is_err());
        assert!(!MLKEM1024_PADDED.usable_for_version(ProtocolVersion::TLSv1_2));
    }
}
