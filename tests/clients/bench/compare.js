// Runs the same load against npm peer@1.0.2 and against pqnode-peerjs (the
// `serve` example) at 1 000 and 10 000 clients, and prints figures and ratios.
// usage: node compare.js [--seconds 10]   (figures only; never fails on time)
// needs, from the repository root:
//   npm ci --prefix tests/clients                           (ws, peer)
//   cargo build --release -p pqnode-peerjs --example serve  (or PQNODE_PEERJS_SERVE)
import fs from 'node:fs';
import path from 'node:path';
import { REPO, freePort, startProcess } from '../lib/processes.js';

const HERE = new URL('.', import.meta.url).pathname;
const SERVE_BIN = process.env.PQNODE_PEERJS_SERVE ?? path.join(REPO, 'target/release/examples/serve');

// Say what to run instead of failing on a bare "Cannot find package".
const missing = [];
if (!['ws', 'peer'].every((name) => fs.existsSync(path.join(HERE, '../node_modules', name, 'package.json')))) {
  missing.push('npm ci --prefix tests/clients   # the npm packages ws and peer, from the lock file');
}
if (!fs.existsSync(SERVE_BIN)) {
  missing.push(`cargo build --release -p pqnode-peerjs --example serve   # ${SERVE_BIN} is missing`);
}
if (missing.length > 0) {
  console.error(`compare.js needs, run from ${REPO}:\n  ${missing.join('\n  ')}`);
  process.exit(1);
}
// Imported only now: loadgen.js needs `ws`.
const { run } = await import('./loadgen.js');
const seconds = Number(process.argv[process.argv.indexOf('--seconds') + 1] || 10);
const SCENARIOS = [
  { clients: 1000, rate: 5000 },
  { clients: 10000, rate: 10000 },
  // Near saturation of one Node.js load generator: the ratio is the figure.
  { clients: 1000, rate: 40000 },
];

async function server(kind, limit) {
  const port = await freePort();
  const ready = (line) => line.startsWith('listening on');
  if (kind === 'peer') {
    return startProcess('peer', process.execPath, [path.join(HERE, '../lib/peer-server.js'), String(port), String(limit)], { ready }).then((p) => ({ ...p, port }));
  }
  return startProcess('pqnode-peerjs', SERVE_BIN, [`127.0.0.1:${port}`, String(limit)], { ready }).then((p) => ({ ...p, port }));
}

const rows = [];
for (const scenario of SCENARIOS) {
  const pair = {};
  for (const kind of ['peer', 'pqnode']) {
    const proc = await server(kind, scenario.clients + 100);
    try {
      pair[kind] = await run({
        url: `ws://127.0.0.1:${proc.port}/p2p-signaling/peerjs`,
        clients: scenario.clients,
        rate: scenario.rate,
        seconds,
        batch: 250,
        pid: proc.child.pid,
        label: kind,
      });
      console.log(JSON.stringify(pair[kind]));
    } finally {
      await proc.stop();
    }
  }
  rows.push({
    clients: scenario.clients,
    offered: scenario.rate,
    'throughput peer / ours': `${pair.peer.throughputPerSec} / ${pair.pqnode.throughputPerSec}`,
    'p50 ms peer / ours': `${pair.peer.p50Ms} / ${pair.pqnode.p50Ms}`,
    'p99 ms peer / ours': `${pair.peer.p99Ms} / ${pair.pqnode.p99Ms}`,
    'p99 ratio (peer/ours)': Number((pair.peer.p99Ms / pair.pqnode.p99Ms).toFixed(2)),
    'KiB/client peer / ours': `${pair.peer.kibPerClient} / ${pair.pqnode.kibPerClient}`,
    'memory ratio (peer/ours)': Number((pair.peer.kibPerClient / pair.pqnode.kibPerClient).toFixed(2)),
  });
}
console.table(rows);
