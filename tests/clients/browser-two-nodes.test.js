// Two people, two browsers, two nodes: each headless Chromium loads the demo
// page from its own pqnode, registers with the native protocol, finds the
// other by topic (through the DHT) and opens a WebRTC data channel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { launchChromium, newPage } from './lib/browser.js';
import { serveStatic } from './lib/static.js';
import { startNode, nodeDemoUrl } from './lib/pqnode.js';
import { REPO } from './lib/processes.js';

const DEMO_FILE = path.join(REPO, 'crates/pqnode/web/demo.html');

// The page from the node itself when it serves one (it then finds its node's
// signaling endpoint on its own), else the same file from a local static
// server, pointed at that node.
async function openDemo(browser, node, cleanups) {
  const page = await newPage(browser, node.label);
  const served = await nodeDemoUrl(node);
  if (served) {
    await page.goto(served);
  } else {
    const site = await serveStatic({ '/demo.html': DEMO_FILE });
    cleanups.push(() => site.close());
    await page.goto(`${site.url}/demo.html?signaling=${encodeURIComponent(node.signalingUrl)}`);
  }
  assert.equal(await page.inputValue('#signaling'), node.signalingUrl);
  return page;
}

async function waitFor(what, fn, timeoutMs = 30000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('browsers on two different nodes chat over a WebRTC data channel', { timeout: 120000 }, async () => {
  const cleanups = [];
  try {
    const nodeA = await startNode('node-a');
    cleanups.push(() => nodeA.stop());
    const nodeB = await startNode('node-b', { bootstrap: nodeA.bootstrapAddr });
    cleanups.push(() => nodeB.stop());

    const browserA = await launchChromium();
    cleanups.push(() => browserA.close());
    const browserB = await launchChromium();
    cleanups.push(() => browserB.close());
    const pageA = await openDemo(browserA, nodeA, cleanups);
    const pageB = await openDemo(browserB, nodeB, cleanups);

    const topic = `room-${Math.random().toString(36).slice(2, 8)}`;
    const idA = await pageA.evaluate((topic) => window.demo.join(document.getElementById('signaling').value, topic), topic);
    const idB = await pageB.evaluate((topic) => window.demo.join(document.getElementById('signaling').value, topic), topic);
    assert.match(idA, /^[0-9a-f]{40}$/);
    assert.notEqual(idA, idB);
    const [nodeIdA, nodeIdB] = await Promise.all([
      pageA.evaluate(() => window.demo.session.nodeId),
      pageB.evaluate(() => window.demo.session.nodeId),
    ]);
    assert.notEqual(nodeIdA, nodeIdB, 'the pages are attached to different nodes');

    // B discovers A by topic: A lives on the other node, so this goes through the DHT.
    const found = await waitFor('B to discover A', () =>
      pageB.evaluate(async (idA) => (await window.demo.discover()).find((p) => p.peer_id === idA), idA));
    assert.equal(found.node_id, nodeIdA);

    await pageB.evaluate((idA) => {
      window.demo.connect(idA);
      return window.demo.waitOpen(idA);
    }, idA);
    await pageA.evaluate((idB) => window.demo.waitOpen(idB), idB);

    assert.equal(await pageB.evaluate(() => window.demo.send('hello from B')), 1);
    const gotA = await waitFor('A to receive', () => pageA.evaluate(() => window.demo.messages[0]));
    assert.deepEqual(gotA, { from: idB, text: 'hello from B' });
    await pageA.evaluate(() => window.demo.send('hello from A'));
    const gotB = await waitFor('B to receive', () => pageB.evaluate(() => window.demo.messages[0]));
    assert.deepEqual(gotB, { from: idA, text: 'hello from A' });
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup();
  }
});
