// The same Yjs client load against pqnode's `/sync/{doc}` endpoint and against
// the reference y-websocket server from npm (@y/websocket-server), measured in
// the same run, one server at a time. Figures only: it never fails on time.
//
// Load: ROOMS documents, CLIENTS_PER_ROOM real npm clients (yjs +
// y-websocket's WebsocketProvider over `ws`) in each; every document starts
// with 1 KiB of text. Then UPDATES text inserts, spread round-robin over all
// clients, in two phases: paced at RATE updates/s (latency at a steady load),
// then a burst sent as fast as this process can (throughput). Each insert
// carries its send time; the other clients of the room note when it reaches
// them (broadcast latency: one client's update to its arrival at another).
// Clients connect from many loopback addresses (32 per 127.1.x.y) so that
// per-IP connection caps see many hosts, as in a real deployment.
// Memory: the server process's VmRSS (/proc/<pid>/status) idle, after one
// client per room (documents + those connections), after all clients (the
// extra connections only).
//
// usage (from the repository root):
//   npm ci --prefix tests/clients
//   cargo build --release -p pqnode
//   node tests/clients/bench/yjs-compare.js
// env: ROOMS (500), CLIENTS_PER_ROOM (3), UPDATES (2000), RATE (350) — the
//      load of Hocuspocus's published figure (1 500 clients, 500 rooms, 350/s);
//      SERVERS (reference,pqnode), PQNODE_BIN (target/release/pqnode),
//      REFERENCE_PERSIST=1 (the reference server persists to leveldb, as
//      pqnode always persists to its store), JSON=1 (also print raw figures).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

process.setMaxListeners(0); // every provider adds an exit listener
const HERE = new URL('.', import.meta.url).pathname;
const REPO = path.resolve(HERE, '../../..');
process.env.PQNODE_BIN ??= path.join(REPO, 'target/release/pqnode');
process.env.RUST_LOG ??= 'warn';

const ROOMS = Number(process.env.ROOMS ?? 500);
const CLIENTS_PER_ROOM = Number(process.env.CLIENTS_PER_ROOM ?? 3);
const UPDATES = Number(process.env.UPDATES ?? 2000);
const RATE = Number(process.env.RATE ?? 350);
const SERVERS = (process.env.SERVERS ?? 'reference,pqnode').split(',').map((s) => s.trim()).filter(Boolean);
const CONNECT_BATCH = 50;
const INITIAL_TEXT = 'x'.repeat(1024);

// Say what to run instead of failing on a bare "Cannot find package".
const missing = [];
const modules = ['ws', 'yjs', 'y-websocket', '@y/websocket-server'];
if (!modules.every((name) => fs.existsSync(path.join(HERE, '../node_modules', name, 'package.json')))) {
  missing.push(`npm ci --prefix tests/clients   # ${modules.join(', ')} from the lock file`);
}
if (SERVERS.includes('pqnode') && !fs.existsSync(process.env.PQNODE_BIN)) {
  missing.push(`cargo build --release -p pqnode   # ${process.env.PQNODE_BIN} is missing (or set PQNODE_BIN)`);
}
if (missing.length > 0) {
  console.error(`yjs-compare.js needs, run from ${REPO}:\n  ${missing.join('\n  ')}`);
  process.exit(1);
}
// Imported only now: they need the npm packages (and PQNODE_BIN set).
const { connectClient, startPqnode, startReference, sleep, waitFor } = await import('../lib/yjs.js');
const { rssKiB } = await import('./loadgen.js');

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const round = (x, digits = 2) => (Number.isFinite(x) ? Number(x.toFixed(digits)) : x);

