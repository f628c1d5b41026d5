//! Records: validation, lifetime, republishing.

use pqnode_crypto::Identity;

use super::*;

#[test]
fn records_are_validated_stored_and_served() {
    let mut n = node();
    let me = Identity::from_seed(&[5; 32]).unwrap();
    let record = Record::sign(&me, b"n", b"v", 1, Duration::from_secs(60)).unwrap();
    let from = contact(0x80);
    assert_eq!(
        n.handle_request(
            at(0),
            from,
            Request::Store {
                record: record.clone(),
            }
        ),
        Response::Stored
    );
    let forged = Record::from_parts(
        *record.key(),
        b"n".to_vec(),
        b"w".to_vec(),
        record.publisher().as_bytes(),
        2,
        60,
        record.signature().as_bytes(),
    )
    .unwrap();
    assert!(matches!(
        n.handle_request(at(0), from, Request::Store { record: forged }),
        Response::Rejected { .. }
    ));
    assert_eq!(
        n.handle_request(at(1), from, Request::FindValue { key: *record.key() }),
        Response::Value {
            record: Some(record.clone()),
            closer: vec![]
        }
    );
    // Expired after its TTL.
    n.handle_timeout(at(61));
    assert!(matches!(
        n.handle_request(at(61), from, Request::FindValue { key: *record.key() }),
        Response::Value { record: None, .. }
    ));
    assert_eq!(
        (n.counters().records_accepted, n.counters().records_rejected),
        (1, 1)
    );
}

#[test]
fn published_records_are_republished_on_the_timer() {
    let mut n = node();
    admit(&mut n, contact(0x80), at(0));
    let me = Identity::from_seed(&[6; 32]).unwrap();
    let record = Record::sign(&me, b"n", b"v", 1, Duration::from_secs(7200)).unwrap();
    n.put(at(0), record.clone()).unwrap();
    let _ = transmits(&mut n);
    n.handle_timeout(at(31 * 60));
    // The republish starts with a lookup of the record's key.
    assert!(transmits(&mut n).iter().any(|t| t.request
        == Request::FindNode {
            target: *record.key()
        }));
    assert!(n.unpublish(record.key()));
}

#[test]
fn stored_records_survive_export_and_restore_with_their_remaining_lifetime() {
    let mut n = node();
    let me = Identity::from_seed(&[8; 32]).unwrap();
    let record = Record::sign(&me, b"n", b"v", 1, Duration::from_secs(100)).unwrap();
    let provider = ProviderRecord::sign(
        &me,
        NodeId::from_bytes([4; 20]),
        b"p",
        1,
        Duration::from_secs(100),
    )
    .unwrap();
    let from = contact(0x80);
    n.handle_request(
        at(0),
        from,
        Request::Store {
            record: record.clone(),
        },
    );
    n.handle_request(at(0), from, Request::AddProvider { provider });
    let saved = n.export_records(at(40));
    let mut fresh = node();
    assert_eq!(fresh.restore_records(at(0), &saved), Ok(2));
    assert!(fresh.store().get(record.key(), at(59)).is_some());
    assert!(
        fresh.store().get(record.key(), at(60)).is_none(),
        "60 s were left when saved"
    );
    assert!(fresh.restore_records(at(0), b"junk").is_err());
}

/// Entries whose value starts with `proof:` must go on with `ok`.
#[derive(Debug)]
struct ProofOk;

impl crate::ProviderValidator for ProofOk {
    fn validate(&self, entry: &ProviderRecord) -> crate::Verdict {
        match entry.value().strip_prefix(b"proof:") {
            None => crate::Verdict::NotMine,
            Some(rest) if rest.starts_with(b"ok") => crate::Verdict::Valid,
            Some(_) => crate::Verdict::Invalid("not ok".into()),
        }
    }
}

