//! Contacts added and removed by hand, and fed from authenticated connections.

use super::*;
use crate::contact::ContactError;
use crate::table::Insert;

fn pong(peer: Contact) -> Response {
    Response::Pong {
        observed: peer.addr,
    }
}

fn added(n: &mut Node) -> (QueryId, Option<Contact>, Option<Insert>) {
    match n.poll_event() {
        Some(Event::QueryFinished {
            id,
            result: QueryResult::AddContact { contact, insert },
            ..
        }) => (id, contact, insert),
        other => panic!("expected an added contact, got {other:?}"),
    }
}

#[test]
fn contacts_added_by_hand_are_validated_pinged_and_held_to_the_subnet_limit() {
    let mut n = node();
    let own = Peer::pinned(*n.local_id(), contact(1).addr);
    assert_eq!(n.add_contact(at(0), own), Err(ContactError::OwnId));
    let nowhere = SocketAddr::from(([0, 0, 0, 0], 4001));
    assert_eq!(
        n.add_contact(at(0), Peer::unpinned(nowhere)),
        Err(ContactError::Unroutable(nowhere))
    );
    assert!(transmits(&mut n).is_empty());

    let peer = contact(0x80);
    let id = n.add_contact(at(0), Peer::from(peer)).expect("valid");
    let ping = transmits(&mut n).pop().expect("pinged");
    assert_eq!(ping.request, Request::Ping);
    n.handle_response(at(0) + ms(20), ping.id, peer, pong(peer));
    assert_eq!(added(&mut n), (id, Some(peer), Some(Insert::Inserted)));
    assert!(n.table().contains(&peer.id));
    // The table was short of K: the node joins the network behind its new contact.
    let join = transmits(&mut n);
    assert!(join.iter().any(|t| t.to == Peer::from(peer)
        && t.request
            == Request::FindNode {
                target: *n.local_id()
            }));

    // The same per-network limit as for any contact: two of 192.0.2.0/24 in bucket 159.
    for (other, expected) in [(0x81, Insert::Inserted), (0x82, Insert::SubnetFull)] {
        let other = contact(other);
        n.add_contact(at(1), Peer::from(other)).expect("valid");
        let ping = transmits(&mut n).pop().expect("pinged");
        n.handle_response(at(1), ping.id, other, pong(other));
        assert_eq!(added(&mut n).2, Some(expected));
        let _ = transmits(&mut n);
    }

    // Nobody answers: the result says so.
    let silent = contact(0x40);
    n.add_contact(at(2), Peer::from(silent)).expect("valid");
    let ping = transmits(&mut n).pop().expect("pinged");
    n.handle_failure(at(2), ping.id);
    assert_eq!(added(&mut n).1, None);
    assert!(!n.table().contains(&silent.id));
}

#[test]
fn contacts_removed_by_hand_leave_the_table_and_the_seeds() {
    let mut n = node();
    let peer = contact(0x80);
    n.bootstrap(at(0), [Peer::from(peer)]);
    let _ = transmits(&mut n);
    admit(&mut n, peer, at(0));
    assert_eq!(n.stats(at(0)).bootstrap_nodes, 1);
    assert_eq!(n.remove_contact(&peer.id), Ok(true));
    assert!(!n.table().contains(&peer.id));
    assert_eq!(n.stats(at(0)).bootstrap_nodes, 0);
    assert_eq!(n.remove_contact(&peer.id), Ok(false));
    let own = *n.local_id();
    assert_eq!(n.remove_contact(&own), Err(ContactError::OwnId));
}

#[test]
fn a_removed_entry_makes_room_for_a_cached_replacement() {
    let config = Config {
        jitter: 0.0,
        table: crate::TableConfig {
            k: 1,
            max_per_subnet: None,
            ..crate::TableConfig::default()
        },
        ..Config::default()
    };
    let mut n = Node::new(NodeId::from_bytes([0; 20]), config, 1, at(0));
    let (a, b) = (contact(0x80), contact(0x81));
    admit(&mut n, a, at(0));
    // b answers too, but the bucket (K = 1) is full: it waits in the replacement cache.
    n.add_contact(at(0), Peer::from(b)).expect("valid");
    let ping = transmits(&mut n).pop().expect("pinged");
    n.handle_response(at(0), ping.id, b, pong(b));
    assert_eq!(added(&mut n).2, Some(Insert::Cached));
    assert_eq!(n.remove_contact(&a.id), Ok(true));
    assert!(n.table().contains(&b.id));
}

#[test]
fn every_authenticated_connection_feeds_the_table() {
    let mut n = node();
    let peer = contact(0x80);
    // A connection of another protocol (or a configured peer): the stranger is pinged.
    n.connected(at(0), peer);
    let ping = transmits(&mut n).pop().expect("pinged back");
    assert_eq!(ping.to, Peer::from(peer));
    n.handle_response(at(0), ping.id, peer, pong(peer));
    assert!(n.table().contains(&peer.id));
    // A known contact is not pinged again.
    n.connected(at(1), peer);
    assert!(transmits(&mut n).is_empty());
    // Our own id is ignored.
    let me = Contact::new(*n.local_id(), peer.addr);
    n.connected(at(1), me);
    assert!(transmits(&mut n).is_empty());
}
