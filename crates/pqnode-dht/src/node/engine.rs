//! Running operations: starting lookups, sending their requests, and folding answers and
//! failures back into them.

use pqnode_crypto::NodeId;

use super::query::{Query, QueryKind, StorePhase};
use super::{Event, Node, Pending, Purpose, QueryId, RequestId, Transmit};
use crate::contact::{Contact, Peer};
use crate::lookup::Lookup;
use crate::message::{Request, Response};
use crate::table::{Failure, NodeState};
use crate::time::Instant;

impl Node {
    pub(super) fn new_query_id(&mut self) -> QueryId {
        self.next_query += 1;
        QueryId(self.next_query)
    }

    pub(super) fn start_bootstrap(
        &mut self,
        now: Instant,
        seeds: Vec<Peer>,
        notify: bool,
    ) -> QueryId {
        let id = self.new_query_id();
        let k = self.config.table.k;
        let paths = self.config.disjoint_paths;
        let mut lookup = Lookup::new(self.local, self.local, k, self.config.alpha, paths);
        let peers = &self.peers;
        let suspect = |id: &NodeId| peers.is_suspect(id, now);
        lookup.seed(self.table.closest(&self.local, k, now), suspect);
        // Seeds were named by the operator: always asked, whatever happened to them before.
        lookup.seed(
            seeds
                .iter()
                .filter_map(|s| s.id.map(|id| Contact::new(id, s.addr))),
            |_| false,
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

    pub(super) fn start_query(
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
        let peers = &self.peers;
        lookup.seed(self.table.closest(&target, k, now), |id| {
            peers.is_suspect(id, now)
        });
        self.counters.lookups_started += 1;
        self.queries.insert(id, Query::new(kind, lookup, notify));
        self.drive(now, id);
        id
    }

    /// Sends what the query can send now, and finishes it when it is done.
    pub(super) fn drive(&mut self, now: Instant, id: QueryId) {
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

    pub(super) fn lookup_done(&mut self, now: Instant, id: QueryId) {
        let Some(query) = self.queries.get_mut(&id) else {
            return;
        };
        let stats = query.lookup.stats();
        if query.through_seeds {
            let seeds = &self.seeds;
            let answered = query.seed_answered
                || seeds
                    .iter()
                    .filter_map(|s| s.id)
                    .any(|id| query.lookup.has_answered(&id));
            self.after_seed_bootstrap(now, answered);
        }
        let Some(query) = self.queries.get_mut(&id) else {
            return;
        };
        self.counters.lookups_finished += 1;
        self.counters.lookup_rounds += u64::from(stats.rounds);
        if let Some(bucket) = self.table.bucket_of(query.lookup.target()) {
            self.table.mark_refreshed(bucket, now);
        }
        if let QueryKind::GetRecord(read) = &mut query.kind
            && let Some(best) = read.best.clone()
        {
            let stale = std::mem::take(&mut read.stale);
            for contact in stale {
                self.counters.read_repairs += 1;
                if contact.id == self.local {
                    // Our own copy was the stale one.
                    let _ = self.keep_copy(now, best.clone());
                    continue;
                }
                let request = Request::Store {
                    record: best.clone(),
                };
                self.send(now, contact.into(), request, Purpose::Repair);
            }
        }
        let Some(query) = self.queries.get_mut(&id) else {
            return;
        };
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

    pub(super) fn finish(&mut self, id: QueryId) {
        let Some(query) = self.queries.remove(&id) else {
            return;
        };
        let (result, stats) = query.into_result(self.config.table.k);
        if let Some(result) = result {
            self.events
                .push_back(Event::QueryFinished { id, result, stats });
        }
    }

    pub(super) fn on_lookup_answer(
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
        let peers = &self.peers;
        let suspect = |id: &NodeId| peers.is_suspect(id, now);
        if probe {
            query.probes = query.probes.saturating_sub(1);
        }
        let target = *query.lookup.target();
        let closer = match response {
            Response::Nodes { closer } => closer,
            Response::Value { record, closer } => {
                if let (Some(record), QueryKind::GetRecord(read)) = (record, &mut query.kind)
                    && record.key() == &target
                    && record.verify().is_ok()
                {
                    // A holder answers with the record instead of closer nodes; the read goes
                    // on until `read_quorum` holders agree on the newest copy, or the lookup
                    // has asked everyone close: a stale or lost copy cannot end it early.
                    let agreeing = read.offer(from, record);
                    query.lookup.on_answer(from, [], suspect);
                    if agreeing >= self.config.read_quorum {
                        self.lookup_done(now, id);
                        return;
                    }
                    self.drive(now, id);
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
                        if p.key() != &target {
                            continue;
                        }
                        let Ok(typing) = p
                            .verify()
                            .and_then(|()| self.config.validators.classify(&p))
                        else {
                            continue;
                        };
                        let publisher = p.publisher_id();
                        if found
                            .get(&publisher)
                            .is_none_or(|(old, _)| old.seq() < p.seq())
                        {
                            found.insert(publisher, (p, typing));
                        }
                    }
                }
                closer
            }
            Response::Pong { .. } | Response::Stored | Response::Rejected { .. } => Vec::new(),
        };
        query
            .lookup
            .on_answer(from, closer.into_iter().take(k), suspect);
        self.drive(now, id);
    }

    pub(super) fn on_store_done(&mut self, now: Instant, id: QueryId, stored: bool) {
        if let Some(store) = self.queries.get_mut(&id).and_then(|q| q.store.as_mut()) {
            store.outstanding = store.outstanding.saturating_sub(1);
            store.stored += usize::from(stored);
        }
        self.drive(now, id);
    }

    pub(super) fn send(
        &mut self,
        now: Instant,
        to: Peer,
        request: Request,
        purpose: Purpose,
    ) -> RequestId {
        self.next_request += 1;
        let id = RequestId(self.next_request);
        let kind = request.kind();
        let timeouts = self
            .peers
            .timeouts(to.id.as_ref(), &self.config.timeout_bounds());
        let deadline = now + timeouts.hard;
        // Only lookups (and their probes of address-only seeds) move past a slow contact; a
        // store or a ping waits for its answer until the hard timeout.
        let soft_deadline = matches!(purpose, Purpose::Lookup(_) | Purpose::Probe(_))
            .then(|| now + timeouts.soft)
            .filter(|soft| *soft < deadline);
        self.counters.requests_sent.bump(kind);
        self.pending.insert(
            id,
            Pending {
                to,
                kind,
                sent: now,
                soft_deadline,
                deadline,
                patience: now + timeouts.patience,
                purpose,
                stalled: false,
            },
        );
        self.deadlines.insert((deadline, id));
        if let Some(soft) = soft_deadline {
            self.soft_deadlines.insert((soft, id));
        }
        self.transmits.push_back(Transmit {
            id,
            to,
            request,
            timeout: timeouts.hard,
        });
        id
    }

    pub(super) fn take_pending(&mut self, id: RequestId) -> Option<Pending> {
        let pending = self.pending.remove(&id)?;
        self.deadlines.remove(&(pending.deadline, id));
        if let Some(soft) = pending.soft_deadline {
            self.soft_deadlines.remove(&(soft, id));
        }
        if pending.stalled
            && let Some(peer) = &pending.to.id
        {
            self.peers.unstalled(peer);
        }
        Some(pending)
    }

    /// Request `id` passed its soft deadline: its lookup stops waiting for it, and the contact
    /// is suspect until the request ends. A lookup's request to its own target is waited for
    /// a while longer (until its patience deadline, which comes back here), unless the target
    /// failed as often as makes it bad.
    pub(super) fn stall(&mut self, now: Instant, id: RequestId) {
        let Some(pending) = self.pending.get_mut(&id) else {
            return;
        };
        if pending.stalled {
            // The patience deadline of a target's overdue answer.
            pending.soft_deadline = None;
            if let Purpose::Lookup(query) = pending.purpose {
                if let Some(q) = self.queries.get_mut(&query) {
                    q.lookup.stop_awaiting_target();
                }
                self.drive(now, query);
            }
            return;
        }
        pending.stalled = true;
        pending.soft_deadline = None;
        self.counters.stalls += 1;
        let (to, purpose, patience, deadline) = (
            pending.to,
            pending.purpose,
            pending.patience,
            pending.deadline,
        );
        if let Some(peer) = to.id {
            self.peers.stalled(peer, now);
        }
        match purpose {
            Purpose::Lookup(query) => {
                if let (Some(q), Some(peer)) = (self.queries.get_mut(&query), to.id) {
                    q.lookup.on_stall(&peer);
                    // One failure may be one lost packet too many (or a stall of the
                    // target's machine); as many as make a table entry bad mean it is gone.
                    let failing = self.peers.failures(&peer, now) >= self.config.table.max_failures
                        || self.table.state_of(&peer, now) == Some(NodeState::Bad);
                    if peer == *q.lookup.target() && !failing && patience > now {
                        q.lookup.await_target();
                        if patience < deadline
                            && let Some(pending) = self.pending.get_mut(&id)
                        {
                            pending.soft_deadline = Some(patience);
                            self.soft_deadlines.insert((patience, id));
                        }
                    }
                }
                self.drive(now, query);
            }
            Purpose::Probe(query) => {
                if let Some(q) = self.queries.get_mut(&query) {
                    q.probes = q.probes.saturating_sub(1);
                }
                self.drive(now, query);
            }
            Purpose::Store(_) | Purpose::Repair | Purpose::Liveness | Purpose::VerifyInbound => {}
        }
    }

    /// A request failed: it counts against the contact at once, in the table (BEP 5: one
    /// failure makes an entry questionable, `max_failures` make it bad) and in lookups (it
    /// is left out of them for [`crate::Config::failure_memory`]).
    pub(super) fn fail(&mut self, now: Instant, pending: Pending) {
        if let Some(peer) = pending.to.id {
            self.peers.failed(peer, now);
            if let Failure::Replaced { .. } = self.table.record_failure(&peer, now) {
                self.counters.table_evictions += 1;
            }
        }
        match pending.purpose {
            Purpose::Lookup(id) => {
                if let (Some(query), Some(peer)) = (self.queries.get_mut(&id), pending.to.id) {
                    query.lookup.on_failure(&peer);
                }
                self.drive(now, id);
            }
            Purpose::Probe(id) => {
                if !pending.stalled
                    && let Some(query) = self.queries.get_mut(&id)
                {
                    query.probes = query.probes.saturating_sub(1);
                }
                self.drive(now, id);
            }
            Purpose::Store(id) => self.on_store_done(now, id, false),
            Purpose::Repair => {}
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

    pub(super) fn store_outcome(&mut self, result: Result<(), String>) -> Response {
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
}
