// The dashboard at `/` on the API port, in headless Debian Chromium: it loads
// without a console error, shows this node's id and every component's
// health, follows a second node joining (connected nodes and the routing-table
// picture), shows documents and search results, pauses while the tab is
// hidden, and in production asks for the token instead of breaking.
// Screenshots go to a temporary folder and to /tmp/pqnode-dashboard.png.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import * as Y from 'yjs';
import { launchChromium } from './lib/browser.js';
import { startNode, apiToken } from './lib/pqnode.js';

const SCREENSHOT = '/tmp/pqnode-dashboard.png';
const STATUSES = new Set(['pass', 'warn', 'fail', 'disabled']);

async function getJson(url, token) {
  const response = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  assert.ok(response.ok, `${url}: HTTP ${response.status}`);
  return response.json();
}

// The routing-table bucket `other` falls in, seen from `self`: 159 minus the
// leading zero bits of their XOR distance (computed here, not taken from the node).
function bucketIndex(self, other) {
  const distance = BigInt(`0x${self}`) ^ BigInt(`0x${other}`);
  return distance.toString(2).length - 1;
}

// A page that records console errors, page errors and every API request.
async function openDashboard(browser, node) {
  const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
  const seen = { errors: [], apiRequests: [], unauthorized: 0 };
  page.on('pageerror', (e) => seen.errors.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') seen.errors.push(`console: ${m.text()}`);
  });
  page.on('request', (r) => {
    if (new URL(r.url()).pathname.startsWith('/api/')) seen.apiRequests.push({ at: Date.now(), url: r.url() });
  });
  page.on('response', (r) => {
    if (r.status() === 401) seen.unauthorized++;
  });
  await page.goto(`${node.apiUrl}/`);
  return { page, seen };
}

