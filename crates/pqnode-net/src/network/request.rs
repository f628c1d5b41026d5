//! The asking side of requests: one frame out, one frame back.

use bytes::Bytes;
use prost::Message;
use quinn::{ReadExactError, RecvStream, SendStream};

use super::pool::PeerConn;
use super::serve::{BodyError, Violation, read_body, truncate};
use crate::error::{RequestError, cause};
use crate::wire::pb::{FailureCode, ResponseStatus};
use crate::wire::{self, FRAME_HEADER_LEN, MAX_FAILURE_DETAIL_LEN, Protocol, ResponseHeader, pb};

/// Sends one request on `conn` and reads its answer.
pub(crate) async fn request_on(
    conn: &PeerConn,
    protocol: Protocol,
    payload: &Bytes,
) -> Result<Bytes, RequestError> {
    let frame = wire::encode_request(protocol, payload)?;
    let (send, recv) = conn
        .connection
        .open_bi()
        .await
        .map_err(|e| RequestError::ConnectionLost(cause(e)))?;
    exchange(send, recv, protocol, &frame).await
}

/// Writes one encoded request `frame` of `protocol` on an open stream and reads the answer.
pub(crate) async fn exchange(
    mut send: SendStream,
    mut recv: RecvStream,
    protocol: Protocol,
    frame: &[u8],
) -> Result<Bytes, RequestError> {
    let lost = |e: quinn::WriteError| RequestError::ConnectionLost(cause(e));
    match send.write_all(frame).await {
        Ok(()) => {
            let _ = send.finish();
        }
        // The peer answered without reading the whole request (it does not
        // serve the protocol, or it reset the stream): its answer says which.
        Err(quinn::WriteError::Stopped(_)) => {}
        Err(other) => return Err(lost(other)),
    }

    let mut header = [0u8; FRAME_HEADER_LEN];
    read_reply(&mut recv, &mut header, protocol).await?;
    let header = match ResponseHeader::decode(&header, protocol) {
        Ok(header) => header,
        Err(e) => {
            let _ = recv.stop(wire::stream_code(Violation::from(e.clone()).code));
            return Err(e.into());
        }
    };
    let body = read_body(&mut recv, header.body_len)
        .await
        .map_err(|e| match e {
            BodyError::Truncated => RequestError::Malformed {
                protocol,
                reason: "reply ended inside a frame".into(),
            },
            BodyError::Read(e) => read_error(e),
        })?;
    match header.status {
        ResponseStatus::Ok => Ok(body),
        ResponseStatus::Failure => {
            let failure = pb::Failure::decode(body).map_err(|e| RequestError::Malformed {
                protocol,
                reason: format!("Failure: {e}"),
            })?;
            Err(RequestError::Remote {
                code: FailureCode::try_from(failure.code).unwrap_or(FailureCode::Unspecified),
                detail: truncate(&failure.detail, MAX_FAILURE_DETAIL_LEN).to_owned(),
            })
        }
    }
}

async fn read_reply(
    recv: &mut RecvStream,
    buf: &mut [u8],
    protocol: Protocol,
) -> Result<(), RequestError> {
    recv.read_exact(buf).await.map_err(|e| match e {
        ReadExactError::FinishedEarly(_) => RequestError::Malformed {
            protocol,
            reason: "reply ended inside a frame".into(),
        },
        ReadExactError::ReadError(e) => read_error(e),
    })
}

fn read_error(e: quinn::ReadError) -> RequestError {
    match e {
        quinn::ReadError::Reset(code) => RequestError::Reset(code.into_inner()),
        other => RequestError::ConnectionLost(cause(other)),
    }
}
