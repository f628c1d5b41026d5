//! The fixed 6-byte frame header (see `proto/wire.proto`).
//!
//! Decoding is a pure function of the bytes: it never panics and never
//! allocates, and it rejects a body length over the protocol's cap before
//! the caller reads (or allocates for) the body.

use bytes::{BufMut, Bytes, BytesMut};

use super::Protocol;
use super::pb::ResponseStatus;

/// The only wire version this node speaks.
pub(crate) const WIRE_VERSION: u8 = 1;

/// Bytes in a frame header: version, protocol or status, body length.
pub(crate) const FRAME_HEADER_LEN: usize = 6;

/// A frame header this node cannot accept, or a body too large to send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The peer speaks another wire version (the first header byte).
    #[error("unsupported wire version {0}")]
    BadVersion(u8),
    /// A response status byte this build does not know.
    #[error("unknown response status {0}")]
    UnknownStatus(u8),
    /// A body over the protocol's cap, refused before it is read or sent.
    #[error("{protocol} body of {len} bytes exceeds the cap of {cap}")]
    TooLarge {
        /// The protocol whose cap applies.
        protocol: Protocol,
        /// The body's length, in bytes.
        len: u64,
        /// The protocol's cap, in bytes.
        cap: usize,
    },
}

/// A decoded request header: which protocol id, how many body bytes follow.
/// The length is checked against the protocol's cap by
/// [`RequestHeader::body_len_for`] once the receiver knows the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RequestHeader {
    pub(crate) protocol_id: u8,
    body_len: u32,
}

/// A decoded response header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ResponseHeader {
    pub(crate) status: ResponseStatus,
    pub(crate) body_len: usize,
}

impl RequestHeader {
    pub(crate) fn decode(header: &[u8; FRAME_HEADER_LEN]) -> Result<Self, FrameError> {
        let [version, protocol_id, len @ ..] = *header;
        check_version(version)?;
        Ok(Self {
            protocol_id,
            body_len: u32::from_be_bytes(len),
        })
    }

    /// The body length, if it is within `protocol`'s cap.
    pub(crate) fn body_len_for(self, protocol: Protocol) -> Result<usize, FrameError> {
        capped_len(protocol, self.body_len)
    }
}

impl ResponseHeader {
    /// `protocol` is the one the request was for: it sets the cap.
    pub(crate) fn decode(
        header: &[u8; FRAME_HEADER_LEN],
        protocol: Protocol,
    ) -> Result<Self, FrameError> {
        let [version, status, len @ ..] = *header;
        check_version(version)?;
        let status = ResponseStatus::try_from(i32::from(status))
            .map_err(|_| FrameError::UnknownStatus(status))?;
        let body_len = capped_len(response_cap(protocol), u32::from_be_bytes(len))?;
        Ok(Self { status, body_len })
    }
}

fn check_version(version: u8) -> Result<(), FrameError> {
    if version == WIRE_VERSION {
        Ok(())
    } else {
        Err(FrameError::BadVersion(version))
    }
}

fn capped_len(protocol: Protocol, len: u32) -> Result<usize, FrameError> {
    let cap = protocol.max_body_len();
    match usize::try_from(len) {
        Ok(len) if len <= cap => Ok(len),
        _ => Err(FrameError::TooLarge {
            protocol,
            len: u64::from(len),
            cap,
        }),
    }
}

/// A complete request frame. Fails if `body` is over the protocol's cap.
pub(crate) fn encode_request(protocol: Protocol, body: &[u8]) -> Result<Bytes, FrameError> {
    encode(protocol.id(), protocol, body)
}

/// A complete response frame. Fails if `body` is over the protocol's cap.
pub(crate) fn encode_response(
    protocol: Protocol,
    status: ResponseStatus,
    body: &[u8],
) -> Result<Bytes, FrameError> {
    encode(status as u8, response_cap(protocol), body)
}

/// A response may always carry a `Failure`, whatever the protocol's cap.
fn response_cap(protocol: Protocol) -> Protocol {
    if protocol.max_body_len() >= super::MAX_FAILURE_BODY_LEN {
        protocol
    } else {
        Protocol::UNSERVED.named(protocol.name())
    }
}

