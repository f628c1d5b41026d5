//! The component model: every part of the node answers `health()` and `stats()`.
//!
//! `/api/health` is built from these and nothing else. A slot that holds no
//! component (not built into this node yet, or switched off) reports
//! `{"status":"disabled"}`, never invented data.

pub(crate) mod ai;
pub(crate) mod crdt;
pub(crate) mod crypto;
pub(crate) mod dht;
pub(crate) mod federation;
pub(crate) mod p2p;
pub(crate) mod replication;
pub(crate) mod revocations;
pub(crate) mod signaling;
pub(crate) mod storage;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use pqnode_health::{Health, Status};
use serde_json::{Value, json};

/// A component's stats; some (the store's table counts) need a round trip to
/// another thread, so they are asynchronous.
pub(crate) type StatsFuture<'a> = Pin<Box<dyn Future<Output = Value> + Send + 'a>>;

/// The small surface every component exposes to the API.
pub(crate) trait Component: Send + Sync {
    /// Cheap and synchronous: called on every health check and metrics scrape.
    fn health(&self) -> Health;
    fn stats(&self) -> StatsFuture<'_>;
}

/// The components of a running node, in the spec's `/api/health` order.
#[derive(Clone, Default)]
pub(crate) struct Components {
    pub crypto: Option<Arc<dyn Component>>,
    pub signaling: Option<Arc<dyn Component>>,
    pub dht: Option<Arc<dyn Component>>,
    pub p2p: Option<Arc<dyn Component>>,
    pub storage: Option<Arc<dyn Component>>,
    pub crdt: Option<Arc<dyn Component>>,
    pub ai: Option<Arc<dyn Component>>,
    pub system: Option<Arc<dyn Component>>,
}

/// One component's entry in `/api/health`.
pub(crate) struct Report {
    pub name: &'static str,
    pub health: Health,
    pub body: Value,
}

impl Components {
    fn slots(&self) -> [(&'static str, &Option<Arc<dyn Component>>); 8] {
        [
            ("crypto", &self.crypto),
            ("signaling", &self.signaling),
            ("dht", &self.dht),
            ("p2p", &self.p2p),
            ("storage", &self.storage),
            ("crdt", &self.crdt),
            ("ai", &self.ai),
            ("system", &self.system),
        ]
    }

    /// The first enabled component that fails, with its reason: no stats gathered.
    pub(crate) fn failing(&self) -> Option<(&'static str, Health)> {
        self.slots().into_iter().find_map(|(name, slot)| {
            let health = slot.as_ref()?.health();
            (health.status == Status::Fail).then_some((name, health))
        })
    }

    pub(crate) async fn reports(&self) -> Vec<Report> {
        let slots = self.slots();
        let mut reports = Vec::with_capacity(slots.len());
        for (name, slot) in slots {
            reports.push(match slot {
                None => Report {
                    name,
                    health: Health::disabled(),
                    body: json!({ "status": Status::Disabled }),
                },
                Some(component) => {
                    let health = component.health();
                    let mut body =
                        json!({ "status": health.status, "stats": component.stats().await });
                    if let Some(reason) = &health.reason {
                        body["reason"] = json!(reason);
                    }
                    Report { name, health, body }
                }
            });
        }
        reports
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(Health);
    impl Component for Fixed {
        fn health(&self) -> Health {
            self.0.clone()
        }
        fn stats(&self) -> StatsFuture<'_> {
            Box::pin(async { json!({ "n": 1 }) })
        }
    }

    #[tokio::test]
    async fn empty_slots_are_disabled_and_reasons_are_shown() {
        let components = Components {
            storage: Some(Arc::new(Fixed(Health::fail("database file removed")))),
            ..Components::default()
        };
        let reports = components.reports().await;
        assert_eq!(reports.len(), 8);
        let crypto = &reports[0];
        assert_eq!(crypto.body, json!({ "status": "disabled" }));
        let storage = reports.iter().find(|r| r.name == "storage").unwrap();
        assert_eq!(storage.body["status"], "fail");
        assert_eq!(storage.body["reason"], "database file removed");
        assert_eq!(storage.body["stats"]["n"], 1);
    }
}
