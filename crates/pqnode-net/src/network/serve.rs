//! The serving side of requests: one bidirectional stream each, read,
//! checked against caps and budgets, dispatched, answered.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::{Bytes, BytesMut};
use prost::Message;
use quinn::{ReadExactError, RecvStream, SendStream};
use tokio::sync::OwnedSemaphorePermit;

use super::pool::PeerConn;
use super::{Inner, read};
use crate::handler::{Caller, HandlerError};
use crate::wire::pb::{FailureCode, ResponseStatus, StreamErrorCode};
use crate::wire::{
    self, FRAME_HEADER_LEN, FrameError, MAX_FAILURE_DETAIL_LEN, Protocol, RequestHeader, pb,
};

/// Accepts request streams on `conn` until it closes, then forgets it.
/// `_slot` is released (per-IP accounting) when the connection ends.
pub(crate) async fn serve_connection<S: Send + 'static>(
    inner: Arc<Inner>,
    conn: Arc<PeerConn>,
    _slot: S,
) {
    loop {
        let accepted = tokio::select! {
            () = inner.cancel.cancelled() => break,
            accepted = conn.connection.accept_bi() => accepted,
        };
        match accepted {
            Ok((send, recv)) => {
                inner
                    .tasks
                    .spawn(serve_stream(inner.clone(), conn.clone(), send, recv));
            }
            Err(reason) => {
                tracing::debug!(peer = %conn.node_id, %reason, "connection closed");
                break;
            }
        }
    }
    inner.forget(&conn);
    let stats = conn.connection.stats();
    let counters = &inner.counters;
    counters
        .closed_bytes_sent
        .fetch_add(stats.udp_tx.bytes, Ordering::Relaxed);
    counters
        .closed_bytes_received
        .fetch_add(stats.udp_rx.bytes, Ordering::Relaxed);
}

/// A malformed request: how to reset the stream, and what to log.
pub(super) struct Violation {
    pub(super) code: StreamErrorCode,
    reason: String,
}

impl From<FrameError> for Violation {
    fn from(e: FrameError) -> Self {
        let code = match e {
            FrameError::BadVersion(_) => StreamErrorCode::StreamErrorBadVersion,
            FrameError::UnknownStatus(_) => StreamErrorCode::StreamErrorUnknownProtocol,
            FrameError::TooLarge { .. } => StreamErrorCode::StreamErrorTooLarge,
        };
        Self {
            code,
            reason: e.to_string(),
        }
    }
}

enum ReadFailure {
    Violation(Violation),
    /// The connection or stream went away: nothing to answer, nobody to blame.
    Gone,
}

impl From<ReadExactError> for ReadFailure {
    fn from(e: ReadExactError) -> Self {
        match e {
            ReadExactError::FinishedEarly(_) => ReadFailure::Violation(Violation {
                code: StreamErrorCode::StreamErrorMalformed,
                reason: "stream ended inside a frame".into(),
            }),
            ReadExactError::ReadError(_) => ReadFailure::Gone,
        }
    }
}

async fn serve_stream(
    inner: Arc<Inner>,
    conn: Arc<PeerConn>,
    mut send: SendStream,
    mut recv: RecvStream,
) {
    let deadline = tokio::time::Instant::now() + inner.limits.request_timeout;
    let read = tokio::time::timeout_at(deadline, read_request_header(&mut recv)).await;
    let header = match read {
        Ok(Ok(header)) => header,
        Ok(Err(ReadFailure::Gone)) => return,
        Ok(Err(ReadFailure::Violation(v))) => return reject(&inner, &conn, send, recv, v),
        Err(_) => return time_out(send, recv),
    };
    let served = inner.served(header.protocol_id);
    inner.counters.request_in(served);
    let Some(protocol) = served else {
        // Answer without reading the body: nobody here would use it. Not a
        // violation: a peer may speak protocols this build does not.
        let failure = failure(
            FailureCode::NoHandler,
            &format!("this node does not serve protocol {}", header.protocol_id),
        );
        return respond(&mut send, Protocol::UNSERVED, Err(failure)).await;
    };
    let body_len = match header.body_len_for(protocol) {
        Ok(len) => len,
        Err(e) => return reject(&inner, &conn, send, recv, e.into()),
    };
    let answer = {
        // Bodies are buffered only within the connection's and the node's
        // budgets, so claimed sizes cannot make us hold more than that.
        let budget = tokio::time::timeout_at(deadline, reserve(&inner, &conn, body_len)).await;
        let Ok(Some(_reserved)) = budget else {
            return time_out(send, recv);
        };
        let read = tokio::time::timeout_at(deadline, read_request_body(&mut recv, body_len)).await;
        let body = match read {
            Ok(Ok(body)) => body,
            Ok(Err(ReadFailure::Gone)) => return,
            Ok(Err(ReadFailure::Violation(v))) => return reject(&inner, &conn, send, recv, v),
            Err(_) => return time_out(send, recv),
        };
        let caller = Caller {
            node_id: conn.node_id,
            addr: conn.address(),
        };
        dispatch(&inner, caller, protocol, body)
            .await
            .map_err(|e| failure(e.code(), e.detail()))
    };
    respond(&mut send, protocol, answer).await;
}

fn time_out(mut send: SendStream, mut recv: RecvStream) {
    let code = wire::stream_code(StreamErrorCode::StreamErrorTimeout);
    let _ = recv.stop(code);
    let _ = send.reset(code);
}

