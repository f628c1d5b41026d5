// Headless Debian Chromium driven by playwright-core (never a downloaded browser).
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

// Flags from FIELD-NOTES: deterministic, offline, and real host candidates
// instead of mDNS names so ICE works between separate browsers.
const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
];

export async function launchChromium() {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
}

// A page that forwards its console errors to the test output, for diagnosis.
export async function newPage(browser, label) {
  const page = await browser.newPage();
  page.on('pageerror', (e) => console.error(`[${label}] page error:`, e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') console.error(`[${label}] console:`, m.text());
  });
  return page;
}
