//! One client's conversation, from `hello` to cleanup.
//!
//! Each connection has two tasks: this reader, which handles the client's
//! messages one at a time (so a sender's messages keep their order), and a
//! writer that drains the connection's single outbound queue (so the
//! receiver sees them in that order). Nothing here ever waits on another
//! client: messages to other sessions use `try_send`, and a client that does
//! not read its own replies is disconnected rather than waited for.

use std::cell::Cell;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use futures_util::StreamExt;
use futures_util::stream::SplitStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::auth::{AuthError, Claim, Nonce, verify_registration};
use crate::connection::Ending;
use crate::protocol::{
    ErrorCode, Inbound, PeerRequest, RegisterRequest, Rejection, RelayRequest, RequestId,
    ServerMessage, WireLimits, close, encode, parse,
};
use crate::registry::{Claimant, Outbound, Outbox, SessionId};
use crate::server::Inner;
use crate::stats::Counters;
use pqnode_crypto::PeerId;
use pqnode_limits::TokenBucket;

enum Flow {
    Continue,
    Stop,
}

pub(crate) struct Session {
    inner: Arc<Inner>,
    id: SessionId,
    ip: Option<IpAddr>,
    outbox: Outbox,
    nonce: Nonce,
    nonce_hex: String,
    peer: Option<PeerId>,
    evict: CancellationToken,
    bucket: TokenBucket,
    refused_in_a_row: u32,
    failed_registrations: u32,
    last_seen: Instant,
    close_queued: Cell<bool>,
}

impl Session {
    /// Gives the outbox back when no nonce can be made.
    pub(crate) fn new(
        inner: Arc<Inner>,
        ip: Option<IpAddr>,
        outbox: Outbox,
    ) -> Result<Self, Outbox> {
        let Ok(nonce) = Nonce::generate() else {
            return Err(outbox);
        };
        let now = Instant::now();
        Ok(Self {
            id: inner.next_session(),
            bucket: TokenBucket::new(
                inner.config.session_rate.per_second,
                inner.config.session_rate.burst,
                now,
            ),
            nonce_hex: nonce.to_hex(),
            nonce,
            inner,
            ip,
            outbox,
            peer: None,
            evict: CancellationToken::new(),
            refused_in_a_row: 0,
            failed_registrations: 0,
            last_seen: now,
            close_queued: Cell::new(false),
        })
    }

    pub(crate) async fn run(
        mut self,
        stream: &mut SplitStream<WebSocket>,
        writer_gone: CancellationToken,
    ) -> Ending {
        let mut ending = Ending::Gone;
        let config = &self.inner.config;
        let heartbeat = config.heartbeat_interval.max(Duration::from_millis(10));
        let limits = WireLimits {
            max_message_bytes: config.max_message_bytes,
            max_topics_per_peer: config.max_topics_per_peer,
            max_peers_per_topic: config.max_peers_per_topic,
            max_topic_len: crate::config::MAX_TOPIC_LEN,
            max_sid_len: crate::config::MAX_SID_LEN,
            rate_per_second: config.session_rate.per_second,
            rate_burst: config.session_rate.burst,
        };
        let hello = encode(&ServerMessage::Hello {
            v: 1,
            node_id: self.inner.node_id,
            nonce: &self.nonce_hex,
            heartbeat_ms: millis(heartbeat),
            register_timeout_ms: millis(config.register_timeout),
            limits: &limits,
            ice_servers: &config.ice_servers,
        });
        let shutdown = self.inner.shutdown.clone();
        let evict = self.evict.clone();
        let register_deadline = tokio::time::sleep(config.register_timeout);
        tokio::pin!(register_deadline);
        let mut pings = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
        pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

        if let Flow::Continue = self.queue(Outbound::Text(hello)) {
            loop {
                tokio::select! {
                    biased;
                    () = shutdown.cancelled() => {
                        let reconnect_after_ms = millis(self.inner.config.reconnect_after);
                        self.queue(Outbound::Text(encode(&ServerMessage::Shutdown { reconnect_after_ms })));
                        self.queue(Outbound::Close(close::GOING_AWAY, "server shutdown"));
                        break;
                    }
                    // Replaced by a takeover: the new session already queued our goodbye.
                    () = evict.cancelled() => {
                        ending = Ending::ClosedByServer;
                        break;
                    }
                    () = writer_gone.cancelled() => break,
                    () = &mut register_deadline, if self.peer.is_none() => {
                        self.queue(Outbound::Close(close::REGISTER_TIMEOUT, "registration timeout"));
                        break;
                    }
                    _ = pings.tick() => {
                        if self.last_seen.elapsed() >= heartbeat * 2 {
                            self.queue(Outbound::Close(close::HEARTBEAT_TIMEOUT, "heartbeat timeout"));
                            break;
                        }
                        if let Flow::Stop = self.queue(Outbound::Ping) {
                            break;
                        }
                    }
                    frame = stream.next() => {
                        let Some(frame) = frame else { break };
                        let message = match frame {
                            Ok(message) => message,
                            Err(e) => {
                                ending = self.on_read_error(e);
                                break;
                            }
                        };
                        self.last_seen = Instant::now();
                        let flow = match message {
                            Message::Text(text) => self.on_text(text.as_str()).await,
                            Message::Binary(_) => self.on_binary(),
                            Message::Ping(_) | Message::Pong(_) => Flow::Continue,
                            Message::Close(_) => Flow::Stop,
                        };
                        if let Flow::Stop = flow {
                            break;
                        }
                    }
                }
            }
        }

        if let Some(peer) = self.peer.take() {
            self.inner.registry().unregister(&peer, self.id);
            tracing::debug!(%peer, "signaling peer left");
        }
        if ending == Ending::Gone && self.close_queued.get() {
            ending = Ending::ClosedByServer;
        }
        ending
    }

