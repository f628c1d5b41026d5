//! The handle the rest of the node holds: start, operations, observability, shutdown.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pqnode_crypto::{Identity, NodeId};
use pqnode_dht::{
    BucketInfo, Contact, DhtStats, Instant, Key, Node, NodeInfo, Peer, ProviderRecord, QueryResult,
    Record,
};
use pqnode_health::Health;
use pqnode_net::{Network, PeerAddr};
use pqnode_store::Store;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::actor::Actor;
use crate::address::DhtAddressLookup;
use crate::command::{Command, DhtSnapshot, Finished, Operation};
use crate::config::OverlayConfig;
use crate::error::OverlayError;
use crate::handler::DhtHandler;
use crate::outcome::{LookupOutcome, PutOutcome};
use crate::persist;

/// The running DHT of one node. Cheap to clone; every clone drives the same DHT.
///
/// It keeps answering other nodes until [`Overlay::shutdown`], even with every handle
/// dropped: the network's DHT handler still feeds it.
#[derive(Clone)]
pub struct Overlay {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    identity: Arc<Identity>,
    commands: mpsc::Sender<Command>,
    health: watch::Receiver<Health>,
    actor: Mutex<Option<JoinHandle<()>>>,
    /// Last sequence number given to a record or provider entry we signed.
    last_seq: AtomicU64,
}

impl std::fmt::Debug for Overlay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Overlay")
            .field("node_id", &self.local_id())
            .finish_non_exhaustive()
    }
}

impl Overlay {
    /// Starts the DHT on `network`: reloads the routing table saved in `store` (if any),
    /// registers the [`DHT`](crate::DHT) handler and itself as the network's address lookup, and starts joining through the configured
    /// seeds and the reloaded contacts in the background (failures are logged; while no seed
    /// answers and the table is short of K, the core tries them again after 1 s, doubling up
    /// to the refresh interval). Must be called inside a tokio runtime.
    pub async fn start(
        network: Network,
        store: Option<Store>,
        config: OverlayConfig,
    ) -> Result<Self, OverlayError> {
        config.validate()?;
        let local = config.identity.node_id();
        if network.node_id() != local {
            return Err(OverlayError::IdentityMismatch {
                overlay: local,
                network: network.node_id(),
            });
        }
        let origin = tokio::time::Instant::now();
        let rng_seed = config.rng_seed.unwrap_or_else(|| clock_seed(&local));
        let mut node = Node::new(local, config.dht.clone(), rng_seed, Instant::ZERO);
        // Records go out with the absolute expiry of our copy (see `Record::expires_unix_ms`).
        node.set_unix_time(Instant::ZERO, pqnode_clock::now_unix_ms());
        let restored = match &store {
            Some(store) => persist::restore(&mut node, store).await,
            None => 0,
        };

        let (commands, receiver) = mpsc::channel(config.queue_len);
        let (health_tx, health) = watch::channel(node.health(Instant::ZERO));
        network.register(
            crate::DHT,
            DhtHandler::new(commands.clone(), config.peer_rate),
        )?;
        let actor = Actor::new(
            node,
            network.clone(),
            store,
            origin,
            receiver,
            health_tx,
            config.save_interval,
        );
        let task = tokio::spawn(actor.run());
        let overlay = Self {
            inner: Arc::new(Inner {
                identity: config.identity.clone(),
                commands,
                health,
                actor: Mutex::new(Some(task)),
                last_seq: AtomicU64::new(0),
            }),
        };
        network.set_address_lookup(Arc::new(DhtAddressLookup {
            overlay: Arc::downgrade(&overlay.inner),
        }));
        tracing::info!(node_id = %local, restored, seeds = config.seeds.len(), "DHT started");

        if !config.seeds.is_empty() || restored > 0 {
            let joining = overlay.clone();
            let seeds = config.seeds;
            tokio::spawn(async move {
                match joining.bootstrap(&seeds).await {
                    Ok(outcome) if outcome.closest.is_empty() => {
                        tracing::warn!(
                            "DHT bootstrap reached no node; retrying in 1 s, then backing off \
                             up to the refresh interval"
                        );
                    }
                    Ok(outcome) => tracing::info!(
                        found = outcome.closest.len(),
                        rounds = outcome.rounds,
                        elapsed = ?outcome.elapsed,
                        "DHT bootstrapped"
                    ),
                    Err(e) => tracing::warn!(error = %e, "DHT bootstrap did not run"),
                }
            });
        }
        Ok(overlay)
    }

    pub(crate) fn from_inner(inner: Arc<Inner>) -> Self {
        Self { inner }
    }

    /// This node's id, the one its TLS handshakes prove.
    pub fn local_id(&self) -> NodeId {
        self.inner.identity.node_id()
    }

