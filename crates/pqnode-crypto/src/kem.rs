//! ML-KEM-1024 (FIPS 203): the node's static key-encapsulation key pair.

use aws_lc_rs::digest;
use zeroize::Zeroizing;

use crate::Backend;
use crate::backend::aws_lc;
#[cfg(feature = "rustcrypto")]
use crate::backend::rust_crypto;
use crate::error::{CryptoError, check_len};

/// ML-KEM-1024 encapsulation (public) key length.
pub const KEM_PUBLIC_KEY_LEN: usize = 1568;
/// ML-KEM-1024 ciphertext length.
pub const KEM_CIPHERTEXT_LEN: usize = 1568;
/// ML-KEM shared secret length.
pub const KEM_SHARED_SECRET_LEN: usize = 32;
/// FIPS 203 key-generation seed `d || z`.
pub const KEM_SEED_LEN: usize = 64;
/// FIPS 203 expanded decapsulation key: `dk_pke || ek || H(ek) || z`.
pub const KEM_EXPANDED_SECRET_KEY_LEN: usize = 3168;

/// Where `ek` and `H(ek)` sit inside an expanded decapsulation key (384·k, k = 4).
const DK_PKE_LEN: usize = 1536;
const EK_HASH_LEN: usize = 32;

/// An ML-KEM-1024 encapsulation key (1568 bytes).
#[derive(Clone, PartialEq, Eq)]
pub struct KemPublicKey(Box<[u8]>);

impl KemPublicKey {
    /// Checks the length only; a malformed key is refused when it is used.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        check_len(
            "ML-KEM-1024 encapsulation key",
            KEM_PUBLIC_KEY_LEN,
            bytes.len(),
        )?;
        Ok(Self(bytes.into()))
    }

    /// The raw encoding (1568 bytes).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// A fresh shared secret and the ciphertext that carries it to the key's holder (aws-lc-rs).
    pub fn encapsulate(&self) -> Result<(KemCiphertext, SharedSecret), CryptoError> {
        self.encapsulate_with(Backend::AwsLc)
    }

    /// Like [`encapsulate`](Self::encapsulate), on the chosen backend.
    pub fn encapsulate_with(
        &self,
        backend: Backend,
    ) -> Result<(KemCiphertext, SharedSecret), CryptoError> {
        let (ct, ss) = match backend {
            Backend::AwsLc => aws_lc::kem_encapsulate(&self.0)?,
            #[cfg(feature = "rustcrypto")]
            Backend::RustCrypto => rust_crypto::kem_encapsulate(&self.0)?,
            #[cfg(not(feature = "rustcrypto"))]
            Backend::RustCrypto => return Err(CryptoError::BackendUnavailable(backend)),
        };
        Ok((KemCiphertext::from_bytes(&ct)?, ss))
    }
}

impl std::fmt::Debug for KemPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let prefix = self.0.get(..8).unwrap_or_default();
        write!(f, "KemPublicKey({}…)", hex::encode(prefix))
    }
}

/// An ML-KEM-1024 ciphertext (1568 bytes).
#[derive(Clone, PartialEq, Eq)]
pub struct KemCiphertext(Box<[u8]>);

impl KemCiphertext {
    /// Checks the length only.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        check_len("ML-KEM-1024 ciphertext", KEM_CIPHERTEXT_LEN, bytes.len())?;
        Ok(Self(bytes.into()))
    }

    /// The raw encoding.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for KemCiphertext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KemCiphertext({} bytes)", self.0.len())
    }
}

/// A 32-byte ML-KEM shared secret, wiped on drop and never printed.
pub struct SharedSecret(Zeroizing<[u8; KEM_SHARED_SECRET_LEN]>);

impl SharedSecret {
    pub(crate) fn new(bytes: [u8; KEM_SHARED_SECRET_LEN]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The secret's bytes. Do not log or keep them longer than needed.
    pub fn as_bytes(&self) -> &[u8; KEM_SHARED_SECRET_LEN] {
        &self.0
    }
}

impl std::fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedSecret(..)")
    }
}

enum Decapsulator {
    AwsLc(aws_lc::KemDecapsulator),
    #[cfg(feature = "rustcrypto")]
    RustCrypto(rust_crypto::KemDecapsulator),
}

/// An ML-KEM-1024 key pair.
///
/// Its persistent form is the FIPS 203 expanded decapsulation key (3168
/// bytes), not the 64-byte seed: aws-lc-rs 1.19 can neither derive a key pair
/// from a seed nor export one, but both backends import and export the
/// expanded form. Seeded generation works on the RustCrypto backend only.
pub struct KemKeyPair {
    decapsulator: Decapsulator,
    public_key: KemPublicKey,
}

