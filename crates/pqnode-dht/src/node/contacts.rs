//! Contacts from outside the DHT's own traffic: added or removed by hand, and fed from every
//! connection the transport authenticated.
//!
//! Whatever the source, a contact enters the routing table the one way every contact does:
//! by answering a request of ours, so the per-network (Sybil) limit and the liveness rules
//! apply to it like to any other.

use pqnode_crypto::NodeId;

use super::{Event, Node, Purpose, QueryId, QueryResult};
use crate::contact::{Contact, ContactError, Peer, validate};
use crate::lookup::LookupStats;
use crate::message::Request;
use crate::node::query::QueryKind;
use crate::table::Insert;
use crate::time::Instant;

impl Node {
    /// Adds a contact by hand (an operator's `POST`, a configured peer): pings it, and enters
    /// it in the table if it answers. Ends with [`QueryResult::AddContact`]. A peer known by
    /// address only is learned under whichever id answers. If the table was short of K
    /// entries, the node then looks up its own id through the new contact, which joins it to
    /// the network behind it.
    pub fn add_contact(&mut self, now: Instant, peer: Peer) -> Result<QueryId, ContactError> {
        validate(&self.local, &peer)?;
        let id = self.new_query_id();
        self.send(now, peer, Request::Ping, Purpose::AddContact(id));
        Ok(id)
    }

    /// Removes a contact by hand from the routing table (its slot goes to the best cached
    /// replacement), from the seeds, and from what the node remembers of it. Returns whether
    /// the table held it. A live node can come back later: it re-enters the table the next
    /// time it answers one of our requests, like any node.
    pub fn remove_contact(&mut self, id: &NodeId) -> Result<bool, ContactError> {
        if *id == self.local {
            return Err(ContactError::OwnId);
        }
        self.peers.forget(id);
        self.seeds.retain(|s| s.id.as_ref() != Some(id));
        Ok(self.table.remove(id))
    }

    /// The transport authenticated a connection with `contact` (its id proven by TLS, its
    /// address the connection's): an inbound connection of any protocol, or a configured peer
    /// it dialed. The node counts it as alive now, moves its entry to that address, and pings
    /// it if it is a stranger that would fit in the table (within
    /// [`crate::Config::max_inbound_verifications`]). Every inbound DHT request does this too.
    pub fn connected(&mut self, now: Instant, contact: Contact) {
        if contact.id == self.local {
            return;
        }
        self.latest = self.latest.max(now);
        self.table.record_inbound(contact, now);
        self.peers.heard_from(&contact.id, now);
        self.maybe_verify_inbound(now, contact);
    }

    pub(super) fn on_contact_answer(
        &mut self,
        now: Instant,
        query: QueryId,
        contact: Contact,
        insert: Insert,
    ) {
        self.events.push_back(Event::QueryFinished {
            id: query,
            result: QueryResult::AddContact {
                contact: Some(contact),
                insert: Some(insert),
            },
            stats: LookupStats::default(),
        });
        let joined = matches!(insert, Insert::Inserted | Insert::ReplacedBad(_));
        if joined && self.table.len() <= self.config.table.k {
            self.start_query(now, self.local, QueryKind::Maintenance, false);
        }
    }

    pub(super) fn on_contact_failed(&mut self, query: QueryId) {
        self.events.push_back(Event::QueryFinished {
            id: query,
            result: QueryResult::AddContact {
                contact: None,
                insert: None,
            },
            stats: LookupStats::default(),
        });
    }
}
