//! Operations run on simulated nodes, and their outcomes with the simulated time they took.

use std::time::Duration;

use pqnode_crypto::NodeId;

use crate::contact::Contact;
use crate::lookup::LookupStats;
use crate::node::{Node, QueryId, QueryResult};
use crate::record::{Key, ProviderRecord, Record};
use crate::time::Instant;

use super::{QUERY_DEADLINE, Simulator};

/// What an operation gave, with the lookup's figures and the simulated time from its start
/// to its end (zero for an answer the node had locally).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome<T> {
    /// What the operation returned.
    pub value: T,
    /// The lookup's rounds, requests, stalls and failures.
    pub stats: LookupStats,
    /// Simulated time from the operation's start to its end.
    pub latency: Duration,
}

impl<T> Outcome<T> {
    fn map<U>(self, f: impl FnOnce(T) -> Option<U>) -> Option<Outcome<U>> {
        Some(Outcome {
            value: f(self.value)?,
            stats: self.stats,
            latency: self.latency,
        })
    }
}

impl Simulator {
    /// Starts an operation on node `i`; see [`Simulator::wait`].
    pub fn start(
        &mut self,
        i: usize,
        op: impl FnOnce(&mut Node, Instant) -> QueryId,
    ) -> Option<QueryId> {
        let now = self.now;
        let node = self.nodes.get_mut(i).filter(|n| n.alive)?;
        let id = op(&mut node.node, now);
        self.started.insert((i, id), now);
        self.settle(i);
        Some(id)
    }

    /// Starts an operation that may refuse to start (an invalid record).
    fn try_start<E>(
        &mut self,
        i: usize,
        op: impl FnOnce(&mut Node, Instant) -> Result<QueryId, E>,
    ) -> Option<QueryId> {
        let now = self.now;
        let node = self.nodes.get_mut(i).filter(|n| n.alive)?;
        let id = op(&mut node.node, now).ok()?;
        self.started.insert((i, id), now);
        self.settle(i);
        Some(id)
    }

    /// Runs until every listed query finished (or 10 virtual minutes passed); returns the
    /// outcomes in the same order, `None` for those that did not finish.
    pub fn wait(&mut self, queries: &[(usize, QueryId)]) -> Vec<Option<Outcome<QueryResult>>> {
        let deadline = self.now + QUERY_DEADLINE;
        let pending = |sim: &Self| queries.iter().any(|q| !sim.finished.contains_key(q));
        let mut waiting = pending(self);
        while waiting && self.queue.peek_time().is_some_and(|t| t <= deadline) {
            if self.step().is_some() {
                waiting = pending(self);
            }
        }
        queries
            .iter()
            .map(|q| {
                self.started.remove(q);
                self.finished.remove(q)
            })
            .collect()
    }

    /// Runs one operation to completion.
    pub fn run_query(
        &mut self,
        i: usize,
        op: impl FnOnce(&mut Node, Instant) -> QueryId,
    ) -> Option<Outcome<QueryResult>> {
        let id = self.start(i, op)?;
        self.wait(&[(i, id)]).pop().flatten()
    }

    /// Node `i` looks up `target`: the contacts it found.
    pub fn find_node(&mut self, i: usize, target: NodeId) -> Option<Outcome<Vec<Contact>>> {
        self.run_query(i, |n, now| n.find_node(now, target))?
            .map(|r| match r {
                QueryResult::FindNode { closest, .. } => Some(closest),
                _ => None,
            })
    }

    /// Runs every lookup at once (as real traffic overlaps); outcomes in the same order.
    pub fn find_node_all(
        &mut self,
        lookups: &[(usize, NodeId)],
    ) -> Vec<Option<Outcome<Vec<Contact>>>> {
        let started: Vec<Option<(usize, QueryId)>> = lookups
            .iter()
            .map(|(i, target)| Some((*i, self.start(*i, |n, now| n.find_node(now, *target))?)))
            .collect();
        self.wait_started(&started)
            .into_iter()
            .map(|r| {
                r?.map(|r| match r {
                    QueryResult::FindNode { closest, .. } => Some(closest),
                    _ => None,
                })
            })
            .collect()
    }

    /// Node `i` publishes `record`; returns how many nodes stored it.
    pub fn put(&mut self, i: usize, record: Record) -> Option<usize> {
        self.put_all(vec![(i, record)]).pop().flatten()
    }

    /// Publishes every record from its node, all at once; returns how many nodes stored each,
    /// `None` where the put could not start or finish.
    pub fn put_all(&mut self, puts: Vec<(usize, Record)>) -> Vec<Option<usize>> {
        let started: Vec<Option<(usize, QueryId)>> = puts
            .into_iter()
            .map(|(i, record)| Some((i, self.try_start(i, |n, now| n.put(now, record))?)))
            .collect();
        self.wait_started(&started)
            .into_iter()
            .map(|r| match r?.value {
                QueryResult::PutRecord { stored, .. } => Some(stored),
                _ => None,
            })
            .collect()
    }

    /// Node `i` fetches the record under `key`.
    pub fn get(&mut self, i: usize, key: Key) -> Option<Outcome<Option<Record>>> {
        self.get_all(&[(i, key)]).pop().flatten()
    }

    /// Runs every get at once; outcomes in the same order.
    pub fn get_all(&mut self, gets: &[(usize, Key)]) -> Vec<Option<Outcome<Option<Record>>>> {
        let started: Vec<Option<(usize, QueryId)>> = gets
            .iter()
            .map(|(i, key)| Some((*i, self.start(*i, |n, now| n.get(now, *key))?)))
            .collect();
        self.wait_started(&started)
            .into_iter()
            .map(|r| {
                r?.map(|r| match r {
                    QueryResult::GetRecord { record, .. } => Some(record),
                    _ => None,
                })
            })
            .collect()
    }

    fn wait_started(
        &mut self,
        started: &[Option<(usize, QueryId)>],
    ) -> Vec<Option<Outcome<QueryResult>>> {
        let ids: Vec<(usize, QueryId)> = started.iter().flatten().copied().collect();
        let mut results = self.wait(&ids).into_iter();
        started
            .iter()
            .map(|s| s.and_then(|_| results.next().flatten()))
            .collect()
    }

    /// Node `i` publishes a provider entry; returns how many nodes stored it.
    pub fn add_provider(&mut self, i: usize, provider: ProviderRecord) -> Option<usize> {
        let id = self.try_start(i, |n, now| n.add_provider(now, provider))?;
        match self.wait(&[(i, id)]).pop().flatten()?.value {
            QueryResult::AddProvider { stored, .. } => Some(stored),
            _ => None,
        }
    }

    /// Node `i` collects provider entries under `key`.
    pub fn get_providers(&mut self, i: usize, key: Key) -> Option<Vec<ProviderRecord>> {
        match self.run_query(i, |n, now| n.get_providers(now, key))?.value {
            QueryResult::GetProviders { providers, .. } => Some(providers),
            _ => None,
        }
    }
}