/// Holds `len` bytes of both budgets until dropped; `None` if a budget is closed.
async fn reserve(
    inner: &Inner,
    conn: &PeerConn,
    len: usize,
) -> Option<(OwnedSemaphorePermit, OwnedSemaphorePermit)> {
    let len = u32::try_from(len).ok()?;
    let per_connection = conn
        .inbound_budget
        .clone()
        .acquire_many_owned(len)
        .await
        .ok()?;
    let node = inner
        .inbound_budget
        .clone()
        .acquire_many_owned(len)
        .await
        .ok()?;
    Some((per_connection, node))
}

async fn respond(send: &mut SendStream, protocol: Protocol, answer: Result<Bytes, pb::Failure>) {
    let frame = match &answer {
        Ok(reply) => wire::encode_response(protocol, ResponseStatus::Ok, reply),
        Err(failure) => {
            wire::encode_response(protocol, ResponseStatus::Failure, &failure.encode_to_vec())
        }
    };
    let frame = match frame {
        Ok(frame) => frame,
        Err(e) => {
            // Our own handler produced an oversized reply: a bug on our side, not the peer's.
            tracing::warn!(%protocol, error = %e, "reply over the frame cap; sending a failure");
            let failure = failure(FailureCode::Internal, "reply over the frame cap");
            match wire::encode_response(protocol, ResponseStatus::Failure, &failure.encode_to_vec())
            {
                Ok(frame) => frame,
                Err(_) => return,
            }
        }
    };
    if send.write_all(&frame).await.is_ok() {
        let _ = send.finish();
    }
}

async fn read_request_header(recv: &mut RecvStream) -> Result<RequestHeader, ReadFailure> {
    let mut header = [0u8; FRAME_HEADER_LEN];
    recv.read_exact(&mut header).await?;
    RequestHeader::decode(&header).map_err(|e| ReadFailure::Violation(e.into()))
}

async fn read_request_body(recv: &mut RecvStream, len: usize) -> Result<Bytes, ReadFailure> {
    let body = read_body(recv, len).await.map_err(|e| match e {
        BodyError::Truncated => ReadFailure::Violation(Violation {
            code: StreamErrorCode::StreamErrorMalformed,
            reason: "stream ended inside a frame".into(),
        }),
        BodyError::Read(_) => ReadFailure::Gone,
    })?;
    expect_end(recv).await?;
    Ok(body)
}

pub(super) enum BodyError {
    Truncated,
    Read(quinn::ReadError),
}

/// Reads exactly `len` body bytes, allocating as they arrive rather than
/// trusting the header's claim up front.
pub(super) async fn read_body(recv: &mut RecvStream, len: usize) -> Result<Bytes, BodyError> {
    const FIRST_ALLOCATION: usize = 64 * 1024;
    let mut body = BytesMut::with_capacity(len.min(FIRST_ALLOCATION));
    while body.len() < len {
        match recv.read_chunk(len - body.len(), true).await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk.bytes),
            Ok(None) => return Err(BodyError::Truncated),
            Err(e) => return Err(BodyError::Read(e)),
        }
    }
    Ok(body.freeze())
}

/// A request is exactly one frame: anything after it is a protocol violation.
async fn expect_end(recv: &mut RecvStream) -> Result<(), ReadFailure> {
    let mut extra = [0u8; 1];
    match recv.read(&mut extra).await {
        Ok(None) => Ok(()),
        Ok(Some(_)) => Err(ReadFailure::Violation(Violation {
            code: StreamErrorCode::StreamErrorMalformed,
            reason: "bytes after the frame".into(),
        })),
        Err(_) => Err(ReadFailure::Gone),
    }
}

fn reject(
    inner: &Inner,
    conn: &PeerConn,
    mut send: SendStream,
    mut recv: RecvStream,
    v: Violation,
) {
    let code = wire::stream_code(v.code);
    let _ = recv.stop(code);
    let _ = send.reset(code);
    inner.counters.streams_reset.fetch_add(1, Ordering::Relaxed);
    let now = std::time::Instant::now();
    if let Some(held) = inner.counters.noisy.malformed.admit(now) {
        tracing::info!(peer = %conn.node_id, reason = %v.reason, suppressed = held.count, "malformed request; stream reset");
    }
    if conn.violation(inner.limits.max_protocol_violations) {
        if let Some(held) = inner.counters.noisy.abuse.admit(now) {
            tracing::warn!(peer = %conn.node_id, suppressed = held.count, "repeated malformed requests; closing the connection");
        }
        inner
            .counters
            .closed_for_abuse
            .fetch_add(1, Ordering::Relaxed);
        conn.close(pb::CloseCode::Abuse, "repeated malformed frames");
    }
}

async fn dispatch(
    inner: &Inner,
    caller: Caller,
    protocol: Protocol,
    body: Bytes,
) -> Result<Bytes, HandlerError> {
    if protocol == Protocol::PING {
        return Ok(Bytes::new());
    }
    let handler = read(&inner.handlers)
        .get(&protocol.id())
        .map(|r| r.handler.clone());
    match handler {
        Some(handler) => handler.handle_dyn(caller, body).await,
        // Unregistered between reading the header and now.
        None => Err(HandlerError::Unavailable(format!("no {protocol} handler"))),
    }
}

fn failure(code: FailureCode, detail: &str) -> pb::Failure {
    pb::Failure {
        code: code as i32,
        detail: truncate(detail, MAX_FAILURE_DETAIL_LEN).to_owned(),
    }
}

pub(super) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
