//! The socket under one HTTP connection, as hyper (and, after an upgrade, a
//! WebSocket) sees it.
//!
//! It does three things a bare `TcpStream` cannot: it keeps the connection's
//! [`Ticket`] alive exactly as long as the socket, so upgraded connections
//! stay counted; it fails every read and write once the connection's close
//! token is cancelled, so a forced close reaches sockets hyper has already
//! handed to a WebSocket task; and it turns hyper's automatic, bodiless
//! 400 / 414 / 431 answers to malformed requests into the API's JSON error.
//! It does not parse HTTP otherwise.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::sync::WaitForCancellationFutureOwned;

use super::admission::Ticket;

/// What the socket, the HTTP service and the connection task share.
pub(super) struct ConnState {
    ticket: Ticket,
    started: Instant,
    /// Milliseconds after `started` when bytes last moved.
    last_activity_ms: AtomicU64,
    in_flight: AtomicUsize,
    /// The last request was `HEAD`: an empty-bodied error to it must stay bodiless.
    last_was_head: AtomicBool,
}

impl ConnState {
    pub(super) fn new(ticket: Ticket) -> Arc<Self> {
        Arc::new(Self {
            ticket,
            started: Instant::now(),
            last_activity_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            last_was_head: AtomicBool::new(false),
        })
    }

    pub(super) fn ticket(&self) -> &Ticket {
        &self.ticket
    }

    fn touch(&self) {
        let ms = self.started.elapsed().as_millis() as u64;
        self.last_activity_ms.store(ms, Ordering::Relaxed);
    }

    /// When the connection last moved bytes.
    pub(super) fn last_activity(&self) -> Instant {
        self.started + Duration::from_millis(self.last_activity_ms.load(Ordering::Relaxed))
    }

    pub(super) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// A request head arrived and is handed to the router.
    pub(super) fn request_started(self: &Arc<Self>, is_head: bool) -> InFlight {
        self.ticket.activate();
        self.last_was_head.store(is_head, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.touch();
        InFlight(self.clone())
    }
}

/// One request being handled; the count drops with it, even if hyper drops the handler.
pub(super) struct InFlight(Arc<ConnState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.touch();
    }
}

pub(super) struct ConnIo {
    stream: TcpStream,
    state: Arc<ConnState>,
    closed: Pin<Box<WaitForCancellationFutureOwned>>,
    is_closed: bool,
    /// A JSON error answer that replaced hyper's, still being written.
    replacement: Option<(Vec<u8>, usize)>,
    /// Malformed requests answered here, reported by the listener.
    malformed: Arc<AtomicU64>,
}

impl ConnIo {
    pub(super) fn new(stream: TcpStream, state: Arc<ConnState>, malformed: Arc<AtomicU64>) -> Self {
        let closed = Box::pin(state.ticket.close_token().clone().cancelled_owned());
        Self {
            stream,
            state,
            closed,
            is_closed: false,
            replacement: None,
            malformed,
        }
    }

    /// Errors once the connection has been told to close. Polling the token here registers
    /// this task's waker, so a socket parked in a read wakes up and fails at once.
    fn check_closed(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if !self.is_closed && self.closed.as_mut().poll(cx).is_ready() {
            self.is_closed = true;
            // A reset, not a FIN handshake: nothing the peer could still send matters.
            let _ = self.stream.set_zero_linger();
        }
        if self.is_closed {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "connection closed by the server",
            ));
        }
        Ok(())
    }

    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = &mut self.replacement {
            if *written >= bytes.len() {
                self.replacement = None;
                break;
            }
            let n = ready!(Pin::new(&mut self.stream).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
            self.state.touch();
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for ConnIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check_closed(cx)?;
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.stream).poll_read(cx, buf))?;
        if buf.filled().len() > before {
            this.state.touch();
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check_closed(cx)?;
        ready!(this.poll_replacement(cx))?;
        if !this.state.last_was_head.load(Ordering::Relaxed)
            && let Some(json) = json_error_for(buf)
        {
            this.malformed.fetch_add(1, Ordering::Relaxed);
            this.replacement = Some((json, 0));
            // hyper's bytes are consumed: ours go out in their place.
            let _ = this.poll_replacement(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        let n = ready!(Pin::new(&mut this.stream).poll_write(cx, buf))?;
        if n > 0 {
            this.state.touch();
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check_closed(cx)?;
        ready!(this.poll_replacement(cx))?;
        Pin::new(&mut this.stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.check_closed(cx).is_err() {
            // Already being torn down by the server: nothing left to say politely.
            return Poll::Ready(Ok(()));
        }
        ready!(this.poll_replacement(cx))?;
        Pin::new(&mut this.stream).poll_shutdown(cx)
    }
}

/// If `head` is a complete, bodiless 400, 414 or 431 response head (what hyper writes by
/// itself for a request it cannot parse; it has no hook for a body), the same answer as
/// JSON. Anything else, including every response the router makes (they carry a
/// `content-type` or a body), is left alone.
fn json_error_for(head: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(head).ok()?;
    let rest = text.strip_prefix("HTTP/1.1 ")?;
    let (code, message) = match rest.get(..4)? {
        "400 " => ("BAD_REQUEST", "the request could not be parsed as HTTP/1.1"),
        "414 " => ("URI_TOO_LONG", "the request target is too long"),
        "431 " => (
            "HEADERS_TOO_LARGE",
            "the request's header fields are too large",
        ),
        _ => return None,
    };
    let head = text.strip_suffix("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let mut kept = Vec::new();
    let mut empty_body = false;
    for line in lines {
        let (name, value) = line.split_once(':')?;
        if name.eq_ignore_ascii_case("content-type")
            || name.eq_ignore_ascii_case("transfer-encoding")
        {
            return None;
        }
        if name.eq_ignore_ascii_case("content-length") {
            if value.trim() != "0" {
                return None;
            }
            empty_body = true;
            continue;
        }
        kept.push(line);
    }
    if !empty_body {
        return None;
    }
    let body = serde_json::json!({ "error": { "code": code, "message": message } }).to_string();
    let mut out = String::with_capacity(head.len() + body.len() + 64);
    out.push_str(status_line);
    out.push_str("\r\n");
    for line in kept {
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("content-type: application/json\r\n");
    out.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    out.push_str(&body);
    Some(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::json_error_for;

    #[test]
    fn hypers_bodiless_parse_error_becomes_json() {
        let head = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let out = String::from_utf8(json_error_for(head).unwrap()).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
        assert!(head.contains("date: x"), "{out}");
        assert!(head.contains("content-type: application/json"), "{out}");
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"]["code"], "BAD_REQUEST");
        let h431 = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n";
        assert!(json_error_for(h431).is_some());
    }

    #[test]
    fn router_responses_are_left_alone() {
        for head in [
            &b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 12\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n{}",
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n",
            b"\x81\x05hello",
        ] {
            assert!(json_error_for(head).is_none(), "{head:?}");
        }
    }
}
