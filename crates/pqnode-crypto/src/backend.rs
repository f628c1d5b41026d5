//! The two implementations of ML-DSA-87 and ML-KEM-1024, chosen at run time.
//!
//! aws-lc-rs is the main backend: fastest, formally verified ML-KEM, on a
//! FIPS 140-3 track, and the provider rustls uses. RustCrypto's pure-Rust
//! `ml-dsa` / `ml-kem` is the second: a fallback where AWS-LC is unwanted and
//! an independent implementation to check the first against. Both produce
//! and accept the same bytes (FIPS 203/204 encodings, pure ML-DSA with an
//! empty context), so keys, signatures and ciphertexts move freely between
//! them.

use std::fmt;
use std::str::FromStr;

pub(crate) mod aws_lc;
#[cfg(feature = "rustcrypto")]
pub(crate) mod rust_crypto;

/// Which implementation performs the post-quantum operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Backend {
    /// `aws-lc-rs` (AWS-LC, C and assembly).
    #[default]
    AwsLc,
    /// RustCrypto `ml-dsa` / `ml-kem` (pure Rust); needs the `rustcrypto` cargo feature.
    RustCrypto,
}

impl Backend {
    /// Every backend, whether or not this build includes it.
    pub const ALL: [Backend; 2] = [Backend::AwsLc, Backend::RustCrypto];

    /// The name used in configuration and status output.
    pub const fn name(self) -> &'static str {
        match self {
            Backend::AwsLc => "aws-lc-rs",
            Backend::RustCrypto => "rustcrypto",
        }
    }

    /// Whether this build can run the backend.
    pub const fn is_available(self) -> bool {
        match self {
            Backend::AwsLc => true,
            Backend::RustCrypto => cfg!(feature = "rustcrypto"),
        }
    }

    /// The backends this build can run.
    pub fn available() -> impl Iterator<Item = Backend> {
        Self::ALL.into_iter().filter(|b| b.is_available())
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A backend name that is neither `aws-lc-rs` nor `rustcrypto`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown crypto backend {0:?}: expected \"aws-lc-rs\" or \"rustcrypto\"")]
pub struct ParseBackendError(String);

impl FromStr for Backend {
    type Err = ParseBackendError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "aws-lc-rs" | "aws-lc" | "awslc" => Ok(Backend::AwsLc),
            "rustcrypto" | "rust-crypto" => Ok(Backend::RustCrypto),
            _ => Err(ParseBackendError(s.to_owned())),
        }
    }
}

impl serde::Serialize for Backend {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Backend {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for backend in Backend::ALL {
            assert_eq!(backend.name().parse::<Backend>(), Ok(backend));
        }
        assert!("openssl".parse::<Backend>().is_err());
    }

    #[test]
    fn aws_lc_is_always_available() {
        assert!(Backend::available().any(|b| b == Backend::AwsLc));
        assert_eq!(
            Backend::RustCrypto.is_available(),
            cfg!(feature = "rustcrypto")
        );
    }
}
