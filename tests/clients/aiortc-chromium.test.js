// aiortc (Python) and Chromium, two WebRTC stacks nobody here wrote, meet on
// one pqnode's native signaling: the page offers, aiortc answers and echoes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { launchChromium, newPage } from './lib/browser.js';
import { serveStatic } from './lib/static.js';
import { startNode } from './lib/pqnode.js';
import { REPO, startProcess } from './lib/processes.js';

const HERE = new URL('.', import.meta.url).pathname;
const PYTHON = process.env.PYTHON ?? 'python3';

test('aiortc answers a Chromium data channel through native signaling', { timeout: 90000 }, async () => {
  const cleanups = [];
  try {
    const node = await startNode('node');
    cleanups.push(() => node.stop());
    const topic = `aiortc-${Math.random().toString(36).slice(2, 8)}`;
    const python = await startProcess('aiortc', PYTHON, [path.join(HERE, 'aiortc_peer.py'), node.signalingUrl, topic], {
      ready: (line) => line.startsWith('PEER ') || line.startsWith('Traceback'),
    });
    cleanups.push(() => python.stop());
    const pythonId = python.lines.find((l) => l.startsWith('PEER '))?.slice(5);
    assert.match(pythonId ?? '', /^[0-9a-f]{40}$/, python.lines.join('\n'));

    const site = await serveStatic({ '/demo.html': path.join(REPO, 'crates/pqnode/web/demo.html') });
    cleanups.push(() => site.close());
    const browser = await launchChromium();
    cleanups.push(() => browser.close());
    const page = await newPage(browser, 'chromium');
    await page.goto(`${site.url}/demo.html?signaling=${encodeURIComponent(node.signalingUrl)}`);
    await page.evaluate(({ url, topic }) => window.demo.join(url, topic), { url: node.signalingUrl, topic });

    const peers = await page.evaluate(() => window.demo.discover());
    assert.ok(peers.some((p) => p.peer_id === pythonId), 'the aiortc peer is listed in the topic');
    await page.evaluate((id) => {
      window.demo.connect(id);
      return window.demo.waitOpen(id);
    }, pythonId);
    assert.equal(await page.evaluate(() => window.demo.send('ping')), 1);
    const reply = await page.waitForFunction(() => window.demo.messages[0], null, { timeout: 20000 });
    assert.deepEqual(await reply.jsonValue(), { from: pythonId, text: 'echo:ping' });
    // The echo was sent before it was logged: give the log line a moment.
    for (let i = 0; i < 50 && !python.lines.includes('ECHOED ping'); i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(python.lines.includes('ECHOED ping'), python.lines.join('\n'));
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup();
  }
});
