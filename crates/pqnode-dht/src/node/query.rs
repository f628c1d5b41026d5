//! User-visible operations (lookups, get, put, providers) and their state between requests.

use std::collections::HashMap;

use pqnode_crypto::NodeId;

use crate::contact::Contact;
use crate::lookup::{Lookup, LookupStats};
use crate::message::Request;
use crate::record::{Key, ProviderRecord, Record};
use crate::validate::Typing;

/// Identifies an operation started on a [`crate::Node`]; its [`crate::Event::QueryFinished`]
/// carries the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QueryId(pub(crate) u64);

/// The outcome of a finished operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryResult {
    /// The closest contacts that answered, closest first (at most K).
    FindNode {
        /// The id that was looked up.
        target: NodeId,
        /// The contacts closest to `target` that answered, closest first.
        closest: Vec<Contact>,
    },
    /// The lookup of our own id after inserting the seeds.
    Bootstrap {
        /// Our closest contacts that answered, closest first (at most K); empty if no seed
        /// answered.
        closest: Vec<Contact>,
    },
    /// The record under `key`, if a node had a valid one.
    GetRecord {
        /// The key that was read.
        key: Key,
        /// The highest-`seq` copy whose signature verified, or `None` if no node had one.
        record: Option<Record>,
    },
    /// How many of the K closest nodes accepted the record.
    PutRecord {
        /// The record's key.
        key: Key,
        /// Nodes that answered [`crate::Response::Stored`]; 0 means the record is stored
        /// nowhere but here.
        stored: usize,
    },
    /// Valid provider entries found under `key`, one per publisher (highest seq).
    GetProviders {
        /// The key that was read.
        key: Key,
        /// The entries, ordered by publisher id; only validated ones if any node held one.
        providers: Vec<ProviderRecord>,
    },
    /// How many of the K closest nodes accepted the entry.
    AddProvider {
        /// The key the entry went under.
        key: Key,
        /// Nodes that answered [`crate::Response::Stored`]; 0 means the entry is stored
        /// nowhere but here.
        stored: usize,
    },
}

#[derive(Debug)]
pub(crate) enum QueryKind {
    FindNode,
    Bootstrap,
    /// A bucket refresh or a republish: no event, only counters.
    Maintenance,
    GetRecord(RecordRead),
    PutRecord {
        record: Record,
    },
    GetProviders {
        found: HashMap<NodeId, (ProviderRecord, Typing)>,
    },
    AddProvider {
        provider: ProviderRecord,
    },
}

/// A record read in progress: the newest verified copy so far, who holds it, and who holds an
/// older one (they are sent the newest when the read ends: read repair).
#[derive(Debug, Default)]
pub(crate) struct RecordRead {
    pub best: Option<Record>,
    pub holders: Vec<Contact>,
    pub stale: Vec<Contact>,
}

impl RecordRead {
    /// Counts `record` from `from` (verified, for the read's key). Returns how many holders
    /// the newest version has now.
    pub(crate) fn offer(&mut self, from: Contact, record: Record) -> usize {
        match &self.best {
            Some(best) if record.seq() < best.seq() => self.stale.push(from),
            Some(best) if record.seq() == best.seq() => self.holders.push(from),
            _ => {
                self.stale.append(&mut self.holders);
                self.holders.push(from);
                self.best = Some(record);
            }
        }
        self.holders.len()
    }
}

/// Store phase of a put: requests outstanding and acknowledgements received.
#[derive(Debug, Default)]
pub(crate) struct StorePhase {
    pub outstanding: usize,
    pub stored: usize,
}

#[derive(Debug)]
pub(crate) struct Query {
    pub kind: QueryKind,
    pub lookup: Lookup,
    /// Requests to unpinned seeds still out: the lookup cannot end before they answer.
    pub probes: usize,
    pub store: Option<StorePhase>,
    /// Whether the caller wants an [`crate::Event`] (maintenance and republishing do not).
    pub notify: bool,
    /// A bootstrap through the node's seeds: if none answers, it is retried (see
    /// [`crate::Config::bootstrap_retry`]).
    pub through_seeds: bool,
    /// Whether one of the seeds answered.
    pub seed_answered: bool,
}

impl Query {
    pub(crate) fn new(kind: QueryKind, lookup: Lookup, notify: bool) -> Self {
        Self {
            kind,
            lookup,
            probes: 0,
            store: None,
            notify,
            through_seeds: false,
            seed_answered: false,
        }
    }

    /// The request a lookup step sends.
    pub(crate) fn lookup_request(&self) -> Request {
        let target = *self.lookup.target();
        match self.kind {
            QueryKind::GetRecord(_) => Request::FindValue { key: target },
            QueryKind::GetProviders { .. } => Request::GetProviders { key: target },
            _ => Request::FindNode { target },
        }
    }

    /// The request the store phase sends to each of the closest nodes, if any.
    pub(crate) fn store_request(&self) -> Option<Request> {
        match &self.kind {
            QueryKind::PutRecord { record } => Some(Request::Store {
                record: record.clone(),
            }),
            QueryKind::AddProvider { provider } => Some(Request::AddProvider {
                provider: provider.clone(),
            }),
            _ => None,
        }
    }

    pub(crate) fn into_result(self, k: usize) -> (Option<QueryResult>, LookupStats) {
        let stats = self.lookup.stats();
        let target = *self.lookup.target();
        let stored = self.store.map_or(0, |s| s.stored);
        let result = match self.kind {
            QueryKind::Maintenance => None,
            QueryKind::FindNode => Some(QueryResult::FindNode {
                target,
                closest: self.lookup.closest_answered(k),
            }),
            QueryKind::Bootstrap => Some(QueryResult::Bootstrap {
                closest: self.lookup.closest_answered(k),
            }),
            QueryKind::GetRecord(read) => Some(QueryResult::GetRecord {
                key: target,
                record: read.best,
            }),
            QueryKind::PutRecord { .. } => Some(QueryResult::PutRecord {
                key: target,
                stored,
            }),
            QueryKind::GetProviders { found } => {
                // As in a node's store: where a validated entry exists, unprovable ones do not count.
                let typed = found.values().any(|(_, t)| *t != Typing::Untyped);
                let mut found: Vec<(NodeId, ProviderRecord)> = found
                    .into_iter()
                    .filter(|(_, (_, t))| !typed || *t != Typing::Untyped)
                    .map(|(publisher, (p, _))| (publisher, p))
                    .collect();
                found.sort_unstable_by_key(|(publisher, _)| *publisher);
                let providers = found.into_iter().map(|(_, p)| p).collect();
                Some(QueryResult::GetProviders {
                    key: target,
                    providers,
                })
            }
            QueryKind::AddProvider { .. } => Some(QueryResult::AddProvider {
                key: target,
                stored,
            }),
        };
        (result.filter(|_| self.notify), stats)
    }
}
