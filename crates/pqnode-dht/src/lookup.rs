//! One iterative Kademlia lookup: which contacts to ask next and when to stop.
//!
//! Up to α requests are in flight, always to the closest contacts not yet asked among the K
//! closest known. The lookup ends when the K closest contacts that are still in the running
//! have all answered (or none is left to ask). A contact is one hop deeper than the contact
//! that named it; the lookup's `rounds` is the deepest hop that answered.
//!
//! Slow and dead contacts do not hold a lookup up. A request past its soft timeout is
//! *stalled*: it frees its α slot and drops out of the K closest, so the lookup asks the next
//! contact in its place; if the answer still comes, it is used. The target's own overdue
//! answer is waited for while the node says so (no one can stand in for it, but a dead
//! target must not hold the lookup up until its hard timeout: the node bounds the wait, see
//! [`Lookup::await_target`]). A contact the node already
//! suspects (it failed recently, or a request to it is overdue) enters as *suspect* and is
//! asked only as a last resort, when a path has nothing else left and no answer at all. The
//! target itself is never a suspect: no other contact can stand in for it, and one timeout
//! under load would otherwise hide a live node from every lookup of it until the failure is
//! forgotten.
//!
//! With `paths > 1` the lookup runs S/Kademlia disjoint paths: the first contacts are dealt out
//! among the paths, every contact belongs to the path that learned it first, and each path
//! asks only its own contacts (α in flight per path) and ends on its own K closest. A path that
//! meets a malicious node can be led astray, but cannot lead the others, so the merged result
//! still holds the honest closest nodes if any path stayed clean.

use pqnode_crypto::NodeId;

use crate::contact::Contact;
use crate::distance::Distance;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    NotAsked,
    /// Known to be failing: asked only as a last resort.
    Suspect,
    InFlight,
    /// Past its soft timeout: no longer holds a slot, but its answer is still taken.
    Stalled,
    Answered,
    Failed,
}

impl Progress {
    /// Still in the running for the K closest.
    fn is_live(self) -> bool {
        matches!(self, Self::NotAsked | Self::InFlight | Self::Answered)
    }
}

#[derive(Debug, Clone)]
struct Candidate {
    contact: Contact,
    distance: Distance,
    progress: Progress,
    hop: u32,
    path: usize,
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
    /// Requests that passed their soft timeout, so the lookup moved on without them.
    pub stalled: u32,
}

#[derive(Debug, Clone)]
pub(crate) struct Lookup {
    target: NodeId,
    local: NodeId,
    k: usize,
    alpha: usize,
    /// Sorted by distance to the target, closest first; capped (see `max_candidates`).
    candidates: Vec<Candidate>,
    /// Requests in flight, per path.
    in_flight: Vec<usize>,
    /// Where the next dealt-out contact goes, and which path asks next.
    next_path: usize,
    /// Whether an overdue request to the target holds the lookup open.
    awaiting_target: bool,
    stats: LookupStats,
}

impl Lookup {
    pub(crate) fn new(target: NodeId, local: NodeId, k: usize, alpha: usize, paths: usize) -> Self {
        Self {
            target,
            local,
            k: k.max(1),
            alpha: alpha.max(1),
            candidates: Vec::new(),
            in_flight: vec![0; paths.max(1)],
            next_path: 0,
            awaiting_target: false,
            stats: LookupStats::default(),
        }
    }

    pub(crate) fn target(&self) -> &NodeId {
        &self.target
    }

    pub(crate) fn stats(&self) -> LookupStats {
        self.stats
    }

    /// Adds starting contacts (our own table is hop 1), dealt out among the paths; those for
    /// which `suspect` holds are asked only as a last resort.
    pub(crate) fn seed(
        &mut self,
        contacts: impl IntoIterator<Item = Contact>,
        suspect: impl Fn(&NodeId) -> bool,
    ) {
        for contact in contacts {
            let path = self.next_path;
            self.next_path = (self.next_path + 1) % self.in_flight.len();
            self.add(contact, 1, path, suspect(&contact.id));
        }
    }