// Starts a node with extra PQNODE_* environment (startNode passes the
// process environment on to pqnode).
async function startNodeWithEnv(label, vars, options) {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  try {
    return await startNode(label, options);
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

async function putDocument(node, token, name, text) {
  const doc = new Y.Doc();
  doc.getText('content').insert(0, text);
  const response = await fetch(`${node.apiUrl}/api/docs/${name}/updates`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
    body: Y.encodeStateAsUpdate(doc),
  });
  assert.equal(response.status, 201, await response.text());
}

test('GET / on the API port is the dashboard: 200 text/html, strict CSP, not cached', async () => {
  const node = await startNode('dash-http');
  try {
    const response = await fetch(`${node.apiUrl}/`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type'), /^text\/html/);
    const csp = response.headers.get('content-security-policy');
    for (const directive of ["default-src 'none'", "script-src 'unsafe-inline'", "style-src 'unsafe-inline'", "connect-src 'self'", "frame-ancestors 'none'"]) {
      assert.ok(csp.includes(directive), `CSP lacks ${directive}: ${csp}`);
    }
    assert.equal(response.headers.get('cache-control'), 'no-store');
    const html = await response.text();
    assert.match(html, /<title>pqnode dashboard<\/title>/);
    assert.doesNotMatch(html, /<script[^>]+src=|<link[^>]+stylesheet/, 'everything is inline');
    // The page is public, but the Host check still refuses other names (DNS rebinding).
    const foreign = await new Promise((resolve, reject) => {
      http.get(`${node.apiUrl}/`, { headers: { host: 'evil.example' } }, (res) => {
        res.resume();
        resolve(res.statusCode);
      }).on('error', reject);
    });
    assert.equal(foreign, 421);
  } finally {
    await node.stop();
  }
});

test('the dashboard shows the node, follows a second node joining, and searches', { timeout: 120000 }, async () => {
  const cleanups = [];
  const shots = fs.mkdtempSync(path.join(os.tmpdir(), 'pqnode-dashboard-'));
  try {
    const nodeA = await startNode('dash-a');
    cleanups.push(() => nodeA.stop());
    const token = apiToken(nodeA);
    const crypto = await getJson(`${nodeA.apiUrl}/api/crypto/status`);
    const health = await getJson(`${nodeA.apiUrl}/api/health`);

    const browser = await launchChromium();
    cleanups.push(() => browser.close());
    const { page, seen } = await openDashboard(browser, nodeA);

    // This node's id, from /api/crypto/status, and its algorithms.
    await page.waitForFunction((id) => document.getElementById('node-id')?.textContent === id, crypto.nodeId, { timeout: 10000 });
    const algorithms = await page.textContent('#algorithms');
    assert.match(algorithms, /ML-KEM-1024/);
    assert.match(algorithms, /ML-DSA-87/);
    assert.match(await page.textContent('#mode'), /development/);
    assert.match(await page.textContent('#version'), new RegExp(health.version.replace(/\./g, '\\.')));
    assert.equal(await page.isVisible('#auth-banner'), false, 'development: no token asked for');

    // One card per component, with its status and reason.
    const names = Object.keys(health.components);
    for (const name of ['crypto', 'signaling', 'dht', 'p2p', 'storage', 'crdt', 'ai']) {
      assert.ok(names.includes(name), `/api/health has ${name}`);
    }
    for (const name of names) {
      const tile = page.locator(`#health-grid .component[data-component="${name}"]`);
      await tile.waitFor({ timeout: 10000 });
      const status = await tile.getAttribute('data-status');
      assert.ok(STATUSES.has(status), `${name}: status ${status}`);
      const reason = health.components[name].reason;
      if (reason && name !== 'dht' && name !== 'system') assert.ok((await tile.textContent()).includes(reason), `${name} shows its reason`);
    }
    assert.equal(await page.locator('#health-grid .component').count(), names.length);
    await page.waitForSelector('#system-body .figure');
    assert.match(await page.textContent('#system-body'), /Resident memory/);
    assert.match(await page.textContent('#peers-body'), /No node is connected/);

    // A document and a piece of indexed text, for the documents card and the search box.
    await putDocument(nodeA, token, 'dashboard-notes', 'Meeting notes: the post-quantum handshake uses ML-KEM-1024 and every record is signed with ML-DSA-87.');
    const indexed = await fetch(`${nodeA.apiUrl}/api/ai/index`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'readme', text: 'A quantum-safe node keeps its routing table in 160 buckets.' }),
    });
    assert.ok(indexed.ok, await indexed.text());
    await page.waitForSelector('#docs-table tr[data-doc="dashboard-notes"]', { timeout: 8000 });

    // A second node joins: it appears among the connected nodes and in the picture.
    const nodeB = await startNode('dash-b', { bootstrap: nodeA.bootstrapAddr });
    cleanups.push(() => nodeB.stop());
    const joinedAt = Date.now();
    const idB = nodeB.nodeId ?? (await getJson(`${nodeB.apiUrl}/api/crypto/status`)).nodeId;
    const bucket = bucketIndex(crypto.nodeId, idB);
    await page.waitForSelector(`#peers-table tr[data-node-id="${idB}"]`, { timeout: 8000 });
    const peerRow = await page.textContent(`#peers-table tr[data-node-id="${idB}"]`);
    assert.match(peerRow, /ML-KEM-1024/);
    assert.match(peerRow, /ms/, 'an RTT is shown');
    await page.waitForFunction(
      ([bucket, id]) => {
        const g = document.querySelector(`#dht-map g[data-bucket="${bucket}"]`);
        return g && Number(g.dataset.entries) >= 1 && g.dataset.nodes.split(' ').includes(id);
      },
      [bucket, idB],
      { timeout: 8000 },
    );
    console.log(`node B showed up on node A's dashboard ${Date.now() - joinedAt} ms after it was ready (bucket ${bucket})`);
    const fromNode = await getJson(`${nodeA.apiUrl}/api/dht/nodes`);
    assert.equal(fromNode.nodes.find((n) => n.id === idB)?.bucket, bucket, 'the node agrees on the bucket');
    assert.equal(await page.locator('#dht-map g.bucket').count(), 160);

    // Search: results best first, with the snippet and the query highlighted.
    await page.fill('#search-q', 'quantum');
    await page.press('#search-q', 'Enter');
    await page.waitForSelector('#search-list li[data-doc-id="doc:dashboard-notes"]', { timeout: 8000 });
    await page.waitForSelector('#search-list li[data-doc-id="api:readme"]');
    assert.match(await page.textContent('#search-list li[data-doc-id="doc:dashboard-notes"] .snippet'), /ML-KEM-1024/);
    assert.ok((await page.locator('#search-list mark').count()) >= 2, 'the query is highlighted');

    // Hovering the bucket shows its details, with node B in it.
    await page.hover(`#dht-map g[data-bucket="${bucket}"] .hit`);
    await page.waitForSelector('#dht-tip:not([hidden])');
    const tip = await page.textContent('#dht-tip');
    assert.match(tip, new RegExp(`Bucket ${bucket}`));
    assert.ok(tip.includes(idB.slice(0, 8)), `the tooltip lists node B: ${tip}`);

    // The whole page in one viewport (a full-page capture would paint the
    // sticky header halfway down).
    await page.setViewportSize({ width: 1440, height: await page.evaluate(() => document.documentElement.scrollHeight) });
    await page.hover(`#dht-map g[data-bucket="${bucket}"] .hit`);
    const light = path.join(shots, 'dashboard-light.png');
    await page.screenshot({ path: light });
    fs.copyFileSync(light, SCREENSHOT);
    await page.emulateMedia({ colorScheme: 'dark' });
    const dark = path.join(shots, 'dashboard-dark.png');
    await page.screenshot({ path: dark });
    await page.emulateMedia({ colorScheme: 'light' });
    await page.setViewportSize({ width: 1440, height: 1000 });
    console.log(`screenshots: ${light} ${dark} (and ${SCREENSHOT})`);

    // A hidden tab does not poll; it catches up as soon as it is visible again.
    const setHidden = (hidden) => page.evaluate((hidden) => {
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => hidden });
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (hidden ? 'hidden' : 'visible') });
      document.dispatchEvent(new Event('visibilitychange'));
    }, hidden);
    await setHidden(true);
    await new Promise((r) => setTimeout(r, 1000)); // a refresh in flight may finish
    const before = seen.apiRequests.length;
    await new Promise((r) => setTimeout(r, 4500));
    assert.equal(seen.apiRequests.length, before, 'no request while the tab is hidden');
    assert.match(await page.textContent('#live'), /paused/);
    await setHidden(false);
    await page.waitForFunction((n) => window.pqnodeDashboard.state.refreshes > n, await page.evaluate(() => window.pqnodeDashboard.state.refreshes), { timeout: 5000 });
    assert.ok(seen.apiRequests.length > before);

    assert.deepEqual(seen.errors, [], 'no console or page errors');
    assert.equal(seen.unauthorized, 0);

    // A read that fails shows a small error in its card, and clears once it works again.
    await page.route('**/api/docs', (route) => route.fulfill({
      status: 500,
      contentType: 'application/json',
      body: JSON.stringify({ error: { code: 'INTERNAL', message: 'injected by the test' } }),
    }));
    await page.waitForSelector('#card-docs .card-error:not([hidden])', { timeout: 5000 });
    assert.match(await page.textContent('#card-docs .card-error'), /\/api\/docs: HTTP 500 INTERNAL — injected by the test/);
    assert.ok(await page.isVisible('#docs-table tr[data-doc="dashboard-notes"]'), 'the last figures stay');
    await page.unroute('**/api/docs');
    await page.waitForSelector('#card-docs .card-error', { state: 'hidden', timeout: 5000 });

    // The node goes away: the page says so, keeps polling, and throws nothing.
    await nodeA.stop();
    await page.waitForSelector('#conn-banner:not([hidden])', { timeout: 8000 });
    assert.match(await page.textContent('#live'), /unreachable/);
    const pageErrors = seen.errors.filter((e) => e.startsWith('page error'));
    assert.deepEqual(pageErrors, []);
    const unexpected = seen.errors.filter((e) => !/status of 500|ERR_CONNECTION_REFUSED/.test(e));
    assert.deepEqual(unexpected, [], 'only the browser\'s own log of the failed requests');
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup();
  }
});

