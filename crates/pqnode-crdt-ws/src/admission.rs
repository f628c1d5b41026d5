//! How fast new sessions are let in: node-wide and per client address.
//!
//! After a restart every client reconnects at once, and stock y-websocket clients retry on a
//! fixed schedule. Each session open loads its document and sends it whole, so opens beyond
//! the budget are turned away with 1013 ("try again later"): y-websocket backs off by itself
//! (up to 2.5 s), which spreads the storm instead of letting it land at once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use pqnode_limits::TokenBucket;

/// Addresses remembered at most; buckets idle for a while are dropped first.
const MAX_TRACKED_IPS: usize = 65_536;
const IDLE: Duration = Duration::from_secs(60);

/// Session-open budgets, in opens per second and burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionLimits {
    /// Sessions opened per second on the whole endpoint, on average.
    pub node_per_second: u32,
    /// Sessions opened at once on the whole endpoint after a quiet spell.
    pub node_burst: u32,
    /// Sessions opened per second from one IP address, on average.
    pub ip_per_second: u32,
    /// Sessions opened at once from one IP address after a quiet spell.
    pub ip_burst: u32,
}

impl Default for AdmissionLimits {
    fn default() -> Self {
        Self {
            node_per_second: 500,
            node_burst: 1_000,
            ip_per_second: 20,
            ip_burst: 60,
        }
    }
}

/// The session-open budgets of one endpoint.
#[derive(Debug)]
pub struct Admission {
    limits: AdmissionLimits,
    node: Mutex<TokenBucket>,
    per_ip: Mutex<HashMap<IpAddr, TokenBucket>>,
}

impl Default for Admission {
    fn default() -> Self {
        Self::new(AdmissionLimits::default())
    }
}

impl Admission {
    /// Budgets that start full.
    pub fn new(limits: AdmissionLimits) -> Self {
        let now = Instant::now();
        Self {
            limits,
            node: Mutex::new(TokenBucket::new(
                limits.node_per_second,
                limits.node_burst,
                now,
            )),
            per_ip: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a session from `ip` (unknown without connect info) may open now.
    pub fn admit(&self, ip: Option<IpAddr>) -> bool {
        let now = Instant::now();
        if let Some(ip) = ip {
            let mut per_ip = self.per_ip.lock().unwrap_or_else(PoisonError::into_inner);
            let ip = client_key(ip);
            if !per_ip.contains_key(&ip) && per_ip.len() >= MAX_TRACKED_IPS {
                per_ip.retain(|_, b| now.duration_since(b.last_used()) < IDLE);
                if per_ip.len() >= MAX_TRACKED_IPS {
                    // Full of active addresses: a new one waits rather than resetting theirs.
                    return false;
                }
            }
            let limits = self.limits;
            let bucket = per_ip
                .entry(ip)
                .or_insert_with(|| TokenBucket::new(limits.ip_per_second, limits.ip_burst, now));
            if !bucket.try_take(now) {
                return false;
            }
        }
        self.node
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .try_take(now)
    }
}

/// One budget per IPv4 address and per IPv6 /64 (one host can use a whole /64).
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_past_the_budget_is_turned_away_per_address_and_node_wide() {
        let admission = Admission::new(AdmissionLimits {
            node_per_second: 0,
            node_burst: 5,
            ip_per_second: 0,
            ip_burst: 2,
        });
        let one: IpAddr = "192.0.2.1".parse().unwrap();
        let two: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(admission.admit(Some(one)));
        assert!(admission.admit(Some(one)));
        assert!(!admission.admit(Some(one)), "this address's burst is spent");
        assert!(admission.admit(Some(two)));
        assert!(admission.admit(Some(two)));
        assert!(admission.admit(None));
        assert!(!admission.admit(None), "the node's burst is spent");
        // Addresses of one IPv6 /64 share a budget.
        let host = Admission::new(AdmissionLimits {
            ip_burst: 1,
            ..AdmissionLimits::default()
        });
        assert!(host.admit(Some("2001:db8::1".parse().unwrap())));
        assert!(!host.admit(Some("2001:db8::2".parse().unwrap())));
    }
}
