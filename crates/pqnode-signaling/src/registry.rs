//! Who is connected: sessions by peer id, topic membership, per-IP counts.
//!
//! One mutex guards it all. Critical sections are short (map operations and
//! non-blocking `try_send`s), never span an `.await`, and signaling rates are
//! low, so a single lock keeps the invariants simple: a peer id has at most
//! one owner, and a topic lists exactly the peers that list the topic.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::SignalingConfig;
use crate::presence::PresenceProof;
use crate::protocol::{ErrorCode, ServerMessage, Topic, encode};
use pqnode_crypto::PeerId;
use pqnode_limits::TokenBucket;

/// A registered local peer, as `/api/peers` lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerSummary {
    /// The peer, proven by its registration.
    pub peer_id: PeerId,
    /// Topics it joined, sorted.
    pub topics: Vec<String>,
}

/// Identifies one WebSocket connection for the server's lifetime.
pub(crate) type SessionId = u64;

/// What a session's writer task sends, in queue order.
#[derive(Debug)]
pub(crate) enum Outbound {
    Text(String),
    Ping,
    Close(u16, &'static str),
}

pub(crate) type Outbox = mpsc::Sender<Outbound>;

/// What a local peer wants published: its latest proof and its topics; `None` once it left.
pub(crate) type Presence = Option<Announce>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Announce {
    pub proof: Arc<PresenceProof>,
    pub topics: Vec<String>,
}

struct LocalPeer {
    session: SessionId,
    outbox: Outbox,
    /// What the peer signed to register here: other nodes' proof that it is.
    proof: Arc<PresenceProof>,
    evict: CancellationToken,
    topics: BTreeSet<Topic>,
    presence: watch::Sender<Presence>,
}

impl LocalPeer {
    fn presence(&self) -> Presence {
        Some(Announce {
            proof: Arc::clone(&self.proof),
            topics: self.topics.iter().map(|t| t.as_str().to_owned()).collect(),
        })
    }
}

struct IpState {
    connections: usize,
    bucket: TokenBucket,
}

/// A session asking to own a peer id.
pub(crate) struct Claimant {
    pub session: SessionId,
    pub outbox: Outbox,
    pub proof: Arc<PresenceProof>,
    pub evict: CancellationToken,
    pub topics: Vec<Topic>,
    pub takeover: bool,
}

/// A successful registration. When `presence` is set the peer is new on this
/// node and the caller starts a presence worker on it; after a takeover the
/// previous session's worker simply carries on.
pub(crate) struct Registration {
    pub topics: Vec<Topic>,
    pub presence: Option<watch::Receiver<Presence>>,
}

#[derive(Default)]
pub(crate) struct Registry {
    peers: HashMap<PeerId, LocalPeer>,
    topics: HashMap<Topic, BTreeSet<PeerId>>,
    ips: HashMap<IpAddr, IpState>,
    connections: usize,
}

/// The registry behind its one lock: what the server holds, and what the
/// [`Router`](crate::routing::Router) is handed to read local peers.
#[derive(Default)]
pub(crate) struct SharedRegistry(Mutex<Registry>);

impl SharedRegistry {
    /// The registry, locked; never hold it across an `.await`.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Registry> {
        // A panic while holding the lock cannot leave the maps half-updated in
        // a way that matters more than refusing all service would.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Registry {
    /// Counts a new connection, or refuses it when a cap is reached.
    pub(crate) fn admit(
        &mut self,
        ip: Option<IpAddr>,
        config: &SignalingConfig,
        now: Instant,
    ) -> bool {
        if self.connections >= config.max_connections {
            return false;
        }
        if let Some(ip) = ip {
            let state = self.ips.entry(ip).or_insert_with(|| IpState {
                connections: 0,
                bucket: TokenBucket::new(config.ip_rate.per_second, config.ip_rate.burst, now),
            });
            if state.connections >= config.max_connections_per_ip {
                return false;
            }
            state.connections += 1;
        }
        self.connections += 1;
        true
    }

    pub(crate) fn release(&mut self, ip: Option<IpAddr>) {
        self.connections = self.connections.saturating_sub(1);
        if let Some(ip) = ip
            && let Entry::Occupied(mut state) = self.ips.entry(ip)
        {
            state.get_mut().connections = state.get().connections.saturating_sub(1);
            if state.get().connections == 0 {
                state.remove();
            }
        }
    }

