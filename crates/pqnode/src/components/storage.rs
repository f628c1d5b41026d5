//! Start-up step 3: the store (redb) and its caches.
//!
//! The store is created once, on a node's first start, and a marker next to it records that it
//! was. From then on a missing or unreadable database stops start-up with what happened and
//! how to recover (`pqnode store ...`): starting over with an empty store would silently drop
//! everything the node had acknowledged.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use pqnode_health::Health;
use pqnode_store::{DEFAULT_FILE_NAME, Store, StoreError, StoreOptions};

use super::{Component, StatsFuture};
use crate::config::Config;

/// Written (and synced) next to the database when it is first created.
const CREATED_MARKER: &str = "pqnode.redb.created";

pub(crate) struct StorageService {
    store: Store,
}

/// Where a data folder keeps its database, and whether one was ever created there.
pub(crate) struct StorePaths {
    pub data_dir: PathBuf,
    pub database: PathBuf,
    marker: PathBuf,
}

impl StorePaths {
    pub(crate) fn new(data_dir: &Path) -> Self {
        Self {
            data_dir: data_dir.to_owned(),
            database: data_dir.join(DEFAULT_FILE_NAME),
            marker: data_dir.join(CREATED_MARKER),
        }
    }

    /// Whether this folder has held a database before.
    pub(crate) fn created_before(&self) -> bool {
        self.marker.exists()
    }

    /// Records that the database exists, durably (the marker and its directory entry).
    pub(crate) fn mark_created(&self) -> anyhow::Result<()> {
        if self.created_before() {
            return Ok(());
        }
        let write = || -> std::io::Result<()> {
            let file = std::fs::File::create(&self.marker)?;
            file.sync_all()?;
            std::fs::File::open(&self.data_dir)?.sync_all()
        };
        write().with_context(|| format!("cannot write {}", self.marker.display()))
    }

    /// What an operator can do about a store that cannot be opened.
    fn recovery_hint(&self) -> String {
        let dir = self.data_dir.display();
        format!(
            "run `pqnode store check --data-dir {dir}` for details; \
             `pqnode store reset --data-dir {dir}` moves the file aside and starts with an empty store"
        )
    }
}

impl StorageService {
    pub(crate) async fn start(config: &Config) -> anyhow::Result<Arc<Self>> {
        let paths = StorePaths::new(&config.data_dir);
        let first_start = !paths.created_before();
        // Every page checksum is verified at start (the whole file is read once): a file
        // damaged while the node was down is refused now, not found out by a later request.
        let options = StoreOptions {
            create: first_start,
            verify_on_open: true,
            ..StoreOptions::default()
        };
        let started = std::time::Instant::now();
        let store = match Store::open_with(&paths.database, options).await {
            Ok(store) => store,
            Err(StoreError::Missing { path }) => bail!(
                "the store {} is missing, but this data folder had one ({} exists): \
                 the node refuses to start empty and silently lose what it held. \
                 If the file was moved, put it back; to start over with an empty store, \
                 run `pqnode store reset --data-dir {}`",
                path.display(),
                paths.marker.display(),
                paths.data_dir.display()
            ),
            Err(e @ StoreError::AlreadyOpen { .. }) => {
                return Err(e).context("is another pqnode running on this data folder?");
            }
            Err(e) => {
                let hint = paths.recovery_hint();
                return Err(e).context(format!("cannot open the store ({hint})"));
            }
        };
        paths.mark_created()?;
        tracing::info!(
            path = %paths.database.display(),
            created = first_start,
            verify_ms = started.elapsed().as_millis() as u64,
            "store opened and verified"
        );
        Ok(Arc::new(Self { store }))
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// Flushes and closes the database: the last step of shutdown.
    pub(crate) async fn close(&self) -> anyhow::Result<()> {
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
