//! A classical TLS 1.3 stack (X25519 + Ed25519 raw public keys, AES-256-GCM)
//! built from the same rustls/quinn pieces: the peer our node must refuse in
//! tests, and the anchor our PQ configuration is compared with in benchmarks.

#![allow(dead_code)]

use std::sync::Arc;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, aws_lc_rs as awslc, verify_tls13_signature_with_raw_key};
use rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, SubjectPublicKeyInfoDer,
    UnixTime,
};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};

pub(crate) fn provider(kx: &'static dyn rustls::crypto::SupportedKxGroup) -> Arc<CryptoProvider> {
    Arc::new(CryptoProvider {
        kx_groups: vec![kx],
        cipher_suites: vec![awslc::cipher_suite::TLS13_AES_256_GCM_SHA384],
        ..awslc::default_provider()
    })
}

/// A fresh Ed25519 key as an RFC 7250 raw-key "certificate".
pub(crate) fn ed25519_key() -> Arc<CertifiedKey> {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8.as_ref().to_vec()));
    let key = awslc::sign::any_supported_type(&der).unwrap();
    let spki = key.public_key().unwrap().as_ref().to_vec();
    Arc::new(CertifiedKey::new(vec![CertificateDer::from(spki)], key))
}

fn initial() -> rustls::quic::Suite {
    awslc::cipher_suite::TLS13_AES_128_GCM_SHA256
        .tls13()
        .unwrap()
        .quic_suite()
        .unwrap()
}

/// A client with the given key-exchange group and an Ed25519 key that accepts any server key.
pub(crate) fn client_config(
    kx: &'static dyn rustls::crypto::SupportedKxGroup,
) -> quinn::ClientConfig {
    let mut c = rustls::ClientConfig::builder_with_provider(provider(kx))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyKey))
        .with_client_cert_resolver(Arc::new(
            rustls::client::AlwaysResolvesClientRawPublicKeys::new(ed25519_key()),
        ));
    c.alpn_protocols = vec![b"pqnode/1".to_vec()];
    c.enable_sni = false;
    c.resumption = rustls::client::Resumption::disabled();
    quinn::ClientConfig::new(Arc::new(
        QuicClientConfig::with_initial(Arc::new(c), initial()).unwrap(),
    ))
}

/// A classical server (X25519 + Ed25519) that accepts any client key.
pub(crate) fn server_config() -> quinn::ServerConfig {
    let mut s = rustls::ServerConfig::builder_with_provider(provider(awslc::kx_group::X25519))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_client_cert_verifier(Arc::new(AnyKey))
        .with_cert_resolver(Arc::new(
            rustls::server::AlwaysResolvesServerRawPublicKeys::new(ed25519_key()),
        ));
    s.alpn_protocols = vec![b"pqnode/1".to_vec()];
    s.send_tls13_tickets = 0;
    s.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    quinn::ServerConfig::with_crypto(Arc::new(
        QuicServerConfig::with_initial(Arc::new(s), initial()).unwrap(),
    ))
}

/// Accepts any raw public key with a valid handshake signature.
#[derive(Debug)]
struct AnyKey;

fn verify13(
    m: &[u8],
    c: &CertificateDer<'_>,
    d: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, Error> {
    verify_tls13_signature_with_raw_key(
        m,
        &SubjectPublicKeyInfoDer::from(c.as_ref()),
        d,
        &awslc::default_provider().signature_verification_algorithms,
    )
}

fn schemes() -> Vec<SignatureScheme> {
    awslc::default_provider()
        .signature_verification_algorithms
        .supported_schemes()
}

impl ServerCertVerifier for AnyKey {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Err(Error::General("TLS 1.2".into()))
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify13(m, c, d)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        schemes()
    }
    fn requires_raw_public_keys(&self) -> bool {
        true
    }
}

impl ClientCertVerifier for AnyKey {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        Ok(ClientCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Err(Error::General("TLS 1.2".into()))
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify13(m, c, d)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        schemes()
    }
    fn requires_raw_public_keys(&self) -> bool {
        true
    }
}
