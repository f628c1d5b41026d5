//! User-visible operations (lookups, get, put, providers) and their state between requests.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use pqnode_crypto::NodeId;

use crate::contact::Contact;
use crate::lookup::{Lookup, LookupStats};
use crate::message::Request;
use crate::record::{Key, ProviderRecord, Record};
use crate::table::Insert;

/// Identifies an operation started on a [`crate::Node`]; its [`crate::Event::QueryFinished`]
/// carries the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QueryId(pub(crate) u64);

/// The outcome of a finished operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryResult {
    /// The closest contacts that answered, closest first (at most K).
    FindNode {
        target: NodeId,
        closest: Vec<Contact>,
    },
    /// The lookup of our own id after inserting the seeds.
    Bootstrap { closest: Vec<Contact> },
    /// The newest valid record under `key` that the nodes asked had (highest seq).
    GetRecord { key: Key, record: Option<Record> },
    /// How many of the K closest nodes accepted the record.
    PutRecord { key: Key, stored: usize },
    /// Valid provider entries found under `key`, one per publisher (highest seq).
    GetProviders {
        key: Key,
        providers: Vec<ProviderRecord>,
    },
    /// How many of the K closest nodes accepted the entry.
    AddProvider { key: Key, stored: usize },
    /// A contact added by hand ([`crate::Node::add_contact`]): who answered the ping (`None`:
    /// nobody, in time) and what the routing table did with it (`SubnetFull`: the same
    /// per-network limit as for every other contact).
    AddContact {
        contact: Option<Contact>,
        insert: Option<Insert>,
    },
}

#[derive(Debug)]
pub(crate) enum QueryKind {
    FindNode,
    Bootstrap,
    /// A bucket refresh or a republish: no event, only counters.
    Maintenance,
    GetRecord {
        /// The newest valid copy so far, and who returned that seq.
        found: Option<Record>,
        holders: HashSet<NodeId>,
    },
    /// `remaining`: `None` when we publish, the lifetime left when we replicate.
    PutRecord {
        record: Record,
        remaining: Option<Duration>,
    },
    GetProviders {
        found: HashMap<NodeId, ProviderRecord>,
    },
    AddProvider {
        provider: ProviderRecord,
        remaining: Option<Duration>,
    },
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
    /// Times a search that found nothing may ask its failed contacts again.
    pub retries: u8,
}

impl Query {
    pub fn new(kind: QueryKind, lookup: Lookup, notify: bool, retries: u8) -> Self {
        Self {
            kind,
            lookup,
            probes: 0,
            store: None,
            notify,
            retries,
        }
    }

    /// A search (get, providers) that has found nothing yet.
    pub fn found_nothing(&self) -> bool {
        match &self.kind {
            QueryKind::GetRecord { found, .. } => found.is_none(),
            QueryKind::GetProviders { found } => found.is_empty(),
            _ => false,
        }
    }

    /// The request a lookup step sends.
    pub fn lookup_request(&self) -> Request {
        let target = *self.lookup.target();
        match self.kind {
            QueryKind::GetRecord { .. } => Request::FindValue { key: target },
            QueryKind::GetProviders { .. } => Request::GetProviders { key: target },
            _ => Request::FindNode { target },
        }
    }

    /// The request the store phase sends to each of the closest nodes, if any.
    pub fn store_request(&self) -> Option<Request> {
        match &self.kind {
            QueryKind::PutRecord { record, remaining } => Some(Request::Store {
                record: record.clone(),
                remaining: *remaining,
            }),
            QueryKind::AddProvider {
                provider,
                remaining,
            } => Some(Request::AddProvider {
                provider: provider.clone(),
                remaining: *remaining,
            }),
            _ => None,
        }
    }

    pub fn into_result(self, k: usize) -> (Option<QueryResult>, LookupStats) {
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
            QueryKind::GetRecord { found, .. } => Some(QueryResult::GetRecord {
                key: target,
                record: found,
            }),
            QueryKind::PutRecord { .. } => Some(QueryResult::PutRecord {
                key: target,
                stored,
            }),
            QueryKind::GetProviders { found } => {
                let mut found: Vec<(NodeId, ProviderRecord)> = found.into_iter().collect();
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
