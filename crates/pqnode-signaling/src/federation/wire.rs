//! The federation's messages between nodes, as protobuf (`proto/federation.proto`), like
//! the rest of pqnode's wire. Decoding checks every length and enum, so what comes out is
//! well-formed; whether a proof *verifies* is the receiver's next step
//! ([`PresenceProof::verify`]).

use bytes::Bytes;
use pqnode_crypto::{NODE_ID_LEN, NodeId};
use prost::Message;

use super::{DeliveryOutcome, MessageId, RelayEnvelope, Withdrawal};
use crate::presence::PresenceProof;
use crate::protocol::RelayKind;
use pqnode_crypto::{Algorithm, PEER_ID_LEN, PeerId};

mod pb {
    #![allow(clippy::all, missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/pqnode.signaling.v1.rs"));
}

/// A federation message that is not what the protocol allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    #[error("not a protobuf message: {0}")]
    Protobuf(String),
    #[error("{field} must be {expected} bytes")]
    Length {
        field: &'static str,
        expected: usize,
    },
    #[error("{0} is missing or unknown")]
    Unknown(&'static str),
}

pub fn encode_envelope(envelope: &RelayEnvelope) -> Bytes {
    pb::RelayEnvelope {
        msg_id: Bytes::copy_from_slice(&envelope.msg_id.0),
        origin: Bytes::copy_from_slice(envelope.origin.as_bytes()),
        from: Bytes::copy_from_slice(envelope.from.as_bytes()),
        from_proof: Some(proof_to_pb(&envelope.from_proof)),
        to: Bytes::copy_from_slice(envelope.to.as_bytes()),
        kind: kind_to_pb(envelope.kind) as i32,
        sid: envelope.sid.clone(),
        data: envelope.data.clone(),
    }
    .encode_to_vec()
    .into()
}

pub fn decode_envelope(bytes: &[u8]) -> Result<RelayEnvelope, WireError> {
    let m = pb::RelayEnvelope::decode(bytes).map_err(protobuf)?;
    Ok(RelayEnvelope {
        msg_id: MessageId(fixed(&m.msg_id, "msg_id")?),
        origin: NodeId::from_bytes(fixed(&m.origin, "origin")?),
        from: PeerId::from_bytes(fixed(&m.from, "from")?),
        from_proof: proof_from_pb(m.from_proof.ok_or(WireError::Unknown("from_proof"))?)?,
        to: PeerId::from_bytes(fixed(&m.to, "to")?),
        kind: kind_from_pb(m.kind)?,
        sid: m.sid,
        data: m.data,
    })
}

pub fn encode_delivery(outcome: DeliveryOutcome) -> Bytes {
    let outcome = match outcome {
        DeliveryOutcome::Delivered => pb::DeliveryOutcome::Delivered,
        DeliveryOutcome::Duplicate => pb::DeliveryOutcome::Duplicate,
        DeliveryOutcome::NotFound => pb::DeliveryOutcome::NotFound,
        DeliveryOutcome::Busy => pb::DeliveryOutcome::Busy,
    };
    pb::Delivery {
        outcome: outcome as i32,
    }
    .encode_to_vec()
    .into()
}

pub fn decode_delivery(bytes: &[u8]) -> Result<DeliveryOutcome, WireError> {
    let m = pb::Delivery::decode(bytes).map_err(protobuf)?;
    match pb::DeliveryOutcome::try_from(m.outcome) {
        Ok(pb::DeliveryOutcome::Delivered) => Ok(DeliveryOutcome::Delivered),
        Ok(pb::DeliveryOutcome::Duplicate) => Ok(DeliveryOutcome::Duplicate),
        Ok(pb::DeliveryOutcome::NotFound) => Ok(DeliveryOutcome::NotFound),
        Ok(pb::DeliveryOutcome::Busy) => Ok(DeliveryOutcome::Busy),
        _ => Err(WireError::Unknown("outcome")),
    }
}

/// The first bytes of a presence entry's value in the DHT: they tell it from other
/// provider entries before anything is parsed.
pub const PRESENCE_ENTRY_PREFIX: &[u8] = b"pqnode-presence/v1\0";

/// What a node's DHT entry under a peer's presence key says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresenceEntry {
    /// The peer is attached to the publishing node: its own proof.
    Present(PresenceProof),
    /// The peer left the publishing node.
    Withdrawn(Withdrawal),
}