async function startServer(kind) {
  if (kind === 'reference') {
    const persistDir = process.env.REFERENCE_PERSIST ? fs.mkdtempSync(path.join(os.tmpdir(), 'y-ws-bench-')) : undefined;
    const server = await startReference({ persistDir });
    const stop = server.stop;
    server.stop = async () => {
      await stop();
      if (persistDir) fs.rmSync(persistDir, { recursive: true, force: true });
    };
    server.name = `npm @y/websocket-server${persistDir ? ' (leveldb)' : ' (in memory)'}`;
    return server;
  }
  if (kind === 'pqnode') {
    const server = await startPqnode('pqnode-bench');
    server.name = `pqnode (${path.relative(REPO, process.env.PQNODE_BIN)})`;
    return server;
  }
  throw new Error(`unknown server ${kind}: use reference or pqnode`);
}

// Markers in the text: |<sender>.<seq>@<send time, ms since this process started>|
const MARKER = /\|(\d+)\.(\d+)@([\d.]+)\|/g;

async function measure(kind) {
  const server = await startServer(kind);
  const clients = [];
  const latencies = { paced: [], burst: [] };
  let phase = null;
  let received = 0;
  let lastArrival = 0;
  try {
    await sleep(500);
    const rssIdle = rssKiB(server.pid);

    const connect = async (room, index) => {
      // 32 clients per source address (127.1.x.y), as if from many hosts.
      const host = Math.floor(index / 32);
      const localAddress = `127.1.${Math.floor(host / 250)}.${(host % 250) + 1}`;
      const client = connectClient(server.base, `bench-${room}`, { name: `c${index}`, localAddress });
      client.index = index;
      client.room = room;
      client.text.observe((event) => {
        if (event.transaction.local || phase === null) return;
        const now = performance.now();
        for (const op of event.delta) {
          if (typeof op.insert !== 'string') continue;
          for (const m of op.insert.matchAll(MARKER)) {
            latencies[phase].push(now - Number(m[3]));
            received++;
            lastArrival = now;
          }
        }
      });
      clients.push(client);
      return client;
    };
    const connectAll = async (specs) => {
      for (let i = 0; i < specs.length; i += CONNECT_BATCH) {
        const batch = specs.slice(i, i + CONNECT_BATCH).map(([room, index]) => connect(room, index));
        const ready = await Promise.all(batch);
        await Promise.all(ready.map((c) => c.synced()));
      }
    };

    // One client per room: creates the documents, each with 1 KiB of text.
    const started = performance.now();
    await connectAll(Array.from({ length: ROOMS }, (_, room) => [room, room * CLIENTS_PER_ROOM]));
    for (const c of clients) c.text.insert(0, INITIAL_TEXT);
    await sleep(1000);
    const rssDocs = rssKiB(server.pid);

    // The other clients of every room: connections only.
    const rest = [];
    for (let room = 0; room < ROOMS; room++) {
      for (let k = 1; k < CLIENTS_PER_ROOM; k++) rest.push([room, room * CLIENTS_PER_ROOM + k]);
    }
    await connectAll(rest);
    await waitFor('every client to hold its room\'s initial text', () => clients.every((c) => c.text.length === INITIAL_TEXT.length), 60000);
    const connectSeconds = (performance.now() - started) / 1000;
    await sleep(1000);
    const rssConnected = rssKiB(server.pid);

    let seq = 0;
    const send = (client) => client.text.insert(client.text.length, `|${client.index}.${seq++}@${performance.now().toFixed(3)}|`);
    const fanout = CLIENTS_PER_ROOM - 1;
    const runPhase = async (name, sender) => {
      phase = name;
      received = 0;
      const expected = UPDATES * fanout;
      const t0 = performance.now();
      await sender();
      const sentAt = performance.now();
      await waitFor(`${name}: every update at every other client`, () => received >= expected, 30000).catch(() => {});
      const elapsed = (Math.max(lastArrival, sentAt) - t0) / 1000;
      const sorted = latencies[name].sort((a, b) => a - b);
      phase = null;
      return {
        updatesPerSec: round(UPDATES / elapsed, 0),
        deliveriesPerSec: round(received / elapsed, 0),
        p50Ms: round(percentile(sorted, 50)),
        p99Ms: round(percentile(sorted, 99)),
        maxMs: round(sorted[sorted.length - 1] ?? NaN),
        lost: expected - received,
      };
    };

    // Paced: RATE updates/s in 10 ms ticks, round-robin over every client.
    let next = 0;
    const paced = await runPhase('paced', () => new Promise((resolve) => {
      let sent = 0;
      let carry = 0;
      const timer = setInterval(() => {
        carry += RATE / 100;
        while (carry >= 1 && sent < UPDATES) {
          send(clients[next++ % clients.length]);
          sent++;
          carry--;
        }
        if (sent >= UPDATES) {
          clearInterval(timer);
          resolve();
        }
      }, 10);
    }));
    // Burst: everything at once, yielding to I/O every 100 updates.
    const burst = await runPhase('burst', async () => {
      for (let sent = 0; sent < UPDATES; sent++) {
        send(clients[next++ % clients.length]);
        if (sent % 100 === 99) await new Promise((r) => setImmediate(r));
      }
    });
    const rssAfter = rssKiB(server.pid);

    const connections = clients.length;
    const extra = ROOMS * (CLIENTS_PER_ROOM - 1);
    const perConnection = extra > 0 ? (rssConnected - rssDocs) / extra : NaN;
    const perDocument = (rssDocs - rssIdle) / ROOMS - (Number.isFinite(perConnection) ? perConnection : 0);
    return {
      server: server.name,
      connections,
      connectSeconds: round(connectSeconds, 1),
      paced,
      burst,
      rssKiB: { idle: rssIdle, documents: rssDocs, connected: rssConnected, afterLoad: rssAfter },
      kibPerDocument: round(perDocument, 1),
      kibPerConnection: round(perConnection, 1),
    };
  } finally {
    for (const c of clients) c.destroy();
    await server.stop();
  }
}

