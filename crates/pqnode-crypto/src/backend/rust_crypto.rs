//! ML-DSA-87 and ML-KEM-1024 on RustCrypto's pure-Rust `ml-dsa` / `ml-kem`.

use ml_dsa::{EncodedSignature, EncodedVerifyingKey, ExpandedSigningKey, MlDsa87, VerifyingKey};
use ml_kem::kem::{Decapsulate, KeyExport};
use ml_kem::{MlKem1024, ml_kem_1024};
use zeroize::Zeroizing;

use crate::error::CryptoError;
use crate::kem::{KEM_SEED_LEN, SharedSecret};

pub(crate) struct DsaSigner {
    key: Box<ExpandedSigningKey<MlDsa87>>,
    public_key: Vec<u8>,
}

impl DsaSigner {
    pub(crate) fn from_seed(seed: &[u8; crate::DSA_SEED_LEN]) -> Self {
        let key = ExpandedSigningKey::from_seed(&(*seed).into());
        let public_key = key.verifying_key().encode().to_vec();
        Self {
            key: Box::new(key),
            public_key,
        }
    }

    pub(crate) fn public_key(&self) -> &[u8] {
        &self.public_key
    }

    /// Hedged FIPS 204 signing, empty context. The crate's `Signer` impl is the
    /// deterministic variant, which we avoid: hedging protects against fault
    /// and side-channel attacks that exploit repeated nonces.
    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let sig = self
            .key
            .sign_randomized(message, &[], &mut getrandom::SysRng)
            .map_err(|_| CryptoError::Sign)?;
        Ok(sig.encode().to_vec())
    }
}

/// Pure ML-DSA-87 verification with an empty context.
pub(crate) fn dsa_verify(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let (Ok(pk), Ok(sig)) = (
        EncodedVerifyingKey::<MlDsa87>::try_from(public_key),
        EncodedSignature::<MlDsa87>::try_from(signature),
    ) else {
        return false;
    };
    let Some(sig) = ml_dsa::Signature::<MlDsa87>::decode(&sig) else {
        return false;
    };
    VerifyingKey::<MlDsa87>::decode(&pk).verify_with_context(message, &[], &sig)
}

pub(crate) struct KemDecapsulator(Box<ml_kem_1024::DecapsulationKey>);

impl KemDecapsulator {
    /// FIPS 203 `ML-KEM.KeyGen_internal(d, z)` from the 64-byte seed `d || z`.
    pub(crate) fn from_seed(seed: &[u8; KEM_SEED_LEN]) -> (Self, Vec<u8>) {
        let dk = ml_kem_1024::DecapsulationKey::from_seed((*seed).into());
        let ek = dk.encapsulation_key().to_bytes().to_vec();
        (Self(Box::new(dk)), ek)
    }

    pub(crate) fn generate() -> Result<(Self, Vec<u8>), CryptoError> {
        let mut seed = Zeroizing::new([0u8; KEM_SEED_LEN]);
        getrandom::fill(seed.as_mut()).map_err(|_| CryptoError::Rng)?;
        Ok(Self::from_seed(&seed))
    }

    /// Loads a FIPS 203 expanded decapsulation key; `ml-kem` re-checks `H(ek)`.
    // The expanded form is deprecated upstream in favour of seeds, but it is
    // the only private-key form aws-lc-rs can import, so it is our file format.
    #[allow(deprecated)]
    pub(crate) fn from_expanded(dk: &[u8]) -> Result<Self, CryptoError> {
        let invalid = CryptoError::InvalidKey("ML-KEM-1024 decapsulation key");
        let expanded = ml_kem_1024::ExpandedDecapsulationKey::try_from(dk)
            .map_err(|_| CryptoError::InvalidKey("ML-KEM-1024 decapsulation key"))?;
        let key = ml_kem_1024::DecapsulationKey::from_expanded(&expanded).map_err(|_| invalid)?;
        Ok(Self(Box::new(key)))
    }

    pub(crate) fn to_expanded(&self) -> Zeroizing<Vec<u8>> {
        #[allow(deprecated)]
        let bytes = ml_kem::ExpandedKeyEncoding::to_expanded_bytes(self.0.as_ref());
        Zeroizing::new(bytes.to_vec())
    }

    pub(crate) fn decapsulate(&self, ciphertext: &[u8]) -> Result<SharedSecret, CryptoError> {
        let ct = ml_kem_1024::Ciphertext::try_from(ciphertext)
            .map_err(|_| CryptoError::Kem("decapsulation"))?;
        Ok(SharedSecret::new(self.0.decapsulate(&ct).into()))
    }
}

pub(crate) fn kem_encapsulate(
    encapsulation_key: &[u8],
) -> Result<(Vec<u8>, SharedSecret), CryptoError> {
    let invalid = || CryptoError::InvalidKey("ML-KEM-1024 encapsulation key");
    let bytes = ml_kem::array::Array::try_from(encapsulation_key).map_err(|_| invalid())?;
    let ek = ml_kem::EncapsulationKey::<MlKem1024>::new(&bytes).map_err(|_| invalid())?;
    // Drawing `m` ourselves turns an RNG failure into an error; the crate's
    // `encapsulate()` would panic instead.
    let mut m = Zeroizing::new([0u8; 32]);
    getrandom::fill(m.as_mut()).map_err(|_| CryptoError::Rng)?;
    let (ct, ss) = ek.encapsulate_deterministic(&(*m).into());
    Ok((ct.to_vec(), SharedSecret::new(ss.into())))
}