pub fn encode_presence_entry(entry: &PresenceEntry) -> Vec<u8> {
    let entry = match entry {
        PresenceEntry::Present(proof) => pb::presence_entry::Entry::Present(proof_to_pb(proof)),
        PresenceEntry::Withdrawn(w) => pb::presence_entry::Entry::Withdrawn(withdrawal_to_pb(w)),
    };
    let body = pb::PresenceEntry { entry: Some(entry) }.encode_to_vec();
    [PRESENCE_ENTRY_PREFIX, &body].concat()
}

/// `None` if `value` is not a presence entry (another kind of provider entry).
pub fn decode_presence_entry(value: &[u8]) -> Option<Result<PresenceEntry, WireError>> {
    let body = value.strip_prefix(PRESENCE_ENTRY_PREFIX)?;
    let decoded = pb::PresenceEntry::decode(body)
        .map_err(protobuf)
        .and_then(|m| match m.entry {
            Some(pb::presence_entry::Entry::Present(p)) => {
                proof_from_pb(p).map(PresenceEntry::Present)
            }
            Some(pb::presence_entry::Entry::Withdrawn(w)) => {
                withdrawal_from_pb(&w).map(PresenceEntry::Withdrawn)
            }
            None => Err(WireError::Unknown("entry")),
        });
    Some(decoded)
}

/// A SIGNALING_WITHDRAW request.
pub fn encode_withdrawal(withdrawal: &Withdrawal) -> Bytes {
    withdrawal_to_pb(withdrawal).encode_to_vec().into()
}

pub fn decode_withdrawal(bytes: &[u8]) -> Result<Withdrawal, WireError> {
    withdrawal_from_pb(&pb::Withdrawal::decode(bytes).map_err(protobuf)?)
}

fn withdrawal_to_pb(w: &Withdrawal) -> pb::Withdrawal {
    pb::Withdrawal {
        peer_id: Bytes::copy_from_slice(w.peer.as_bytes()),
        ts_ms: w.ts_ms,
    }
}

fn withdrawal_from_pb(m: &pb::Withdrawal) -> Result<Withdrawal, WireError> {
    Ok(Withdrawal {
        peer: PeerId::from_bytes(fixed(&m.peer_id, "peer_id")?),
        ts_ms: m.ts_ms,
    })
}

fn proof_to_pb(proof: &PresenceProof) -> pb::PresenceProof {
    let algorithm = match proof.algorithm {
        Algorithm::Ed25519 => pb::Algorithm::Ed25519,
        Algorithm::MlDsa87 => pb::Algorithm::MlDsa87,
    };
    pb::PresenceProof {
        algorithm: algorithm as i32,
        public_key: Bytes::copy_from_slice(&proof.public_key),
        peer_id: Bytes::copy_from_slice(proof.peer_id.as_bytes()),
        node_id: Bytes::copy_from_slice(proof.node_id.as_bytes()),
        nonce: proof.nonce.clone(),
        ts_ms: proof.ts_ms,
        signature: Bytes::copy_from_slice(&proof.signature),
    }
}

fn proof_from_pb(m: pb::PresenceProof) -> Result<PresenceProof, WireError> {
    let algorithm = match pb::Algorithm::try_from(m.algorithm) {
        Ok(pb::Algorithm::Ed25519) => Algorithm::Ed25519,
        Ok(pb::Algorithm::MlDsa87) => Algorithm::MlDsa87,
        _ => return Err(WireError::Unknown("algorithm")),
    };
    let exact = |bytes: &Bytes, field: &'static str, expected: usize| {
        if bytes.len() == expected {
            Ok(bytes.to_vec())
        } else {
            Err(WireError::Length { field, expected })
        }
    };
    Ok(PresenceProof {
        public_key: exact(&m.public_key, "public_key", algorithm.public_key_len())?,
        signature: exact(&m.signature, "signature", algorithm.signature_len())?,
        algorithm,
        peer_id: PeerId::from_bytes(fixed(&m.peer_id, "peer_id")?),
        node_id: NodeId::from_bytes(fixed(&m.node_id, "node_id")?),
        nonce: m.nonce,
        ts_ms: m.ts_ms,
    })
}

fn kind_to_pb(kind: RelayKind) -> pb::RelayKind {
    match kind {
        RelayKind::Offer => pb::RelayKind::Offer,
        RelayKind::Answer => pb::RelayKind::Answer,
        RelayKind::Candidate => pb::RelayKind::Candidate,
        RelayKind::Bye => pb::RelayKind::Bye,
    }
}

