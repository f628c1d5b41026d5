//! The node's keys in its data folder: load them, or create them on first start.

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::keyfile::{self, Created, KeyFileIoError, KeyFileProblem, KeyKind};
use crate::{Backend, CryptoError, DSA_SEED_LEN, Identity, KemKeyPair};

/// The ML-DSA-87 identity seed.
pub const IDENTITY_FILE: &str = "identity.key";
/// The static ML-KEM-1024 key pair.
pub const KEM_FILE: &str = "kem.key";

/// How strict loading is, and which backend the loaded keys run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyPolicy {
    /// In production a data folder writable by others is an error; in
    /// development it is a warning.
    pub production: bool,
    /// The backend the loaded or created keys run on.
    pub backend: Backend,
}

/// The node's long-term keys.
#[derive(Debug)]
pub struct NodeKeys {
    /// The ML-DSA-87 identity, from `identity.key`: the node id and every signature.
    pub identity: Identity,
    /// The static ML-KEM-1024 key pair, from `kem.key`.
    pub kem: KemKeyPair,
}

/// What [`load_or_create`] found or made.
#[derive(Debug)]
pub struct LoadedKeys {
    /// The keys, ready to use.
    pub keys: NodeKeys,
    /// `identity.key` did not exist and was created (a new node id).
    pub created_identity: bool,
    /// `kem.key` did not exist and was created.
    pub created_kem: bool,
    /// Problems that did not stop loading (development mode only); for the caller to log.
    pub warnings: Vec<String>,
}

/// Loading or creating the keys failed. Every message names the path and the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// An existing key file is unsafe or damaged; it was left as it is.
    #[error("refusing key file {}: {problem}; {fix}", path.display())]
    Refused {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        problem: KeyFileProblem,
        /// What a person should do, as a sentence.
        fix: String,
    },
    /// In production, a data folder that others may write to (they could replace the keys).
    #[error("data folder {}: {problem}; {fix}", path.display())]
    UnsafeDataDir {
        /// The data folder.
        path: PathBuf,
        /// What is wrong with it, as a sentence.
        problem: String,
        /// What a person should do, as a sentence.
        fix: String,
    },
    /// Reading, writing or creating a file or the folder failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the operating system reported.
        source: io::Error,
    },
    /// The key in a file could not be loaded on the backend, or a new one not made.
    #[error("key file {}: {source}", path.display())]
    Crypto {
        /// The key file.
        path: PathBuf,
        /// What the backend reported.
        source: CryptoError,
    },
}

/// Loads `identity.key` and `kem.key` from `data_dir`, creating whichever is
/// missing (and the folder itself, mode 0700). An existing file is never
/// overwritten: one that is too open, damaged or of an unknown version stops
/// loading with an error that says what to do.
pub fn load_or_create(data_dir: &Path, policy: KeyPolicy) -> Result<LoadedKeys, KeyFileError> {
    let mut warnings = Vec::new();
    prepare_data_dir(data_dir, policy.production, &mut warnings)?;

    let (identity, created_identity) = load_or_create_key(
        data_dir,
        IDENTITY_FILE,
        KeyKind::DsaSeed,
        |path, seed| {
            let seed = <&[u8; DSA_SEED_LEN]>::try_from(seed)
                .map_err(|_| refused(path, KeyFileProblem::InvalidKey))?;
            Identity::from_seed_with(policy.backend, seed).map_err(|source| crypto(path, source))
        },
        |path| {
            let identity =
                Identity::generate_with(policy.backend).map_err(|source| crypto(path, source))?;
            let seed = Zeroizing::new(identity.seed().to_vec());
            Ok((identity, seed))
        },
    )?;

    let (kem, created_kem) = load_or_create_key(
        data_dir,
        KEM_FILE,
        KeyKind::KemExpanded,
        |path, dk| {
            KemKeyPair::from_expanded(policy.backend, dk).map_err(|e| match e {
                CryptoError::InvalidKey(_) | CryptoError::Length { .. } => {
                    refused(path, KeyFileProblem::InvalidKey)
                }
                source => crypto(path, source),
            })
        },
        |path| {
            let kem =
                KemKeyPair::generate(policy.backend).map_err(|source| crypto(path, source))?;
            let dk = kem.to_expanded().map_err(|source| crypto(path, source))?;
            Ok((kem, dk))
        },
    )?;

    Ok(LoadedKeys {
        keys: NodeKeys { identity, kem },
        created_identity,
        created_kem,
        warnings,
    })
}

/// The key in `dir/name`, loaded with `load`; or, when there is no file, a
/// new one from `generate` (key and secret to store), written to the file.
/// Returns the key and whether this call created the file.
///
/// Another process may create the same file between our read and our write
/// (`pqnode id` run while the node starts, two nodes started on one folder).
/// Then its file wins and is loaded: there is one key per file, whoever made
/// it, and a file is complete once it has its name.
fn load_or_create_key<K>(
    dir: &Path,
    name: &str,
    kind: KeyKind,
    load: impl Fn(&Path, &[u8]) -> Result<K, KeyFileError>,
    generate: impl FnOnce(&Path) -> Result<(K, Zeroizing<Vec<u8>>), KeyFileError>,
) -> Result<(K, bool), KeyFileError> {
    let path = dir.join(name);
    if let Some(secret) = read(&path, kind)? {
        return Ok((load(&path, &secret)?, false));
    }
    let (key, secret) = generate(&path)?;
    let io_error = |source| KeyFileError::Io {
        path: path.clone(),
        source,
    };
    match keyfile::create(dir, name, kind, &secret).map_err(io_error)? {
        Created::Written => Ok((key, true)),
        Created::AlreadyExists => {
            let secret = read(&path, kind)?.ok_or_else(|| {
                // Someone created the file and removed it again at once: do
                // not guess which key the node should have.
                io_error(io::Error::new(
                    io::ErrorKind::NotFound,
                    "another process created this key file and removed it again; start again",
                ))
            })?;
            Ok((load(&path, &secret)?, false))
        }
    }
}

fn prepare_data_dir(
    dir: &Path,
    production: bool,
    warnings: &mut Vec<String>,
) -> Result<(), KeyFileError> {
    let io_error = |source| KeyFileError::Io {
        path: dir.to_owned(),
        source,
    };
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_error)?;
    let meta = fs::metadata(dir).map_err(io_error)?;
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        let problem = format!(
            "mode {mode:04o} lets group or others write to it, so they could replace the node's keys"
        );
        let fix = format!("run `chmod go-w {}`", dir.display());
        if production {
            return Err(KeyFileError::UnsafeDataDir {
                path: dir.to_owned(),
                problem,
                fix,
            });
        }
        warnings.push(format!("data folder {}: {problem}; {fix}", dir.display()));
    }
    Ok(())
}

fn read(path: &Path, kind: KeyKind) -> Result<Option<Zeroizing<Vec<u8>>>, KeyFileError> {
    keyfile::read(path, kind).map_err(|e| match e {
        KeyFileIoError::Refused(problem) => refused(path, problem),
        KeyFileIoError::Io(source) => KeyFileError::Io {
            path: path.to_owned(),
            source,
        },
    })
}

fn refused(path: &Path, problem: KeyFileProblem) -> KeyFileError {
    KeyFileError::Refused {
        fix: problem.fix(path),
        path: path.to_owned(),
        problem,
    }
}

fn crypto(path: &Path, source: CryptoError) -> KeyFileError {
    KeyFileError::Crypto {
        path: path.to_owned(),
        source,
    }
}
