//! The start-up self-test: the keys in use must actually work on their backend.

use crate::{Backend, CryptoError, KemCiphertext, NodeKeys};

const DOMAIN: &str = "pqnode/self-test/v1";

/// What a passed self-test measured on the keys in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelfTestReport {
    /// The backend the identity signs on.
    pub signature_backend: Backend,
    /// The backend the KEM key pair decapsulates on.
    pub kem_backend: Backend,
    /// ML-DSA-87 public key, bytes (2592).
    pub dsa_public_key_len: usize,
    /// The signature the test made, bytes (4627).
    pub signature_len: usize,
    /// ML-KEM-1024 encapsulation key, bytes (1568).
    pub kem_public_key_len: usize,
    /// The ciphertext the test made, bytes (1568).
    pub kem_ciphertext_len: usize,
}

/// The self-test failed: this node's crypto cannot be trusted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SelfTestError {
    /// An operation failed outright.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// Verification accepted a signature with one bit flipped.
    #[error("a tampered signature was accepted")]
    TamperedSignatureAccepted,
    /// The two ends of an encapsulation disagree on the secret.
    #[error("decapsulation did not recover the encapsulated secret")]
    SharedSecretMismatch,
    /// Decapsulating a ciphertext with one bit flipped gave the original secret (ML-KEM must
    /// give an unrelated one).
    #[error("a tampered ciphertext decapsulated to the original secret")]
    TamperedCiphertextAccepted,
}

/// Signs and verifies with the identity, encapsulates to and decapsulates
/// with the KEM key pair, each on the backend the key runs on, and checks
/// that a tampered signature and a tampered ciphertext are rejected.
pub fn self_test(keys: &NodeKeys) -> Result<SelfTestReport, SelfTestError> {
    let identity = &keys.identity;
    let signature_backend = identity.backend();
    let message = identity.node_id().to_hex();
    let signature = identity.sign(DOMAIN, message.as_bytes())?;
    identity.public_key().verify_with(
        signature_backend,
        DOMAIN,
        message.as_bytes(),
        signature.as_bytes(),
    )?;
    let mut tampered = signature.as_bytes().to_vec();
    if let Some(byte) = tampered.get_mut(0) {
        *byte ^= 0x01;
    }
    if identity
        .public_key()
        .verify_with(signature_backend, DOMAIN, message.as_bytes(), &tampered)
        .is_ok()
    {
        return Err(SelfTestError::TamperedSignatureAccepted);
    }

    let kem = &keys.kem;
    let kem_backend = kem.backend();
    let (ciphertext, sent) = kem.public_key().encapsulate_with(kem_backend)?;
    let received = kem.decapsulate(&ciphertext)?;
    if sent.as_bytes() != received.as_bytes() {
        return Err(SelfTestError::SharedSecretMismatch);
    }
    let mut tampered = ciphertext.as_bytes().to_vec();
    if let Some(byte) = tampered.last_mut() {
        *byte ^= 0x01;
    }
    let rejected = kem.decapsulate(&KemCiphertext::from_bytes(&tampered)?)?;
    if rejected.as_bytes() == sent.as_bytes() {
        return Err(SelfTestError::TamperedCiphertextAccepted);
    }

    Ok(SelfTestReport {
        signature_backend,
        kem_backend,
        dsa_public_key_len: identity.public_key().as_bytes().len(),
        signature_len: signature.as_bytes().len(),
        kem_public_key_len: kem.public_key().as_bytes().len(),
        kem_ciphertext_len: ciphertext.as_bytes().len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Identity, KemKeyPair};

    #[test]
    fn passes_on_every_backend() {
        for backend in Backend::available() {
            let keys = NodeKeys {
                identity: Identity::generate_with(backend).unwrap(),
                kem: KemKeyPair::generate(backend).unwrap(),
            };
            let report = self_test(&keys).unwrap();
            assert_eq!(report.signature_backend, backend);
            assert_eq!(report.kem_backend, backend);
            assert_eq!(report.signature_len, crate::DSA_SIGNATURE_LEN);
            assert_eq!(report.kem_public_key_len, crate::KEM_PUBLIC_KEY_LEN);
        }
    }
}
