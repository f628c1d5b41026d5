//! A signaling client that lives on a host: its WebSocket is opened from inside the host's
//! namespace (a thread there runs it), and the test talks to it through channels.

use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::Duration;

use futures_util::StreamExt;
use pqnode_crypto::Identity;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

use super::netns;
use crate::common::signaling;

/// A registered signaling peer on one host.
pub(crate) struct HostPeer {
    pub(crate) id: String,
    out: Option<mpsc::UnboundedSender<Value>>,
    inbox: mpsc::UnboundedReceiver<Value>,
    thread: Option<JoinHandle<()>>,
}

impl HostPeer {
    /// Connects from namespace `ns` to the signaling server at `addr` and registers a fresh
    /// ML-DSA-87 peer in `topic`.
    pub(crate) async fn connect(ns: &str, addr: SocketAddr, topic: &str) -> Self {
        let (id_tx, id_rx) = oneshot::channel();
        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Value>();
        let (in_tx, inbox) = mpsc::unbounded_channel::<Value>();
        let (ns, topic) = (ns.to_owned(), topic.to_owned());
        let thread = std::thread::spawn(move || {
            netns::enter(&ns).unwrap_or_else(|e| panic!("cannot enter {ns}: {e}"));
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the peer");
            runtime.block_on(async move {
                let key = Identity::generate().expect("a peer key");
                let (mut ws, id) = signaling::register(addr, &key, &[&topic]).await;
                let _ = id_tx.send(id);
                loop {
                    tokio::select! {
                        outgoing = out_rx.recv() => match outgoing {
                            Some(v) => signaling::send(&mut ws, v).await,
                            None => break,
                        },
                        incoming = ws.next() => match incoming {
                            Some(Ok(Message::Text(text))) => {
                                let Ok(v) = serde_json::from_str::<Value>(&text) else { continue };
                                if in_tx.send(v).is_err() {
                                    break;
                                }
                            }
                            Some(Ok(_)) => {}
                            Some(Err(_)) | None => break,
                        },
                    }
                }
                let _ = ws.close(None).await;
            });
        });
        let id = tokio::time::timeout(Duration::from_secs(30), id_rx)
            .await
            .expect("the peer registered within 30 s")
            .expect("the peer registered (its thread panicked otherwise)");
        Self {
            id,
            out: Some(out_tx),
            inbox,
            thread: Some(thread),
        }
    }

    pub(crate) fn send(&self, v: Value) {
        self.out
            .as_ref()
            .expect("open")
            .send(v)
            .expect("the peer's connection is open");
    }

    /// The next message `wanted` accepts within `within`, skipping others; `None` on timeout.
    pub(crate) async fn next_where(
        &mut self,
        within: Duration,
        wanted: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let v = tokio::time::timeout_at(deadline, self.inbox.recv())
                .await
                .ok()?
                .expect("the peer's connection is open");
            if wanted(&v) {
                return Some(v);
            }
        }
    }

    /// Every message received and not yet read.
    pub(crate) fn drain(&mut self) -> Vec<Value> {
        let mut all = Vec::new();
        while let Ok(v) = self.inbox.try_recv() {
            all.push(v);
        }
        all
    }
}

impl Drop for HostPeer {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop; it closes the WebSocket and exits.
        drop(self.out.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
