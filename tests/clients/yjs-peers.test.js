// A restricted document opened by its listed peers: stock npm clients (yjs +
// y-websocket's WebsocketProvider), each holding an Ed25519 key made with
// WebCrypto, sign their own proof and pass it as `params: { peer }`. The node
// issues nothing: the operator lists peer ids with read or write rights, and
// removing one closes its session at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { webcrypto } from 'node:crypto';
import { apiToken } from './lib/pqnode.js';
import { connectClient, restDocs, sleep, startPqnode, waitFor } from './lib/yjs.js';

const subtle = webcrypto.subtle;
const b64url = (bytes) => Buffer.from(bytes).toString('base64url');

// A peer as a browser makes one: an Ed25519 key pair, and the peer id bound to
// it (docs/signaling-protocol.md: the first 20 bytes of
// SHA-256("pqnode/signaling/peer-id/v1" 0 "Ed25519" 0 publicKey)).
async function newPeer() {
  const keys = await subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify']);
  const publicKey = new Uint8Array(await subtle.exportKey('raw', keys.publicKey));
  const input = Buffer.concat([Buffer.from('pqnode/signaling/peer-id/v1\0Ed25519\0'), publicKey]);
  const digest = new Uint8Array(await subtle.digest('SHA-256', input));
  const id = Buffer.from(digest.subarray(0, 20)).toString('hex');
  // "open `doc` at node `nodeId` until `expires`", signed by the peer itself.
  const proof = async (nodeId, doc, expires = Date.now() + 10 * 60 * 1000) => {
    const signed = Buffer.from(`pqnode/doc-open/v1\0${nodeId}\n${doc}\n${expires}`);
    const signature = new Uint8Array(await subtle.sign({ name: 'Ed25519' }, keys.privateKey, signed));
    return `Ed25519.${b64url(publicKey)}.${expires}.${b64url(signature)}`;
  };
  return { id, proof };
}

async function setAccess(node, doc, body) {
  const response = await fetch(`${node.apiUrl}/api/docs/${encodeURIComponent(doc)}/access`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${apiToken(node)}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: response.status, json: await response.json() };
}

test('listed peers open a restricted document with their own signatures, until removed', { timeout: 60000 }, async () => {
  const server = await startPqnode('yjs-peers');
  const clients = [];
  try {
    const node = server.node;
    assert.match(node.nodeId ?? '', /^[0-9a-f]{40}$/, 'the node logged its id');
    const doc = `team-${Math.random().toString(36).slice(2, 8)}`;
    const [alice, bob, mallory] = await Promise.all([newPeer(), newPeer(), newPeer()]);

    const set = await setAccess(node, doc, { policy: 'restricted', peers: { [alice.id]: 'write', [bob.id]: 'read' } });
    assert.equal(set.status, 200, JSON.stringify(set.json));
    assert.deepEqual(set.json.peers, { [alice.id]: 'write', [bob.id]: 'read' });
    const bad = await setAccess(node, doc, { policy: 'restricted', peers: { 'not-a-peer-id': 'write' } });
    assert.equal(bad.status, 422, 'a peer id that is not one is refused');
    assert.ok(bad.json.error?.code, 'a JSON error with a code');

    const open = async (name, peer, proofFor = doc) => {
      const client = connectClient(server.base, doc, { name, params: { peer: await peer.proof(node.nodeId, proofFor) } });
      clients.push(client);
      return client;
    };
    const a = await open('alice', alice);
    const b = await open('bob', bob);
    await Promise.all([a.synced(), b.synced()]);

    // The writer's edit reaches the reader; the reader's own edit is not taken.
    a.text.insert(0, 'written by alice');
    await waitFor("bob to see alice's edit", () => b.text.toString() === 'written by alice');
    b.text.insert(0, 'bob was here: ');
    await sleep(500);
    const stored = await restDocs(node, doc);
    assert.equal(stored.json.content.text, 'written by alice', 'a read-only peer cannot write');
    assert.deepEqual(stored.json.peers, { [alice.id]: 'write', [bob.id]: 'read' });

    // An unlisted peer, and a listed peer's proof for another document, are refused
    // with 4403, and the provider does not retry.
    const m = await open('mallory', mallory);
    await waitFor('mallory to be refused', () => m.closes.some((c) => c?.code === 4403));
    const replay = await open('alice-elsewhere', alice, 'another-document');
    await waitFor("a proof for another document to be refused", () => replay.closes.some((c) => c?.code === 4403));
    assert.equal(m.text.toString(), '', 'mallory saw nothing');

    // Removing alice from the list closes her session at once; bob stays.
    const removed = await setAccess(node, doc, { policy: 'restricted', peers: { [bob.id]: 'read' } });
    assert.equal(removed.json.sessionsClosed, 1);
    await waitFor('alice to be disconnected with 4403', () => a.closes.some((c) => c?.code === 4403));
    assert.equal(b.closes.length, 0, 'bob was not disconnected');
    for (const client of [a, b, m, replay]) {
      assert.deepEqual(client.errors, [], `${client.name}: every frame was readable`);
    }
  } finally {
    for (const client of clients) client.destroy();
    await server.stop();
  }
});
