//! One identity on two hosts: ours, or another node's.
//!
//! Whoever holds the node's key *is* the node as far as TLS can tell, so a copied data folder
//! running elsewhere cannot be refused by the handshake. What can be seen is a connection
//! whose peer proves our own id. That also happens when this node dials one of its own
//! addresses (an address-only seed that turns out to be itself): then both ends of the same
//! connection are ours, and the outbound end sees it at the same moment. An inbound
//! connection with our id and no such dial of our own within a few seconds comes from
//! another process holding our key: it is refused, logged, and reported in health.
//!
//! Another node's key on two hosts shows the same way from the outside: a second
//! connection proving its id, from another address, while the first still answers. The
//! pool keeps the first (routing never flips to a newcomer that proves nothing more) and
//! the clash is counted and reported here.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pqnode_crypto::NodeId;
use pqnode_health::Health;
use pqnode_limits::LogThrottle;

use super::lock;

/// How close in time the two ends of a dial to ourselves are seen.
pub(crate) const SELF_DIAL_WINDOW: Duration = Duration::from_secs(3);
/// How long a sighting keeps health at "warn".
const REPORTED_FOR: Duration = Duration::from_secs(600);

pub(crate) struct DuplicateIdentity {
    /// When our own dials reached ourselves, recently.
    self_dials: Mutex<VecDeque<Instant>>,
    last: Mutex<Option<Sighting>>,
    log: LogThrottle,
    /// Another node's id connected from a second address while the first answered.
    clash: Mutex<Option<Clash>>,
    clash_log: LogThrottle,
}

#[derive(Debug, Clone, Copy)]
struct Clash {
    node: NodeId,
    kept: SocketAddr,
    refused: SocketAddr,
    at: Instant,
    count: u64,
}

impl Default for DuplicateIdentity {
    fn default() -> Self {
        Self {
            self_dials: Mutex::default(),
            last: Mutex::default(),
            log: LogThrottle::new(REPORTED_FOR),
            clash: Mutex::default(),
            clash_log: LogThrottle::new(REPORTED_FOR),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Sighting {
    from: SocketAddr,
    at: Instant,
    count: u64,
}

impl DuplicateIdentity {
    /// An outbound connection of ours reached this node itself.
    pub(crate) fn dialed_self(&self, now: Instant) {
        let mut dials = lock(&self.self_dials);
        while dials
            .front()
            .is_some_and(|at| now.duration_since(*at) > SELF_DIAL_WINDOW * 2)
        {
            dials.pop_front();
        }
        dials.push_back(now);
    }

    /// An inbound connection from `from`, seen at `seen`, proved our own id. Called once
    /// [`SELF_DIAL_WINDOW`] has passed, so our own dial, if it was one, has been noted.
    pub(crate) fn inbound_self(&self, from: SocketAddr, seen: Instant) {
        let ours = lock(&self.self_dials)
            .iter()
            .any(|at| at.max(&seen).duration_since(*at.min(&seen)) <= SELF_DIAL_WINDOW);
        if ours {
            return;
        }
        let count = {
            let mut last = lock(&self.last);
            let count = last.map_or(0, |s| s.count) + 1;
            *last = Some(Sighting {
                from,
                at: seen,
                count,
            });
            count
        };
        if let Some(held) = self.log.admit(seen) {
            tracing::error!(
                %from,
                count,
                suppressed = held.count,
                "another host presents this node's identity (its key was copied?): refused; \
                 two nodes with one key hijack each other's routes"
            );
        }
    }

    /// `node`, connected from `kept` (which still answers), connected again from `refused`.
    pub(crate) fn remote_clash(
        &self,
        node: NodeId,
        kept: SocketAddr,
        refused: SocketAddr,
        now: Instant,
    ) {
        let count = {
            let mut clash = lock(&self.clash);
            let count = clash.map_or(0, |c| c.count) + 1;
            *clash = Some(Clash {
                node,
                kept,
                refused,
                at: now,
                count,
            });
            count
        };
        if let Some(held) = self.clash_log.admit(now) {
            tracing::warn!(
                %node,
                %kept,
                %refused,
                count,
                suppressed = held.count,
                "a node id connected from a second address while its first connection answers: \
                 one of them holds a copied key; keeping the first"
            );
        }
    }

    /// Warns while a sighting is recent: ours first, then another node's.
    pub(crate) fn health(&self, now: Instant) -> Option<Health> {
        let recent = |at: Instant| now.saturating_duration_since(at) < REPORTED_FOR;
        if let Some(last) = *lock(&self.last)
            && recent(last.at)
        {
            return Some(Health::warn(format!(
                "another host presents this node's identity: {} connection(s), the last from {} {} s ago",
                last.count,
                last.from,
                now.saturating_duration_since(last.at).as_secs()
            )));
        }
        let clash = (*lock(&self.clash)).filter(|c| recent(c.at))?;
        Some(Health::warn(format!(
            "node {} connected from {} while its connection from {} still answers ({} time(s)): \
             one of them holds a copied key; the first is kept",
            clash.node, clash.refused, clash.kept, clash.count
        )))
    }

    /// How many inbound connections proved our id without being our own dial.
    pub(crate) fn count(&self) -> u64 {
        lock(&self.last).map_or(0, |s| s.count)
    }

    /// How many second connections of another node's id were refused.
    pub(crate) fn clashes(&self) -> u64 {
        lock(&self.clash).map_or(0, |c| c.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> SocketAddr {
        "198.51.100.7:4001".parse().unwrap()
    }

    #[test]
    fn our_own_dial_is_not_a_duplicate() {
        let d = DuplicateIdentity::default();
        let t0 = Instant::now();
        d.dialed_self(t0);
        d.inbound_self(addr(), t0 + Duration::from_millis(5));
        assert!(d.health(t0).is_none());
        assert_eq!(d.count(), 0);
    }

    #[test]
    fn an_unexplained_connection_with_our_id_warns_for_a_while() {
        let d = DuplicateIdentity::default();
        let t0 = Instant::now();
        d.dialed_self(t0);
        let later = t0 + SELF_DIAL_WINDOW * 3;
        d.inbound_self(addr(), later);
        d.inbound_self(addr(), later);
        assert_eq!(d.count(), 2);
        let health = d.health(later).unwrap();
        assert!(health.reason.unwrap().contains("198.51.100.7:4001"));
        assert!(d.health(later + REPORTED_FOR).is_none());
    }
}
