//! What replication asks of the document engine beyond its public API: applying an update
//! from another node only when it brings something new, and merging live updates.
//!
//! Why the "something new" check: a Yjs diff always carries the sender's whole delete set,
//! so every anti-entropy exchange of a document with deletions would otherwise commit a log
//! entry that changes nothing, on both sides, every round.

use bytes::Bytes;
use yrs::{ReadTxn, Transact};

use crate::hub::OriginId;
use crate::{DocError, DocName, DocStore, ydoc};

impl DocStore {
    /// Applies `update` from replication and returns the version that includes it, or `None`
    /// when the document already holds all of it (nothing is written). Refuses updates over
    /// `max` bytes; the document cap applies as for any update.
    pub(crate) async fn apply_replicated(
        &self,
        name: &DocName,
        update: Bytes,
        origin: OriginId,
        max: usize,
    ) -> Result<Option<u64>, DocError> {
        if update.len() > max {
            return Err(DocError::UpdateTooLarge {
                len: update.len(),
                max,
            });
        }
        let decoded =
            ydoc::decode_update(&update).map_err(|reason| DocError::MalformedUpdate { reason })?;
        if decoded.is_empty() {
            return Ok(None);
        }
        {
            let slot = self.inner.slot(name);
            let state = self.inner.loaded(&slot).await?;
            if let Some(loaded) = state.as_ref() {
                let news = ydoc::guarded(|| {
                    let snapshot = loaded.doc.transact().snapshot();
                    let ours = &snapshot.state_map;
                    let deletes = decoded.delete_set().diff(&snapshot.delete_set);
                    // Blocks after a gap do not "extend" our state, yet yrs keeps them pending
                    // until the gap fills: they are news too.
                    let beyond = decoded
                        .state_vector_lower()
                        .iter()
                        .any(|(client, clock)| *clock >= ours.get(client));
                    Ok(decoded.extends(ours) || beyond || !deletes.is_empty())
                });
                // A check that fails proves nothing: let the engine decide.
                if news == Ok(false) {
                    return Ok(None);
                }
            }
        }
        self.apply_capped(name, update, origin, max).await.map(Some)
    }
}
