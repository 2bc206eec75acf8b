// Launches the machine's Chromium (never a downloaded build) for the browser
// tests: headless, the flags this workplace needs, a fresh profile each time.
// `lanHost` maps a host name to 127.0.0.1 so a test can open the server as a
// remote user would (`http://lan.test:PORT/` is an insecure context).
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const LAN_HOST = 'lan.test';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/**
 * `httpCredentials` answers a server's Basic challenge as a person typing into
 * the browser's prompt would.
 * @param {{lanHost?: string, ignoreCertificateErrors?: boolean, args?: string[],
 *          viewport?: {width: number, height: number}, httpCredentials?: {username: string, password: string}}} [o]
 * @returns {Promise<{context: import('playwright-core').BrowserContext, close: () => Promise<void>}>}
 */
export async function launch(o = {}) {
  const profile = mkdtempSync(path.join(os.tmpdir(), 'chunkcast-chromium-'));
  const args = [...ARGS, ...(o.args ?? [])];
  if (o.lanHost) args.push(`--host-resolver-rules=MAP ${o.lanHost} 127.0.0.1`);
  if (o.ignoreCertificateErrors) args.push('--ignore-certificate-errors');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args, acceptDownloads: true,
    viewport: o.viewport ?? { width: 1000, height: 900 }, httpCredentials: o.httpCredentials,
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
