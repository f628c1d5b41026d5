use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use proptest::prelude::*;

use super::*;

fn at(secs: u64) -> Instant {
    Instant::from_elapsed(Duration::from_secs(secs))
}

fn id(first: u8, last: u8) -> NodeId {
    let mut bytes = [0u8; 20];
    bytes[0] = first;
    bytes[19] = last;
    NodeId::from_bytes(bytes)
}

/// A contact on its own /24.
fn contact(first: u8, last: u8) -> Contact {
    let ip = IpAddr::V4(Ipv4Addr::new(10, first, last, 1));
    Contact::new(id(first, last), SocketAddr::new(ip, 4001))
}

fn table(k: usize) -> RoutingTable {
    let config = TableConfig {
        k,
        replacement_cache: 2,
        ..TableConfig::default()
    };
    RoutingTable::new(NodeId::from_bytes([0; 20]), config, at(0))
}

#[test]
fn contacts_land_in_the_bucket_of_their_distance() {
    let mut t = table(20);
    assert_eq!(
        t.record_success(contact(0x80, 1), at(0), None),
        Insert::Inserted
    );
    assert_eq!(
        t.record_success(contact(0x01, 1), at(0), None),
        Insert::Inserted
    );
    assert_eq!(
        t.record_success(contact(0x00, 1), at(0), None),
        Insert::Inserted
    );
    let buckets: Vec<u8> = t.entries(at(0)).iter().map(|e| e.bucket).collect();
    assert_eq!(buckets, vec![0, 152, 159]);
    assert_eq!(t.buckets_used(), 3);
    assert_eq!(
        t.record_success(Contact::new(*t.local_id(), contact(1, 1).addr), at(0), None),
        Insert::Local
    );
}

#[test]
fn states_follow_bep5() {
    let mut t = table(20);
    let c = contact(0x80, 1);
    t.record_success(c, at(0), None);
    assert_eq!(t.state_of(&c.id, at(1)), Some(NodeState::Good));
    // Quiet for 15 minutes: questionable.
    assert_eq!(
        t.state_of(&c.id, at(15 * 60)),
        Some(NodeState::Questionable)
    );
    // A request from it renews it.
    t.record_inbound(c, at(15 * 60));
    assert_eq!(t.state_of(&c.id, at(15 * 60 + 1)), Some(NodeState::Good));
    // One failure: questionable; two: bad, and left out of lookups.
    assert_eq!(t.record_failure(&c.id, at(1000)), Failure::Counted);
    assert_eq!(t.state_of(&c.id, at(1000)), Some(NodeState::Questionable));
    t.record_failure(&c.id, at(1001));
    assert_eq!(t.state_of(&c.id, at(1001)), Some(NodeState::Bad));
    assert!(t.closest(&c.id, 20, at(1001)).is_empty());
    // An answer makes it good again.
    assert_eq!(t.record_success(c, at(1002), None), Insert::Updated);
    assert_eq!(t.state_of(&c.id, at(1002)), Some(NodeState::Good));
}

#[test]
fn an_entry_moves_to_the_address_its_id_writes_from() {
    let mut t = table(20);
    let c = contact(0x80, 1);
    t.record_success(c, at(0), None);
    let moved = Contact::new(c.id, SocketAddr::new(c.addr.ip(), 5002));
    t.record_inbound(moved, at(10));
    let listed: Vec<Contact> = t.entries(at(10)).iter().map(|e| e.contact).collect();
    assert_eq!(listed, [moved]);
    assert_eq!(t.closest(&c.id, 1, at(10)), [moved]);
    assert_eq!(t.contacts(), [moved], "what is saved for a restart");
    assert_eq!(t.len(), 1, "moved, not added");

    // A failed entry moves too, but a request does not vouch for it: it stays questionable
    // until it answers.
    t.record_failure(&c.id, at(20));
    let back = Contact::new(
        c.id,
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 9, 9, 9)), 4001),
    );
    t.record_inbound(back, at(30));
    assert_eq!(t.closest(&c.id, 1, at(30)), [back]);
    assert_eq!(t.state_of(&c.id, at(30)), Some(NodeState::Questionable));

    // Strangers are still not inserted, wherever they write from.
    let stranger = contact(0x40, 1);
    t.record_inbound(stranger, at(30));
    assert!(!t.contains(&stranger.id));
}

#[test]
fn a_cached_replacement_moves_to_the_address_its_id_writes_from() {
    let mut t = table(1);
    let (a, b) = (contact(0x80, 1), contact(0x80, 2));
    t.record_success(a, at(0), None);
    assert_eq!(t.record_success(b, at(0), None), Insert::Cached);
    let moved = Contact::new(b.id, SocketAddr::new(b.addr.ip(), 5002));
    t.record_inbound(moved, at(1));
    // a goes bad: b is promoted, at the address it last wrote from.
    t.record_failure(&a.id, at(2));
    assert_eq!(
        t.record_failure(&a.id, at(2)),
        Failure::Replaced { by: b.id }
    );
    assert_eq!(t.closest(&b.id, 1, at(2)), [moved]);
}

