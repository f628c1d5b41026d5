//! Bytes ↔ messages. The schema is `proto/dht.proto`; this module adds what protobuf cannot
//! say: exact lengths, caps, and required fields. Decoding never panics: a message longer than
//! [`MAX_MESSAGE_LEN`] is refused before parsing, and everything parsed is checked.
//!
//! ```
//! use pqnode_crypto::NodeId;
//! use pqnode_dht::{Request, codec};
//!
//! let request = Request::FindNode { target: NodeId::from_bytes([7; 20]) };
//! let bytes = codec::encode_request(&request);
//! assert_eq!(codec::decode_request(&bytes)?, request);
//! assert!(codec::decode_request(&[0xff; 3]).is_err());
//! # Ok::<(), codec::CodecError>(())
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use pqnode_crypto::NodeId;
use prost::Message;

use crate::contact::Contact;
use crate::message::{Request, Response};
use crate::proto;
use crate::record::{ProviderRecord, Record, RecordError};

/// Largest encoded message. The largest possible response fits: 16 provider entries, each
/// with the publisher's ML-DSA-87 key and signature (about 7.2 KiB) and a validated value of
/// up to 8 KiB, and 20 contacts (see the test `the_largest_response_fits`).
pub const MAX_MESSAGE_LEN: usize = 256 * 1024;
/// Most contacts in one response.
pub const MAX_CONTACTS: usize = 20;
/// Most provider entries in one response.
pub const MAX_PROVIDERS: usize = 16;
/// Longest rejection reason kept.
pub const MAX_REASON_LEN: usize = 256;
/// Most contacts in a saved routing table (160 buckets × (K + cache) is far below).
pub const MAX_SNAPSHOT_CONTACTS: usize = 8192;
const SNAPSHOT_VERSION: u32 = 1;

