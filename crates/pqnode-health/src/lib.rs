//! The health vocabulary shared by every pqnode component.
//!
//! Each component (crypto, store, DHT, P2P, signaling, ...) reports a
//! [`Health`]: pass, warn or fail, with a reason a person can act on. The
//! binary builds `/api/health` from these values and nothing else, so a
//! component that is not running shows as [`Status::Disabled`], never as
//! made-up data.
//!
//! This crate is deliberately tiny and has no behaviour: it is the one type
//! that crosses every crate boundary.

use serde::Serialize;

/// How a component is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Working as intended.
    Pass,
    /// Working, but something needs attention (for example an empty routing table).
    Warn,
    /// Not working: the node as a whole is unhealthy (`/api/health` answers 503).
    Fail,
    /// Not part of this node (not built yet, or switched off).
    Disabled,
}

/// A component's health: a status and, unless it passes, the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    /// Pass, warn, fail or disabled.
    pub status: Status,
    /// What is wrong and, where it helps, what to do; none when the component passes
    /// or is disabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Health {
    /// Working as intended; no reason.
    pub fn pass() -> Self {
        Self {
            status: Status::Pass,
            reason: None,
        }
    }

    /// Working, but `reason` needs a person's attention.
    pub fn warn(reason: impl Into<String>) -> Self {
        Self {
            status: Status::Warn,
            reason: Some(reason.into()),
        }
    }

    /// Not working, because of `reason`; makes the whole node unhealthy.
    pub fn fail(reason: impl Into<String>) -> Self {
        Self {
            status: Status::Fail,
            reason: Some(reason.into()),
        }
    }

    /// Not part of this node: switched off or not built.
    pub fn disabled() -> Self {
        Self {
            status: Status::Disabled,
            reason: None,
        }
    }

    /// True unless the component failed: warn and disabled do not make a node unhealthy.
    pub fn is_ok(&self) -> bool {
        self.status != Status::Fail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_lowercase_and_omits_empty_reason() {
        let json = serde_json::to_string(&Health::pass()).unwrap();
        assert_eq!(json, r#"{"status":"pass"}"#);
        let json = serde_json::to_string(&Health::fail("disk full")).unwrap();
        assert_eq!(json, r#"{"status":"fail","reason":"disk full"}"#);
    }

    #[test]
    fn only_fail_is_unhealthy() {
        assert!(Health::pass().is_ok());
        assert!(Health::warn("x").is_ok());
        assert!(Health::disabled().is_ok());
        assert!(!Health::fail("x").is_ok());
    }
}
