//! The `SYNC` protocol's messages, as protobuf (`proto/sync.proto`) like the rest of pqnode's
//! wire. Decoding checks the message's size before parsing and every field after, so what
//! comes out is well-formed: a valid document name, byte strings within their caps. Whether
//! an update or state vector *decodes as Yjs* is the document engine's next check.

use bytes::Bytes;
use prost::Message;

use crate::DocName;

mod pb {
    #![allow(clippy::all, missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/pqnode.crdt.sync.v1.rs"));
}

/// Largest `SYNC` request or response body, in bytes: the cap the binary registers the
/// protocol with (wire id 3), and the first check of every decoder here. 8 MiB fits a
/// document's whole diff in one message for all but very large documents, and stays well
/// inside the transport's 16 MiB per-connection request budget.
pub const SYNC_MAX_MESSAGE: usize = 8 * 1024 * 1024;

/// Largest state vector carried: 16 bytes or so per client that ever edited the document.
pub const MAX_STATE_VECTOR: usize = 1024 * 1024;

/// Largest update or diff carried in one message: what is left of [`SYNC_MAX_MESSAGE`] after
/// a state vector and the framing (a name of at most 200 bytes, tags and lengths).
pub const MAX_SYNC_UPDATE: usize = SYNC_MAX_MESSAGE - MAX_STATE_VECTOR - 1024;

/// A sync request, decoded and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncRequest {
    /// "This is my state vector": answered with [`SyncResponse::Exchange`].
    Exchange { doc: DocName, state_vector: Bytes },
    /// Updates the receiver lacks: answered with [`SyncResponse::Pushed`] once durable.
    Push { doc: DocName, update: Bytes },
}

/// A sync response, decoded and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncResponse {
    /// What the requester lacks, and the responder's state vector.
    Exchange { diff: Bytes, state_vector: Bytes },
    /// The push is committed at the responder, whose document is now at `version`.
    Pushed { version: u64 },
    /// The responder does not hold the document and does not accept new replicas.
    NotHeld,
}

/// A sync message that is not what the protocol allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    #[error("message of {len} bytes exceeds the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("not a protobuf sync message: {0}")]
    Protobuf(String),
    #[error("{field} of {len} bytes exceeds the {max}-byte limit")]
    FieldTooLarge {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("invalid document name: {0}")]
    BadName(String),
    #[error("{0} is missing")]
    Missing(&'static str),
}

impl SyncRequest {
    pub fn doc(&self) -> &DocName {
        match self {
            SyncRequest::Exchange { doc, .. } | SyncRequest::Push { doc, .. } => doc,
        }
    }

    /// The encoded message; [`WireError::FieldTooLarge`] if a field is over its cap (the
    /// receiver would refuse it anyway).
    pub fn encode(&self) -> Result<Bytes, WireError> {
        let request = match self {
            SyncRequest::Exchange { doc, state_vector } => {
                capped("state_vector", state_vector, MAX_STATE_VECTOR)?;
                pb::sync_request::Request::Exchange(pb::Exchange {
                    doc: doc.as_str().to_owned(),
                    state_vector: state_vector.clone(),
                })
            }
            SyncRequest::Push { doc, update } => {
                capped("update", update, MAX_SYNC_UPDATE)?;
                pb::sync_request::Request::Push(pb::Push {
                    doc: doc.as_str().to_owned(),
                    update: update.clone(),
                })
            }
        };
        let message = pb::SyncRequest {
            request: Some(request),
        };
        Ok(message.encode_to_vec().into())
    }

    pub fn decode(bytes: &[u8]) -> Result<SyncRequest, WireError> {
        let m = pb::SyncRequest::decode(sized(bytes)?).map_err(protobuf)?;
        match m.request.ok_or(WireError::Missing("request"))? {
            pb::sync_request::Request::Exchange(e) => Ok(SyncRequest::Exchange {
                doc: name(&e.doc)?,
                state_vector: capped("state_vector", &e.state_vector, MAX_STATE_VECTOR)?,
            }),
            pb::sync_request::Request::Push(p) => Ok(SyncRequest::Push {
                doc: name(&p.doc)?,
                update: capped("update", &p.update, MAX_SYNC_UPDATE)?,
            }),
        }
    }
}