    /// Joins through `seeds` (and whatever the table already holds) by looking up our own
    /// id. Seeds that do not resolve are logged and skipped. The core keeps the seeds and
    /// bootstraps again on its own whenever its table runs empty.
    pub async fn bootstrap(&self, seeds: &[PeerAddr]) -> Result<LookupOutcome, OverlayError> {
        let mut peers = Vec::new();
        for seed in seeds {
            match seed.resolve().await {
                Ok(addrs) if !addrs.is_empty() => {
                    peers.extend(addrs.into_iter().map(|addr| Peer {
                        id: seed.node_id,
                        addr,
                    }));
                }
                Ok(_) => tracing::warn!(%seed, "bootstrap node resolved to no address"),
                Err(e) => tracing::warn!(%seed, error = %e, "cannot resolve bootstrap node"),
            }
        }
        let finished = self.run(Operation::Bootstrap(peers)).await?;
        match finished.result {
            QueryResult::Bootstrap { closest } => Ok(LookupOutcome::new(
                self.local_id(),
                closest,
                finished.stats,
                finished.elapsed,
            )),
            _ => Err(OverlayError::WrongResult),
        }
    }

    /// The K nodes closest to `target` that answered (an iterative Kademlia lookup).
    pub async fn lookup(&self, target: NodeId) -> Result<LookupOutcome, OverlayError> {
        let finished = self.run(Operation::FindNode(target)).await?;
        match finished.result {
            QueryResult::FindNode { target, closest } => Ok(LookupOutcome::new(
                target,
                closest,
                finished.stats,
                finished.elapsed,
            )),
            _ => Err(OverlayError::WrongResult),
        }
    }

    /// The record under `key`, from this node or the network. Only records whose signature
    /// verifies are returned.
    pub async fn get_record(&self, key: Key) -> Result<Option<Record>, OverlayError> {
        match self.run(Operation::Get(key)).await?.result {
            QueryResult::GetRecord { record, .. } => Ok(record),
            _ => Err(OverlayError::WrongResult),
        }
    }

    /// Stores a record signed by anyone on the nodes closest to its key, and keeps
    /// republishing it until [`Overlay::unpublish`].
    pub async fn put_record(&self, record: Record) -> Result<PutOutcome, OverlayError> {
        let finished = self.run(Operation::Put(record)).await?;
        match finished.result {
            QueryResult::PutRecord { key, stored } => Ok(PutOutcome {
                key,
                stored,
                elapsed: finished.elapsed,
            }),
            _ => Err(OverlayError::WrongResult),
        }
    }

    /// Signs `value` under `name` with this node's identity and publishes it. The key is
    /// [`pqnode_dht::record_key`]`(local id, name)`; a later publication of the same name
    /// replaces this one (its sequence number is higher, across restarts too: it counts
    /// milliseconds of wall-clock time).
    pub async fn publish(
        &self,
        name: &[u8],
        value: &[u8],
        ttl: Duration,
    ) -> Result<PutOutcome, OverlayError> {
        let record = Record::sign(&self.inner.identity, name, value, self.next_seq(), ttl)?;
        self.put_record(record).await
    }

    /// Adds this node's signed entry `value` under `key` (presence, topic membership), and
    /// keeps republishing it until [`Overlay::unpublish`].
    pub async fn add_provider(
        &self,
        key: Key,
        value: &[u8],
        ttl: Duration,
    ) -> Result<PutOutcome, OverlayError> {
        let provider =
            ProviderRecord::sign(&self.inner.identity, key, value, self.next_seq(), ttl)?;
        let finished = self.run(Operation::AddProvider(provider)).await?;
        match finished.result {
            QueryResult::AddProvider { key, stored } => Ok(PutOutcome {
                key,
                stored,
                elapsed: finished.elapsed,
            }),
            _ => Err(OverlayError::WrongResult),
        }
    }

    /// Valid provider entries under `key`, one per publisher (the newest).
    pub async fn get_providers(&self, key: Key) -> Result<Vec<ProviderRecord>, OverlayError> {
        match self.run(Operation::GetProviders(key)).await?.result {
            QueryResult::GetProviders { providers, .. } => Ok(providers),
            _ => Err(OverlayError::WrongResult),
        }
    }

