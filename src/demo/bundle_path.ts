import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BROWSER_BUNDLE_NAME = 'branchynet.js';

/** Where `npm run build` writes the browser build of the main entry: dist/browser/branchynet.js. */
export function browserBundlePath(): string {
  // This file is dist/demo/bundle_path.js.
  return join(resolve(dirname(fileURLToPath(import.meta.url)), '..'), 'browser', BROWSER_BUNDLE_NAME);
}