#[test]
fn full_buckets_cache_newcomers_and_promote_them_when_an_entry_goes_bad() {
    let mut t = table(2);
    let (a, b, c, d) = (
        contact(0x80, 1),
        contact(0x80, 2),
        contact(0x80, 3),
        contact(0x80, 4),
    );
    assert_eq!(t.record_success(a, at(0), None), Insert::Inserted);
    assert_eq!(t.record_success(b, at(0), None), Insert::Inserted);
    assert_eq!(t.record_success(c, at(0), None), Insert::Cached);
    assert_eq!(t.record_success(d, at(0), None), Insert::Cached);
    assert!(!t.contains(&c.id));
    t.record_failure(&a.id, at(1));
    // The most recent answerer takes the bad entry's slot.
    assert_eq!(
        t.record_failure(&a.id, at(2)),
        Failure::Replaced { by: d.id }
    );
    assert!(t.contains(&d.id) && !t.contains(&a.id));
    assert_eq!(t.len(), 2);
}

#[test]
fn a_newcomer_takes_the_slot_of_a_bad_entry_when_the_cache_is_empty() {
    let config = TableConfig {
        k: 1,
        replacement_cache: 0,
        ..TableConfig::default()
    };
    let mut t = RoutingTable::new(NodeId::from_bytes([0; 20]), config, at(0));
    let (a, b) = (contact(0x80, 1), contact(0x80, 2));
    t.record_success(a, at(0), None);
    t.record_failure(&a.id, at(1));
    t.record_failure(&a.id, at(2));
    assert_eq!(t.state_of(&a.id, at(2)), Some(NodeState::Bad));
    assert_eq!(t.record_success(b, at(3), None), Insert::ReplacedBad(a.id));
}

#[test]
fn the_subnet_limit_caps_one_network_per_bucket_except_loopback() {
    let mut t = table(20);
    let same_net = |last: u8, host: u8| {
        Contact::new(
            id(0x80, last),
            SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, host)), 4001),
        )
    };
    assert_eq!(
        t.record_success(same_net(1, 1), at(0), None),
        Insert::Inserted
    );
    assert_eq!(
        t.record_success(same_net(2, 2), at(0), None),
        Insert::Inserted
    );
    assert_eq!(
        t.record_success(same_net(3, 3), at(0), None),
        Insert::SubnetFull
    );
    // Another bucket has its own allowance.
    let other_bucket = Contact::new(id(0x40, 4), same_net(4, 4).addr);
    assert_eq!(
        t.record_success(other_bucket, at(0), None),
        Insert::Inserted
    );
    // Loopback is exempt by default...
    for last in 10..20 {
        let local = Contact::new(
            id(0x80, last),
            SocketAddr::from(([127, 0, 0, 1], 5000 + u16::from(last))),
        );
        assert_eq!(t.record_success(local, at(0), None), Insert::Inserted);
    }
    // ...and the limit can be lifted.
    let config = TableConfig {
        max_per_subnet: None,
        ..TableConfig::default()
    };
    let mut open = RoutingTable::new(NodeId::from_bytes([0; 20]), config, at(0));
    for last in 1..10 {
        assert_eq!(
            open.record_success(same_net(last, last), at(0), None),
            Insert::Inserted
        );
    }
}

#[test]
fn restored_contacts_are_questionable_until_they_answer() {
    let mut t = table(20);
    let c = contact(0x80, 1);
    assert_eq!(t.restore([c], at(0)), 1);
    assert_eq!(t.state_of(&c.id, at(0)), Some(NodeState::Questionable));
    assert_eq!(t.questionable(at(0)), vec![c]);
    t.record_success(c, at(1), None);
    assert_eq!(t.state_of(&c.id, at(1)), Some(NodeState::Good));
}

#[test]
fn only_buckets_from_our_nearest_neighbour_outwards_are_refreshed() {
    let mut t = table(20);
    t.record_success(contact(0x01, 1), at(0), None); // bucket 152
    let stale = t.stale_buckets(at(60), Duration::from_secs(60));
    assert_eq!(stale, (152..=159).collect::<Vec<u8>>());
    t.mark_refreshed(159, at(60));
    assert!(
        !t.stale_buckets(at(60), Duration::from_secs(60))
            .contains(&159)
    );
}

proptest! {
    #[test]
    fn the_table_keeps_its_invariants(ids in proptest::collection::vec(any::<[u8; 20]>(), 1..200), target in any::<[u8; 20]>()) {
        let k = 4;
        let config = TableConfig { k, max_per_subnet: None, ..TableConfig::default() };
        let local = NodeId::from_bytes([0x55; 20]);
        let mut t = RoutingTable::new(local, config, at(0));
        for (i, bytes) in ids.iter().enumerate() {
            let addr = SocketAddr::from(([10, 0, 0, 1], 1000 + i as u16));
            t.record_success(Contact::new(NodeId::from_bytes(*bytes), addr), at(0), None);
        }
        let entries = t.entries(at(0));
        for e in &entries {
            prop_assert_eq!(t.bucket_of(&e.contact.id), Some(e.bucket));
        }
        for b in t.bucket_views() {
            prop_assert!(b.entries <= k);
        }
        // closest() agrees with brute force over the entries.
        let target = NodeId::from_bytes(target);
        let mut expected: Vec<NodeId> = entries.iter().map(|e| e.contact.id).collect();
        expected.sort_by_key(|id| Distance::between(&target, id));
        expected.truncate(k);
        let found: Vec<NodeId> = t.closest(&target, k, at(0)).iter().map(|c| c.id).collect();
        prop_assert_eq!(found, expected);
    }
}