impl KemKeyPair {
    /// A fresh key pair from the operating system's randomness.
    pub fn generate(backend: Backend) -> Result<Self, CryptoError> {
        let (decapsulator, ek) = match backend {
            Backend::AwsLc => {
                let (dk, ek) = aws_lc::KemDecapsulator::generate()?;
                (Decapsulator::AwsLc(dk), ek)
            }
            #[cfg(feature = "rustcrypto")]
            Backend::RustCrypto => {
                let (dk, ek) = rust_crypto::KemDecapsulator::generate()?;
                (Decapsulator::RustCrypto(dk), ek)
            }
            #[cfg(not(feature = "rustcrypto"))]
            Backend::RustCrypto => return Err(CryptoError::BackendUnavailable(backend)),
        };
        Ok(Self {
            decapsulator,
            public_key: KemPublicKey::from_bytes(&ek)?,
        })
    }

    /// FIPS 203 `ML-KEM.KeyGen_internal(d, z)` from `seed = d || z`.
    ///
    /// Only the RustCrypto backend can do this; aws-lc-rs returns
    /// [`CryptoError::Unsupported`].
    pub fn from_seed(backend: Backend, seed: &[u8; KEM_SEED_LEN]) -> Result<Self, CryptoError> {
        match backend {
            Backend::AwsLc => Err(CryptoError::Unsupported {
                backend,
                operation: "seeded ML-KEM key generation",
            }),
            #[cfg(feature = "rustcrypto")]
            Backend::RustCrypto => {
                let (dk, ek) = rust_crypto::KemDecapsulator::from_seed(seed);
                Ok(Self {
                    decapsulator: Decapsulator::RustCrypto(dk),
                    public_key: KemPublicKey::from_bytes(&ek)?,
                })
            }
            #[cfg(not(feature = "rustcrypto"))]
            Backend::RustCrypto => {
                let _ = seed;
                Err(CryptoError::BackendUnavailable(backend))
            }
        }
    }

    /// Loads a FIPS 203 expanded decapsulation key, after the FIPS 203 §7.3
    /// hash check (`H(ek)` stored inside it must match its `ek`).
    pub fn from_expanded(backend: Backend, dk: &[u8]) -> Result<Self, CryptoError> {
        let ek = encapsulation_key_of(dk)?;
        let decapsulator = match backend {
            Backend::AwsLc => Decapsulator::AwsLc(aws_lc::KemDecapsulator::from_expanded(dk)?),
            #[cfg(feature = "rustcrypto")]
            Backend::RustCrypto => {
                Decapsulator::RustCrypto(rust_crypto::KemDecapsulator::from_expanded(dk)?)
            }
            #[cfg(not(feature = "rustcrypto"))]
            Backend::RustCrypto => return Err(CryptoError::BackendUnavailable(backend)),
        };
        Ok(Self {
            decapsulator,
            public_key: KemPublicKey::from_bytes(ek)?,
        })
    }

    /// The expanded decapsulation key, for the key file. Secret: keep it out of logs.
    pub fn to_expanded(&self) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let dk = match &self.decapsulator {
            Decapsulator::AwsLc(dk) => dk.to_expanded()?,
            #[cfg(feature = "rustcrypto")]
            Decapsulator::RustCrypto(dk) => dk.to_expanded(),
        };
        check_len(
            "ML-KEM-1024 decapsulation key",
            KEM_EXPANDED_SECRET_KEY_LEN,
            dk.len(),
        )?;
        Ok(dk)
    }

    /// The backend that decapsulates.
    pub fn backend(&self) -> Backend {
        match self.decapsulator {
            Decapsulator::AwsLc(_) => Backend::AwsLc,
            #[cfg(feature = "rustcrypto")]
            Decapsulator::RustCrypto(_) => Backend::RustCrypto,
        }
    }

    /// The encapsulation key, for others to encapsulate to.
    pub fn public_key(&self) -> &KemPublicKey {
        &self.public_key
    }

    /// The shared secret inside `ciphertext`. A ciphertext not made for this
    /// key yields an unrelated secret (FIPS 203 implicit rejection), not an error.
    pub fn decapsulate(&self, ciphertext: &KemCiphertext) -> Result<SharedSecret, CryptoError> {
        match &self.decapsulator {
            Decapsulator::AwsLc(dk) => dk.decapsulate(ciphertext.as_bytes()),
            #[cfg(feature = "rustcrypto")]
            Decapsulator::RustCrypto(dk) => dk.decapsulate(ciphertext.as_bytes()),
        }
    }
}

