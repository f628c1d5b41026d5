//! Signed records: what the DHT stores.
//!
//! Two kinds:
//! - [`Record`]: one value per key, bound to its publisher. The key is derived from the
//!   publisher's id and a name ([`record_key`]), so nobody else can write under it; a higher
//!   `seq` replaces a lower one.
//! - [`ProviderRecord`]: many publishers per key (presence, topic membership), one entry per
//!   publisher, each with its own expiry.
//!
//! Both are signed with ML-DSA-87 over a fixed big-endian encoding of their fields, under a
//! domain label of their own, and every node verifies them before storing or returning them.
//! The TTL counts from the moment a node stores the record; the publisher's periodic
//! republish renews it. A copy also travels with its absolute expiry (unix milliseconds,
//! [`Record::expires_unix_ms`]): not signed, since it is the sender's view of when its copy
//! ends, but a node never keeps a copy past it, nor past its own `now + ttl`. So a storer
//! that hands a record on (storer republish, read repair) never extends its life, and a
//! record whose publisher stops republishing disappears within one TTL of its last renewal
//! wherever it went, as long as the nodes' clocks roughly agree. A node that lies about
//! the expiry can make its own copies live up to one TTL from when each is stored, which a
//! replay of the signed record could do anyway; to withdraw a value early, publish a
//! higher `seq` (for example with an empty value).

use std::time::Duration;

use pqnode_crypto::{DsaPublicKey, Identity, NodeId, Signature};
use sha2::{Digest, Sha256};

/// A point in the key space: keys and node ids share the 160-bit XOR metric.
pub type Key = NodeId;

/// Largest record value.
pub const MAX_VALUE_LEN: usize = 16 * 1024;
/// Largest record name.
pub const MAX_NAME_LEN: usize = 64;
/// Largest provider value no validator vouches for (an address, a topic's members).
pub const MAX_PROVIDER_VALUE_LEN: usize = 1024;
/// Largest provider value a [`crate::ProviderValidator`] may accept: room for a peer's own
/// ML-DSA-87 key and signature (about 7.3 KiB), such as a signaling presence proof.
pub const MAX_VALIDATED_PROVIDER_VALUE_LEN: usize = 8 * 1024;
/// Longest lifetime a node grants a record.
pub const MAX_TTL: Duration = Duration::from_secs(48 * 3600);

/// Signature domain of [`Record`].
pub const RECORD_DOMAIN: &str = "pqnode/dht-record/v1";
/// Signature domain of [`ProviderRecord`].
pub const PROVIDER_DOMAIN: &str = "pqnode/dht-provider/v1";
const RECORD_KEY_DOMAIN: &[u8] = b"pqnode/dht-record-key/v1\0";

/// Why a record or provider entry could not be built, or was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The value is over its cap: [`MAX_VALUE_LEN`] for a record; for a provider entry
    /// [`MAX_VALIDATED_PROVIDER_VALUE_LEN`], or [`MAX_PROVIDER_VALUE_LEN`] if no validator
    /// vouches for it. Its length in bytes.
    #[error("value of {0} bytes exceeds the limit")]
    ValueTooLong(usize),
    /// The name is over [`MAX_NAME_LEN`]; its length in bytes.
    #[error("name of {0} bytes exceeds the limit")]
    NameTooLong(usize),
    /// The TTL is under one second or over [`MAX_TTL`].
    #[error("ttl must be between 1 s and {} s", MAX_TTL.as_secs())]
    BadTtl,
    /// The publisher key or the signature does not have the size of an ML-DSA-87 one.
    #[error("malformed publisher key or signature")]
    Malformed,
    /// The record's key is not [`record_key`] of its publisher and name: someone else's key.
    #[error("key does not match the publisher and name")]
    KeyMismatch,
    /// The signature does not verify under the publisher's key: forged or altered.
    #[error("signature does not verify")]
    BadSignature,
    /// Our own identity could not sign.
    #[error("signing failed")]
    Sign,
    /// A [`crate::ProviderValidator`] recognised the entry and refused it.
    #[error("refused by its validator: {0}")]
    Refused(String),
}

/// The key of the record `name` published by `publisher`:
/// `SHA-256("pqnode/dht-record-key/v1" 0x00 publisher name)[..20]`.
pub fn record_key(publisher: &NodeId, name: &[u8]) -> Key {
    let digest = Sha256::new()
        .chain_update(RECORD_KEY_DOMAIN)
        .chain_update(publisher.as_bytes())
        .chain_update(name)
        .finalize();
    let mut key = [0u8; 20];
    key.copy_from_slice(&digest[..20]);
    NodeId::from_bytes(key)
}

