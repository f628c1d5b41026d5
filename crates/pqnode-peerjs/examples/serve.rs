//! Serves the PeerJS endpoint alone, for the real-client tests and the load
//! generator until the `pqnode` binary mounts it.
//!
//! `cargo run -p pqnode-peerjs --example serve -- 127.0.0.1:9001 [concurrent_limit]`
//! prints `listening on ADDR` once it accepts connections and shuts down
//! cleanly (close 1001) on Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::time::Duration;

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
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on {}", listener.local_addr()?);

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
