//! Records: validation, lifetime, republishing, replication by storers, reads.

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
                remaining: None,
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
        n.handle_request(
            at(0),
            from,
            Request::Store {
                record: forged,
                remaining: None,
            }
        ),
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
            remaining: None,
        },
    );
    n.handle_request(
        at(0),
        from,
        Request::AddProvider {
            provider,
            remaining: None,
        },
    );
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

fn signed(seq: u64, value: &[u8]) -> Record {
    let me = Identity::from_seed(&[42; 32]).unwrap();
    Record::sign(&me, b"n", value, seq, Duration::from_secs(3600)).unwrap()
}

fn store(record: &Record, remaining: Option<Duration>) -> Request {
    Request::Store {
        record: record.clone(),
        remaining,
    }
}

#[test]
fn a_replica_lives_only_as_long_as_its_sender_vouches() {
    let mut n = node();
    let record = signed(1, b"v");
    let from = contact(0x80);
    let key = *record.key();
    assert_eq!(
        n.handle_request(at(0), from, store(&record, Some(Duration::from_secs(100)))),
        Response::Stored
    );
    assert!(n.store().get(&key, at(99)).is_some());
    assert!(n.store().get(&key, at(100)).is_none());
    // More than the TTL is never granted; the publisher's store renews it to the full TTL,
    // and a replica with less left does not cut it short.
    n.handle_request(
        at(100),
        from,
        store(&record, Some(Duration::from_secs(9999))),
    );
    assert!(n.store().get(&key, at(3699)).is_some());
    assert!(n.store().get(&key, at(3700)).is_none());
    n.handle_request(at(200), from, store(&record, None));
    n.handle_request(at(300), from, store(&record, Some(Duration::from_secs(10))));
    assert!(n.store().get(&key, at(3799)).is_some());
}

#[test]
fn storers_replicate_what_they_hold_with_the_lifetime_it_has_left() {
    let record = signed(1, b"v");
    let key = *record.key();
    let holder = contact(0x80);
    let replicated = |postponed: bool| -> Vec<Transmit> {
        let mut n = node();
        admit(&mut n, holder, at(0));
        n.handle_request(at(0), contact(0x40), store(&record, None));
        if postponed {
            // Someone else replicated it meanwhile (a store of the same copy).
            n.handle_request(
                at(500),
                contact(0x40),
                store(&record, Some(Duration::from_secs(3100))),
            );
        }
        let _ = transmits(&mut n);
        // Replication is due 10 minutes after the store; maintenance runs every minute.
        n.handle_timeout(at(660));
        let lookup: Vec<Transmit> = transmits(&mut n)
            .into_iter()
            .filter(|t| {
                t.request == Request::FindValue { key }
                    || t.request == Request::FindNode { target: key }
            })
            .collect();
        let mut stores = Vec::new();
        for t in lookup {
            n.handle_response(at(660), t.id, holder, Response::Nodes { closer: vec![] });
            stores.extend(transmits(&mut n));
        }
        assert_eq!(n.counters().replications, u64::from(!postponed));
        stores
    };
    let stores = replicated(false);
    assert_eq!(stores.len(), 1);
    assert_eq!(
        stores.first().map(|t| &t.request),
        Some(&store(&record, Some(Duration::from_secs(3600 - 660))))
    );
    assert!(replicated(true).is_empty(), "postponed by the other store");
}

#[test]
fn a_get_returns_the_newest_copy_once_a_quorum_of_holders_agree() {
    let mut n = node();
    let holders = [contact(0x80), contact(0x40), contact(0x20), contact(0x10)];
    for h in holders {
        admit(&mut n, h, at(0));
    }
    let (old, new) = (signed(1, b"old"), signed(2, b"new"));
    let key = *new.key();
    let id = n.get(at(1), key);
    // The first holder asked has the old copy, every other the new one.
    let mut asked = 0;
    while let Some(t) = n.poll_transmit() {
        assert_eq!(t.request, Request::FindValue { key });
        let record = if asked == 0 { old.clone() } else { new.clone() };
        asked += 1;
        let responder = holders
            .iter()
            .find(|h| Some(h.id) == t.to.id)
            .copied()
            .unwrap();
        let answer = Response::Value {
            record: Some(record),
            closer: vec![],
        };
        n.handle_response(at(1), t.id, responder, answer);
    }
    assert_eq!(asked, 4, "one stale copy, then three that agree");
    match n.poll_event() {
        Some(Event::QueryFinished {
            id: done,
            result: QueryResult::GetRecord { record, .. },
            ..
        }) => {
            assert_eq!(done, id);
            assert_eq!(record, Some(new));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_get_that_found_nothing_asks_the_failed_contacts_again() {
    let mut n = node();
    let (lossy, empty) = (contact(0x80), contact(0x40));
    admit(&mut n, lossy, at(0));
    admit(&mut n, empty, at(0));
    let record = signed(1, b"v");
    let key = *record.key();
    n.get(at(1), key);
    let sent = transmits(&mut n);
    n.handle_failure(at(1), to(&sent, lossy).expect("asked").id);
    let none = Response::Value {
        record: None,
        closer: vec![],
    };
    n.handle_response(at(1), to(&sent, empty).expect("asked").id, empty, none);
    assert!(n.poll_event().is_none(), "not over yet");
    let retry = transmits(&mut n);
    let again = to(&retry, lossy).expect("asked once more");
    let found = Response::Value {
        record: Some(record.clone()),
        closer: vec![],
    };
    n.handle_response(at(1), again.id, lossy, found);
    assert!(matches!(
        n.poll_event(),
        Some(Event::QueryFinished {
            result: QueryResult::GetRecord {
                record: Some(_),
                ..
            },
            ..
        })
    ));
}
