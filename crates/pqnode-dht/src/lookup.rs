//! One iterative Kademlia lookup: which contacts to ask next and when to stop.
//!
//! Up to α requests are in flight, always to the closest contacts not yet asked among the K
//! closest known. The lookup ends when the K closest contacts that have not failed have all
//! answered (or none is left to ask). A contact learned from a response one hop deeper than the
//! contact that named it; the lookup's `rounds` is the deepest hop that answered.

use pqnode_crypto::NodeId;

use crate::contact::Contact;
use crate::distance::Distance;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    NotAsked,
    InFlight,
    Answered,
    Failed,
}

#[derive(Debug, Clone)]
struct Candidate {
    contact: Contact,
    distance: Distance,
    progress: Progress,
    hop: u32,
}

/// A lookup's figures when it ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LookupStats {
    /// Deepest hop that answered (1 = a contact from our own table).
    pub rounds: u32,
    /// Requests sent.
    pub requests: u32,
    /// Requests that timed out or failed.
    pub failures: u32,
}

#[derive(Debug, Clone)]
pub(crate) struct Lookup {
    target: NodeId,
    local: NodeId,
    k: usize,
    alpha: usize,
    /// Sorted by distance to the target, closest first; at most `max_candidates`.
    candidates: Vec<Candidate>,
    in_flight: usize,
    stats: LookupStats,
}

impl Lookup {
    pub fn new(target: NodeId, local: NodeId, k: usize, alpha: usize) -> Self {
        Self {
            target,
            local,
            k: k.max(1),
            alpha: alpha.max(1),
            candidates: Vec::new(),
            in_flight: 0,
            stats: LookupStats::default(),
        }
    }

    pub fn target(&self) -> &NodeId {
        &self.target
    }

    pub fn stats(&self) -> LookupStats {
        self.stats
    }

    /// Adds contacts to ask, found `hop` hops away (our own table is hop 1).
    pub fn add(&mut self, contacts: impl IntoIterator<Item = Contact>, hop: u32) {
        for contact in contacts {
            if contact.id == self.local {
                continue;
            }
            let distance = Distance::between(&self.target, &contact.id);
            if let Err(at) = self
                .candidates
                .binary_search_by_key(&distance, |c| c.distance)
            {
                // Far candidates beyond what the lookup could ever ask are not worth keeping.
                if at >= self.max_candidates() {
                    continue;
                }
                self.candidates.insert(
                    at,
                    Candidate {
                        contact,
                        distance,
                        progress: Progress::NotAsked,
                        hop,
                    },
                );
                self.trim();
            }
        }
    }

    /// The next contact to ask, if fewer than α are in flight; marks it in flight.
    pub fn next_request(&mut self) -> Option<Contact> {
        if self.in_flight >= self.alpha || self.is_finished() {
            return None;
        }
        let k = self.k;
        let candidate = self
            .candidates
            .iter_mut()
            .filter(|c| c.progress != Progress::Failed)
            .take(k)
            .find(|c| c.progress == Progress::NotAsked)?;
        candidate.progress = Progress::InFlight;
        self.in_flight += 1;
        self.stats.requests += 1;
        Some(candidate.contact)
    }

    /// `from` answered with `closer`. A responder we did not ask (an unpinned bootstrap seed)
    /// is added as answered.
    pub fn on_answer(&mut self, from: Contact, closer: impl IntoIterator<Item = Contact>) {
        let hop = match self.position(&from.id) {
            Some(i) => {
                let c = &mut self.candidates[i];
                if c.progress == Progress::InFlight {
                    self.in_flight -= 1;
                }
                c.progress = Progress::Answered;
                c.hop
            }
            None => {
                self.add([from], 1);
                if let Some(i) = self.position(&from.id) {
                    self.candidates[i].progress = Progress::Answered;
                }
                1
            }
        };
        self.stats.rounds = self.stats.rounds.max(hop);
        self.add(closer, hop + 1);
    }

