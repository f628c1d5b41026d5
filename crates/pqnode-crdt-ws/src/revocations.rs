//! Revocations shared between nodes: a node publishes the ids of the tokens it issued and
//! revoked; nodes that trust it read them and close the sessions those tokens opened.
//!
//! The list travels as the issuer's own signed DHT record (the binary publishes and reads
//! it), so only the issuer can revoke its tokens elsewhere, and a revocation it publishes
//! covers its tokens only, never another issuer's. Encoding: entries of `id (16) |
//! expires_ms (8, big-endian)`, newest expiry first, at most [`MAX_SHARED_REVOCATIONS`] (a
//! DHT record value is at most 16 KiB).

use pqnode_crypto::NodeId;
use pqnode_store::StoreError;

use pqnode_clock::now_unix_ms as now_ms;

use crate::access::AccessControl;
use crate::capability::{TokenError, TokenId};

/// The DHT record name under which a node publishes its revocations.
pub const REVOCATIONS_RECORD: &[u8] = b"crdt/revocations";
/// Most revocations one record carries: 16 KiB of 24-byte entries, with room to spare.
pub const MAX_SHARED_REVOCATIONS: usize = 640;
const ENTRY_LEN: usize = 16 + 8;
/// Longest a revocation from another issuer is kept.
const MAX_KEPT_MS: u64 = 365 * 24 * 3600 * 1000;

