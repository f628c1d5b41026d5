//! One client's WebSocket, from the query check to the close frame.
//!
//! A single task owns the socket: it writes what the realm queued for this
//! client, reads and relays what the client sends, and ends the connection on
//! shutdown, silence, abuse or replacement, always with a close frame.

use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::realm::{CloseReason, ConnControl, ConnHandle, Registered, Relayed};
use crate::server::{ConnectionSlot, Inner, bump};
use crate::wire::{self, ConnectParams, Ignored, Inbound, error_text};
use pqnode_limits::TokenBucket;

const RATE_LIMITED: CloseReason = CloseReason {
    code: 4029,
    reason: "rate limited",
};
const TOO_BIG: CloseReason = CloseReason {
    code: 1009,
    reason: "message too big",
};
const SILENT: CloseReason = CloseReason {
    code: 1000,
    reason: "no heartbeat",
};
const REFUSED: CloseReason = CloseReason {
    code: 1000,
    reason: "refused",
};
/// Frames written per flush: keeps a busy client from starving its reader.
const WRITE_BATCH: usize = 64;
/// How long, after our close frame, we keep reading (and discarding) what the
/// client still sends, waiting for its own close frame. Closing a TCP socket
/// with unread bytes in it sends a reset, and a reset makes the client's
/// stack discard what we sent last — the error and the close reason a
/// flooding client most needs to see. Bounded so a client that never
/// answers cannot hold the connection.
const CLOSE_LINGER: std::time::Duration = std::time::Duration::from_secs(2);

type Sink = SplitSink<WebSocket, Message>;
type Stream = SplitStream<WebSocket>;

/// A registered client: its id and the connection that serves it.
struct Session {
    id: String,
    conn_id: u64,
}

pub(crate) async fn serve(
    inner: Arc<Inner>,
    socket: WebSocket,
    params: ConnectParams,
    _slot: ConnectionSlot,
) {
    let (mut sink, mut stream) = socket.split();
    let (id, token) = match check_params(params, &inner.config.key) {
        Ok(checked) => checked,
        Err(text) => {
            bump(&inner.counters.rejected);
            return refuse(&inner, &mut sink, &mut stream, wire::error(text)).await;
        }
    };
    let max = inner.config.max_id_len;
    if id.len() > max || token.len() > max {
        bump(&inner.counters.rejected);
        let frame = wire::error(error_text::ID_TOO_LONG);
        return refuse(&inner, &mut sink, &mut stream, frame).await;
    }

    // The realm must be able to flush a full queue into a fresh connection.
    let capacity = inner
        .config
        .outbound_buffer
        .max(inner.config.max_queued_per_peer + 1);
    let (tx, rx) = mpsc::channel(capacity);
    let control = Arc::new(ConnControl::child_of(&inner.shutdown));
    let handle = ConnHandle {
        id: inner.next_conn_id(),
        tx,
        control: Arc::clone(&control),
    };
    let registered = inner.realm().register(&id, &token, &handle);
    match registered {
        Registered::Opened { .. } | Registered::TookOver { .. } => {}
        Registered::IdTaken => {
            bump(&inner.counters.id_taken);
            return refuse(&inner, &mut sink, &mut stream, wire::id_taken()).await;
        }
        Registered::Full => {
            bump(&inner.counters.rejected);
            let frame = wire::error(error_text::CONNECTION_LIMIT_EXCEED);
            return refuse(&inner, &mut sink, &mut stream, frame).await;
        }
    }
    tracing::debug!(peer = %id, ?registered, "PeerJS client registered");
    let session = Session {
        id,
        conn_id: handle.id,
    };
    // From here the realm holds the only sender: if it drops us, `rx` ends.
    drop(handle);

    let end = run(&inner, &session, &control, &mut sink, &mut stream, rx).await;
    inner.realm().unregister(&session.id, session.conn_id);
    if let Some(reason) = end {
        let frame = CloseFrame {
            code: reason.code,
            reason: reason.reason.into(),
        };
        let _ = tokio::time::timeout(
            inner.config.write_timeout,
            sink.send(Message::Close(Some(frame))),
        )
        .await;
    }
    let _ = tokio::time::timeout(inner.config.write_timeout, sink.close()).await;
    // At shutdown the process is about to go: nobody waits for clients.
    if end.is_some() && !inner.shutdown.is_cancelled() {
        linger(&mut stream).await;
    }
    tracing::debug!(peer = %session.id, ?end, "PeerJS client gone");
}

/// Reads and drops what the client still sends after our close frame, until
/// its close frame, the end of the stream or [`CLOSE_LINGER`] (see there why).
async fn linger(stream: &mut Stream) {
    let drain = async {
        while let Some(Ok(message)) = stream.next().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(CLOSE_LINGER, drain).await;
}

/// `(id, token)` if the query names them and the right key, checked in the
/// reference's order: all three present first, then the key.
fn check_params(params: ConnectParams, key: &str) -> Result<(String, String), &'static str> {
    let (Some(given_key), Some(id), Some(token)) = (params.key, params.id, params.token) else {
        return Err(error_text::INVALID_WS_PARAMETERS);
    };
    if given_key != key {
        return Err(error_text::INVALID_KEY);
    }
    Ok((id, token))
}

/// Sends one refusal frame and closes, as the reference does.
async fn refuse(inner: &Inner, sink: &mut Sink, stream: &mut Stream, frame: String) {
    let close = CloseFrame {
        code: REFUSED.code,
        reason: REFUSED.reason.into(),
    };
    let sent = tokio::time::timeout(inner.config.write_timeout, async {
        sink.feed(Message::Text(frame.into())).await?;
        sink.feed(Message::Close(Some(close))).await?;
        sink.close().await
    })
    .await;
    if matches!(sent, Ok(Ok(()))) {
        linger(stream).await;
    }
}

