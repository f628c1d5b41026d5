use std::net::SocketAddr;
use std::time::Duration;

use super::*;
use crate::table::NodeState;

mod latency;
mod records;

fn at(secs: u64) -> Instant {
    Instant::from_elapsed(Duration::from_secs(secs))
}

fn contact(n: u8) -> Contact {
    Contact::new(
        NodeId::from_bytes([n; 20]),
        SocketAddr::from(([192, 0, 2, n], 4001)),
    )
}

fn node() -> Node {
    let config = Config {
        jitter: 0.0,
        ..Config::default()
    };
    Node::new(NodeId::from_bytes([0; 20]), config, 1, at(0))
}

fn transmits(node: &mut Node) -> Vec<Transmit> {
    std::iter::from_fn(|| node.poll_transmit()).collect()
}

/// Makes `peer` an entry by having it answer a ping at once.
fn admit(node: &mut Node, peer: Contact, now: Instant) {
    admit_with_rtt(node, peer, now, Duration::ZERO);
}

/// Makes `peer` an entry by having it answer a ping after `rtt`.
fn admit_with_rtt(node: &mut Node, peer: Contact, now: Instant, rtt: Duration) {
    node.handle_request(now, peer, Request::Ping);
    let ping = transmits(node)
        .into_iter()
        .find(|t| t.to.id == Some(peer.id))
        .expect("verification ping");
    node.handle_response(
        now + rtt,
        ping.id,
        peer,
        Response::Pong {
            observed: peer.addr,
        },
    );
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The transmit to `peer` among `transmits`.
fn to(transmits: &[Transmit], peer: Contact) -> Option<&Transmit> {
    transmits.iter().find(|t| t.to.id == Some(peer.id))
}

#[test]
fn strangers_enter_the_table_only_after_answering() {
    let mut n = node();
    let peer = contact(0x80);
    let pong = n.handle_request(at(0), peer, Request::Ping);
    assert_eq!(
        pong,
        Response::Pong {
            observed: peer.addr
        }
    );
    assert!(n.table().is_empty(), "a request alone does not admit");
    let ping = transmits(&mut n)
        .pop()
        .expect("the stranger is pinged back");
    assert_eq!((ping.to, &ping.request), (Peer::from(peer), &Request::Ping));
    n.handle_response(
        at(1),
        ping.id,
        peer,
        Response::Pong {
            observed: peer.addr,
        },
    );
    assert!(n.table().contains(&peer.id));
    assert_eq!(n.nodes(at(1)).first().and_then(|i| i.rtt_ms), Some(1000));
}

#[test]
fn an_answer_from_the_wrong_node_or_of_the_wrong_type_is_a_failure() {
    let mut n = node();
    let peer = contact(0x80);
    admit(&mut n, peer, at(0));
    let id = n.find_node(at(1), NodeId::from_bytes([0x81; 20]));
    let request = transmits(&mut n).pop().expect("lookup asks the entry");
    n.handle_response(
        at(1),
        request.id,
        contact(0x90),
        Response::Nodes { closer: vec![] },
    );
    assert_eq!(n.counters().failures, 1);
    assert_eq!(
        n.table().state_of(&peer.id, at(1)),
        Some(NodeState::Questionable)
    );
    match n.poll_event() {
        Some(Event::QueryFinished {
            id: done,
            result: QueryResult::FindNode { closest, .. },
            ..
        }) => {
            assert_eq!(done, id);
            assert!(closest.is_empty());
        }
        other => panic!("unexpected {other:?}"),
    }
    // Wrong type: a Pong to a FindNode.
    n.find_node(at(2), NodeId::from_bytes([0x81; 20]));
    let request = transmits(&mut n).pop().expect("asked again");
    n.handle_response(
        at(2),
        request.id,
        peer,
        Response::Pong {
            observed: peer.addr,
        },
    );
    assert_eq!(n.table().state_of(&peer.id, at(2)), Some(NodeState::Bad));
}

#[test]
fn an_unpinned_seed_is_learned_from_its_answer() {
    let mut n = node();
    let seed = contact(0x80);
    n.bootstrap(at(0), [Peer::unpinned(seed.addr)]);
    let probe = transmits(&mut n).pop().expect("seed asked");
    assert_eq!(
        probe.request,
        Request::FindNode {
            target: *n.local_id()
        }
    );
    let other = contact(0x40);
    n.handle_response(
        at(0),
        probe.id,
        seed,
        Response::Nodes {
            closer: vec![other],
        },
    );
    assert!(n.table().contains(&seed.id));
    // The lookup goes on to the contact the seed named.
    let next = transmits(&mut n).pop().expect("lookup continues");
    assert_eq!(next.to, Peer::from(other));
    n.handle_response(at(0), next.id, other, Response::Nodes { closer: vec![] });
    match n.poll_event() {
        Some(Event::QueryFinished {
            result: QueryResult::Bootstrap { closest },
            stats,
            ..
        }) => {
            assert_eq!(closest, vec![other, seed]);
            assert_eq!(stats.rounds, 2);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(n.stats(at(0)).bootstrap_nodes, 1);
}

#[test]
fn a_node_that_writes_from_a_new_address_is_listed_there_and_reached_there() {
    let mut n = node();
    let peer = contact(0x80);
    admit(&mut n, peer, at(0));
    // A lookup asks it at the address it had.
    n.find_node(at(1), NodeId::from_bytes([0x81; 20]));
    let asked = transmits(&mut n).pop().expect("lookup asks the entry");
    assert_eq!(asked.to, Peer::from(peer));

    // It restarted with the same identity on another port, and writes to us from there.
    let moved = Contact::new(peer.id, SocketAddr::from(([192, 0, 2, 0x80], 5001)));
    n.handle_request(at(2), moved, Request::Ping);
    assert!(
        transmits(&mut n).is_empty(),
        "a known node is not pinged back"
    );
    let listed: Vec<SocketAddr> = n.nodes(at(2)).iter().map(|i| i.addr).collect();
    assert_eq!(listed, [moved.addr]);
    assert_eq!(n.table().len(), 1);

    // The lookup's answer comes over the connection from the new address (the transport
    // reuses it): the entry stays there, not back at the address the request carried.
    n.handle_response(at(3), asked.id, moved, Response::Nodes { closer: vec![] });
    let listed: Vec<SocketAddr> = n.nodes(at(3)).iter().map(|i| i.addr).collect();
    assert_eq!(listed, [moved.addr]);
    // And the next request goes there.
    n.find_node(at(4), NodeId::from_bytes([0x82; 20]));
    let next = transmits(&mut n).pop().expect("lookup asks the entry");
    assert_eq!(next.to, Peer::from(moved));
}

#[test]
fn questionable_entries_are_pinged_on_the_ping_timer() {
    let mut n = node();
    let peer = contact(0x80);
    admit(&mut n, peer, at(0));
    // Good entries are left alone.
    n.handle_timeout(at(30));
    assert!(transmits(&mut n).iter().all(|t| t.request != Request::Ping));
    // After 15 quiet minutes the entry is questionable and gets pinged.
    n.handle_timeout(at(15 * 60 + 30));
    let pings: Vec<Transmit> = transmits(&mut n)
        .into_iter()
        .filter(|t| t.request == Request::Ping)
        .collect();
    assert_eq!(pings.len(), 1);
    assert_eq!(pings.first().map(|t| t.to), Some(Peer::from(peer)));
}

#[test]
fn stale_buckets_are_refreshed_with_lookups_into_them() {
    let mut n = node();
    admit(&mut n, contact(0x80), at(0));
    n.handle_timeout(at(60));
    let lookups = transmits(&mut n)
        .into_iter()
        .filter(|t| matches!(t.request, Request::FindNode { .. }))
        .count();
    assert!(lookups >= 1);
    // A table with fewer than K entries also goes back to its seeds, if it has any.
    let mut lonely = node();
    lonely.bootstrap(at(0), [Peer::unpinned(contact(9).addr)]);
    let _ = transmits(&mut lonely);
    lonely.handle_timeout(at(60));
    assert!(transmits(&mut lonely).iter().any(|t| t.to.id.is_none()));
}

#[test]
fn a_bootstrap_that_reached_no_seed_is_retried_with_backoff_until_one_answers() {
    let mut n = node();
    let seed = contact(0x80);
    n.bootstrap(at(0), [Peer::pinned(seed.id, seed.addr)]);
    let mut now = at(0);
    // The seed is not up yet: each attempt is refused, and the next comes 1, 2, 4 s later
    // (this node has no jitter), not at the next refresh (60 s).
    for delay in [1, 2, 4] {
        let request = to(&transmits(&mut n), seed).expect("the seed is asked").id;
        n.handle_failure(now, request);
        let _ = n.poll_event();
        assert_eq!(n.poll_timeout(), now + Duration::from_secs(delay));
        now = n.poll_timeout();
        n.handle_timeout(now);
    }
    // Up now: it answers, enters the table, and the retries stop.
    let request = to(&transmits(&mut n), seed).expect("asked again").id;
    n.handle_response(now, request, seed, Response::Nodes { closer: vec![] });
    assert!(n.table().contains(&seed.id));
    assert_eq!(n.poll_timeout(), at(30), "the ping timer is next");
}

#[test]
fn the_table_survives_export_and_restore() {
    let mut n = node();
    for i in [0x80, 0x40, 0x20] {
        admit(&mut n, contact(i), at(0));
    }
    let saved = n.export_table();
    let mut fresh = node();
    assert_eq!(fresh.restore_table(at(100), &saved), Ok(3));
    assert_eq!(fresh.stats(at(100)).questionable_nodes, 3);
    assert!(fresh.restore_table(at(100), &[0xff, 0xff]).is_err());
}

#[test]
fn health_and_stats_speak_the_api_vocabulary() {
    let mut n = node();
    assert_eq!(n.health(at(0)).status, pqnode_health::Status::Warn);
    admit(&mut n, contact(0x80), at(0));
    assert!(n.health(at(0)).is_ok() && n.health(at(0)).reason.is_none());
    // Most contacts failing is a warning, with the reason.
    let mut m = node();
    admit(&mut m, contact(0x80), at(0));
    admit(&mut m, contact(0x81), at(0));
    let fail = |m: &mut Node, id: u8| {
        for _ in 0..5 {
            m.table.record_failure(&contact(id).id, at(1));
        }
    };
    fail(&mut m, 0x80);
    assert!(m.health(at(1)).is_ok(), "half failing is not most");
    fail(&mut m, 0x81);
    let health = m.health(at(1));
    assert_eq!(health.status, pqnode_health::Status::Warn, "{health:?}");
    assert!(health.reason.unwrap().contains("2 of 2"));
    // Alone by choice is fine.
    let config = Config {
        standalone: true,
        ..Config::default()
    };
    let alone = Node::new(NodeId::from_bytes([0; 20]), config, 1, at(0));
    assert!(alone.health(at(0)).is_ok());
    let json = serde_json::to_value(n.stats(at(0))).unwrap();
    for field in [
        "totalNodes",
        "bucketsUsed",
        "bootstrapNodes",
        "buckets",
        "counters",
    ] {
        assert!(json.get(field).is_some(), "missing {field}");
    }
    assert_eq!(json.get("totalNodes"), Some(&serde_json::json!(1)));
    let nodes = serde_json::to_value(n.nodes(at(0))).unwrap();
    assert_eq!(nodes.pointer("/0/state"), Some(&serde_json::json!("good")));
    assert!(nodes.pointer("/0/lastSeenMsAgo").is_some());
}

#[test]
fn an_authenticated_connection_seeds_a_short_table_and_operators_can_remove_contacts() {
    let mut n = node();
    let peer = contact(0x80);
    n.observe_connection(at(0), peer);
    // Short of K: it is asked for our neighbours, and enters the table by answering.
    let sent = transmits(&mut n);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].request,
        Request::FindNode {
            target: *n.local_id()
        }
    );
    n.handle_response(at(0), sent[0].id, peer, Response::Nodes { closer: vec![] });
    assert!(n.table().contains(&peer.id));
    // Already known: nothing more to ask.
    n.observe_connection(at(1), peer);
    assert!(transmits(&mut n).is_empty());

    assert!(n.remove_contact(&peer.id));
    assert!(!n.table().contains(&peer.id));
    assert!(!n.remove_contact(&peer.id));
}

/// An entry that failed twice (a partition, say) is bad: lookups and pings skip it, so only
/// its own traffic can tell us it is back. When it writes to us or connects again, it is
/// pinged and, answering, turns good.
#[test]
fn an_entry_gone_bad_is_asked_again_once_it_writes_or_connects() {
    let mut n = node();
    let peer = contact(0x80);
    admit(&mut n, peer, at(0));
    let make_bad = |n: &mut Node, from: u64| {
        for t in [from, from + 1] {
            n.find_node(at(t), NodeId::from_bytes([0x81; 20]));
            let request = transmits(n).pop().expect("the lookup asks the entry");
            n.handle_failure(at(t), request.id);
            while n.poll_event().is_some() {}
        }
        assert_eq!(
            n.table().state_of(&peer.id, at(from + 2)),
            Some(NodeState::Bad)
        );
    };
    let answer_ping = |n: &mut Node, now: Instant| {
        let ping = transmits(n)
            .into_iter()
            .find(|t| t.to.id == Some(peer.id) && t.request == Request::Ping)
            .expect("the bad entry is pinged");
        n.handle_response(
            now,
            ping.id,
            peer,
            Response::Pong {
                observed: peer.addr,
            },
        );
        assert_eq!(n.table().state_of(&peer.id, now), Some(NodeState::Good));
    };

    make_bad(&mut n, 1);
    n.handle_request(at(10), peer, Request::Ping);
    answer_ping(&mut n, at(10));

    make_bad(&mut n, 20);
    n.observe_connection(at(30), peer);
    answer_ping(&mut n, at(30));
}
