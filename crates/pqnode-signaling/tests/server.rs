//! The signaling server over real WebSockets on 127.0.0.1.

mod common;

use std::time::Duration;

use common::{Client, Frame, Key, PATIENCE, now_ms, quick_config, start};
use pqnode_signaling::{RateLimit, SignalingConfig, close};
use pqnode_testkit::eventually;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

// ---- registration ---------------------------------------------------------

#[tokio::test]
async fn hello_announces_nonce_node_limits_and_ice_servers() {
    let config = SignalingConfig {
        ice_servers: vec![pqnode_signaling::IceServer {
            urls: vec!["stun:stun.example.org:3478".into()],
            username: None,
            credential: None,
        }],
        ..quick_config()
    };
    let srv = start(config).await;
    let a = Client::connect(srv.addr).await;
    let b = Client::connect(srv.addr).await;
    assert_eq!(a.hello["v"], 1);
    assert_eq!(a.hello["node_id"], srv.server.node_id().to_hex());
    assert_eq!(a.nonce().len(), 64);
    assert_ne!(a.nonce(), b.nonce(), "every connection gets its own nonce");
    assert_eq!(a.hello["limits"]["max_message_bytes"], 65536);
    assert_eq!(
        a.hello["ice_servers"],
        json!([{"urls": ["stun:stun.example.org:3478"]}])
    );
}

#[tokio::test]
async fn registers_with_ed25519_and_with_ml_dsa_87() {
    let srv = start(quick_config()).await;
    let mut clients = Vec::new();
    for key in [Key::ed25519(), Key::ml_dsa()] {
        let mut client = Client::connect(srv.addr).await;
        let msg = key.register(&client, now_ms(), json!({"topics": ["lobby"]}));
        client.send(msg).await;
        let reply = client.recv().await;
        assert_eq!(
            reply,
            json!({"type": "registered", "id": "reg", "peer_id": key.peer_id().to_hex(), "topics": ["lobby"]})
        );
        clients.push(client);
    }
    assert_eq!(srv.server.stats().connected_peers, 2);
}

#[tokio::test]
async fn every_bad_registration_is_refused_and_can_be_retried() {
    let srv = start(quick_config()).await;
    let key = Key::ed25519();
    let other = Key::ed25519();
    let mut client = Client::connect(srv.addr).await;
    let node = client.server_node();
    let ts = now_ms();

    // A signature by another key over the right bytes.
    let forged = hex::encode(other.sign(&node, &client.nonce(), ts));
    client
        .send(key.register(&client, ts, json!({"signature": forged})))
        .await;
    let err = client.expect_error("BAD_SIGNATURE").await;
    assert_eq!(err["id"], "reg");

    // A nonce from another connection.
    let elsewhere = Client::connect(srv.addr).await;
    let msg = key.register(&elsewhere, ts, json!({}));
    client.send(msg).await;
    client.expect_error("NONCE_MISMATCH").await;

    // Signed two minutes ago.
    let stale = ts - 120_000;
    client.send(key.register(&client, stale, json!({}))).await;
    client.expect_error("STALE_TIMESTAMP").await;

    // Someone else's peer id with our key.
    let msg = key.register(&client, ts, json!({"peer_id": other.peer_id().to_hex()}));
    client.send(msg).await;
    client.expect_error("BAD_PEER_ID").await;

    // Requests other than register/ping need a registration.
    client
        .send(json!({"type": "join", "id": 9, "topic": "t"}))
        .await;
    assert_eq!(client.expect_error("NOT_REGISTERED").await["id"], 9);

    // Four failures so far: the fifth attempt succeeds on the same connection.
    client.register(&key, &[]).await;
    client
        .send(key.register(&client, now_ms(), json!({})))
        .await;
    client.expect_error("ALREADY_REGISTERED").await;
    let errors = srv.server.stats().errors;
    assert_eq!(errors.get("BAD_SIGNATURE"), Some(&1));
    assert_eq!(errors.get("STALE_TIMESTAMP"), Some(&1));
}

#[tokio::test]
async fn too_many_failed_registrations_close_with_1008() {
    let srv = start(quick_config()).await;
    let key = Key::ed25519();
    let mut client = Client::connect(srv.addr).await;
    for _ in 0..5 {
        client.send(key.register(&client, 0, json!({}))).await;
    }
    assert_eq!(client.closed_with().await, Some(close::POLICY));
}

