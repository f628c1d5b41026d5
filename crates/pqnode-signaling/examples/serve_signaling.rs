//! Serves the native signaling endpoint alone, for real-client tests until
//! the `pqnode` binary mounts it.
//!
//! `cargo run -p pqnode-signaling --example serve_signaling -- 127.0.0.1:3001`
//! prints `listening on ws://ADDR/p2p-signaling node_id=HEX` once it accepts
//! connections, and shuts down cleanly (`shutdown`, close 1001) on Ctrl-C or
//! SIGTERM. The node id is random per run; clients read it from `hello`.

use std::net::SocketAddr;
use std::time::Duration;

use pqnode_crypto::Identity;
use pqnode_signaling::{PATH, SignalingConfig, SignalingServer, router};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .as_deref()
        .unwrap_or("127.0.0.1:3001")
        .parse()?;
    let node_id = Identity::generate()?.node_id();
    let server = SignalingServer::new(node_id, SignalingConfig::default());
    let app = router(server.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!(
        "listening on ws://{}{PATH} node_id={node_id}",
        listener.local_addr()?
    );

    let stop = server.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            wait_for_signal().await;
            let clean = stop.shutdown(Duration::from_secs(5)).await;
            println!("shutdown complete={clean} stats={:?}", stop.stats());
        })
        .await?;
    Ok(())
}

async fn wait_for_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