    /// Takes one token from the IP's shared bucket (true when allowed).
    pub(crate) fn take_ip_token(&mut self, ip: IpAddr, now: Instant) -> bool {
        self.ips
            .get_mut(&ip)
            .is_none_or(|state| state.bucket.try_take(now))
    }

    pub(crate) fn connections(&self) -> usize {
        self.connections
    }

    pub(crate) fn peer_count(&self) -> usize {
        self.peers.len()
    }

    pub(crate) fn is_local(&self, peer: &PeerId) -> bool {
        self.peers.contains_key(peer)
    }

    pub(crate) fn outbox(&self, peer: &PeerId) -> Option<Outbox> {
        self.peers.get(peer).map(|p| p.outbox.clone())
    }

    /// The registration `peer` signed here, if it is attached here.
    pub(crate) fn proof(&self, peer: &PeerId) -> Option<Arc<PresenceProof>> {
        self.peers.get(peer).map(|p| p.proof.clone())
    }

    fn owns(&self, peer: &PeerId, session: SessionId) -> bool {
        self.peers.get(peer).is_some_and(|p| p.session == session)
    }

    /// Gives `peer` to `claimant`, taking it from a live session only on a takeover.
    pub(crate) fn register(
        &mut self,
        peer: PeerId,
        claimant: Claimant,
        config: &SignalingConfig,
    ) -> Result<Registration, ErrorCode> {
        let previous = self.peers.get(&peer);
        if previous.is_some() && !claimant.takeover {
            return Err(ErrorCode::PeerIdTaken);
        }
        let topics: BTreeSet<Topic> = claimant.topics.into_iter().collect();
        if topics.len() > config.max_topics_per_peer {
            return Err(ErrorCode::TooManyTopics);
        }
        for topic in &topics {
            let members = self.topics.get(topic);
            let mut count = members.map_or(0, BTreeSet::len);
            if members.is_some_and(|m| m.contains(&peer)) {
                count -= 1; // the session being replaced frees its place
            }
            if count >= config.max_peers_per_topic {
                return Err(ErrorCode::TopicFull);
            }
        }

        let (presence, worker) = match self.peers.remove(&peer) {
            Some(old) => {
                self.drop_memberships(&peer, &old.topics);
                let _ = old
                    .outbox
                    .try_send(Outbound::Text(encode(&ServerMessage::SessionReplaced)));
                let _ = old.outbox.try_send(Outbound::Close(
                    crate::protocol::close::REPLACED,
                    "session replaced",
                ));
                old.evict.cancel();
                (old.presence, None)
            }
            None => {
                let (tx, rx) = watch::channel(None);
                (tx, Some(rx))
            }
        };
        for topic in &topics {
            self.add_membership(&peer, topic);
        }
        let entry = LocalPeer {
            session: claimant.session,
            outbox: claimant.outbox,
            proof: claimant.proof,
            evict: claimant.evict,
            topics: topics.clone(),
            presence,
        };
        entry.presence.send_replace(entry.presence());
        self.peers.insert(peer, entry);
        Ok(Registration {
            topics: topics.into_iter().collect(),
            presence: worker,
        })
    }

    /// Removes `peer` if `session` still owns it; withdraws its presence.
    pub(crate) fn unregister(&mut self, peer: &PeerId, session: SessionId) {
        if !self.owns(peer, session) {
            return;
        }
        if let Some(old) = self.peers.remove(peer) {
            self.drop_memberships(peer, &old.topics);
            old.presence.send_replace(None);
        }
    }

    pub(crate) fn join(
        &mut self,
        peer: &PeerId,
        session: SessionId,
        topic: &Topic,
        config: &SignalingConfig,
    ) -> Result<(), ErrorCode> {
        let Some(entry) = self.peers.get(peer).filter(|p| p.session == session) else {
            return Err(ErrorCode::NotRegistered);
        };
        if entry.topics.contains(topic) {
            return Ok(());
        }
        if entry.topics.len() >= config.max_topics_per_peer {
            return Err(ErrorCode::TooManyTopics);
        }
        if self.topics.get(topic).map_or(0, BTreeSet::len) >= config.max_peers_per_topic {
            return Err(ErrorCode::TopicFull);
        }
        self.add_membership(peer, topic);
        if let Some(entry) = self.peers.get_mut(peer) {
            entry.topics.insert(topic.clone());
            entry.presence.send_replace(entry.presence());
        }
        Ok(())
    }

