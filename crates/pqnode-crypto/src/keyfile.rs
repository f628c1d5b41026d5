//! The on-disk format of one key file, and the careful IO around it.
//!
//! Layout, version 1 (integers big-endian):
//!
//! | bytes | field |
//! |---|---|
//! | 4 | magic `PQNK` |
//! | 1 | format version (1) |
//! | 1 | algorithm: 1 = ML-DSA-87 seed ξ (32 bytes), 2 = ML-KEM-1024 expanded decapsulation key (3168 bytes) |
//! | 2 | secret length |
//! | n | secret |
//! | 32 | SHA-256 of everything before it |
//!
//! The checksum detects truncation and corruption; it is not a MAC (anyone
//! who can write the file can replace the key anyway). Files are created
//! with mode 0600, written to a temporary file that is fsynced and then
//! hard-linked into place — `link(2)` refuses to replace an existing file,
//! which `rename(2)` would do silently — and the directory is fsynced so the
//! new name survives a crash.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::{DSA_SEED_LEN, KEM_EXPANDED_SECRET_KEY_LEN};

const MAGIC: [u8; 4] = *b"PQNK";
const VERSION: u8 = 1;
const HEADER_LEN: usize = 8;
const CHECKSUM_LEN: usize = 32;
/// Larger than any valid file; reading stops here so a huge file costs nothing.
const MAX_FILE_LEN: u64 = 16 * 1024;

/// Which secret a key file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    DsaSeed,
    KemExpanded,
}

impl KeyKind {
    const fn algorithm_id(self) -> u8 {
        match self {
            KeyKind::DsaSeed => 1,
            KeyKind::KemExpanded => 2,
        }
    }

    const fn secret_len(self) -> usize {
        match self {
            KeyKind::DsaSeed => DSA_SEED_LEN,
            KeyKind::KemExpanded => KEM_EXPANDED_SECRET_KEY_LEN,
        }
    }

    const fn file_len(self) -> usize {
        HEADER_LEN + self.secret_len() + CHECKSUM_LEN
    }
}

/// Why an existing key file was refused. The file is left exactly as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyFileProblem {
    /// A directory, symlink, device ...: key files must be regular files.
    NotARegularFile,
    /// Group or others may read or write it (`mode` holds the permission bits).
    TooOpen {
        /// The file's permission bits, as `chmod` takes them.
        mode: u32,
    },
    /// Shorter or longer than the format allows.
    WrongLength {
        /// The length of a key file of this kind, in bytes.
        expected: usize,
        /// The file's length, in bytes.
        got: usize,
    },
    /// Does not start with the key-file magic: some other file under this name.
    NotAKeyFile,
    /// Written by a newer (or unknown) format version.
    UnknownVersion(u8),
    /// Holds a different kind of key than the file name promises.
    WrongAlgorithm {
        /// The algorithm id this file name holds.
        expected: u8,
        /// The algorithm id in the file.
        got: u8,
    },
    /// The SHA-256 checksum does not match the contents: the file is damaged.
    ChecksumMismatch,
    /// Well-formed file whose key is not a valid key.
    InvalidKey,
}

impl KeyFileProblem {
    /// What a person should do about it, for the error message.
    pub(crate) fn fix(&self, path: &Path) -> String {
        let path = path.display();
        match self {
            KeyFileProblem::TooOpen { .. } => format!("run `chmod 600 {path}`"),
            KeyFileProblem::NotARegularFile => {
                format!("put the real key file at {path} (symlinks are not followed)")
            }
            KeyFileProblem::UnknownVersion(_) => format!(
                "it was written by a newer pqnode: run that version, or move {path} away to \
                 create a new key (the node id changes)"
            ),
            _ => format!(
                "the file is damaged: restore it from a backup, or move {path} away to create \
                 a new key (the node id changes)"
            ),
        }
    }
}

impl fmt::Display for KeyFileProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyFileProblem::NotARegularFile => f.write_str("not a regular file"),
            KeyFileProblem::TooOpen { mode } => {
                write!(f, "mode {mode:04o} lets group or others access it")
            }
            KeyFileProblem::WrongLength { expected, got } => {
                write!(
                    f,
                    "{got} bytes where {expected} were expected (truncated or damaged)"
                )
            }
            KeyFileProblem::NotAKeyFile => f.write_str("not a pqnode key file (bad magic)"),
            KeyFileProblem::UnknownVersion(v) => write!(f, "unknown format version {v}"),
            KeyFileProblem::WrongAlgorithm { expected, got } => {
                write!(f, "holds algorithm {got}, expected {expected}")
            }
            KeyFileProblem::ChecksumMismatch => f.write_str("checksum mismatch (corrupted)"),
            KeyFileProblem::InvalidKey => f.write_str("the key inside is not a valid key"),
        }
    }
}