#[tokio::test]
async fn no_registration_in_time_closes_with_4001() {
    let config = SignalingConfig {
        register_timeout: Duration::from_millis(200),
        ..quick_config()
    };
    let srv = start(config).await;
    let mut client = Client::connect(srv.addr).await;
    assert_eq!(client.hello["register_timeout_ms"], 200);
    assert_eq!(client.closed_with().await, Some(close::REGISTER_TIMEOUT));
    eventually(PATIENCE, "the slot is released", async || {
        srv.server.stats().connections == 0
    })
    .await;
}

#[tokio::test]
async fn a_live_id_is_taken_unless_its_key_holder_takes_it_over() {
    let srv = start(quick_config()).await;
    let key = Key::ml_dsa();
    let mut watcher = Client::connect(srv.addr).await;
    watcher.register(&Key::ed25519(), &["room"]).await;

    let mut old = Client::connect(srv.addr).await;
    let peer = old.register(&key, &["room"]).await;
    assert_eq!(watcher.recv().await["type"], "peer_joined");

    // Same key, no takeover flag: refused, the old session is untouched.
    let mut second = Client::connect(srv.addr).await;
    second
        .send(key.register(&second, now_ms(), json!({})))
        .await;
    second.expect_error("PEER_ID_TAKEN").await;
    old.ping().await;

    // A stranger asking for a takeover with its own key cannot name that id.
    let mut stranger = Client::connect(srv.addr).await;
    let msg = Key::ed25519().register(
        &stranger,
        now_ms(),
        json!({"peer_id": peer.to_hex(), "takeover": true}),
    );
    stranger.send(msg).await;
    stranger.expect_error("BAD_PEER_ID").await;
    old.ping().await;

    // The key holder (a reloaded tab) takes it over.
    let msg = key.register(
        &second,
        now_ms(),
        json!({"takeover": true, "topics": ["room"]}),
    );
    second.send(msg).await;
    assert_eq!(second.recv().await["type"], "registered");
    assert_eq!(old.recv().await, json!({"type": "session_replaced"}));
    assert_eq!(old.closed_with().await, Some(close::REPLACED));

    // Messages for the id now reach the new session.
    watcher
        .send(json!({"type": "offer", "id": 1, "to": peer.to_hex(), "data": {"sdp": "x"}}))
        .await;
    let mut acked = false;
    while !acked {
        let msg = watcher.recv().await;
        acked = msg["type"] == "ack";
    }
    loop {
        let msg = second.recv().await;
        if msg["type"] == "offer" {
            break;
        }
    }
    assert_eq!(srv.server.stats().connected_peers, 2);
}

// ---- malformed input ------------------------------------------------------

#[tokio::test]
async fn malformed_frames_get_errors_and_the_connection_survives() {
    let srv = start(quick_config()).await;
    let mut client = Client::connect(srv.addr).await;
    client.send_text("{not json").await;
    client.expect_error("BAD_JSON").await;
    client.send(json!({"type": "teleport", "id": "t1"})).await;
    assert_eq!(client.expect_error("UNKNOWN_TYPE").await["id"], "t1");
    client
        .send(json!({"type": "ping", "id": 2, "surprise": 1}))
        .await;
    assert_eq!(client.expect_error("SCHEMA").await["id"], 2);
    client.send_binary(vec![1, 2, 3]).await;
    client.expect_error("BINARY_FRAME").await;
    client.ping().await;
}

#[tokio::test]
async fn an_oversize_message_is_refused_with_1009() {
    let srv = start(quick_config()).await;
    let mut client = Client::connect(srv.addr).await;
    let padding = "x".repeat(70 * 1024);
    client.send(json!({"type": "ping", "id": padding})).await;
    match client.next_frame().await {
        Frame::Json(msg) => {
            assert_eq!(msg["code"], "TOO_LARGE", "{msg}");
            assert_eq!(client.closed_with().await, Some(close::TOO_BIG));
        }
        other => panic!("expected TOO_LARGE, got {other:?}"),
    }
}

#[tokio::test]
async fn the_rate_limit_drops_messages_then_closes_with_4029() {
    let config = SignalingConfig {
        // No refill, so the outcome does not depend on how fast this runs.
        session_rate: RateLimit {
            per_second: 0,
            burst: 5,
        },
        ..quick_config()
    };
    let srv = start(config).await;
    let mut client = Client::connect(srv.addr).await;
    for _ in 0..30 {
        client.send(json!({"type": "ping"})).await;
    }
    let (mut pongs, mut limited) = (0, 0);
    let code = loop {
        match client.next_frame().await {
            Frame::Json(msg) if msg["type"] == "pong" => pongs += 1,
            Frame::Json(msg) if msg["code"] == "RATE_LIMITED" => limited += 1,
            Frame::Json(msg) => panic!("unexpected {msg}"),
            Frame::Close(code) => break code,
            Frame::Ended => break None,
        }
    };
    // The burst passes; then five refusals in a row close.
    assert_eq!(pongs, 5);
    assert_eq!(limited, 5);
    assert_eq!(code, Some(close::RATE_LIMITED));
    assert!(srv.server.stats().rate_limited >= 5);
}