impl SyncResponse {
    pub fn encode(&self) -> Result<Bytes, WireError> {
        let response = match self {
            SyncResponse::Exchange { diff, state_vector } => {
                capped("diff", diff, MAX_SYNC_UPDATE)?;
                capped("state_vector", state_vector, MAX_STATE_VECTOR)?;
                pb::sync_response::Response::Exchange(pb::ExchangeReply {
                    diff: diff.clone(),
                    state_vector: state_vector.clone(),
                })
            }
            SyncResponse::Pushed { version } => {
                pb::sync_response::Response::Pushed(pb::Pushed { version: *version })
            }
            SyncResponse::NotHeld => pb::sync_response::Response::NotHeld(pb::NotHeld {}),
        };
        let message = pb::SyncResponse {
            response: Some(response),
        };
        Ok(message.encode_to_vec().into())
    }

    pub fn decode(bytes: &[u8]) -> Result<SyncResponse, WireError> {
        let m = pb::SyncResponse::decode(sized(bytes)?).map_err(protobuf)?;
        match m.response.ok_or(WireError::Missing("response"))? {
            pb::sync_response::Response::Exchange(e) => Ok(SyncResponse::Exchange {
                diff: capped("diff", &e.diff, MAX_SYNC_UPDATE)?,
                state_vector: capped("state_vector", &e.state_vector, MAX_STATE_VECTOR)?,
            }),
            pb::sync_response::Response::Pushed(p) => {
                Ok(SyncResponse::Pushed { version: p.version })
            }
            pb::sync_response::Response::NotHeld(_) => Ok(SyncResponse::NotHeld),
        }
    }
}

/// Refuses a message over the cap before anything is parsed.
fn sized(bytes: &[u8]) -> Result<&[u8], WireError> {
    match bytes.len() <= SYNC_MAX_MESSAGE {
        true => Ok(bytes),
        false => Err(WireError::TooLarge {
            len: bytes.len(),
            max: SYNC_MAX_MESSAGE,
        }),
    }
}

fn capped(field: &'static str, bytes: &Bytes, max: usize) -> Result<Bytes, WireError> {
    match bytes.len() <= max {
        true => Ok(bytes.clone()),
        false => Err(WireError::FieldTooLarge {
            field,
            len: bytes.len(),
            max,
        }),
    }
}

fn name(doc: &str) -> Result<DocName, WireError> {
    DocName::new(doc).map_err(|e| WireError::BadName(e.to_string()))
}

fn protobuf(e: prost::DecodeError) -> WireError {
    WireError::Protobuf(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> DocName {
        DocName::new("notes").expect("name")
    }

    #[test]
    fn messages_round_trip() {
        let requests = [
            SyncRequest::Exchange {
                doc: doc(),
                state_vector: Bytes::from_static(&[1, 2, 3]),
            },
            SyncRequest::Push {
                doc: doc(),
                update: Bytes::from_static(&[0, 0]),
            },
        ];
        for request in requests {
            let bytes = request.encode().expect("encode");
            assert_eq!(SyncRequest::decode(&bytes), Ok(request));
        }
        let responses = [
            SyncResponse::Exchange {
                diff: Bytes::from_static(&[0, 0]),
                state_vector: Bytes::new(),
            },
            SyncResponse::Pushed { version: 7 },
            SyncResponse::NotHeld,
        ];
        for response in responses {
            let bytes = response.encode().expect("encode");
            assert_eq!(SyncResponse::decode(&bytes), Ok(response));
        }
    }

    #[test]
    fn bad_messages_are_refused() {
        assert!(matches!(
            SyncRequest::decode(&vec![0; SYNC_MAX_MESSAGE + 1]),
            Err(WireError::TooLarge { .. })
        ));
        // A length prefix claiming more bytes than follow.
        assert!(matches!(
            SyncRequest::decode(&[0x0a, 0x7f, 0x0a, 0x01]),
            Err(WireError::Protobuf(_))
        ));
        assert_eq!(SyncRequest::decode(&[]), Err(WireError::Missing("request")));
        let bad_name = pb::SyncRequest {
            request: Some(pb::sync_request::Request::Push(pb::Push {
                doc: "../etc".into(),
                update: Bytes::new(),
            })),
        };
        assert!(matches!(
            SyncRequest::decode(&bad_name.encode_to_vec()),
            Err(WireError::BadName(_))
        ));
        let big_sv = pb::SyncRequest {
            request: Some(pb::sync_request::Request::Exchange(pb::Exchange {
                doc: "a".into(),
                state_vector: vec![0; MAX_STATE_VECTOR + 1].into(),
            })),
        };
        assert!(matches!(
            SyncRequest::decode(&big_sv.encode_to_vec()),
            Err(WireError::FieldTooLarge {
                field: "state_vector",
                ..
            })
        ));
        let too_big = SyncRequest::Push {
            doc: doc(),
            update: vec![0; MAX_SYNC_UPDATE + 1].into(),
        };
        assert!(matches!(
            too_big.encode(),
            Err(WireError::FieldTooLarge { .. })
        ));
    }
}
