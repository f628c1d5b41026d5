//! Who may open which document: per-document policies, capability tokens, revocation, and
//! the live sessions a revocation must close.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use pqnode_crypto::{Identity, NodeId};
use pqnode_store::{Store, StoreError, Table};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::capability::{self, Capability, Rights, TokenError, TokenId};

/// Why issuing a token failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccessError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// Keys in the store's `meta` table: `crdt/policy/<doc>` -> policy JSON,
/// `crdt/issued/<hex id>` and `crdt/revoked/<hex id>` -> the token's expiry (u64 BE ms).
const POLICY_PREFIX: &[u8] = b"crdt/policy/";
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
    /// Only holders of a capability token: read or read-write as the token says.
    Restricted,
}

/// What an admitted connection may do, and the token it came with (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub rights: Rights,
    /// The token's id and issuer.
    pub token: Option<(TokenId, NodeId)>,
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
    pub(crate) revoked: HashMap<TokenId, Revoked>,
    /// Ids of the tokens this node issued.
    pub(crate) own: HashSet<TokenId>,
    /// Open sessions by the token they were admitted with (and its issuer): a revocation
    /// cancels them.
    pub(crate) live: HashMap<TokenId, (NodeId, Vec<CancellationToken>)>,
}

/// A revoked token id: until when it is kept, and who revoked it (`None`: this node's
/// operator, whatever the issuer; `Some(x)`: issuer `x`, for its own tokens only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Revoked {
    pub(crate) expires_ms: u64,
    pub(crate) by: Option<NodeId>,
}

impl Revoked {
    pub(crate) fn covers(&self, issuer: NodeId) -> bool {
        self.by.is_none_or(|by| by == issuer)
    }

