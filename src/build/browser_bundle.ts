import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { browserBundlePath } from '../demo/bundle_path.js';

/** dist/ (this file is dist/build/browser_bundle.js). */
const dist = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Bundles the main entry (dist/index.js, browser-safe) into one ES module for pages. ONNX
 * Runtime is not in it: a page imports onnxruntime-web itself and passes it as `{ ort }`.
 */
export async function bundleForBrowser(outFile: string = browserBundlePath()): Promise<string> {
  mkdirSync(dirname(outFile), { recursive: true });
  await build({
    entryPoints: [join(dist, 'index.js')],
    outfile: outFile,
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    minify: true,
    sourcemap: true,
    logLevel: 'warning',
  });
  return outFile;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = await bundleForBrowser();
  console.log(`browser build: ${out}`);
}
