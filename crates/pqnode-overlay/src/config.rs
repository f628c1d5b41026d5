//! What an [`Overlay`](crate::Overlay) is started with.

use std::sync::Arc;
use std::time::Duration;

use pqnode_crypto::Identity;
use pqnode_net::PeerAddr;

use crate::error::OverlayError;

/// Configuration of the DHT driver. The Kademlia parameters themselves (K, α, timers, Sybil
/// limit) live in [`dht`](Self::dht), the core's own [`pqnode_dht::Config`].
#[derive(Debug, Clone)]
pub struct OverlayConfig {
    /// The node's identity: it signs the records and provider entries this node publishes.
    /// Must be the identity the [`pqnode_net::Network`] was started with.
    pub identity: Arc<Identity>,
    /// Bootstrap nodes: `<node-id>@<host>:<port>` (pinned) or `<host>:<port>` (unpinned, the id
    /// is learned from the handshake). Unreachable seeds are logged, never fatal.
    pub seeds: Vec<PeerAddr>,
    /// The sans-IO core's configuration.
    pub dht: pqnode_dht::Config,
    /// How often the routing table is written to the store (it is also written at shutdown).
    pub save_interval: Duration,
    /// Inbound requests and API calls queued for the DHT task before callers wait.
    pub queue_len: usize,
    /// Seeds the core's random choices (timer jitter, refresh targets); `None` picks one from
    /// the node id and the clock. Fixed seeds make test runs repeatable.
    pub rng_seed: Option<u64>,
    /// Inbound DHT requests allowed per second (and in a burst) from one peer;
    /// beyond it the peer is told to slow down.
    pub peer_rate: crate::PeerRate,
}

impl OverlayConfig {
    /// Defaults around `identity`: no seeds, the spec's timers (refresh 60 s, ping 30 s), the
    /// table saved every 5 minutes.
    pub fn new(identity: Arc<Identity>) -> Self {
        Self {
            identity,
            seeds: Vec::new(),
            dht: pqnode_dht::Config::default(),
            save_interval: Duration::from_secs(300),
            queue_len: 1024,
            rng_seed: None,
            peer_rate: crate::PeerRate::default(),
        }
    }

    /// Refuses settings that would make a timer fire in a tight loop or the queue hold nothing.
    pub(crate) fn validate(&self) -> Result<(), OverlayError> {
        let dht = &self.dht;
        let timers = [
            (dht.request_timeout, "dht.request_timeout must be positive"),
            (
                dht.refresh_interval,
                "dht.refresh_interval must be positive",
            ),
            (dht.ping_interval, "dht.ping_interval must be positive"),
            (
                dht.maintenance_interval,
                "dht.maintenance_interval must be positive",
            ),
            (
                dht.republish_interval,
                "dht.republish_interval must be positive",
            ),
            (self.save_interval, "save_interval must be positive"),
        ];
        if let Some((_, problem)) = timers.iter().find(|(d, _)| d.is_zero()) {
            return Err(OverlayError::Config(problem));
        }
        if self.queue_len == 0 {
            return Err(OverlayError::Config("queue_len must be positive"));
        }
        if self.peer_rate.per_second == 0 || self.peer_rate.burst == 0 {
            return Err(OverlayError::Config(
                "peer_rate needs a positive rate and a burst of at least 1",
            ));
        }
        Ok(())
    }

    /// The same configuration with `seeds` as bootstrap nodes.
    pub fn with_seeds(mut self, seeds: impl IntoIterator<Item = PeerAddr>) -> Self {
        self.seeds = seeds.into_iter().collect();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_zero_timers_are_not() {
        let identity = Arc::new(Identity::from_seed(&[9; 32]).expect("identity"));
        let config = OverlayConfig::new(identity);
        assert!(config.validate().is_ok());
        assert_eq!(config.dht.refresh_interval, Duration::from_secs(60));
        assert_eq!(config.dht.ping_interval, Duration::from_secs(30));

        let mut spinning = config.clone();
        spinning.dht.ping_interval = Duration::ZERO;
        assert!(matches!(spinning.validate(), Err(OverlayError::Config(_))));
        let mut never_saved = config.clone();
        never_saved.save_interval = Duration::ZERO;
        assert!(matches!(
            never_saved.validate(),
            Err(OverlayError::Config(_))
        ));
        let mut no_queue = config;
        no_queue.queue_len = 0;
        assert!(matches!(no_queue.validate(), Err(OverlayError::Config(_))));
    }
}
