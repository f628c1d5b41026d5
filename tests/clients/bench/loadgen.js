// Load generator for PeerJS signaling servers: connects N clients, relays
// CANDIDATE-sized messages between pairs at a fixed offered rate, and prints
// throughput, relay latency (p50/p99) and the server's memory per client.
// Figures only: it never fails on time.
//
// usage: node loadgen.js --url ws://127.0.0.1:9001/p2p-signaling/peerjs
//          --clients 1000 --rate 5000 --seconds 10 [--pid SERVER_PID] [--label NAME]
import WebSocket from 'ws';
import fs from 'node:fs';

function args() {
  const out = { clients: 1000, rate: 5000, seconds: 10, batch: 250, label: 'server' };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) out[argv[i].replace(/^--/, '')] = argv[i + 1];
  for (const k of ['clients', 'rate', 'seconds', 'batch', 'pid']) if (out[k] !== undefined) out[k] = Number(out[k]);
  if (!out.url) throw new Error('--url is required');
  return out;
}

export function rssKiB(pid) {
  if (!pid) return null;
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const CANDIDATE = 'candidate:547348620 1 udp 2113937151 192.0.2.2 59092 typ host generation 0 ufrag czNw network-cost 999';

function connect(url, id, onMessage) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url}?key=peerjs&id=${id}&token=t${id}&version=1.5.5`, { perMessageDeflate: false });
    ws.on('message', (data) => {
      const msg = JSON.parse(data.toString());
      if (msg.type === 'OPEN') resolve(ws);
      else if (msg.type === 'ERROR' || msg.type === 'ID-TAKEN') reject(new Error(`${id}: ${data}`));
      else onMessage(msg);
    });
    ws.on('error', reject);
  });
}

export async function run(options) {
  const { url, clients, rate, seconds, batch, pid, label } = options;
  const prefix = `load${Math.random().toString(36).slice(2, 7)}`;
  const latencies = [];
  let received = 0;
  let measuring = false;
  const onMessage = (msg) => {
    if (msg.type !== 'CANDIDATE' || !measuring) return;
    received++;
    latencies.push(performance.now() - msg.payload.t);
  };

  const rssBefore = rssKiB(pid);
  const started = performance.now();
  const sockets = [];
  for (let i = 0; i < clients; i += batch) {
    const group = [];
    for (let j = i; j < Math.min(clients, i + batch); j++) group.push(connect(url, `${prefix}-${j}`, onMessage));
    sockets.push(...(await Promise.all(group)));
  }
  const connectMs = performance.now() - started;
  await new Promise((r) => setTimeout(r, 500));
  const rssConnected = rssKiB(pid);

  // Offered load: `rate` messages per second in 10 ms ticks, round-robin over
  // senders; client i talks to client i^1 (pairs), like two browsers.
  measuring = true;
  let sent = 0;
  let next = 0;
  const tickMs = 10;
  const perTick = rate * (tickMs / 1000);
  let carry = 0;
  const sendStart = performance.now();
  await new Promise((resolve) => {
    const timer = setInterval(() => {
      carry += perTick;
      while (carry >= 1) {
        carry -= 1;
        const from = next;
        next = (next + 1) % clients;
        const to = from ^ 1 < clients ? from ^ 1 : from;
        sockets[from].send(JSON.stringify({
          type: 'CANDIDATE',
          dst: `${prefix}-${to}`,
          payload: { candidate: { candidate: CANDIDATE, sdpMid: '0', sdpMLineIndex: 0 }, type: 'data', connectionId: 'dc_load', t: performance.now() },
        }));
        sent++;
      }
      if (performance.now() - sendStart >= seconds * 1000) {
        clearInterval(timer);
        resolve();
      }
    }, tickMs);
  });
  // Let the tail arrive.
  const deadline = performance.now() + 5000;
  while (received < sent && performance.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const elapsed = (performance.now() - sendStart) / 1000;
  measuring = false;
  const rssLoaded = rssKiB(pid);
  for (const ws of sockets) ws.terminate();

  latencies.sort((a, b) => a - b);
  const result = {
    label,
    clients,
    offeredPerSec: rate,
    sent,
    received,
    throughputPerSec: Math.round(received / elapsed),
    p50Ms: Number(percentile(latencies, 50).toFixed(2)),
    p99Ms: Number(percentile(latencies, 99).toFixed(2)),
    connectSec: Number((connectMs / 1000).toFixed(2)),
    rssIdleMiB: rssBefore && Number((rssBefore / 1024).toFixed(1)),
    rssConnectedMiB: rssConnected && Number((rssConnected / 1024).toFixed(1)),
    rssLoadedMiB: rssLoaded && Number((rssLoaded / 1024).toFixed(1)),
    kibPerClient: rssConnected && Number(((rssConnected - rssBefore) / clients).toFixed(1)),
  };
  return result;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await run(args())));
  process.exit(0);
}
