//! The sans-IO DHT node: requests, responses and time in; requests to send and events out.
//!
//! The driver's loop, whatever carries the bytes:
//!
//! 1. inbound request from an authenticated peer → [`Node::handle_request`] → send the
//!    returned [`Response`] back;
//! 2. [`Node::poll_transmit`] → send each [`Transmit`]; when its answer comes back call
//!    [`Node::handle_response`], or [`Node::handle_failure`] if the connection failed (the
//!    node also times requests out on its own);
//! 3. at [`Node::poll_timeout`] call [`Node::handle_timeout`];
//! 4. drain [`Node::poll_event`] for finished operations.
//!
//! After any `handle_*` or operation call, poll transmits, timeout and events again.

mod query;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::time::Duration;

use pqnode_crypto::NodeId;
use pqnode_health::Health;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

use query::{Query, QueryKind, StorePhase};
pub use query::{QueryId, QueryResult};

use crate::config::Config;
use crate::contact::{Contact, Peer};
use crate::distance::random_id_in_bucket;
use crate::lookup::{Lookup, LookupStats};
use crate::message::{Request, Response, RpcKind};
use crate::record::{Key, ProviderRecord, Record, RecordError};
use crate::stats::{BucketInfo, Counters, DhtStats, NodeInfo};
use crate::store::RecordStore;
use crate::table::{Failure, Insert, NodeState, RoutingTable};
use crate::time::Instant;

/// Identifies an outbound request; hand it back with the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(u64);

/// A request for the driver to send.
#[derive(Debug, Clone)]
pub struct Transmit {
    pub id: RequestId,
    pub to: Peer,
    pub request: Request,
}

/// Something the application may want to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An operation started with [`Node::find_node`], [`Node::get`], [`Node::put`],
    /// [`Node::get_providers`], [`Node::add_provider`] or [`Node::bootstrap`] ended.
    QueryFinished {
        id: QueryId,
        result: QueryResult,
        stats: LookupStats,
    },
}

#[derive(Debug, Clone, Copy)]
enum Purpose {
    Lookup(QueryId),
    /// A lookup request to an unpinned seed: the lookup waits for it, and learns its id.
    Probe(QueryId),
    Store(QueryId),
    Liveness,
    VerifyInbound,
}

#[derive(Debug)]
struct Pending {
    to: Peer,
    kind: RpcKind,
    sent: Instant,
    deadline: Instant,
    purpose: Purpose,
}

#[derive(Debug)]
struct Published<T> {
    item: T,
    next_republish: Instant,
}

/// A Kademlia node without I/O. See the module docs for the driver's loop.
///
/// ```
/// use std::time::Duration;
/// use pqnode_crypto::NodeId;
/// use pqnode_dht::{Config, Instant, Node, Peer, Request};
///
/// let local = NodeId::from_bytes([1; 20]);
/// let mut node = Node::new(local, Config::default(), 7, Instant::ZERO);
/// node.bootstrap(Instant::ZERO, [Peer::unpinned("192.0.2.1:4001".parse()?)]);
/// let transmit = node.poll_transmit().expect("the seed is asked for our neighbours");
/// assert_eq!(transmit.request, Request::FindNode { target: local });
/// // Nobody answers: the request times out and the bootstrap ends empty-handed.
/// let later = Instant::ZERO + Duration::from_secs(6);
/// node.handle_timeout(later);
/// assert!(node.poll_event().is_some());
/// assert!(!node.health().is_ok() || node.stats(later).total_nodes == 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Node {
    config: Config,
    local: NodeId,
    rng: Xoshiro256PlusPlus,
    table: RoutingTable,
    store: RecordStore,
    seeds: Vec<Peer>,
    queries: HashMap<QueryId, Query>,
    next_query: u64,
    pending: HashMap<RequestId, Pending>,
    deadlines: BTreeSet<(Instant, RequestId)>,
    next_request: u64,
    /// Contacts with a liveness or verification ping in flight.
    pinging: HashSet<NodeId>,
    verifying: usize,
    /// Ordered maps: republishing walks them, and the simulator needs the same order every run.
    published: BTreeMap<Key, Published<Record>>,
    published_providers: BTreeMap<Key, Published<ProviderRecord>>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    next_refresh: Instant,
    next_ping: Instant,
    next_maintenance: Instant,
    counters: Counters,
}

