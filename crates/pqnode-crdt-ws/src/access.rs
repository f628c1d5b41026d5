//! Who may open which document: per-document policies, capability tokens, listed peers,
//! revocation, and the live sessions a revocation must close.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use pqnode_clock::now_unix_ms as now_ms;
use pqnode_crypto::{Identity, NodeId, PeerId};
use pqnode_store::{Store, StoreError, Table};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::capability::{self, Capability, Rights, TokenError, TokenId};
use crate::peer_proof::{PeerProof, PeerProofError};

/// Why issuing a token failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccessError {
    /// The token could not be signed.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// Recording the issued token failed: it was not handed out.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// Why a connection may not open a document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Denied {
    /// The capability token given was refused.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The peer proof given was refused.
    #[error(transparent)]
    PeerProof(#[from] PeerProofError),
    /// The document is restricted and the connection brought neither a token nor a proof.
    #[error("this document needs a capability token or a listed peer's proof")]
    NoCredential,
    /// The proof is valid, but its peer is not on the document's list.
    #[error("peer {0} is not listed for this document")]
    NotListed(PeerId),
}

/// Keys in the store's `meta` table: `crdt/policy/<doc>` -> policy JSON,
/// `crdt/peers/<doc>` -> the listed peers' rights (JSON object),
/// `crdt/issued/<hex id>` and `crdt/revoked/<hex id>` -> the token's expiry (u64 BE ms).
const POLICY_PREFIX: &[u8] = b"crdt/policy/";
const PEERS_PREFIX: &[u8] = b"crdt/peers/";
const ISSUED_PREFIX: &[u8] = b"crdt/issued/";
const REVOKED_PREFIX: &[u8] = b"crdt/revoked/";
/// How long a revocation of a token this node did not issue (its expiry unknown) is kept.
const FOREIGN_REVOCATION_MS: u64 = 30 * 24 * 3600 * 1000;

/// How a document may be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Anyone who can reach the port may read and write.
    Open,
    /// Only holders of a capability token (read or read-write as the token says) and the
    /// peers listed for the document (with the rights listed).
    Restricted,
}

/// What an admitted connection may do, and on whose word (if anyone's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Read only, or read and write.
    pub rights: Rights,
    /// What admitted it; `None` for an open document.
    pub holder: Option<Holder>,
}

/// The credential a session was admitted with: withdrawing it closes the session.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Holder {
    /// A capability token: its id and issuer.
    Token(TokenId, NodeId),
    /// A peer listed for a document.
    Peer {
        /// The document it is listed for.
        doc: String,
        /// The peer, proven by its signature.
        peer: PeerId,
    },
}

/// Per-document access for the Yjs endpoint. Cheap to clone.
#[derive(Clone)]
pub struct AccessControl {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) identity: Arc<Identity>,
    pub(crate) trusted: HashSet<NodeId>,
    default_policy: Policy,
    pub(crate) store: Store,
    state: Mutex<State>,
}

#[derive(Default)]
pub(crate) struct State {
    policies: HashMap<String, Policy>,
    /// The peers listed for each restricted document, with their rights.
    peers: HashMap<String, BTreeMap<PeerId, Rights>>,
    /// Revoked token ids, by who revoked them (`None`: this node's operator, whatever the
    /// issuer; `Some(x)`: issuer `x`, for its own tokens only), with until when each is kept.
    /// Keyed by both, so one issuer's list can never replace another's or the operator's.
    pub(crate) revoked: HashMap<(TokenId, Option<NodeId>), u64>,
    /// Ids of the tokens this node issued.
    pub(crate) own: HashSet<TokenId>,
    /// Open sessions by what admitted them: a revocation, or a peer's removal from a
    /// document's list, cancels them.
    pub(crate) live: HashMap<Holder, Vec<CancellationToken>>,
}

impl State {
    /// Whether the token `id` issued by `issuer` is revoked.
    pub(crate) fn is_revoked(&self, id: TokenId, issuer: NodeId) -> bool {
        self.revoked.contains_key(&(id, None)) || self.revoked.contains_key(&(id, Some(issuer)))
    }

    /// Whether `holder` still admits a session.
    fn admits(&self, holder: &Holder) -> bool {
        match holder {
            Holder::Token(id, issuer) => !self.is_revoked(*id, *issuer),
            Holder::Peer { doc, peer } => self.peers.get(doc).is_some_and(|p| p.contains_key(peer)),
        }
    }

    /// Cancels the live sessions of every holder `covered` says, and forgets them.
    fn close_sessions(&mut self, covered: impl Fn(&Holder) -> bool) -> Vec<CancellationToken> {
        let holders: Vec<Holder> = self.live.keys().filter(|h| covered(h)).cloned().collect();
        holders
            .iter()
            .filter_map(|holder| self.live.remove(holder))
            .flatten()
            .collect()
    }
}

