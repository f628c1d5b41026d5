//! A UDP relay between one client and one server that can be paused, to
//! make a peer vanish without its goodbye reaching anyone (a crash), or made
//! to deliver only the client's first flight (to count round trips).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::net::UdpSocket;

pub(crate) struct Relay {
    pub addr: SocketAddr,
    paused: Arc<AtomicBool>,
    replies_paused: Arc<AtomicBool>,
    first_flight: Arc<FirstFlight>,
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
        let first_flight = Arc::new(FirstFlight::default());
        let flight = first_flight.clone();
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
                let after_first_flight = if from == server {
                    flight.answered.store(true, Ordering::SeqCst);
                    false
                } else {
                    flight.only.load(Ordering::SeqCst) && flight.answered.load(Ordering::SeqCst)
                };
                let dropped = drop_all.load(Ordering::SeqCst)
                    || after_first_flight
                    || (from == server && drop_replies.load(Ordering::SeqCst));
                if from != server && !dropped {
                    flight.client_datagrams.fetch_add(1, Ordering::SeqCst);
                }
                if let Some(dest) = dest.filter(|_| !dropped) {
                    let _ = socket.send_to(&buf[..len], dest).await;
                }
            }
        });
        Self {
            addr,
            paused,
            replies_paused,
            first_flight,
            task,
        }
    }

    pub(crate) fn pause(&self, paused: bool) {
        self.paused.store(paused, Ordering::SeqCst);
    }

    /// From now on, once the server has sent anything, drops every datagram of
    /// the client: the server sees only the client's first flight. `false`
    /// lets everything through again.
    pub(crate) fn first_flight_only(&self, only: bool) {
        self.first_flight.only.store(only, Ordering::SeqCst);
    }

    /// How many of the client's datagrams reached the server.
    pub(crate) fn client_datagrams_delivered(&self) -> u64 {
        self.first_flight.client_datagrams.load(Ordering::SeqCst)
    }

    /// Drops the server's datagrams only: the client's handshake stalls half-open.
    pub(crate) fn pause_replies(&self, paused: bool) {
        self.replies_paused.store(paused, Ordering::SeqCst);
    }
}

#[derive(Default)]
struct FirstFlight {
    only: AtomicBool,
    answered: AtomicBool,
    client_datagrams: AtomicU64,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}
