//! The sans-IO DHT node: requests, responses and time in; requests to send and events out.
//!
//! The driver's loop, whatever carries the bytes:
//!
//! 1. inbound request from an authenticated peer → [`Node::handle_request`] → send the
//!    returned [`Response`] back;
//! 2. [`Node::poll_transmit`] → send each [`Transmit`]; when its answer comes back call
//!    [`Node::handle_response`], or [`Node::handle_failure`] as soon as the dial or the
//!    request failed (the node also times requests out on its own, after
//!    [`Transmit::timeout`]: the driver may give up on the request then too);
//! 3. at [`Node::poll_timeout`] call [`Node::handle_timeout`];
//! 4. drain [`Node::poll_event`] for finished operations.
//!
//! Every answer is a round-trip-time sample; each request's timeout adapts to the contact's
//! estimate (see [`Config::request_timeout`]), and every failure counts against the contact at
//! once (see [`Config::failure_memory`]).
//!
//! After any `handle_*` or operation call, poll transmits, timeout and events again.

mod engine;
mod maintenance;
mod observe;
mod query;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::time::Duration;

use pqnode_crypto::NodeId;
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;

use query::{Query, QueryKind};

/// Stands for this node's own address where a contact is needed for bookkeeping only.
fn unspecified_addr() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([0, 0, 0, 0], 0))
}
pub use query::{QueryId, QueryResult};

use crate::config::Config;
use crate::contact::{Contact, Peer};
use crate::lookup::LookupStats;
use crate::message::{Request, Response, RpcKind};
use crate::peers::Peers;
use crate::record::{Key, ProviderRecord, Record, RecordError};
use crate::stats::Counters;
use crate::store::RecordStore;
use crate::table::{Insert, RoutingTable};
use crate::time::Instant;

/// Identifies an outbound request; hand it back with the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(u64);

/// A request for the driver to send.
#[derive(Debug, Clone)]
pub struct Transmit {
    /// Pass it to [`Node::handle_response`] or [`Node::handle_failure`] with the outcome.
    pub id: RequestId,
    /// The node to ask; with no id, an unpinned seed that may answer as any node.
    pub to: Peer,
    /// What to send: encode it with [`crate::codec::encode_request`].
    pub request: Request,
    /// When the node will count the request as failed if no answer came: the driver may
    /// abandon the dial or the stream then, as nothing will use the answer.
    pub timeout: Duration,
}

/// Something the application may want to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An operation started with [`Node::find_node`], [`Node::get`], [`Node::put`],
    /// [`Node::get_providers`], [`Node::add_provider`] or [`Node::bootstrap`] ended.
    QueryFinished {
        /// The id [`Node`]'s operation call returned.
        id: QueryId,
        /// What the operation found or achieved.
        result: QueryResult,
        /// How the lookup went: rounds, requests, failures.
        stats: LookupStats,
    },
}

#[derive(Debug, Clone, Copy)]
enum Purpose {
    Lookup(QueryId),
    /// A lookup request to an unpinned seed: the lookup waits for it, and learns its id.
    Probe(QueryId),
    Store(QueryId),
    /// A newer copy sent to a node that answered a read with an older one.
    Repair,
    Liveness,
    VerifyInbound,
}

