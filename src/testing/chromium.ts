import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { Browser } from 'playwright-core';

/** CHROMIUM_PATH, else the first Chromium or Chrome on PATH; null where there is none. */
export function findChromium(): string | null {
  const given = process.env.CHROMIUM_PATH;
  const candidates = given
    ? [given]
    : (process.env.PATH ?? '')
        .split(delimiter)
        .flatMap((dir) => ['chromium', 'chromium-browser', 'google-chrome'].map((name) => join(dir, name)));
  for (const path of candidates) {
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not there: try the next
    }
  }
  return null;
}

export const NO_CHROMIUM = 'no Chromium found (apt-get install chromium, or set CHROMIUM_PATH)';

/** Headless Chromium under playwright-core (no sandbox: CI runs as root). */
export async function launchChromium(executablePath: string): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath, headless: true, args: ['--no-sandbox'] });
}