/// Reading or writing a key file failed.
#[derive(Debug)]
pub(crate) enum KeyFileIoError {
    Refused(KeyFileProblem),
    Io(io::Error),
}

impl From<io::Error> for KeyFileIoError {
    fn from(e: io::Error) -> Self {
        KeyFileIoError::Io(e)
    }
}

pub(crate) fn encode(kind: KeyKind, secret: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(kind.file_len()));
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(kind.algorithm_id());
    // Secrets are at most a few KiB; the kinds fix their lengths.
    out.extend_from_slice(
        &u16::try_from(secret.len())
            .unwrap_or(u16::MAX)
            .to_be_bytes(),
    );
    out.extend_from_slice(secret);
    let checksum = Sha256::digest(out.as_slice());
    out.extend_from_slice(&checksum);
    out
}

pub(crate) fn decode(kind: KeyKind, file: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyFileProblem> {
    // Magic and version first, so a newer format is reported as such
    // rather than as a length error.
    let magic_len = file.len().min(MAGIC.len());
    if file.get(..magic_len) != MAGIC.get(..magic_len) {
        return Err(KeyFileProblem::NotAKeyFile);
    }
    if file.len() < HEADER_LEN {
        return Err(KeyFileProblem::WrongLength {
            expected: kind.file_len(),
            got: file.len(),
        });
    }
    let (header, rest) = file.split_at(HEADER_LEN);
    let &[_, _, _, _, version, algorithm, len_hi, len_lo] = header else {
        return Err(KeyFileProblem::NotAKeyFile);
    };
    if version != VERSION {
        return Err(KeyFileProblem::UnknownVersion(version));
    }
    if algorithm != kind.algorithm_id() {
        return Err(KeyFileProblem::WrongAlgorithm {
            expected: kind.algorithm_id(),
            got: algorithm,
        });
    }
    let declared = usize::from(u16::from_be_bytes([len_hi, len_lo]));
    if declared != kind.secret_len() || file.len() != kind.file_len() {
        return Err(KeyFileProblem::WrongLength {
            expected: kind.file_len(),
            got: file.len(),
        });
    }
    let (secret, checksum) = rest.split_at(declared);
    let body_len = HEADER_LEN + declared;
    let expected = Sha256::digest(file.get(..body_len).unwrap_or_default());
    if checksum != expected.as_slice() {
        return Err(KeyFileProblem::ChecksumMismatch);
    }
    Ok(Zeroizing::new(secret.to_vec()))
}

/// The secret in the key file at `path`, or `None` if there is no file.
pub(crate) fn read(
    path: &Path,
    kind: KeyKind,
) -> Result<Option<Zeroizing<Vec<u8>>>, KeyFileIoError> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
        Ok(meta) if !meta.file_type().is_file() => {
            return Err(KeyFileIoError::Refused(KeyFileProblem::NotARegularFile));
        }
        Ok(_) => {}
    }
    let file = File::open(path)?;
    // Checked on the open file, so a swap between the two calls changes nothing.
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(KeyFileIoError::Refused(KeyFileProblem::NotARegularFile));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyFileIoError::Refused(KeyFileProblem::TooOpen { mode }));
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(kind.file_len()));
    file.take(MAX_FILE_LEN).read_to_end(&mut bytes)?;
    decode(kind, &bytes)
        .map(Some)
        .map_err(KeyFileIoError::Refused)
}

/// What [`create`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Created {
    /// Our secret is now the file at `dir/name`.
    Written,
    /// A file of that name was already there (typically another process
    /// created it a moment ago); it was left untouched and ours discarded.
    AlreadyExists,
}