    /// Adds a contact an operator names (`id@host:port`: the id is checked by the handshake):
    /// it is asked for our neighbours at once, and enters the table if it answers over the
    /// DHT. Returns the lookup's outcome and whether the contact is in the table now.
    pub async fn add_contact(
        &self,
        peer: &PeerAddr,
    ) -> Result<(LookupOutcome, bool), OverlayError> {
        let id = peer.node_id.ok_or(OverlayError::Unpinned)?;
        let addr = peer
            .resolve()
            .await
            .ok()
            .and_then(|addrs| addrs.into_iter().next())
            .ok_or(OverlayError::Unresolved)?;
        let finished = self
            .run(Operation::AddContact(Contact::new(id, addr)))
            .await?;
        let QueryResult::Bootstrap { closest } = finished.result else {
            return Err(OverlayError::WrongResult);
        };
        let snapshot = self.snapshot().await?;
        let in_table = snapshot.nodes.iter().any(|n| n.id == id);
        let outcome =
            LookupOutcome::new(self.local_id(), closest, finished.stats, finished.elapsed);
        Ok((outcome, in_table))
    }

    /// Takes a contact out of the routing table; returns whether it was there. It may come
    /// back by answering a later request, like any node.
    pub async fn remove_contact(&self, id: NodeId) -> Result<bool, OverlayError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::RemoveContact { id, reply }).await?;
        answer.await.map_err(|_| OverlayError::Stopped)
    }

    /// Stops republishing what we published under `key` (record and provider entry); the
    /// network forgets it within its TTL. Returns whether anything was published there.
    pub async fn unpublish(&self, key: Key) -> Result<bool, OverlayError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Unpublish { key, reply }).await?;
        answer.await.map_err(|_| OverlayError::Stopped)
    }

    /// The routing table and the statistics, taken together: the body of `/api/dht/nodes`.
    pub async fn snapshot(&self) -> Result<DhtSnapshot, OverlayError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Inspect { reply }).await?;
        answer.await.map_err(|_| OverlayError::Stopped)
    }

    /// The routing table's entries.
    pub async fn nodes(&self) -> Result<Vec<NodeInfo>, OverlayError> {
        Ok(self.snapshot().await?.nodes)
    }

    /// The buckets that hold something.
    pub async fn buckets(&self) -> Result<Vec<BucketInfo>, OverlayError> {
        Ok(self.snapshot().await?.stats.buckets)
    }

    /// The spec's `{totalNodes, bucketsUsed, bootstrapNodes}` and the core's counters.
    pub async fn stats(&self) -> Result<DhtStats, OverlayError> {
        Ok(self.snapshot().await?.stats)
    }

    /// Warns while the routing table is empty; fails once the DHT has stopped.
    pub fn health(&self) -> Health {
        self.inner.health.borrow().clone()
    }

    /// Saves the routing table, stops every DHT task and releases the network. Requests
    /// that arrive afterwards are answered "unavailable". Calling it again does nothing.
    pub async fn shutdown(&self) {
        let (reply, done) = oneshot::channel();
        if self
            .inner
            .commands
            .send(Command::Shutdown { reply })
            .await
            .is_ok()
        {
            let _ = done.await;
        }
        let task = self
            .inner
            .actor
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task
            && let Err(e) = task.await
        {
            tracing::error!(error = %e, "the DHT task ended abnormally");
        }
    }

    async fn run(&self, operation: Operation) -> Result<Finished, OverlayError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Operation { operation, reply }).await?;
        Ok(answer.await.map_err(|_| OverlayError::Stopped)??)
    }

    async fn send(&self, command: Command) -> Result<(), OverlayError> {
        self.inner
            .commands
            .send(command)
            .await
            .map_err(|_| OverlayError::Stopped)
    }

    fn next_seq(&self) -> u64 {
        next_seq(&self.inner.last_seq, pqnode_clock::now_unix_ms())
    }
}

/// Sequence numbers for what we sign: wall-clock milliseconds, so a restarted node's next
/// publication still replaces its last one, yet strictly growing within the process even
/// when the clock stalls or steps back.
fn next_seq(last: &AtomicU64, now_ms: u64) -> u64 {
    let advance = |previous: u64| now_ms.max(previous.saturating_add(1));
    match last.fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| Some(advance(p))) {
        Ok(previous) | Err(previous) => advance(previous),
    }
}

/// A seed for the core's jitter: differs between nodes and between runs, which is all the
/// jitter needs (nothing secret depends on it).
fn clock_seed(local: &NodeId) -> u64 {
    let id = local
        .as_bytes()
        .first_chunk::<8>()
        .copied()
        .unwrap_or_default();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    u64::from_le_bytes(id) ^ u64::from(nanos).rotate_left(32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_follow_the_clock_and_always_grow() {
        let last = AtomicU64::new(0);
        assert_eq!(next_seq(&last, 1_000), 1_000);
        assert_eq!(next_seq(&last, 1_000), 1_001, "same millisecond");
        assert_eq!(next_seq(&last, 900), 1_002, "clock stepped back");
        assert_eq!(next_seq(&last, 5_000), 5_000);
        assert_eq!(last.load(Ordering::Acquire), 5_000);
    }
}