fn encode(second: u8, protocol: Protocol, body: &[u8]) -> Result<Bytes, FrameError> {
    let cap = protocol.max_body_len();
    let len = u32::try_from(body.len())
        .ok()
        .filter(|_| body.len() <= cap)
        .ok_or(FrameError::TooLarge {
            protocol,
            len: body.len() as u64,
            cap,
        })?;
    let mut out = BytesMut::with_capacity(FRAME_HEADER_LEN + body.len());
    out.put_u8(WIRE_VERSION);
    out.put_u8(second);
    out.put_u32(len);
    out.put_slice(body);
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SMALL: Protocol = Protocol::new(1, "SMALL", 1024);
    const LARGE: Protocol = Protocol::new(3, "LARGE", 8 << 20);

    fn header(frame: &[u8]) -> [u8; FRAME_HEADER_LEN] {
        let mut h = [0; FRAME_HEADER_LEN];
        h.copy_from_slice(&frame[..FRAME_HEADER_LEN]);
        h
    }

    #[test]
    fn request_round_trip() {
        let frame = encode_request(SMALL, b"hello").unwrap();
        let h = RequestHeader::decode(&header(&frame)).unwrap();
        assert_eq!(h.protocol_id, SMALL.id());
        assert_eq!(h.body_len_for(SMALL), Ok(5));
        assert_eq!(&frame[FRAME_HEADER_LEN..], b"hello");
    }

    #[test]
    fn response_round_trip() {
        let frame = encode_response(LARGE, ResponseStatus::Failure, b"x").unwrap();
        let h = ResponseHeader::decode(&header(&frame), LARGE).unwrap();
        assert_eq!(h.status, ResponseStatus::Failure);
        assert_eq!(h.body_len, 1);
    }

    #[test]
    fn refuses_oversized_bodies_both_ways() {
        let big = vec![0u8; Protocol::PING.max_body_len() + 1];
        assert!(matches!(
            encode_request(Protocol::PING, &big),
            Err(FrameError::TooLarge { .. })
        ));
        let mut h = [WIRE_VERSION, LARGE.id(), 0, 0, 0, 0];
        h[2..].copy_from_slice(&u32::MAX.to_be_bytes());
        let decoded = RequestHeader::decode(&h).unwrap();
        assert!(matches!(
            decoded.body_len_for(LARGE),
            Err(FrameError::TooLarge { .. })
        ));
        // The cap is the receiver's protocol's, not a global one.
        h[2..].copy_from_slice(&2048u32.to_be_bytes());
        let decoded = RequestHeader::decode(&h).unwrap();
        assert_eq!(decoded.body_len_for(LARGE), Ok(2048));
        assert!(decoded.body_len_for(SMALL).is_err());
    }

    #[test]
    fn refuses_unknown_version_and_status() {
        assert_eq!(
            RequestHeader::decode(&[2, 1, 0, 0, 0, 0]),
            Err(FrameError::BadVersion(2))
        );
        assert_eq!(
            ResponseHeader::decode(&[1, 9, 0, 0, 0, 0], SMALL),
            Err(FrameError::UnknownStatus(9))
        );
    }

    proptest! {
        #[test]
        fn decoders_never_panic_and_respect_caps(bytes in any::<[u8; FRAME_HEADER_LEN]>()) {
            if let Ok(h) = RequestHeader::decode(&bytes) {
                for p in [SMALL, LARGE, Protocol::PING] {
                    if let Ok(len) = h.body_len_for(p) {
                        prop_assert!(len <= p.max_body_len());
                    }
                }
            }
            for p in [SMALL, LARGE, Protocol::PING] {
                if let Ok(h) = ResponseHeader::decode(&bytes, p) {
                    prop_assert!(h.body_len <= p.max_body_len());
                }
            }
        }

        #[test]
        fn protobuf_bodies_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            use prost::Message;
            let _ = crate::wire::pb::Failure::decode(bytes.as_slice());
        }
    }
}
