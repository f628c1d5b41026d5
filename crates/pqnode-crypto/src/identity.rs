//! The ML-DSA-87 signing identity.

use zeroize::Zeroizing;

use crate::backend::aws_lc;
#[cfg(feature = "rustcrypto")]
use crate::backend::rust_crypto;
use crate::error::{CryptoError, check_len};
use crate::{Backend, NodeId};

/// ML-DSA-87 public key length (FIPS 204).
pub const DSA_PUBLIC_KEY_LEN: usize = 2592;
/// ML-DSA-87 signature length (FIPS 204).
pub const DSA_SIGNATURE_LEN: usize = 4627;
/// ML-DSA-87 key-generation seed ξ: the only secret we ever store.
pub const DSA_SEED_LEN: usize = 32;

/// A raw ML-DSA-87 public key (2592 bytes).
#[derive(Clone, PartialEq, Eq)]
pub struct DsaPublicKey(Box<[u8]>);

impl DsaPublicKey {
    /// Checks the length only; a malformed key fails when a signature is checked against it.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        check_len("ML-DSA-87 public key", DSA_PUBLIC_KEY_LEN, bytes.len())?;
        Ok(Self(bytes.into()))
    }

    /// The raw encoding, as it travels in TLS and in signed records.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The id of the node that holds this key.
    pub fn node_id(&self) -> NodeId {
        NodeId::from_public_key(&self.0)
    }

    /// Checks `signature` over `domain || 0x00 || message` (aws-lc-rs).
    pub fn verify(
        &self,
        domain: &str,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        verify(&self.0, domain, message, signature)
    }

    /// Like [`verify`](Self::verify), on the chosen backend.
    pub fn verify_with(
        &self,
        backend: Backend,
        domain: &str,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        verify_with(backend, &self.0, domain, message, signature)
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
    /// Checks the length only; [`DsaPublicKey::verify`] says whether it is a signature.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        check_len("ML-DSA-87 signature", DSA_SIGNATURE_LEN, bytes.len())?;
        Ok(Self(bytes.into()))
    }

    /// The raw encoding.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signature({} bytes)", self.0.len())
    }
}

enum Signer {
    AwsLc(aws_lc::DsaSigner),
    #[cfg(feature = "rustcrypto")]
    RustCrypto(rust_crypto::DsaSigner),
}

/// The node's long-term ML-DSA-87 key pair and the id bound to it.
///
/// Both backends derive the same key pair from the same seed, so the node id
/// does not depend on the backend. `Debug` never prints secret material.
pub struct Identity {
    seed: Zeroizing<[u8; DSA_SEED_LEN]>,
    signer: Signer,
    public_key: DsaPublicKey,
    node_id: NodeId,
}

impl Identity {
    /// A fresh identity from the operating system's randomness (aws-lc-rs).
    pub fn generate() -> Result<Self, CryptoError> {
        Self::generate_with(Backend::AwsLc)
    }

    /// A fresh identity on the chosen backend.
    pub fn generate_with(backend: Backend) -> Result<Self, CryptoError> {
        let mut seed = Zeroizing::new([0u8; DSA_SEED_LEN]);
        aws_lc_rs::rand::fill(seed.as_mut()).map_err(|_| CryptoError::Rng)?;
        Self::from_seed_with(backend, &seed)
    }

    /// The identity whose FIPS 204 key-generation seed ξ is `seed` (aws-lc-rs).
    pub fn from_seed(seed: &[u8; DSA_SEED_LEN]) -> Result<Self, CryptoError> {
        Self::from_seed_with(Backend::AwsLc, seed)
    }

    /// The identity whose FIPS 204 key-generation seed ξ is `seed`, on the chosen backend.
    pub fn from_seed_with(
        backend: Backend,
        seed: &[u8; DSA_SEED_LEN],
    ) -> Result<Self, CryptoError> {
        let (signer, public_key) = match backend {
            Backend::AwsLc => {
                let signer = aws_lc::DsaSigner::from_seed(seed)?;
                let public_key = DsaPublicKey::from_bytes(signer.public_key())?;
                (Signer::AwsLc(signer), public_key)
            }
            #[cfg(feature = "rustcrypto")]
            Backend::RustCrypto => {
                let signer = rust_crypto::DsaSigner::from_seed(seed);
                let public_key = DsaPublicKey::from_bytes(signer.public_key())?;
                (Signer::RustCrypto(signer), public_key)
            }
            #[cfg(not(feature = "rustcrypto"))]
            Backend::RustCrypto => return Err(CryptoError::BackendUnavailable(backend)),
        };
        Ok(Self {
            seed: Zeroizing::new(*seed),
            node_id: public_key.node_id(),
            signer,
            public_key,
        })
    }

    /// The backend that signs.
    pub fn backend(&self) -> Backend {
        match self.signer {
            Signer::AwsLc(_) => Backend::AwsLc,
            #[cfg(feature = "rustcrypto")]
            Signer::RustCrypto(_) => Backend::RustCrypto,
        }
    }

    /// The node id this identity proves (computed once).
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// The public key, for others to verify with.
    pub fn public_key(&self) -> &DsaPublicKey {
        &self.public_key
    }

    /// The secret seed, for writing the key file. Keep it out of logs.
    pub fn seed(&self) -> &Zeroizing<[u8; DSA_SEED_LEN]> {
        &self.seed
    }