    /// The next contact to ask, if a path has fewer than α in flight; marks it in flight.
    pub(crate) fn next_request(&mut self) -> Option<Contact> {
        let paths = self.in_flight.len();
        for offset in 0..paths {
            let path = (self.next_path + offset) % paths;
            if self.in_flight.get(path).is_some_and(|n| *n >= self.alpha)
                || self.path_finished(path)
            {
                continue;
            }
            let k = self.k;
            let last_resort = self.last_resort(path);
            let next = if last_resort {
                self.candidates
                    .iter_mut()
                    .find(|c| c.path == path && c.progress == Progress::Suspect)
            } else {
                self.candidates
                    .iter_mut()
                    .filter(|c| c.path == path && c.progress.is_live())
                    .take(k)
                    .find(|c| c.progress == Progress::NotAsked)
            };
            let Some(candidate) = next else {
                continue;
            };
            candidate.progress = Progress::InFlight;
            let contact = candidate.contact;
            if let Some(n) = self.in_flight.get_mut(path) {
                *n += 1;
            }
            self.next_path = (path + 1) % paths;
            self.stats.requests += 1;
            return Some(contact);
        }
        None
    }

    /// `from` answered with `closer` (of which those `suspect` holds for enter as suspects).
    /// A responder we did not ask (an unpinned bootstrap seed) is added as answered.
    pub(crate) fn on_answer(
        &mut self,
        from: Contact,
        closer: impl IntoIterator<Item = Contact>,
        suspect: impl Fn(&NodeId) -> bool,
    ) {
        if self.position(&from.id).is_none() {
            self.seed([from], |_| false);
        }
        let Some(i) = self.position(&from.id) else {
            return; // Our own id, or beyond the candidate cap.
        };
        let (hop, path) = {
            let c = &mut self.candidates[i];
            let was_in_flight = c.progress == Progress::InFlight;
            c.progress = Progress::Answered;
            (c.hop, (c.path, was_in_flight))
        };
        let (path, was_in_flight) = path;
        if was_in_flight && let Some(n) = self.in_flight.get_mut(path) {
            *n = n.saturating_sub(1);
        }
        self.stats.rounds = self.stats.rounds.max(hop);
        for contact in closer {
            let suspect = suspect(&contact.id);
            self.add(contact, hop + 1, path, suspect);
        }
    }

    /// Whether `id` answered this lookup.
    pub(crate) fn has_answered(&self, id: &NodeId) -> bool {
        self.position(id)
            .and_then(|i| self.candidates.get(i))
            .is_some_and(|c| c.progress == Progress::Answered)
    }

    /// The request to `from` failed (timed out, or the driver reported it).
    pub(crate) fn on_failure(&mut self, from: &NodeId) {
        self.stats.failures += 1;
        if let Some(i) = self.position(from) {
            let c = &mut self.candidates[i];
            let was_in_flight = c.progress == Progress::InFlight;
            c.progress = Progress::Failed;
            let path = c.path;
            if was_in_flight && let Some(n) = self.in_flight.get_mut(path) {
                *n = n.saturating_sub(1);
            }
        }
    }

    /// The request to `from` passed its soft timeout: free its slot and stop waiting for it.
    pub(crate) fn on_stall(&mut self, from: &NodeId) {
        let Some(i) = self.position(from) else {
            return;
        };
        let c = &mut self.candidates[i];
        if c.progress != Progress::InFlight {
            return;
        }
        c.progress = Progress::Stalled;
        let path = c.path;
        self.stats.stalled += 1;
        if let Some(n) = self.in_flight.get_mut(path) {
            *n = n.saturating_sub(1);
        }
    }

    /// The target's request is overdue (stalled) and its answer is worth waiting for: the
    /// lookup does not end without it until it comes, fails, or [`Lookup::stop_awaiting_target`].
    pub(crate) fn await_target(&mut self) {
        self.awaiting_target = true;
    }

    /// The target's overdue answer is no longer waited for (it may still be used if it comes
    /// before the lookup ends).
    pub(crate) fn stop_awaiting_target(&mut self) {
        self.awaiting_target = false;
    }

    /// True when every path is finished.
    pub(crate) fn is_finished(&self) -> bool {
        (0..self.in_flight.len()).all(|p| self.path_finished(p))
    }