test('in production the dashboard asks for the token instead of breaking', { timeout: 60000 }, async () => {
  const cleanups = [];
  try {
    const node = await startNodeWithEnv('dash-prod', { PQNODE_MODE: 'production' });
    cleanups.push(() => node.stop());
    const token = apiToken(node);
    assert.ok(token, 'the node wrote its token');
    const crypto = await getJson(`${node.apiUrl}/api/crypto/status`);
    assert.equal(crypto.production, true);

    const browser = await launchChromium();
    cleanups.push(() => browser.close());
    const { page, seen } = await openDashboard(browser, node);

    // Public parts load; private ones wait for the token, without a refused request.
    await page.waitForFunction((id) => document.getElementById('node-id')?.textContent === id, crypto.nodeId, { timeout: 10000 });
    await page.waitForSelector('#auth-banner:not([hidden])');
    await page.waitForSelector('#peers-body .locked');
    await page.waitForSelector('#dht-locked:not([hidden])');
    await page.waitForSelector('#health-grid .component[data-component="dht"]');
    await new Promise((r) => setTimeout(r, 2500)); // one more refresh cycle
    assert.equal(seen.unauthorized, 0, 'no private read is sent without a token');
    assert.deepEqual(seen.errors, []);

    // A wrong token: the node refuses it (the browser logs that 401 itself), the page says so.
    await page.fill('#token-input', 'not-the-token-0123456789');
    await page.click('#token-form button[type="submit"]');
    await page.waitForSelector('#auth-banner[data-state="rejected"]:not([hidden])', { timeout: 8000 });
    assert.match(await page.textContent('#auth-banner'), /refused/);
    assert.ok(seen.unauthorized >= 1);
    const unexpected = seen.errors.filter((e) => !/status of 401/.test(e));
    assert.deepEqual(unexpected, [], 'only the browser\'s own log of the refused request');
    const errorsSoFar = seen.errors.length;

    // The right token: everything loads, and it survives a reload of the tab.
    await page.fill('#token-input', token);
    await page.click('#token-form button[type="submit"]');
    await page.waitForSelector('#auth-banner', { state: 'hidden', timeout: 8000 });
    await page.waitForFunction(() => /No node is connected/.test(document.getElementById('peers-body').textContent), null, { timeout: 8000 });
    await page.waitForSelector('#system-body .figure');
    assert.equal(await page.isVisible('#dht-locked'), false);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('pqnode.dashboard.token')), token);
    assert.equal(await page.evaluate(() => Object.keys(localStorage).some((k) => localStorage.getItem(k).includes('not-the-token'))), false);
    await page.reload();
    await page.waitForSelector('#system-body .figure', { timeout: 8000 });
    assert.equal(await page.isVisible('#auth-banner'), false);
    assert.equal(seen.errors.length, errorsSoFar, `no new errors: ${seen.errors.slice(errorsSoFar)}`);
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup();
  }
});