/// Creates the key file at `dir/name`, unless one already exists.
///
/// Losing the race to another process is not an error: the file is linked
/// into place only once it is complete, so the caller can read the winner's
/// key instead of failing.
pub(crate) fn create(dir: &Path, name: &str, kind: KeyKind, secret: &[u8]) -> io::Result<Created> {
    if secret.len() != kind.secret_len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{kind:?} secret of {} bytes", secret.len()),
        ));
    }
    let contents = encode(kind, secret);
    let target = dir.join(name);
    let temp = temp_path(dir, name)?;
    let result = write_synced(&temp, &contents).and_then(|()| fs::hard_link(&temp, &target));
    // The temporary name goes in every case; the key lives on under `target`.
    let cleanup = fs::remove_file(&temp);
    match result {
        Ok(()) => {}
        // Only `link(2)` can say this: the temporary name is fresh and random.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            cleanup?;
            return Ok(Created::AlreadyExists);
        }
        Err(e) => return Err(e),
    }
    cleanup?;
    File::open(dir)?.sync_all()?;
    Ok(Created::Written)
}

fn write_synced(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

fn temp_path(dir: &Path, name: &str) -> io::Result<PathBuf> {
    let mut nonce = [0u8; 8];
    aws_lc_rs::rand::fill(&mut nonce)
        .map_err(|_| io::Error::other("random number generator failed"))?;
    Ok(dir.join(format!(".{name}.{}.tmp", hex::encode(nonce))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let secret = [9u8; DSA_SEED_LEN];
        let file = encode(KeyKind::DsaSeed, &secret);
        assert_eq!(file.len(), KeyKind::DsaSeed.file_len());
        assert_eq!(decode(KeyKind::DsaSeed, &file).unwrap().as_slice(), &secret);
    }

    #[test]
    fn creating_over_an_existing_file_keeps_it_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let first = [1u8; DSA_SEED_LEN];
        let second = [2u8; DSA_SEED_LEN];
        let create = |secret: &[u8]| create(dir.path(), "k", KeyKind::DsaSeed, secret).unwrap();
        assert_eq!(create(&first), Created::Written);
        assert_eq!(create(&second), Created::AlreadyExists);
        let kept = read(&dir.path().join("k"), KeyKind::DsaSeed)
            .unwrap()
            .unwrap();
        assert_eq!(kept.as_slice(), &first);
        // No temporary file is left behind by the losing attempt.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn every_truncation_and_bit_flip_is_detected() {
        let file = encode(KeyKind::DsaSeed, &[3u8; DSA_SEED_LEN]);
        for len in 0..file.len() {
            assert!(decode(KeyKind::DsaSeed, &file[..len]).is_err(), "len {len}");
        }
        for i in 0..file.len() {
            for bit in 0..8 {
                let mut damaged = file.to_vec();
                damaged[i] ^= 1 << bit;
                assert!(
                    decode(KeyKind::DsaSeed, &damaged).is_err(),
                    "byte {i} bit {bit}"
                );
            }
        }
    }

    #[test]
    fn names_the_problem() {
        let file = encode(KeyKind::DsaSeed, &[3u8; DSA_SEED_LEN]);
        let mut newer = file.to_vec();
        newer[4] = 2;
        assert_eq!(
            decode(KeyKind::DsaSeed, &newer),
            Err(KeyFileProblem::UnknownVersion(2))
        );
        assert_eq!(
            decode(KeyKind::KemExpanded, &file),
            Err(KeyFileProblem::WrongAlgorithm {
                expected: 2,
                got: 1
            })
        );
        assert_eq!(
            decode(KeyKind::DsaSeed, b"-----BEGIN"),
            Err(KeyFileProblem::NotAKeyFile)
        );
        let mut flipped = file.to_vec();
        flipped[10] ^= 1;
        assert_eq!(
            decode(KeyKind::DsaSeed, &flipped),
            Err(KeyFileProblem::ChecksumMismatch)
        );
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..4000)) {
            for kind in [KeyKind::DsaSeed, KeyKind::KemExpanded] {
                let _ = decode(kind, &bytes);
                // Also past the magic check, where the interesting parsing is.
                let mut framed = MAGIC.to_vec();
                framed.extend_from_slice(&bytes);
                let _ = decode(kind, &framed);
            }
        }

        #[test]
        fn any_seed_round_trips(seed in proptest::array::uniform32(proptest::num::u8::ANY)) {
            let file = encode(KeyKind::DsaSeed, &seed);
            let decoded = decode(KeyKind::DsaSeed, &file).unwrap();
            proptest::prop_assert_eq!(decoded.as_slice(), seed.as_slice());
        }
    }
}
