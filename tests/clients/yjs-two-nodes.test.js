// Real npm Yjs clients on two different pqnode nodes (the second bootstraps
// from the first, as in browser-two-nodes.test.js) edit the same document and
// converge: the nodes replicate it between them (DHT provider records + QUIC).
// No central server: each client only ever talks to its own node.
//
// Not in run.sh yet: it needs node-to-node replication of documents.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connectClient, startPqnode, waitFor } from './lib/yjs.js';

// Replication goes through the DHT: give it time, but not forever.
const REPLICATION_MS = Number(process.env.YJS_REPLICATION_TIMEOUT_MS ?? 30000);

test('clients on two different nodes see each other\'s edits live and converge', { timeout: 180000 }, async () => {
  const cleanups = [];
  try {
    const nodeA = await startPqnode('yjs-node-a');
    cleanups.push(() => nodeA.stop());
    const nodeB = await startPqnode('yjs-node-b', { bootstrap: nodeA.node.bootstrapAddr });
    cleanups.push(() => nodeB.stop());
    assert.notEqual(nodeA.port, nodeB.port);

    const doc = `two-nodes-${Math.random().toString(36).slice(2, 8)}`;
    const alice = connectClient(nodeA.base, doc, { name: 'alice' });
    cleanups.push(() => alice.destroy());
    await alice.synced();
    // Written on A before anyone on B asked for the document.
    alice.text.insert(0, 'from A; ');

    const bob = connectClient(nodeB.base, doc, { name: 'bob' });
    cleanups.push(() => bob.destroy());
    await bob.synced();
    await waitFor('bob (node B) to get what alice wrote on node A before he came', () =>
      bob.text.toString() === 'from A; ', REPLICATION_MS);

    // Live, both ways.
    bob.text.insert(bob.text.length, 'from B; ');
    await waitFor('alice to get bob\'s edit live', () => alice.text.toString() === 'from A; from B; ', REPLICATION_MS);
    alice.text.insert(alice.text.length, 'again A; ');
    const live = 'from A; from B; again A; ';
    await waitFor('bob to get alice\'s edit live', () => bob.text.toString() === live, REPLICATION_MS);

    // Concurrent edits on both nodes converge to one text.
    for (let i = 0; i < 50; i++) {
      alice.text.insert(Math.floor(alice.text.length / 2), 'a');
      bob.text.insert(0, 'b');
    }
    await waitFor('both nodes to converge after concurrent edits', () => {
      const a = alice.text.toString();
      return a.length === live.length + 100 && a === bob.text.toString();
    }, REPLICATION_MS);

    // A client that joins on B later gets the whole document from B.
    const carol = connectClient(nodeB.base, doc, { name: 'carol' });
    cleanups.push(() => carol.destroy());
    await carol.synced();
    await waitFor('carol (node B) to catch up', () => carol.text.toString() === alice.text.toString(), REPLICATION_MS);
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup();
  }
});
