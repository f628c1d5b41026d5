// Real npm Yjs clients (yjs + y-websocket's WebsocketProvider) against one
// pqnode node's `/sync/{doc}` endpoint: concurrent edits converge, awareness
// comes and goes, a restart reloads documents without duplicating text, and a
// hostile client is closed with a reason while the others carry on.
//
// YJS_SERVER=reference runs the same tests against the npm reference server
// (@y/websocket-server) to check the test code itself; the checks that only
// pqnode promises (close codes, SIGKILL durability, REST) are skipped there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  TARGET,
  connectClient,
  peersSeen,
  rawSocket,
  restDocs,
  sleep,
  startTarget,
  varUint,
  waitFor,
} from './lib/yjs.js';

const ours = TARGET === 'pqnode';
const room = (what) => `${what}-${Math.random().toString(36).slice(2, 8)}`;

// A small deterministic PRNG: the same concurrent edits on every run.
function prng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Runs `body(server, track)`; every client `track`ed and the server end with it.
async function withServer(label, body) {
  const server = await startTarget(label);
  const clients = [];
  const track = (client) => {
    clients.push(client);
    return client;
  };
  try {
    await body(server, track);
  } finally {
    for (const client of clients) client.destroy();
    await server.stop();
  }
}

test('two clients on one node: concurrent edits converge; awareness appears and leaves', { timeout: 60000 }, async () => {
  await withServer('yjs-one-node', async (server, track) => {
    const doc = room('converge');
    const alice = track(connectClient(server.base, doc, { name: 'alice' }));
    const bob = track(connectClient(server.base, doc, { name: 'bob' }));
    const carol = track(connectClient(server.base, doc, { name: 'carol' }));
    await Promise.all([alice.synced(), bob.synced(), carol.synced()]);

    // Everyone sees everyone else's awareness state.
    await waitFor('awareness of all three', () =>
      peersSeen(alice).join() === 'bob,carol' && peersSeen(bob).join() === 'alice,carol' && peersSeen(carol).join() === 'alice,bob');
    alice.awareness.setLocalStateField('cursor', { index: 3 });
    await waitFor("bob to see alice's cursor", () =>
      [...bob.awareness.getStates().values()].some((s) => s.user?.name === 'alice' && s.cursor?.index === 3));

    // Concurrent edits: both sides edit in the same tick, so neither has the
    // other's changes when it makes its own. Inserts, deletes and one
    // transaction with several changes.
    const rand = prng(12);
    for (let i = 0; i < 60; i++) {
      for (const [client, letter] of [[alice, 'a'], [bob, 'b']]) {
        const t = client.text;
        if (t.length > 4 && rand() < 0.25) t.delete(Math.floor(rand() * (t.length - 2)), 2);
        else t.insert(Math.floor(rand() * (t.length + 1)), `${letter}${i % 10}`);
      }
    }
    alice.doc.transact(() => {
      alice.text.insert(0, '[start]');
      alice.text.insert(alice.text.length, '[end]');
    });
    bob.text.insert(bob.text.length, '[bob]');
    await waitFor('alice, bob and carol to converge', () => {
      const a = alice.text.toString();
      return a.includes('[bob]') && a.includes('[start]') && a === bob.text.toString() && a === carol.text.toString();
    });
    const final = alice.text.toString();
    for (const marker of ['[start]', '[end]', '[bob]']) {
      assert.equal(final.split(marker).length - 1, 1, `${marker} once: no update was applied twice (${final})`);
    }

    // A late joiner gets the whole document from the server (sync step 2).
    const dave = track(connectClient(server.base, doc, { name: 'dave' }));
    await dave.synced();
    await waitFor('dave to catch up', () => dave.text.toString() === final);

    // Bob's connection drops without a goodbye (no awareness removal from the
    // client itself): the server removes his state for the others, well
    // before the clients' own 30 s awareness timeout.
    bob.provider.shouldConnect = false;
    bob.provider.ws.terminate();
    await waitFor('alice and carol to see bob leave', () =>
      !peersSeen(alice).includes('bob') && !peersSeen(carol).includes('bob'), 10000);
    // Carol leaves the way an app does (provider.destroy()).
    carol.destroy();
    await waitFor('alice to see carol leave', () => peersSeen(alice).join() === 'dave', 10000);
    assert.equal(peersSeen(dave).join(), 'alice');

    // The remaining clients still edit together.
    dave.text.insert(0, 'D');
    await waitFor('alice to get dave\'s edit', () => alice.text.toString() === `D${final}`);
    assert.deepEqual(alice.closes, [], 'alice was never disconnected');
  });
});

