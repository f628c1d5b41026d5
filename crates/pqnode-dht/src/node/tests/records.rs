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