#[derive(Debug)]
struct Pending {
    to: Peer,
    kind: RpcKind,
    sent: Instant,
    /// Lookup requests only: when the lookup stops waiting (see [`crate::Config::min_soft_timeout`]).
    soft_deadline: Option<Instant>,
    deadline: Instant,
    /// Lookup requests to the lookup's target only: how long the lookup waits for the answer
    /// once it is overdue (see [`crate::rtt::Timeouts::patience`]).
    patience: Instant,
    purpose: Purpose,
    /// Past its soft deadline, still waited for.
    stalled: bool,
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
/// assert_eq!(node.health(later).status, pqnode_health::Status::Warn, "still alone");
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
    /// RTT estimates and recent failures of every contact talked to.
    peers: Peers,
    queries: HashMap<QueryId, Query>,
    next_query: u64,
    pending: HashMap<RequestId, Pending>,
    deadlines: BTreeSet<(Instant, RequestId)>,
    soft_deadlines: BTreeSet<(Instant, RequestId)>,
    next_request: u64,
    /// Contacts with a liveness or verification ping in flight.
    pinging: HashSet<NodeId>,
    verifying: usize,
    /// Ordered maps: republishing walks them, and the simulator needs the same order every run.
    published: BTreeMap<Key, Published<Record>>,
    published_providers: BTreeMap<Key, Published<ProviderRecord>>,
    /// Records held for others, and when each is next handed on (see
    /// [`Config::replicate_interval`]). Ordered like `published`, for the simulator.
    replicas: BTreeMap<Key, Instant>,
    /// Unix time (ms) at the driver's origin, if the driver said: turns local expiries into
    /// the absolute ones copies travel with, and back.
    unix_origin_ms: Option<u64>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    next_refresh: Instant,
    /// When the seeds are tried again after a bootstrap that reached none of them.
    next_seed_retry: Option<Instant>,
    /// The delay before the next such retry (doubles each time, up to the refresh interval).
    seed_retry_delay: Duration,
    next_ping: Instant,
    next_maintenance: Instant,
    counters: Counters,
}

impl Node {
    /// A node with id `local` (derived from its ML-DSA-87 key by the caller). `rng_seed` drives
    /// every random choice (timer jitter, refresh targets), so a simulation is reproducible.
    pub fn new(local: NodeId, config: Config, rng_seed: u64, now: Instant) -> Self {
        let peers = Peers::new(config.peer_memory, config.failure_memory);
        let mut node = Self {
            peers,
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
            soft_deadlines: BTreeSet::new(),
            next_request: 0,
            pinging: HashSet::new(),
            verifying: 0,
            published: BTreeMap::new(),
            published_providers: BTreeMap::new(),
            replicas: BTreeMap::new(),
            unix_origin_ms: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            next_refresh: now,
            next_seed_retry: None,
            seed_retry_delay: Duration::ZERO,
            next_ping: now,
            next_maintenance: now,
            counters: Counters::default(),
        };
        node.next_refresh = now + node.jittered(node.config.refresh_interval);
        node.next_ping = now + node.jittered(node.config.ping_interval);
        node.next_maintenance = now + node.jittered(node.config.maintenance_interval);
        node
    }

    /// This node's own id.
    pub fn local_id(&self) -> &NodeId {
        &self.local
    }

    /// Tells the node the wall-clock time: `unix_ms` milliseconds since the Unix epoch at
    /// `now`. With it, records go out with the absolute expiry of the sender's copy (and
    /// copies received with one never outlive it); without, every copy's TTL counts from
    /// when each node stores it, as with peers that do not send expiries.
    pub fn set_unix_time(&mut self, now: Instant, unix_ms: u64) {
        let elapsed = u64::try_from(now.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.unix_origin_ms = Some(unix_ms.saturating_sub(elapsed));
    }

    /// The routing table, read-only.
    pub fn table(&self) -> &RoutingTable {
        &self.table
    }

    /// The records and provider entries this node holds, read-only.
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
        let id = self.start_bootstrap(now, seeds, true);
        if let Some(query) = self.queries.get_mut(&id) {
            query.through_seeds = true;
        }
        id
    }

    /// Looks up the K nodes closest to `target`.
    pub fn find_node(&mut self, now: Instant, target: NodeId) -> QueryId {
        self.start_query(now, target, QueryKind::FindNode, true)
    }

