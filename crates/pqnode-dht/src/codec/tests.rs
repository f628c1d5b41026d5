use std::time::Duration;

use pqnode_crypto::Identity;
use proptest::prelude::*;

use super::*;

fn contact(n: u8) -> Contact {
    Contact::new(
        NodeId::from_bytes([n; 20]),
        SocketAddr::from(([192, 0, 2, n], 4001)),
    )
}

#[test]
fn every_message_round_trips() {
    let me = Identity::from_seed(&[3; 32]).unwrap();
    let record = Record::sign(&me, b"presence", b"ws://x", 4, Duration::from_secs(600)).unwrap();
    let provider = ProviderRecord::sign(
        &me,
        NodeId::from_bytes([1; 20]),
        b"x",
        2,
        Duration::from_secs(60),
    )
    .unwrap();
    let v6: SocketAddr = "[2001:db8::1]:4001".parse().unwrap();
    let requests = [
        Request::Ping,
        Request::FindNode {
            target: NodeId::from_bytes([9; 20]),
        },
        Request::FindValue { key: *record.key() },
        Request::Store {
            record: record.clone(),
        },
        Request::AddProvider {
            provider: provider.clone(),
        },
        Request::GetProviders {
            key: NodeId::from_bytes([1; 20]),
        },
    ];
    for request in requests {
        assert_eq!(decode_request(&encode_request(&request)), Ok(request));
    }
    let responses = [
        Response::Pong { observed: v6 },
        Response::Nodes {
            closer: (0..20).map(contact).collect(),
        },
        Response::Value {
            record: Some(record),
            closer: vec![],
        },
        Response::Value {
            record: None,
            closer: vec![contact(1), Contact::new(NodeId::from_bytes([2; 20]), v6)],
        },
        Response::Stored,
        Response::Providers {
            providers: vec![provider; 3],
            closer: vec![contact(5)],
        },
        Response::Rejected {
            reason: "stale".into(),
        },
    ];
    for response in responses {
        assert_eq!(decode_response(&encode_response(&response)), Ok(response));
    }
}

#[test]
fn a_records_expiry_travels_with_it_and_an_absent_one_stays_absent() {
    let me = Identity::from_seed(&[3; 32]).unwrap();
    let record = Record::sign(&me, b"n", b"v", 1, Duration::from_secs(600)).unwrap();
    for expiry in [None, Some(1_700_000_000_123)] {
        let request = Request::Store {
            record: record.clone().with_expiry(expiry),
        };
        let Ok(Request::Store { record: decoded }) = decode_request(&encode_request(&request))
        else {
            panic!("a store request");
        };
        assert_eq!(decoded.expires_unix_ms(), expiry);
        decoded
            .verify()
            .expect("the expiry is not signed: the signature still holds");
    }
}

#[test]
fn caps_and_lengths_are_enforced() {
    assert_eq!(
        decode_request(&vec![0; MAX_MESSAGE_LEN + 1]),
        Err(CodecError::TooLong(MAX_MESSAGE_LEN + 1))
    );
    assert_eq!(decode_request(&[]), Err(CodecError::Missing("request")));
    let short_id = proto::Request {
        kind: Some(proto::request::Kind::FindNode(proto::FindNode {
            target: vec![0; 19],
        })),
    };
    assert_eq!(
        decode_request(&short_id.encode_to_vec()),
        Err(CodecError::BadLength("target"))
    );
    let too_many = proto::Response {
        kind: Some(proto::response::Kind::Nodes(proto::Nodes {
            closer: (0..=MAX_CONTACTS as u8)
                .map(|n| contact_to_wire(&contact(n)))
                .collect(),
        })),
    };
    assert_eq!(
        decode_response(&too_many.encode_to_vec()),
        Err(CodecError::TooMany("contacts"))
    );
    let bad_ip = proto::Response {
        kind: Some(proto::response::Kind::Nodes(proto::Nodes {
            closer: vec![proto::Contact {
                id: vec![0; 20],
                ip: vec![1, 2, 3],
                port: 1,
            }],
        })),
    };
    assert_eq!(
        decode_response(&bad_ip.encode_to_vec()),
        Err(CodecError::BadLength("ip"))
    );
    let bad_port = proto::Response {
        kind: Some(proto::response::Kind::Nodes(proto::Nodes {
            closer: vec![proto::Contact {
                id: vec![0; 20],
                ip: vec![1, 2, 3, 4],
                port: 70_000,
            }],
        })),
    };
    assert_eq!(
        decode_response(&bad_port.encode_to_vec()),
        Err(CodecError::BadLength("port"))
    );
    let long_value = proto::Request {
        kind: Some(proto::request::Kind::Store(proto::Store {
            record: Some(proto::Record {
                key: vec![0; 20],
                value: vec![0; crate::MAX_VALUE_LEN + 1],
                ttl_secs: 60,
                ..Default::default()
            }),
        })),
    };
    assert!(matches!(
        decode_request(&long_value.encode_to_vec()),
        Err(CodecError::Record(RecordError::ValueTooLong(_)))
    ));
    // A rejection reason is cut to the cap on a character boundary.
    let reason = "é".repeat(MAX_REASON_LEN);
    let Ok(Response::Rejected { reason: cut }) =
        decode_response(&encode_response(&Response::Rejected { reason }))
    else {
        panic!("rejection did not round-trip");
    };
    assert!(cut.len() <= MAX_REASON_LEN && cut.chars().all(|c| c == 'é'));
}