    pub(crate) fn leave(
        &mut self,
        peer: &PeerId,
        session: SessionId,
        topic: &Topic,
    ) -> Result<(), ErrorCode> {
        let Some(entry) = self.peers.get_mut(peer).filter(|p| p.session == session) else {
            return Err(ErrorCode::NotRegistered);
        };
        if entry.topics.remove(topic) {
            entry.presence.send_replace(entry.presence());
            self.drop_memberships(peer, &BTreeSet::from([topic.clone()]));
        }
        Ok(())
    }

    /// Every local peer and its topics, ordered by peer id.
    pub(crate) fn summaries(&self) -> Vec<PeerSummary> {
        let mut out: Vec<PeerSummary> = self
            .peers
            .iter()
            .map(|(peer_id, p)| PeerSummary {
                peer_id: *peer_id,
                topics: p.topics.iter().map(|t| t.as_str().to_owned()).collect(),
            })
            .collect();
        out.sort_by_key(|s| s.peer_id);
        out
    }

    /// Local members of `topic`, without `except`.
    pub(crate) fn members(&self, topic: &Topic, except: &PeerId) -> Vec<PeerId> {
        self.topics
            .get(topic)
            .map(|m| m.iter().filter(|p| *p != except).copied().collect())
            .unwrap_or_default()
    }

    fn add_membership(&mut self, peer: &PeerId, topic: &Topic) {
        let members = self.topics.entry(topic.clone()).or_default();
        let event = ServerMessage::PeerJoined {
            topic: topic.as_str(),
            peer_id: *peer,
        };
        notify(&self.peers, members, &event);
        members.insert(*peer);
    }