console.log(`Yjs load: ${ROOMS} rooms x ${CLIENTS_PER_ROOM} clients, ${UPDATES} updates paced at ${RATE}/s then ${UPDATES} in a burst; ` +
  `${os.cpus().length} CPUs, Node ${process.version}`);
const results = {};
for (const kind of SERVERS) {
  results[kind] = await measure(kind);
  console.log(`${results[kind].server}: done`);
  if (process.env.JSON) console.log(JSON.stringify(results[kind]));
}

const rows = [
  ['connect all clients (s)', (r) => r.connectSeconds],
  [`paced ${RATE}/s: updates/s`, (r) => r.paced.updatesPerSec],
  ['paced: p50 broadcast latency (ms)', (r) => r.paced.p50Ms],
  ['paced: p99 broadcast latency (ms)', (r) => r.paced.p99Ms],
  ['paced: lost deliveries', (r) => r.paced.lost],
  ['burst: updates/s', (r) => r.burst.updatesPerSec],
  ['burst: deliveries/s', (r) => r.burst.deliveriesPerSec],
  ['burst: p50 broadcast latency (ms)', (r) => r.burst.p50Ms],
  ['burst: p99 broadcast latency (ms)', (r) => r.burst.p99Ms],
  ['burst: lost deliveries', (r) => r.burst.lost],
  ['RSS idle (KiB)', (r) => r.rssKiB.idle],
  ['RSS with all clients (KiB)', (r) => r.rssKiB.connected],
  ['RSS after the load (KiB)', (r) => r.rssKiB.afterLoad],
  ['memory per document (KiB)', (r) => r.kibPerDocument],
  ['memory per connection (KiB)', (r) => r.kibPerConnection],
];
const table = rows.map(([metric, get]) => {
  const row = { metric };
  for (const kind of SERVERS) row[kind] = get(results[kind]);
  if (results.reference && results.pqnode) {
    const ratio = row.pqnode / row.reference;
    row['pqnode/reference'] = Number.isFinite(ratio) ? round(ratio) : '-';
  }
  return row;
});
console.table(table);
