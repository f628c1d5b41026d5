//! Serves the PeerJS endpoint alone, for the real-client tests and the load
//! generator until the `pqnode` binary mounts it.
//!
//! `cargo run -p pqnode-peerjs --example serve -- 127.0.0.1:9001 [concurrent_limit]`
//! prints `listening on ADDR` once it accepts connections and shuts down
//! cleanly (close 1001) on Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::time::Duration;

use axum::serve::ListenerExt;
use pqnode_peerjs::{PeerJsConfig, PeerJsServer, router};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let mut args = std::env::args().skip(1);
    let addr: SocketAddr = args.next().as_deref().unwrap_or("127.0.0.1:9001").parse()?;
    let mut config = PeerJsConfig::default();
    if let Some(limit) = args.next() {
        config.concurrent_limit = limit.parse()?;
        // Load tests open every client from one address.
        config.max_connections_per_ip = config.concurrent_limit + 16;
        config.max_queued_total = config.max_queued_total.max(config.concurrent_limit);
    }
    let server = PeerJsServer::new(config);
    let app = router(server.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let listener = bind(addr)?;
    let local = listener.local_addr()?;
    // Signaling frames are small and latency-bound: never wait for Nagle.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    println!("listening on {local}");

    let stop = server.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            wait_for_signal().await;
            let outcome = stop.shutdown(Duration::from_secs(5)).await;
            println!("shutdown: {outcome:?}, {:?}", stop.stats());
        })
        .await?;
    Ok(())
}

/// `TcpListener::bind` listens with a backlog of 128 (std's value): a burst
/// of a few hundred clients overflows it and each dropped SYN costs the
/// client a 1 s retransmit. Node.js listens with 511; we use 1024.
fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

async fn wait_for_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