/// The connection's life after registration; returns how to close it
/// (`None`: the socket is already gone).
async fn run(
    inner: &Arc<Inner>,
    session: &Session,
    control: &ConnControl,
    sink: &mut Sink,
    stream: &mut Stream,
    mut rx: mpsc::Receiver<String>,
) -> Option<CloseReason> {
    let config = &inner.config;
    let mut bucket = TokenBucket::new(config.rate_per_second, config.rate_burst, Instant::now());
    let silence = tokio::time::sleep(config.alive_timeout);
    tokio::pin!(silence);

    loop {
        tokio::select! {
            biased;
            () = control.cancelled() => return Some(control.reason()),
            frame = rx.recv() => {
                let Some(frame) = frame else {
                    // The realm let go of us without saying why: we left it.
                    return Some(CloseReason::LEFT);
                };
                if write_batch(inner, sink, frame, &mut rx).await.is_err() {
                    return None;
                }
            }
            incoming = stream.next() => {
                let message = match incoming {
                    Some(Ok(message)) => message,
                    Some(Err(error)) => return read_failed(inner, error),
                    None => return None,
                };
                silence.as_mut().reset(Instant::now() + config.alive_timeout);
                let text = match &message {
                    Message::Text(text) => text.as_str(),
                    // The reference parses binary frames as text too.
                    Message::Binary(bytes) => match std::str::from_utf8(bytes) {
                        Ok(text) => text,
                        Err(_) => {
                            bump(&inner.counters.ignored);
                            inner.log_ignored("binary frame that is not UTF-8");
                            continue;
                        }
                    },
                    Message::Ping(_) | Message::Pong(_) => continue,
                    Message::Close(_) => return None,
                };
                if !bucket.try_take(Instant::now()) {
                    bump(&inner.counters.rate_limited);
                    inner.log_abuse("rate limited");
                    let frame = wire::error(error_text::RATE_LIMITED);
                    let _ = tokio::time::timeout(
                        config.write_timeout,
                        sink.send(Message::Text(frame.into())),
                    )
                    .await;
                    return Some(RATE_LIMITED);
                }
                if let Some(reason) = handle_text(inner, session, text) {
                    return Some(reason);
                }
            }
            () = &mut silence => return Some(SILENT),
        }
    }
}

/// Writes `first` and whatever else is already waiting, then flushes once.
async fn write_batch(
    inner: &Inner,
    sink: &mut Sink,
    first: String,
    rx: &mut mpsc::Receiver<String>,
) -> Result<(), ()> {
    let write = async {
        sink.feed(Message::Text(first.into())).await?;
        for _ in 1..WRITE_BATCH {
            let Ok(next) = rx.try_recv() else { break };
            sink.feed(Message::Text(next.into())).await?;
        }
        sink.flush().await
    };
    match tokio::time::timeout(inner.config.write_timeout, write).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(()),
        Err(_) => {
            bump(&inner.counters.dropped_slow);
            Err(())
        }
    }
}

fn read_failed(inner: &Inner, error: axum::Error) -> Option<CloseReason> {
    let too_big = error
        .into_inner()
        .downcast_ref::<tungstenite::Error>()
        .is_some_and(|e| matches!(e, tungstenite::Error::Capacity(_)));
    if too_big {
        bump(&inner.counters.oversized);
        inner.log_abuse("message too big");
        return Some(TOO_BIG);
    }
    None
}

/// Acts on one client frame; `Some` ends the connection.
fn handle_text(inner: &Arc<Inner>, session: &Session, text: &str) -> Option<CloseReason> {
    let message = match Inbound::parse(text) {
        Ok(message) => message,
        Err(kind) => {
            bump(&inner.counters.ignored);
            inner.log_ignored(match kind {
                Ignored::Malformed => "malformed JSON",
                Ignored::UnknownType => "unknown message type",
            });
            return None;
        }
    };
    if message.kind == wire::Kind::Heartbeat {
        // Any frame already counted as a sign of life.
        return None;
    }
    let dst = message.dst.as_deref();
    let relayed = inner.realm().relay(
        &session.id,
        session.conn_id,
        message.kind,
        dst,
        message.payload,
    );
    match relayed {
        Relayed::Delivered => bump(&inner.counters.relayed),
        Relayed::Queued { new_queue } => {
            bump(&inner.counters.queued);
            if let (Some(generation), Some(dst)) = (new_queue, dst) {
                arm_expiry(inner, dst.to_owned(), generation);
            }
        }
        Relayed::DestinationDead => bump(&inner.counters.dropped_slow),
        Relayed::SenderLeft => return Some(CloseReason::LEFT),
        Relayed::QueueFull | Relayed::Dropped => {}
    }
    None
}

/// After `expire_timeout`, drops the queue for `dst` (if it is still the same
/// queue) and sends EXPIRE to its senders.
fn arm_expiry(inner: &Arc<Inner>, dst: String, generation: u64) {
    let timer_inner = Arc::clone(inner);
    inner.tasks.spawn(async move {
        let inner = timer_inner;
        tokio::select! {
            () = inner.shutdown.cancelled() => {}
            () = tokio::time::sleep(inner.config.expire_timeout) => {
                let expired = inner.realm().expire(&dst, generation);
                inner
                    .counters
                    .expired
                    .fetch_add(expired as u64, std::sync::atomic::Ordering::Relaxed);
            }
        }
    });
}
