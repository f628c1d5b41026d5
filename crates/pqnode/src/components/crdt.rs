//! Start-up step 4: CRDT documents — the engine on the node's store, who may open what,
//! and the Yjs endpoint the signaling port mounts at `/sync/{doc}`.

use std::sync::Arc;

use anyhow::Context;
use pqnode_crdt::{DocConfig, DocStore};
use pqnode_crdt_ws::{AccessControl, SyncEndpoint};
use pqnode_crypto::{Identity, NodeId};
use pqnode_health::Health;
use pqnode_store::Store;
use tokio_util::sync::CancellationToken;

use super::{Component, StatsFuture};
use crate::config::Config;

pub struct CrdtService {
    docs: DocStore,
    access: AccessControl,
    store: Store,
    /// Closes every Yjs connection when the node stops.
    shutdown: CancellationToken,
}

impl CrdtService {
    pub async fn start(
        config: &Config,
        identity: Arc<Identity>,
        store: Store,
    ) -> anyhow::Result<Arc<Self>> {
        let trusted = config
            .crdt
            .trusted_issuers
            .iter()
            .map(|id| {
                id.parse::<NodeId>()
                    .with_context(|| format!("crdt.trusted_issuers: {id:?} is not a node id"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let docs = DocStore::open(store.clone(), DocConfig::default())
            .await
            .context("cannot open the document engine")?;
        let access =
            AccessControl::load(store.clone(), identity, trusted, config.crdt.default_access)
                .await
                .context("cannot load document access policies")?;
        Ok(Arc::new(Self {
            docs,
            access,
            store,
            shutdown: CancellationToken::new(),
        }))
    }

    pub fn docs(&self) -> &DocStore {
        &self.docs
    }

    pub fn access(&self) -> &AccessControl {
        &self.access
    }

    /// What the signaling port serves at `/sync/{doc}`.
    pub fn endpoint(&self) -> SyncEndpoint {
        SyncEndpoint {
            docs: self.docs.clone(),
            access: self.access.clone(),
            shutdown: self.shutdown.clone(),
        }
    }

    /// Closes every Yjs connection (1001); acknowledged updates are already on disk.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }
}

impl Component for CrdtService {
    fn health(&self) -> Health {
        // Documents live in the store: an update cannot be acknowledged while it fails.
        match self.store.health() {
            h if h.status == pqnode_health::Status::Fail => {
                Health::fail("the store is failing: document updates are refused")
            }
            _ => Health::pass(),
        }
    }

    fn stats(&self) -> StatsFuture<'_> {
        Box::pin(async {
            let mut stats = serde_json::to_value(self.docs.stats()).unwrap_or_default();
            stats["tokenSessions"] = serde_json::json!(self.access.live_token_sessions());
            stats
        })
    }
}
