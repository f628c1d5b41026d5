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
