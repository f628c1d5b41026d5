//! Who is connected under which id, and what waits for peers that are not.
//!
//! The realm is plain data behind one mutex: every operation is short and
//! never awaits, so a relay is "look up, `try_send`, done". Frames go to a
//! connection through its bounded channel; a connection whose channel is full
//! is treated as dead, as the reference treats a failed send.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, OnceLock};

use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::wire::{self, Kind, Outbound};

/// The close code and reason a connection ends with when the server ends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CloseReason {
    pub code: u16,
    pub reason: &'static str,
}

impl CloseReason {
    pub(crate) const SHUTDOWN: Self = Self {
        code: 1001,
        reason: "server shutting down",
    };
    pub(crate) const REPLACED: Self = Self {
        code: 4009,
        reason: "replaced by a newer connection with the same id",
    };
    pub(crate) const TOO_SLOW: Self = Self {
        code: 1008,
        reason: "not reading its messages",
    };
    pub(crate) const LEFT: Self = Self {
        code: 1000,
        reason: "left",
    };
}

/// Lets the realm end a connection it does not own the task of.
#[derive(Debug, Default)]
pub(crate) struct ConnControl {
    cancel: CancellationToken,
    reason: OnceLock<CloseReason>,
}

impl ConnControl {
    pub(crate) fn child_of(parent: &CancellationToken) -> Self {
        Self {
            cancel: parent.child_token(),
            reason: OnceLock::new(),
        }
    }

    /// Asks the connection to close; the first reason given wins.
    pub(crate) fn close(&self, reason: CloseReason) {
        let _ = self.reason.set(reason);
        self.cancel.cancel();
    }

    pub(crate) fn cancelled(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.cancel.cancelled()
    }

    /// Why the connection was cancelled: server shutdown unless someone said otherwise.
    pub(crate) fn reason(&self) -> CloseReason {
        self.reason.get().copied().unwrap_or(CloseReason::SHUTDOWN)
    }
}

/// The realm's way to reach one connection.
#[derive(Debug, Clone)]
pub(crate) struct ConnHandle {
    pub id: u64,
    pub tx: mpsc::Sender<String>,
    pub control: Arc<ConnControl>,
}

impl ConnHandle {
    fn deliver(&self, frame: String) -> bool {
        self.tx.try_send(frame).is_ok()
    }
}

#[derive(Debug)]
struct Client {
    token: String,
    conn: ConnHandle,
}

#[derive(Debug)]
struct Queued {
    src: String,
    frame: String,
}

#[derive(Debug)]
struct Queue {
    generation: u64,
    messages: VecDeque<Queued>,
}

/// What [`Realm::register`] did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Registered {
    /// A new peer: it was sent OPEN, then whatever was queued for it.
    Opened { flushed: usize },
    /// The same id and token reconnected: the old connection is closed and the
    /// new one gets the queue, but no OPEN (the reference's quirk).
    TookOver { flushed: usize },
    /// The id is live with another token.
    IdTaken,
    /// The concurrent limit is reached.
    Full,
}

/// What [`Realm::relay`] did with a message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Relayed {
    Delivered,
    /// Held for an absent peer; `new_queue` is set when this message opened the
    /// queue, and the caller must arm its expiry timer.
    Queued {
        new_queue: Option<u64>,
    },
    /// The absent peer's queue is full: the sender got EXPIRE at once.
    QueueFull,
    /// The destination could not take the message: it is disconnected and the
    /// sender got LEAVE from it.
    DestinationDead,
    /// LEAVE without a destination: the sender left the realm.
    SenderLeft,
    /// LEAVE or EXPIRE for an absent peer, or a message without a destination.
    Dropped,
}

/// Caps that bound the realm's memory.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RealmLimits {
    pub concurrent: usize,
    pub queued_per_peer: usize,
    pub queued_total: usize,
}

#[derive(Debug)]
pub(crate) struct Realm {
    limits: RealmLimits,
    clients: HashMap<String, Client>,
    queues: HashMap<String, Queue>,
    queued_total: usize,
    next_generation: u64,
}

