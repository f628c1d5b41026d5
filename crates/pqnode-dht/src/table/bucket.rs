//! A k-bucket: up to K entries that answered, plus a replacement cache of recent answerers
//! that did not fit.

use std::collections::VecDeque;

use pqnode_crypto::NodeId;

use super::entry::Entry;
use crate::time::Instant;

#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    pub entries: Vec<Entry>,
    /// Most recent last. Entries here have answered too, so they can be promoted directly.
    pub replacements: VecDeque<Entry>,
    pub last_refresh: Instant,
}

impl Bucket {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            entries: Vec::new(),
            replacements: VecDeque::new(),
            last_refresh: now,
        }
    }

    pub(crate) fn position(&self, id: &NodeId) -> Option<usize> {
        self.entries.iter().position(|e| e.contact.id == *id)
    }

    pub(crate) fn replacement_position(&self, id: &NodeId) -> Option<usize> {
        self.replacements.iter().position(|e| e.contact.id == *id)
    }

    /// Adds to the replacement cache, dropping the oldest when it is full.
    pub(crate) fn cache(&mut self, entry: Entry, capacity: usize) {
        if let Some(i) = self.replacement_position(&entry.contact.id) {
            self.replacements.remove(i);
        }
        if capacity == 0 {
            return;
        }
        while self.replacements.len() >= capacity {
            self.replacements.pop_front();
        }
        self.replacements.push_back(entry);
    }
}
