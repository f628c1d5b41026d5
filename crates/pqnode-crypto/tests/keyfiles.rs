//! Key files in the data folder: creation, reloading, and refusing bad files
//! without touching them.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use pqnode_crypto::{
    Backend, IDENTITY_FILE, KEM_FILE, KeyFileError, KeyFileProblem, KeyPolicy, load_or_create,
};
use sha2::{Digest, Sha256};

const DEV: KeyPolicy = KeyPolicy {
    production: false,
    backend: Backend::AwsLc,
};
const PRODUCTION: KeyPolicy = KeyPolicy {
    production: true,
    backend: Backend::AwsLc,
};

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// A data folder with keys in it, as a first start leaves it.
fn initialised() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    chmod(dir.path(), 0o700);
    load_or_create(dir.path(), DEV).unwrap();
    dir
}

/// Loading must fail with `expected`, naming the file, and leave it as it was.
fn assert_refused(dir: &Path, file: &str, expected: fn(&KeyFileProblem) -> bool) {
    let path = dir.join(file);
    let before = fs::read(&path).unwrap();
    let mode_before = mode(&path);
    let err = load_or_create(dir, DEV).unwrap_err();
    match &err {
        KeyFileError::Refused {
            path: p, problem, ..
        } => {
            assert_eq!(p, &path);
            assert!(expected(problem), "unexpected problem: {problem:?}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    assert_eq!(fs::read(&path).unwrap(), before, "{file} was modified");
    assert_eq!(mode(&path), mode_before);
}

#[test]
fn first_start_creates_private_files_and_restart_keeps_the_node_id() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = load_or_create(&data, DEV).unwrap();
    assert!(first.created_identity && first.created_kem);
    assert!(first.warnings.is_empty(), "{:?}", first.warnings);
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join(IDENTITY_FILE)), 0o600);
    assert_eq!(mode(&data.join(KEM_FILE)), 0o600);
    let names: Vec<_> = fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "temporary files left behind: {names:?}");

    let identity_bytes = fs::read(data.join(IDENTITY_FILE)).unwrap();
    let again = load_or_create(&data, DEV).unwrap();
    assert!(!again.created_identity && !again.created_kem);
    assert_eq!(again.keys.identity.node_id(), first.keys.identity.node_id());
    assert_eq!(again.keys.kem.public_key(), first.keys.kem.public_key());
    assert_eq!(fs::read(data.join(IDENTITY_FILE)).unwrap(), identity_bytes);
}

#[test]
fn files_load_on_either_backend() {
    let dir = initialised();
    let on_aws = load_or_create(dir.path(), DEV).unwrap();
    for backend in Backend::available() {
        let policy = KeyPolicy { backend, ..DEV };
        let loaded = load_or_create(dir.path(), policy).unwrap();
        assert_eq!(loaded.keys.identity.backend(), backend);
        assert_eq!(
            loaded.keys.identity.node_id(),
            on_aws.keys.identity.node_id()
        );
        assert_eq!(loaded.keys.kem.public_key(), on_aws.keys.kem.public_key());
    }
}

#[test]
fn readable_by_others_is_refused_with_the_fix() {
    for file in [IDENTITY_FILE, KEM_FILE] {
        let dir = initialised();
        let path = dir.path().join(file);
        chmod(&path, 0o644);
        assert_refused(dir.path(), file, |p| {
            matches!(p, KeyFileProblem::TooOpen { mode: 0o644 })
        });
        let message = load_or_create(dir.path(), DEV).unwrap_err().to_string();
        assert!(
            message.contains(&format!("chmod 600 {}", path.display())),
            "{message}"
        );
    }
}

#[test]
fn group_readable_is_refused_too() {
    let dir = initialised();
    chmod(&dir.path().join(IDENTITY_FILE), 0o640);
    assert_refused(dir.path(), IDENTITY_FILE, |p| {
        matches!(p, KeyFileProblem::TooOpen { .. })
    });
}

#[test]
fn truncated_files_are_refused_and_left_alone() {
    for file in [IDENTITY_FILE, KEM_FILE] {
        let dir = initialised();
        let path = dir.path().join(file);
        let bytes = fs::read(&path).unwrap();
        for len in [0, 3, 20, bytes.len() - 1] {
            fs::write(&path, &bytes[..len]).unwrap();
            assert_refused(dir.path(), file, |p| {
                matches!(p, KeyFileProblem::WrongLength { .. })
            });
        }
    }
}

#[test]
fn corrupted_files_are_refused_and_left_alone() {
    for file in [IDENTITY_FILE, KEM_FILE] {
        let dir = initialised();
        let path = dir.path().join(file);
        let mut bytes = fs::read(&path).unwrap();
        bytes[20] ^= 0x10;
        fs::write(&path, &bytes).unwrap();
        assert_refused(dir.path(), file, |p| *p == KeyFileProblem::ChecksumMismatch);
    }
}