#[tokio::test]
async fn the_per_ip_rate_is_shared_by_all_connections_of_an_ip() {
    let config = SignalingConfig {
        ip_rate: RateLimit {
            per_second: 0,
            burst: 4,
        },
        ..quick_config()
    };
    let srv = start(config).await;
    let mut a = Client::connect(srv.addr).await;
    let mut b = Client::connect(srv.addr).await;
    a.ping().await;
    a.ping().await;
    b.ping().await;
    b.ping().await;
    b.send(json!({"type": "ping"})).await;
    b.expect_error("RATE_LIMITED").await;
}

#[tokio::test]
async fn connection_caps_refuse_with_1013() {
    let config = SignalingConfig {
        max_connections_per_ip: 2,
        ..quick_config()
    };
    let srv = start(config).await;
    let _a = Client::connect(srv.addr).await;
    let mut b = Client::connect(srv.addr).await;
    let mut c = Client::connect_raw(srv.addr).await;
    c.expect_error("SERVER_FULL").await;
    assert_eq!(c.closed_with().await, Some(close::TRY_AGAIN_LATER));
    b.ping().await;
    assert_eq!(srv.server.stats().connections, 2);
}

// ---- liveness -------------------------------------------------------------

#[tokio::test]
async fn a_client_that_never_answers_pings_is_removed() {
    let config = SignalingConfig {
        heartbeat_interval: Duration::from_millis(100),
        ..quick_config()
    };
    let srv = start(config).await;
    let mut silent = Client::connect(srv.addr).await;
    silent.register(&Key::ed25519(), &["t"]).await;
    // Not reading means tungstenite sends no Pong: the server must give up on us.
    eventually(PATIENCE, "the silent peer is removed", async || {
        let stats = srv.server.stats();
        stats.connected_peers == 0 && stats.connections == 0
    })
    .await;
}

#[tokio::test]
async fn a_silent_connection_is_closed_with_4008() {
    let config = SignalingConfig {
        heartbeat_interval: Duration::from_millis(100),
        ..quick_config()
    };
    let srv = start(config).await;
    // A raw client that never writes after the handshake, so not even an
    // automatic Pong can reach the server (or reset the closed socket).
    let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
    tcp.write_all(
        b"GET /p2p-signaling HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
          Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
          Sec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    let mut received = Vec::new();
    tokio::time::timeout(common::PATIENCE, tcp.read_to_end(&mut received))
        .await
        .unwrap()
        .unwrap();
    // An unmasked server Close frame: FIN|Close, payload length, then 4008 (0x0FA8).
    let payload_len = 2 + "heartbeat timeout".len() as u8;
    let close_4008 = [0x88, payload_len, 0x0f, 0xa8];
    let with_reason = received.windows(4).any(|w| w == close_4008);
    assert!(
        with_reason,
        "no 4008 close frame in {} bytes",
        received.len()
    );
}

#[tokio::test]
async fn a_client_that_answers_pings_stays_connected() {
    let config = SignalingConfig {
        heartbeat_interval: Duration::from_millis(200),
        ..quick_config()
    };
    let srv = start(config).await;
    let mut client = Client::connect(srv.addr).await;
    client.register(&Key::ed25519(), &[]).await;
    // Talking (any frame is a sign of life) through several heartbeat intervals.
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        client.ping().await;
    }
    assert_eq!(srv.server.stats().connected_peers, 1);
}

#[tokio::test]
async fn an_abrupt_tcp_close_removes_the_peer_and_tells_its_topics() {
    let srv = start(quick_config()).await;
    let mut stays = Client::connect(srv.addr).await;
    stays.register(&Key::ed25519(), &["room"]).await;
    let mut goes = Client::connect(srv.addr).await;
    let gone = goes.register(&Key::ml_dsa(), &["room"]).await;
    let joined = stays.recv().await;
    assert_eq!(
        joined,
        json!({"type": "peer_joined", "topic": "room", "peer_id": gone.to_hex()})
    );

    goes.drop_abruptly();
    let left = stays.recv().await;
    assert_eq!(
        left,
        json!({"type": "peer_left", "topic": "room", "peer_id": gone.to_hex()})
    );
    stays
        .send(json!({"type": "lookup", "id": 1, "peer_id": gone.to_hex()}))
        .await;
    let reply = stays.recv().await;
    assert_eq!(
        reply,
        json!({"type": "peer", "id": 1, "peer_id": gone.to_hex(), "online": false})
    );
    eventually(PATIENCE, "the connection is released", async || {
        srv.server.stats().connections == 1
    })
    .await;
}

