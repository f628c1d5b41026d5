//! [`Session`]: one client connection speaking the Yjs sync and awareness protocol, as npm
//! `y-websocket`'s provider does, without doing any I/O itself.
//!
//! The integrator reads frames from the socket into [`Session::on_message`], events from the
//! [`DocSubscription`] into [`Session::on_event`], and writes every returned [`Outgoing`] as
//! one binary frame (y-websocket reads one message per frame). On an error it closes the
//! socket with [`SessionError::close_code`] and the error's text.
//!
//! The exchange: on open the server sends its sync step 1 and the current awareness; it
//! answers a client's step 1 with step 2 (what the client lacks); a client's step 2 and
//! updates are applied through the [`DocStore`] and reach the other sessions only once
//! committed. Awareness updates are relayed at once; the client ids a connection announced are
//! removed (null state) for everyone when it closes.
//!
//! A client's updates are pipelined: the session validates each one and queues it for the
//! document's writer without waiting for its commit, so a burst from one connection shares
//! commits (one `fsync` for many updates) instead of paying one each. At most
//! [`DocConfig::max_batch_updates`](crate::DocConfig::max_batch_updates) updates and
//! [`DocConfig::max_frame_bytes`](crate::DocConfig::max_frame_bytes) bytes wait at once; past
//! that, reading the next frame waits for the oldest commit. The integrator polls
//! [`Session::committed`] alongside the socket, so a failed commit ends the connection at once.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use bytes::Bytes;

use crate::docstore::Commit;
use crate::hub::{DocEvent, DocSubscription, OriginId};
use crate::slot::DocSlot;
use crate::stats::{add, sub};
use crate::wire::{self, Incoming, Reader};
use crate::{DocError, DocName, DocStore, SessionError, awareness, ydoc};

/// How a session may use its document.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionOptions {
    /// Updates from the client are dropped (counted as ignored); it still receives everything.
    pub read_only: bool,
}

impl SessionOptions {
    /// A session that receives everything and may change nothing.
    pub fn read_only() -> Self {
        Self { read_only: true }
    }
}

/// What a message sent to the client is, for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageKind {
    /// y-sync step 1: our state vector, asking for what we lack.
    SyncStep1,
    /// y-sync step 2: what the other side lacks.
    SyncStep2,
    /// A live document update.
    Update,
    /// A live awareness (presence) update.
    Awareness,
}

/// One frame to send to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// What it is.
    pub kind: MessageKind,
    /// The bytes to send, as one WebSocket binary message.
    pub frame: Bytes,
}

/// One connection's protocol state. Dropping it closes it (see [`close`](Self::close)).
pub struct Session {
    docs: DocStore,
    slot: Arc<DocSlot>,
    origin: OriginId,
    options: SessionOptions,
    /// Awareness client ids this connection announced and has not removed.
    clients: HashSet<u64>,
    /// Updates queued for commit and not yet answered, oldest first.
    in_flight: VecDeque<InFlight>,
    in_flight_bytes: usize,
    closed: bool,
}

/// One update of this session's waiting for its commit.
struct InFlight {
    len: usize,
    commit: Commit,
}

impl Session {
    /// Opens a session on `name`: loads the document, subscribes to it, and returns the
    /// session, its event feed and the frames to send first (step 1, current awareness).
    pub async fn open(
        docs: &DocStore,
        name: &DocName,
        options: SessionOptions,
    ) -> Result<(Session, DocSubscription, Vec<Outgoing>), DocError> {
        // Subscribe before reading the state: an update committed in between is then heard
        // (perhaps twice, which Yjs ignores) instead of missed.
        let events = docs.subscribe(name);
        let slot = docs.inner.slot(name);
        let sv = {
            let state = docs.inner.loaded(&slot).await?;
            state
                .as_ref()
                .map(|loaded| ydoc::state_vector(&loaded.doc))
                .unwrap_or_default()
        };
        let counters = &docs.inner.counters;
        add(&counters.sessions_open, 1);
        add(&counters.sessions_total, 1);
        let session = Session {
            docs: docs.clone(),
            origin: docs.new_origin(),
            slot,
            options,
            clients: HashSet::new(),
            in_flight: VecDeque::new(),
            in_flight_bytes: 0,
            closed: false,
        };
        let mut greeting = vec![session.out(MessageKind::SyncStep1, wire::step1(sv))];
        if let Some(frame) = awareness::current(&session.slot) {
            greeting.push(session.out(MessageKind::Awareness, frame));
        }
        Ok((session, events, greeting))
    }