    pub fn on_failure(&mut self, from: &NodeId) {
        self.stats.failures += 1;
        if let Some(i) = self.position(from) {
            let c = &mut self.candidates[i];
            if c.progress == Progress::InFlight {
                self.in_flight -= 1;
            }
            c.progress = Progress::Failed;
        }
    }

    /// True when the K closest live candidates have all answered, or nothing is left to ask.
    pub fn is_finished(&self) -> bool {
        let mut live = self
            .candidates
            .iter()
            .filter(|c| c.progress != Progress::Failed)
            .take(self.k);
        let all_answered = live.all(|c| c.progress == Progress::Answered);
        let enough = self
            .candidates
            .iter()
            .filter(|c| c.progress == Progress::Answered)
            .count()
            >= self.k;
        (all_answered && (enough || self.in_flight == 0))
            || (self.in_flight == 0 && !self.has_unasked())
    }

    /// The closest contacts that answered, closest first.
    pub fn closest_answered(&self, count: usize) -> Vec<Contact> {
        self.candidates
            .iter()
            .filter(|c| c.progress == Progress::Answered)
            .take(count)
            .map(|c| c.contact)
            .collect()
    }

    fn has_unasked(&self) -> bool {
        self.candidates
            .iter()
            .filter(|c| c.progress != Progress::Failed)
            .take(self.k)
            .any(|c| c.progress == Progress::NotAsked)
    }

    fn position(&self, id: &NodeId) -> Option<usize> {
        let distance = Distance::between(&self.target, id);
        self.candidates
            .binary_search_by_key(&distance, |c| c.distance)
            .ok()
    }

    fn max_candidates(&self) -> usize {
        // Failed and in-flight candidates stay listed, so keep room beyond K for them.
        self.k * 4
    }

    /// Drops the farthest not-yet-asked candidates beyond the cap (asked ones are kept so
    /// their answers can be matched).
    fn trim(&mut self) {
        let max = self.max_candidates();
        while self.candidates.len() > max {
            match self
                .candidates
                .iter()
                .rposition(|c| c.progress == Progress::NotAsked)
            {
                Some(i) => {
                    self.candidates.remove(i);
                }
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    fn contact(byte: u8) -> Contact {
        let mut id = [0u8; 20];
        id[19] = byte;
        Contact::new(
            NodeId::from_bytes(id),
            SocketAddr::from(([127, 0, 0, 1], 4000 + u16::from(byte))),
        )
    }

    #[test]
    fn asks_alpha_at_a_time_closest_first_and_finishes_when_k_closest_answered() {
        let target = NodeId::from_bytes([0; 20]);
        let local = NodeId::from_bytes([0xff; 20]);
        let mut lookup = Lookup::new(target, local, 2, 2);
        lookup.add([contact(8), contact(4), contact(6)], 1);
        assert_eq!(lookup.next_request(), Some(contact(4)));
        assert_eq!(lookup.next_request(), Some(contact(6)));
        assert_eq!(lookup.next_request(), None, "alpha = 2 in flight");
        lookup.on_answer(contact(4), [contact(1)]);
        assert_eq!(lookup.next_request(), Some(contact(1)));
        lookup.on_failure(&contact(6).id);
        assert!(!lookup.is_finished());
        lookup.on_answer(contact(1), []);
        // K = 2 closest live: 1 and 4, both answered.
        assert!(lookup.is_finished());
        assert_eq!(lookup.closest_answered(5), vec![contact(1), contact(4)]);
        let stats = lookup.stats();
        assert_eq!((stats.rounds, stats.requests, stats.failures), (2, 3, 1));
    }

    #[test]
    fn runs_dry_when_everyone_failed() {
        let mut lookup = Lookup::new(
            NodeId::from_bytes([0; 20]),
            NodeId::from_bytes([1; 20]),
            20,
            3,
        );
        lookup.add([contact(3)], 1);
        let c = lookup.next_request();
        assert_eq!(c, Some(contact(3)));
        lookup.on_failure(&contact(3).id);
        assert!(lookup.is_finished());
        assert!(lookup.closest_answered(20).is_empty());
    }
}