/// A publisher-bound, signed value. Construct with [`Record::sign`] (publishing) or
/// [`Record::from_parts`] (decoding); check with [`Record::verify`].
///
/// Equality compares the signed fields only, not the unsigned expiry a copy travels with.
#[derive(Debug, Clone)]
pub struct Record {
    key: Key,
    name: Vec<u8>,
    value: Vec<u8>,
    publisher: DsaPublicKey,
    seq: u64,
    ttl: Duration,
    signature: Signature,
    expires_unix_ms: Option<u64>,
}

impl PartialEq for Record {
    fn eq(&self, other: &Self) -> bool {
        (
            &self.key,
            &self.name,
            &self.value,
            &self.publisher,
            self.seq,
            self.ttl,
            &self.signature,
        ) == (
            &other.key,
            &other.name,
            &other.value,
            &other.publisher,
            other.seq,
            other.ttl,
            &other.signature,
        )
    }
}

impl Eq for Record {}

impl Record {
    /// Signs a record named `name` with `identity`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use pqnode_crypto::Identity;
    /// # use pqnode_dht::{Record, record_key};
    /// let me = Identity::generate()?;
    /// let record = Record::sign(&me, b"presence", b"ws://198.51.100.7:3001", 1, Duration::from_secs(3600))?;
    /// assert_eq!(record.key(), &record_key(&me.node_id(), b"presence"));
    /// record.verify()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sign(
        identity: &Identity,
        name: &[u8],
        value: &[u8],
        seq: u64,
        ttl: Duration,
    ) -> Result<Self, RecordError> {
        check_common(name.len(), value.len(), MAX_VALUE_LEN, ttl)?;
        let key = record_key(&identity.node_id(), name);
        let ttl = Duration::from_secs(ttl.as_secs());
        let signature = identity
            .sign(RECORD_DOMAIN, &record_message(&key, name, value, seq, ttl))
            .map_err(|_| RecordError::Sign)?;
        Ok(Self {
            key,
            name: name.to_vec(),
            value: value.to_vec(),
            publisher: identity.public_key().clone(),
            seq,
            ttl,
            signature,
            expires_unix_ms: None,
        })
    }

    /// Assembles a record received from the network, checking sizes only.
    pub fn from_parts(
        key: Key,
        name: Vec<u8>,
        value: Vec<u8>,
        publisher: &[u8],
        seq: u64,
        ttl_secs: u32,
        signature: &[u8],
    ) -> Result<Self, RecordError> {
        let ttl = Duration::from_secs(u64::from(ttl_secs));
        check_common(name.len(), value.len(), MAX_VALUE_LEN, ttl)?;
        Ok(Self {
            key,
            name,
            value,
            publisher: DsaPublicKey::from_bytes(publisher).map_err(|_| RecordError::Malformed)?,
            seq,
            ttl,
            signature: Signature::from_bytes(signature).map_err(|_| RecordError::Malformed)?,
            expires_unix_ms: None,
        })
    }

    /// This copy with the absolute expiry (unix milliseconds) it travels with, or none.
    pub fn with_expiry(mut self, expires_unix_ms: Option<u64>) -> Self {
        self.expires_unix_ms = expires_unix_ms;
        self
    }

    /// When the node that sent this copy stops keeping it (unix milliseconds), if it said:
    /// unsigned, so only ever used to shorten a copy's life (see the module docs).
    pub fn expires_unix_ms(&self) -> Option<u64> {
        self.expires_unix_ms
    }

    /// Checks that the key belongs to the publisher and name, and the signature.
    pub fn verify(&self) -> Result<(), RecordError> {
        if record_key(&self.publisher.node_id(), &self.name) != self.key {
            return Err(RecordError::KeyMismatch);
        }
        let message = record_message(&self.key, &self.name, &self.value, self.seq, self.ttl);
        self.publisher
            .verify(RECORD_DOMAIN, &message, self.signature.as_bytes())
            .map_err(|_| RecordError::BadSignature)
    }

    /// Where the record is stored: [`record_key`] of the publisher and the name.
    pub fn key(&self) -> &Key {
        &self.key
    }
    /// The publisher's name for the record, at most [`MAX_NAME_LEN`] bytes.
    pub fn name(&self) -> &[u8] {
        &self.name
    }
    /// The payload, at most [`MAX_VALUE_LEN`] bytes.
    pub fn value(&self) -> &[u8] {
        &self.value
    }
    /// The ML-DSA-87 key the record is signed with.
    pub fn publisher(&self) -> &DsaPublicKey {
        &self.publisher
    }
    /// The version: a copy with a higher `seq` replaces a lower one.
    pub fn seq(&self) -> u64 {
        self.seq
    }
    /// How long a node keeps the record from when it stores it, in whole seconds.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }
    /// The publisher's ML-DSA-87 signature over the signed fields.
    pub fn signature(&self) -> &Signature {
        &self.signature
    }
}