    /// The document this session is on.
    pub fn name(&self) -> &DocName {
        &self.slot.name
    }

    /// This session's origin: its updates and awareness carry it.
    pub fn origin(&self) -> OriginId {
        self.origin
    }

    /// Handles one frame from the client (one or more messages); returns the frames to send
    /// back. Updates are validated and queued for commit, not awaited (see the module docs;
    /// [`committed`](Self::committed) reports each commit). An error means the connection
    /// must close; nothing of the offending message was applied or relayed.
    pub async fn on_message(&mut self, frame: &[u8]) -> Result<Vec<Outgoing>, SessionError> {
        if self.closed {
            return Err(SessionError::Closed);
        }
        let counters = &self.docs.inner.counters;
        add(&counters.frames_in, 1);
        add(&counters.bytes_in, frame.len() as u64);
        let max = self.docs.config().max_frame_bytes;
        if frame.len() > max {
            return Err(SessionError::FrameTooLarge {
                len: frame.len(),
                max,
            });
        }
        let mut reader = Reader::new(frame);
        let mut replies = Vec::new();
        if reader.is_empty() {
            return Err(SessionError::Malformed {
                reason: "empty frame".into(),
            });
        }
        while !reader.is_empty() {
            let message =
                wire::next_message(&mut reader).map_err(|error| SessionError::Malformed {
                    reason: error.to_string(),
                })?;
            self.handle(message, &mut replies).await?;
        }
        Ok(replies)
    }

    async fn handle(
        &mut self,
        message: Incoming<'_>,
        replies: &mut Vec<Outgoing>,
    ) -> Result<(), SessionError> {
        match message {
            Incoming::Step1(sv) => {
                let diff = self
                    .docs
                    .diff_since(&self.slot.name, &sv)
                    .await
                    .map_err(SessionError::Update)?;
                replies.push(self.out(MessageKind::SyncStep2, wire::step2(diff)));
            }
            Incoming::Step2(update) | Incoming::Update(update) => {
                if self.options.read_only {
                    add(&self.docs.inner.counters.ignored_messages, 1);
                    return Ok(());
                }
                self.make_room(update.len()).await?;
                let bytes = Bytes::copy_from_slice(update);
                let max = self.docs.config().max_update_bytes;
                let queued = self
                    .docs
                    .inner
                    .enqueue(&self.slot, bytes, self.origin, max)
                    .map_err(SessionError::Update)?;
                if let Some(commit) = queued {
                    self.in_flight_bytes += update.len();
                    self.in_flight.push_back(InFlight {
                        len: update.len(),
                        commit,
                    });
                }
            }
            Incoming::Awareness(raw, update) => {
                let max = self.docs.config().max_awareness_bytes;
                if raw.len() > max {
                    return Err(SessionError::AwarenessTooLarge {
                        len: raw.len(),
                        max,
                    });
                }
                for (client, entry) in &update.clients {
                    match &*entry.json {
                        "null" => self.clients.remove(&client.get()),
                        _ => self.clients.insert(client.get()),
                    };
                }
                let frame = wire::awareness_message(update.clone());
                awareness::apply(&self.slot, update)
                    .map_err(|reason| SessionError::Malformed { reason })?;
                add(&self.docs.inner.counters.awareness_updates, 1);
                let _ = self.slot.events.send(Arc::new(DocEvent::Awareness {
                    frame: Bytes::from(frame),
                    origin: self.origin,
                }));
            }
            Incoming::QueryAwareness => {
                if let Some(frame) = awareness::current(&self.slot) {
                    replies.push(self.out(MessageKind::Awareness, frame));
                }
            }
            Incoming::Ignored(kind) => {
                tracing::trace!(doc = %self.slot.name, kind, "ignored a message");
                add(&self.docs.inner.counters.ignored_messages, 1);
            }
        }
        Ok(())
    }

