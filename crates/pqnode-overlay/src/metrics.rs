//! Prometheus-style metrics through the `metrics` facade (the binary installs the exporter).
//!
//! The core keeps its own monotonic [`Counters`]; rather than instrument every call site, the
//! driver publishes what changed since the last look, once per turn of its loop.

use std::time::Duration;

use metrics::{counter, gauge, histogram};
use pqnode_dht::{Counters, RpcCounts, RpcKind};

pub(crate) const REQUESTS_SENT: &str = "pqnode_dht_requests_sent_total";
pub(crate) const REQUESTS_RECEIVED: &str = "pqnode_dht_requests_received_total";
pub(crate) const TIMEOUTS: &str = "pqnode_dht_request_timeouts_total";
pub(crate) const FAILURES: &str = "pqnode_dht_request_failures_total";
pub(crate) const TABLE_INSERTS: &str = "pqnode_dht_table_inserts_total";
pub(crate) const TABLE_EVICTIONS: &str = "pqnode_dht_table_evictions_total";
pub(crate) const TABLE_NODES: &str = "pqnode_dht_table_nodes";
pub(crate) const LOOKUP_ROUNDS: &str = "pqnode_dht_lookup_rounds";
pub(crate) const LOOKUP_SECONDS: &str = "pqnode_dht_lookup_duration_seconds";
pub(crate) const RPC_SECONDS: &str = "pqnode_dht_rpc_duration_seconds";
pub(crate) const BAD_INBOUND: &str = "pqnode_dht_bad_requests_total";
pub(crate) const RATE_LIMITED: &str = "pqnode_dht_rate_limited_total";

/// Publishes the growth of the core's counters since `seen`, then remembers them.
pub(crate) fn publish_counters(seen: &mut Counters, now: &Counters, table_nodes: usize) {
    publish_rpcs(REQUESTS_SENT, &seen.requests_sent, &now.requests_sent);
    publish_rpcs(
        REQUESTS_RECEIVED,
        &seen.requests_received,
        &now.requests_received,
    );
    bump(TIMEOUTS, seen.timeouts, now.timeouts);
    bump(FAILURES, seen.failures, now.failures);
    bump(TABLE_INSERTS, seen.table_inserts, now.table_inserts);
    bump(TABLE_EVICTIONS, seen.table_evictions, now.table_evictions);
    gauge!(TABLE_NODES).set(table_nodes as f64);
    seen.clone_from(now);
}

/// One operation asked for through the API finished (lookup, get, put, providers).
pub(crate) fn record_operation(operation: &'static str, rounds: u32, elapsed: Duration) {
    histogram!(LOOKUP_ROUNDS, "operation" => operation).record(f64::from(rounds));
    histogram!(LOOKUP_SECONDS, "operation" => operation).record(elapsed.as_secs_f64());
}

/// One request went out and came back (or failed) after `elapsed`.
pub(crate) fn record_rpc(kind: &'static str, elapsed: Duration) {
    histogram!(RPC_SECONDS, "type" => kind).record(elapsed.as_secs_f64());
}

/// An inbound payload did not decode.
pub(crate) fn record_bad_request() {
    counter!(BAD_INBOUND).increment(1);
}

/// An inbound request was refused by its peer's rate limit.
pub(crate) fn record_rate_limited() {
    counter!(RATE_LIMITED).increment(1);
}

fn publish_rpcs(name: &'static str, seen: &RpcCounts, now: &RpcCounts) {
    let pairs = [
        ("ping", seen.ping, now.ping),
        ("find_node", seen.find_node, now.find_node),
        ("find_value", seen.find_value, now.find_value),
        ("store", seen.store, now.store),
        ("add_provider", seen.add_provider, now.add_provider),
        ("get_providers", seen.get_providers, now.get_providers),
    ];
    for (kind, before, after) in pairs {
        if after > before {
            counter!(name, "type" => kind).increment(after - before);
        }
    }
}

fn bump(name: &'static str, before: u64, after: u64) {
    if after > before {
        counter!(name).increment(after - before);
    }
}

/// The label of a request type.
pub(crate) fn rpc_name(kind: RpcKind) -> &'static str {
    match kind {
        RpcKind::Ping => "ping",
        RpcKind::FindNode => "find_node",
        RpcKind::FindValue => "find_value",
        RpcKind::Store => "store",
        RpcKind::AddProvider => "add_provider",
        RpcKind::GetProviders => "get_providers",
    }
}
