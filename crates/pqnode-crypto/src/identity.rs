//! The ML-DSA-87 signing identity.

use aws_lc_rs::signature::{
    KeyPair, ML_DSA_87, ML_DSA_87_SIGNING, PqdsaKeyPair, UnparsedPublicKey,
};
use zeroize::Zeroizing;

use crate::NodeId;

/// ML-DSA-87 public key length (FIPS 204).
pub const DSA_PUBLIC_KEY_LEN: usize = 2592;
/// ML-DSA-87 signature length (FIPS 204).
pub const DSA_SIGNATURE_LEN: usize = 4627;
/// ML-DSA-87 key-generation seed ξ: the only secret we ever store.
pub const DSA_SEED_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("the operating system's random number generator failed")]
    Rng,
    #[error("ML-DSA-87 key generation failed")]
    KeyGen,
    #[error("ML-DSA-87 signing failed")]
    Sign,
    #[error("signature verification failed")]
    BadSignature,
    #[error("malformed {what}: expected {expected} bytes, got {got}")]
    Length {
        what: &'static str,
        expected: usize,
        got: usize,
    },
}

/// A raw ML-DSA-87 public key (2592 bytes).
#[derive(Clone, PartialEq, Eq)]
pub struct DsaPublicKey(Box<[u8]>);

impl DsaPublicKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        check_len("ML-DSA-87 public key", DSA_PUBLIC_KEY_LEN, bytes.len())?;
        Ok(Self(bytes.into()))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn node_id(&self) -> NodeId {
        NodeId::from_public_key(&self.0)
    }

    /// Checks `signature` over `domain || 0x00 || message`.
    pub fn verify(
        &self,
        domain: &str,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        verify(&self.0, domain, message, signature)
    }
}

impl std::fmt::Debug for DsaPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DsaPublicKey({:?})", self.node_id())
    }
}

/// An ML-DSA-87 signature (4627 bytes).
#[derive(Clone, PartialEq, Eq)]
pub struct Signature(Box<[u8]>);

impl Signature {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        check_len("ML-DSA-87 signature", DSA_SIGNATURE_LEN, bytes.len())?;
        Ok(Self(bytes.into()))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signature({} bytes)", self.0.len())
    }
}

/// The node's long-term ML-DSA-87 key pair and the id bound to it.
///
/// `Debug` never prints secret material.
pub struct Identity {
    seed: Zeroizing<[u8; DSA_SEED_LEN]>,
    key_pair: PqdsaKeyPair,
    public_key: DsaPublicKey,
    node_id: NodeId,
}

impl Identity {
    /// A fresh identity from the operating system's randomness.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut seed = Zeroizing::new([0u8; DSA_SEED_LEN]);
        aws_lc_rs::rand::fill(seed.as_mut()).map_err(|_| CryptoError::Rng)?;
        Self::from_seed(&seed)
    }

    /// The identity whose FIPS 204 key-generation seed ξ is `seed`.
    pub fn from_seed(seed: &[u8; DSA_SEED_LEN]) -> Result<Self, CryptoError> {
        let key_pair =
            PqdsaKeyPair::from_seed(&ML_DSA_87_SIGNING, seed).map_err(|_| CryptoError::KeyGen)?;
        let public_key = DsaPublicKey::from_bytes(key_pair.public_key().as_ref())?;
        Ok(Self {
            seed: Zeroizing::new(*seed),
            node_id: public_key.node_id(),
            key_pair,
            public_key,
        })
    }

    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    pub fn public_key(&self) -> &DsaPublicKey {
        &self.public_key
    }

    /// The secret seed, for writing the key file. Keep it out of logs.
    pub fn seed(&self) -> &Zeroizing<[u8; DSA_SEED_LEN]> {
        &self.seed
    }

    /// The key as PKCS#8 v1 DER (seed form), for rustls.
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let doc = self
            .key_pair
            .to_pkcs8v1()
            .map_err(|_| CryptoError::KeyGen)?;
        Ok(Zeroizing::new(doc.as_ref().to_vec()))
    }

    /// Signs `domain || 0x00 || message` (hedged: FIPS 204 randomised signing).
    pub fn sign(&self, domain: &str, message: &[u8]) -> Result<Signature, CryptoError> {
        let signed = labelled(domain, message);
        let mut sig = vec![0u8; DSA_SIGNATURE_LEN];
        let len = self
            .key_pair
            .sign(&signed, &mut sig)
            .map_err(|_| CryptoError::Sign)?;
        check_len("ML-DSA-87 signature", DSA_SIGNATURE_LEN, len)?;
        Ok(Signature(sig.into_boxed_slice()))
    }
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

/// Checks an ML-DSA-87 `signature` by `public_key` over `domain || 0x00 || message`.
pub fn verify(
    public_key: &[u8],
    domain: &str,
    message: &[u8],
    signature: &[u8],
) -> Result<(), CryptoError> {
    check_len("ML-DSA-87 public key", DSA_PUBLIC_KEY_LEN, public_key.len())?;
    check_len("ML-DSA-87 signature", DSA_SIGNATURE_LEN, signature.len())?;
    UnparsedPublicKey::new(&ML_DSA_87, public_key)
        .verify(&labelled(domain, message), signature)
        .map_err(|_| CryptoError::BadSignature)
}

fn labelled(domain: &str, message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(domain.len() + 1 + message.len());
    out.extend_from_slice(domain.as_bytes());
    out.push(0);
    out.extend_from_slice(message);
    out
}

fn check_len(what: &'static str, expected: usize, got: usize) -> Result<(), CryptoError> {
    if expected == got {
        Ok(())
    } else {
        Err(CryptoError::Length {
            what,
            expected,
            got,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_round_trip_with_domain_separation() {
        let id = Identity::generate().unwrap();
        let sig = id.sign("test/a", b"hello").unwrap();
        assert_eq!(sig.as_bytes().len(), DSA_SIGNATURE_LEN);
        id.public_key()
            .verify("test/a", b"hello", sig.as_bytes())
            .unwrap();
        assert!(
            id.public_key()
                .verify("test/b", b"hello", sig.as_bytes())
                .is_err()
        );
        assert!(
            id.public_key()
                .verify("test/a", b"hellp", sig.as_bytes())
                .is_err()
        );
    }

    #[test]
    fn same_seed_same_identity() {
        let a = Identity::generate().unwrap();
        let b = Identity::from_seed(a.seed()).unwrap();
        assert_eq!(a.node_id(), b.node_id());
        assert_eq!(a.public_key(), b.public_key());
    }

    #[test]
    fn debug_never_shows_the_seed() {
        let id = Identity::generate().unwrap();
        let shown = format!("{id:?}");
        assert!(!shown.contains(&hex::encode(id.seed().as_ref())));
    }

    #[test]
    fn rejects_wrong_lengths() {
        assert!(verify(&[0; 10], "d", b"m", &[0; DSA_SIGNATURE_LEN]).is_err());
        assert!(verify(&[0; DSA_PUBLIC_KEY_LEN], "d", b"m", &[0; 5]).is_err());
    }
}