test('after a restart the document is reloaded from disk and a reconnecting client does not duplicate text', { timeout: 90000 }, async () => {
  await withServer('yjs-restart', async (server, track) => {
    const doc = room('restart');
    const writer = track(connectClient(server.base, doc, { name: 'writer' }));
    const stayer = track(connectClient(server.base, doc, { name: 'stayer' }));
    await Promise.all([writer.synced(), stayer.synced()]);

    // Several separate updates (a log, not one snapshot) and one transaction.
    for (const word of ['hello', ' ', 'world']) writer.text.insert(writer.text.length, word);
    writer.doc.transact(() => {
      writer.text.insert(0, '> ');
      writer.text.delete(writer.text.length - 1, 1);
      writer.text.insert(writer.text.length, 'd.');
    });
    const expected = '> hello world.';
    // The stayer has it: the server committed it (pqnode acknowledges only
    // durable updates; the reference server's leveldb writes are async).
    await waitFor('the stayer to get the text', () => stayer.text.toString() === expected);
    if (!ours) await sleep(500);

    // Everyone goes away, the server restarts, and a fresh client connects
    // alone: what it gets can only come from the store.
    writer.provider.disconnect();
    stayer.provider.disconnect();
    await server.restart();
    const fresh = track(connectClient(server.base, doc, { name: 'fresh' }));
    await fresh.synced();
    assert.equal(fresh.text.toString(), expected, 'reloaded from disk');
    if (ours) {
      const view = await restDocs(server.node, doc);
      assert.equal(view.status, 200, `GET /api/docs/${doc}: ${view.body}`);
      assert.equal(view.body.split('hello world').length - 1, 1, `GET /api/docs/${doc} holds the text once: ${view.body}`);
      const list = await restDocs(server.node);
      assert.equal(list.status, 200, `GET /api/docs: ${list.body}`);
      assert.ok(list.body.includes(doc), `GET /api/docs lists ${doc}: ${list.body}`);
    }

    // The stayer comes back and stays connected through a second restart,
    // which its provider rides out by reconnecting on its own; the writer
    // comes back after it. Each resync sends the client's whole state in sync
    // step 2: none of it may show up twice.
    stayer.provider.connect();
    await stayer.synced();
    const closesBefore = stayer.closes.length;
    await server.restart();
    await waitFor('the stayer to be disconnected by the restart', () => stayer.closes.length > closesBefore);
    await waitFor('the stayer and the fresh client to reconnect and sync', () => stayer.provider.synced && fresh.provider.synced, 20000);
    writer.provider.connect();
    await writer.synced();
    await sleep(300);
    for (const client of [writer, stayer, fresh]) assert.equal(client.text.toString(), expected, client.name);

    writer.text.insert(writer.text.length, '!');
    await waitFor('everyone to get the edit made after the restart', () =>
      [stayer, fresh].every((c) => c.text.toString() === `${expected}!`));
  });
});

test('after SIGKILL, every update another client received is still there', { timeout: 90000, skip: !ours && 'the reference server does not promise durability' }, async () => {
  await withServer('yjs-sigkill', async (server, track) => {
    const doc = room('sigkill');
    const writer = track(connectClient(server.base, doc, { name: 'writer' }));
    const reader = track(connectClient(server.base, doc, { name: 'reader' }));
    await Promise.all([writer.synced(), reader.synced()]);
    // Updates keep flowing; the node is killed in the middle of them.
    let n = 0;
    const timer = setInterval(() => writer.text.insert(writer.text.length, `${n++ % 10}`), 2);
    await waitFor('the reader to receive 300 characters', () => reader.text.length >= 300);
    let seen;
    await server.restart({
      signal: 'SIGKILL',
      // Dead now: stop writing, and keep both clients from resending their
      // state to the restarted node, which would hide a loss.
      beforeStart() {
        clearInterval(timer);
        writer.provider.disconnect();
        reader.provider.disconnect();
        seen = reader.text.toString();
      },
    });
    const fresh = track(connectClient(server.base, doc, { name: 'fresh' }));
    await fresh.synced();
    const stored = fresh.text.toString();
    // The node relays an update only once it is on disk: all the reader got
    // (up to the kill) must be there; the writer's last ones may not.
    assert.ok(stored.startsWith(seen), `every update the reader received (${seen.length} chars) survived the kill; stored ${stored.length}`);
    assert.ok(stored.length <= writer.text.length);
  });
});

