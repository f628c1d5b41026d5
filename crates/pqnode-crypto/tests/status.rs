//! The crypto component as the API sees it.

use pqnode_crypto::{Backend, Crypto, CryptoStatus, KeyPolicy};
use pqnode_health::Status;
use serde_json::{Value, json};

fn start(backend: Backend, production: bool) -> (tempfile::TempDir, Crypto) {
    let dir = tempfile::tempdir().unwrap();
    let policy = KeyPolicy {
        production,
        backend,
    };
    let crypto = Crypto::start(&dir.path().join("data"), policy).unwrap();
    (dir, crypto)
}

#[test]
fn status_reports_the_keys_in_use() {
    for backend in Backend::available() {
        let (_dir, crypto) = start(backend, true);
        assert!(crypto.is_initialized());
        let status = serde_json::to_value(crypto.status()).unwrap();
        assert_eq!(
            status,
            json!({
                "initialized": true,
                "algorithm": "Kyber1024-Dilithium5",
                "kem": "ML-KEM-1024",
                "signature": "ML-DSA-87",
                "keyPairs": 2,
                "kyberKeySize": 1568,
                "dilithiumKeySize": 2592,
                "signatureSize": 4627,
                "backend": backend.name(),
                "nodeId": crypto.node_id().to_hex(),
                "production": true,
            })
        );
        assert_eq!(crypto.health().status, Status::Pass);
    }
}

#[test]
fn status_and_debug_hold_no_secret() {
    let (_dir, crypto) = start(Backend::AwsLc, false);
    let seed = hex::encode(crypto.identity().seed().as_ref());
    let dk = crypto.kem().to_expanded().unwrap();
    let dk_prefix = hex::encode(&dk[..32]);
    let shown = [
        serde_json::to_string(&crypto.status()).unwrap(),
        format!("{crypto:?}"),
        format!("{:?}", crypto.status()),
    ];
    for text in shown {
        let lower = text.to_lowercase();
        assert!(!lower.contains(&seed), "seed leaked: {text}");
        assert!(!lower.contains(&dk_prefix), "KEM secret leaked: {text}");
    }
}

#[test]
fn warnings_make_health_warn() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let crypto = Crypto::start(dir.path(), KeyPolicy::default()).unwrap();
    assert!(crypto.is_initialized());
    assert_eq!(crypto.warnings().len(), 1);
    assert_eq!(crypto.health().status, Status::Warn);
}

#[test]
fn unavailable_status_still_answers() {
    let status = CryptoStatus::unavailable(Backend::AwsLc, false, "refusing key file x");
    let value: Value = serde_json::to_value(&status).unwrap();
    assert_eq!(value["initialized"], false);
    assert_eq!(value["keyPairs"], 0);
    assert_eq!(value["kyberKeySize"], Value::Null);
    assert_eq!(value["error"], "refusing key file x");
}
