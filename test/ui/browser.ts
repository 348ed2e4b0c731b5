/**
 * Helpers for the browser tests: the built UI (dist/web, rebuilt when web/ is newer), Debian's
 * Chromium driven by playwright-core, and a folder for the screenshots the run writes.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { REPO_ROOT } from '../e2e/server-process.js';

export const CHROMIUM = process.env.VIZDEX_CHROMIUM ?? '/usr/lib/chromium/chromium';
/** Screenshots of the main pages (gitignored). */
export const SCREENSHOT_DIR = path.join(REPO_ROOT, 'test-results', 'ui');

const WEB_DIR = path.join(REPO_ROOT, 'web');
const BUILT_INDEX = path.join(REPO_ROOT, 'dist', 'web', 'index.html');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(full) : fs.statSync(full).mtimeMs);
  }
  return newest;
}

/** Builds the UI into dist/web unless a build newer than every file of web/ is there. */
export function ensureUiBuilt(): { built: boolean; ms: number } {
  const started = Date.now();
  if (fs.existsSync(BUILT_INDEX) && fs.statSync(BUILT_INDEX).mtimeMs >= newestMtime(WEB_DIR)) return { built: false, ms: 0 };
  const vite = path.join(REPO_ROOT, 'node_modules', 'vite', 'bin', 'vite.js');
  const result = spawnSync(process.execPath, [vite, 'build', '--config', 'web/vite.config.ts'], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 120_000, env: { ...process.env, NODE_ENV: 'production' } });
  if (result.status !== 0) throw new Error(`vite build of the web UI failed (exit ${result.status}):\n${result.stdout}\n${result.stderr}`);
  return { built: true, ms: Date.now() - started };
}

/** Fails (never skips) when Chromium is missing: CI installs it (`apt-get install chromium`). */
export async function launchChromium(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium was not found at ${CHROMIUM}; the browser tests drive a real Chromium. Install it (Debian/Ubuntu: apt-get install chromium) or set VIZDEX_CHROMIUM to its path.`,
    );
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}