/// One publisher's signed entry under a shared key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRecord {
    key: Key,
    value: Vec<u8>,
    publisher: DsaPublicKey,
    seq: u64,
    ttl: Duration,
    signature: Signature,
}

impl ProviderRecord {
    /// Signs `identity`'s entry under `key` (for example the hash of a topic).
    pub fn sign(
        identity: &Identity,
        key: Key,
        value: &[u8],
        seq: u64,
        ttl: Duration,
    ) -> Result<Self, RecordError> {
        check_common(0, value.len(), MAX_VALIDATED_PROVIDER_VALUE_LEN, ttl)?;
        let ttl = Duration::from_secs(ttl.as_secs());
        let signature = identity
            .sign(PROVIDER_DOMAIN, &provider_message(&key, value, seq, ttl))
            .map_err(|_| RecordError::Sign)?;
        Ok(Self {
            key,
            value: value.to_vec(),
            publisher: identity.public_key().clone(),
            seq,
            ttl,
            signature,
        })
    }

    /// Assembles an entry received from the network, checking sizes only.
    pub fn from_parts(
        key: Key,
        value: Vec<u8>,
        publisher: &[u8],
        seq: u64,
        ttl_secs: u32,
        signature: &[u8],
    ) -> Result<Self, RecordError> {
        let ttl = Duration::from_secs(u64::from(ttl_secs));
        check_common(0, value.len(), MAX_VALIDATED_PROVIDER_VALUE_LEN, ttl)?;
        Ok(Self {
            key,
            value,
            publisher: DsaPublicKey::from_bytes(publisher).map_err(|_| RecordError::Malformed)?,
            seq,
            ttl,
            signature: Signature::from_bytes(signature).map_err(|_| RecordError::Malformed)?,
        })
    }

    /// Checks the signature. Any key is allowed: unlike a record's, it is not bound to the
    /// publisher.
    pub fn verify(&self) -> Result<(), RecordError> {
        let message = provider_message(&self.key, &self.value, self.seq, self.ttl);
        self.publisher
            .verify(PROVIDER_DOMAIN, &message, self.signature.as_bytes())
            .map_err(|_| RecordError::BadSignature)
    }

    /// The shared key the entry is filed under.
    pub fn key(&self) -> &Key {
        &self.key
    }
    /// The payload: at most [`MAX_PROVIDER_VALUE_LEN`] bytes unless a validator vouches for it,
    /// then [`MAX_VALIDATED_PROVIDER_VALUE_LEN`].
    pub fn value(&self) -> &[u8] {
        &self.value
    }
    /// The ML-DSA-87 key the entry is signed with; one entry per publisher and key.
    pub fn publisher(&self) -> &DsaPublicKey {
        &self.publisher
    }
    /// The publisher's node id (hashes the key: cache it if called often).
    pub fn publisher_id(&self) -> NodeId {
        self.publisher.node_id()
    }
    /// The version: an entry with a higher `seq` replaces the same publisher's lower one.
    pub fn seq(&self) -> u64 {
        self.seq
    }
    /// How long a node keeps the entry from when it stores it, in whole seconds.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }
    /// The publisher's ML-DSA-87 signature over the signed fields.
    pub fn signature(&self) -> &Signature {
        &self.signature
    }
}

fn check_common(
    name_len: usize,
    value_len: usize,
    max_value: usize,
    ttl: Duration,
) -> Result<(), RecordError> {
    if name_len > MAX_NAME_LEN {
        return Err(RecordError::NameTooLong(name_len));
    }
    if value_len > max_value {
        return Err(RecordError::ValueTooLong(value_len));
    }
    if ttl < Duration::from_secs(1) || ttl > MAX_TTL {
        return Err(RecordError::BadTtl);
    }
    Ok(())
}