impl Node {
    /// A node with id `local` (derived from its ML-DSA-87 key by the caller). `rng_seed` drives
    /// every random choice (timer jitter, refresh targets), so a simulation is reproducible.
    pub fn new(local: NodeId, config: Config, rng_seed: u64, now: Instant) -> Self {
        let mut node = Self {
            table: RoutingTable::new(local, config.table.clone(), now),
            store: RecordStore::new(config.store.clone()),
            config,
            local,
            rng: Xoshiro256PlusPlus::seed_from_u64(rng_seed),
            seeds: Vec::new(),
            queries: HashMap::new(),
            next_query: 0,
            pending: HashMap::new(),
            deadlines: BTreeSet::new(),
            next_request: 0,
            pinging: HashSet::new(),
            verifying: 0,
            published: BTreeMap::new(),
            published_providers: BTreeMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            next_refresh: now,
            next_ping: now,
            next_maintenance: now,
            counters: Counters::default(),
        };
        node.next_refresh = now + node.jittered(node.config.refresh_interval);
        node.next_ping = now + node.jittered(node.config.ping_interval);
        node.next_maintenance = now + node.jittered(node.config.maintenance_interval);
        node
    }

    pub fn local_id(&self) -> &NodeId {
        &self.local
    }

    pub fn table(&self) -> &RoutingTable {
        &self.table
    }

    pub fn store(&self) -> &RecordStore {
        &self.store
    }

    // ---- operations -------------------------------------------------------------------------

    /// Joins the network through `seeds` (pinned or address-only) and looks up our own id.
    /// The seeds are kept: if the table ever empties, the refresh timer bootstraps again.
    pub fn bootstrap(&mut self, now: Instant, seeds: impl IntoIterator<Item = Peer>) -> QueryId {
        let seeds: Vec<Peer> = seeds
            .into_iter()
            .filter(|p| p.id != Some(self.local))
            .collect();
        for seed in &seeds {
            if !self.seeds.contains(seed) {
                self.seeds.push(*seed);
            }
        }
        self.start_bootstrap(now, seeds, true)
    }

    /// Looks up the K nodes closest to `target`.
    pub fn find_node(&mut self, now: Instant, target: NodeId) -> QueryId {
        self.start_query(now, target, QueryKind::FindNode, true)
    }

    /// Fetches the record under `key` (answered locally if we hold it).
    pub fn get(&mut self, now: Instant, key: Key) -> QueryId {
        if let Some(record) = self.store.get(&key, now).cloned() {
            let id = self.new_query_id();
            self.events.push_back(Event::QueryFinished {
                id,
                result: QueryResult::GetRecord {
                    key,
                    record: Some(record),
                },
                stats: LookupStats::default(),
            });
            return id;
        }
        self.start_query(now, key, QueryKind::GetRecord { found: None }, true)
    }

    /// Publishes `record` on the K nodes closest to its key, and republishes it every
    /// `republish_interval` until [`Node::unpublish`]. Its TTL should exceed that interval.
    pub fn put(&mut self, now: Instant, record: Record) -> Result<QueryId, RecordError> {
        record.verify()?;
        let key = *record.key();
        // Ours, so always kept locally: a lookup that reaches us finds it.
        let _ = self.store.put(record.clone(), now);
        let next_republish = now + self.jittered(self.config.republish_interval);
        self.published.insert(
            key,
            Published {
                item: record.clone(),
                next_republish,
            },
        );
        Ok(self.start_query(now, key, QueryKind::PutRecord { record }, true))
    }

    /// Stops republishing the record under `key` (it expires from the network within its TTL).
    pub fn unpublish(&mut self, key: &Key) -> bool {
        self.published.remove(key).is_some() | self.published_providers.remove(key).is_some()
    }