test('a hostile client is closed with a code and a reason; the others keep working', { timeout: 60000 }, async (t) => {
  await withServer('yjs-hostile', async (server, track) => {
    const doc = room('hostile');
    const alice = track(connectClient(server.base, doc, { name: 'alice' }));
    const bob = track(connectClient(server.base, doc, { name: 'bob' }));
    await Promise.all([alice.synced(), bob.synced()]);
    await waitFor('awareness', () => peersSeen(alice).join() === 'bob' && peersSeen(bob).join() === 'alice');
    alice.text.insert(0, 'before;');
    await waitFor('bob to get it', () => bob.text.toString() === 'before;');

    // pqnode closes permanent refusals with 4400-4499, on which y-websocket stops reconnecting:
    // 4413 too large, 4400 malformed.
    const cases = [
      // 5 MiB sync update: over any sensible frame limit (pqnode: 4 MiB + 64 KiB).
      { what: 'oversized update frame (5 MiB)', frame: () => Buffer.concat([Buffer.from([0, 2, ...varUint(5 << 20)]), Buffer.alloc(5 << 20, 7)]), code: [4413] },
      { what: 'update whose bytes are not a Yjs update', frame: () => Buffer.from([0, 2, 6, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]), code: [4400] },
      { what: 'truncated sync message (length past the end)', frame: () => Buffer.from([0, 2, 100, 1, 2, 3]), code: [4400] },
      { what: 'unknown sync message type 9', frame: () => Buffer.from([0, 9, 0]), code: [4400] },
      { what: 'var-uint longer than 64 bits', frame: () => Buffer.from([0, ...Array(11).fill(0xff)]), code: [4400] },
      { what: 'empty frame', frame: () => Buffer.alloc(0), code: [4400] },
      // y-protocols messages are binary; a text frame is not one (RFC 6455 1003).
      { what: 'text frame', frame: () => 'hello', code: [1003, 4400] },
      // Awareness: 1 client, id 77, clock 1, state that is not JSON.
      { what: 'awareness state that is not JSON', frame: () => Buffer.from([1, 8, 1, 77, 1, 4, ...Buffer.from('{no}')]), code: [4400] },
      // Awareness claiming 1000 clients in 3 bytes.
      { what: 'awareness count larger than the frame', frame: () => Buffer.from([1, 2, ...varUint(1000)]), code: [4400] },
    ];
    // Every case runs; what went wrong is reported at the end, all at once.
    const observed = [];
    const problems = [];
    for (const c of cases) {
      const hostile = rawSocket(server.base, doc);
      await hostile.open;
      await waitFor(`the greeting (${c.what})`, () => hostile.frames.length >= 1, 5000);
      hostile.ws.send(c.frame());
      const closed = await waitFor(`the server to close the hostile socket (${c.what})`, () => hostile.closed, ours ? 10000 : 1500)
        .catch(() => null);
      observed.push({ case: c.what, closed });
      t.diagnostic(`${c.what}: ${closed ? `closed ${closed.code} "${closed.reason}"` : 'not closed'}`);
      if (!closed) hostile.ws.terminate();
      if (ours) {
        if (!closed) problems.push(`${c.what}: not closed within 10 s`);
        else if (!c.code.includes(closed.code) || closed.reason.length === 0) {
          problems.push(`${c.what}: closed with ${closed.code} "${closed.reason}", expected ${c.code.join(' or ')} with a reason`);
        }
      }
      // The others still edit together after each case.
      alice.text.insert(alice.text.length, `${observed.length};`);
      await waitFor(`bob to get alice's edit after: ${c.what}`, () => bob.text.toString() === alice.text.toString(), 10000);
    }
    // A frame relayed to a stock client that it cannot read throws in its
    // socket handler (in a Node app: an uncaught exception).
    for (const client of [alice, bob]) {
      for (const e of client.errors) problems.push(`${client.name} could not read a frame the server relayed: ${e.error} (frame ${e.frame})`);
    }
    // One line, so that run.sh's summary shows all of it.
    assert.ok(problems.length === 0, `hostile sockets closed with the right code and a reason, nobody else harmed; ${problems.length} problems: ${problems.join(' | ')}`);

    bob.text.insert(0, 'B:');
    await waitFor('alice to get bob\'s edit', () => alice.text.toString().startsWith('B:before;'));
    assert.equal(peersSeen(alice).join(), 'bob');
    assert.equal(peersSeen(bob).join(), 'alice');
    assert.deepEqual(alice.closes, [], 'alice was never disconnected');
    assert.deepEqual(bob.closes, [], 'bob was never disconnected');
  });
});

// y-websocket clients drop a connection that brought no message for 30 s and
// expect the server to echo their own awareness renewals (every 15 s), as the
// reference server does. A client alone in a room depends on that echo.
test('a client alone in a room stays connected past the clients\' 30 s watchdog', { timeout: 70000 }, async () => {
  await withServer('yjs-alone', async (server, track) => {
    const alone = track(connectClient(server.base, room('alone'), { name: 'alone' }));
    await alone.synced();
    await sleep(40000);
    assert.deepEqual(alone.closes, [], `the client never dropped its connection (null: its own watchdog closed it after 30 s without a message)`);
  });
});
