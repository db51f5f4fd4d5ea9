import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CIFAR10_DIR_ENV, loadCifar10 } from '../data/cifar10.js';
import { loadMnist } from '../data/mnist.js';
import { UserError } from '../errors.js';
import { loadModel } from '../model/io.js';
import { readManifest } from '../node/onnx.js';
import { exportModel } from '../onnx/export.js';
import { browserLibraryFiles } from './assets.js';
import type { RunningServer, Served } from './server.js';
import { serve } from './server.js';

/** The page's static files (demo/ in the package; this file is dist/demo/demo_server.js). */
export const DEMO_PAGE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'demo');

/** Test images bundled into the page for the threshold sliders and the benchmark. */
export const DEFAULT_TEST_IMAGES = 500;

export interface DemoOptions {
  /** A model directory (exported to a temporary directory while the demo runs) or an export directory. */
  model: string;
  /** Default 0: any free port. */
  port?: number;
  /** Default 127.0.0.1: this machine only. */
  host?: string;
  testImages?: number;
}

export interface TestSet {
  dataset: 'mnist' | 'cifar10';
  /** count x H x W x C bytes, 0-255. */
  pixels: Uint8Array;
  labels: number[];
}

/** Where the test images of a model with this input shape come from, if any is at hand. */
function testSetFor(inputShape: number[], dataset: string | null, count: number, notice: (l: string) => void) {
  const [h, w, c] = inputShape;
  const toBytes = (images: Float32Array, n: number) =>
    Uint8Array.from(images.subarray(0, n * h * w * c), (v) => Math.round(v * 255));
  if (h === 28 && w === 28 && c === 1 && (dataset ?? 'mnist') === 'mnist') {
    const { test } = loadMnist();
    const n = Math.min(count, test.labels.length);
    return { dataset: 'mnist', pixels: toBytes(test.images, n), labels: [...test.labels.subarray(0, n)] } as TestSet;
  }
  if (h === 32 && w === 32 && c === 3 && (dataset ?? 'cifar10') === 'cifar10') {
    try {
      const { test } = loadCifar10(undefined, 'test');
      const n = Math.min(count, test.labels.length);
      return {
        dataset: 'cifar10',
        pixels: toBytes(test.images, n),
        labels: [...test.labels.subarray(0, n)],
      } as TestSet;
    } catch (e) {
      notice(`note: no CIFAR-10 test images (${(e as Error).message}; set ${CIFAR10_DIR_ENV}): the sliders are off`);
      return null;
    }
  }
  notice(`note: no test images for a [${inputShape}] input: the sliders and the benchmark are off`);
  return null;
}

export interface RunningDemo extends RunningServer {
  /** The export directory the page loads. */
  exportDir: string;
  testSet: TestSet | null;
}

/**
 * Serves the demo page for `options.model` (see docs/browser.md): the page, the browser build
 * with onnxruntime-web, the model's export and a few hundred test images. A model directory is
 * exported first (needs a tfjs backend started).
 */
export async function startDemo(options: DemoOptions, notice: (line: string) => void = () => {}): Promise<RunningDemo> {
  const dir = options.model;
  let exportDir = dir;
  let scratch: string | null = null;
  let dataset: string | null = null;
  if (existsSync(join(dir, 'model.json'))) {
    const model = loadModel(dir);
    dataset = model.dataset ?? null;
    scratch = mkdtempSync(join(tmpdir(), 'branchynet-demo-'));
    exportDir = scratch;
    try {
      exportModel(model, exportDir);
    } finally {
      model.net.dispose();
      model.baseline?.dispose();
    }
  } else if (!existsSync(join(dir, 'manifest.json'))) {
    throw new UserError(`${dir}: neither model.json (a model directory) nor manifest.json (an export directory)`, {
      option: 'location',
    });
  }
  try {
    const manifest = readManifest(exportDir);
    const inputShape = manifest.input.shape.slice(1).map(Number);
    const testSet = testSetFor(inputShape, dataset, options.testImages ?? DEFAULT_TEST_IMAGES, notice);
    const info = JSON.stringify({
      name: manifest.model,
      dataset: testSet?.dataset ?? dataset,
      testCount: testSet?.labels.length ?? 0,
      testLabels: testSet?.labels ?? [],
    });
    const lib = browserLibraryFiles();
    const within = (root: string, rel: string): Served | null => {
      const file = normalize(join(root, rel));
      return file.startsWith(root + sep) ? { file } : null;
    };
    const server = await serve(
      (path) => {
        if (path === '/') return { file: join(DEMO_PAGE_DIR, 'index.html') };
        if (path === '/info.json') return { body: info, type: 'application/json' };
        if (path === '/testset.bin') return testSet ? { body: testSet.pixels, type: 'application/octet-stream' } : null;
        if (path.startsWith('/lib/')) return lib.has(path.slice(5)) ? { file: lib.get(path.slice(5))! } : null;
        if (path.startsWith('/model/')) return within(resolve(exportDir), path.slice(7));
        return within(DEMO_PAGE_DIR, path.slice(1));
      },
      { host: options.host, port: options.port },
    );
    return {
      ...server,
      exportDir,
      testSet,
      close: async () => {
        await server.close();
        if (scratch) rmSync(scratch, { recursive: true, force: true });
      },
    };
  } catch (e) {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
    throw e;
  }
}