impl std::fmt::Debug for KemKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KemKeyPair")
            .field("public_key", &self.public_key)
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

/// The `ek` embedded in an expanded decapsulation key, once its length and
/// `H(ek)` check out. Catches corruption that a length check cannot.
fn encapsulation_key_of(dk: &[u8]) -> Result<&[u8], CryptoError> {
    check_len(
        "ML-KEM-1024 decapsulation key",
        KEM_EXPANDED_SECRET_KEY_LEN,
        dk.len(),
    )?;
    let invalid = CryptoError::InvalidKey("ML-KEM-1024 decapsulation key (H(ek) mismatch)");
    let ek_end = DK_PKE_LEN + KEM_PUBLIC_KEY_LEN;
    let (Some(ek), Some(stored_hash)) = (
        dk.get(DK_PKE_LEN..ek_end),
        dk.get(ek_end..ek_end + EK_HASH_LEN),
    ) else {
        return Err(invalid);
    };
    if digest::digest(&digest::SHA3_256, ek).as_ref() == stored_hash {
        Ok(ek)
    } else {
        Err(invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encapsulate_decapsulate_round_trip() {
        for backend in Backend::available() {
            let kp = KemKeyPair::generate(backend).unwrap();
            assert_eq!(kp.public_key().as_bytes().len(), KEM_PUBLIC_KEY_LEN);
            let (ct, sent) = kp.public_key().encapsulate_with(backend).unwrap();
            let received = kp.decapsulate(&ct).unwrap();
            assert_eq!(sent.as_bytes(), received.as_bytes(), "{backend}");
        }
    }

    #[test]
    fn tampered_ciphertext_gives_another_secret() {
        for backend in Backend::available() {
            let kp = KemKeyPair::generate(backend).unwrap();
            let (ct, sent) = kp.public_key().encapsulate_with(backend).unwrap();
            let mut bytes = ct.as_bytes().to_vec();
            bytes[100] ^= 1;
            let tampered = KemCiphertext::from_bytes(&bytes).unwrap();
            let received = kp.decapsulate(&tampered).unwrap();
            assert_ne!(sent.as_bytes(), received.as_bytes(), "{backend}");
        }
    }

    #[test]
    fn expanded_key_round_trip() {
        for backend in Backend::available() {
            let kp = KemKeyPair::generate(backend).unwrap();
            let dk = kp.to_expanded().unwrap();
            let loaded = KemKeyPair::from_expanded(backend, &dk).unwrap();
            assert_eq!(loaded.public_key(), kp.public_key());
            let (ct, sent) = kp.public_key().encapsulate_with(backend).unwrap();
            assert_eq!(loaded.decapsulate(&ct).unwrap().as_bytes(), sent.as_bytes());
        }
    }

    #[test]
    fn corrupted_expanded_key_is_refused() {
        let kp = KemKeyPair::generate(Backend::AwsLc).unwrap();
        let mut dk = kp.to_expanded().unwrap();
        dk[DK_PKE_LEN + 10] ^= 0x40;
        for backend in Backend::available() {
            assert!(matches!(
                KemKeyPair::from_expanded(backend, &dk),
                Err(CryptoError::InvalidKey(_))
            ));
            assert!(KemKeyPair::from_expanded(backend, &dk[..100]).is_err());
        }
    }

    #[test]
    fn seeded_generation_is_refused_on_aws_lc() {
        assert!(matches!(
            KemKeyPair::from_seed(Backend::AwsLc, &[7; KEM_SEED_LEN]),
            Err(CryptoError::Unsupported { .. })
        ));
    }

    #[test]
    fn wrong_lengths_are_errors() {
        assert!(KemPublicKey::from_bytes(&[0; 10]).is_err());
        assert!(KemCiphertext::from_bytes(&[0; KEM_CIPHERTEXT_LEN + 1]).is_err());
    }

    #[test]
    fn debug_never_shows_secrets() {
        let kp = KemKeyPair::generate(Backend::AwsLc).unwrap();
        let (_, ss) = kp.public_key().encapsulate().unwrap();
        assert!(!format!("{ss:?}").contains(&hex::encode(ss.as_bytes())));
        let dk = kp.to_expanded().unwrap();
        assert!(!format!("{kp:?}").contains(&hex::encode(&dk[..16])));
    }
}
