//! Latency under churn: adaptive timeouts, soft timeouts, failures that count at once.

use super::*;

fn nodes(closer: Vec<Contact>) -> Response {
    Response::Nodes { closer }
}

fn finished_find_node(n: &mut Node) -> (Vec<Contact>, LookupStats) {
    match n.poll_event() {
        Some(Event::QueryFinished {
            result: QueryResult::FindNode { closest, .. },
            stats,
            ..
        }) => (closest, stats),
        other => panic!("expected a finished lookup, got {other:?}"),
    }
}

#[test]
fn timeouts_follow_the_contacts_rtt_and_unmeasured_contacts_get_the_conservative_one() {
    let mut n = node();
    n.bootstrap(at(0), [Peer::unpinned(contact(9).addr)]);
    let probe = transmits(&mut n).pop().expect("the seed is asked");
    assert_eq!(probe.timeout, Duration::from_secs(5), "never measured");
    n.handle_failure(at(0), probe.id);
    let _ = n.poll_event();

    // A node with no seeds (one with a failed seed retries it, see the bootstrap tests).
    let mut n = node();
    let peer = contact(0x80);
    admit_with_rtt(&mut n, peer, at(1), ms(100));
    n.find_node(at(10), NodeId::from_bytes([0x81; 20]));
    let sent = transmits(&mut n);
    // RFC 6298 after one 100 ms sample: RTO 300 ms; the hard timeout is twice that.
    assert_eq!(to(&sent, peer).map(|t| t.timeout), Some(ms(600)));
    assert_eq!(
        n.poll_timeout(),
        at(10) + ms(300),
        "the soft timeout comes first"
    );
    n.handle_timeout(at(10) + ms(300));
    assert_eq!(n.counters().stalls, 1);
    assert!(
        n.poll_event().is_none(),
        "nothing else answered: the overdue answer is still awaited"
    );
    assert_eq!(n.poll_timeout(), at(10) + ms(600));
    n.handle_timeout(at(10) + ms(600));
    assert_eq!(n.counters().timeouts, 1);
    let (closest, stats) = finished_find_node(&mut n);
    assert!(closest.is_empty());
    assert_eq!((stats.stalled, stats.failures), (1, 1));
    assert_eq!(
        n.table().state_of(&peer.id, at(11)),
        Some(NodeState::Questionable),
        "demoted at the first failure"
    );
}

#[test]
fn a_failed_contact_is_left_out_of_the_next_lookups_even_when_others_name_it() {
    let mut n = node();
    let (dead, alive) = (contact(0x80), contact(0x40));
    admit_with_rtt(&mut n, dead, at(0), ms(50));
    admit_with_rtt(&mut n, alive, at(0), ms(50));
    let target = NodeId::from_bytes([0x81; 20]);

    n.find_node(at(10), target);
    let sent = transmits(&mut n);
    let (d, a) = (
        to(&sent, dead).expect("asked"),
        to(&sent, alive).expect("asked"),
    );
    // The driver could not reach it (connection refused): that counts at once.
    n.handle_failure(at(10), d.id);
    assert_eq!(
        n.table().state_of(&dead.id, at(10)),
        Some(NodeState::Questionable)
    );
    n.handle_response(at(10) + ms(50), a.id, alive, nodes(vec![dead]));
    assert_eq!(finished_find_node(&mut n).0, vec![alive]);

    // The repeat asks only the live contact, though it still names the dead one.
    n.find_node(at(11), target);
    let sent = transmits(&mut n);
    assert_eq!(sent.len(), 1);
    let a = to(&sent, alive).expect("asked");
    n.handle_response(at(11) + ms(50), a.id, alive, nodes(vec![dead]));
    assert!(transmits(&mut n).is_empty());
    let (closest, stats) = finished_find_node(&mut n);
    assert_eq!(closest, vec![alive]);
    assert_eq!((stats.failures, stats.stalled), (0, 0));

    // Nor does the node pass it on to others.
    let asker = contact(0x20);
    assert_eq!(
        n.handle_request(at(12), asker, Request::FindNode { target }),
        nodes(vec![alive])
    );

    // After `failure_memory`, it gets another chance (a node that restarted).
    let _ = transmits(&mut n);
    n.find_node(at(10 + 301), target);
    assert!(to(&transmits(&mut n), dead).is_some());
}

