"""A WebRTC peer nobody here wrote (aiortc) on pqnode's native signaling.

Registers with an Ed25519 key (ML-DSA is not available in Python), joins a
topic, answers the first offer it gets and echoes every data-channel message
back as "echo:<message>". Prints "PEER <peer_id>" once registered, then
"ECHOED <message>" per echo. Exits on SIGTERM or when the server closes.

usage: python3 aiortc_peer.py ws://127.0.0.1:3001/p2p-signaling TOPIC
"""

import asyncio
import hashlib
import json
import sys
import time

import aioice.ice
import websockets
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

# On a host whose only interface is loopback, aioice drops 127.0.0.1 and has
# no candidate at all; with it the peer works on any host.
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]


def peer_id_of(public_key: bytes) -> str:
    digest = hashlib.sha256(
        b"pqnode/signaling/peer-id/v1\x00" + b"Ed25519\x00" + public_key
    ).hexdigest()
    return digest[:40]


class Session:
    def __init__(self, ws):
        self.ws = ws
        self.next_id = 1
        self.pending = {}

    async def request(self, message: dict) -> None:
        """Sends a request; replies are checked by the reader."""
        message = {**message, "id": self.next_id}
        self.pending[self.next_id] = message["type"]
        self.next_id += 1
        await self.ws.send(json.dumps(message))


async def main(url: str, topic: str) -> None:
    key = Ed25519PrivateKey.generate()
    public_key = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    peer_id = peer_id_of(public_key)
    pcs = []

    async with websockets.connect(url, max_size=64 * 1024) as ws:
        hello = json.loads(await ws.recv())
        assert hello["type"] == "hello", hello
        ts = int(time.time() * 1000)
        signed = b"pqnode/signaling/register/v1\x00" + (
            f"{hello['node_id']}\n{hello['nonce']}\n{peer_id}\n{ts}".encode()
        )
        await ws.send(json.dumps({
            "type": "register", "id": "r1", "algorithm": "Ed25519",
            "public_key": public_key.hex(), "peer_id": peer_id,
            "nonce": hello["nonce"], "ts": ts, "signature": key.sign(signed).hex(),
            "topics": [topic],
        }))
        registered = json.loads(await ws.recv())
        if registered.get("type") != "registered":
            raise SystemExit(f"registration refused: {registered}")
        print(f"PEER {peer_id}", flush=True)
        session = Session(ws)

        async for frame in ws:
            msg = json.loads(frame)
            kind = msg.get("type")
            if kind == "error":
                print(f"ERROR {msg}", file=sys.stderr, flush=True)
            elif kind == "offer":
                pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
                pcs.append(pc)
                remote, sid = msg["from"], msg.get("sid")

                @pc.on("datachannel")
                def on_datachannel(channel):
                    @channel.on("message")
                    def on_message(text):
                        channel.send(f"echo:{text}")
                        print(f"ECHOED {text}", flush=True)

                await pc.setRemoteDescription(
                    RTCSessionDescription(sdp=msg["data"]["sdp"], type="offer")
                )
                # aiortc gathers before it answers: its candidates are in the SDP.
                await pc.setLocalDescription(await pc.createAnswer())
                answer = {"type": "answer", "to": remote,
                          "data": {"type": "answer", "sdp": pc.localDescription.sdp}}
                if sid is not None:
                    answer["sid"] = sid
                await session.request(answer)
                pc.remote_peer = remote
            elif kind == "candidate" and msg.get("data") and pcs:
                data = msg["data"]
                line = data["candidate"]
                if not line:
                    continue
                candidate = candidate_from_sdp(line.split(":", 1)[1])
                candidate.sdpMid = data.get("sdpMid")
                candidate.sdpMLineIndex = data.get("sdpMLineIndex")
                await pcs[-1].addIceCandidate(candidate)
    for pc in pcs:
        await pc.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
