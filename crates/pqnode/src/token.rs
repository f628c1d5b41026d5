//! The API token: from the configuration, or generated once and kept in
//! `<data_dir>/api.token` so the CLI on the same machine can read it; what
//! a token must look like ([`check`]) and how one is compared ([`matches`]).
//!
//! Not here: which routes need it (see `api/mod.rs`).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

pub(crate) const TOKEN_FILE: &str = "api.token";

/// Fewest characters a token may have.
pub(crate) const MIN_LEN: usize = 16;
/// Least estimated entropy a token must show, in bits. The generated token
/// shows about 190; 16 random characters from letters and digits about 60.
pub(crate) const MIN_BITS: f64 = 48.0;

/// Why a token is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum TokenError {
    #[error("must be at least {MIN_LEN} characters, not {0}")]
    TooShort(usize),
    /// Whitespace, control or non-ASCII characters: they do not survive an
    /// `Authorization` header or the trimming of the token file unchanged.
    #[error("must be printable ASCII without spaces (it travels in an HTTP header)")]
    BadCharacter,
    /// Repetitive or from too few characters to be guessed slowly enough
    /// (`aaaaaaaaaaaaaaaa`, `1234123412341234`).
    #[error("looks guessable (about {0:.0} bits; at least {MIN_BITS} needed)")]
    Guessable(f64),
}

/// Checks that `token` can be used as the API token; the same rules apply
/// whether it comes from the configuration or from the token file.
pub(crate) fn check(token: &str) -> Result<(), TokenError> {
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(TokenError::BadCharacter);
    }
    if token.len() < MIN_LEN {
        return Err(TokenError::TooShort(token.len()));
    }
    let bits = estimated_bits(token);
    if bits < MIN_BITS {
        return Err(TokenError::Guessable(bits));
    }
    Ok(())
}

/// Length times the Shannon entropy of the token's own character
/// frequencies: a crude upper bound on a guesser's work that still catches
/// repeated characters and short repeated patterns. It cannot see
/// dictionary words; the hint in the error points at a random generator.
fn estimated_bits(token: &str) -> f64 {
    let mut counts = [0u32; 128];
    for b in token.bytes() {
        counts[usize::from(b & 0x7f)] += 1;
    }
    let len = token.len() as f64;
    let per_char: f64 = counts
        .iter()
        .filter(|&&n| n > 0)
        .map(|&n| {
            let p = f64::from(n) / len;
            -p * p.log2()
        })
        .sum();
    per_char * len
}

/// Compares a presented token with the expected one in time that depends on
/// neither its content nor its length: both are hashed to 32 bytes first,
/// and the digests are compared without an early exit.
pub(crate) fn matches(presented: &str, expected: &str) -> bool {
    use sha2::{Digest, Sha256};
    let a = Sha256::digest(presented.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    let diff = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

pub(crate) fn token_path(data_dir: &Path) -> PathBuf {
    data_dir.join(TOKEN_FILE)
}

/// Returns the configured token, else the stored one, else a new random one (stored 0600).
pub(crate) fn load_or_create(data_dir: &Path, configured: Option<&str>) -> anyhow::Result<String> {
    if let Some(token) = configured {
        check(token).map_err(|e| anyhow::anyhow!("api.token {e}"))?;
        return Ok(token.to_owned());
    }
    let path = token_path(data_dir);
    match fs::read_to_string(&path) {
        Ok(text) => {
            let mode = fs::metadata(&path)?.permissions().mode();
            if mode & 0o077 != 0 {
                bail!(
                    "{} is readable by other users (mode {:o}); run `chmod 600 {}`",
                    path.display(),
                    mode & 0o777,
                    path.display()
                );
            }
            let token = text.trim().to_owned();
            if let Err(e) = check(&token) {
                bail!(
                    "{} holds no valid token (it {e}); delete it to generate a new one",
                    path.display()
                );
            }
            Ok(token)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(&path),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The stored token, or `None` while there is no file, for CLI commands
/// that talk to a running node. The node writes the file atomically (by
/// rename), so a file that exists is complete.
pub(crate) fn read(data_dir: &Path) -> anyhow::Result<Option<String>> {
    let path = token_path(data_dir);
    match fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text.trim().to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| {
            format!(
                "cannot read the API token from {} (pass --api-token)",
                path.display()
            )
        }),
    }
}

fn create(path: &Path) -> anyhow::Result<String> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("the system random number generator failed: {e}"))?;
    let token = hex::encode(bytes);
    let tmp = path.with_extension("token.tmp");
    let _ = fs::remove_file(&tmp);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    file.write_all(token.as_bytes())?;
    file.sync_all()?;
    fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_and_random_tokens_pass() {
        let dir = tempfile::tempdir().unwrap();
        let token = load_or_create(dir.path(), None).unwrap();
        assert_eq!(check(&token), Ok(()));
        assert_eq!(check("openssl-rand-b64-Zq8vK2mX"), Ok(()));
        assert_eq!(check("c0ffee17-a83b-4d2e-9f10-5b7e6a2c9d41"), Ok(()));
    }

    #[test]
    fn whitespace_short_and_guessable_tokens_are_refused() {
        let spaces = " ".repeat(32);
        assert_eq!(check(&spaces), Err(TokenError::BadCharacter));
        assert_eq!(
            check("tab\tinside-a-long-token"),
            Err(TokenError::BadCharacter)
        );
        assert_eq!(check("short"), Err(TokenError::TooShort(5)));
        for weak in [
            "aaaaaaaaaaaaaaaa",
            "abababababababababab",
            "1234123412341234",
        ] {
            assert!(
                matches!(check(weak), Err(TokenError::Guessable(_))),
                "{weak} was accepted"
            );
        }
    }

    #[test]
    fn a_stored_token_file_is_checked_too() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = token_path(dir.path());
        fs::write(&path, " ".repeat(20)).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let err = load_or_create(dir.path(), None).unwrap_err().to_string();
        assert!(err.contains("holds no valid token"), "{err}");
        let err = load_or_create(dir.path(), Some("aaaaaaaaaaaaaaaaaaaa"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("guessable"), "{err}");
    }

    #[test]
    fn comparison_needs_the_whole_token() {
        let token = "0123456789abcdef0123456789abcdef";
        assert!(matches(token, token));
        assert!(!matches(&token[..31], token));
        assert!(!matches(&format!("{token}0"), token));
        assert!(!matches("", token));
    }
}