    /// The stored value: the expiry, then the revoking issuer if any.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut v = self.expires_ms.to_be_bytes().to_vec();
        if let Some(by) = self.by {
            v.extend_from_slice(by.as_bytes());
        }
        v
    }

    fn decode(value: &[u8]) -> Option<Self> {
        let expires_ms = u64::from_be_bytes(value.get(..8)?.try_into().ok()?);
        let by = match value.get(8..) {
            Some([]) | None => None,
            Some(id) => Some(NodeId::from_bytes(id.try_into().ok()?)),
        };
        Some(Self { expires_ms, by })
    }
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
        let now = now_ms();
        for (key, value) in store.scan_prefix(Table::Meta, REVOKED_PREFIX).await? {
            let id = hex_id(&key[REVOKED_PREFIX.len()..]);
            if let (Some(id), Some(revoked)) = (id, Revoked::decode(&value))
                && revoked.expires_ms > now
            {
                state.revoked.insert(id, revoked);
            }
        }
        for (key, _) in store.scan_prefix(Table::Meta, ISSUED_PREFIX).await? {
            if let Some(id) = hex_id(&key[ISSUED_PREFIX.len()..]) {
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

    /// Issues a token for `doc`, valid until `expires_ms`; returns once its id is stored
    /// (so it can be revoked by id later).
    pub async fn issue(
        &self,
        doc: &str,
        rights: Rights,
        expires_ms: u64,
    ) -> Result<(Capability, String), AccessError> {
        let (capability, token) = capability::issue(&self.inner.identity, doc, rights, expires_ms)?;
        let key = [ISSUED_PREFIX, hex(&capability.id).as_bytes()].concat();
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
            .get(Table::Meta, [ISSUED_PREFIX, hex(&id).as_bytes()].concat())
            .await?;
        let expires_ms = issued
            .and_then(|v| v.as_ref().try_into().ok().map(u64::from_be_bytes))
            .unwrap_or_else(|| now_ms().saturating_add(FOREIGN_REVOCATION_MS));
        self.record_revocation(
            id,
            Revoked {
                expires_ms,
                by: None,
            },
        )
        .await
    }

    /// Stores a revocation, then closes the live sessions it covers; returns how many.
    pub(crate) async fn record_revocation(
        &self,
        id: TokenId,
        revoked: Revoked,
    ) -> Result<usize, StoreError> {
        let key = [REVOKED_PREFIX, hex(&id).as_bytes()].concat();
        self.inner
            .store
            .put(Table::Meta, &key, revoked.encode())
            .await?;
        let sessions = {
            let mut state = self.state();
            state.revoked.insert(id, revoked);
            match state.live.get(&id) {
                Some((issuer, _)) if revoked.covers(*issuer) => {
                    state.live.remove(&id).map(|(_, s)| s).unwrap_or_default()
                }
                _ => Vec::new(),
            }
        };
        for session in &sessions {
            session.cancel();
        }
        Ok(sessions.len())
    }

    /// Open sessions admitted with a token.
    pub fn live_token_sessions(&self) -> usize {
        self.state().live.values().map(|(_, s)| s.len()).sum()
    }

    /// Whether a connection to `doc` with `token` (from the URL) may open it, and how.
    pub fn authorize(&self, doc: &str, token: Option<&str>) -> Result<Grant, TokenError> {
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return match self.policy(doc) {
                Policy::Open => Ok(Grant {
                    rights: Rights::Write,
                    token: None,
                }),
                Policy::Restricted => Err(TokenError::Malformed("this document needs a token")),
            };
        };
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
        let revoked = self.state().revoked.get(&capability.id).copied();
        if revoked.is_some_and(|r| r.covers(capability.issuer)) {
            return Err(TokenError::Revoked);
        }
        Ok(Grant {
            rights: capability.rights,
            token: Some((capability.id, capability.issuer)),
        })
    }

    /// Registers a live session opened with `token` (issued by `issuer`); returns what
    /// cancels it on revocation.
    pub fn watch(&self, token: TokenId, issuer: NodeId) -> CancellationToken {
        let cancel = CancellationToken::new();
        let mut state = self.state();
        let (_, sessions) = state
            .live
            .entry(token)
            .or_insert_with(|| (issuer, Vec::new()));
        sessions.retain(|s| !s.is_cancelled());
        sessions.push(cancel.clone());
        cancel
    }

    /// Forgets a closed session's watch.
    pub fn unwatch(&self, token: TokenId, cancel: &CancellationToken) {
        cancel.cancel();
        let mut state = self.state();
        if let Some((_, sessions)) = state.live.get_mut(&token) {
            sessions.retain(|s| !s.is_cancelled());
            if sessions.is_empty() {
                state.live.remove(&token);
            }
        }
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A token id as text (what the API and revocation use).
pub fn hex(id: &TokenId) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses a token id written by [`hex`].
pub fn hex_id(text: &[u8]) -> Option<TokenId> {
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
            access.authorize("open", None).unwrap().rights,
            Rights::Write
        );
        access
            .set_policy("secret", Policy::Restricted)
            .await
            .unwrap();
        assert!(access.authorize("secret", None).is_err());

        let later = now_ms() + 60_000;
        let (cap, token) = access.issue("secret", Rights::Read, later).await.unwrap();
        assert_eq!(
            access.authorize("secret", Some(&token)),
            Ok(Grant {
                rights: Rights::Read,
                token: Some((cap.id, cap.issuer))
            })
        );
        assert_eq!(
            access.authorize("other", Some(&token)),
            Err(TokenError::OtherDocument)
        );
        let (_, expired) = access
            .issue("secret", Rights::Write, now_ms() - 1)
            .await
            .unwrap();
        assert_eq!(
            access.authorize("secret", Some(&expired)),
            Err(TokenError::Expired)
        );
        let stranger = Identity::from_seed(&[2; 32]).unwrap();
        let (_, foreign) = capability::issue(&stranger, "secret", Rights::Write, later).unwrap();
        assert_eq!(
            access.authorize("secret", Some(&foreign)),
            Err(TokenError::UntrustedIssuer)
        );

        // A live session with the token is closed by its revocation.
        let session = access.watch(cap.id, cap.issuer);
        assert_eq!(access.revoke(cap.id).await.unwrap(), 1);
        assert!(session.is_cancelled());
        assert_eq!(
            access.authorize("secret", Some(&token)),
            Err(TokenError::Revoked)
        );

        store.close().await.unwrap();
        drop(access);
        let (_, access) = open_access(&dir, Policy::Open).await;
        assert_eq!(access.policy("secret"), Policy::Restricted);
        assert_eq!(
            access.authorize("secret", Some(&token)),
            Err(TokenError::Revoked)
        );
    }

    #[test]
    fn token_ids_round_trip_as_hex() {
        let id = [0xab; 16];
        assert_eq!(hex_id(hex(&id).as_bytes()), Some(id));
        assert_eq!(hex_id(b"zz"), None);
    }
}
