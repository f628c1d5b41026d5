//! What a node remembers about the contacts it talked to, in or out of its routing table:
//! their round-trip times, and whether they have been failing.
//!
//! The routing table only holds K per bucket and only nodes that answered; a lookup talks to
//! many more. Remembering recent failures of *any* contact is what keeps a repeated lookup
//! after churn from paying a dead contact's timeout again when other nodes, which have not
//! noticed yet, keep naming it. The memory is bounded (least recently used goes first) and
//! forgets a failure after a while, so a node that comes back is tried again.

use std::collections::HashMap;
use std::time::Duration;

use pqnode_crypto::NodeId;

use crate::rtt::{Rtt, TimeoutBounds, Timeouts};
use crate::time::Instant;

#[derive(Debug, Clone)]
struct PeerState {
    rtt: Option<Rtt>,
    /// Failures since its last answer.
    failures: u8,
    last_failure: Instant,
    /// Our requests to it now past their soft timeout.
    stalled: u16,
    touched: Instant,
}

/// The contact book of one node.
#[derive(Debug, Clone)]
pub(crate) struct Peers {
    peers: HashMap<NodeId, PeerState>,
    capacity: usize,
    /// How long a failure keeps a contact out of lookups.
    failure_memory: Duration,
    /// First answers of contacts never measured before: the timeout basis for the next such
    /// contact. Kept apart from later answers because a first request usually waits for a
    /// dial and a post-quantum handshake (two round trips and ML-DSA-87 signatures) that a
    /// request on an open connection does not; timed by warm answers, every first contact
    /// would look overdue.
    first_contact: Option<Rtt>,
}

impl Peers {
    pub(crate) fn new(capacity: usize, failure_memory: Duration) -> Self {
        Self {
            peers: HashMap::new(),
            capacity: capacity.max(1),
            failure_memory,
            first_contact: None,
        }
    }

    /// `id` answered after `rtt`.
    pub(crate) fn answered(&mut self, id: NodeId, rtt: Duration, now: Instant) {
        let peer = self.entry(id, now);
        let first = peer.rtt.is_none();
        match &mut peer.rtt {
            Some(estimate) => estimate.update(rtt),
            None => peer.rtt = Some(Rtt::first(rtt)),
        }
        peer.failures = 0;
        if first {
            match &mut self.first_contact {
                Some(estimate) => estimate.update(rtt),
                None => self.first_contact = Some(Rtt::first(rtt)),
            }
        }
    }

    /// A request to `id` timed out, or the driver reported it failed.
    pub(crate) fn failed(&mut self, id: NodeId, now: Instant) {
        let peer = self.entry(id, now);
        peer.failures = peer.failures.saturating_add(1);
        peer.last_failure = now;
    }

    /// `id` sent us a request over an authenticated connection: it is alive now.
    pub(crate) fn heard_from(&mut self, id: &NodeId, now: Instant) {
        if let Some(peer) = self.peers.get_mut(id) {
            peer.failures = 0;
            peer.touched = now;
        }
    }

    /// A request to `id` passed its soft timeout, and is still waited for.
    pub(crate) fn stalled(&mut self, id: NodeId, now: Instant) {
        let peer = self.entry(id, now);
        peer.stalled = peer.stalled.saturating_add(1);
    }

    /// A stalled request to `id` ended (late answer, or failure).
    pub(crate) fn unstalled(&mut self, id: &NodeId) {
        if let Some(peer) = self.peers.get_mut(id) {
            peer.stalled = peer.stalled.saturating_sub(1);
        }
    }

    /// Whether lookups should leave `id` alone for now: it failed recently and has not
    /// answered since, or a request to it is overdue.
    pub(crate) fn is_suspect(&self, id: &NodeId, now: Instant) -> bool {
        self.peers
            .get(id)
            .is_some_and(|p| p.stalled > 0 || self.has_failed(id, now))
    }

    /// Whether `id` failed within the failure memory and has not answered or written since.
    pub(crate) fn has_failed(&self, id: &NodeId, now: Instant) -> bool {
        self.failures(id, now) > 0
    }

    /// Failures of `id` since it last answered or wrote, if the last one is within the
    /// failure memory; 0 otherwise.
    pub(crate) fn failures(&self, id: &NodeId, now: Instant) -> u8 {
        self.peers
            .get(id)
            .filter(|p| now.saturating_duration_since(p.last_failure) < self.failure_memory)
            .map_or(0, |p| p.failures)
    }