impl Realm {
    pub(crate) fn new(limits: RealmLimits) -> Self {
        Self {
            limits,
            clients: HashMap::new(),
            queues: HashMap::new(),
            queued_total: 0,
            next_generation: 0,
        }
    }

    pub(crate) fn peers(&self) -> usize {
        self.clients.len()
    }

    pub(crate) fn queued(&self) -> usize {
        self.queued_total
    }

    pub(crate) fn contains(&self, id: &str) -> bool {
        self.clients.contains_key(id)
    }

    pub(crate) fn peer_ids(&self) -> Vec<String> {
        self.clients.keys().cloned().collect()
    }

    pub(crate) fn register(&mut self, id: &str, token: &str, conn: &ConnHandle) -> Registered {
        if let Some(client) = self.clients.get_mut(id) {
            if client.token != token {
                return Registered::IdTaken;
            }
            let previous = std::mem::replace(&mut client.conn, conn.clone());
            previous.control.close(CloseReason::REPLACED);
            let flushed = self.flush_queue(id, conn);
            return Registered::TookOver { flushed };
        }
        if self.clients.len() >= self.limits.concurrent {
            return Registered::Full;
        }
        self.clients.insert(
            id.to_owned(),
            Client {
                token: token.to_owned(),
                conn: conn.clone(),
            },
        );
        conn.deliver(wire::open());
        let flushed = self.flush_queue(id, conn);
        Registered::Opened { flushed }
    }

    /// Removes `id` if it is still served by connection `conn_id`.
    pub(crate) fn unregister(&mut self, id: &str, conn_id: u64) -> bool {
        let ours = self.clients.get(id).is_some_and(|c| c.conn.id == conn_id);
        if ours {
            self.clients.remove(id);
        }
        ours
    }

    /// Relays one client message, with `src` stamped as the sender's id.
    pub(crate) fn relay(
        &mut self,
        src: &str,
        src_conn: u64,
        kind: Kind,
        dst: Option<&str>,
        payload: Option<&RawValue>,
    ) -> Relayed {
        let Some(dst) = dst else {
            if kind == Kind::Leave && self.unregister(src, src_conn) {
                return Relayed::SenderLeft;
            }
            return Relayed::Dropped;
        };
        let frame = Outbound {
            kind: kind.as_str(),
            src: Some(src),
            dst: Some(dst),
            payload,
        }
        .to_json();
        if let Some(client) = self.clients.get(dst) {
            if client.conn.deliver(frame) {
                return Relayed::Delivered;
            }
            let dead = client.conn.clone();
            self.clients.remove(dst);
            dead.control.close(CloseReason::TOO_SLOW);
            self.send_to(src, Kind::Leave, dst);
            return Relayed::DestinationDead;
        }
        if !kind.is_queued_when_absent() {
            return Relayed::Dropped;
        }
        self.enqueue(src, dst, frame)
    }

    fn enqueue(&mut self, src: &str, dst: &str, frame: String) -> Relayed {
        let existing_len = self.queues.get(dst).map_or(0, |q| q.messages.len());
        if existing_len >= self.limits.queued_per_peer
            || self.queued_total >= self.limits.queued_total
        {
            let already_waiting = self
                .queues
                .get(dst)
                .is_some_and(|q| q.messages.iter().any(|m| m.src == src));
            // One EXPIRE per (src, dst): a sender with messages already queued
            // hears about this destination when the queue expires.
            if !already_waiting {
                self.send_to(src, Kind::Expire, dst);
            }
            return Relayed::QueueFull;
        }
        let mut new_queue = None;
        let queue = self.queues.entry(dst.to_owned()).or_insert_with(|| {
            let generation = self.next_generation;
            self.next_generation += 1;
            new_queue = Some(generation);
            Queue {
                generation,
                messages: VecDeque::new(),
            }
        });
        queue.messages.push_back(Queued {
            src: src.to_owned(),
            frame,
        });
        self.queued_total += 1;
        Relayed::Queued { new_queue }
    }

