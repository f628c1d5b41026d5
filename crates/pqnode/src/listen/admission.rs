//! Who may hold a TCP connection on one listener: a cap on open connections
//! and a cap per remote IP, both counted the moment a connection is accepted.
//!
//! This is bookkeeping only: it decides and counts, it never touches a
//! socket. Closing is the connection task's job, told through the token each
//! admitted connection carries. Upgraded connections (WebSockets) stay
//! counted until their socket is dropped, so a cap here bounds descriptors,
//! not just HTTP requests.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio_util::sync::CancellationToken;

/// Evicted connections whose tasks have not closed their sockets yet, at most: beyond this a
/// full listener refuses newcomers rather than evicting more, so a flood can never hold more
/// than `max_connections + MAX_CLOSING` descriptors (eviction is asynchronous).
pub(super) const MAX_CLOSING: usize = 8;

/// The caps one listener enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Caps {
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
}

pub(super) struct Admission {
    caps: Caps,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    conns: HashMap<u64, Entry>,
    per_ip: HashMap<IpAddr, usize>,
    /// Connections that have not yet delivered one complete request head, oldest first
    /// (ids only grow). They are what a flood is made of, and what gives way to a newcomer
    /// when the listener is full: a client that finished a request keeps its connection.
    pending: BTreeSet<u64>,
    /// Entries of `conns` that were evicted and whose sockets are not closed yet.
    closing: usize,
    next_id: u64,
}

struct Entry {
    ip: IpAddr,
    close: CancellationToken,
    /// Evicted: no longer holds a place, but still holds its socket.
    closing: bool,
}

pub(super) enum Verdict {
    /// `evicted`: an older connection that never completed a request was closed to make room.
    Admitted { ticket: Ticket, evicted: bool },
    /// This IP already holds its share.
    PerIp,
    /// The listener is full of connections that all completed a request.
    Full,
}

