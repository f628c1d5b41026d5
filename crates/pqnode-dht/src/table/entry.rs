//! One routing-table entry and its BEP 5 liveness state.

use std::time::Duration;

use serde::Serialize;

use crate::contact::Contact;
use crate::time::Instant;

/// Liveness of a routing-table entry, as in BitTorrent's BEP 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    /// Answered recently and has not failed since.
    Good,
    /// Quiet for a while, or failed once: will be pinged before it is trusted again.
    Questionable,
    /// Failed repeatedly: skipped by lookups and replaced by the first candidate.
    Bad,
}

/// A contact that has answered us at least once.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub contact: Contact,
    pub last_seen: Instant,
    pub rtt: Option<Duration>,
    pub failures: u8,
}

impl Entry {
    pub(crate) fn new(contact: Contact, now: Instant, rtt: Option<Duration>) -> Self {
        Self {
            contact,
            last_seen: now,
            rtt,
            failures: 0,
        }
    }

    /// The state is derived from facts (last answer, failures) rather than stored, so no timer
    /// is needed to age an entry.
    pub(crate) fn state(
        &self,
        now: Instant,
        questionable_after: Duration,
        max_failures: u8,
    ) -> NodeState {
        if self.failures >= max_failures {
            NodeState::Bad
        } else if self.failures > 0
            || now.saturating_duration_since(self.last_seen) >= questionable_after
        {
            NodeState::Questionable
        } else {
            NodeState::Good
        }
    }

    pub(crate) fn answered(&mut self, contact: Contact, now: Instant, rtt: Option<Duration>) {
        // The transport authenticated the id, so a new address is the node having moved.
        self.contact = contact;
        self.last_seen = now;
        self.failures = 0;
        if rtt.is_some() {
            self.rtt = rtt;
        }
    }
}
