//! What pqnode's tests share, so each crate's `tests/common` keeps only what is its own.
//!
//! What it is for: waiting for state that settles asynchronously ([`eventually`],
//! [`settles`]) and Yjs frames made by hand ([`yjs`]). Every crate may take it as a
//! dev-dependency.
//!
//! What it is not: a home for fakes. It depends on no pqnode crate (a dev-dependency that
//! depended back on the crate under test would hand the test a second copy of that crate's
//! types), and nothing in it stands in for a real part.

use std::time::Duration;

/// How often a condition is polled.
const POLL: Duration = Duration::from_millis(10);

/// Polls `check` until it holds or `within` passes; whether it came to hold. For state that
/// settles asynchronously (a peer noticing a close), when the caller's assertion wants to
/// print the state it saw:
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// use std::time::Duration;
/// let started = tokio::time::Instant::now();
/// let done = || async move { started.elapsed() > Duration::from_millis(30) };
/// assert!(pqnode_testkit::settles(Duration::from_secs(5), done).await);
/// # });
/// ```
pub async fn settles(within: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Polls `check` until it holds; fails the test, naming `what`, if `within` passes first.
pub async fn eventually(within: Duration, what: &str, check: impl AsyncFnMut() -> bool) {
    assert!(
        settles(within, check).await,
        "timed out after {within:?} waiting for {what}"
    );
}

/// Yjs protocol frames (y-protocols' sync messages) built by hand, for tests that speak to
/// the `/sync/{doc}` endpoint without a Yjs client library.
pub mod yjs {
    /// A sync update message (type 0, sub-type 2) around a v1 `update`.
    pub fn update_message(update: &[u8]) -> Vec<u8> {
        sync_message(2, update)
    }

    /// A sync step 1 message (type 0, sub-type 0) around a v1 `state_vector`: what a client
    /// sends on open, as y-websocket does, to be answered with everything it lacks.
    pub fn step1_message(state_vector: &[u8]) -> Vec<u8> {
        sync_message(0, state_vector)
    }

    fn sync_message(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut message = vec![0, kind];
        var_uint(&mut message, payload.len());
        message.extend_from_slice(payload);
        message
    }

    /// lib0's variable-length unsigned integer: 7 bits a byte, low bits first.
    pub fn var_uint(out: &mut Vec<u8>, mut n: usize) {
        while n > 0x7f {
            out.push(0x80 | (n & 0x7f) as u8);
            n >>= 7;
        }
        out.push(n as u8);
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn lengths_are_lib0_var_uints() {
            assert_eq!(super::update_message(&[9]), vec![0, 2, 1, 9]);
            let long = super::update_message(&[0; 300]);
            assert_eq!(&long[..4], &[0, 2, 0xac, 0x02]);
            assert_eq!(super::step1_message(&[0]), vec![0, 0, 1, 0]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_condition_that_never_holds_times_out() {
        assert!(!settles(Duration::from_millis(50), async || false).await);
        let mut calls = 0;
        let counted = async || {
            calls += 1;
            calls == 3
        };
        assert!(settles(Duration::from_secs(1), counted).await);
        assert_eq!(calls, 3);
    }
}
