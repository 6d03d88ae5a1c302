/**
 * A real headless browser for tests: Debian's chromium driven by playwright-core, in a new
 * empty profile directory, closed (and the profile removed) by the returned close().
 *
 * Where chromium is missing: in CI (SLUICE_CI=1, exported by .ci/run, which installs it) the
 * test fails saying so; elsewhere it is skipped with a message.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

export const CHROMIUM_PATH = process.env.SLUICE_CHROMIUM ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Why browser tests cannot run here, or null when they can. Throws in CI, where they must. */
export function browserSkipReason(): string | null {
  if (existsSync(CHROMIUM_PATH)) return null;
  const why = `${CHROMIUM_PATH} is missing: install it with apt-get install -y chromium (or point SLUICE_CHROMIUM at a Chromium)`;
  if (process.env.SLUICE_CI === '1') throw new Error(`browser tests must run in CI, but ${why}`);
  return `skipped: ${why}`;
}

export async function launchBrowser(): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  const profile = mkdtempSync(join(tmpdir(), 'sluice-chromium-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_ARGS, timeout: 60_000 });
  } catch (e) {
    rmSync(profile, { recursive: true, force: true });
    throw e;
  }
  context.setDefaultTimeout(20_000);
  return {
    context,
    async close() {
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
