// Starts real `pqnode` processes on loopback ports for end-to-end tests.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO, freePort, startProcess } from './processes.js';

export const PQNODE_BIN = process.env.PQNODE_BIN ?? path.join(process.env.CARGO_TARGET_DIR ?? path.join(REPO, 'target'), 'debug/pqnode');

async function waitHttp(url, timeoutMs = 30000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      const response = await fetch(url);
      if (response.ok) return response;
    } catch {
      // not listening yet
    }
    if (Date.now() > until) throw new Error(`${url} did not answer within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// The ports and node id of the "pqnode is ready" log line, when it is there:
// `... pqnode is ready elapsed_ms=53 api=127.0.0.1:1 signaling="127.0.0.1:2" p2p="127.0.0.1:3" node_id=ab..`
export function parseReady(lines) {
  const plain = lines.join('\n').replace(/\x1b\[[0-9;]*m/g, '');
  const line = plain.split('\n').find((l) => l.includes('pqnode is ready'));
  if (!line) return null;
  const ready = {};
  for (const [, key, value] of line.matchAll(/(\w+)="?([^"\s]+)"?/g)) ready[key] = value;
  return ready;
}

// A node with its own data folder and ports; `bootstrap` is another node's
// p2p address. Ready once its signaling port serves the PeerJS id route.
// `dataDir` and `ports` ({ api, signaling, p2p }) reuse a previous node's
// (see `restart`); a data folder given by the caller is not removed on stop.
export async function startNode(label, { bootstrap, dataDir, ports } = {}) {
  if (!fs.existsSync(PQNODE_BIN)) {
    throw new Error(`${PQNODE_BIN} is missing: cargo build -p pqnode, or set PQNODE_BIN`);
  }
  const ownDir = !dataDir;
  dataDir ??= fs.mkdtempSync(path.join(os.tmpdir(), `pqnode-${label}-`));
  const api = ports?.api ?? (await freePort());
  const signaling = ports?.signaling ?? (await freePort());
  const p2p = ports?.p2p ?? (await freePort());
  const args = [
    '--data-dir', dataDir,
    '--api-addr', `127.0.0.1:${api}`,
    '--signaling-addr', `127.0.0.1:${signaling}`,
    '--p2p-addr', `127.0.0.1:${p2p}`,
  ];
  if (bootstrap) args.push('--bootstrap', bootstrap);
  const proc = await startProcess(label, PQNODE_BIN, args, {
    ready: () => true, // first output line: the process is up; readiness is checked below
    env: { RUST_LOG: process.env.RUST_LOG ?? 'info' },
  });
  const node = {
    label,
    proc,
    dataDir,
    ports: { api, signaling, p2p },
    apiUrl: `http://127.0.0.1:${api}`,
    signalingHttp: `http://127.0.0.1:${signaling}`,
    signalingUrl: `ws://127.0.0.1:${signaling}/p2p-signaling`,
    p2pAddr: `127.0.0.1:${p2p}`,
    get pid() {
      return node.proc.child.pid;
    },
    // Stops the process; removes the data folder unless `keepData` or the
    // caller gave it.
    async stop({ keepData = false } = {}) {
      const code = await node.proc.stop();
      if (ownDir && !keepData) fs.rmSync(dataDir, { recursive: true, force: true });
      return code;
    },
    // Stops the node (SIGTERM, or `signal`), runs `beforeStart` if given, and
    // starts it again on the same data folder and ports; `node` then
    // describes the new process.
    async restart({ signal = 'SIGTERM', beforeStart } = {}) {
      await node.proc.stop(signal);
      if (beforeStart) await beforeStart();
      const again = await startNode(label, { bootstrap, dataDir, ports: node.ports });
      node.proc = again.proc;
      node.ready = again.ready;
      node.nodeId = again.nodeId;
      return node;
    },
  };
  try {
    await waitHttp(`${node.signalingHttp}/p2p-signaling/peerjs/id`);
  } catch (e) {
    await node.stop();
    throw new Error(`${label}: ${e.message}\n${proc.lines.join('\n')}`);
  }
  // The node logs its id at start-up; with it, others can bootstrap as `id@addr`.
  const plain = proc.lines.join('\n').replace(/\x1b\[[0-9;]*m/g, '');
  node.nodeId = /node_id=([0-9a-f]{40})/.exec(plain)?.[1];
  node.bootstrapAddr = node.nodeId ? `${node.nodeId}@${node.p2pAddr}` : node.p2pAddr;
  node.ready = parseReady(proc.lines);
  return node;
}

// The API token of a node (its data folder's `api.token`), for endpoints that
// need `Authorization: Bearer`; null when the node has none.
export function apiToken(node) {
  try {
    return fs.readFileSync(path.join(node.dataDir, 'api.token'), 'utf8').trim();
  } catch {
    return null;
  }
}

// The demo page as this node serves it, if it does; null otherwise.
export async function nodeDemoUrl(node) {
  for (const base of [node.signalingHttp, node.apiUrl]) {
    for (const p of ['/demo.html', '/demo', '/']) {
      try {
        const response = await fetch(base + p);
        if (response.ok && (await response.text()).includes('pqnode WebRTC chat')) return base + p;
      } catch {
        // try the next place
      }
    }
  }
  return null;
}
