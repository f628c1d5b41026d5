// The two PeerJS servers of the differential test: the reference npm `peer`,
// in this process, and ours, either at PQNODE_SIGNALING_URL or started from
// the `serve` example of pqnode-peerjs.
import { PeerServer } from 'peer';
import fs from 'node:fs';
import path from 'node:path';
import { REPO, freePort, startProcess } from './processes.js';

export const SIGNALING_PATH = '/p2p-signaling';

export async function startReference() {
  const server = await new Promise((resolve) => {
    PeerServer(
      { host: '127.0.0.1', port: 0, path: SIGNALING_PATH, expire_timeout: 5000 },
      (httpServer) => resolve(httpServer),
    );
  });
  const { port } = server.address();
  return {
    name: 'npm peer@1.0.2',
    host: '127.0.0.1',
    port,
    async stop() {
      server.closeAllConnections?.();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

export async function startOurs() {
  const given = process.env.PQNODE_SIGNALING_URL;
  if (given) {
    const url = new URL(given);
    return { name: `pqnode at ${given}`, host: url.hostname, port: Number(url.port), async stop() {} };
  }
  const bin = process.env.PQNODE_PEERJS_SERVE ?? path.join(REPO, 'target/debug/examples/serve');
  if (!fs.existsSync(bin)) {
    throw new Error(`${bin} is missing: build it with cargo build -p pqnode-peerjs --example serve, or set PQNODE_SIGNALING_URL`);
  }
  const port = await freePort();
  const proc = await startProcess('pqnode-peerjs', bin, [`127.0.0.1:${port}`], {
    ready: (line) => line.startsWith('listening on'),
  });
  return { name: 'pqnode-peerjs', host: '127.0.0.1', port, stop: () => proc.stop() };
}
