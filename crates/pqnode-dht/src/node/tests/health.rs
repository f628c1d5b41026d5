//! Health tells the truth: standalone by choice, failing requests, a thin table.

use pqnode_health::Status;

use super::*;

/// Contacts with ids of the form `[n; 20]`, one per bucket, each on its own /24.
fn spread(count: u8) -> Vec<Contact> {
    (0..count)
        .map(|i| {
            let n = 0x80u8 >> i;
            Contact::new(
                NodeId::from_bytes([n; 20]),
                SocketAddr::from(([10, i, 0, 1], 4001)),
            )
        })
        .collect()
}

#[test]
fn a_standalone_node_passes_alone_and_says_why() {
    let config = Config {
        standalone: true,
        ..Config::default()
    };
    let n = Node::new(NodeId::from_bytes([0; 20]), config, 1, at(0));
    let health = n.health();
    assert_eq!(health.status, Status::Pass);
    assert!(health.reason.is_some_and(|r| r.contains("standalone")));
    assert_eq!(node().health().status, Status::Warn, "unless configured so");
}

#[test]
fn health_warns_when_most_requests_fail() {
    let mut n = node();
    let contacts = spread(8);
    for c in &contacts {
        admit_with_rtt(&mut n, *c, at(0), ms(10));
    }
    assert_eq!(n.health().status, Status::Pass);
    // Every contact dies: two lookups fail against all of them (the second asks them as a
    // last resort, one at a time).
    for round in 0..2 {
        n.find_node(at(1 + round), NodeId::from_bytes([0x81; 20]));
        while let Some(t) = n.poll_transmit() {
            n.handle_failure(at(1 + round), t.id);
        }
    }
    let stats = n.stats(at(3));
    assert!(stats.recent_failure_ratio > 0.5, "{stats:?}");
    assert_eq!(stats.reachable_nodes, 0);
    let health = n.health();
    assert_eq!(health.status, Status::Warn);
    assert!(
        health
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("failing")),
        "{health:?}"
    );
}

#[test]
fn health_warns_when_the_table_is_thin_for_the_network() {
    let mut n = node();
    // Thirty nodes of one /24 answer us, but the subnet limit lets two into the table: the
    // node knows the network is bigger than its table.
    for last in 0..30u8 {
        let mut id = [0x80u8; 20];
        id[19] = last;
        let c = Contact::new(
            NodeId::from_bytes(id),
            SocketAddr::from(([192, 0, 2, last], 4001)),
        );
        n.add_contact(at(0), Peer::from(c)).expect("valid");
        // Answer the ping, and whatever the joins send, at once with nothing new.
        while let Some(t) = n.poll_transmit() {
            let answer = match t.request {
                Request::Ping => Response::Pong { observed: c.addr },
                _ => Response::Nodes { closer: vec![] },
            };
            let responder = Contact::new(t.to.id.unwrap_or(c.id), t.to.addr);
            n.handle_response(at(0) + ms(10), t.id, responder, answer);
        }
    }
    let stats = n.stats(at(0));
    assert_eq!(stats.reachable_nodes, 2);
    assert!(stats.estimated_network_size >= 31, "{stats:?}");
    let health = n.health();
    assert_eq!(health.status, Status::Warn);
    assert!(
        health.reason.as_deref().is_some_and(|r| r.contains("thin")),
        "{health:?}"
    );
}
