// The same PeerJS scenario, with the real `peerjs@1.5.5` client in headless
// Chromium, against the reference server (npm peer@1.0.2) and against ours.
// Both must show the same observable behaviour.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { launchChromium, newPage } from './lib/browser.js';
import { serveStatic } from './lib/static.js';
import { startReference, startOurs, SIGNALING_PATH } from './lib/peerjs-servers.js';

const HERE = new URL('.', import.meta.url).pathname;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

let browser;
let site;

before(async () => {
  browser = await launchChromium();
  site = await serveStatic({ '/peerjs.min.js': path.join(HERE, 'node_modules/peerjs/dist/peerjs.min.js') });
});

after(async () => {
  await browser?.close();
  site?.close();
});

async function peerPage(label) {
  const page = await newPage(browser, label);
  await page.goto(site.url + '/');
  await page.addScriptTag({ url: site.url + '/peerjs.min.js' });
  return page;
}

// Creates `new Peer(id, options)` in the page; resolves with how it ended up:
// {open: id} or {error: type, message}.
function openPeer(page, server, id, extra = {}) {
  return page.evaluate(
    ({ server, path, id, extra }) =>
      new Promise((resolve) => {
        const options = { host: server.host, port: server.port, path, key: 'peerjs', debug: 0, config: { iceServers: [] }, ...extra };
        const peer = id === null ? new Peer(options) : new Peer(id, options);
        window.peers = window.peers ?? {};
        peer.on('open', (openedId) => {
          window.peers[openedId] = peer;
          resolve({ open: openedId });
        });
        peer.on('error', (e) => resolve({ error: e.type, message: e.message }));
      }),
    { server: { host: server.host, port: server.port }, path: SIGNALING_PATH, id, extra },
  );
}

// What a person using peerjs would see, step by step.
async function observe(server) {
  const run = Math.random().toString(36).slice(2, 8);
  const aliceId = `alice-${run}`;
  const bobId = `bob-${run}`;
  const seen = {};
  const alice = await peerPage('alice');
  const bob = await peerPage('bob');
  const intruder = await peerPage('intruder');
  try {
    seen.aliceOpen = (await openPeer(alice, server, aliceId)).open === aliceId;
    seen.bobOpen = (await openPeer(bob, server, bobId)).open === bobId;

    // alice echoes whatever arrives on a data connection.
    await alice.evaluate((id) => {
      window.peers[id].on('connection', (conn) => conn.on('data', (d) => conn.send(`echo:${d}`)));
    }, aliceId);
    seen.echo = await bob.evaluate(
      ({ bobId, aliceId }) =>
        new Promise((resolve) => {
          const conn = window.peers[bobId].connect(aliceId, { serialization: 'json' });
          conn.on('open', () => conn.send('hello'));
          conn.on('data', resolve);
          conn.on('error', (e) => resolve(`error:${e.type}`));
          setTimeout(() => resolve('timeout'), 20000);
        }),
      { bobId, aliceId },
    );

    // Someone else asking for alice's id while she is online.
    seen.idTaken = await openPeer(intruder, server, aliceId);

    // Connecting to nobody: the server answers EXPIRE, the client peer-unavailable.
    seen.unknownPeer = await bob.evaluate(
      ({ bobId, run }) =>
        new Promise((resolve) => {
          const peer = window.peers[bobId];
          const onError = (e) => {
            peer.off('error', onError);
            resolve({ error: e.type, message: e.message });
          };
          peer.on('error', onError);
          peer.connect(`nobody-here-${run}`);
          setTimeout(() => resolve('timeout'), 20000);
        }),
      { bobId, run },
    );

    seen.badKey = await openPeer(intruder, server, `carol-${run}`, { key: 'not-the-key' });

    // No id given: the client fetches one from GET {path}{key}/id (cross-origin).
    const auto = await openPeer(intruder, server, null);
    seen.autoIdIsUuid = UUID.test(auto.open ?? '');

    const rest = await fetch(`http://${server.host}:${server.port}${SIGNALING_PATH}/peerjs/id`);
    seen.restId = { status: rest.status, uuid: UUID.test(await rest.text()) };
    const peers = await fetch(`http://${server.host}:${server.port}${SIGNALING_PATH}/peerjs/peers`);
    seen.peersStatus = peers.status;
  } finally {
    await Promise.all([alice.close(), bob.close(), intruder.close()]);
  }
  if (process.env.VERBOSE) console.error(server.name, seen);
  return seen;
}

