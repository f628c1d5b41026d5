//! Signaling between nodes over QUIC: relay envelopes and withdrawals, sent and answered.

use bytes::Bytes;
use pqnode_crypto::NodeId;
use pqnode_net::{Caller, Handler, HandlerError, Network, Protocol};
use pqnode_signaling::SignalingServer;
use pqnode_signaling::federation::{
    BoxFuture, DeliveryOutcome, FederationError, Forwarder, RelayEnvelope, Withdrawal, wire,
};

/// Signaling envelopes between nodes: wire id 2 (see `pqnode-net`'s `proto/wire.proto`),
/// protobuf from `pqnode-signaling`'s `proto/federation.proto`. An envelope carries one
/// signaling message (SDP offers are the largest, a few KiB), its routing and its
/// sender's presence proof (up to 7.3 KiB): 64 KiB is ample.
pub(super) const SIGNALING_RELAY: Protocol = Protocol::new(2, "SIGNALING_RELAY", 64 * 1024);

/// "A peer you relayed to through me left": wire id 6 (id 5 is retired). The request is a
/// protobuf `Withdrawal`, the answer empty. It can only end routes through the sending node.
pub(super) const SIGNALING_WITHDRAW: Protocol = Protocol::new(6, "SIGNALING_WITHDRAW", 256);

/// [`Forwarder`] over QUIC: one request on [`SIGNALING_RELAY`] or [`SIGNALING_WITHDRAW`].
pub(super) struct QuicForwarder {
    pub network: Network,
}

impl Forwarder for QuicForwarder {
    fn forward(
        &self,
        node: NodeId,
        envelope: RelayEnvelope,
    ) -> BoxFuture<'_, Result<DeliveryOutcome, FederationError>> {
        Box::pin(async move {
            let payload = wire::encode_envelope(&envelope);
            // The network finds `node` through the DHT when it has no address for it.
            let reply = self
                .network
                .request(node, SIGNALING_RELAY, payload)
                .await
                .map_err(FederationError::from_error)?;
            wire::decode_delivery(&reply).map_err(FederationError::from_error)
        })
    }

    fn withdrawn(
        &self,
        node: NodeId,
        withdrawal: Withdrawal,
    ) -> BoxFuture<'_, Result<(), FederationError>> {
        Box::pin(async move {
            let payload = wire::encode_withdrawal(&withdrawal);
            self.network
                .request(node, SIGNALING_WITHDRAW, payload)
                .await
                .map_err(FederationError::from_error)?;
            Ok(())
        })
    }
}

/// Answers [`SIGNALING_WITHDRAW`]: the calling node, as TLS proved it, ends its own routes.
pub(super) struct WithdrawHandler {
    pub signaling: SignalingServer,
}

impl Handler for WithdrawHandler {
    async fn handle(&self, caller: Caller, payload: Bytes) -> Result<Bytes, HandlerError> {
        let withdrawal = wire::decode_withdrawal(&payload)
            .map_err(|e| HandlerError::BadRequest(format!("withdrawal: {e}")))?;
        self.signaling.withdrawn(caller.node_id, withdrawal);
        Ok(Bytes::new())
    }
}

/// Envelopes from other nodes, handed to the local signaling server.
pub(super) struct RelayHandler {
    pub signaling: SignalingServer,
}

impl Handler for RelayHandler {
    async fn handle(&self, caller: Caller, payload: Bytes) -> Result<Bytes, HandlerError> {
        let envelope = wire::decode_envelope(&payload)
            .map_err(|e| HandlerError::BadRequest(format!("relay envelope: {e}")))?;
        // Replies are routed back to `origin`: it must be the node that proved itself in TLS.
        if envelope.origin != caller.node_id {
            return Err(HandlerError::BadRequest(
                "envelope origin is not the sending node".into(),
            ));
        }
        let outcome = self
            .signaling
            .deliver_remote(envelope)
            .map_err(|e| HandlerError::BadRequest(e.to_string()))?;
        Ok(wire::encode_delivery(outcome))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pqnode_signaling::{PEER_ID_LEN, PeerId, PresenceProof, SignalingConfig};

    fn peer(n: u8) -> PeerId {
        hex::encode([n; PEER_ID_LEN]).parse().unwrap()
    }

    /// An envelope from a real ML-DSA-87 peer attached to `origin`, carrying its proof.
    fn envelope(origin: NodeId) -> Bytes {
        use pqnode_signaling::{Algorithm, REGISTER_DOMAIN, registration_body};
        let key = pqnode_crypto::Identity::generate().unwrap();
        let public_key = key.public_key().as_bytes().to_vec();
        let from = PeerId::derive(Algorithm::MlDsa87, &public_key);
        let nonce = "ab".repeat(32);
        let body = registration_body(&origin, &nonce, &from, 1);
        let signature = key.sign(REGISTER_DOMAIN, body.as_bytes()).unwrap();
        let proof = PresenceProof {
            algorithm: Algorithm::MlDsa87,
            public_key,
            peer_id: from,
            node_id: origin,
            nonce,
            ts_ms: 1,
            signature: signature.as_bytes().to_vec(),
        };
        wire::encode_envelope(&RelayEnvelope {
            msg_id: pqnode_signaling::federation::MessageId([0x11; 16]),
            origin,
            from,
            from_proof: proof,
            to: peer(2),
            kind: pqnode_signaling::RelayKind::Offer,
            sid: None,
            data: "{}".into(),
        })
    }

    #[tokio::test]
    async fn an_envelope_must_come_from_its_origin_node() {
        let [local, sender, other] = [[1u8; 20], [2u8; 20], [3u8; 20]].map(NodeId::from_bytes);
        let handler = RelayHandler {
            signaling: SignalingServer::new(local, SignalingConfig::default()),
        };
        let caller = Caller {
            node_id: sender,
            addr: "127.0.0.1:4001".parse().unwrap(),
        };

        let spoofed = handler.handle(caller, envelope(other)).await;
        assert!(
            matches!(spoofed, Err(HandlerError::BadRequest(_))),
            "{spoofed:?}"
        );

        // From its origin it is accepted; the addressee is not here, and the reply says so.
        let reply = handler.handle(caller, envelope(sender)).await.unwrap();
        let outcome = wire::decode_delivery(&reply).unwrap();
        assert_eq!(outcome, DeliveryOutcome::NotFound);

        let garbage = handler
            .handle(caller, Bytes::from_static(b"\xff not protobuf"))
            .await;
        assert!(matches!(garbage, Err(HandlerError::BadRequest(_))));
    }
}
