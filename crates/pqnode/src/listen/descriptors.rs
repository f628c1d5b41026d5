//! How many descriptors the two HTTP listeners may hold between them, and fitting their
//! connection caps into that: a flood should meet our cap, never `EMFILE`.

use super::Caps;
use super::admission::MAX_CLOSING;

/// Descriptors kept back for everything that is not an HTTP connection: the store, the
/// QUIC socket, the runtime, logs and the files the monitor reads.
const RESERVED_DESCRIPTORS: u64 = 64;

/// Raises the soft descriptor limit to the hard one (what most servers do at start) and
/// returns how many descriptors the TCP listeners may use between them, if the limit is known.
pub(crate) fn descriptor_budget() -> Option<usize> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own and reads nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit only reads the struct we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        }
    }
    if limit.rlim_cur == libc::RLIM_INFINITY {
        return None;
    }
    let soft = limit.rlim_cur;
    let reserve = RESERVED_DESCRIPTORS.max(soft / 8);
    Some(soft.saturating_sub(reserve).max(2).min(usize::MAX as u64) as usize)
}

/// Fits the API's and the signaling port's connection caps into `budget` descriptors.
/// Caps that already fit are kept; otherwise the API (a local, operator-facing port) gets at
/// most a quarter and the public signaling port the rest. Per-IP caps never exceed the
/// listener's cap.
pub(crate) fn fit_to_budget(api: Caps, signaling: Caps, budget: Option<usize>) -> (Caps, Caps) {
    let clamp = |caps: Caps, max: usize| Caps {
        max_connections: caps.max_connections.min(max).max(1),
        max_connections_per_ip: caps.max_connections_per_ip.min(max).max(1),
    };
    // Each listener may briefly hold MAX_CLOSING evicted sockets beyond its cap.
    let budget = budget.map(|b| b.saturating_sub(2 * MAX_CLOSING).max(2));
    let Some(budget) = budget else {
        return (
            clamp(api, api.max_connections),
            clamp(signaling, signaling.max_connections),
        );
    };
    if api
        .max_connections
        .saturating_add(signaling.max_connections)
        <= budget
    {
        return (
            clamp(api, api.max_connections),
            clamp(signaling, signaling.max_connections),
        );
    }
    let api_max = api.max_connections.min((budget / 4).max(1));
    let signaling_max = signaling
        .max_connections
        .min(budget.saturating_sub(api_max).max(1));
    (clamp(api, api_max), clamp(signaling, signaling_max))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(max: usize, per_ip: usize) -> Caps {
        Caps {
            max_connections: max,
            max_connections_per_ip: per_ip,
        }
    }

    #[test]
    fn caps_that_fit_are_kept() {
        let (a, s) = fit_to_budget(caps(100, 100), caps(500, 64), Some(1000));
        assert_eq!((a, s), (caps(100, 100), caps(500, 64)));
    }

    #[test]
    fn caps_over_the_descriptor_budget_shrink_and_still_fit() {
        let (a, s) = fit_to_budget(caps(1024, 1024), caps(20_000, 128), Some(192));
        assert_eq!(a, caps(44, 44));
        assert_eq!(s, caps(132, 128));
        assert!(a.max_connections + s.max_connections + 2 * MAX_CLOSING <= 192);
    }

    #[test]
    fn no_known_limit_keeps_the_configuration() {
        let (a, s) = fit_to_budget(caps(10, 50), caps(20, 5), None);
        assert_eq!((a, s), (caps(10, 10), caps(20, 5)));
    }
}
