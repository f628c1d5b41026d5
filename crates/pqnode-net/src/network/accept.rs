//! The listening side: binding, admission caps, inbound handshakes.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use aws_lc_rs::hmac;
use pqnode_crypto::Identity;

use super::pool::PeerConn;
use super::{Inner, lock, serve};
use crate::stats::Direction;
use crate::tls::{self, Observed};
use crate::wire::pb;

/// Binds the UDP socket. An unspecified IPv6 address gets a dual-stack
/// socket, so `[::]:4001` serves IPv4 and IPv6 peers alike.
pub(crate) fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        socket.set_only_v6(false)?;
    }
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// Endpoint settings. The stateless-reset key and the key that makes our
/// connection ids recognisable are derived from the identity, so a node that
/// crashed and restarted with the same key recognises its old connection
/// ids and resets its peers' stale connections at once (RFC 9000 §10.3)
/// instead of leaving them to time out. Neither derived key reveals the seed.
pub(crate) fn endpoint_config(identity: &Identity) -> quinn::EndpointConfig {
    let seed_key = hmac::Key::new(hmac::HMAC_SHA256, identity.seed().as_ref());
    let reset_secret = hmac::sign(&seed_key, b"pqnode/quic-stateless-reset/v1");
    let reset_key = hmac::Key::new(hmac::HMAC_SHA256, reset_secret.as_ref());
    let cid_secret = hmac::sign(&seed_key, b"pqnode/quic-connection-id/v1");
    let cid_key = cid_secret
        .as_ref()
        .first_chunk::<8>()
        .map_or(0, |bytes| u64::from_le_bytes(*bytes));

    let mut config = quinn::EndpointConfig::new(Arc::new(reset_key));
    config.cid_generator(move || {
        Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key))
    });
    config
}

pub(crate) async fn accept_loop(inner: Arc<Inner>) {
    loop {
        let incoming = tokio::select! {
            () = inner.cancel.cancelled() => break,
            incoming = inner.endpoint.accept() => incoming,
        };
        match incoming {
            Some(incoming) => admit(&inner, incoming),
            None => break,
        }
    }
    inner.accepting.store(false, Ordering::Release);
}