    /// The closest contacts that answered, closest first, over all paths.
    pub(crate) fn closest_answered(&self, count: usize) -> Vec<Contact> {
        self.candidates
            .iter()
            .filter(|c| c.progress == Progress::Answered)
            .take(count)
            .map(|c| c.contact)
            .collect()
    }

    /// A path is finished when its K closest live candidates have all answered (and at least K
    /// answered, or nothing is in flight), or when it has nothing left to ask, suspects
    /// included, and either some answer or no overdue request.
    fn path_finished(&self, path: usize) -> bool {
        if self.last_resort(path) {
            return false;
        }
        let in_flight = self.in_flight.get(path).copied().unwrap_or(0);
        let all_answered = self
            .live_closest(path)
            .all(|c| c.progress == Progress::Answered);
        let unasked_left = self
            .live_closest(path)
            .any(|c| c.progress == Progress::NotAsked);
        let on_path = || self.candidates.iter().filter(|c| c.path == path);
        let answered = on_path()
            .filter(|c| c.progress == Progress::Answered)
            .count();
        // With no answer at all, an overdue answer is still worth waiting for (until its hard
        // timeout): returning nothing is the one result it cannot make worse.
        if answered == 0 && on_path().any(|c| c.progress == Progress::Stalled) {
            return false;
        }
        // Nobody can stand in for the target itself: an overdue answer from it is waited for
        // (as long as the node says), or one lost packet would report a live node missing.
        if self.awaiting_target
            && on_path().any(|c| c.contact.id == self.target && c.progress == Progress::Stalled)
        {
            return false;
        }
        (all_answered && (answered >= self.k || in_flight == 0))
            || (in_flight == 0 && !unasked_left)
    }

    /// Whether `path` is down to its suspects: nothing in flight, nothing answered, nothing
    /// else to ask. Then suspicion was wrong or stale (our own network was down, say), and
    /// asking a suspect beats ending empty-handed.
    fn last_resort(&self, path: usize) -> bool {
        let in_flight = self.in_flight.get(path).copied().unwrap_or(0);
        if in_flight > 0 {
            return false;
        }
        let mut suspects = false;
        for c in self.candidates.iter().filter(|c| c.path == path) {
            match c.progress {
                Progress::NotAsked | Progress::Answered => return false,
                Progress::Suspect => suspects = true,
                Progress::InFlight | Progress::Stalled | Progress::Failed => {}
            }
        }
        suspects
    }

    /// The K closest candidates of `path` still in the running.
    fn live_closest(&self, path: usize) -> impl Iterator<Item = &Candidate> {
        self.candidates
            .iter()
            .filter(move |c| c.path == path && c.progress.is_live())
            .take(self.k)
    }

    fn add(&mut self, contact: Contact, hop: u32, path: usize, suspect: bool) {
        if contact.id == self.local {
            return;
        }
        let suspect = suspect && contact.id != self.target;
        let distance = Distance::between(&self.target, &contact.id);
        // Already known: it stays on the path that learned it first (what keeps paths disjoint).
        if let Err(at) = self
            .candidates
            .binary_search_by_key(&distance, |c| c.distance)
        {
            // Far candidates beyond what the lookup could ever ask are not worth keeping.
            if at >= self.max_candidates() {
                return;
            }
            self.candidates.insert(
                at,
                Candidate {
                    contact,
                    distance,
                    progress: if suspect {
                        Progress::Suspect
                    } else {
                        Progress::NotAsked
                    },
                    hop,
                    path,
                },
            );
            self.trim();
        }
    }

    fn position(&self, id: &NodeId) -> Option<usize> {
        let distance = Distance::between(&self.target, id);
        self.candidates
            .binary_search_by_key(&distance, |c| c.distance)
            .ok()
    }

    fn max_candidates(&self) -> usize {
        // Failed and in-flight candidates stay listed, so keep room beyond K for each path.
        self.k * 4 * self.in_flight.len()
    }