    /// Drops the queue of `dst` if it is still generation `generation`, and
    /// tells each sender once that `dst` did not come. Returns how many
    /// messages expired.
    pub(crate) fn expire(&mut self, dst: &str, generation: u64) -> usize {
        let current = self
            .queues
            .get(dst)
            .is_some_and(|q| q.generation == generation);
        if !current {
            return 0;
        }
        let Some(queue) = self.queues.remove(dst) else {
            return 0;
        };
        self.queued_total -= queue.messages.len();
        let mut told = HashSet::new();
        for message in &queue.messages {
            if told.insert(message.src.as_str()) {
                self.send_to(&message.src, Kind::Expire, dst);
            }
        }
        queue.messages.len()
    }

    /// Sends `{type, src: from, dst: to}` to `to` if it is connected; never queued.
    fn send_to(&self, to: &str, kind: Kind, from: &str) {
        if let Some(client) = self.clients.get(to) {
            let frame = Outbound {
                kind: kind.as_str(),
                src: Some(from),
                dst: Some(to),
                payload: None,
            }
            .to_json();
            client.conn.deliver(frame);
        }
    }

    fn flush_queue(&mut self, id: &str, conn: &ConnHandle) -> usize {
        let Some(queue) = self.queues.remove(id) else {
            return 0;
        };
        self.queued_total -= queue.messages.len();
        let flushed = queue.messages.len();
        for message in queue.messages {
            conn.deliver(message.frame);
        }
        flushed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: RealmLimits = RealmLimits {
        concurrent: 3,
        queued_per_peer: 2,
        queued_total: 3,
    };

    fn conn(id: u64) -> (ConnHandle, mpsc::Receiver<String>) {
        let (tx, rx) = mpsc::channel(8);
        let handle = ConnHandle {
            id,
            tx,
            control: Arc::new(ConnControl::default()),
        };
        (handle, rx)
    }

    fn drain(rx: &mut mpsc::Receiver<String>) -> Vec<String> {
        std::iter::from_fn(|| rx.try_recv().ok()).collect()
    }

    fn payload(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_owned()).unwrap()
    }