    /// Queues a frame for this client without waiting. A full queue means
    /// the client is not reading: it is dropped rather than waited for.
    fn queue(&self, item: Outbound) -> Flow {
        if let Outbound::Close(..) = item {
            self.close_queued.set(true);
        }
        match self.outbox.try_send(item) {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::Stop,
        }
    }

    fn send(&self, message: &ServerMessage<'_>) -> Flow {
        self.queue(Outbound::Text(encode(message)))
    }

    fn reject(&self, rejection: &Rejection) -> Flow {
        self.inner.counters.error(rejection.code);
        self.send(&ServerMessage::Error {
            id: rejection.id.as_ref(),
            code: rejection.code,
            message: &rejection.message,
        })
    }

    fn on_read_error(&self, error: axum::Error) -> Ending {
        let too_big = error
            .into_inner()
            .downcast_ref::<tungstenite::Error>()
            .is_some_and(|e| matches!(e, tungstenite::Error::Capacity(_)));
        if too_big {
            let limit = self.inner.config.max_message_bytes;
            self.reject(&Rejection::new(
                ErrorCode::TooLarge,
                format!("messages are limited to {limit} bytes"),
                None,
            ));
            self.queue(Outbound::Close(close::TOO_BIG, "message too big"));
            return Ending::Oversize;
        }
        Ending::Gone
    }

    /// Charges one message to the session's and the IP's buckets.
    fn admit_message(&mut self) -> Result<(), Flow> {
        let now = Instant::now();
        let allowed = self.bucket.try_take(now)
            && self
                .ip
                .is_none_or(|ip| self.inner.registry().take_ip_token(ip, now));
        if allowed {
            self.refused_in_a_row = 0;
            return Ok(());
        }
        Counters::bump(&self.inner.counters.rate_limited);
        self.refused_in_a_row += 1;
        let flow = self.reject(&Rejection::new(
            ErrorCode::RateLimited,
            "slow down: message dropped",
            None,
        ));
        if self.refused_in_a_row >= self.inner.config.session_rate.burst.max(1) {
            self.queue(Outbound::Close(close::RATE_LIMITED, "rate limit exceeded"));
            return Err(Flow::Stop);
        }
        Err(flow)
    }

    fn on_binary(&mut self) -> Flow {
        if let Err(flow) = self.admit_message() {
            return flow;
        }
        self.reject(&Rejection::new(
            ErrorCode::BinaryFrame,
            "binary frames are not part of the protocol; send JSON text",
            None,
        ))
    }

    async fn on_text(&mut self, text: &str) -> Flow {
        if let Err(flow) = self.admit_message() {
            return flow;
        }
        let request = match parse(text) {
            Ok(request) => request,
            Err(rejection) => return self.reject(&rejection),
        };
        let id = request.id;
        match request.body {
            Inbound::Ping => self.send(&ServerMessage::Pong { id: id.as_ref() }),
            Inbound::Register(_) if self.peer.is_some() => self.reject(&Rejection::new(
                ErrorCode::AlreadyRegistered,
                "this connection is already registered",
                id,
            )),
            Inbound::Register(register) => self.on_register(register, id),
            Inbound::Peer(request) => match self.peer {
                Some(peer) => self.on_peer_request(peer, request, id).await,
                None => self.reject(&Rejection::new(
                    ErrorCode::NotRegistered,
                    "register first",
                    id,
                )),
            },
        }
    }