    /// Fetches the newest verified record under `key`: from the network, until
    /// [`Config::read_quorum`] holders agree on the newest copy or every close node was
    /// asked; holders of an older copy are sent the newest (read repair). A record this node
    /// publishes is answered locally: it is the newest there is.
    pub fn get(&mut self, now: Instant, key: Key) -> QueryId {
        if self.published.contains_key(&key)
            && let Some(record) = self.store.get(&key, now).cloned()
        {
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
        let mut read = query::RecordRead::default();
        if let Some(held) = self.held_copy(&key, now) {
            // Our own copy counts as one holder (with its expiry, should it repair others).
            read.offer(Contact::new(self.local, unspecified_addr()), held);
        }
        self.start_query(now, key, QueryKind::GetRecord(read), true)
    }

    /// Publishes `record` on the K nodes closest to its key, and republishes it every
    /// `republish_interval` until [`Node::unpublish`]. Its TTL should exceed that interval.
    pub fn put(&mut self, now: Instant, record: Record) -> Result<QueryId, RecordError> {
        record.verify()?;
        let key = *record.key();
        // Ours, so always kept locally: a lookup that reaches us finds it.
        let record = record.with_expiry(None);
        let _ = self.store.put(record.clone(), now);
        self.replicas.remove(&key);
        let next_republish = now + self.jittered(self.config.republish_interval);
        self.published.insert(
            key,
            Published {
                item: record.clone(),
                next_republish,
            },
        );
        let record = self.outgoing(record, now);
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
        let typing = self.config.validators.classify(&provider)?;
        let key = *provider.key();
        let _ = self.store.add_provider(provider.clone(), typing, now);
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
        let typing = self.store.provider_typing(&key);
        for p in self
            .store
            .providers(&key, self.config.max_providers_per_response, now)
        {
            found.insert(p.publisher_id(), (p, typing));
        }
        self.start_query(now, key, QueryKind::GetProviders { found }, true)
    }

    /// The transport authenticated a connection with `contact` (we dialled it, or it dialled
    /// us from its endpoint's address): a contact as good as any. If our table is short of
    /// K it serves as a seed (we look ourselves up through it); otherwise it is pinged if it
    /// would get a slot. An entry that failed us since it last answered is pinged too, so it
    /// can turn good again. Either way it enters the table only by answering over the DHT, so a
    /// node that runs no DHT never does, and the table's per-subnet limits apply as always.
    pub fn observe_connection(&mut self, now: Instant, contact: Contact) {
        if contact.id == self.local {
            return;
        }
        self.table.record_inbound(contact, now);
        if self.table.contains(&contact.id) {
            // An entry that failed us is back: ask it, so its entry can heal.
            self.maybe_verify_inbound(now, contact);
            return;
        }
        if self.table.len() < self.config.table.k {
            self.start_bootstrap(now, vec![contact.into()], false);
        } else {
            self.maybe_verify_inbound(now, contact);
        }
    }

    /// An operator names a contact: it is asked for our neighbours at once (a lookup of our
    /// own id through it) and enters the table if it answers. Returns the lookup's id.
    pub fn add_contact(&mut self, now: Instant, contact: Contact) -> QueryId {
        self.start_bootstrap(now, vec![contact.into()], true)
    }

    /// An operator takes a contact out of the table ([`RoutingTable::remove`]); returns
    /// whether it was there.
    pub fn remove_contact(&mut self, id: &NodeId) -> bool {
        self.table.remove(id)
    }

    // ---- driver interface -------------------------------------------------------------------

    /// Answers a request from `from`: its id as the transport authenticated it, and the address
    /// it can be reached at (with one QUIC socket per node, the connection's remote address).
    /// A stranger that would fit in the table is pinged back and enters it if it answers.
    pub fn handle_request(&mut self, now: Instant, from: Contact, request: Request) -> Response {
        self.counters.requests_received.bump(request.kind());
        if from.id != self.local {
            self.table.record_inbound(from, now);
            // It wrote to us over an authenticated connection: it is alive now.
            self.peers.heard_from(&from.id, now);
            self.maybe_verify_inbound(now, from);
        }
        let k = self.config.table.k;
        // Only contacts that have not failed us since their last answer are passed on: a
        // node that just died is not advertised to the rest of the network.
        let closest = |table: &RoutingTable, target: &NodeId| -> Vec<Contact> {
            let mut contacts = table.closest_reachable(target, k + 1, now);
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
            Request::FindValue { key } => match self.held_copy(&key, now) {
                Some(record) => Response::Value {
                    record: Some(record),
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
                    .and_then(|()| self.keep_copy(now, record));
                self.store_outcome(result)
            }
            Request::AddProvider { provider } => {
                let result = provider
                    .verify()
                    .and_then(|()| self.config.validators.classify(&provider))
                    .map_err(|e| e.to_string())
                    .and_then(|typing| {
                        self.store
                            .add_provider(provider, typing, now)
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

    /// `responder` answered request `id`: its id as the transport authenticated it, and the
    /// address the answer came from (the connection's remote address). That address is what
    /// the table records, not the one the request was meant for: the transport may have used
    /// a connection the node opened from where it is now, while the request carried an
    /// address someone else remembered.
    pub fn handle_response(
        &mut self,
        now: Instant,
        id: RequestId,
        responder: Contact,
        response: Response,
    ) {
        let Some(pending) = self.take_pending(id) else {
            return; // Late: already timed out.
        };
        let wrong_node = pending
            .to
            .id
            .is_some_and(|expected| expected != responder.id);
        if wrong_node || responder.id == self.local || !response.answers(pending.kind) {
            self.counters.failures += 1;
            self.fail(now, pending);
            return;
        }
        self.counters.responses_received += 1;
        let contact = responder;
        let rtt = now.saturating_duration_since(pending.sent);
        self.peers.answered(contact.id, rtt, now);
        let insert = self
            .table
            .record_success(contact, now, self.peers.srtt(&contact.id));
        match insert {
            Insert::Inserted => {
                self.counters.table_inserts += 1;
                self.hand_over(now, contact);
            }
            Insert::ReplacedBad(_) => {
                self.counters.table_inserts += 1;
                self.counters.table_evictions += 1;
                self.hand_over(now, contact);
            }
            Insert::Updated | Insert::Cached | Insert::SubnetFull | Insert::Local => {}
        }
        match pending.purpose {
            Purpose::Lookup(query) => self.on_lookup_answer(now, query, contact, response, false),
            // A stalled probe no longer holds its lookup up: its late answer is only used.
            Purpose::Probe(query) => {
                if let Some(q) = self.queries.get_mut(&query) {
                    q.seed_answered = true;
                }
                self.on_lookup_answer(now, query, contact, response, !pending.stalled);
            }
            Purpose::Store(query) => {
                let stored = matches!(response, Response::Stored);
                self.on_store_done(now, query, stored);
            }
            Purpose::Repair => {}
            Purpose::Liveness => {
                self.pinging.remove(&responder.id);
            }
            Purpose::VerifyInbound => {
                self.pinging.remove(&responder.id);
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
            .min(self.next_maintenance)
            .min(self.next_seed_retry.unwrap_or(self.next_refresh));
        let hard = self.deadlines.first().map(|(t, _)| *t);
        let soft = self.soft_deadlines.first().map(|(t, _)| *t);
        [hard, soft]
            .into_iter()
            .flatten()
            .fold(periodic, Instant::min)
    }

    /// Fires whatever is due at `now`: soft and hard request timeouts, bucket refresh, pings,
    /// record expiry and republishing.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(deadline, id)) = self.soft_deadlines.first() {
            if deadline > now {
                break;
            }
            self.soft_deadlines.remove(&(deadline, id));
            self.stall(now, id);
        }
        while let Some(&(deadline, id)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            if let Some(pending) = self.take_pending(id) {
                self.counters.timeouts += 1;
                self.fail(now, pending);
            }
        }
        if self.next_seed_retry.is_some_and(|at| now >= at) {
            self.next_seed_retry = None;
            self.retry_seeds(now);
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
            self.replicate(now);
        }
    }

    /// The next finished operation, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests;
