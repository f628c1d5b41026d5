// Yjs servers under test and real npm clients for them.
//
// Servers: a pqnode node (its `/sync/{doc}` endpoint on the signaling port) or
// the reference y-websocket server from npm (`@y/websocket-server`), each in
// its own process. Both are reached as `${server.base}/${doc}` with
// `base = ws://127.0.0.1:PORT/sync`: the reference server names a document
// after the whole path, so it serves the same URLs.
//
// Clients: npm `yjs` + `y-websocket`'s WebsocketProvider, with the `ws`
// package as its WebSocket (Node 20 has none) and the BroadcastChannel
// shortcut off: providers of one room in one process would otherwise sync
// through it without the server.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import * as Y from 'yjs';
import { WebsocketProvider } from 'y-websocket';
import { freePort, startProcess } from './processes.js';
import { apiToken, startNode } from './pqnode.js';

const HERE = new URL('.', import.meta.url).pathname;
export const REFERENCE_SERVER = path.join(HERE, '../node_modules/@y/websocket-server/src/server.js');
export const SYNC_PATH = '/sync';

// Which server the tests target: YJS_SERVER=reference for the npm one
// (to check the test code itself), else pqnode.
export const TARGET = process.env.YJS_SERVER === 'reference' ? 'reference' : 'pqnode';

// The reference server, persisting to leveldb in `persistDir` when given (so
// a restart reloads documents, as pqnode does from its store).
export async function startReference({ port, persistDir } = {}) {
  port ??= await freePort();
  const env = { HOST: '127.0.0.1', PORT: String(port) };
  if (persistDir) env.YPERSISTENCE = persistDir;
  const proc = await startProcess('y-websocket-server', process.execPath, [REFERENCE_SERVER], {
    env,
    ready: (line) => line.startsWith('running at'),
  });
  const server = {
    name: 'npm @y/websocket-server',
    kind: 'reference',
    proc,
    port,
    base: `ws://127.0.0.1:${port}${SYNC_PATH}`,
    get pid() {
      return server.proc.child.pid;
    },
    stop: () => server.proc.stop(),
    async restart({ signal = 'SIGTERM', beforeStart } = {}) {
      await server.proc.stop(signal);
      if (beforeStart) await beforeStart();
      const again = await startReference({ port, persistDir });
      server.proc = again.proc;
      return server;
    },
  };
  return server;
}

// A pqnode node; its Yjs endpoint is on the signaling port.
export async function startPqnode(label = 'pqnode', options = {}) {
  const node = await startNode(label, options);
  const port = Number(node.ready?.signaling?.split(':').pop() ?? node.ports.signaling);
  return {
    name: 'pqnode /sync',
    kind: 'pqnode',
    node,
    port,
    base: `ws://127.0.0.1:${port}${SYNC_PATH}`,
    get pid() {
      return node.pid;
    },
    stop: () => node.stop(),
    restart: (options) => node.restart(options),
  };
}

// The server the tests target (see TARGET), restartable on its data.
export async function startTarget(label = 'pqnode') {
  if (TARGET === 'reference') {
    const persistDir = fs.mkdtempSync(path.join(os.tmpdir(), 'y-websocket-server-'));
    const server = await startReference({ persistDir });
    const stop = server.stop;
    server.stop = async () => {
      await stop();
      fs.rmSync(persistDir, { recursive: true, force: true });
    };
    return server;
  }
  return startPqnode(label);
}

// The `ws` WebSocket a provider gets: it connects from `localAddress` when
// given (any 127.x.y.z on Linux: a load of many clients then does not look
// like one host to per-IP caps), and whatever the provider's message handler
// throws on a frame is recorded in `errors` (with the frame) instead of
// escaping as an uncaught exception: a frame a stock client cannot read is a
// finding to report, not a crash of the test process.
function clientWebSocket({ localAddress, errors }) {
  return class extends WebSocket {
    constructor(url, protocols, options) {
      super(url, protocols, localAddress ? { ...options, localAddress } : options);
    }

    set onmessage(handler) {
      super.onmessage = handler && ((event) => {
        try {
          handler(event);
        } catch (error) {
          errors.push({ error: `${error.name}: ${error.message}`, frame: Buffer.from(event.data).subarray(0, 64).toString('hex') });
        }
      });
    }

    get onmessage() {
      return super.onmessage;
    }
  };
}

// One npm client: a Y.Doc with a WebsocketProvider on `${base}/${doc}`.
// `errors`: what its provider threw on frames from the server; `closes`: the
// close code and reason of every connection it lost (null: it closed it).
export function connectClient(base, doc, { name, text = 'text', localAddress, ...options } = {}) {
  const ydoc = new Y.Doc();
  const errors = [];
  const provider = new WebsocketProvider(base, doc, ydoc, {
    WebSocketPolyfill: clientWebSocket({ localAddress, errors }),
    disableBc: true,
    maxBackoffTime: 1000,
    ...options,
  });
  if (name) provider.awareness.setLocalStateField('user', { name });
  const client = {
    name,
    doc: ydoc,
    provider,
    awareness: provider.awareness,
    text: ydoc.getText(text),
    errors,
    closes: [],
    synced: () => waitFor(`${name ?? 'client'} to sync`, () => provider.synced),
    destroy() {
      provider.destroy();
      ydoc.destroy();
    },
  };
  provider.on('connection-close', (event) => client.closes.push(event ? { code: event.code, reason: event.reason } : null));
  return client;
}

// Awareness users (state.user.name) a client sees, other than itself.
export function peersSeen(client) {
  const names = [];
  for (const [id, state] of client.awareness.getStates()) {
    if (id !== client.doc.clientID && state?.user?.name) names.push(state.user.name);
  }
  return names.sort();
}

export async function waitFor(what, fn, timeoutMs = 20000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// lib0 var-uint, for hand-made frames.
export function varUint(n) {
  const out = [];
  while (n > 0x7f) {
    out.push(0x80 | (n & 0x7f));
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

// A raw WebSocket on `${base}/${doc}` that records every frame and the close.
export function rawSocket(base, doc) {
  const ws = new WebSocket(`${base}/${doc}`, { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
  const raw = { ws, frames: [], closed: null, error: null };
  ws.binaryType = 'nodebuffer';
  ws.on('message', (data) => raw.frames.push(Buffer.from(data)));
  ws.on('close', (code, reason) => {
    raw.closed = { code, reason: reason.toString() };
  });
  ws.on('error', (e) => {
    raw.error = e;
  });
  raw.open = new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return raw;
}

// pqnode's REST view of documents (API port), with the node's token when it
// has one: `GET /api/docs/{doc}` or, without `doc`, `GET /api/docs`.
export async function restDocs(node, doc) {
  const token = apiToken(node);
  const url = `${node.apiUrl}/api/docs${doc === undefined ? '' : `/${encodeURIComponent(doc)}`}`;
  const response = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  const body = await response.text();
  let json = null;
  try {
    json = JSON.parse(body);
  } catch {
    // not JSON: kept as text
  }
  return { status: response.status, body, json };
}
