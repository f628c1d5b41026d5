//! The wire protocol: frame headers, size caps and the generated protobuf
//! messages of the transport itself. The schema's source of truth is
//! `proto/wire.proto`; this module only adds the fixed frame header, which
//! must be read before the body. What a request body means is up to the
//! [`Protocol`] it names.

mod frame;
mod protocol;

pub use frame::{
    FRAME_HEADER_LEN, FrameError, RequestHeader, ResponseHeader, WIRE_VERSION, encode_request,
    encode_response,
};
pub use protocol::Protocol;

/// Messages generated from `proto/wire.proto`.
pub mod pb {
    #![allow(clippy::all, missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/pqnode.wire.v1.rs"));
}

/// Longest `Failure.detail` we send or keep.
pub const MAX_FAILURE_DETAIL_LEN: usize = 512;

/// Largest encoded `Failure`: a response of any protocol may be this long,
/// however small the protocol's own cap.
pub(crate) const MAX_FAILURE_BODY_LEN: usize = MAX_FAILURE_DETAIL_LEN + 16;

/// QUIC application error code for a stream reset.
pub(crate) fn stream_code(code: pb::StreamErrorCode) -> quinn::VarInt {
    quinn::VarInt::from_u32(code as u32)
}

/// QUIC application error code for a connection close.
pub(crate) fn close_code(code: pb::CloseCode) -> quinn::VarInt {
    quinn::VarInt::from_u32(code as u32)
}