    async fn on_peer_request(
        &mut self,
        peer: PeerId,
        request: PeerRequest<'_>,
        id: Option<RequestId>,
    ) -> Flow {
        match request {
            PeerRequest::Relay(relay) => self.on_relay(peer, relay, id).await,
            PeerRequest::Join(topic) => {
                let joined = self
                    .inner
                    .registry()
                    .join(&peer, self.id, &topic, &self.inner.config);
                match joined {
                    Ok(()) => self.send(&ServerMessage::Joined {
                        id: id.as_ref(),
                        topic: topic.as_str(),
                    }),
                    Err(code) => self.reject(&topic_rejection(code, topic.as_str(), id)),
                }
            }
            PeerRequest::Leave(topic) => {
                let left = self.inner.registry().leave(&peer, self.id, &topic);
                match left {
                    Ok(()) => self.send(&ServerMessage::Left {
                        id: id.as_ref(),
                        topic: topic.as_str(),
                    }),
                    Err(code) => self.reject(&topic_rejection(code, topic.as_str(), id)),
                }
            }
            PeerRequest::Discover(topic) => {
                let peers = self
                    .inner
                    .router
                    .discover(&self.inner.registry, &topic, &peer)
                    .await;
                self.send(&ServerMessage::Peers {
                    id: id.as_ref(),
                    topic: topic.as_str(),
                    peers: &peers,
                })
            }
            PeerRequest::Lookup(peer_id) => {
                let node_id = self
                    .inner
                    .router
                    .lookup(&self.inner.registry, peer_id)
                    .await;
                self.send(&ServerMessage::Peer {
                    id: id.as_ref(),
                    peer_id,
                    online: node_id.is_some(),
                    node_id,
                })
            }
        }
    }

    fn on_register(&mut self, request: RegisterRequest, id: Option<RequestId>) -> Flow {
        let claim = Claim {
            algorithm: request.algorithm,
            public_key: &request.public_key,
            peer_id: request.peer_id,
            nonce_hex: &request.nonce,
            ts_ms: request.ts,
            signature: &request.signature,
        };
        let now_ms = pqnode_clock::now_unix_ms();
        let skew = millis(self.inner.config.max_clock_skew);
        let verified = verify_registration(&self.inner.node_id, &self.nonce, &claim, now_ms, skew);
        let result = verified.map_err(auth_rejection).and_then(|()| {
            let claimant = Claimant {
                session: self.id,
                outbox: self.outbox.clone(),
                proof: Arc::new(claim.proof(self.inner.node_id)),
                evict: self.evict.clone(),
                topics: request.topics,
                takeover: request.takeover,
            };
            let registered =
                self.inner
                    .registry()
                    .register(request.peer_id, claimant, &self.inner.config);
            registered.map_err(|code| (code, register_message(code)))
        });
        match result {
            Ok(registration) => {
                let peer = request.peer_id;
                self.peer = Some(peer);
                if let Some(presence) = registration.presence {
                    self.inner
                        .router
                        .spawn_presence(&self.inner.tasks, peer, presence);
                }
                tracing::debug!(%peer, algorithm = request.algorithm.as_str(), "signaling peer registered");
                let topics: Vec<&str> = registration.topics.iter().map(|t| t.as_str()).collect();
                self.send(&ServerMessage::Registered {
                    id: id.as_ref(),
                    peer_id: peer,
                    topics,
                })
            }
            Err((code, message)) => {
                self.failed_registrations += 1;
                let flow = self.reject(&Rejection::new(code, message, id));
                if self.failed_registrations >= self.inner.config.max_register_attempts.max(1) {
                    self.queue(Outbound::Close(
                        close::POLICY,
                        "too many failed registrations",
                    ));
                    return Flow::Stop;
                }
                flow
            }
        }
    }

    async fn on_relay(
        &mut self,
        from: PeerId,
        relay: RelayRequest<'_>,
        id: Option<RequestId>,
    ) -> Flow {
        let to = relay.to;
        match self
            .inner
            .router
            .route(
                &self.inner.registry,
                from,
                relay.kind,
                to,
                relay.sid.as_deref(),
                relay.data,
            )
            .await
        {
            Ok(status) => self.send(&ServerMessage::Ack {
                id: id.as_ref(),
                to,
                status,
            }),
            Err(e) => self.reject(&Rejection::new(e.code, e.message, id)),
        }
    }
}

fn auth_rejection(error: AuthError) -> (ErrorCode, &'static str) {
    match error {
        AuthError::NonceMismatch => (
            ErrorCode::NonceMismatch,
            "the nonce is not this connection's nonce",
        ),
        AuthError::StaleTimestamp => (
            ErrorCode::StaleTimestamp,
            "ts is more than the allowed skew away from server time",
        ),
        AuthError::BadPeerId => (
            ErrorCode::BadPeerId,
            "peer_id is not derived from algorithm and public_key",
        ),
        AuthError::BadSignature => (ErrorCode::BadSignature, "the signature does not verify"),
    }
}

fn register_message(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::PeerIdTaken => "this peer id has a live session; set takeover to replace it",
        ErrorCode::TooManyTopics => "too many topics",
        ErrorCode::TopicFull => "a requested topic is full",
        _ => "registration refused",
    }
}

fn topic_rejection(code: ErrorCode, topic: &str, id: Option<RequestId>) -> Rejection {
    let message = match code {
        ErrorCode::TooManyTopics => "this peer is in too many topics".to_owned(),
        ErrorCode::TopicFull => format!("topic {topic:?} is full"),
        _ => "register first".to_owned(),
    };
    Rejection::new(code, message, id)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
