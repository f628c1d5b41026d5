//! The PeerJS wire protocol, end to end over real WebSockets.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use pqnode_peerjs::{PeerJsConfig, PeerJsServer, ShutdownOutcome, router};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Long enough for any event on a loaded machine; tests wait for events, not durations.
const PATIENCE: Duration = Duration::from_secs(10);

struct TestServer {
    addr: SocketAddr,
    server: PeerJsServer,
}

async fn start(config: PeerJsConfig) -> TestServer {
    let server = PeerJsServer::new(config);
    let app = router(server.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    TestServer { addr, server }
}

fn quick() -> PeerJsConfig {
    PeerJsConfig {
        expire_timeout: Duration::from_millis(200),
        ..PeerJsConfig::default()
    }
}

struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl TestServer {
    async fn connect_query(&self, query: &str) -> Client {
        let url = format!("ws://{}/p2p-signaling/peerjs?{query}", self.addr);
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        Client { ws }
    }

    async fn connect(&self, id: &str, token: &str) -> Client {
        self.connect_query(&format!("key=peerjs&id={id}&token={token}&version=1.5.5"))
            .await
    }

    /// A client that has received its OPEN.
    async fn open(&self, id: &str) -> Client {
        let mut client = self.connect(id, &format!("tok-{id}")).await;
        assert_eq!(client.recv().await, json!({"type": "OPEN"}));
        client
    }
}

impl Client {
    async fn send(&mut self, value: Value) {
        self.ws
            .send(Message::text(value.to_string()))
            .await
            .unwrap();
    }

    async fn send_raw(&mut self, message: Message) {
        self.ws.send(message).await.unwrap();
    }

    /// The next JSON message; panics on close or silence.
    async fn recv(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .expect("a message in time")
                .expect("the socket is open")
                .expect("a readable frame");
            match message {
                Message::Text(text) => return serde_json::from_str(&text).unwrap(),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("expected a JSON message, got {other:?}"),
            }
        }
    }

    /// Reads until the server closes; returns the close code, if any.
    async fn closed(&mut self) -> Option<CloseCode> {
        loop {
            let next = tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .expect("the close in time");
            match next {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| f.code),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// True if nothing arrives within a short while (used only to check that
    /// something that should not be sent was not sent, after a later marker).
    async fn nothing_pending(&mut self) -> bool {
        tokio::time::timeout(Duration::from_millis(100), self.ws.next())
            .await
            .is_err()
    }
}

#[tokio::test]
async fn relays_with_src_stamped_by_the_server() {
    let t = start(quick()).await;
    let mut alice = t.open("alice").await;
    let mut bob = t.open("bob").await;
    let payload = json!({"sdp": {"type": "offer", "sdp": "v=0"}, "connectionId": "dc_1"});
    alice
        .send(json!({"type": "OFFER", "src": "mallory", "dst": "bob", "payload": payload}))
        .await;
    assert_eq!(
        bob.recv().await,
        json!({"type": "OFFER", "src": "alice", "dst": "bob", "payload": payload})
    );
    for kind in ["ANSWER", "CANDIDATE", "LEAVE", "EXPIRE"] {
        bob.send(json!({"type": kind, "dst": "alice", "payload": {"n": kind}}))
            .await;
        let got = alice.recv().await;
        assert_eq!(got["type"], kind);
        assert_eq!(got["src"], "bob");
        assert_eq!(got["payload"]["n"], kind);
    }
    assert_eq!(t.server.stats().relayed_total, 5);
    assert_eq!(t.server.stats().peers, 2);
}

#[tokio::test]
async fn live_id_with_other_token_is_taken_same_token_takes_over() {
    let t = start(quick()).await;
    let mut first = t.connect("alice", "secret").await;
    assert_eq!(first.recv().await, json!({"type": "OPEN"}));

    let mut intruder = t.connect("alice", "guess").await;
    assert_eq!(
        intruder.recv().await,
        json!({"type": "ID-TAKEN", "payload": {"msg": "ID is taken"}})
    );
    intruder.closed().await;

    // Same token: silent takeover, no OPEN, and the old socket is let go.
    let mut second = t.connect("alice", "secret").await;
    assert_eq!(first.closed().await, Some(CloseCode::Library(4009)));
    let mut bob = t.open("bob").await;
    bob.send(json!({"type": "OFFER", "dst": "alice", "payload": {}}))
        .await;
    let got = second.recv().await;
    assert_eq!(got["type"], "OFFER", "no OPEN before the relayed message");
    assert_eq!(t.server.stats().id_taken_total, 1);
    assert_eq!(t.server.stats().peers, 2);
}

#[tokio::test]
async fn bad_parameters_get_the_reference_errors() {
    let t = start(quick()).await;
    let cases = [
        (
            "id=a&token=t",
            "No id, token, or key supplied to websocket server",
        ),
        (
            "key=peerjs&token=t",
            "No id, token, or key supplied to websocket server",
        ),
        (
            "key=peerjs&id=a&token=",
            "No id, token, or key supplied to websocket server",
        ),
        ("key=nope&id=a&token=t", "Invalid key provided"),
    ];
    for (query, msg) in cases {
        let mut client = t.connect_query(query).await;
        assert_eq!(
            client.recv().await,
            json!({"type": "ERROR", "payload": {"msg": msg}}),
            "{query}"
        );
        client.closed().await;
    }
    let long = "x".repeat(300);
    let mut client = t.connect(&long, "t").await;
    assert_eq!(client.recv().await["type"], "ERROR");
    assert_eq!(t.server.stats().peers, 0);
    assert_eq!(t.server.stats().rejected_total, 5);
}

#[tokio::test]
async fn undeliverable_messages_expire_once_per_pair() {
    let t = start(quick()).await;
    let mut alice = t.open("alice").await;
    alice
        .send(json!({"type": "OFFER", "dst": "nobody", "payload": {}}))
        .await;
    alice
        .send(json!({"type": "CANDIDATE", "dst": "nobody", "payload": {}}))
        .await;
    assert_eq!(
        alice.recv().await,
        json!({"type": "EXPIRE", "src": "nobody", "dst": "alice"})
    );
    // A marker proves the connection is still in order and no second EXPIRE came first.
    let mut bob = t.open("bob").await;
    bob.send(json!({"type": "ANSWER", "dst": "alice"})).await;
    assert_eq!(alice.recv().await["type"], "ANSWER");
    assert!(alice.nothing_pending().await);
    let stats = t.server.stats();
    assert_eq!((stats.expired_total, stats.queued_messages), (2, 0));
}

#[tokio::test]
async fn queued_messages_reach_a_peer_that_connects_in_time() {
    let t = start(PeerJsConfig {
        expire_timeout: Duration::from_secs(30),
        ..PeerJsConfig::default()
    })
    .await;
    let mut alice = t.open("alice").await;
    alice
        .send(json!({"type": "OFFER", "dst": "bob", "payload": {"n": 1}}))
        .await;
    alice
        .send(json!({"type": "CANDIDATE", "dst": "bob", "payload": {"n": 2}}))
        .await;
    // LEAVE for an absent peer is not kept (reference behaviour).
    alice.send(json!({"type": "LEAVE", "dst": "bob"})).await;
    alice.send(json!({"type": "HEARTBEAT"})).await;
    tokio::time::timeout(PATIENCE, async {
        while t.server.stats().queued_messages < 2 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("both messages queued");
    let mut bob = t.open("bob").await;
    assert_eq!(bob.recv().await["payload"]["n"], 1);
    assert_eq!(bob.recv().await["payload"]["n"], 2);
    alice.send(json!({"type": "ANSWER", "dst": "bob"})).await;
    assert_eq!(bob.recv().await["type"], "ANSWER");
}

#[tokio::test]
async fn junk_is_ignored_and_the_connection_survives() {
    let t = start(quick()).await;
    let mut alice = t.open("alice").await;
    let mut bob = t.open("bob").await;
    for junk in [
        "not json",
        "[1,2,3]",
        "42",
        "null",
        r#"{"type":"OPEN","dst":"bob"}"#,
        r#"{"type":"OFFER","dst":7}"#,
        r#"{"type":"OFFER"}"#,
        "{\"type\":\"OFFER\",\"dst\":\"bob\"",
    ] {
        alice.send_raw(Message::text(junk)).await;
    }
    alice
        .send_raw(Message::binary(vec![0xff, 0xfe, 0x00]))
        .await;
    alice
        .send_raw(Message::binary(
            br#"{"type":"OFFER","dst":"bob","payload":{"bin":true}}"#.to_vec(),
        ))
        .await;
    assert_eq!(bob.recv().await["payload"]["bin"], true);
    assert!(t.server.stats().ignored_total >= 7);
    assert_eq!(t.server.stats().peers, 2);
}

#[tokio::test]
async fn messages_up_to_the_cap_are_relayed_whole() {
    let t = start(quick()).await;
    let mut alice = t.open("alice").await;
    let mut bob = t.open("bob").await;
    let sdp = "a".repeat(60 * 1024);
    alice
        .send(json!({"type": "OFFER", "dst": "bob", "payload": {"sdp": sdp}}))
        .await;
    assert_eq!(bob.recv().await["payload"]["sdp"], sdp.as_str());
}

#[tokio::test]
async fn oversized_messages_close_with_1009() {
    let t = start(quick()).await;
    let mut alice = t.open("alice").await;
    let big = format!(
        r#"{{"type":"OFFER","dst":"x","payload":"{}"}}"#,
        "a".repeat(70 * 1024)
    );
    alice.send_raw(Message::text(big)).await;
    assert_eq!(alice.closed().await, Some(CloseCode::Size));
    let mut again = t.open("alice").await;
    again.send(json!({"type": "HEARTBEAT"})).await;
    assert_eq!(t.server.stats().oversized_total, 1);
}

#[tokio::test]
async fn flooding_clients_are_closed_with_an_error() {
    let t = start(PeerJsConfig {
        rate_per_second: 1,
        rate_burst: 5,
        ..quick()
    })
    .await;
    let mut alice = t.open("alice").await;
    for _ in 0..10 {
        alice.send(json!({"type": "HEARTBEAT"})).await;
    }
    assert_eq!(
        alice.recv().await,
        json!({"type": "ERROR", "payload": {"msg": "Rate limit exceeded"}})
    );
    assert_eq!(alice.closed().await, Some(CloseCode::Library(4029)));
    assert_eq!(t.server.stats().rate_limited_total, 1);
}

#[tokio::test]
async fn a_client_that_keeps_flooding_still_receives_the_close_reason() {
    let t = start(PeerJsConfig {
        rate_per_second: 1,
        rate_burst: 5,
        ..quick()
    })
    .await;
    let mut alice = t.open("alice").await;
    // Far more than the server reads before it closes: unread bytes are
    // still in its socket when it does, which must not cost the client the
    // error and the close frame (a reset would discard them).
    let frame = json!({"type": "HEARTBEAT", "pad": "x".repeat(1024)}).to_string();
    for _ in 0..4000 {
        if alice.ws.feed(Message::text(frame.clone())).await.is_err() {
            break;
        }
    }
    let _ = alice.ws.flush().await;
    assert_eq!(
        alice.recv().await,
        json!({"type": "ERROR", "payload": {"msg": "Rate limit exceeded"}})
    );
    assert_eq!(alice.closed().await, Some(CloseCode::Library(4029)));
    assert_eq!(t.server.stats().rate_limited_total, 1);
}

#[tokio::test]
async fn silent_clients_are_dropped_and_their_id_freed() {
    let t = start(PeerJsConfig {
        alive_timeout: Duration::from_millis(300),
        ..quick()
    })
    .await;
    let mut alice = t.open("alice").await;
    assert!(alice.closed().await.is_some());
    // Another token may now take the id.
    let mut other = t.connect("alice", "new-token").await;
    assert_eq!(other.recv().await, json!({"type": "OPEN"}));
}

#[tokio::test]
async fn concurrent_limit_is_enforced() {
    let t = start(PeerJsConfig {
        concurrent_limit: 2,
        ..quick()
    })
    .await;
    let _a = t.open("a").await;
    let _b = t.open("b").await;
    let mut c = t.connect("c", "t").await;
    assert_eq!(
        c.recv().await,
        json!({"type": "ERROR", "payload": {"msg": "Server has reached its concurrent user limit"}})
    );
    assert!(matches!(
        t.server.health().status,
        pqnode_health::Status::Warn
    ));
}

#[tokio::test]
async fn shutdown_closes_everyone_with_1001_and_refuses_newcomers() {
    let t = start(quick()).await;
    let mut alice = t.open("alice").await;
    let mut bob = t.open("bob").await;
    assert!(t.server.health().is_ok());
    let outcome = t.server.shutdown(PATIENCE).await;
    assert_eq!(outcome, ShutdownOutcome::Clean);
    assert_eq!(alice.closed().await, Some(CloseCode::Away));
    assert_eq!(bob.closed().await, Some(CloseCode::Away));
    let stats = t.server.stats();
    assert_eq!((stats.connections, stats.peers), (0, 0));
    assert!(!t.server.health().is_ok());
    let url = format!(
        "ws://{}/p2p-signaling/peerjs?key=peerjs&id=c&token=t",
        t.addr
    );
    assert!(tokio_tungstenite::connect_async(url).await.is_err());
}

#[tokio::test]
async fn closing_a_socket_frees_its_id() {
    let t = start(quick()).await;
    let mut alice = t.open("alice").await;
    alice.ws.close(None).await.unwrap();
    drop(alice);
    let mut other = loop {
        let mut client = t.connect("alice", "another").await;
        match client.recv().await["type"].as_str() {
            Some("OPEN") => break client,
            // The server may not have seen the close yet.
            _ => tokio::task::yield_now().await,
        }
    };
    other.send(json!({"type": "HEARTBEAT"})).await;
    assert_eq!(t.server.stats().peers, 1);
}

#[tokio::test]
async fn rest_endpoints_answer_like_the_reference() {
    let t = start(quick()).await;
    let http = reqwest::Client::new();
    let response = http
        .get(format!(
            "http://{}/p2p-signaling/peerjs/id?ts=1&version=1.5.5",
            t.addr
        ))
        .header("Origin", "http://example.test")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "http://example.test"
    );
    let id = response.text().await.unwrap();
    assert_eq!(id.len(), 36);
    let peers = http
        .get(format!("http://{}/p2p-signaling/peerjs/peers", t.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(peers.status(), 401);

    let open = start(PeerJsConfig {
        allow_discovery: true,
        ..quick()
    })
    .await;
    let _alice = open.open("alice").await;
    let list: Vec<String> = http
        .get(format!("http://{}/p2p-signaling/peerjs/peers", open.addr))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list, ["alice"]);
}
