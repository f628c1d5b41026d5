//! A real server on 127.0.0.1:0 and real WebSocket clients for the tests.

#![allow(dead_code)] // each test binary uses a different part of this

use std::net::SocketAddr;
use std::time::Duration;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use futures_util::{SinkExt, StreamExt};
use pqnode_crypto::{Identity, NodeId};
use pqnode_signaling::{
    Algorithm, PeerId, REGISTER_DOMAIN, SignalingConfig, SignalingServer, registration_body,
    registration_message, router,
};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

/// Upper bound for any single wait; only hit when a test is about to fail.
pub(crate) const PATIENCE: Duration = Duration::from_secs(10);

pub(crate) struct TestServer {
    pub addr: SocketAddr,
    pub server: SignalingServer,
}

pub(crate) fn node_id(n: u8) -> NodeId {
    NodeId::from_bytes([n; 20])
}

pub(crate) async fn start(config: SignalingConfig) -> TestServer {
    start_server(SignalingServer::new(node_id(1), config)).await
}

pub(crate) async fn start_server(server: SignalingServer) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(server.clone());
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    TestServer { addr, server }
}

/// What a client read from the socket.
#[derive(Debug)]
pub(crate) enum Frame {
    Json(Value),
    Close(Option<u16>),
    /// The connection ended without a close frame.
    Ended,
}

pub(crate) struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub hello: Value,
}

impl Client {
    /// Connects and reads `hello`.
    pub(crate) async fn connect(addr: SocketAddr) -> Self {
        let mut client = Self::connect_raw(addr).await;
        let hello = client.recv().await;
        assert_eq!(hello["type"], "hello", "{hello}");
        client.hello = hello;
        client
    }

    /// Connects without reading anything.
    pub(crate) async fn connect_raw(addr: SocketAddr) -> Self {
        let (ws, _) = connect_async(format!("ws://{addr}/p2p-signaling"))
            .await
            .unwrap();
        Self {
            ws,
            hello: Value::Null,
        }
    }

    pub(crate) async fn send(&mut self, message: Value) {
        self.ws
            .send(Message::Text(message.to_string().into()))
            .await
            .unwrap();
    }

    pub(crate) async fn send_text(&mut self, text: impl Into<String>) {
        self.ws
            .send(Message::Text(text.into().into()))
            .await
            .unwrap();
    }