    #[test]
    fn new_peer_gets_open_and_messages_relay_with_src() {
        let mut realm = Realm::new(LIMITS);
        let (a, mut a_rx) = conn(1);
        let (b, mut b_rx) = conn(2);
        assert_eq!(
            realm.register("a", "t", &a),
            Registered::Opened { flushed: 0 }
        );
        assert_eq!(
            realm.register("b", "t", &b),
            Registered::Opened { flushed: 0 }
        );
        assert_eq!(drain(&mut a_rx), [r#"{"type":"OPEN"}"#]);
        drain(&mut b_rx);

        let p = payload(r#"{"sdp":1}"#);
        let out = realm.relay("a", 1, Kind::Offer, Some("b"), Some(&p));
        assert_eq!(out, Relayed::Delivered);
        assert_eq!(
            drain(&mut b_rx),
            [r#"{"type":"OFFER","src":"a","dst":"b","payload":{"sdp":1}}"#]
        );
    }

    #[test]
    fn other_token_is_refused_same_token_takes_over_without_open() {
        let mut realm = Realm::new(LIMITS);
        let (first, _rx1) = conn(1);
        let (second, mut rx2) = conn(2);
        realm.register("a", "t", &first);
        assert_eq!(realm.register("a", "other", &second), Registered::IdTaken);
        assert_eq!(
            realm.register("a", "t", &second),
            Registered::TookOver { flushed: 0 }
        );
        assert!(drain(&mut rx2).is_empty());
        assert_eq!(first.control.reason(), CloseReason::REPLACED);
        // The old connection's clean-up must not remove the new one.
        assert!(!realm.unregister("a", 1));
        assert!(realm.contains("a"));
    }

    #[test]
    fn concurrent_limit_refuses_new_ids() {
        let mut realm = Realm::new(LIMITS);
        for i in 0..3 {
            let (c, _rx) = conn(i);
            realm.register(&format!("p{i}"), "t", &c);
        }
        let (c, _rx) = conn(9);
        assert_eq!(realm.register("p9", "t", &c), Registered::Full);
    }

    #[test]
    fn queued_messages_flush_on_connect_in_order() {
        let mut realm = Realm::new(LIMITS);
        let (a, _a_rx) = conn(1);
        realm.register("a", "t", &a);
        let first = realm.relay("a", 1, Kind::Offer, Some("b"), None);
        assert!(matches!(first, Relayed::Queued { new_queue: Some(_) }));
        let second = realm.relay("a", 1, Kind::Candidate, Some("b"), None);
        assert_eq!(second, Relayed::Queued { new_queue: None });
        assert_eq!(
            realm.relay("a", 1, Kind::Leave, Some("b"), None),
            Relayed::Dropped
        );
        assert_eq!(realm.queued(), 2);

        let (b, mut b_rx) = conn(2);
        assert_eq!(
            realm.register("b", "t", &b),
            Registered::Opened { flushed: 2 }
        );
        let frames = drain(&mut b_rx);
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0], r#"{"type":"OPEN"}"#);
        assert!(frames[1].contains("OFFER") && frames[2].contains("CANDIDATE"));
        assert_eq!(realm.queued(), 0);
    }

    #[test]
    fn expiry_tells_each_sender_once() {
        let mut realm = Realm::new(LIMITS);
        let (a, mut a_rx) = conn(1);
        realm.register("a", "t", &a);
        drain(&mut a_rx);
        let Relayed::Queued {
            new_queue: Some(generation),
        } = realm.relay("a", 1, Kind::Offer, Some("gone"), None)
        else {
            panic!("first message opens a queue");
        };
        realm.relay("a", 1, Kind::Candidate, Some("gone"), None);
        // A stale timer for an older queue does nothing.
        assert_eq!(realm.expire("gone", generation + 1), 0);
        assert_eq!(realm.expire("gone", generation), 2);
        assert_eq!(
            drain(&mut a_rx),
            [r#"{"type":"EXPIRE","src":"gone","dst":"a"}"#]
        );
        assert_eq!(realm.queued(), 0);
    }

    #[test]
    fn full_queue_answers_expire_at_once_to_new_senders() {
        let mut realm = Realm::new(LIMITS);
        let (a, mut a_rx) = conn(1);
        let (c, mut c_rx) = conn(3);
        realm.register("a", "t", &a);
        realm.register("c", "t", &c);
        drain(&mut a_rx);
        drain(&mut c_rx);
        realm.relay("a", 1, Kind::Offer, Some("x"), None);
        realm.relay("a", 1, Kind::Offer, Some("x"), None);
        assert_eq!(
            realm.relay("a", 1, Kind::Offer, Some("x"), None),
            Relayed::QueueFull
        );
        assert!(
            drain(&mut a_rx).is_empty(),
            "a hears when the queue expires"
        );
        assert_eq!(
            realm.relay("c", 3, Kind::Offer, Some("x"), None),
            Relayed::QueueFull
        );
        assert_eq!(
            drain(&mut c_rx),
            [r#"{"type":"EXPIRE","src":"x","dst":"c"}"#]
        );
    }

    #[test]
    fn a_destination_that_cannot_keep_up_is_disconnected() {
        let mut realm = Realm::new(LIMITS);
        let (a, mut a_rx) = conn(1);
        let (tx, _b_rx) = mpsc::channel(1);
        let b = ConnHandle {
            id: 2,
            tx,
            control: Arc::new(ConnControl::default()),
        };
        realm.register("a", "t", &a);
        realm.register("b", "t", &b); // OPEN fills b's one slot.
        drain(&mut a_rx);
        assert_eq!(
            realm.relay("a", 1, Kind::Offer, Some("b"), None),
            Relayed::DestinationDead
        );
        assert!(!realm.contains("b"));
        assert_eq!(b.control.reason(), CloseReason::TOO_SLOW);
        assert_eq!(
            drain(&mut a_rx),
            [r#"{"type":"LEAVE","src":"b","dst":"a"}"#]
        );
    }

    #[test]
    fn leave_without_destination_removes_the_sender() {
        let mut realm = Realm::new(LIMITS);
        let (a, _rx) = conn(1);
        realm.register("a", "t", &a);
        assert_eq!(
            realm.relay("a", 1, Kind::Leave, None, None),
            Relayed::SenderLeft
        );
        assert!(!realm.contains("a"));
    }
}