    /// Waits for the commit of the oldest update this session queued; pending while none
    /// waits. An error (the store refused the commit, or the document would pass its cap)
    /// means the connection must close. Cancel-safe: poll it in the connection's `select!`.
    pub async fn committed(&mut self) -> Result<(), SessionError> {
        let Some(oldest) = self.in_flight.front_mut() else {
            return std::future::pending().await;
        };
        let answer = (&mut oldest.commit).await;
        if let Some(done) = self.in_flight.pop_front() {
            self.in_flight_bytes -= done.len;
        }
        match answer {
            Ok(Ok(_seq)) => Ok(()),
            Ok(Err(error)) => Err(SessionError::Update(error)),
            Err(_) => Err(SessionError::Update(DocError::Stopped)),
        }
    }

    /// Waits until every update this session queued is committed: what a caller that must
    /// know its updates are durable (a test, a graceful close) awaits.
    pub async fn flush(&mut self) -> Result<(), SessionError> {
        while !self.in_flight.is_empty() {
            self.committed().await?;
        }
        Ok(())
    }

    /// Waits for commits until an update of `len` bytes fits the in-flight budget.
    async fn make_room(&mut self, len: usize) -> Result<(), SessionError> {
        let config = self.docs.config();
        let (max_updates, max_bytes) = (config.max_batch_updates, config.max_frame_bytes);
        while !self.in_flight.is_empty()
            && (self.in_flight.len() >= max_updates || self.in_flight_bytes + len > max_bytes)
        {
            self.committed().await?;
        }
        Ok(())
    }

    /// Turns a document event into what this client must hear: nothing for its own updates.
    /// Its own awareness does come back, as from y-websocket's server: a client alone in a
    /// room hears nothing else, and y-websocket reconnects after 30 s without a message.
    pub fn on_event(&mut self, event: DocEvent) -> Result<Vec<Outgoing>, SessionError> {
        if self.closed {
            return Err(SessionError::Closed);
        }
        match event {
            DocEvent::Update { origin, .. } if origin == self.origin => Ok(Vec::new()),
            DocEvent::Update { frame, .. } => Ok(vec![self.count(MessageKind::Update, frame)]),
            DocEvent::Awareness { frame, .. } => {
                Ok(vec![self.count(MessageKind::Awareness, frame)])
            }
            DocEvent::Deleted => Err(SessionError::DocumentDeleted),
        }
    }

    /// Ends the session: the awareness states this connection announced are removed for
    /// everyone else. Idempotent; dropping the session does it too.
    pub fn close(&mut self) {
        if std::mem::replace(&mut self.closed, true) {
            return;
        }
        sub(&self.docs.inner.counters.sessions_open, 1);
        let clients: Vec<u64> = self.clients.drain().collect();
        if let Some(frame) = awareness::remove(&self.slot, clients) {
            let _ = self.slot.events.send(Arc::new(DocEvent::Awareness {
                frame: Bytes::from(frame),
                origin: self.origin,
            }));
        }
    }

    fn out(&self, kind: MessageKind, frame: Vec<u8>) -> Outgoing {
        self.count(kind, Bytes::from(frame))
    }

    fn count(&self, kind: MessageKind, frame: Bytes) -> Outgoing {
        let counters = &self.docs.inner.counters;
        add(&counters.frames_out, 1);
        add(&counters.bytes_out, frame.len() as u64);
        Outgoing { kind, frame }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.close();
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("doc", &self.slot.name)
            .field("origin", &self.origin)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}
