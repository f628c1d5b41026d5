//! Capability revocations shared through the DHT: this node publishes the tokens it issued
//! and revoked as its own signed record, and reads the records of the issuers it trusts.
//!
//! A publish that fails (no DHT contacts yet, say) is retried on every poll until it
//! succeeds; publishes are serialised so an older list can never land after a newer one.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pqnode_crdt_ws::{AccessControl, REVOCATIONS_RECORD, decode_revocations, encode_revocations};
use pqnode_overlay::Overlay;
use tokio_util::sync::CancellationToken;

/// How long a published list lives in the DHT without a republish (the overlay republishes
/// what it published).
const TTL: Duration = Duration::from_secs(48 * 3600);

pub(crate) struct RevocationSharing {
    access: AccessControl,
    overlay: OnceLock<Overlay>,
    /// This node's list changed since it was last published.
    dirty: AtomicBool,
    publishing: tokio::sync::Mutex<()>,
}

impl RevocationSharing {
    pub(crate) fn new(access: AccessControl) -> Self {
        Self {
            access,
            overlay: OnceLock::new(),
            // A restart may follow revocations that never reached the DHT.
            dirty: AtomicBool::new(true),
            publishing: tokio::sync::Mutex::new(()),
        }
    }

    /// This node revoked a token: publishes its list now if the DHT runs. Returns whether
    /// the list is published (else it is retried on the next poll).
    pub(crate) async fn changed(&self) -> bool {
        self.dirty.store(true, Ordering::Release);
        self.publish_if_dirty().await
    }

    async fn publish_if_dirty(&self) -> bool {
        let Some(overlay) = self.overlay.get() else {
            return false;
        };
        let _one_at_a_time = self.publishing.lock().await;
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return true;
        }
        let list = self.access.published_revocations();
        match overlay
            .publish(REVOCATIONS_RECORD, &encode_revocations(&list), TTL)
            .await
        {
            Ok(_) => true,
            Err(e) => {
                self.dirty.store(true, Ordering::Release);
                tracing::warn!(error = %e, "revocations not published; retried on the next poll");
                false
            }
        }
    }

    /// Every `period` until `stop`: publishes this node's list if it changed, and applies
    /// the lists of the issuers this node trusts.
    pub(crate) async fn run(
        self: Arc<Self>,
        overlay: Overlay,
        period: Duration,
        stop: CancellationToken,
    ) {
        let _ = self.overlay.set(overlay.clone());
        let issuers = self.access.trusted_issuers();
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = ticker.tick() => {}
            }
            if self.access.published_revocations().is_empty() {
                self.dirty.store(false, Ordering::Release);
            } else {
                self.publish_if_dirty().await;
            }
            for issuer in &issuers {
                self.apply_from(&overlay, *issuer).await;
            }
        }
    }

    async fn apply_from(&self, overlay: &Overlay, issuer: pqnode_crypto::NodeId) {
        let key = pqnode_dht::record_key(&issuer, REVOCATIONS_RECORD);
        let list = match overlay.get_record(key).await {
            Ok(Some(record)) => decode_revocations(record.value()),
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(%issuer, error = %e, "revocations not read");
                return;
            }
        };
        match list {
            Ok(list) => match self.access.apply_revocations(issuer, &list).await {
                Ok(0) => {}
                Ok(closed) => {
                    tracing::info!(%issuer, closed, "sessions closed by the issuer's revocation")
                }
                Err(e) => tracing::warn!(%issuer, error = %e, "revocations not stored"),
            },
            Err(e) => {
                tracing::warn!(%issuer, error = %e, "a trusted issuer's revocation list is malformed")
            }
        }
    }
}
