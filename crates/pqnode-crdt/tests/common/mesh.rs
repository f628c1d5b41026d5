//! An in-memory network for replication tests and benchmarks: one [`Mesh`] plays the DHT
//! (replica announcements) and the QUIC transport (requests, through the real protobuf
//! bytes and the same size cap), with a switch to cut a node off and a delay per node.

#![allow(dead_code)]

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use pqnode_crdt::replication::{
    BoxFuture, LinkError, ReplicaDirectory, SYNC_MAX_MESSAGE, SyncLink,
};
use pqnode_crdt::{DocConfig, DocName, DocStore, ReplicationConfig, Replicator};
use pqnode_crypto::NodeId;
use pqnode_store::Store;

#[derive(Default)]
pub(crate) struct Mesh {
    nodes: Mutex<HashMap<NodeId, Replicator>>,
    providers: Mutex<HashMap<DocName, BTreeSet<NodeId>>>,
    cut: Mutex<HashSet<NodeId>>,
    delay: Mutex<HashMap<NodeId, Duration>>,
    /// Links cut between two nodes only (both directions).
    cut_links: Mutex<HashSet<(NodeId, NodeId)>>,
    /// Requests that reached a node, and their request plus response bytes.
    pub requests: AtomicUsize,
    pub bytes: AtomicUsize,
}

impl Mesh {
    pub(crate) fn new() -> Arc<Mesh> {
        Arc::new(Mesh::default())
    }

    pub(crate) fn attach(&self, node: NodeId, replicator: Replicator) {
        self.nodes.lock().unwrap().insert(node, replicator);
    }

    pub(crate) fn detach(&self, node: NodeId) {
        self.nodes.lock().unwrap().remove(&node);
    }

    /// Cuts `node` off from every other node (`true`), or reconnects it.
    pub(crate) fn partition(&self, node: NodeId, cut: bool) {
        let mut set = self.cut.lock().unwrap();
        match cut {
            true => set.insert(node),
            false => set.remove(&node),
        };
    }

    /// Cuts the link between `a` and `b` only; each still reaches everyone else.
    pub(crate) fn cut_link(&self, a: NodeId, b: NodeId) {
        let mut links = self.cut_links.lock().unwrap();
        links.insert((a, b));
        links.insert((b, a));
    }

    /// Every request to `node` waits this long before it is handled.
    pub(crate) fn slow_down(&self, node: NodeId, delay: Duration) {
        self.delay.lock().unwrap().insert(node, delay);
    }

    pub(crate) fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes.load(Ordering::SeqCst)
    }
}

/// One node's view of the mesh: its directory and its link.
pub(crate) struct NodeView {
    pub mesh: Arc<Mesh>,
    pub node: NodeId,
}

impl ReplicaDirectory for NodeView {
    fn announce(&self, doc: DocName) -> BoxFuture<'_, Result<(), LinkError>> {
        let mut providers = self.mesh.providers.lock().unwrap();
        providers.entry(doc).or_default().insert(self.node);
        Box::pin(async { Ok(()) })
    }

    fn replicas(&self, doc: DocName) -> BoxFuture<'_, Result<Vec<NodeId>, LinkError>> {
        let providers = self.mesh.providers.lock().unwrap();
        let nodes = providers
            .get(&doc)
            .into_iter()
            .flatten()
            .filter(|node| **node != self.node)
            .copied()
            .collect();
        Box::pin(async { Ok(nodes) })
    }

    fn retire(&self, doc: DocName) -> BoxFuture<'_, Result<(), LinkError>> {
        if let Some(nodes) = self.mesh.providers.lock().unwrap().get_mut(&doc) {
            nodes.remove(&self.node);
        }
        Box::pin(async { Ok(()) })
    }
}

impl SyncLink for NodeView {
    fn request(&self, node: NodeId, payload: Bytes) -> BoxFuture<'_, Result<Bytes, LinkError>> {
        Box::pin(async move {
            {
                let cut = self.mesh.cut.lock().unwrap();
                let link = self
                    .mesh
                    .cut_links
                    .lock()
                    .unwrap()
                    .contains(&(self.node, node));
                if link || cut.contains(&self.node) || cut.contains(&node) {
                    return Err(LinkError::new("unreachable (partitioned)"));
                }
            }
            // As the transport does with a registered protocol's cap.
            if payload.len() > SYNC_MAX_MESSAGE {
                return Err(LinkError::new("request over the SYNC cap"));
            }
            let delay = self.mesh.delay.lock().unwrap().get(&node).copied();
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
            let target = self.mesh.nodes.lock().unwrap().get(&node).cloned();
            let Some(target) = target else {
                return Err(LinkError::new("no such node (down)"));
            };
            let sent = payload.len();
            let reply = target
                .handle(self.node, payload)
                .await
                .map_err(|e| LinkError::new(format!("failure: {e}")))?;
            if reply.len() > SYNC_MAX_MESSAGE {
                return Err(LinkError::new("response over the SYNC cap"));
            }
            self.mesh.requests.fetch_add(1, Ordering::SeqCst);
            self.mesh
                .bytes
                .fetch_add(sent + reply.len(), Ordering::SeqCst);
            Ok(reply)
        })
    }
}

pub(crate) fn node_id(n: u8) -> NodeId {
    NodeId::from_bytes([n; 20])
}

/// A node of the mesh: its own redb store, document engine and replicator.
pub(crate) struct Node {
    pub id: NodeId,
    pub path: PathBuf,
    pub store: Store,
    pub docs: DocStore,
    pub replicator: Replicator,
}

impl Node {
    pub(crate) async fn start(
        mesh: &Arc<Mesh>,
        n: u8,
        dir: &Path,
        config: ReplicationConfig,
    ) -> Node {
        Self::start_with(mesh, n, dir, config, DocConfig::default())
            .await
            .expect("replicator")
    }

    /// A node whose document engine has `doc_config`; fails as [`Replicator::new`] does.
    pub(crate) async fn start_with(
        mesh: &Arc<Mesh>,
        n: u8,
        dir: &Path,
        config: ReplicationConfig,
        doc_config: DocConfig,
    ) -> Result<Node, pqnode_crdt::ReplicationError> {
        let id = node_id(n);
        let path = dir.join(format!("node{n}.redb"));
        let store = Store::open(&path).await.expect("store");
        let docs = DocStore::open(store.clone(), doc_config)
            .await
            .expect("engine");
        let view = Arc::new(NodeView {
            mesh: mesh.clone(),
            node: id,
        });
        let replicator = Replicator::new(docs.clone(), view.clone(), view, config)?;
        mesh.attach(id, replicator.clone());
        Ok(Node {
            id,
            path,
            store,
            docs,
            replicator,
        })
    }

    /// Stops the node: gone from the mesh, replication stopped, store closed.
    pub(crate) async fn stop(self, mesh: &Mesh) {
        mesh.detach(self.id);
        self.replicator.shutdown().await;
        drop(self.replicator);
        drop(self.docs);
        self.store.close().await.expect("close");
    }

    /// The text of root "t" of `doc` here ("" for a document not stored).
    pub(crate) async fn text(&self, doc: &DocName) -> String {
        match self.docs.text(doc, "t").await {
            Ok(text) => text.unwrap_or_default(),
            Err(pqnode_crdt::DocError::NotFound { .. }) => String::new(),
            Err(error) => panic!("{error}"),
        }
    }
}
