//! The error every cryptographic operation returns.

use crate::Backend;

/// A cryptographic operation that failed.
///
/// Messages never contain key material: they are safe to log and to return
/// from the API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// No randomness for a key, a seed or an encapsulation.
    #[error("the operating system's random number generator failed")]
    Rng,
    /// The backend could not make an ML-DSA-87 key pair.
    #[error("ML-DSA-87 key generation failed")]
    KeyGen,
    /// The backend could not sign.
    #[error("ML-DSA-87 signing failed")]
    Sign,
    /// The signature does not match the key, the domain and the message.
    #[error("signature verification failed")]
    BadSignature,
    /// A key, signature or ciphertext of the wrong size.
    #[error("malformed {what}: expected {expected} bytes, got {got}")]
    Length {
        /// What was given, for the message ("ML-DSA-87 public key").
        what: &'static str,
        /// Its size, in bytes.
        expected: usize,
        /// The size given, in bytes.
        got: usize,
    },
    /// The bytes have the right length but are not a valid key of that kind.
    #[error("invalid {0}")]
    InvalidKey(&'static str),
    /// An ML-KEM-1024 operation (named) failed in the backend.
    #[error("ML-KEM-1024 {0} failed")]
    Kem(&'static str),
    /// The backend exists but this build does not include it (cargo feature `rustcrypto`).
    #[error("the {0} backend is not compiled into this build (cargo feature `rustcrypto`)")]
    BackendUnavailable(Backend),
    /// The backend cannot perform this operation through its public API.
    #[error("the {backend} backend does not support {operation}")]
    Unsupported {
        /// The backend asked.
        backend: Backend,
        /// What it was asked to do.
        operation: &'static str,
    },
}

pub(crate) fn check_len(
    what: &'static str,
    expected: usize,
    got: usize,
) -> Result<(), CryptoError> {
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
