// Starts real `pqnode` processes on loopback ports for end-to-end tests.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO, freePort, startProcess } from './processes.js';

export const PQNODE_BIN = process.env.PQNODE_BIN ?? path.join(REPO, 'target/debug/pqnode');

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

// A node with its own data folder and ports; `bootstrap` is another node's
// p2p address. Ready once its signaling port serves the PeerJS id route.
export async function startNode(label, { bootstrap } = {}) {
  if (!fs.existsSync(PQNODE_BIN)) {
    throw new Error(`${PQNODE_BIN} is missing: cargo build -p pqnode, or set PQNODE_BIN`);
  }
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `pqnode-${label}-`));
  const [api, signaling, p2p] = [await freePort(), await freePort(), await freePort()];
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
    apiUrl: `http://127.0.0.1:${api}`,
    signalingHttp: `http://127.0.0.1:${signaling}`,
    signalingUrl: `ws://127.0.0.1:${signaling}/p2p-signaling`,
    p2pAddr: `127.0.0.1:${p2p}`,
    async stop() {
      const code = await proc.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
      return code;
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
  return node;
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