#[test]
fn validators_guard_what_a_node_stores_and_serves() {
    let config = Config::default().with_validator(ProofOk);
    let mut n = Node::new(NodeId::from_bytes([0; 20]), config, 1, at(0));
    let key = NodeId::from_bytes([4; 20]);
    let entry = |seed: u8, value: &[u8]| {
        let id = Identity::from_seed(&[seed; 32]).unwrap();
        ProviderRecord::sign(&id, key, value, 1, Duration::from_secs(100)).unwrap()
    };
    let add = |n: &mut Node, provider: ProviderRecord| {
        n.handle_request(at(0), contact(0x80), Request::AddProvider { provider })
    };
    // An unprovable claim is stored while the key is untyped...
    assert_eq!(add(&mut n, entry(1, b"claim")), Response::Stored);
    // ...a refused proof is not, nor is a large value nobody vouches for...
    assert!(matches!(
        add(&mut n, entry(2, b"proof:forged")),
        Response::Rejected { .. }
    ));
    assert!(matches!(
        add(&mut n, entry(2, &[7; 2000])),
        Response::Rejected { .. }
    ));
    // ...and a valid one, as large as it needs, types the key.
    let mut big = b"proof:ok".to_vec();
    big.resize(7500, 0);
    assert_eq!(add(&mut n, entry(3, &big)), Response::Stored);
    assert!(matches!(
        add(&mut n, entry(4, b"claim")),
        Response::Rejected { .. }
    ));
    let Response::Providers { providers, .. } =
        n.handle_request(at(1), contact(0x80), Request::GetProviders { key })
    else {
        panic!("not a providers answer");
    };
    assert_eq!(providers.len(), 1);
    assert_eq!(providers[0].value(), big.as_slice());
}

#[test]
fn a_read_returns_the_newest_copy_and_repairs_stale_holders() {
    let mut n = node();
    let me = Identity::from_seed(&[11; 32]).unwrap();
    let old = Record::sign(&me, b"n", b"old", 1, Duration::from_secs(600)).unwrap();
    let new = Record::sign(&me, b"n", b"new", 2, Duration::from_secs(600)).unwrap();
    let holders = [contact(0x80), contact(0x40), contact(0x20)];
    for h in holders {
        admit(&mut n, h, at(0));
    }
    let _ = transmits(&mut n);
    let query = n.get(at(1), *old.key());
    let asked = transmits(&mut n);
    assert_eq!(asked.len(), 3, "alpha requests");
    // The first holder has the old copy: the read does not stop at it.
    let peer_of = |t: &Transmit| Contact::new(t.to.id.unwrap(), t.to.addr);
    let answer = |record: &Record| Response::Value {
        record: Some(record.clone()),
        closer: vec![],
    };
    n.handle_response(at(1), asked[0].id, peer_of(&asked[0]), answer(&old));
    assert!(
        n.poll_event().is_none(),
        "one stale copy does not end the read"
    );
    n.handle_response(at(1), asked[1].id, peer_of(&asked[1]), answer(&new));
    n.handle_response(at(1), asked[2].id, peer_of(&asked[2]), answer(&new));
    let Some(Event::QueryFinished { id, result, .. }) = n.poll_event() else {
        panic!("the read ended")
    };
    assert_eq!(id, query);
    assert_eq!(
        result,
        QueryResult::GetRecord {
            key: *old.key(),
            record: Some(new.clone())
        }
    );
    // The holder of the old copy is sent the new one.
    let repairs = transmits(&mut n);
    assert_eq!(repairs.len(), 1, "{repairs:?}");
    assert_eq!(repairs[0].to.id, asked[0].to.id);
    assert_eq!(repairs[0].request, Request::Store { record: new });
    assert_eq!(n.counters().read_repairs, 1);
}