// ---- relay ----------------------------------------------------------------

#[tokio::test]
async fn relay_stamps_from_keeps_order_and_acknowledges() {
    let srv = start(quick_config()).await;
    let mut alice = Client::connect(srv.addr).await;
    let a = alice.register(&Key::ed25519(), &[]).await;
    let mut bob = Client::connect(srv.addr).await;
    let b = bob.register(&Key::ml_dsa(), &[]).await;

    let sdp = json!({"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"});
    alice
        .send(json!({"type": "offer", "id": 1, "to": b.to_hex(), "sid": "dc1", "data": sdp}))
        .await;
    for i in 0..80 {
        let candidate = json!({"candidate": format!("candidate:{i} 1 udp 1 127.0.0.1 {} typ host", 1000 + i), "sdpMid": "0"});
        alice
            .send(json!({"type": "candidate", "id": i + 2, "to": b.to_hex(), "data": candidate}))
            .await;
    }
    alice
        .send(json!({"type": "candidate", "id": 82, "to": b.to_hex(), "data": null}))
        .await;

    let offer = bob.recv().await;
    assert_eq!(
        offer,
        json!({"type": "offer", "from": a.to_hex(), "to": b.to_hex(), "sid": "dc1", "data": sdp})
    );
    for i in 0..80 {
        let msg = bob.recv().await;
        assert_eq!(msg["type"], "candidate");
        assert_eq!(msg["from"], a.to_hex());
        assert_eq!(
            msg["data"]["candidate"],
            format!("candidate:{i} 1 udp 1 127.0.0.1 {} typ host", 1000 + i)
        );
    }
    assert_eq!(bob.recv().await["data"], json!(null));
    for id in 1..=82 {
        let ack = alice.recv().await;
        assert_eq!(
            ack,
            json!({"type": "ack", "id": id, "to": b.to_hex(), "status": "delivered"})
        );
    }

    bob.send(json!({"type": "answer", "id": "x", "to": a.to_hex(), "data": {"type": "answer", "sdp": "v=0"}}))
        .await;
    assert_eq!(bob.recv().await["status"], "delivered");
    let answer = alice.recv().await;
    assert_eq!(answer["from"], b.to_hex());
    bob.send(json!({"type": "bye", "to": a.to_hex(), "data": null}))
        .await;
    assert_eq!(alice.recv().await["type"], "bye");
    assert_eq!(srv.server.stats().messages_relayed, 84);
}

#[tokio::test]
async fn relay_to_an_unknown_peer_is_peer_not_found_and_from_cannot_be_forged() {
    let srv = start(quick_config()).await;
    let mut alice = Client::connect(srv.addr).await;
    let a = alice.register(&Key::ed25519(), &[]).await;
    let nobody = Key::ed25519().peer_id();
    alice
        .send(json!({"type": "offer", "id": 5, "to": nobody.to_hex(), "data": {}}))
        .await;
    let err = alice.expect_error("PEER_NOT_FOUND").await;
    assert_eq!(err["id"], 5);
    alice
        .send(json!({"type": "offer", "id": 6, "to": a.to_hex(), "from": nobody.to_hex(), "data": {}}))
        .await;
    alice.expect_error("SCHEMA").await;
}

// ---- discovery ------------------------------------------------------------