#[test]
fn a_late_answer_is_used_after_the_lookup_moved_past_it() {
    let mut n = node();
    let (quick, slow, named) = (contact(0x80), contact(0x40), contact(0x20));
    admit_with_rtt(&mut n, quick, at(0), ms(100));
    admit_with_rtt(&mut n, slow, at(0), ms(1000));
    n.find_node(at(10), NodeId::from_bytes([0x81; 20]));
    let sent = transmits(&mut n);
    let (q, s) = (
        to(&sent, quick).expect("asked"),
        to(&sent, slow).expect("asked"),
    );
    let (q, s) = (q.id, s.id);
    n.handle_timeout(at(10) + ms(300));
    assert_eq!(n.counters().stalls, 1, "the quick contact is overdue");
    // Its answer still comes before the hard timeout, and the lookup follows it.
    n.handle_response(at(10) + ms(400), q, quick, nodes(vec![named]));
    let next = transmits(&mut n);
    let c = to(&next, named).expect("the named contact is asked").id;
    n.handle_response(at(10) + ms(500), c, named, nodes(vec![]));
    n.handle_response(at(11), s, slow, nodes(vec![]));
    let (closest, stats) = finished_find_node(&mut n);
    assert_eq!(closest, vec![quick, named, slow]);
    assert_eq!(stats.stalled, 1);
    assert_eq!(
        n.table().state_of(&quick.id, at(11)),
        Some(NodeState::Good),
        "a late answer is an answer"
    );
}

#[test]
fn a_lookup_waits_for_its_targets_overdue_answer_only_as_long_as_the_target_deserves() {
    let mut n = node();
    let known = contact(0x80);
    // First contacts answer in 100 ms: RTO 300 ms.
    admit_with_rtt(&mut n, known, at(0), ms(100));
    // Looks `target` up; the table's contacts answer in 100 ms naming it. Returns the
    // request to the target.
    let lookup = |n: &mut Node, start: Instant, target: Contact| -> RequestId {
        n.find_node(start, target.id);
        for t in transmits(n) {
            let from = Contact::new(t.to.id.expect("pinned"), t.to.addr);
            n.handle_response(start + ms(100), t.id, from, nodes(vec![target]));
        }
        let t = transmits(n);
        let request = to(&t, target).expect("the target is asked");
        assert_eq!(
            request.timeout,
            Duration::from_secs(5),
            "never measured: it may need a dial"
        );
        request.id
    };

    // Dead: the lookup waits past the soft timeout (300 ms after the request) up to twice
    // that, not the 5 s hard timeout.
    let (dead, start) = (contact(0x82), at(10));
    lookup(&mut n, start, dead);
    n.handle_timeout(start + ms(400));
    assert!(n.poll_event().is_none());
    assert_eq!(n.poll_timeout(), start + ms(700));
    n.handle_timeout(start + ms(700));
    let (closest, stats) = finished_find_node(&mut n);
    assert_eq!(closest, vec![known]);
    assert_eq!((stats.stalled, stats.failures), (1, 0));

    // Slow but alive: an answer within that wait is found.
    let (slow, start) = (contact(0x81), at(20));
    let request = lookup(&mut n, start, slow);
    n.handle_timeout(start + ms(400));
    assert!(n.poll_event().is_none(), "the target's answer is awaited");
    n.handle_response(start + ms(650), request, slow, nodes(vec![]));
    assert_eq!(finished_find_node(&mut n).0.first(), Some(&slow));

    // Failed once since it last answered (the first request timed out since): one failure
    // may be one lost packet too many, so its answer is still waited for past its soft
    // timeout, until its patience (twice the first contacts' RTO, the slow answer now in
    // it), well before the 5 s hard timeout.
    n.handle_timeout(at(30));
    assert_eq!(n.counters().timeouts, 1);
    let start = at(40);
    lookup(&mut n, start, dead);
    let soft = n.poll_timeout();
    n.handle_timeout(soft);
    assert!(
        n.poll_event().is_none(),
        "a target that failed once is awaited"
    );
    let patience = n.poll_timeout();
    assert!(
        soft < patience && patience < start + ms(2000),
        "{patience:?}"
    );
    n.handle_timeout(patience);
    assert_eq!(finished_find_node(&mut n).0, vec![known, slow]);

    // Failed twice, as many failures as make a table entry bad: still asked, but not waited
    // for past its soft timeout.
    n.handle_timeout(at(50));
    assert_eq!(n.counters().timeouts, 2);
    let start = at(60);
    lookup(&mut n, start, dead);
    assert!(n.poll_event().is_none(), "the target is still in time");
    n.handle_timeout(start + ms(1000));
    assert_eq!(finished_find_node(&mut n).0, vec![known, slow]);
}