/// The `Store` requests among `transmits`, with where they go.
fn stores(transmits: Vec<Transmit>) -> Vec<(Peer, Record)> {
    transmits
        .into_iter()
        .filter_map(|t| match t.request {
            Request::Store { record } => Some((t.to, record)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_storer_hands_its_records_on_with_the_expiry_they_came_with() {
    let mut n = node();
    let unix = 1_700_000_000_000;
    n.set_unix_time(at(0), unix);
    let neighbour = contact(0x80);
    admit(&mut n, neighbour, at(0));
    let me = Identity::from_seed(&[7; 32]).unwrap();
    let record = Record::sign(&me, b"n", b"v", 1, Duration::from_secs(4 * 3600)).unwrap();
    let key = *record.key();
    // A copy with 2 h left, though its TTL is 4 h.
    let expires = unix + 2 * 3600 * 1000;
    let copy = record.clone().with_expiry(Some(expires));
    let from = contact(0x40);
    assert_eq!(
        n.handle_request(at(0), from, Request::Store { record: copy }),
        Response::Stored
    );
    match n.handle_request(at(1), from, Request::FindValue { key }) {
        Response::Value {
            record: Some(served),
            ..
        } => assert_eq!(
            served.expires_unix_ms(),
            Some(expires),
            "served as received"
        ),
        other => panic!("unexpected {other:?}"),
    }
    let _ = transmits(&mut n);

    // An hour on (the replicate interval), the holder looks the key up and stores the record
    // on the closest nodes it finds, with the same expiry.
    n.handle_timeout(at(3600 + 30));
    let lookup = transmits(&mut n)
        .into_iter()
        .find(|t| t.request == Request::FindNode { target: key })
        .expect("a lookup of the record's key");
    assert_eq!(n.counters().replications, 1);
    n.handle_response(
        at(3600 + 31),
        lookup.id,
        neighbour,
        Response::Nodes { closer: vec![] },
    );
    let sent = stores(transmits(&mut n));
    assert_eq!(sent.len(), 1);
    let (to, handed) = sent.into_iter().next().unwrap();
    assert_eq!((to, &handed), (Peer::from(neighbour), &record));
    assert_eq!(handed.expires_unix_ms(), Some(expires), "not extended");

    // And it is gone at that expiry, not at its TTL.
    let key_request = Request::FindValue { key };
    assert!(matches!(
        n.handle_request(at(2 * 3600 + 1), from, key_request.clone()),
        Response::Value { record: None, .. }
    ));
    // A copy past its expiry is refused; one claiming more than its TTL gets its TTL.
    let late = record.clone().with_expiry(Some(unix + 1000));
    assert!(matches!(
        n.handle_request(at(2 * 3600 + 2), from, Request::Store { record: late }),
        Response::Rejected { .. }
    ));
    let long = record.with_expiry(Some(unix + 100 * 3600 * 1000));
    let now = 3 * 3600;
    assert_eq!(
        n.handle_request(at(now), from, Request::Store { record: long }),
        Response::Stored
    );
    assert!(matches!(
        n.handle_request(at(now + 4 * 3600 - 1), from, key_request.clone()),
        Response::Value {
            record: Some(_),
            ..
        }
    ));
    assert!(matches!(
        n.handle_request(at(now + 4 * 3600), from, key_request),
        Response::Value { record: None, .. }
    ));
}

#[test]
fn a_holder_stays_quiet_while_the_record_keeps_arriving_and_not_at_all_when_told_not_to() {
    let me = Identity::from_seed(&[8; 32]).unwrap();
    let record = Record::sign(&me, b"n", b"v", 1, Duration::from_secs(4 * 3600)).unwrap();
    let mut n = node();
    admit(&mut n, contact(0x80), at(0));
    let publisher = contact(0x40);
    // The publisher stores it again every 30 min: the holder's own turn keeps moving.
    for half_hour in 0..4 {
        let record = record.clone();
        n.handle_request(at(half_hour * 1800), publisher, Request::Store { record });
        n.handle_timeout(at(half_hour * 1800 + 1790));
        assert_eq!(n.counters().replications, 0);
    }
    n.handle_timeout(at(3 * 1800 + 3600 + 30));
    assert_eq!(n.counters().replications, 1, "the publisher went quiet");

    let mut quiet = Node::new(
        NodeId::from_bytes([0; 20]),
        Config {
            jitter: 0.0,
            replicate_interval: None,
            ..Config::default()
        },
        1,
        at(0),
    );
    admit(&mut quiet, contact(0x80), at(0));
    quiet.handle_request(at(0), publisher, Request::Store { record });
    quiet.handle_timeout(at(3 * 3600));
    assert_eq!(quiet.counters().replications, 0);
}

#[test]
fn a_new_node_closer_to_a_key_than_its_holder_is_given_the_record() {
    let mut n = node();
    let me = Identity::from_seed(&[9; 32]).unwrap();
    let record = Record::sign(&me, b"n", b"v", 1, Duration::from_secs(3600)).unwrap();
    let key = *record.key();
    n.handle_request(
        at(0),
        contact(0x40),
        Request::Store {
            record: record.clone(),
        },
    );
    let _ = transmits(&mut n);
    // Farther from the key than we are (our id is all zeros): nothing to hand over.
    let mut far = *key.as_bytes();
    far[0] ^= 0x80;
    let far = Contact::new(NodeId::from_bytes(far), contact(0x81).addr);
    admit(&mut n, far, at(1));
    assert!(stores(transmits(&mut n)).is_empty());
    // Closer: it gets the record as soon as it enters the table.
    let mut near = *key.as_bytes();
    near[19] ^= 1;
    let near = Contact::new(NodeId::from_bytes(near), contact(0x82).addr);
    admit(&mut n, near, at(2));
    let sent = stores(transmits(&mut n));
    assert_eq!(sent, vec![(Peer::from(near), record)]);
    assert_eq!(n.counters().replications, 1);
}