#[test]
fn table_snapshots_round_trip_and_check_their_version() {
    let contacts: Vec<Contact> = (0..30).map(contact).collect();
    assert_eq!(decode_table(&encode_table(&contacts)), Ok(contacts));
    let future = proto::RoutingTableSnapshot {
        version: 2,
        contacts: vec![],
    };
    assert_eq!(
        decode_table(&future.encode_to_vec()),
        Err(CodecError::Version(2))
    );
}

proptest! {
    #[test]
    fn decoders_never_panic_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = decode_request(&bytes);
        let _ = decode_response(&bytes);
        let _ = decode_table(&bytes);
        let _ = decode_store(&bytes);
    }

    #[test]
    fn decoders_never_panic_on_mutated_messages(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let response = Response::Nodes { closer: (0..20).map(contact).collect() };
        let mut bytes = encode_response(&response);
        for (at, value) in flips {
            let len = bytes.len();
            if let Some(b) = bytes.get_mut(at % len) {
                *b = value;
            }
        }
        let _ = decode_response(&bytes);
        let _ = decode_request(&bytes);
    }

    #[test]
    fn contacts_round_trip(ids in proptest::collection::vec((any::<[u8; 20]>(), any::<[u8; 16]>(), any::<u16>(), any::<bool>()), 0..=MAX_CONTACTS)) {
        let closer: Vec<Contact> = ids.into_iter().map(|(id, ip, port, v4)| {
            let ip = if v4 { IpAddr::V4(Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3])) } else { IpAddr::V6(Ipv6Addr::from(ip)) };
            Contact::new(NodeId::from_bytes(id), SocketAddr::new(ip, port))
        }).collect();
        let response = Response::Nodes { closer };
        prop_assert_eq!(decode_response(&encode_response(&response)), Ok(response));
    }
}

#[test]
fn the_largest_response_fits() {
    let contacts: Vec<Contact> = (0..MAX_CONTACTS as u8)
        .map(|n| {
            let v6 = SocketAddr::new(
                std::net::IpAddr::V6(std::net::Ipv6Addr::new(
                    0x2001,
                    0xdb8,
                    0,
                    0,
                    0,
                    0,
                    0,
                    u16::from(n),
                )),
                u16::MAX,
            );
            Contact::new(NodeId::from_bytes([n; 20]), v6)
        })
        .collect();
    let me = Identity::from_seed(&[4; 32]).unwrap();
    let value = vec![0xa5; crate::MAX_VALIDATED_PROVIDER_VALUE_LEN];
    let providers: Vec<ProviderRecord> = (0..MAX_PROVIDERS as u64)
        .map(|seq| {
            let key = NodeId::from_bytes([1; 20]);
            ProviderRecord::sign(&me, key, &value, u64::MAX - seq, crate::MAX_TTL).unwrap()
        })
        .collect();
    let response = Response::Providers {
        providers,
        closer: contacts,
    };
    let bytes = encode_response(&response);
    assert!(bytes.len() <= MAX_MESSAGE_LEN, "{} bytes", bytes.len());
    assert_eq!(decode_response(&bytes), Ok(response));
}
