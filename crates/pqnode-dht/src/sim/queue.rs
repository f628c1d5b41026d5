//! The simulator's event queue: a min-heap on (time, insertion order), so events at the same
//! instant run in the order they were scheduled and a run is a pure function of its seed.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::net::SocketAddr;

use crate::contact::{Contact, Peer};
use crate::message::{Request, Response};
use crate::node::RequestId;
use crate::time::Instant;

#[derive(Debug)]
pub(crate) enum SimEvent {
    /// A request reaches whatever node listens on `to.addr`.
    Request {
        from: usize,
        to: Peer,
        id: RequestId,
        request: Request,
    },
    /// A response reaches the node that sent request `id`.
    Response {
        to: usize,
        id: RequestId,
        responder: Contact,
        response: Response,
    },
    /// The driver of node `to` reports request `id` failed (connection refused).
    Failure { to: usize, id: RequestId },
    /// A node's timer, as it was when scheduled.
    Timer { node: usize },
    /// A node joins through seeds.
    Join { node: usize, seeds: Vec<SocketAddr> },
}

#[derive(Debug)]
struct Scheduled {
    at: Instant,
    seq: u64,
    event: SimEvent,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap and we want the earliest first.
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

#[derive(Debug, Default)]
pub(crate) struct EventQueue {
    heap: BinaryHeap<Scheduled>,
    seq: u64,
}

impl EventQueue {
    pub(crate) fn push(&mut self, at: Instant, event: SimEvent) {
        self.seq += 1;
        self.heap.push(Scheduled {
            at,
            seq: self.seq,
            event,
        });
    }

    pub(crate) fn peek_time(&self) -> Option<Instant> {
        self.heap.peek().map(|s| s.at)
    }

    pub(crate) fn pop(&mut self) -> Option<(Instant, SimEvent)> {
        self.heap.pop().map(|s| (s.at, s.event))
    }
}