/// Why bytes did not decode: a message from a peer, or a snapshot the node saved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The input is longer than its cap ([`MAX_MESSAGE_LEN`] for messages); the byte count. It was
    /// not parsed.
    #[error("message of {0} bytes exceeds the {MAX_MESSAGE_LEN}-byte limit")]
    TooLong(usize),
    /// The bytes are not protobuf, or not the expected message.
    #[error("not a valid protobuf message")]
    Protobuf,
    /// A required field is absent; the field's name.
    #[error("missing field {0}")]
    Missing(&'static str),
    /// An id, key or address field has the wrong number of bytes; the field's name.
    #[error("field {0} has the wrong length")]
    BadLength(&'static str),
    /// A list is over its cap ([`MAX_CONTACTS`], [`MAX_PROVIDERS`], [`MAX_SNAPSHOT_CONTACTS`]); the
    /// list's name.
    #[error("too many entries in {0}")]
    TooMany(&'static str),
    /// A record or provider entry is malformed: name or value too long, TTL out of range, or a
    /// publisher key or signature of the wrong size.
    #[error("invalid record: {0}")]
    Record(#[from] RecordError),
    /// A snapshot written by another format version; the version found.
    #[error("unsupported snapshot version {0}")]
    Version(u32),
}

/// Encodes a request for the wire. Lists are not checked here: the node never builds oversized
/// ones.
pub fn encode_request(request: &Request) -> Vec<u8> {
    use proto::request::Kind;
    let kind = match request {
        Request::Ping => Kind::Ping(proto::Ping {}),
        Request::FindNode { target } => Kind::FindNode(proto::FindNode {
            target: id_bytes(target),
        }),
        Request::FindValue { key } => Kind::FindValue(proto::FindValue { key: id_bytes(key) }),
        Request::Store { record } => Kind::Store(proto::Store {
            record: Some(record_to_wire(record)),
        }),
        Request::AddProvider { provider } => Kind::AddProvider(proto::AddProvider {
            provider: Some(provider_to_wire(provider)),
        }),
        Request::GetProviders { key } => {
            Kind::GetProviders(proto::GetProviders { key: id_bytes(key) })
        }
    };
    proto::Request { kind: Some(kind) }.encode_to_vec()
}

/// Decodes a request from a peer, checking its length, required fields and every field's size.
pub fn decode_request(bytes: &[u8]) -> Result<Request, CodecError> {
    use proto::request::Kind;
    check_len(bytes)?;
    let wire = proto::Request::decode(bytes).map_err(|_| CodecError::Protobuf)?;
    Ok(match wire.kind.ok_or(CodecError::Missing("request"))? {
        Kind::Ping(_) => Request::Ping,
        Kind::FindNode(m) => Request::FindNode {
            target: id_from(&m.target, "target")?,
        },
        Kind::FindValue(m) => Request::FindValue {
            key: id_from(&m.key, "key")?,
        },
        Kind::Store(m) => Request::Store {
            record: record_from_wire(m.record.ok_or(CodecError::Missing("record"))?)?,
        },
        Kind::AddProvider(m) => Request::AddProvider {
            provider: provider_from_wire(m.provider.ok_or(CodecError::Missing("provider"))?)?,
        },
        Kind::GetProviders(m) => Request::GetProviders {
            key: id_from(&m.key, "key")?,
        },
    })
}

/// Encodes a response for the wire, dropping contacts and provider entries beyond the caps and
/// truncating a rejection reason to [`MAX_REASON_LEN`] bytes.
pub fn encode_response(response: &Response) -> Vec<u8> {
    use proto::response::Kind;
    let contacts = |c: &[Contact]| c.iter().take(MAX_CONTACTS).map(contact_to_wire).collect();
    let kind = match response {
        Response::Pong { observed } => Kind::Pong(proto::Pong {
            observed: Some(addr_to_wire(&[0; 20], observed)),
        }),
        Response::Nodes { closer } => Kind::Nodes(proto::Nodes {
            closer: contacts(closer),
        }),
        Response::Value { record, closer } => Kind::Value(proto::Value {
            record: record.as_ref().map(record_to_wire),
            closer: contacts(closer),
        }),
        Response::Stored => Kind::Stored(proto::Stored {}),
        Response::Providers { providers, closer } => Kind::Providers(proto::Providers {
            providers: providers
                .iter()
                .take(MAX_PROVIDERS)
                .map(provider_to_wire)
                .collect(),
            closer: contacts(closer),
        }),
        Response::Rejected { reason } => Kind::Rejected(proto::Rejected {
            reason: truncate(reason, MAX_REASON_LEN).to_owned(),
        }),
    };
    proto::Response { kind: Some(kind) }.encode_to_vec()
}

/// Decodes a response from a peer, checking its length, required fields and every field's size.
pub fn decode_response(bytes: &[u8]) -> Result<Response, CodecError> {
    use proto::response::Kind;
    check_len(bytes)?;
    let wire = proto::Response::decode(bytes).map_err(|_| CodecError::Protobuf)?;
    Ok(match wire.kind.ok_or(CodecError::Missing("response"))? {
        Kind::Pong(m) => Response::Pong {
            observed: addr_from_wire(&m.observed.ok_or(CodecError::Missing("observed"))?)?,
        },
        Kind::Nodes(m) => Response::Nodes {
            closer: contacts_from_wire(m.closer)?,
        },
        Kind::Value(m) => Response::Value {
            record: m.record.map(record_from_wire).transpose()?,
            closer: contacts_from_wire(m.closer)?,
        },
        Kind::Stored(_) => Response::Stored,
        Kind::Providers(m) => {
            if m.providers.len() > MAX_PROVIDERS {
                return Err(CodecError::TooMany("providers"));
            }
            Response::Providers {
                providers: m
                    .providers
                    .into_iter()
                    .map(provider_from_wire)
                    .collect::<Result<_, _>>()?,
                closer: contacts_from_wire(m.closer)?,
            }
        }
        Kind::Rejected(m) => Response::Rejected {
            reason: truncate(&m.reason, MAX_REASON_LEN).to_owned(),
        },
    })
}

/// Encodes routing-table contacts for persistence.
pub fn encode_table(contacts: &[Contact]) -> Vec<u8> {
    proto::RoutingTableSnapshot {
        version: SNAPSHOT_VERSION,
        contacts: contacts
            .iter()
            .take(MAX_SNAPSHOT_CONTACTS)
            .map(contact_to_wire)
            .collect(),
    }
    .encode_to_vec()
}

/// Decodes what [`encode_table`] wrote.
pub fn decode_table(bytes: &[u8]) -> Result<Vec<Contact>, CodecError> {
    if bytes.len() > MAX_SNAPSHOT_CONTACTS * 64 {
        return Err(CodecError::TooLong(bytes.len()));
    }
    let wire = proto::RoutingTableSnapshot::decode(bytes).map_err(|_| CodecError::Protobuf)?;
    if wire.version != SNAPSHOT_VERSION {
        return Err(CodecError::Version(wire.version));
    }
    if wire.contacts.len() > MAX_SNAPSHOT_CONTACTS {
        return Err(CodecError::TooMany("contacts"));
    }
    wire.contacts.iter().map(contact_from_wire).collect()
}

/// Largest record-store snapshot accepted (local data, but a decoder is capped all the same).
pub const MAX_STORE_SNAPSHOT_LEN: usize = 1 << 30;

/// Records and provider entries with the lifetime they have left, as saved by a node.
pub type StoreSnapshot = (Vec<(Record, Duration)>, Vec<(ProviderRecord, Duration)>);

/// Encodes stored records and provider entries for persistence.
pub fn encode_store(
    records: &[(Record, Duration)],
    providers: &[(ProviderRecord, Duration)],
) -> Vec<u8> {
    proto::RecordStoreSnapshot {
        version: SNAPSHOT_VERSION,
        records: records
            .iter()
            .map(|(r, left)| proto::StoredRecord {
                record: Some(record_to_wire(r)),
                remaining_secs: ttl_secs(*left),
            })
            .collect(),
        providers: providers
            .iter()
            .map(|(p, left)| proto::StoredProvider {
                provider: Some(provider_to_wire(p)),
                remaining_secs: ttl_secs(*left),
            })
            .collect(),
    }
    .encode_to_vec()
}

/// Decodes what [`encode_store`] wrote. Signatures are not checked here: the caller verifies.
pub fn decode_store(bytes: &[u8]) -> Result<StoreSnapshot, CodecError> {
    if bytes.len() > MAX_STORE_SNAPSHOT_LEN {
        return Err(CodecError::TooLong(bytes.len()));
    }
    let wire = proto::RecordStoreSnapshot::decode(bytes).map_err(|_| CodecError::Protobuf)?;
    if wire.version != SNAPSHOT_VERSION {
        return Err(CodecError::Version(wire.version));
    }
    let left = |secs: u32| Duration::from_secs(u64::from(secs));
    let records = wire
        .records
        .into_iter()
        .map(|s| {
            Ok((
                record_from_wire(s.record.ok_or(CodecError::Missing("record"))?)?,
                left(s.remaining_secs),
            ))
        })
        .collect::<Result<_, CodecError>>()?;
    let providers = wire
        .providers
        .into_iter()
        .map(|s| {
            Ok((
                provider_from_wire(s.provider.ok_or(CodecError::Missing("provider"))?)?,
                left(s.remaining_secs),
            ))
        })
        .collect::<Result<_, CodecError>>()?;
    Ok((records, providers))
}

fn check_len(bytes: &[u8]) -> Result<(), CodecError> {
    if bytes.len() > MAX_MESSAGE_LEN {
        Err(CodecError::TooLong(bytes.len()))
    } else {
        Ok(())
    }
}

fn id_bytes(id: &NodeId) -> Vec<u8> {
    id.as_bytes().to_vec()
}

fn id_from(bytes: &[u8], field: &'static str) -> Result<NodeId, CodecError> {
    NodeId::try_from(bytes).map_err(|_| CodecError::BadLength(field))
}

fn contact_to_wire(contact: &Contact) -> proto::Contact {
    addr_to_wire(contact.id.as_bytes(), &contact.addr)
}

fn addr_to_wire(id: &[u8; 20], addr: &SocketAddr) -> proto::Contact {
    let ip = match addr.ip() {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    proto::Contact {
        id: id.to_vec(),
        ip,
        port: u32::from(addr.port()),
    }
}

fn addr_from_wire(wire: &proto::Contact) -> Result<SocketAddr, CodecError> {
    let ip = if let Ok(v4) = <[u8; 4]>::try_from(wire.ip.as_slice()) {
        IpAddr::V4(Ipv4Addr::from(v4))
    } else if let Ok(v6) = <[u8; 16]>::try_from(wire.ip.as_slice()) {
        IpAddr::V6(Ipv6Addr::from(v6))
    } else {
        return Err(CodecError::BadLength("ip"));
    };
    let port = u16::try_from(wire.port).map_err(|_| CodecError::BadLength("port"))?;
    Ok(SocketAddr::new(ip, port))
}

fn contact_from_wire(wire: &proto::Contact) -> Result<Contact, CodecError> {
    Ok(Contact::new(
        id_from(&wire.id, "id")?,
        addr_from_wire(wire)?,
    ))
}

fn contacts_from_wire(wire: Vec<proto::Contact>) -> Result<Vec<Contact>, CodecError> {
    if wire.len() > MAX_CONTACTS {
        return Err(CodecError::TooMany("contacts"));
    }
    wire.iter().map(contact_from_wire).collect()
}

fn record_to_wire(record: &Record) -> proto::Record {
    proto::Record {
        key: id_bytes(record.key()),
        name: record.name().to_vec(),
        value: record.value().to_vec(),
        publisher: record.publisher().as_bytes().to_vec(),
        seq: record.seq(),
        ttl_secs: ttl_secs(record.ttl()),
        signature: record.signature().as_bytes().to_vec(),
        expires_unix_ms: record.expires_unix_ms().unwrap_or(0),
    }
}

fn record_from_wire(wire: proto::Record) -> Result<Record, CodecError> {
    let expires = (wire.expires_unix_ms != 0).then_some(wire.expires_unix_ms);
    Ok(Record::from_parts(
        id_from(&wire.key, "record.key")?,
        wire.name,
        wire.value,
        &wire.publisher,
        wire.seq,
        wire.ttl_secs,
        &wire.signature,
    )?
    .with_expiry(expires))
}

fn provider_to_wire(provider: &ProviderRecord) -> proto::Provider {
    proto::Provider {
        key: id_bytes(provider.key()),
        publisher: provider.publisher().as_bytes().to_vec(),
        value: provider.value().to_vec(),
        seq: provider.seq(),
        ttl_secs: ttl_secs(provider.ttl()),
        signature: provider.signature().as_bytes().to_vec(),
    }
}

fn provider_from_wire(wire: proto::Provider) -> Result<ProviderRecord, CodecError> {
    Ok(ProviderRecord::from_parts(
        id_from(&wire.key, "provider.key")?,
        wire.value,
        &wire.publisher,
        wire.seq,
        wire.ttl_secs,
        &wire.signature,
    )?)
}

fn ttl_secs(ttl: Duration) -> u32 {
    // Records cap their TTL at 48 h, far below u32::MAX seconds.
    u32::try_from(ttl.as_secs()).unwrap_or(u32::MAX)
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}

#[cfg(test)]
mod tests;