    /// Drops the farthest not-yet-asked candidates beyond the cap (asked ones are kept so
    /// their answers can be matched).
    fn trim(&mut self) {
        let max = self.max_candidates();
        while self.candidates.len() > max {
            match self
                .candidates
                .iter()
                .rposition(|c| matches!(c.progress, Progress::NotAsked | Progress::Suspect))
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
        let mut lookup = Lookup::new(target, local, 2, 2, 1);
        lookup.seed([contact(8), contact(4), contact(6)], |_| false);
        assert_eq!(lookup.next_request(), Some(contact(4)));
        assert_eq!(lookup.next_request(), Some(contact(6)));
        assert_eq!(lookup.next_request(), None, "alpha = 2 in flight");
        lookup.on_answer(contact(4), [contact(1)], |_| false);
        assert_eq!(lookup.next_request(), Some(contact(1)));
        lookup.on_failure(&contact(6).id);
        assert!(!lookup.is_finished());
        lookup.on_answer(contact(1), [], |_| false);
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
            1,
        );
        lookup.seed([contact(3)], |_| false);
        let c = lookup.next_request();
        assert_eq!(c, Some(contact(3)));
        lookup.on_failure(&contact(3).id);
        assert!(lookup.is_finished());
        assert!(lookup.closest_answered(20).is_empty());
    }

    #[test]
    fn disjoint_paths_never_share_a_contact() {
        let target = NodeId::from_bytes([0; 20]);
        let mut lookup = Lookup::new(target, NodeId::from_bytes([0xff; 20]), 2, 1, 2);
        lookup.seed([contact(10), contact(20)], |_| false);
        let first = lookup.next_request();
        let second = lookup.next_request();
        assert_eq!(
            (first, second),
            (Some(contact(10)), Some(contact(20))),
            "one per path"
        );
        assert_eq!(lookup.next_request(), None, "alpha = 1 per path");
        // Path 0 learns 5; path 1 then names 5 too, but 5 stays on path 0 and is asked once.
        lookup.on_answer(contact(10), [contact(5)], |_| false);
        lookup.on_answer(contact(20), [contact(5), contact(7)], |_| false);
        let asked: Vec<Contact> = std::iter::from_fn(|| lookup.next_request()).collect();
        assert_eq!(asked, vec![contact(5), contact(7)]);
        lookup.on_answer(contact(5), [], |_| false);
        lookup.on_answer(contact(7), [], |_| false);
        assert!(lookup.is_finished());
        assert_eq!(
            lookup.closest_answered(3),
            vec![contact(5), contact(7), contact(10)]
        );
    }

    #[test]
    fn a_stalled_contact_frees_its_slot_and_its_late_answer_still_counts() {
        let target = NodeId::from_bytes([0; 20]);
        let mut lookup = Lookup::new(target, NodeId::from_bytes([0xff; 20]), 2, 1, 1);
        lookup.seed([contact(4), contact(6), contact(8)], |_| false);
        assert_eq!(lookup.next_request(), Some(contact(4)));
        assert_eq!(lookup.next_request(), None, "alpha = 1");
        lookup.on_stall(&contact(4).id);
        // 4 is out of the running: 6 takes its slot, then 8 joins the K = 2 closest.
        assert_eq!(lookup.next_request(), Some(contact(6)));
        lookup.on_answer(contact(6), [], |_| false);
        assert_eq!(lookup.next_request(), Some(contact(8)));
        lookup.on_answer(contact(8), [], |_| false);
        assert!(lookup.is_finished(), "done without waiting for 4");
        // Had 4 answered late, before the end, it would have counted.
        let mut lookup = Lookup::new(target, NodeId::from_bytes([0xff; 20]), 2, 1, 1);
        lookup.seed([contact(4), contact(6)], |_| false);
        lookup.next_request();
        lookup.on_stall(&contact(4).id);
        lookup.next_request();
        lookup.on_answer(contact(4), [contact(1)], |_| false);
        assert_eq!(lookup.next_request(), None, "6 still holds the only slot");
        lookup.on_answer(contact(6), [], |_| false);
        assert_eq!(lookup.next_request(), Some(contact(1)));
        lookup.on_answer(contact(1), [], |_| false);
        assert!(lookup.is_finished());
        assert_eq!(lookup.closest_answered(2), vec![contact(1), contact(4)]);
        assert_eq!(lookup.stats().stalled, 1);
    }