    pub(crate) async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.ws.send(Message::Binary(bytes.into())).await.unwrap();
    }

    /// The next frame that matters (Ping/Pong are answered and skipped).
    pub(crate) async fn next_frame(&mut self) -> Frame {
        loop {
            let next = tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .expect("no frame from the server in time");
            match next {
                Some(Ok(Message::Text(text))) => {
                    return Frame::Json(serde_json::from_str(text.as_str()).unwrap());
                }
                Some(Ok(Message::Close(frame))) => {
                    return Frame::Close(frame.map(|f| u16::from(f.code)));
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Binary(_))) => panic!("the server sent a binary frame"),
                Some(Err(_)) | None => return Frame::Ended,
            }
        }
    }

    /// The next JSON message; panics on anything else.
    pub(crate) async fn recv(&mut self) -> Value {
        match self.next_frame().await {
            Frame::Json(v) => v,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    /// Reads until the close frame and returns its code (skipping messages),
    /// then reads on so tungstenite sends its Close reply, as a browser would.
    pub(crate) async fn closed_with(&mut self) -> Option<u16> {
        loop {
            match self.next_frame().await {
                Frame::Json(_) => {}
                Frame::Close(code) => {
                    while !matches!(self.next_frame().await, Frame::Ended) {}
                    return code;
                }
                Frame::Ended => return None,
            }
        }
    }

    /// Expects an `error` with `code` next.
    pub(crate) async fn expect_error(&mut self, code: &str) -> Value {
        let msg = self.recv().await;
        assert_eq!(msg["type"], "error", "{msg}");
        assert_eq!(msg["code"], code, "{msg}");
        msg
    }

    /// Round trip that proves the connection still works.
    pub(crate) async fn ping(&mut self) {
        self.send(json!({"type": "ping", "id": "p"})).await;
        let pong = self.recv().await;
        assert_eq!(pong, json!({"type": "pong", "id": "p"}));
    }

    pub(crate) fn nonce(&self) -> String {
        self.hello["nonce"].as_str().unwrap().to_owned()
    }

    pub(crate) fn server_node(&self) -> NodeId {
        self.hello["node_id"].as_str().unwrap().parse().unwrap()
    }

    /// Drops the TCP connection without a close frame.
    pub(crate) fn drop_abruptly(self) {
        drop(self.ws);
    }

    /// Registers `key` and returns its peer id.
    pub(crate) async fn register(&mut self, key: &Key, topics: &[&str]) -> PeerId {
        let msg = key.register(self, now_ms(), json!({ "topics": topics }));
        self.send(msg).await;
        let reply = self.recv().await;
        assert_eq!(reply["type"], "registered", "{reply}");
        assert_eq!(reply["peer_id"], key.peer_id().to_hex());
        key.peer_id()
    }
}

pub(crate) fn now_ms() -> u64 {
    pqnode_clock::now_unix_ms()
}

/// A client key of either algorithm.
pub(crate) enum Key {
    Ed25519(Ed25519KeyPair),
    MlDsa87(Box<Identity>),
}

impl Key {
    pub(crate) fn ed25519() -> Self {
        Self::Ed25519(Ed25519KeyPair::generate().unwrap())
    }

    pub(crate) fn ml_dsa() -> Self {
        Self::MlDsa87(Box::new(Identity::generate().unwrap()))
    }

    pub(crate) fn algorithm(&self) -> Algorithm {
        match self {
            Self::Ed25519(_) => Algorithm::Ed25519,
            Self::MlDsa87(_) => Algorithm::MlDsa87,
        }
    }

    pub(crate) fn public_key(&self) -> Vec<u8> {
        match self {
            Self::Ed25519(k) => k.public_key().as_ref().to_vec(),
            Self::MlDsa87(id) => id.public_key().as_bytes().to_vec(),
        }
    }

    pub(crate) fn peer_id(&self) -> PeerId {
        PeerId::derive(self.algorithm(), &self.public_key())
    }

    /// Signs the documented registration bytes.
    pub(crate) fn sign(&self, node: &NodeId, nonce: &str, ts: u64) -> Vec<u8> {
        let peer = self.peer_id();
        match self {
            Self::Ed25519(k) => k
                .sign(&registration_message(node, nonce, &peer, ts))
                .as_ref()
                .to_vec(),
            Self::MlDsa87(id) => {
                let body = registration_body(node, nonce, &peer, ts);
                id.sign(REGISTER_DOMAIN, body.as_bytes())
                    .unwrap()
                    .as_bytes()
                    .to_vec()
            }
        }
    }

    /// The presence proof a registration of this key at `node` makes.
    pub(crate) fn proof(&self, node: NodeId, ts: u64) -> pqnode_signaling::PresenceProof {
        let nonce = "5a".repeat(32);
        pqnode_signaling::PresenceProof {
            algorithm: self.algorithm(),
            public_key: self.public_key(),
            peer_id: self.peer_id(),
            node_id: node,
            signature: self.sign(&node, &nonce, ts),
            nonce,
            ts_ms: ts,
        }
    }

    /// A valid `register` for `client`'s hello; `extra` fields are merged in
    /// (and may override the valid ones).
    pub(crate) fn register(&self, client: &Client, ts: u64, extra: Value) -> Value {
        let nonce = client.nonce();
        let sig = self.sign(&client.server_node(), &nonce, ts);
        let mut msg = json!({
            "type": "register",
            "id": "reg",
            "algorithm": self.algorithm().as_str(),
            "public_key": hex::encode(self.public_key()),
            "peer_id": self.peer_id().to_hex(),
            "nonce": nonce,
            "ts": ts,
            "signature": hex::encode(sig),
        });
        if let (Some(msg), Value::Object(extra)) = (msg.as_object_mut(), extra) {
            msg.extend(extra);
        }
        msg
    }
}

/// A test config with short timers.
pub(crate) fn quick_config() -> SignalingConfig {
    SignalingConfig {
        register_timeout: Duration::from_secs(5),
        heartbeat_interval: Duration::from_secs(5),
        ..SignalingConfig::default()
    }
}