#[tokio::test]
async fn topics_join_leave_discover_and_lookup() {
    let srv = start(quick_config()).await;
    let mut alice = Client::connect(srv.addr).await;
    let a = alice.register(&Key::ed25519(), &[]).await;
    let mut bob = Client::connect(srv.addr).await;
    let b = bob.register(&Key::ed25519(), &[]).await;
    let node = srv.server.node_id().to_hex();

    alice
        .send(json!({"type": "join", "id": 1, "topic": "lobby"}))
        .await;
    assert_eq!(
        alice.recv().await,
        json!({"type": "joined", "id": 1, "topic": "lobby"})
    );
    bob.send(json!({"type": "join", "id": 2, "topic": "lobby"}))
        .await;
    assert_eq!(bob.recv().await["type"], "joined");
    assert_eq!(
        alice.recv().await,
        json!({"type": "peer_joined", "topic": "lobby", "peer_id": b.to_hex()})
    );

    bob.send(json!({"type": "discover", "id": 3, "topic": "lobby"}))
        .await;
    assert_eq!(
        bob.recv().await,
        json!({"type": "peers", "id": 3, "topic": "lobby", "peers": [{"peer_id": a.to_hex(), "node_id": node}]})
    );
    bob.send(json!({"type": "discover", "id": 4, "topic": "empty"}))
        .await;
    assert_eq!(bob.recv().await["peers"], json!([]));

    bob.send(json!({"type": "lookup", "id": 5, "peer_id": a.to_hex()}))
        .await;
    assert_eq!(
        bob.recv().await,
        json!({"type": "peer", "id": 5, "peer_id": a.to_hex(), "online": true, "node_id": node})
    );

    bob.send(json!({"type": "leave", "id": 6, "topic": "lobby"}))
        .await;
    assert_eq!(
        bob.recv().await,
        json!({"type": "left", "id": 6, "topic": "lobby"})
    );
    assert_eq!(
        alice.recv().await,
        json!({"type": "peer_left", "topic": "lobby", "peer_id": b.to_hex()})
    );
    alice
        .send(json!({"type": "discover", "id": 7, "topic": "lobby"}))
        .await;
    assert_eq!(alice.recv().await["peers"], json!([]));
}

#[tokio::test]
async fn topic_caps_are_enforced() {
    let config = SignalingConfig {
        max_topics_per_peer: 2,
        max_peers_per_topic: 1,
        ..quick_config()
    };
    let srv = start(config).await;
    let mut alice = Client::connect(srv.addr).await;
    alice.register(&Key::ed25519(), &["a", "b"]).await;
    alice
        .send(json!({"type": "join", "id": 1, "topic": "c"}))
        .await;
    alice.expect_error("TOO_MANY_TOPICS").await;
    let mut bob = Client::connect(srv.addr).await;
    bob.register(&Key::ed25519(), &[]).await;
    bob.send(json!({"type": "join", "id": 2, "topic": "a"}))
        .await;
    bob.expect_error("TOPIC_FULL").await;
}

// ---- shutdown, stats, health ----------------------------------------------

#[tokio::test]
async fn shutdown_tells_every_client_and_closes_with_1001() {
    let srv = start(quick_config()).await;
    let mut registered = Client::connect(srv.addr).await;
    registered.register(&Key::ed25519(), &["t"]).await;
    let mut anonymous = Client::connect(srv.addr).await;

    let server = srv.server.clone();
    let shutdown = tokio::spawn(async move { server.shutdown(Duration::from_secs(5)).await });
    for client in [&mut registered, &mut anonymous] {
        let msg = client.recv().await;
        assert_eq!(msg, json!({"type": "shutdown", "reconnect_after_ms": 5000}));
        assert_eq!(client.closed_with().await, Some(close::GOING_AWAY));
    }
    assert!(
        shutdown.await.unwrap(),
        "shutdown finished within its deadline"
    );
    let stats = srv.server.stats();
    assert_eq!((stats.connections, stats.connected_peers), (0, 0));
    assert_eq!(srv.server.health().status, pqnode_health::Status::Warn);

    let mut late = Client::connect_raw(srv.addr).await;
    late.expect_error("SHUTTING_DOWN").await;
    assert_eq!(late.closed_with().await, Some(close::GOING_AWAY));
}

#[tokio::test]
async fn stats_and_health_follow_the_connections() {
    let config = SignalingConfig {
        max_connections: 2,
        ..quick_config()
    };
    let srv = start(config).await;
    assert!(srv.server.health().is_ok());
    assert_eq!(srv.server.health().status, pqnode_health::Status::Pass);
    let mut a = Client::connect(srv.addr).await;
    a.register(&Key::ed25519(), &[]).await;
    let _b = Client::connect(srv.addr).await;
    let stats = srv.server.stats();
    assert_eq!(stats.connections, 2);
    assert_eq!(stats.connected_peers, 1);
    assert_eq!(stats.peers, 1);
    assert_eq!(srv.server.health().status, pqnode_health::Status::Warn);
    let listed = srv.server.local_peers();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].topics.is_empty());
    let json = serde_json::to_value(&stats).unwrap();
    for field in ["connections", "peers", "connectedPeers"] {
        assert!(json.get(field).is_some(), "{field} missing from {json}");
    }
}
