//! One replica of one tracked document: its bounded queue of live updates, and the worker
//! task that talks to it, one request at a time (so pushes arrive in order, and a slow
//! replica slows only its own queue).
//!
//! The worker either pushes what is queued (merged into one update) or runs an exchange
//! when one is due. A replica that fails is "down": its queue is dropped, new updates are not
//! queued for it (the next exchange carries them), and it is retried with a growing delay, or
//! at once when the node says it is reachable again ([`Peer::heal`]).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use pqnode_crypto::NodeId;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::replicator::Shared;
use super::tracked::{self, Tracked};
use super::{ReplicationConfig, exchange, jitter};

pub(crate) struct Peer {
    pub(crate) node: NodeId,
    state: Mutex<State>,
    wake: Notify,
    pub(crate) cancel: CancellationToken,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Bytes>,
    bytes: usize,
    /// An exchange is due; it covers everything queued, which is dropped.
    resync: bool,
    /// The last request failed and no exchange has succeeded since.
    down: bool,
}

/// What the worker does next.
enum Work {
    Exchange,
    Push(Vec<Bytes>),
    Idle,
}

impl Peer {
    pub(crate) fn new(node: NodeId, cancel: CancellationToken, resync: bool) -> Self {
        let state = State {
            resync,
            ..State::default()
        };
        Self {
            node,
            state: Mutex::new(state),
            wake: Notify::new(),
            cancel,
        }
    }

    /// Queues a live update (committed here, not from replication). Returns true when the
    /// queue overflowed and was dropped for an exchange.
    pub(crate) fn offer(&self, update: &Bytes, config: &ReplicationConfig) -> bool {
        let mut state = self.state();
        if state.resync || state.down {
            // The coming exchange reads the document after this update was committed.
            return false;
        }
        let full = state.queue.len() >= config.live_queue_updates
            || state.bytes + update.len() > config.live_queue_bytes;
        if full {
            state.queue.clear();
            state.bytes = 0;
            state.resync = true;
        } else {
            state.bytes += update.len();
            state.queue.push_back(update.clone());
        }
        drop(state);
        self.wake.notify_one();
        full
    }

    /// An exchange is due (anti-entropy round).
    pub(crate) fn resync(&self) {
        self.state().resync = true;
        self.wake.notify_one();
    }

    /// The node says this replica is reachable again: retry now if it is down.
    pub(crate) fn heal(&self) {
        if self.state().down {
            self.wake.notify_one();
        }
    }

    /// Records a success; true if the replica was down (it healed).
    pub(crate) fn succeeded(&self) -> bool {
        std::mem::replace(&mut self.state().down, false)
    }

    /// Records a failure: the queue goes, an exchange is due once the retry delay is over.
    pub(crate) fn failed(&self) {
        let mut state = self.state();
        state.down = true;
        state.resync = true;
        state.queue.clear();
        state.bytes = 0;
    }

    pub(crate) fn is_down(&self) -> bool {
        self.state().down
    }

    fn next(&self, max_push_bytes: usize) -> Work {
        let mut state = self.state();
        if state.resync {
            state.resync = false;
            state.queue.clear();
            state.bytes = 0;
            return Work::Exchange;
        }
        let mut batch = Vec::new();
        let mut size = 0;
        while let Some(update) = state.queue.front() {
            if !batch.is_empty() && size + update.len() > max_push_bytes {
                break;
            }
            size += update.len();
            if let Some(update) = state.queue.pop_front() {
                batch.push(update);
            }
        }
        state.bytes -= size;
        match batch.is_empty() {
            true => Work::Idle,
            false => Work::Push(batch),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The worker of `peer`: runs until the peer is dropped or replication stops.
pub(crate) async fn run(shared: Arc<Shared>, tracked: Arc<Tracked>, peer: Arc<Peer>) {
    let config = &shared.config;
    let mut delay = config.retry_min;
    loop {
        let outcome = match peer.next(config.max_push_bytes) {
            Work::Idle => {
                tokio::select! {
                    _ = peer.cancel.cancelled() => return,
                    _ = peer.wake.notified() => continue,
                }
            }
            Work::Exchange => {
                let doc = &tracked.doc;
                tokio::select! {
                    _ = peer.cancel.cancelled() => return,
                    outcome = exchange::exchange(&shared, doc, peer.node) => outcome,
                }
            }
            Work::Push(batch) => {
                let doc = &tracked.doc;
                tokio::select! {
                    _ = peer.cancel.cancelled() => return,
                    outcome = exchange::push_live(&shared, doc, peer.node, batch) => outcome,
                }
            }
        };
        if tracked::settle(&shared, &tracked, &peer, outcome) {
            delay = config.retry_min;
            continue;
        }
        if peer.cancel.is_cancelled() {
            return;
        }
        // Down: wait out the delay, unless the node says it is back (or a round is due).
        tokio::select! {
            _ = peer.cancel.cancelled() => return,
            _ = tokio::time::sleep(jitter(delay)) => {}
            _ = peer.wake.notified() => {}
        }
        delay = (delay * 2).min(config.retry_max);
    }
}
