//! Start-up step 3: the store (redb) and its caches.

use std::sync::Arc;

use anyhow::Context;
use pqnode_health::Health;
use pqnode_store::{DEFAULT_FILE_NAME, Store};

use super::{Component, StatsFuture};
use crate::config::Config;

pub struct StorageService {
    store: Store,
}

impl StorageService {
    pub async fn start(config: &Config) -> anyhow::Result<Arc<Self>> {
        let path = config.data_dir.join(DEFAULT_FILE_NAME);
        let store = Store::open(&path)
            .await
            .with_context(|| format!("cannot open the store {}", path.display()))?;
        Ok(Arc::new(Self { store }))
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Flushes and closes the database: the last step of shutdown.
    pub async fn close(&self) -> anyhow::Result<()> {
        self.store.close().await.context("closing the store failed")
    }
}

impl Component for StorageService {
    fn health(&self) -> Health {
        self.store.health()
    }

    fn stats(&self) -> StatsFuture<'_> {
        Box::pin(async { serde_json::to_value(self.store.stats().await).unwrap_or_default() })
    }
}