/// Encodes a revocation list (see the module docs).
pub fn encode_revocations(list: &[(TokenId, u64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(list.len().min(MAX_SHARED_REVOCATIONS) * ENTRY_LEN);
    for (id, expires) in list.iter().take(MAX_SHARED_REVOCATIONS) {
        out.extend_from_slice(id);
        out.extend_from_slice(&expires.to_be_bytes());
    }
    out
}

/// Decodes a revocation list; refuses anything that is not whole entries or is too long.
pub fn decode_revocations(bytes: &[u8]) -> Result<Vec<(TokenId, u64)>, TokenError> {
    if !bytes.len().is_multiple_of(ENTRY_LEN) || bytes.len() / ENTRY_LEN > MAX_SHARED_REVOCATIONS {
        return Err(TokenError::Malformed("revocation list"));
    }
    Ok(bytes
        .chunks_exact(ENTRY_LEN)
        .map(|entry| {
            let mut id = [0u8; 16];
            id.copy_from_slice(&entry[..16]);
            let mut expires = [0u8; 8];
            expires.copy_from_slice(&entry[16..]);
            (id, u64::from_be_bytes(expires))
        })
        .collect())
}

impl AccessControl {
    /// The tokens this node issued and revoked, still unexpired, newest expiry first: what it
    /// publishes for the nodes that trust it.
    pub fn published_revocations(&self) -> Vec<(TokenId, u64)> {
        let now = now_ms();
        let state = self.state();
        let mut list: Vec<(TokenId, u64)> = state
            .revoked
            .iter()
            .filter(|((id, by), expires)| by.is_none() && state.own.contains(id) && **expires > now)
            .map(|((id, _), expires)| (*id, *expires))
            .collect();
        list.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        list.truncate(MAX_SHARED_REVOCATIONS);
        list
    }

    /// The issuers besides this node whose tokens it honours (and whose revocations it reads).
    pub fn trusted_issuers(&self) -> Vec<NodeId> {
        let me = self.inner.identity.node_id();
        let mut issuers: Vec<NodeId> = self
            .inner
            .trusted
            .iter()
            .copied()
            .filter(|id| *id != me)
            .collect();
        issuers.sort_unstable();
        issuers
    }

    /// Applies `issuer`'s published revocations (of its own tokens): stores the new ones and
    /// closes the sessions they cover. Returns how many sessions were closed. A list from an
    /// issuer this node does not trust is ignored.
    pub async fn apply_revocations(
        &self,
        issuer: NodeId,
        list: &[(TokenId, u64)],
    ) -> Result<usize, StoreError> {
        if !self.inner.trusted.contains(&issuer) {
            return Ok(0);
        }
        let now = now_ms();
        // An issuer chooses the expiry it publishes: it is kept no longer than a year here.
        let latest = now.saturating_add(MAX_KEPT_MS);
        let mut closed = 0;
        for (id, expires_ms) in list {
            let known = self.state().is_revoked(*id, issuer);
            if known || *expires_ms <= now {
                continue;
            }
            closed += self
                .record_revocation(*id, Some(issuer), (*expires_ms).min(latest))
                .await?;
        }
        Ok(closed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use pqnode_crypto::Identity;
    use pqnode_store::Store;

    use super::*;
    use crate::{Denied, Policy, Rights};

    #[test]
    fn lists_round_trip_and_bad_ones_are_refused() {
        let list = vec![([1; 16], 5), ([2; 16], u64::MAX)];
        assert_eq!(decode_revocations(&encode_revocations(&list)), Ok(list));
        assert!(decode_revocations(&[0; 23]).is_err());
        assert!(decode_revocations(&vec![0; ENTRY_LEN * (MAX_SHARED_REVOCATIONS + 1)]).is_err());
        assert_eq!(decode_revocations(&[]), Ok(vec![]));
        assert!(encode_revocations(&[([0; 16], 1); MAX_SHARED_REVOCATIONS]).len() <= 16 * 1024);
    }

    #[tokio::test]
    async fn an_issuers_revocation_reaches_a_node_that_trusts_it_and_covers_its_tokens_only() {
        let dir = tempfile::tempdir().unwrap();
        let issuer = Arc::new(Identity::from_seed(&[1; 32]).unwrap());
        let other = Arc::new(Identity::from_seed(&[2; 32]).unwrap());
        let open = |name: &str, identity: Arc<Identity>, trusted: Vec<NodeId>| {
            let path = dir.path().join(name);
            async move {
                let store = Store::open(path).await.unwrap();
                AccessControl::load(store, identity, trusted, Policy::Restricted)
                    .await
                    .unwrap()
            }
        };
        let a = open("a.redb", issuer.clone(), vec![]).await;
        let b = open(
            "b.redb",
            Arc::new(Identity::from_seed(&[3; 32]).unwrap()),
            vec![issuer.node_id(), other.node_id()],
        )
        .await;
        let later = now_ms() + 60_000;
        let (cap, token) = a.issue("doc", Rights::Write, later).await.unwrap();
        let grant = b.authorize("doc", Some(&token), None).unwrap();
        let session = b.watch(&grant.holder.unwrap());

        // Nothing to share yet; then the issuer revokes.
        assert!(a.published_revocations().is_empty());
        a.revoke(cap.id).await.unwrap();
        let shared = decode_revocations(&encode_revocations(&a.published_revocations())).unwrap();
        assert_eq!(shared, vec![(cap.id, later)]);

        // Another trusted issuer naming the same id covers nothing of the first's.
        assert_eq!(
            b.apply_revocations(other.node_id(), &shared).await.unwrap(),
            0
        );
        assert!(!session.is_cancelled());
        assert!(b.authorize("doc", Some(&token), None).is_ok());
        // The issuer's own list closes the session and refuses the token from then on.
        assert_eq!(
            b.apply_revocations(issuer.node_id(), &shared)
                .await
                .unwrap(),
            1
        );
        assert!(session.is_cancelled());
        assert_eq!(
            b.authorize("doc", Some(&token), None),
            Err(Denied::Token(TokenError::Revoked))
        );
        // Seen before: nothing more to do.
        assert_eq!(
            b.apply_revocations(issuer.node_id(), &shared)
                .await
                .unwrap(),
            0
        );
        // An untrusted issuer's list is ignored.
        let stranger = Identity::from_seed(&[9; 32]).unwrap().node_id();
        assert_eq!(
            b.apply_revocations(stranger, &[([7; 16], later)])
                .await
                .unwrap(),
            0
        );
    }
}