impl Admission {
    pub(super) fn new(caps: Caps) -> Arc<Self> {
        Arc::new(Self {
            caps,
            state: Mutex::new(State::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is counters and tokens; a panic elsewhere cannot leave it half-updated
        // in a way that matters more than refusing every connection would.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Decides on a connection just accepted from `ip`. `parent` is the listener's
    /// close-everything token; the ticket's token is its child.
    pub(super) fn admit(self: &Arc<Self>, ip: IpAddr, parent: &CancellationToken) -> Verdict {
        let mut evicted = None;
        let mut state = self.lock();
        if state.per_ip.get(&ip).copied().unwrap_or(0) >= self.caps.max_connections_per_ip {
            return Verdict::PerIp;
        }
        if state.conns.len() - state.closing >= self.caps.max_connections {
            if state.closing >= MAX_CLOSING {
                return Verdict::Full;
            }
            let Some(oldest) = state.pending.pop_first() else {
                return Verdict::Full;
            };
            // It keeps its entry (and its per-IP share) until its task drops the socket.
            if let Some(entry) = state.conns.get_mut(&oldest) {
                entry.closing = true;
                evicted = Some(entry.close.clone());
                state.closing += 1;
            }
        }
        let id = state.next_id;
        state.next_id += 1;
        let close = parent.child_token();
        state.conns.insert(
            id,
            Entry {
                ip,
                close: close.clone(),
                closing: false,
            },
        );
        *state.per_ip.entry(ip).or_insert(0) += 1;
        state.pending.insert(id);
        drop(state);
        let evicted = match evicted {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        };
        Verdict::Admitted {
            ticket: Ticket {
                admission: self.clone(),
                id,
                close,
            },
            evicted,
        }
    }

    /// Connections holding a place (upgraded ones included; evicted ones still closing not).
    pub(super) fn open(&self) -> usize {
        let state = self.lock();
        state.conns.len() - state.closing
    }

    /// Closes every connection that never completed a request head; returns how many.
    pub(super) fn close_pending(&self) -> usize {
        let tokens: Vec<CancellationToken> = {
            let mut state = self.lock();
            let ids: Vec<u64> = std::mem::take(&mut state.pending).into_iter().collect();
            ids.into_iter()
                .filter_map(|id| state.remove(id).map(|e| e.close))
                .collect()
        };
        for token in &tokens {
            token.cancel();
        }
        tokens.len()
    }
}

impl State {
    fn remove(&mut self, id: u64) -> Option<Entry> {
        self.pending.remove(&id);
        let entry = self.conns.remove(&id)?;
        if entry.closing {
            self.closing -= 1;
        }
        if let Some(n) = self.per_ip.get_mut(&entry.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_ip.remove(&entry.ip);
            }
        }
        Some(entry)
    }
}

/// One admitted connection's place; released when dropped (with the socket).
pub(super) struct Ticket {
    admission: Arc<Admission>,
    id: u64,
    close: CancellationToken,
}

impl Ticket {
    /// Cancelled when this connection must close: evicted, or forced at shutdown.
    pub(super) fn close_token(&self) -> &CancellationToken {
        &self.close
    }

    /// The connection delivered a complete request head: it is no longer evictable.
    pub(super) fn activate(&self) {
        self.admission.lock().pending.remove(&self.id);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.admission.lock().remove(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    fn admitted(v: Verdict) -> (Ticket, bool) {
        match v {
            Verdict::Admitted { ticket, evicted } => (ticket, evicted),
            Verdict::PerIp => panic!("refused per IP"),
            Verdict::Full => panic!("refused: full"),
        }
    }

    #[test]
    fn per_ip_cap_refuses_and_frees_on_drop() {
        let a = Admission::new(Caps {
            max_connections: 10,
            max_connections_per_ip: 2,
        });
        let root = CancellationToken::new();
        let (t1, _) = admitted(a.admit(ip(2), &root));
        let (_t2, _) = admitted(a.admit(ip(2), &root));
        assert!(matches!(a.admit(ip(2), &root), Verdict::PerIp));
        let (_t3, _) = admitted(a.admit(ip(3), &root));
        drop(t1);
        assert_eq!(a.open(), 2);
        let (_t4, evicted) = admitted(a.admit(ip(2), &root));
        assert!(!evicted);
    }

    #[test]
    fn evictions_wait_for_evicted_sockets_to_close_beyond_a_few() {
        let a = Admission::new(Caps {
            max_connections: 1,
            max_connections_per_ip: 100,
        });
        let root = CancellationToken::new();
        let mut held = vec![admitted(a.admit(ip(2), &root)).0];
        // Each newcomer evicts the previous one, whose task has not closed its socket yet.
        for _ in 0..MAX_CLOSING {
            let (ticket, evicted) = admitted(a.admit(ip(2), &root));
            assert!(evicted);
            held.push(ticket);
        }
        assert_eq!(a.open(), 1);
        assert!(matches!(a.admit(ip(2), &root), Verdict::Full));
        // One evicted socket closes: one more eviction may happen.
        drop(held.remove(0));
        let (_ticket, evicted) = admitted(a.admit(ip(2), &root));
        assert!(evicted);
    }

    #[test]
    fn a_full_listener_evicts_the_oldest_connection_that_never_sent_a_request() {
        let a = Admission::new(Caps {
            max_connections: 2,
            max_connections_per_ip: 10,
        });
        let root = CancellationToken::new();
        let (old, _) = admitted(a.admit(ip(2), &root));
        let (busy, _) = admitted(a.admit(ip(3), &root));
        busy.activate();
        let (_new, evicted) = admitted(a.admit(ip(4), &root));
        assert!(evicted);
        assert!(old.close_token().is_cancelled());
        assert!(!busy.close_token().is_cancelled());
        assert_eq!(a.open(), 2);
        // The evicted ticket's drop must not free a second place.
        drop(old);
        assert_eq!(a.open(), 2);
    }

    #[test]
    fn a_listener_full_of_real_clients_refuses() {
        let a = Admission::new(Caps {
            max_connections: 1,
            max_connections_per_ip: 10,
        });
        let root = CancellationToken::new();
        let (t, _) = admitted(a.admit(ip(2), &root));
        t.activate();
        assert!(matches!(a.admit(ip(3), &root), Verdict::Full));
    }

    #[test]
    fn close_pending_spares_active_connections() {
        let a = Admission::new(Caps {
            max_connections: 10,
            max_connections_per_ip: 10,
        });
        let root = CancellationToken::new();
        let (idle, _) = admitted(a.admit(ip(2), &root));
        let (active, _) = admitted(a.admit(ip(2), &root));
        active.activate();
        assert_eq!(a.close_pending(), 1);
        assert!(idle.close_token().is_cancelled());
        assert!(!active.close_token().is_cancelled());
        root.cancel();
        assert!(active.close_token().is_cancelled());
    }
}
