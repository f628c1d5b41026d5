//! Messages from the API side and the inbound handler to the DHT task.

use std::time::Duration;

use pqnode_crypto::NodeId;
use pqnode_dht::{
    Contact, DhtStats, Key, LookupStats, NodeInfo, Peer, ProviderRecord, QueryResult, Record,
    RecordError, Request, Response,
};
use tokio::sync::oneshot;

/// An operation that runs as a query of the core and ends with its `QueryFinished` event.
#[derive(Debug)]
pub(crate) enum Operation {
    Bootstrap(Vec<Peer>),
    FindNode(NodeId),
    Get(Key),
    Put(Record),
    AddProvider(ProviderRecord),
    GetProviders(Key),
    /// An operator's contact: asked for our neighbours, in the table if it answers.
    AddContact(Contact),
}

impl Operation {
    /// The label of its metrics.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Bootstrap(_) => "bootstrap",
            Self::FindNode(_) => "find_node",
            Self::Get(_) => "get",
            Self::Put(_) => "put",
            Self::AddProvider(_) => "add_provider",
            Self::GetProviders(_) => "get_providers",
            Self::AddContact(_) => "add_contact",
        }
    }
}

/// What a finished operation reports.
#[derive(Debug)]
pub(crate) struct Finished {
    pub result: QueryResult,
    pub stats: LookupStats,
    pub elapsed: Duration,
}

#[derive(Debug)]
pub(crate) enum Command {
    /// A request from `from` (authenticated by the transport) to answer.
    Inbound {
        from: Contact,
        request: Request,
        reply: oneshot::Sender<Response>,
    },
    Operation {
        operation: Operation,
        reply: oneshot::Sender<Result<Finished, RecordError>>,
    },
    Unpublish {
        key: Key,
        reply: oneshot::Sender<bool>,
    },
    /// Take a contact out of the routing table; answers whether it was there.
    RemoveContact {
        id: NodeId,
        reply: oneshot::Sender<bool>,
    },
    Inspect {
        reply: oneshot::Sender<DhtSnapshot>,
    },
    /// Save the table, stop every task, and answer when done.
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// The routing table and the statistics at one instant: serialised, the body of the spec's
/// `GET /api/dht/nodes` (`{"nodes": [...], "stats": {"totalNodes", "bucketsUsed",
/// "bootstrapNodes", ...}}`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DhtSnapshot {
    /// Every contact in the routing table, with its bucket and state.
    pub nodes: Vec<NodeInfo>,
    /// Table and traffic figures of the core.
    pub stats: DhtStats,
}