    /// The key as PKCS#8 v1 DER (seed form), for rustls.
    ///
    /// Always produced by aws-lc-rs (rustls' provider), whatever the signing backend.
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        match &self.signer {
            Signer::AwsLc(signer) => signer.to_pkcs8_der(),
            #[cfg(feature = "rustcrypto")]
            Signer::RustCrypto(_) => aws_lc::DsaSigner::from_seed(&self.seed)?.to_pkcs8_der(),
        }
    }

    /// Signs `domain || 0x00 || message` (hedged: FIPS 204 randomised signing).
    pub fn sign(&self, domain: &str, message: &[u8]) -> Result<Signature, CryptoError> {
        let signed = labelled(domain, message);
        let sig = match &self.signer {
            Signer::AwsLc(signer) => signer.sign(&signed)?,
            #[cfg(feature = "rustcrypto")]
            Signer::RustCrypto(signer) => signer.sign(&signed)?,
        };
        Signature::from_bytes(&sig)
    }
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("node_id", &self.node_id)
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

/// Checks an ML-DSA-87 `signature` by `public_key` over `domain || 0x00 || message` (aws-lc-rs).
pub fn verify(
    public_key: &[u8],
    domain: &str,
    message: &[u8],
    signature: &[u8],
) -> Result<(), CryptoError> {
    verify_with(Backend::AwsLc, public_key, domain, message, signature)
}

/// Like [`verify`], on the chosen backend.
pub fn verify_with(
    backend: Backend,
    public_key: &[u8],
    domain: &str,
    message: &[u8],
    signature: &[u8],
) -> Result<(), CryptoError> {
    check_len("ML-DSA-87 public key", DSA_PUBLIC_KEY_LEN, public_key.len())?;
    check_len("ML-DSA-87 signature", DSA_SIGNATURE_LEN, signature.len())?;
    let signed = labelled(domain, message);
    let valid = match backend {
        Backend::AwsLc => aws_lc::dsa_verify(public_key, &signed, signature),
        #[cfg(feature = "rustcrypto")]
        Backend::RustCrypto => rust_crypto::dsa_verify(public_key, &signed, signature),
        #[cfg(not(feature = "rustcrypto"))]
        Backend::RustCrypto => return Err(CryptoError::BackendUnavailable(backend)),
    };
    if valid {
        Ok(())
    } else {
        Err(CryptoError::BadSignature)
    }
}

pub(crate) fn labelled(domain: &str, message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(domain.len() + 1 + message.len());
    out.extend_from_slice(domain.as_bytes());
    out.push(0);
    out.extend_from_slice(message);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_round_trip_with_domain_separation() {
        for backend in Backend::available() {
            let id = Identity::generate_with(backend).unwrap();
            let sig = id.sign("test/a", b"hello").unwrap();
            assert_eq!(sig.as_bytes().len(), DSA_SIGNATURE_LEN);
            id.public_key()
                .verify_with(backend, "test/a", b"hello", sig.as_bytes())
                .unwrap();
            assert!(
                id.public_key()
                    .verify_with(backend, "test/b", b"hello", sig.as_bytes())
                    .is_err()
            );
            assert!(
                id.public_key()
                    .verify_with(backend, "test/a", b"hellp", sig.as_bytes())
                    .is_err()
            );
        }
    }

    #[test]
    fn signing_is_hedged() {
        for backend in Backend::available() {
            let id = Identity::generate_with(backend).unwrap();
            let a = id.sign("test", b"same message").unwrap();
            let b = id.sign("test", b"same message").unwrap();
            assert_ne!(a, b, "{backend} signed deterministically");
        }
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
        for backend in Backend::available() {
            let id = Identity::generate_with(backend).unwrap();
            let shown = format!("{id:?}");
            assert!(!shown.contains(&hex::encode(id.seed().as_ref())));
        }
    }

    #[test]
    fn rejects_wrong_lengths() {
        for backend in Backend::available() {
            assert!(verify_with(backend, &[0; 10], "d", b"m", &[0; DSA_SIGNATURE_LEN]).is_err());
            assert!(verify_with(backend, &[0; DSA_PUBLIC_KEY_LEN], "d", b"m", &[0; 5]).is_err());
        }
    }

    #[test]
    fn garbage_signatures_are_rejected_not_panicked_on() {
        let id = Identity::generate().unwrap();
        for backend in Backend::available() {
            for fill in [0x00, 0xff, 0x5a] {
                let sig = [fill; DSA_SIGNATURE_LEN];
                assert!(matches!(
                    id.public_key().verify_with(backend, "d", b"m", &sig),
                    Err(CryptoError::BadSignature)
                ));
            }
        }
    }

    #[test]
    fn pkcs8_is_available_on_every_backend() {
        for backend in Backend::available() {
            let id = Identity::generate_with(backend).unwrap();
            assert!(!id.to_pkcs8_der().unwrap().is_empty());
        }
    }

    #[cfg(not(feature = "rustcrypto"))]
    #[test]
    fn missing_backend_is_an_error() {
        assert!(matches!(
            Identity::generate_with(Backend::RustCrypto),
            Err(CryptoError::BackendUnavailable(Backend::RustCrypto))
        ));
    }
}