/// Held while a connection from one IP is open.
pub(crate) struct IpSlot {
    inner: Arc<Inner>,
    ip: IpAddr,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut per_ip = lock(&self.inner.per_ip);
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

/// Held while an inbound handshake is in progress.
struct HalfOpenSlot(Arc<Inner>);

impl Drop for HalfOpenSlot {
    fn drop(&mut self) {
        self.0.half_open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Decides, before any cryptography runs, whether to take an incoming
/// connection. Refusals are QUIC CONNECTION_REFUSED: cheap for both sides.
fn admit(inner: &Arc<Inner>, incoming: quinn::Incoming) {
    let limits = &inner.limits;
    let ip = incoming.remote_address().ip().to_canonical();
    let refuse = |incoming: quinn::Incoming, reason: &'static str| {
        inner.counters.refused(reason);
        if let Some(held) = inner.counters.noisy.refused.admit(Instant::now()) {
            tracing::debug!(%ip, reason, suppressed = held.count, "refusing incoming connection");
        }
        incoming.refuse();
    };
    if inner.endpoint.open_connections() >= limits.max_connections {
        return refuse(incoming, "max_connections");
    }
    let half_open = inner.half_open.load(Ordering::Acquire);
    if half_open >= limits.max_half_open {
        return refuse(incoming, "max_half_open");
    }
    // Under handshake load, make unvalidated clients prove their address
    // first (one extra round trip) so spoofed sources cannot make us sign.
    if half_open >= limits.max_half_open / 2
        && !incoming.remote_address_validated()
        && incoming.may_retry()
    {
        inner.counters.retries_sent.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = incoming.retry() {
            e.into_incoming().refuse();
        }
        return;
    }
    let ip_slot = {
        let mut per_ip = lock(&inner.per_ip);
        let count = per_ip.entry(ip).or_default();
        if *count >= limits.max_per_ip {
            drop(per_ip);
            return refuse(incoming, "max_per_ip");
        }
        *count += 1;
        IpSlot {
            inner: inner.clone(),
            ip,
        }
    };
    inner.half_open.fetch_add(1, Ordering::AcqRel);
    let half_open_slot = HalfOpenSlot(inner.clone());

    let observed = Observed::new();
    let mut server_config = inner.server_template.clone();
    match inner.tls.server_config(observed.clone()) {
        Ok(crypto) => server_config.crypto = Arc::new(crypto),
        Err(e) => {
            tracing::error!(error = %e, "cannot build the TLS server config");
            return refuse(incoming, "tls_config");
        }
    }
    let remote = incoming.remote_address();
    let connecting = match incoming.accept_with(Arc::new(server_config)) {
        Ok(connecting) => connecting,
        Err(e) => {
            // The ClientHello arrives with the first packet: a peer with no
            // algorithm in common is refused right here.
            let reason = super::dial::failure_reason(&e, &observed);
            inner.counters.handshake_failed(reason);
            // Anyone can send Initials by the thousand: one line per interval.
            if let Some(held) = inner.counters.noisy.inbound_handshake.admit(Instant::now()) {
                tracing::info!(%remote, reason, error = %e, suppressed = held.count, "inbound handshake refused");
            }
            return;
        }
    };
    inner.tasks.spawn(handshake(
        inner.clone(),
        connecting,
        observed,
        remote,
        ip_slot,
        half_open_slot,
    ));
}

async fn handshake(
    inner: Arc<Inner>,
    connecting: quinn::Connecting,
    observed: Arc<Observed>,
    remote: SocketAddr,
    ip_slot: IpSlot,
    half_open_slot: HalfOpenSlot,
) {
    let result = tokio::time::timeout(inner.limits.handshake_timeout, connecting).await;
    drop(half_open_slot);
    let connection = match result {
        Ok(Ok(connection)) => connection,
        Ok(Err(e)) => {
            let reason = super::dial::failure_reason(&e, &observed);
            inner.counters.handshake_failed(reason);
            if let Some(held) = inner.counters.noisy.inbound_handshake.admit(Instant::now()) {
                let detail = observed.refusal().map_or("", |(_, detail)| detail);
                tracing::info!(%remote, reason, error = %e, detail, suppressed = held.count, "inbound handshake refused");
            }
            return;
        }
        Err(_) => {
            inner.counters.handshake_failed("timeout");
            if let Some(held) = inner.counters.noisy.inbound_handshake.admit(Instant::now()) {
                tracing::info!(%remote, suppressed = held.count, "inbound handshake timed out");
            }
            return;
        }
    };
    let Some(peer) = super::dial::authenticated(&inner, &connection, &observed) else {
        if observed.peer() == Some(inner.local_id) {
            // Our own id from elsewhere, unless our own dial shows up within the window.
            let seen = Instant::now();
            let inner = inner.clone();
            let window = super::duplicate::SELF_DIAL_WINDOW;
            inner.tasks.clone().spawn(async move {
                tokio::time::sleep(window).await;
                inner.duplicates.inbound_self(remote, seen);
            });
        }
        return;
    };
    inner.counters.handshakes_ok.fetch_add(1, Ordering::Relaxed);
    inner.remember_address(peer.node_id, remote);
    tracing::info!(peer = %peer.node_id, %remote, "inbound connection ({} + {})", tls::KEY_EXCHANGE, peer.signature);
    let peer = Arc::new(PeerConn::new(
        peer.node_id,
        connection,
        Direction::Inbound,
        peer.signature,
        true,
        inner.limits.max_request_bytes_per_connection,
    ));
    inner.tasks.spawn(serve::serve_connection(
        inner.clone(),
        peer.clone(),
        ip_slot,
    ));
    inner.register(peer).await;
}

/// Closes a connection whose completed handshake still left the peer unacceptable.
pub(crate) fn close_unacceptable(connection: &quinn::Connection, reason: &str) {
    connection.close(
        crate::wire::close_code(pb::CloseCode::Unacceptable),
        reason.as_bytes(),
    );
}
