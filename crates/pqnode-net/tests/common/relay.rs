//! A UDP relay between one client and one server that can be paused, to
//! make a peer vanish without its goodbye reaching anyone (a crash).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::UdpSocket;

pub(crate) struct Relay {
    pub addr: SocketAddr,
    paused: Arc<AtomicBool>,
    replies_paused: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    pub(crate) async fn start(server: SocketAddr) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let paused = Arc::new(AtomicBool::new(false));
        let drop_all = paused.clone();
        let replies_paused = Arc::new(AtomicBool::new(false));
        let drop_replies = replies_paused.clone();
        let task = tokio::spawn(async move {
            let mut client = None;
            let mut buf = vec![0u8; 65536];
            while let Ok((len, from)) = socket.recv_from(&mut buf).await {
                let dest = if from == server {
                    client
                } else {
                    client = Some(from);
                    Some(server)
                };
                let dropped = drop_all.load(Ordering::SeqCst)
                    || (from == server && drop_replies.load(Ordering::SeqCst));
                if let Some(dest) = dest.filter(|_| !dropped) {
                    let _ = socket.send_to(&buf[..len], dest).await;
                }
            }
        });
        Self {
            addr,
            paused,
            replies_paused,
            task,
        }
    }

    pub(crate) fn pause(&self, paused: bool) {
        self.paused.store(paused, Ordering::SeqCst);
    }

    /// Drops the server's datagrams only: the client's handshake stalls half-open.
    pub(crate) fn pause_replies(&self, paused: bool) {
        self.replies_paused.store(paused, Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}
