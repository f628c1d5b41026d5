//! A document's awareness (who is here, their cursors): kept in memory per document, never
//! stored, and relayed between its sessions as y-websocket's server does.

use yrs::ClientID;
use yrs::sync::{Awareness, AwarenessUpdate};

use crate::slot::DocSlot;
use crate::wire;

/// Removed clients the awareness may remember (their last clock) before it is rebuilt from
/// the live ones: yrs never forgets a client, and clients get a new id on every page load.
const MAX_REMOVED: usize = 4096;

/// Applies an awareness update from a session.
pub(crate) fn apply(slot: &DocSlot, update: AwarenessUpdate) -> Result<(), String> {
    let mut awareness = slot.awareness();
    crate::ydoc::guarded(|| {
        awareness
            .apply_update(update)
            .map_err(|error| error.to_string())
    })?;
    prune(&mut awareness);
    Ok(())
}

/// Every live state as one awareness message, or `None` when nobody is here.
pub(crate) fn current(slot: &DocSlot) -> Option<Vec<u8>> {
    let awareness = slot.awareness();
    let update = awareness.update().ok()?;
    (!update.clients.is_empty()).then(|| wire::awareness_message(update))
}

/// Marks `clients` as gone, as Yjs does for a closed connection (null state, clock + 1), and
/// returns the awareness message that tells the others.
pub(crate) fn remove(slot: &DocSlot, clients: impl IntoIterator<Item = u64>) -> Option<Vec<u8>> {
    let mut awareness = slot.awareness();
    let ids: Vec<ClientID> = clients.into_iter().map(ClientID::new).collect();
    if ids.is_empty() {
        return None;
    }
    for id in &ids {
        awareness.remove_state(*id);
    }
    let update = awareness.update_with_clients(ids).ok()?;
    Some(wire::awareness_message(update))
}

fn prune(awareness: &mut Awareness) {
    let removed = awareness
        .iter()
        .filter(|(_, state)| state.data.is_none())
        .count();
    if removed <= MAX_REMOVED {
        return;
    }
    let Ok(live) = awareness.update() else { return };
    let mut fresh = Awareness::new(yrs::Doc::new());
    if fresh.apply_update(live).is_ok() {
        *awareness = fresh;
    }
}
