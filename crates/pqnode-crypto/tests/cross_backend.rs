//! aws-lc-rs and RustCrypto must agree byte for byte: each is the other's oracle.
#![cfg(feature = "rustcrypto")]

use pqnode_crypto::{Backend, Identity, KEM_SEED_LEN, KemCiphertext, KemKeyPair};

const BOTH: [(Backend, Backend); 2] = [
    (Backend::AwsLc, Backend::RustCrypto),
    (Backend::RustCrypto, Backend::AwsLc),
];

#[test]
fn same_seed_same_identity() {
    for byte in [0u8, 1, 0x5a, 0xff] {
        let seed = [byte; 32];
        let aws = Identity::from_seed_with(Backend::AwsLc, &seed).unwrap();
        let rc = Identity::from_seed_with(Backend::RustCrypto, &seed).unwrap();
        assert_eq!(aws.public_key(), rc.public_key());
        assert_eq!(aws.node_id(), rc.node_id());
    }
}

#[test]
fn signatures_verify_across_backends() {
    for (signer, verifier) in BOTH {
        let identity = Identity::generate_with(signer).unwrap();
        let sig = identity.sign("pqnode/test/v1", b"cross-check").unwrap();
        let pk = identity.public_key();
        pk.verify_with(verifier, "pqnode/test/v1", b"cross-check", sig.as_bytes())
            .unwrap_or_else(|e| panic!("{signer} -> {verifier}: {e}"));
        assert!(
            pk.verify_with(verifier, "pqnode/test/v2", b"cross-check", sig.as_bytes())
                .is_err()
        );
        let mut tampered = sig.as_bytes().to_vec();
        tampered[2000] ^= 0x04;
        for backend in [signer, verifier] {
            assert!(
                pk.verify_with(backend, "pqnode/test/v1", b"cross-check", &tampered)
                    .is_err()
            );
        }
    }
}

#[test]
fn ciphertexts_decapsulate_across_backends() {
    for (encapsulator, decapsulator) in BOTH {
        let generated = KemKeyPair::generate(decapsulator).unwrap();
        let (ct, sent) = generated
            .public_key()
            .encapsulate_with(encapsulator)
            .unwrap();
        let received = generated.decapsulate(&ct).unwrap();
        assert_eq!(
            sent.as_bytes(),
            received.as_bytes(),
            "{encapsulator} -> {decapsulator}"
        );
    }
}

#[test]
fn expanded_keys_move_between_backends() {
    for (from, to) in BOTH {
        let original = KemKeyPair::generate(from).unwrap();
        let moved = KemKeyPair::from_expanded(to, &original.to_expanded().unwrap()).unwrap();
        assert_eq!(moved.public_key(), original.public_key());
        assert_eq!(
            moved.to_expanded().unwrap(),
            original.to_expanded().unwrap()
        );
        let (ct, sent) = original.public_key().encapsulate_with(from).unwrap();
        assert_eq!(moved.decapsulate(&ct).unwrap().as_bytes(), sent.as_bytes());
    }
}

#[test]
fn seeded_kem_keys_import_into_aws_lc() {
    let seed = [0x42u8; KEM_SEED_LEN];
    let rc = KemKeyPair::from_seed(Backend::RustCrypto, &seed).unwrap();
    let again = KemKeyPair::from_seed(Backend::RustCrypto, &seed).unwrap();
    assert_eq!(rc.public_key(), again.public_key());
    let aws = KemKeyPair::from_expanded(Backend::AwsLc, &rc.to_expanded().unwrap()).unwrap();
    assert_eq!(aws.public_key(), rc.public_key());
}

#[test]
fn implicit_rejection_agrees() {
    // A ciphertext that does not decrypt correctly must yield the same
    // pseudo-random secret J(z || c) on both backends.
    let aws = KemKeyPair::generate(Backend::AwsLc).unwrap();
    let rc = KemKeyPair::from_expanded(Backend::RustCrypto, &aws.to_expanded().unwrap()).unwrap();
    let (ct, sent) = aws.public_key().encapsulate().unwrap();
    let mut bytes = ct.as_bytes().to_vec();
    bytes[0] ^= 0x80;
    let tampered = KemCiphertext::from_bytes(&bytes).unwrap();
    let a = aws.decapsulate(&tampered).unwrap();
    let b = rc.decapsulate(&tampered).unwrap();
    assert_eq!(a.as_bytes(), b.as_bytes());
    assert_ne!(a.as_bytes(), sent.as_bytes());
}
