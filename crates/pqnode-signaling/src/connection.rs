//! The socket side of a connection: admission, the writer task, and letting
//! the socket go cleanly. What the client says is handled in [`crate::session`].

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::protocol::{ErrorCode, ServerMessage, close, encode};
use crate::registry::{Outbound, Outbox};
use crate::server::Inner;
use crate::session::Session;

/// How long the writer may take to flush the last frames of a closing connection.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// After refusing an oversize frame, the rest of it is still unread in our
/// socket buffer, and closing a socket with unread data sends a TCP reset,
/// which can destroy our close frame in flight. Keeping the socket open a
/// moment lets the client read `TOO_LARGE` and the 1009 close first.
const OVERSIZE_LINGER: Duration = Duration::from_millis(500);

/// Whether the server can take this connection.
pub(crate) enum Admission {
    Admitted(Slot),
    Full,
    ShuttingDown,
}

/// A counted connection; dropping it gives the place back.
pub(crate) struct Slot {
    inner: Arc<Inner>,
    ip: Option<IpAddr>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.inner.release(self.ip);
    }
}

pub(crate) fn admit(inner: &Arc<Inner>, ip: Option<IpAddr>) -> Admission {
    if inner.shutdown.is_cancelled() {
        Admission::ShuttingDown
    } else if inner.admit(ip) {
        Admission::Admitted(Slot {
            inner: Arc::clone(inner),
            ip,
        })
    } else {
        Admission::Full
    }
}

/// Runs one connection to its end.
pub(crate) async fn serve(inner: Arc<Inner>, socket: WebSocket, admission: Admission) {
    let (sink, mut stream) = socket.split();
    let (outbox, queue) = mpsc::channel(inner.config.outbound_queue.max(4));
    let writer_gone = CancellationToken::new();
    let writer = inner
        .tasks
        .spawn(write_loop(sink, queue, writer_gone.clone()));

    let mut ending = Ending::ClosedByServer;
    match admission {
        Admission::Admitted(slot) => {
            match Session::new(Arc::clone(&inner), slot.ip, outbox) {
                Ok(session) => ending = session.run(&mut stream, writer_gone).await,
                Err(outbox) => refuse(
                    &inner,
                    &outbox,
                    ErrorCode::Internal,
                    "no randomness for a nonce",
                    close::TRY_AGAIN_LATER,
                ),
            }
            drop(slot);
        }
        Admission::Full => refuse(
            &inner,
            &outbox,
            ErrorCode::ServerFull,
            "connection limit reached",
            close::TRY_AGAIN_LATER,
        ),
        Admission::ShuttingDown => refuse(
            &inner,
            &outbox,
            ErrorCode::ShuttingDown,
            "the server is stopping",
            close::GOING_AWAY,
        ),
    }

    if tokio::time::timeout(CLOSE_GRACE, writer).await.is_err() {
        tracing::debug!("signaling writer did not finish in time; dropping the connection");
    }
    match ending {
        Ending::Gone => {}
        // The closing handshake: read (and discard) until the client's Close
        // answers ours, so the socket is not closed on unread data (which
        // would reset the connection and could lose our close frame).
        Ending::ClosedByServer => {
            let drain = async {
                while let Some(Ok(message)) = stream.next().await {
                    if let Message::Close(_) = message {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(CLOSE_GRACE, drain).await;
        }
        // The stream cannot be read past an oversize frame: just wait a moment.
        Ending::Oversize => tokio::time::sleep(OVERSIZE_LINGER).await,
    }
    drop(stream);
}

/// How a session ended, which decides how the socket is let go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// The client closed, or the connection died.
    Gone,
    /// We sent a Close frame and expect the client's.
    ClosedByServer,
    /// We refused an oversize frame and sent a Close frame.
    Oversize,
}

fn refuse(inner: &Inner, outbox: &Outbox, code: ErrorCode, message: &str, close_code: u16) {
    inner.counters.error(code);
    let text = encode(&ServerMessage::Error {
        id: None,
        code,
        message,
    });
    let _ = outbox.try_send(Outbound::Text(text));
    let _ = outbox.try_send(Outbound::Close(close_code, code.as_str()));
}

async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut queue: mpsc::Receiver<Outbound>,
    gone: CancellationToken,
) {
    // Everything already queued goes out with one flush: under load that is
    // one write for many frames instead of one per frame.
    'connection: while let Some(first) = queue.recv().await {
        let mut item = Some(first);
        while let Some(current) = item.take() {
            let (message, last) = match current {
                Outbound::Text(text) => (Message::Text(text.into()), false),
                Outbound::Ping => (Message::Ping(Default::default()), false),
                Outbound::Close(code, reason) => {
                    let reason = Utf8Bytes::from_static(reason);
                    (Message::Close(Some(CloseFrame { code, reason })), true)
                }
            };
            if sink.feed(message).await.is_err() || last {
                let _ = sink.flush().await;
                break 'connection;
            }
            item = queue.try_recv().ok();
        }
        if sink.flush().await.is_err() {
            break;
        }
    }
    gone.cancel();
    let _ = sink.close().await;
}