const EXPECTED = {
  aliceOpen: true,
  bobOpen: true,
  echo: 'echo:hello',
  idTaken: { error: 'unavailable-id', message: 'ID "ALICE" is taken' },
  unknownPeer: { error: 'peer-unavailable', message: 'Could not connect to peer NOBODY' },
  badKey: { error: 'server-error', message: 'Invalid key provided' },
  autoIdIsUuid: true,
  restId: { status: 200, uuid: true },
  peersStatus: 401,
};

function normalise(seen) {
  const copy = structuredClone(seen);
  copy.idTaken.message = copy.idTaken.message?.replace(/"alice-\w+"/, '"ALICE"');
  if (copy.unknownPeer.message) copy.unknownPeer.message = copy.unknownPeer.message.replace(/nobody-here-\w+/, 'NOBODY');
  return copy;
}

test('peerjs behaves the same against npm peer and against pqnode-peerjs', { timeout: 120000 }, async () => {
  const reference = await startReference();
  const ours = await startOurs();
  try {
    const fromReference = normalise(await observe(reference));
    const fromOurs = normalise(await observe(ours));
    assert.deepEqual(fromReference, EXPECTED, `reference ${reference.name} does not behave as expected`);
    assert.deepEqual(fromOurs, fromReference, `${ours.name} differs from ${reference.name}`);
  } finally {
    await reference.stop();
    await ours.stop();
  }
});

// The wire itself, for quirks the client hides: exact frames, src stamping,
// silent same-token takeover, queued delivery and one EXPIRE per pair.
async function observeWire(server) {
  const { default: WebSocket } = await import('ws');
  const base = `ws://${server.host}:${server.port}${SIGNALING_PATH}/peerjs`;
  const run = Math.random().toString(36).slice(2, 8);
  const open = (id, token, key = 'peerjs') =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(`${base}?key=${key}&id=${id}&token=${token}&version=1.5.5`);
      ws.frames = [];
      ws.on('message', (d) => ws.frames.push(JSON.parse(d.toString())));
      ws.on('open', () => resolve(ws));
      ws.on('error', reject);
    });
  const until = async (ws, n) => {
    for (let i = 0; i < 200 && ws.frames.length < n; i++) await new Promise((r) => setTimeout(r, 50));
    return ws.frames.slice();
  };
  const seen = {};
  const a = await open(`a${run}`, 'ta');
  seen.open = await until(a, 1);
  const again = await open(`a${run}`, 'ta');
  // Relay to the replacing socket proves the takeover; it gets no OPEN.
  const b = await open(`b${run}`, 'tb');
  await until(b, 1);
  b.send(JSON.stringify({ type: 'OFFER', src: 'forged', dst: `a${run}`, payload: { x: 1 } }));
  seen.takeover = (await until(again, 1)).map((m) => ({ ...m, dst: 'A', src: m.src === `b${run}` ? 'B' : m.src }));
  // Messages for c wait until c connects.
  // (from the replacing socket: ours closes the replaced one with 4009, the reference leaves it open)
  again.send(JSON.stringify({ type: 'CANDIDATE', dst: `c${run}`, payload: { n: 1 } }));
  await new Promise((r) => setTimeout(r, 100));
  const c = await open(`c${run}`, 'tc');
  seen.queued = (await until(c, 2)).map((m) => m.type);
  // Two messages to nobody: one EXPIRE.
  b.send(JSON.stringify({ type: 'OFFER', dst: `nobody${run}`, payload: {} }));
  b.send(JSON.stringify({ type: 'CANDIDATE', dst: `nobody${run}`, payload: {} }));
  await until(b, 2);
  await new Promise((r) => setTimeout(r, 1500)); // room for a wrong second EXPIRE
  seen.expire = b.frames.slice(1).map((m) => ({ ...m, src: m.src.replace(run, ''), dst: m.dst.replace(run, '') }));
  for (const ws of [a, again, b, c]) ws.terminate();
  return seen;
}

test('the wire is the same for npm peer and pqnode-peerjs', { timeout: 60000 }, async () => {
  const reference = await startReference();
  const ours = await startOurs();
  try {
    const [fromReference, fromOurs] = await Promise.all([observeWire(reference), observeWire(ours)]);
    assert.deepEqual(fromReference, {
      open: [{ type: 'OPEN' }],
      takeover: [{ type: 'OFFER', src: 'B', dst: 'A', payload: { x: 1 } }],
      queued: ['OPEN', 'CANDIDATE'],
      expire: [{ type: 'EXPIRE', src: 'nobody', dst: 'b' }],
    });
    assert.deepEqual(fromOurs, fromReference);
  } finally {
    await reference.stop();
    await ours.stop();
  }
});
