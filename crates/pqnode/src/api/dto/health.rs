//! Liveness, readiness and component health; listener figures.

use std::collections::BTreeMap;

use pqnode_crypto::NodeId;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// `/livez`: the process answers.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Liveness {
    pub status: LiveStatus,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LiveStatus {
    Alive,
}

/// `/readyz`: ready once start-up finished, while not shutting down and no component fails.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct Readiness {
    pub status: ReadyStatus,
    /// Why not: `starting`, `shutting down`, or `<component> is failing`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The failing component, when one is the reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// The failing component's own reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub(crate) enum ReadyStatus {
    #[serde(rename = "ready")]
    Ready,
    #[serde(rename = "not ready")]
    NotReady,
}

/// `/api/health`: every component's health and figures, and the HTTP ports' connection
/// figures.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Health {
    /// `error` when an enabled component fails (then the answer is 503), `degraded` when one
    /// warns.
    pub status: HealthStatus,
    /// Unix time, milliseconds.
    pub timestamp: u64,
    /// Milliseconds since start.
    pub uptime: u64,
    pub version: &'static str,
    #[schema(value_type = String)]
    pub node_id: NodeId,
    pub ready: bool,
    /// By component: crypto, signaling, dht, p2p, storage, crdt, ai, system.
    pub components: BTreeMap<&'static str, ComponentHealth>,
    /// By HTTP port (`api`, `signaling`).
    pub listeners: BTreeMap<&'static str, crate::listen::ListenerStats>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum HealthStatus {
    Ok,
    Degraded,
    Error,
}

/// One component's entry in `/api/health`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ComponentHealth {
    pub status: ComponentStatus,
    /// What is wrong, when it warns or fails.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The component's own figures (each has its own); absent when it is disabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub stats: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ComponentStatus {
    Pass,
    Warn,
    Fail,
    Disabled,
}

impl From<pqnode_health::Status> for ComponentStatus {
    fn from(status: pqnode_health::Status) -> Self {
        use pqnode_health::Status;
        match status {
            Status::Pass => Self::Pass,
            Status::Warn => Self::Warn,
            Status::Fail => Self::Fail,
            Status::Disabled => Self::Disabled,
        }
    }
}

impl From<crate::components::Report> for ComponentHealth {
    fn from(report: crate::components::Report) -> Self {
        let crate::components::Report {
            name: _,
            health,
            mut body,
        } = report;
        Self {
            status: health.status.into(),
            reason: health.reason,
            stats: body.as_object_mut().and_then(|b| b.remove("stats")),
        }
    }
}