    #[test]
    fn suspects_are_skipped_but_asked_as_a_last_resort() {
        let target = NodeId::from_bytes([0; 20]);
        let suspect = |id: &NodeId| *id == contact(2).id || *id == contact(3).id;
        let mut lookup = Lookup::new(target, NodeId::from_bytes([0xff; 20]), 20, 3, 1);
        lookup.seed([contact(2), contact(5)], suspect);
        assert_eq!(lookup.next_request(), Some(contact(5)));
        assert_eq!(lookup.next_request(), None, "the suspect is not asked");
        lookup.on_answer(contact(5), [contact(3)], suspect);
        assert_eq!(lookup.next_request(), None, "nor one learned later");
        assert!(lookup.is_finished());
        assert_eq!(lookup.closest_answered(20), vec![contact(5)]);

        // With nobody else to ask, the suspects are tried one at a time, closest first.
        let mut lookup = Lookup::new(target, NodeId::from_bytes([0xff; 20]), 20, 3, 1);
        lookup.seed([contact(2), contact(3)], suspect);
        assert!(!lookup.is_finished());
        assert_eq!(lookup.next_request(), Some(contact(2)));
        assert_eq!(lookup.next_request(), None);
        lookup.on_failure(&contact(2).id);
        assert_eq!(lookup.next_request(), Some(contact(3)));
        lookup.on_answer(contact(3), [], suspect);
        assert!(lookup.is_finished());
    }

    #[test]
    fn an_overdue_target_is_waited_for() {
        let target = contact(1);
        let mut lookup = Lookup::new(target.id, NodeId::from_bytes([0xff; 20]), 20, 3, 1);
        lookup.seed([target, contact(5)], |_| false);
        assert_eq!(lookup.next_request(), Some(target));
        assert_eq!(lookup.next_request(), Some(contact(5)));
        lookup.on_stall(&target.id);
        lookup.await_target();
        lookup.on_answer(contact(5), [], |_| false);
        assert!(
            !lookup.is_finished(),
            "the target's late answer is still to come"
        );
        lookup.on_answer(target, [], |_| false);
        assert!(lookup.is_finished());
        assert_eq!(lookup.closest_answered(1), vec![target]);
        // Once the node stops waiting, the lookup ends without it.
        let mut lookup = Lookup::new(target.id, NodeId::from_bytes([0xff; 20]), 20, 3, 1);
        lookup.seed([target, contact(5)], |_| false);
        lookup.next_request();
        lookup.next_request();
        lookup.on_stall(&target.id);
        lookup.await_target();
        lookup.on_answer(contact(5), [], |_| false);
        assert!(!lookup.is_finished());
        lookup.stop_awaiting_target();
        assert!(lookup.is_finished());
        assert_eq!(lookup.closest_answered(2), vec![contact(5)]);
        // Nor does it wait when the node never asked it to (a target known to be failing).
        let mut lookup = Lookup::new(target.id, NodeId::from_bytes([0xff; 20]), 20, 3, 1);
        lookup.seed([target, contact(5)], |_| false);
        lookup.next_request();
        lookup.next_request();
        lookup.on_stall(&target.id);
        lookup.on_answer(contact(5), [], |_| false);
        assert!(lookup.is_finished());
        // Had it failed instead, the lookup ends without it.
        let mut lookup = Lookup::new(target.id, NodeId::from_bytes([0xff; 20]), 20, 3, 1);
        lookup.seed([target, contact(5)], |_| false);
        lookup.next_request();
        lookup.next_request();
        lookup.on_stall(&target.id);
        lookup.on_answer(contact(5), [], |_| false);
        lookup.on_failure(&target.id);
        assert!(lookup.is_finished());
        assert_eq!(lookup.closest_answered(2), vec![contact(5)]);
    }

    #[test]
    fn the_target_is_asked_even_when_suspect() {
        let target = contact(1);
        let suspect = |_: &NodeId| true;
        let mut lookup = Lookup::new(target.id, NodeId::from_bytes([0xff; 20]), 20, 3, 1);
        lookup.seed([contact(5)], |_| false);
        assert_eq!(lookup.next_request(), Some(contact(5)));
        lookup.on_answer(contact(5), [contact(3), target], suspect);
        assert_eq!(lookup.next_request(), Some(target), "not the other suspect");
        assert_eq!(lookup.next_request(), None);
        lookup.on_answer(target, [], suspect);
        assert!(lookup.is_finished());
        assert_eq!(lookup.closest_answered(1), vec![target]);
    }
}
