//! ML-DSA-87 and ML-KEM-1024 on aws-lc-rs.
//!
//! aws-lc-rs 1.19 has no seeded (deterministic) ML-KEM key generation and no
//! encapsulation with caller-supplied randomness in its public API (AWS-LC's
//! C library has both, `EVP_PKEY_keygen_deterministic` and
//! `EVP_PKEY_encapsulate_deterministic`, reachable only through unsafe FFI to
//! `aws-lc-sys`). So on this backend an ML-KEM key pair is either fresh or
//! loaded from its FIPS 203 expanded decapsulation key.

use aws_lc_rs::kem::{self, ML_KEM_1024};
use aws_lc_rs::signature::{
    KeyPair, ML_DSA_87, ML_DSA_87_SIGNING, PqdsaKeyPair, UnparsedPublicKey,
};
use zeroize::Zeroizing;

use crate::error::{CryptoError, check_len};
use crate::identity::DSA_SIGNATURE_LEN;
use crate::kem::{KEM_SHARED_SECRET_LEN, SharedSecret};

pub(crate) struct DsaSigner(PqdsaKeyPair);

impl DsaSigner {
    pub(crate) fn from_seed(seed: &[u8; crate::DSA_SEED_LEN]) -> Result<Self, CryptoError> {
        PqdsaKeyPair::from_seed(&ML_DSA_87_SIGNING, seed)
            .map(Self)
            .map_err(|_| CryptoError::KeyGen)
    }

    pub(crate) fn public_key(&self) -> &[u8] {
        self.0.public_key().as_ref()
    }

    /// Hedged FIPS 204 signing (fresh randomness per signature), empty context.
    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut sig = vec![0u8; DSA_SIGNATURE_LEN];
        let len = self
            .0
            .sign(message, &mut sig)
            .map_err(|_| CryptoError::Sign)?;
        check_len("ML-DSA-87 signature", DSA_SIGNATURE_LEN, len)?;
        Ok(sig)
    }

    pub(crate) fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let doc = self.0.to_pkcs8v1().map_err(|_| CryptoError::KeyGen)?;
        Ok(Zeroizing::new(doc.as_ref().to_vec()))
    }
}

/// Pure ML-DSA-87 verification with an empty context.
pub(crate) fn dsa_verify(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    UnparsedPublicKey::new(&ML_DSA_87, public_key)
        .verify(message, signature)
        .is_ok()
}

pub(crate) struct KemDecapsulator(kem::DecapsulationKey);

impl KemDecapsulator {
    /// A fresh key pair and its encapsulation key.
    pub(crate) fn generate() -> Result<(Self, Vec<u8>), CryptoError> {
        let dk = kem::DecapsulationKey::generate(&ML_KEM_1024)
            .map_err(|_| CryptoError::Kem("key generation"))?;
        let ek = dk
            .encapsulation_key()
            .and_then(|ek| ek.key_bytes())
            .map_err(|_| CryptoError::Kem("key generation"))?;
        Ok((Self(dk), ek.as_ref().to_vec()))
    }

    /// Loads a FIPS 203 expanded decapsulation key (the caller has checked its structure).
    pub(crate) fn from_expanded(dk: &[u8]) -> Result<Self, CryptoError> {
        kem::DecapsulationKey::new(&ML_KEM_1024, dk)
            .map(Self)
            .map_err(|_| CryptoError::InvalidKey("ML-KEM-1024 decapsulation key"))
    }

    pub(crate) fn to_expanded(&self) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let bytes = self
            .0
            .key_bytes()
            .map_err(|_| CryptoError::Kem("key export"))?;
        Ok(Zeroizing::new(bytes.as_ref().to_vec()))
    }

    pub(crate) fn decapsulate(&self, ciphertext: &[u8]) -> Result<SharedSecret, CryptoError> {
        let ss = self
            .0
            .decapsulate(kem::Ciphertext::from(ciphertext))
            .map_err(|_| CryptoError::Kem("decapsulation"))?;
        shared_secret(ss.as_ref())
    }
}

pub(crate) fn kem_encapsulate(
    encapsulation_key: &[u8],
) -> Result<(Vec<u8>, SharedSecret), CryptoError> {
    let ek = kem::EncapsulationKey::new(&ML_KEM_1024, encapsulation_key)
        .map_err(|_| CryptoError::InvalidKey("ML-KEM-1024 encapsulation key"))?;
    let (ct, ss) = ek
        .encapsulate()
        .map_err(|_| CryptoError::Kem("encapsulation"))?;
    Ok((ct.as_ref().to_vec(), shared_secret(ss.as_ref())?))
}

fn shared_secret(bytes: &[u8]) -> Result<SharedSecret, CryptoError> {
    let array =
        <[u8; KEM_SHARED_SECRET_LEN]>::try_from(bytes).map_err(|_| CryptoError::Length {
            what: "ML-KEM-1024 shared secret",
            expected: KEM_SHARED_SECRET_LEN,
            got: bytes.len(),
        })?;
    Ok(SharedSecret::new(array))
}
