// The two PeerJS servers of the differential test: the reference npm `peer`
// and ours — at PQNODE_SIGNALING_URL if set, else a real `pqnode` node
// (PQNODE_BIN), else the `serve` example of pqnode-peerjs alone.
import fs from 'node:fs';
import path from 'node:path';
import { REPO, freePort, startProcess } from './processes.js';
import { PQNODE_BIN, startNode } from './pqnode.js';

const HERE = new URL('.', import.meta.url).pathname;
export const SIGNALING_PATH = '/p2p-signaling';

// In a child process: the reference server's own timers never stop, so in
// this process they would keep the test runner alive.
export async function startReference() {
  const port = await freePort();
  const proc = await startProcess('peer', process.execPath, [path.join(HERE, 'peer-server.js'), String(port)], {
    ready: (line) => line.startsWith('listening on'),
  });
  return { name: 'npm peer@1.0.2', host: '127.0.0.1', port, stop: () => proc.stop() };
}

export async function startOurs() {
  const given = process.env.PQNODE_SIGNALING_URL;
  if (given) {
    const url = new URL(given);
    return { name: `pqnode at ${given}`, host: url.hostname, port: Number(url.port), async stop() {} };
  }
  if (!process.env.PQNODE_PEERJS_SERVE && fs.existsSync(PQNODE_BIN)) {
    const node = await startNode('pqnode');
    const url = new URL(node.signalingHttp);
    return { name: `pqnode (${PQNODE_BIN})`, host: url.hostname, port: Number(url.port), stop: () => node.stop() };
  }
  const bin = process.env.PQNODE_PEERJS_SERVE ?? path.join(process.env.CARGO_TARGET_DIR ?? path.join(REPO, 'target'), 'debug/examples/serve');
  if (!fs.existsSync(bin)) {
    throw new Error(`${bin} is missing: build pqnode or the pqnode-peerjs serve example, or set PQNODE_SIGNALING_URL`);
  }
  const port = await freePort();
  const proc = await startProcess('pqnode-peerjs', bin, [`127.0.0.1:${port}`], {
    ready: (line) => line.startsWith('listening on'),
  });
  return { name: 'pqnode-peerjs', host: '127.0.0.1', port, stop: () => proc.stop() };
}