    /// Publishes our provider entry under its key, and republishes it like [`Node::put`].
    pub fn add_provider(
        &mut self,
        now: Instant,
        provider: ProviderRecord,
    ) -> Result<QueryId, RecordError> {
        provider.verify()?;
        let key = *provider.key();
        let _ = self.store.add_provider(provider.clone(), now);
        let next_republish = now + self.jittered(self.config.republish_interval);
        self.published_providers.insert(
            key,
            Published {
                item: provider.clone(),
                next_republish,
            },
        );
        Ok(self.start_query(now, key, QueryKind::AddProvider { provider }, true))
    }

    /// Collects provider entries under `key` from the nodes closest to it.
    pub fn get_providers(&mut self, now: Instant, key: Key) -> QueryId {
        let mut found = HashMap::new();
        for p in self
            .store
            .providers(&key, self.config.max_providers_per_response, now)
        {
            found.insert(p.publisher_id(), p);
        }
        self.start_query(now, key, QueryKind::GetProviders { found }, true)
    }

    // ---- driver interface -------------------------------------------------------------------

    /// Answers a request from `from` (whose id the transport authenticated).
    pub fn handle_request(&mut self, now: Instant, from: Contact, request: Request) -> Response {
        self.counters.requests_received.bump(request.kind());
        if from.id != self.local {
            self.table.record_inbound(&from.id, now);
            self.maybe_verify_inbound(now, from);
        }
        let k = self.config.table.k;
        let closest = |table: &RoutingTable, target: &NodeId| -> Vec<Contact> {
            let mut contacts = table.closest(target, k + 1, now);
            contacts.retain(|c| c.id != from.id);
            contacts.truncate(k);
            contacts
        };
        match request {
            Request::Ping => Response::Pong {
                observed: from.addr,
            },
            Request::FindNode { target } => Response::Nodes {
                closer: closest(&self.table, &target),
            },
            Request::FindValue { key } => match self.store.get(&key, now) {
                Some(record) => Response::Value {
                    record: Some(record.clone()),
                    closer: Vec::new(),
                },
                None => Response::Value {
                    record: None,
                    closer: closest(&self.table, &key),
                },
            },
            Request::GetProviders { key } => Response::Providers {
                providers: self
                    .store
                    .providers(&key, self.config.max_providers_per_response, now),
                closer: closest(&self.table, &key),
            },
            Request::Store { record } => {
                let result = record
                    .verify()
                    .map_err(|e| e.to_string())
                    .and_then(|()| self.store.put(record, now).map_err(|e| e.to_string()));
                self.store_outcome(result)
            }
            Request::AddProvider { provider } => {
                let result = provider.verify().map_err(|e| e.to_string()).and_then(|()| {
                    self.store
                        .add_provider(provider, now)
                        .map_err(|e| e.to_string())
                });
                self.store_outcome(result)
            }
        }
    }

    /// The next request to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// `responder` (authenticated by the transport) answered request `id`.
    pub fn handle_response(
        &mut self,
        now: Instant,
        id: RequestId,
        responder: NodeId,
        response: Response,
    ) {
        let Some(pending) = self.take_pending(id) else {
            return; // Late: already timed out.
        };
        let wrong_node = pending.to.id.is_some_and(|expected| expected != responder);
        if wrong_node || responder == self.local || !response.answers(pending.kind) {
            self.counters.failures += 1;
            self.fail(now, pending);
            return;
        }
        self.counters.responses_received += 1;
        let contact = Contact::new(responder, pending.to.addr);
        let rtt = now.saturating_duration_since(pending.sent);
        match self.table.record_success(contact, now, Some(rtt)) {
            Insert::Inserted => self.counters.table_inserts += 1,
            Insert::ReplacedBad(_) => {
                self.counters.table_inserts += 1;
                self.counters.table_evictions += 1;
            }
            Insert::Updated | Insert::Cached | Insert::SubnetFull | Insert::Local => {}
        }
        match pending.purpose {
            Purpose::Lookup(query) => self.on_lookup_answer(now, query, contact, response, false),
            Purpose::Probe(query) => self.on_lookup_answer(now, query, contact, response, true),
            Purpose::Store(query) => {
                let stored = matches!(response, Response::Stored);
                self.on_store_done(now, query, stored);
            }
            Purpose::Liveness => {
                self.pinging.remove(&responder);
            }
            Purpose::VerifyInbound => {
                self.pinging.remove(&responder);
                self.verifying = self.verifying.saturating_sub(1);
            }
        }
    }