    /// The smoothed RTT of `id`, if it ever answered (and is still remembered).
    pub(crate) fn srtt(&self, id: &NodeId) -> Option<Duration> {
        self.peers.get(id)?.rtt.map(|r| r.srtt())
    }

    /// Soft and hard timeouts for a request to `id` (`None`: a seed known by address only).
    pub(crate) fn timeouts(&self, id: Option<&NodeId>, bounds: &TimeoutBounds) -> Timeouts {
        let contact = id.and_then(|id| self.peers.get(id)).and_then(|p| p.rtt);
        bounds.for_contact(contact, self.first_contact)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.peers.len()
    }

    fn entry(&mut self, id: NodeId, now: Instant) -> &mut PeerState {
        if !self.peers.contains_key(&id) && self.peers.len() >= self.capacity {
            self.evict();
        }
        let peer = self.peers.entry(id).or_insert(PeerState {
            rtt: None,
            failures: 0,
            last_failure: now,
            stalled: 0,
            touched: now,
        });
        peer.touched = now;
        peer
    }

    /// Drops the least recently touched quarter (at least one), so eviction costs one scan
    /// per many inserts. Contacts with a stalled request are kept: their answer is due.
    fn evict(&mut self) {
        let mut ages: Vec<(Instant, NodeId)> = self
            .peers
            .iter()
            .filter(|(_, p)| p.stalled == 0)
            .map(|(id, p)| (p.touched, *id))
            .collect();
        let drop = (self.capacity / 4).max(1).min(ages.len());
        if drop == 0 {
            return;
        }
        ages.select_nth_unstable(drop - 1);
        for (_, id) in ages.into_iter().take(drop) {
            self.peers.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::from_elapsed(Duration::from_millis(ms))
    }

    fn id(n: u8) -> NodeId {
        NodeId::from_bytes([n; 20])
    }

    const BOUNDS: TimeoutBounds = TimeoutBounds {
        max: Duration::from_secs(5),
        min: Duration::from_millis(250),
        min_soft: Duration::from_millis(50),
        initial_soft: Duration::from_secs(1),
    };

    #[test]
    fn a_failure_makes_a_contact_suspect_until_it_answers_or_is_forgotten() {
        let mut peers = Peers::new(16, Duration::from_secs(300));
        peers.answered(id(1), Duration::from_millis(40), at(0));
        assert!(!peers.is_suspect(&id(1), at(0)));
        peers.failed(id(1), at(1000));
        assert!(peers.is_suspect(&id(1), at(1000)));
        assert!(peers.is_suspect(&id(1), at(300_999)));
        assert!(!peers.is_suspect(&id(1), at(301_000)), "tried again later");
        peers.failed(id(1), at(400_000));
        peers.heard_from(&id(1), at(400_001));
        assert!(!peers.is_suspect(&id(1), at(400_001)), "it wrote to us");
        // A stalled request makes it suspect until it ends.
        peers.stalled(id(2), at(0));
        assert!(peers.is_suspect(&id(2), at(0)));
        peers.unstalled(&id(2));
        assert!(!peers.is_suspect(&id(2), at(0)));
    }

    #[test]
    fn timeouts_come_from_the_contact_then_from_first_contacts() {
        let mut peers = Peers::new(16, Duration::from_secs(300));
        assert_eq!(
            peers.timeouts(Some(&id(1)), &BOUNDS).soft,
            Duration::from_secs(1)
        );
        peers.answered(id(1), Duration::from_millis(200), at(0));
        // Measured: 3 × 200 ms, hard twice that.
        let t = peers.timeouts(Some(&id(1)), &BOUNDS);
        assert_eq!(
            (t.soft, t.hard),
            (Duration::from_millis(600), Duration::from_millis(1200))
        );
        // Warm answers (no dial) do not shorten what a first contact is given.
        for _ in 0..20 {
            peers.answered(id(1), Duration::from_millis(1), at(0));
        }
        // Never measured: the first contacts' estimate for soft, the maximum for hard.
        let t = peers.timeouts(Some(&id(2)), &BOUNDS);
        assert_eq!(
            (t.soft, t.hard),
            (Duration::from_millis(600), Duration::from_secs(5))
        );
        assert_eq!(peers.timeouts(None, &BOUNDS), t);
    }

    #[test]
    fn memory_is_bounded() {
        let mut peers = Peers::new(8, Duration::from_secs(300));
        for n in 0..100u8 {
            peers.failed(id(n), at(u64::from(n)));
        }
        assert!(peers.len() <= 8);
        assert!(
            peers.is_suspect(&id(99), at(100)),
            "the most recent is kept"
        );
    }
}