/// The store key of a revocation: `crdt/revoked/<hex id>[/<hex issuer>]`.
fn revoked_key(id: &TokenId, by: Option<NodeId>) -> Vec<u8> {
    let mut key = [REVOKED_PREFIX, token_id_hex(id).as_bytes()].concat();
    if let Some(by) = by {
        key.push(b'/');
        key.extend_from_slice(by.to_hex().as_bytes());
    }
    key
}

/// Reads a key written by [`revoked_key`].
fn parse_revoked_key(suffix: &[u8]) -> Option<(TokenId, Option<NodeId>)> {
    let id = parse_token_id(suffix.get(..32)?)?;
    let by = match suffix.get(32..) {
        Some([]) | None => None,
        Some([b'/', issuer @ ..]) => Some(std::str::from_utf8(issuer).ok()?.parse().ok()?),
        Some(_) => return None,
    };
    Some((id, by))
}

impl AccessControl {
    /// Loads policies and revocations from `store`. Tokens signed by `identity` and by the
    /// `trusted` node ids are honoured; documents without a policy get `default_policy`.
    pub async fn load(
        store: Store,
        identity: Arc<Identity>,
        trusted: impl IntoIterator<Item = NodeId>,
        default_policy: Policy,
    ) -> Result<Self, StoreError> {
        let mut state = State::default();
        for (key, value) in store.scan_prefix(Table::Meta, POLICY_PREFIX).await? {
            let doc = String::from_utf8_lossy(&key[POLICY_PREFIX.len()..]).into_owned();
            if let Ok(policy) = serde_json::from_slice(&value) {
                state.policies.insert(doc, policy);
            }
        }
        for (key, value) in store.scan_prefix(Table::Meta, PEERS_PREFIX).await? {
            let doc = String::from_utf8_lossy(&key[PEERS_PREFIX.len()..]).into_owned();
            if let Ok(peers) = serde_json::from_slice(&value) {
                state.peers.insert(doc, peers);
            }
        }
        let now = now_ms();
        for (key, value) in store.scan_prefix(Table::Meta, REVOKED_PREFIX).await? {
            let parsed = parse_revoked_key(&key[REVOKED_PREFIX.len()..]);
            let expires = value
                .get(..8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes);
            if let (Some(key), Some(expires)) = (parsed, expires)
                && expires > now
            {
                state.revoked.insert(key, expires);
            }
        }
        for (key, _) in store.scan_prefix(Table::Meta, ISSUED_PREFIX).await? {
            if let Some(id) = parse_token_id(&key[ISSUED_PREFIX.len()..]) {
                state.own.insert(id);
            }
        }
        let mut trusted: HashSet<NodeId> = trusted.into_iter().collect();
        trusted.insert(identity.node_id());
        Ok(Self {
            inner: Arc::new(Inner {
                identity,
                trusted,
                default_policy,
                store,
                state: Mutex::new(state),
            }),
        })
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// How `doc` may be opened: its own policy, or the node's default.
    pub fn policy(&self, doc: &str) -> Policy {
        self.state()
            .policies
            .get(doc)
            .copied()
            .unwrap_or(self.inner.default_policy)
    }

    /// Sets `doc`'s policy; returns once it is stored.
    pub async fn set_policy(&self, doc: &str, policy: Policy) -> Result<(), StoreError> {
        let key = [POLICY_PREFIX, doc.as_bytes()].concat();
        let value = serde_json::to_vec(&policy).unwrap_or_default();
        self.inner.store.put(Table::Meta, &key, value).await?;
        self.state().policies.insert(doc.to_owned(), policy);
        Ok(())
    }

    /// The peers listed for `doc`, with their rights.
    pub fn peers(&self, doc: &str) -> BTreeMap<PeerId, Rights> {
        self.state().peers.get(doc).cloned().unwrap_or_default()
    }

    /// Replaces the peers listed for `doc`; returns once stored. The sessions of peers
    /// removed, or whose rights changed, are closed (they may reconnect with what is left).
    pub async fn set_peers(
        &self,
        doc: &str,
        peers: BTreeMap<PeerId, Rights>,
    ) -> Result<usize, StoreError> {
        let key = [PEERS_PREFIX, doc.as_bytes()].concat();
        if peers.is_empty() {
            self.inner.store.delete(Table::Meta, &key).await?;
        } else {
            let value = serde_json::to_vec(&peers).unwrap_or_default();
            self.inner.store.put(Table::Meta, &key, value).await?;
        }
        let sessions = {
            let mut state = self.state();
            let before = state.peers.remove(doc).unwrap_or_default();
            let sessions = state.close_sessions(|holder| {
                matches!(holder, Holder::Peer { doc: d, peer }
                    if d == doc && before.get(peer) != peers.get(peer))
            });
            if !peers.is_empty() {
                state.peers.insert(doc.to_owned(), peers);
            }
            sessions
        };
        for session in &sessions {
            session.cancel();
        }
        Ok(sessions.len())
    }

    /// Issues a token for `doc`, valid until `expires_ms`; returns once its id is stored
    /// (so it can be revoked by id later).
    pub async fn issue(
        &self,
        doc: &str,
        rights: Rights,
        expires_ms: u64,
    ) -> Result<(Capability, String), AccessError> {
        let (capability, token) = capability::issue(&self.inner.identity, doc, rights, expires_ms)?;
        let key = [ISSUED_PREFIX, token_id_hex(&capability.id).as_bytes()].concat();
        self.inner
            .store
            .put(Table::Meta, &key, expires_ms.to_be_bytes().to_vec())
            .await?;
        self.state().own.insert(capability.id);
        Ok((capability, token))
    }

    /// Revokes a token by id: stored first, then every live session it opened is closed.
    /// Returns how many sessions were closed. A token this node issued is also named in the
    /// revocations it publishes ([`AccessControl::published_revocations`]), so other nodes
    /// that trust this one close its sessions too.
    pub async fn revoke(&self, id: TokenId) -> Result<usize, StoreError> {
        let store = &self.inner.store;
        let issued = store
            .get(
                Table::Meta,
                [ISSUED_PREFIX, token_id_hex(&id).as_bytes()].concat(),
            )
            .await?;
        let expires_ms = issued
            .and_then(|v| v.as_ref().try_into().ok().map(u64::from_be_bytes))
            .unwrap_or_else(|| now_ms().saturating_add(FOREIGN_REVOCATION_MS));
        self.record_revocation(id, None, expires_ms).await
    }

    /// Stores a revocation of `id` by `by` (see [`State::revoked`]), then closes the live
    /// sessions it covers; returns how many.
    pub(crate) async fn record_revocation(
        &self,
        id: TokenId,
        by: Option<NodeId>,
        expires_ms: u64,
    ) -> Result<usize, StoreError> {
        self.inner
            .store
            .put(
                Table::Meta,
                revoked_key(&id, by),
                expires_ms.to_be_bytes().to_vec(),
            )
            .await?;
        let sessions = {
            let mut state = self.state();
            state.revoked.insert((id, by), expires_ms);
            state.close_sessions(|holder| {
                matches!(holder, Holder::Token(live, issuer)
                    if *live == id && by.is_none_or(|by| by == *issuer))
            })
        };
        for session in &sessions {
            session.cancel();
        }
        Ok(sessions.len())
    }

    /// Open sessions admitted with a token or as a listed peer.
    pub fn live_token_sessions(&self) -> usize {
        self.state().live.values().map(Vec::len).sum()
    }

    /// Whether a connection to `doc` may open it, and how: with a capability `token`, or a
    /// listed peer's `peer` proof ([`crate::peer_proof`]), both from the URL, or with
    /// neither on an open document.
    pub fn authorize(
        &self,
        doc: &str,
        token: Option<&str>,
        peer: Option<&str>,
    ) -> Result<Grant, Denied> {
        if let Some(token) = token.filter(|t| !t.is_empty()) {
            return Ok(self.authorize_token(doc, token)?);
        }
        if let Some(proof) = peer.filter(|p| !p.is_empty()) {
            return self.authorize_peer(doc, proof);
        }
        match self.policy(doc) {
            Policy::Open => Ok(Grant {
                rights: Rights::Write,
                holder: None,
            }),
            Policy::Restricted => Err(Denied::NoCredential),
        }
    }

    fn authorize_peer(&self, doc: &str, proof: &str) -> Result<Grant, Denied> {
        let peer = PeerProof::parse(proof)?.verify(self.inner.identity.node_id(), doc, now_ms())?;
        let rights = self
            .state()
            .peers
            .get(doc)
            .and_then(|p| p.get(&peer).copied());
        match rights {
            Some(rights) => Ok(Grant {
                rights,
                holder: Some(Holder::Peer {
                    doc: doc.to_owned(),
                    peer,
                }),
            }),
            None => Err(Denied::NotListed(peer)),
        }
    }

    fn authorize_token(&self, doc: &str, token: &str) -> Result<Grant, TokenError> {
        let capability = capability::verify(token)?;
        if capability.doc != doc {
            return Err(TokenError::OtherDocument);
        }
        if capability.expires_ms <= now_ms() {
            return Err(TokenError::Expired);
        }
        if !self.inner.trusted.contains(&capability.issuer) {
            return Err(TokenError::UntrustedIssuer);
        }
        if self.state().is_revoked(capability.id, capability.issuer) {
            return Err(TokenError::Revoked);
        }
        Ok(Grant {
            rights: capability.rights,
            holder: Some(Holder::Token(capability.id, capability.issuer)),
        })
    }

    /// Registers a live session admitted by `holder`; returns what cancels it when the
    /// holder's access is withdrawn. Access withdrawn between its check and this call gives
    /// an already-cancelled watch.
    pub fn watch(&self, holder: &Holder) -> CancellationToken {
        let cancel = CancellationToken::new();
        let mut state = self.state();
        if !state.admits(holder) {
            cancel.cancel();
            return cancel;
        }
        let sessions = state.live.entry(holder.clone()).or_default();
        sessions.retain(|s| !s.is_cancelled());
        sessions.push(cancel.clone());
        cancel
    }

    /// Forgets a closed session's watch.
    pub fn unwatch(&self, holder: &Holder, cancel: &CancellationToken) {
        cancel.cancel();
        let mut state = self.state();
        if let Some(sessions) = state.live.get_mut(holder) {
            sessions.retain(|s| !s.is_cancelled());
            if sessions.is_empty() {
                state.live.remove(holder);
            }
        }
    }

    /// Whether `node` may replicate `doc` with this node: anyone for an open document, only
    /// trusted issuers for a restricted one (their tokens are honoured here, so they may
    /// hold its content).
    pub fn may_replicate(&self, doc: &str, node: NodeId) -> bool {
        self.policy(doc) == Policy::Open || self.inner.trusted.contains(&node)
    }
}

/// A token id as text (what the API and revocation use).
pub fn token_id_hex(id: &TokenId) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses a token id written by [`token_id_hex`].
pub fn parse_token_id(text: &[u8]) -> Option<TokenId> {
    if text.len() != 32 {
        return None;
    }
    let mut id = [0u8; 16];
    for (i, pair) in text.chunks_exact(2).enumerate() {
        let pair = std::str::from_utf8(pair).ok()?;
        id[i] = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn open_access(dir: &tempfile::TempDir, default: Policy) -> (Store, AccessControl) {
        let store = Store::open(dir.path().join("db.redb")).await.unwrap();
        let identity = Arc::new(Identity::from_seed(&[1; 32]).unwrap());
        let access = AccessControl::load(store.clone(), identity, [], default)
            .await
            .unwrap();
        (store, access)
    }

    #[tokio::test]
    async fn policies_tokens_and_revocation_hold_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let (store, access) = open_access(&dir, Policy::Open).await;
        assert_eq!(
            access.authorize("open", None, None).unwrap().rights,
            Rights::Write
        );
        access
            .set_policy("secret", Policy::Restricted)
            .await
            .unwrap();
        assert!(access.authorize("secret", None, None).is_err());

        let later = now_ms() + 60_000;
        let (cap, token) = access.issue("secret", Rights::Read, later).await.unwrap();
        assert_eq!(
            access.authorize("secret", Some(&token), None),
            Ok(Grant {
                rights: Rights::Read,
                holder: Some(Holder::Token(cap.id, cap.issuer))
            })
        );
        assert_eq!(
            access.authorize("other", Some(&token), None),
            Err(Denied::Token(TokenError::OtherDocument))
        );
        let (_, expired) = access
            .issue("secret", Rights::Write, now_ms() - 1)
            .await
            .unwrap();
        assert_eq!(
            access.authorize("secret", Some(&expired), None),
            Err(Denied::Token(TokenError::Expired))
        );
        let stranger = Identity::from_seed(&[2; 32]).unwrap();
        let (_, foreign) = capability::issue(&stranger, "secret", Rights::Write, later).unwrap();
        assert_eq!(
            access.authorize("secret", Some(&foreign), None),
            Err(Denied::Token(TokenError::UntrustedIssuer))
        );

        // A live session with the token is closed by its revocation.
        let session = access.watch(&Holder::Token(cap.id, cap.issuer));
        assert_eq!(access.revoke(cap.id).await.unwrap(), 1);
        assert!(session.is_cancelled());
        assert_eq!(
            access.authorize("secret", Some(&token), None),
            Err(Denied::Token(TokenError::Revoked))
        );

        store.close().await.unwrap();
        drop(access);
        let (_, access) = open_access(&dir, Policy::Open).await;
        assert_eq!(access.policy("secret"), Policy::Restricted);
        assert_eq!(
            access.authorize("secret", Some(&token), None),
            Err(Denied::Token(TokenError::Revoked))
        );
    }

    #[test]
    fn token_ids_round_trip_as_hex() {
        let id = [0xab; 16];
        assert_eq!(parse_token_id(token_id_hex(&id).as_bytes()), Some(id));
        assert_eq!(parse_token_id(b"zz"), None);
    }
}