    /// Request `id` failed before an answer (connection refused, stream reset, undecodable
    /// response). Timeouts need no call: the node notices them in [`Node::handle_timeout`].
    pub fn handle_failure(&mut self, now: Instant, id: RequestId) {
        if let Some(pending) = self.take_pending(id) {
            self.counters.failures += 1;
            self.fail(now, pending);
        }
    }

    /// When [`Node::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Instant {
        let periodic = self
            .next_refresh
            .min(self.next_ping)
            .min(self.next_maintenance);
        self.deadlines
            .first()
            .map_or(periodic, |(deadline, _)| periodic.min(*deadline))
    }

    /// Fires whatever is due at `now`: request timeouts, bucket refresh, pings, record expiry
    /// and republishing.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(deadline, id)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            if let Some(pending) = self.take_pending(id) {
                self.counters.timeouts += 1;
                self.fail(now, pending);
            }
        }
        if now >= self.next_refresh {
            self.next_refresh = now + self.jittered(self.config.refresh_interval);
            self.refresh(now);
        }
        if now >= self.next_ping {
            self.next_ping = now + self.jittered(self.config.ping_interval);
            self.ping_questionable(now);
        }
        if now >= self.next_maintenance {
            self.next_maintenance = now + self.jittered(self.config.maintenance_interval);
            self.store.expire(now);
            self.republish(now);
        }
    }

    /// The next finished operation, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ---- observability ----------------------------------------------------------------------

    /// Routing-table entries, for `/api/dht/nodes`.
    pub fn nodes(&self, now: Instant) -> Vec<NodeInfo> {
        self.table
            .entries(now)
            .into_iter()
            .map(|e| NodeInfo {
                id: e.contact.id,
                addr: e.contact.addr,
                bucket: e.bucket,
                state: e.state,
                last_seen_ms_ago: millis(now.saturating_duration_since(e.last_seen)),
                rtt_ms: e.rtt.map(millis),
            })
            .collect()
    }

    pub fn stats(&self, now: Instant) -> DhtStats {
        let entries = self.table.entries(now);
        let count = |s: NodeState| entries.iter().filter(|e| e.state == s).count();
        let c = &self.counters;
        DhtStats {
            total_nodes: entries.len(),
            buckets_used: self.table.buckets_used(),
            bootstrap_nodes: self.seeds.len(),
            good_nodes: count(NodeState::Good),
            questionable_nodes: count(NodeState::Questionable),
            bad_nodes: count(NodeState::Bad),
            records_stored: self.store.record_count(),
            providers_stored: self.store.provider_count(),
            records_published: self.published.len() + self.published_providers.len(),
            queries_running: self.queries.len(),
            requests_in_flight: self.pending.len(),
            mean_lookup_rounds: if c.lookups_finished == 0 {
                0.0
            } else {
                c.lookup_rounds as f64 / c.lookups_finished as f64
            },
            buckets: self
                .table
                .bucket_views()
                .into_iter()
                .map(|b| BucketInfo {
                    index: b.index,
                    entries: b.entries,
                    replacements: b.replacements,
                    last_refresh_ms_ago: millis(now.saturating_duration_since(b.last_refresh)),
                })
                .collect(),
            counters: c.clone(),
        }
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Warns while the routing table is empty (the node can reach no one).
    pub fn health(&self) -> Health {
        if self.table.is_empty() {
            Health::warn("DHT routing table is empty")
        } else {
            Health::pass()
        }
    }

    // ---- persistence ------------------------------------------------------------------------

    /// The routing table's contacts, encoded for the node's store.
    pub fn export_table(&self) -> Vec<u8> {
        crate::codec::encode_table(&self.table.contacts())
    }

    /// Reloads a table saved by [`Node::export_table`]; entries start questionable and are
    /// pinged on the next ping tick. Returns how many entered the table.
    pub fn restore_table(
        &mut self,
        now: Instant,
        bytes: &[u8],
    ) -> Result<usize, crate::codec::CodecError> {
        let contacts = crate::codec::decode_table(bytes)?;
        Ok(self
            .table
            .restore(contacts.into_iter().filter(|c| c.id != self.local), now))
    }

    /// The records and provider entries this node holds for others, with the lifetime each
    /// has left, encoded for the node's store.
    pub fn export_records(&self, now: Instant) -> Vec<u8> {
        crate::codec::encode_store(
            &self.store.export_records(now),
            &self.store.export_providers(now),
        )
    }

    /// Reloads what [`Node::export_records`] saved. Each item is verified again and keeps the
    /// lifetime it had left; invalid ones are skipped. Returns how many were stored.
    pub fn restore_records(
        &mut self,
        now: Instant,
        bytes: &[u8],
    ) -> Result<usize, crate::codec::CodecError> {
        let (records, providers) = crate::codec::decode_store(bytes)?;
        let mut restored = 0;
        for (record, left) in records {
            if record.verify().is_ok() && self.store.put_until(record, now, now + left).is_ok() {
                restored += 1;
            }
        }
        for (provider, left) in providers {
            if provider.verify().is_ok()
                && self
                    .store
                    .add_provider_until(provider, now, now + left)
                    .is_ok()
            {
                restored += 1;
            }
        }
        Ok(restored)
    }

    // ---- internals --------------------------------------------------------------------------

    fn new_query_id(&mut self) -> QueryId {
        self.next_query += 1;
        QueryId(self.next_query)
    }

    fn start_bootstrap(&mut self, now: Instant, seeds: Vec<Peer>, notify: bool) -> QueryId {
        let id = self.new_query_id();
        let k = self.config.table.k;
        let paths = self.config.disjoint_paths;
        let mut lookup = Lookup::new(self.local, self.local, k, self.config.alpha, paths);
        lookup.seed(self.table.closest(&self.local, k, now));
        lookup.seed(
            seeds
                .iter()
                .filter_map(|s| s.id.map(|id| Contact::new(id, s.addr))),
        );
        let mut query = Query::new(QueryKind::Bootstrap, lookup, notify);
        let request = query.lookup_request();
        let unpinned: Vec<Peer> = seeds.into_iter().filter(|s| s.id.is_none()).collect();
        query.probes = unpinned.len();
        self.counters.lookups_started += 1;
        self.queries.insert(id, query);
        for seed in unpinned {
            self.send(now, seed, request.clone(), Purpose::Probe(id));
        }
        self.drive(now, id);
        id
    }

    fn start_query(
        &mut self,
        now: Instant,
        target: NodeId,
        kind: QueryKind,
        notify: bool,
    ) -> QueryId {
        let id = self.new_query_id();
        let k = self.config.table.k;
        let mut lookup = Lookup::new(
            target,
            self.local,
            k,
            self.config.alpha,
            self.config.disjoint_paths,
        );
        lookup.seed(self.table.closest(&target, k, now));
        self.counters.lookups_started += 1;
        self.queries.insert(id, Query::new(kind, lookup, notify));
        self.drive(now, id);
        id
    }

    /// Sends what the query can send now, and finishes it when it is done.
    fn drive(&mut self, now: Instant, id: QueryId) {
        loop {
            let Some(query) = self.queries.get_mut(&id) else {
                return;
            };
            if let Some(store) = &query.store {
                if store.outstanding == 0 {
                    self.finish(id);
                }
                return;
            }
            if let Some(contact) = query.lookup.next_request() {
                let request = query.lookup_request();
                self.send(now, contact.into(), request, Purpose::Lookup(id));
                continue;
            }
            if query.lookup.is_finished() && query.probes == 0 {
                self.lookup_done(now, id);
            }
            return;
        }
    }

    fn lookup_done(&mut self, now: Instant, id: QueryId) {
        let Some(query) = self.queries.get_mut(&id) else {
            return;
        };
        let stats = query.lookup.stats();
        self.counters.lookups_finished += 1;
        self.counters.lookup_rounds += u64::from(stats.rounds);
        if let Some(bucket) = self.table.bucket_of(query.lookup.target()) {
            self.table.mark_refreshed(bucket, now);
        }
        let Some(request) = query.store_request() else {
            self.finish(id);
            return;
        };
        let targets = query.lookup.closest_answered(self.config.table.k);
        query.store = Some(StorePhase {
            outstanding: targets.len(),
            stored: 0,
        });
        for contact in targets {
            self.send(now, contact.into(), request.clone(), Purpose::Store(id));
        }
        self.drive(now, id);
    }

    fn finish(&mut self, id: QueryId) {
        let Some(query) = self.queries.remove(&id) else {
            return;
        };
        let (result, stats) = query.into_result(self.config.table.k);
        if let Some(result) = result {
            self.events
                .push_back(Event::QueryFinished { id, result, stats });
        }
    }

    fn on_lookup_answer(
        &mut self,
        now: Instant,
        id: QueryId,
        from: Contact,
        response: Response,
        probe: bool,
    ) {
        let k = self.config.table.k;
        let Some(query) = self.queries.get_mut(&id) else {
            return;
        };
        if probe {
            query.probes = query.probes.saturating_sub(1);
        }
        let target = *query.lookup.target();
        let closer = match response {
            Response::Nodes { closer } => closer,
            Response::Value { record, closer } => {
                if let (Some(record), QueryKind::GetRecord { found }) = (record, &mut query.kind)
                    && record.key() == &target
                    && record.verify().is_ok()
                {
                    *found = Some(record);
                    query.lookup.on_answer(from, []);
                    self.lookup_done(now, id);
                    return;
                }
                closer
            }
            Response::Providers { providers, closer } => {
                if let QueryKind::GetProviders { found } = &mut query.kind {
                    for p in providers
                        .into_iter()
                        .take(self.config.max_providers_per_response)
                    {
                        if p.key() != &target || p.verify().is_err() {
                            continue;
                        }
                        let publisher = p.publisher_id();
                        if found.get(&publisher).is_none_or(|old| old.seq() < p.seq()) {
                            found.insert(publisher, p);
                        }
                    }
                }
                closer
            }
            Response::Pong { .. } | Response::Stored | Response::Rejected { .. } => Vec::new(),
        };
        query.lookup.on_answer(from, closer.into_iter().take(k));
        self.drive(now, id);
    }

    fn on_store_done(&mut self, now: Instant, id: QueryId, stored: bool) {
        if let Some(store) = self.queries.get_mut(&id).and_then(|q| q.store.as_mut()) {
            store.outstanding = store.outstanding.saturating_sub(1);
            store.stored += usize::from(stored);
        }
        self.drive(now, id);
    }

    fn send(&mut self, now: Instant, to: Peer, request: Request, purpose: Purpose) -> RequestId {
        self.next_request += 1;
        let id = RequestId(self.next_request);
        let kind = request.kind();
        let deadline = now + self.config.request_timeout;
        self.counters.requests_sent.bump(kind);
        self.pending.insert(
            id,
            Pending {
                to,
                kind,
                sent: now,
                deadline,
                purpose,
            },
        );
        self.deadlines.insert((deadline, id));
        self.transmits.push_back(Transmit { id, to, request });
        id
    }

    fn take_pending(&mut self, id: RequestId) -> Option<Pending> {
        let pending = self.pending.remove(&id)?;
        self.deadlines.remove(&(pending.deadline, id));
        Some(pending)
    }

    fn fail(&mut self, now: Instant, pending: Pending) {
        if let Some(peer) = pending.to.id
            && let Failure::Replaced { .. } = self.table.record_failure(&peer, now)
        {
            self.counters.table_evictions += 1;
        }
        match pending.purpose {
            Purpose::Lookup(id) => {
                if let (Some(query), Some(peer)) = (self.queries.get_mut(&id), pending.to.id) {
                    query.lookup.on_failure(&peer);
                }
                self.drive(now, id);
            }
            Purpose::Probe(id) => {
                if let Some(query) = self.queries.get_mut(&id) {
                    query.probes = query.probes.saturating_sub(1);
                }
                self.drive(now, id);
            }
            Purpose::Store(id) => self.on_store_done(now, id, false),
            Purpose::Liveness => {
                if let Some(peer) = pending.to.id {
                    self.pinging.remove(&peer);
                }
            }
            Purpose::VerifyInbound => {
                if let Some(peer) = pending.to.id {
                    self.pinging.remove(&peer);
                }
                self.verifying = self.verifying.saturating_sub(1);
            }
        }
    }

    fn store_outcome(&mut self, result: Result<(), String>) -> Response {
        match result {
            Ok(()) => {
                self.counters.records_accepted += 1;
                Response::Stored
            }
            Err(reason) => {
                self.counters.records_rejected += 1;
                Response::Rejected { reason }
            }
        }
    }

    fn maybe_verify_inbound(&mut self, now: Instant, from: Contact) {
        if !self.config.verify_inbound
            || self.verifying >= self.config.max_inbound_verifications
            || self.pinging.contains(&from.id)
            || !self.table.would_insert(&from, now)
        {
            return;
        }
        self.pinging.insert(from.id);
        self.verifying += 1;
        self.send(now, from.into(), Request::Ping, Purpose::VerifyInbound);
    }

    fn refresh(&mut self, now: Instant) {
        // Fewer than K entries means we never properly joined, or joined an island (a seed that
        // itself knew nobody): go back to the seeds (the "empty routing table" problem).
        if self.table.len() < self.config.table.k && !self.seeds.is_empty() {
            let seeds = self.seeds.clone();
            self.start_bootstrap(now, seeds, false);
        }
        if self.table.is_empty() {
            return;
        }
        let stale = self.table.stale_buckets(now, self.config.refresh_interval);
        for bucket in stale.into_iter().take(self.config.max_refreshes_per_tick) {
            let target = random_id_in_bucket(&self.local, bucket, &mut self.rng);
            // Marked now, so a lookup that cannot finish before the next tick is not doubled.
            self.table.mark_refreshed(bucket, now);
            self.start_query(now, target, QueryKind::Maintenance, false);
        }
    }

    fn ping_questionable(&mut self, now: Instant) {
        for contact in self.table.questionable(now) {
            if self.pinging.insert(contact.id) {
                self.send(now, contact.into(), Request::Ping, Purpose::Liveness);
            }
        }
    }

    fn republish(&mut self, now: Instant) {
        let interval = self.config.republish_interval;
        let due: Vec<Record> = self
            .published
            .values_mut()
            .filter(|p| p.next_republish <= now)
            .map(|p| {
                p.next_republish = now + interval;
                p.item.clone()
            })
            .collect();
        for record in due {
            let key = *record.key();
            let _ = self.store.put(record.clone(), now);
            self.counters.republishes += 1;
            self.start_query(now, key, QueryKind::PutRecord { record }, false);
        }
        let due: Vec<ProviderRecord> = self
            .published_providers
            .values_mut()
            .filter(|p| p.next_republish <= now)
            .map(|p| {
                p.next_republish = now + interval;
                p.item.clone()
            })
            .collect();
        for provider in due {
            let key = *provider.key();
            let _ = self.store.add_provider(provider.clone(), now);
            self.counters.republishes += 1;
            self.start_query(now, key, QueryKind::AddProvider { provider }, false);
        }
    }

    fn jittered(&mut self, interval: Duration) -> Duration {
        let jitter = self.config.jitter.clamp(0.0, 0.9);
        let factor = 1.0 + jitter * (2.0 * self.rng.random::<f64>() - 1.0);
        interval.mul_f64(factor)
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