    fn drop_memberships(&mut self, peer: &PeerId, topics: &BTreeSet<Topic>) {
        for topic in topics {
            if let Entry::Occupied(mut members) = self.topics.entry(topic.clone()) {
                members.get_mut().remove(peer);
                if members.get().is_empty() {
                    members.remove();
                } else {
                    let event = ServerMessage::PeerLeft {
                        topic: topic.as_str(),
                        peer_id: *peer,
                    };
                    notify(&self.peers, members.get(), &event);
                }
            }
        }
    }
}

/// Best effort: an event is dropped for a member whose queue is full.
fn notify(
    peers: &HashMap<PeerId, LocalPeer>,
    members: &BTreeSet<PeerId>,
    event: &ServerMessage<'_>,
) {
    if members.is_empty() {
        return;
    }
    let text = encode(event);
    for member in members {
        if let Some(p) = peers.get(member) {
            let _ = p.outbox.try_send(Outbound::Text(text.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn topic(name: &str) -> Topic {
        Topic::try_from(name.to_owned()).unwrap()
    }

    struct Fixture {
        outbox: Outbox,
        queue: mpsc::Receiver<Outbound>,
        evict: CancellationToken,
    }

    fn session() -> Fixture {
        let (outbox, queue) = mpsc::channel(16);
        Fixture {
            outbox,
            queue,
            evict: CancellationToken::new(),
        }
    }

    fn claimant(id: SessionId, f: &Fixture, topics: &[&str], takeover: bool) -> Claimant {
        Claimant {
            session: id,
            outbox: f.outbox.clone(),
            proof: Arc::new(PresenceProof {
                algorithm: crate::Algorithm::Ed25519,
                public_key: Vec::new(),
                peer_id: PeerId::from_bytes([0; 20]),
                node_id: pqnode_crypto::NodeId::from_bytes([0; 20]),
                nonce: String::new(),
                // The session id stands for the registration time.
                ts_ms: id,
                signature: Vec::new(),
            }),
            evict: f.evict.clone(),
            topics: topics.iter().map(|t| topic(t)).collect(),
            takeover,
        }
    }

    fn texts(queue: &mut mpsc::Receiver<Outbound>) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(item) = queue.try_recv() {
            out.push(match item {
                Outbound::Text(t) => t,
                Outbound::Ping => "ping".into(),
                Outbound::Close(code, _) => format!("close {code}"),
            });
        }
        out
    }

    fn topics_of(presence: &watch::Receiver<Presence>) -> Option<Vec<String>> {
        presence.borrow().as_ref().map(|a| a.topics.clone())
    }

    #[test]
    fn presence_follows_topics_and_ends_with_the_peer() {
        let config = SignalingConfig::default();
        let mut registry = Registry::default();
        let peer = PeerId::from_bytes([1; 20]);
        let f = session();
        let registration = registry
            .register(peer, claimant(1, &f, &["a"], false), &config)
            .unwrap();
        let presence = registration.presence.unwrap();
        assert_eq!(topics_of(&presence), Some(vec!["a".to_owned()]));
        registry.join(&peer, 1, &topic("b"), &config).unwrap();
        assert_eq!(
            topics_of(&presence),
            Some(vec!["a".to_owned(), "b".to_owned()])
        );
        registry.leave(&peer, 1, &topic("a")).unwrap();
        assert_eq!(topics_of(&presence), Some(vec!["b".to_owned()]));
        // Another session cannot remove or change it.
        registry.unregister(&peer, 2);
        assert_eq!(
            registry.join(&peer, 2, &topic("c"), &config),
            Err(ErrorCode::NotRegistered)
        );
        assert!(registry.is_local(&peer));
        registry.unregister(&peer, 1);
        assert_eq!(*presence.borrow(), None);
        assert!(!registry.is_local(&peer));
        assert!(
            registry
                .members(&topic("b"), &PeerId::from_bytes([0; 20]))
                .is_empty()
        );
    }

    #[test]
    fn takeover_evicts_the_old_session_and_keeps_one_presence() {
        let config = SignalingConfig::default();
        let mut registry = Registry::default();
        let peer = PeerId::from_bytes([1; 20]);
        let mut old = session();
        let first = registry
            .register(peer, claimant(1, &old, &["a"], false), &config)
            .unwrap();
        let presence = first.presence.unwrap();

        let new = session();
        assert_eq!(
            registry
                .register(peer, claimant(2, &new, &["b"], false), &config)
                .err(),
            Some(ErrorCode::PeerIdTaken)
        );
        let second = registry
            .register(peer, claimant(2, &new, &["b"], true), &config)
            .unwrap();
        assert!(
            second.presence.is_none(),
            "the existing presence worker carries on"
        );
        assert_eq!(topics_of(&presence), Some(vec!["b".to_owned()]));
        assert!(
            presence
                .borrow()
                .as_ref()
                .is_some_and(|a| a.proof.ts_ms == 2),
            "the new registration's proof is published"
        );
        assert!(old.evict.is_cancelled());
        assert_eq!(
            texts(&mut old.queue),
            vec![
                r#"{"type":"session_replaced"}"#.to_owned(),
                "close 4009".to_owned()
            ]
        );
        // The old session's cleanup must not remove the new owner.
        registry.unregister(&peer, 1);
        assert!(registry.is_local(&peer));
        assert_eq!(
            registry.members(&topic("a"), &PeerId::from_bytes([0; 20])),
            vec![]
        );
        assert_eq!(
            registry.members(&topic("b"), &PeerId::from_bytes([0; 20])),
            vec![peer]
        );
    }

    #[test]
    fn members_hear_joins_and_leaves_but_not_their_own() {
        let config = SignalingConfig::default();
        let mut registry = Registry::default();
        let (a, b) = (PeerId::from_bytes([1; 20]), PeerId::from_bytes([2; 20]));
        let mut fa = session();
        let mut fb = session();
        registry
            .register(a, claimant(1, &fa, &["t"], false), &config)
            .unwrap();
        registry
            .register(b, claimant(2, &fb, &["t"], false), &config)
            .unwrap();
        registry.unregister(&b, 2);
        let heard = texts(&mut fa.queue);
        assert_eq!(heard.len(), 2);
        assert!(heard[0].contains("peer_joined") && heard[1].contains("peer_left"));
        assert!(texts(&mut fb.queue).is_empty());
    }

    #[test]
    fn connection_caps_count_per_ip_and_in_total() {
        let config = SignalingConfig {
            max_connections: 3,
            max_connections_per_ip: 2,
            ..SignalingConfig::default()
        };
        let now = Instant::now();
        let mut registry = Registry::default();
        let one = Some(IpAddr::from(Ipv4Addr::new(10, 0, 0, 1)));
        let two = Some(IpAddr::from(Ipv4Addr::new(10, 0, 0, 2)));
        assert!(registry.admit(one, &config, now));
        assert!(registry.admit(one, &config, now));
        assert!(!registry.admit(one, &config, now), "per-IP cap");
        assert!(registry.admit(two, &config, now));
        assert!(!registry.admit(None, &config, now), "total cap");
        registry.release(one);
        assert!(registry.admit(None, &config, now));
        assert_eq!(registry.connections(), 3);
    }
}
