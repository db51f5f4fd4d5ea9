import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { UserError } from '../errors.js';
import { BROWSER_BUNDLE_NAME, browserBundlePath } from './bundle_path.js';

/** The files of onnxruntime-web a page needs (WebAssembly build, ES modules), by name. */
export const ORT_WEB_FILES = ['ort.wasm.min.mjs', 'ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm'];

/** onnxruntime-web's dist directory (a dependency of this package). */
export function ortWebDir(): string {
  const wasm = createRequire(import.meta.url).resolve('onnxruntime-web/ort-wasm-simd-threaded.wasm');
  return dirname(wasm);
}

/**
 * The files a page loads the library from, by name: the browser build (dist/browser) and
 * onnxruntime-web's files, to be served from one directory (onnxruntime-web finds its .wasm
 * next to its own module).
 */
export function browserLibraryFiles(): Map<string, string> {
  const bundle = browserBundlePath();
  if (!existsSync(bundle))
    throw new UserError(`${bundle}: the browser build is missing; run 'npm run build' in the branchynet package`);
  const files = new Map<string, string>([
    [BROWSER_BUNDLE_NAME, bundle],
    [`${BROWSER_BUNDLE_NAME}.map`, `${bundle}.map`],
  ]);
  const ortDir = ortWebDir();
  for (const name of ORT_WEB_FILES) files.set(name, join(ortDir, name));
  return files;
}