#[test]
fn unknown_version_is_refused_and_left_alone() {
    let dir = initialised();
    let path = dir.path().join(IDENTITY_FILE);
    let mut bytes = fs::read(&path).unwrap();
    bytes[4] = 9;
    fs::write(&path, &bytes).unwrap();
    assert_refused(dir.path(), IDENTITY_FILE, |p| {
        *p == KeyFileProblem::UnknownVersion(9)
    });
}

#[test]
fn foreign_file_is_refused() {
    let dir = initialised();
    fs::write(dir.path().join(KEM_FILE), b"-----BEGIN PRIVATE KEY-----\n").unwrap();
    assert_refused(dir.path(), KEM_FILE, |p| *p == KeyFileProblem::NotAKeyFile);
}

#[test]
fn swapped_files_are_refused() {
    let dir = initialised();
    let identity = fs::read(dir.path().join(IDENTITY_FILE)).unwrap();
    fs::write(dir.path().join(KEM_FILE), &identity).unwrap();
    assert_refused(dir.path(), KEM_FILE, |p| {
        matches!(p, KeyFileProblem::WrongAlgorithm { .. })
    });
}

#[test]
fn well_formed_file_with_an_invalid_kem_key_is_refused() {
    let dir = initialised();
    let path = dir.path().join(KEM_FILE);
    let bytes = fs::read(&path).unwrap();
    // Flip a bit of the embedded ek and re-seal the checksum: only the
    // FIPS 203 H(ek) check can catch this.
    let mut body = bytes[..bytes.len() - 32].to_vec();
    body[8 + 1536 + 5] ^= 0x01;
    let checksum = Sha256::digest(&body);
    body.extend_from_slice(&checksum);
    fs::write(&path, &body).unwrap();
    assert_refused(dir.path(), KEM_FILE, |p| *p == KeyFileProblem::InvalidKey);
}

#[test]
fn symlinks_are_not_followed() {
    let dir = initialised();
    let path = dir.path().join(IDENTITY_FILE);
    let elsewhere = dir.path().join("elsewhere.key");
    fs::rename(&path, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
    let err = load_or_create(dir.path(), DEV).unwrap_err();
    assert!(
        matches!(
            err,
            KeyFileError::Refused {
                problem: KeyFileProblem::NotARegularFile,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn missing_kem_key_is_created_next_to_an_existing_identity() {
    let dir = initialised();
    let first = load_or_create(dir.path(), DEV).unwrap();
    fs::remove_file(dir.path().join(KEM_FILE)).unwrap();
    let again = load_or_create(dir.path(), DEV).unwrap();
    assert!(!again.created_identity && again.created_kem);
    assert_eq!(again.keys.identity.node_id(), first.keys.identity.node_id());
    assert_ne!(again.keys.kem.public_key(), first.keys.kem.public_key());
}

#[test]
fn data_folder_writable_by_others_fails_in_production_and_warns_in_development() {
    let dir = tempfile::tempdir().unwrap();
    chmod(dir.path(), 0o777);
    let err = load_or_create(dir.path(), PRODUCTION).unwrap_err();
    assert!(matches!(err, KeyFileError::UnsafeDataDir { .. }), "{err:?}");
    assert!(err.to_string().contains("chmod go-w"), "{err}");
    assert!(
        fs::read_dir(dir.path()).unwrap().next().is_none(),
        "keys were written into an unsafe folder"
    );

    let loaded = load_or_create(dir.path(), DEV).unwrap();
    assert_eq!(loaded.warnings.len(), 1);
    assert!(loaded.warnings[0].contains(&dir.path().display().to_string()));
}

/// `pqnode id` run while the node starts: several processes find no key
/// file and create one at the same moment. Every one of them must end up
/// with the key that is on disk, and exactly one of them made it.
#[test]
fn concurrent_first_starts_agree_on_the_keys_on_disk() {
    const RACERS: usize = 6;
    for _round in 0..10 {
        let dir = tempfile::tempdir().unwrap();
        let barrier = std::sync::Barrier::new(RACERS);
        let loaded: Vec<_> = std::thread::scope(|s| {
            let racers: Vec<_> = (0..RACERS)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        load_or_create(dir.path(), DEV)
                    })
                })
                .collect();
            racers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        let loaded: Vec<_> = loaded
            .into_iter()
            .map(|r| r.unwrap_or_else(|e| panic!("a concurrent start failed: {e}")))
            .collect();
        let on_disk = load_or_create(dir.path(), DEV).unwrap();
        assert!(!on_disk.created_identity && !on_disk.created_kem);
        for keys in &loaded {
            assert_eq!(
                keys.keys.identity.node_id(),
                on_disk.keys.identity.node_id()
            );
            assert_eq!(keys.keys.kem.public_key(), on_disk.keys.kem.public_key());
        }
        assert_eq!(loaded.iter().filter(|k| k.created_identity).count(), 1);
        assert_eq!(loaded.iter().filter(|k| k.created_kem).count(), 1);
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "temporary files left behind: {names:?}");
    }
}