fn kind_from_pb(kind: i32) -> Result<RelayKind, WireError> {
    match pb::RelayKind::try_from(kind) {
        Ok(pb::RelayKind::Offer) => Ok(RelayKind::Offer),
        Ok(pb::RelayKind::Answer) => Ok(RelayKind::Answer),
        Ok(pb::RelayKind::Candidate) => Ok(RelayKind::Candidate),
        Ok(pb::RelayKind::Bye) => Ok(RelayKind::Bye),
        _ => Err(WireError::Unknown("kind")),
    }
}

/// A fixed-length id field.
fn fixed<const N: usize>(bytes: &Bytes, field: &'static str) -> Result<[u8; N], WireError> {
    bytes
        .as_ref()
        .try_into()
        .map_err(|_| WireError::Length { field, expected: N })
}

fn protobuf(e: prost::DecodeError) -> WireError {
    WireError::Protobuf(e.to_string())
}

// The id lengths the fixed fields rely on.
const _: () = assert!(PEER_ID_LEN == 20 && NODE_ID_LEN == 20);

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope() -> RelayEnvelope {
        RelayEnvelope {
            msg_id: MessageId([7; 16]),
            origin: NodeId::from_bytes([1; 20]),
            from: PeerId::from_bytes([2; 20]),
            from_proof: PresenceProof {
                algorithm: Algorithm::Ed25519,
                public_key: vec![4; 32],
                peer_id: PeerId::from_bytes([2; 20]),
                node_id: NodeId::from_bytes([1; 20]),
                nonce: "ab".repeat(32),
                ts_ms: 9,
                signature: vec![5; 64],
            },
            to: PeerId::from_bytes([3; 20]),
            kind: RelayKind::Candidate,
            sid: Some("dc1".into()),
            data: r#"{"candidate":""}"#.into(),
        }
    }

    #[test]
    fn messages_round_trip() {
        let env = envelope();
        assert_eq!(decode_envelope(&encode_envelope(&env)), Ok(env.clone()));
        for outcome in [
            DeliveryOutcome::Delivered,
            DeliveryOutcome::Duplicate,
            DeliveryOutcome::NotFound,
            DeliveryOutcome::Busy,
        ] {
            assert_eq!(decode_delivery(&encode_delivery(outcome)), Ok(outcome));
        }
        let withdrawal = Withdrawal {
            peer: env.from,
            ts_ms: 9,
        };
        assert_eq!(
            decode_withdrawal(&encode_withdrawal(&withdrawal)),
            Ok(withdrawal)
        );
        for entry in [
            PresenceEntry::Present(env.from_proof),
            PresenceEntry::Withdrawn(withdrawal),
        ] {
            let value = encode_presence_entry(&entry);
            assert_eq!(decode_presence_entry(&value), Some(Ok(entry)));
        }
        // Other provider entries (a topic's members) are not presence entries.
        assert_eq!(decode_presence_entry(&[2; 40]), None);
        let garbage = [PRESENCE_ENTRY_PREFIX, b"\xff\xff"].concat();
        assert!(matches!(decode_presence_entry(&garbage), Some(Err(_))));
    }

    #[test]
    fn wrong_lengths_and_unknown_values_are_refused() {
        let mut m = pb::RelayEnvelope::decode(encode_envelope(&envelope())).unwrap();
        m.origin = Bytes::from_static(&[1; 19]);
        assert!(matches!(
            decode_envelope(&m.encode_to_vec()),
            Err(WireError::Length {
                field: "origin",
                ..
            })
        ));
        let mut m = pb::RelayEnvelope::decode(encode_envelope(&envelope())).unwrap();
        m.kind = 99;
        assert_eq!(
            decode_envelope(&m.encode_to_vec()),
            Err(WireError::Unknown("kind"))
        );
        let mut m = pb::RelayEnvelope::decode(encode_envelope(&envelope())).unwrap();
        if let Some(proof) = m.from_proof.as_mut() {
            proof.signature = Bytes::from_static(&[0; 63]);
        }
        assert!(decode_envelope(&m.encode_to_vec()).is_err());
        assert!(decode_envelope(b"\xff\xff\xff").is_err());
        assert!(decode_delivery(&[8, 42]).is_err());
    }
}
