//! The error every cryptographic operation returns.

use crate::Backend;

/// A cryptographic operation that failed.
///
/// Messages never contain key material: they are safe to log and to return
/// from the API.
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
    /// The bytes have the right length but are not a valid key of that kind.
    #[error("invalid {0}")]
    InvalidKey(&'static str),
    #[error("ML-KEM-1024 {0} failed")]
    Kem(&'static str),
    /// The backend exists but this build does not include it (cargo feature `rustcrypto`).
    #[error("the {0} backend is not compiled into this build (cargo feature `rustcrypto`)")]
    BackendUnavailable(Backend),
    /// The backend cannot perform this operation through its public API.
    #[error("the {backend} backend does not support {operation}")]
    Unsupported {
        backend: Backend,
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