/// `key || u16 name_len || name || u32 value_len || value || u64 seq || u32 ttl_secs`,
/// big-endian. Lengths are capped above, so the casts cannot truncate.
fn record_message(key: &Key, name: &[u8], value: &[u8], seq: u64, ttl: Duration) -> Vec<u8> {
    let mut m = Vec::with_capacity(20 + 2 + name.len() + 4 + value.len() + 12);
    m.extend_from_slice(key.as_bytes());
    m.extend_from_slice(&(name.len() as u16).to_be_bytes());
    m.extend_from_slice(name);
    m.extend_from_slice(&(value.len() as u32).to_be_bytes());
    m.extend_from_slice(value);
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(&(ttl.as_secs() as u32).to_be_bytes());
    m
}

/// `key || u32 value_len || value || u64 seq || u32 ttl_secs`, big-endian.
fn provider_message(key: &Key, value: &[u8], seq: u64, ttl: Duration) -> Vec<u8> {
    let mut m = Vec::with_capacity(20 + 4 + value.len() + 12);
    m.extend_from_slice(key.as_bytes());
    m.extend_from_slice(&(value.len() as u32).to_be_bytes());
    m.extend_from_slice(value);
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(&(ttl.as_secs() as u32).to_be_bytes());
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(byte: u8) -> Identity {
        Identity::from_seed(&[byte; 32]).unwrap()
    }

    #[test]
    fn signed_records_verify_and_tampering_is_caught() {
        let me = identity(1);
        let r = Record::sign(&me, b"n", b"v", 7, Duration::from_secs(60)).unwrap();
        r.verify().unwrap();
        let rebuilt = |value: &[u8], seq: u64, key: Key| {
            Record::from_parts(
                key,
                b"n".to_vec(),
                value.to_vec(),
                r.publisher().as_bytes(),
                seq,
                60,
                r.signature().as_bytes(),
            )
            .unwrap()
        };
        assert_eq!(rebuilt(b"v", 7, *r.key()).verify(), Ok(()));
        assert_eq!(
            rebuilt(b"w", 7, *r.key()).verify(),
            Err(RecordError::BadSignature)
        );
        assert_eq!(
            rebuilt(b"v", 8, *r.key()).verify(),
            Err(RecordError::BadSignature)
        );
        let other_key = record_key(&identity(2).node_id(), b"n");
        assert_eq!(
            rebuilt(b"v", 7, other_key).verify(),
            Err(RecordError::KeyMismatch)
        );
    }

    #[test]
    fn a_publisher_cannot_sign_under_another_publishers_key() {
        // Re-signing someone else's key with our own key fails the key derivation check.
        let victim = identity(3);
        let attacker = identity(4);
        let honest = Record::sign(&attacker, b"n", b"v", 1, Duration::from_secs(60)).unwrap();
        let forged = Record::from_parts(
            record_key(&victim.node_id(), b"n"),
            b"n".to_vec(),
            b"v".to_vec(),
            honest.publisher().as_bytes(),
            1,
            60,
            honest.signature().as_bytes(),
        )
        .unwrap();
        assert_eq!(forged.verify(), Err(RecordError::KeyMismatch));
    }

    #[test]
    fn caps_are_enforced() {
        let me = identity(5);
        let big = vec![0u8; MAX_VALUE_LEN + 1];
        assert_eq!(
            Record::sign(&me, b"n", &big, 1, Duration::from_secs(60)),
            Err(RecordError::ValueTooLong(big.len()))
        );
        assert_eq!(
            Record::sign(&me, &[0; 65], b"", 1, Duration::from_secs(60)),
            Err(RecordError::NameTooLong(65))
        );
        assert_eq!(
            Record::sign(&me, b"n", b"", 1, Duration::ZERO),
            Err(RecordError::BadTtl)
        );
        assert_eq!(
            Record::sign(&me, b"n", b"", 1, MAX_TTL + Duration::from_secs(1)),
            Err(RecordError::BadTtl)
        );
        let key = record_key(&me.node_id(), b"n");
        assert_eq!(
            Record::from_parts(key, vec![], vec![], &[0; 10], 1, 60, &[0; 10]),
            Err(RecordError::Malformed)
        );
    }

    #[test]
    fn provider_records_verify_and_tampering_is_caught() {
        let me = identity(6);
        let topic = NodeId::from_bytes([9; 20]);
        let p = ProviderRecord::sign(&me, topic, b"addr", 2, Duration::from_secs(60)).unwrap();
        p.verify().unwrap();
        let tampered = ProviderRecord::from_parts(
            topic,
            b"addx".to_vec(),
            p.publisher().as_bytes(),
            2,
            60,
            p.signature().as_bytes(),
        )
        .unwrap();
        assert_eq!(tampered.verify(), Err(RecordError::BadSignature));
        assert_eq!(p.publisher_id(), me.node_id());
    }
}
