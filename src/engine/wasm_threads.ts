/**
 * Multi-threaded tfjs wasm backend under Node.js.
 *
 * tfjs-backend-wasm 4.22 never uses its threaded build under Node:
 *  - flag WASM_HAS_MULTITHREAD_SUPPORT is hard-wired to false when IS_NODE;
 *  - forcing it fails: the pthread worker script and the main script are handed
 *    to emscripten as blob: URLs, which worker_threads cannot start
 *    (ERR_WORKER_PATH), and the node bundle's copy of the glue refers to
 *    bundle-scoped variables (require$$0, ...), so its toString() cannot run
 *    in a worker anyway;
 *  - XNNPACK's pool is capped at emscripten_num_logical_cores()/2 (computed
 *    once, by a C++ static initialiser), i.e. 1 thread on a 2-core machine.
 *
 * createNodeThreadedWasmBackend() does what tfjs's init() does, with the
 * threaded SIMD emscripten glue from wasm-out/, but writes the worker script
 * and the main script to real files in a private temp directory, reports
 * max(real cores, 2*threads) logical cores while the module's static
 * initialisers run (os.cpus is patched only during instantiation, restored in
 * onRuntimeInitialized), and finally unref()s the pthreads so they do not keep
 * the process alive. The glue also sets globalThis.Worker (worker_threads'
 * Worker), as the stock glue does under Node.
 *
 * Node-only: node: modules are imported dynamically so that this file can
 * be bundled for browsers (where tfjs's own threaded path applies).
 */
import * as tfwasm from '@tensorflow/tfjs-backend-wasm';

/** XNNPACK's pool holds at most 8 threads (max_num_threads in backend.cc, and 8 pre-spawned workers). */
export const MAX_WASM_THREADS = 8;

const THREADED_GLUE = 'wasm-out/tfjs-backend-wasm-threaded-simd.js';
const THREADED_WORKER = 'wasm-out/tfjs-backend-wasm-threaded-simd.worker.js';
const THREADED_BINARY = 'wasm-out/tfjs-backend-wasm-threaded-simd.wasm';
const INIT_TIMEOUT_MS = 60_000;

type CWrapped = (...args: unknown[]) => unknown;

interface NodeWorkerLike {
  unref(): void;
}

interface EmscriptenModule {
  cwrap(name: string, returnType: string | null, argTypes: string[]): CWrapped;
  PThread?: { runningWorkers: NodeWorkerLike[] };
  tfjs?: Record<string, CWrapped>;
}

interface FactoryConfig {
  locateFile(path: string, prefix: string): string;
  mainScriptUrlOrBlob: string;
  onRuntimeInitialized(): void;
  onAbort(what: unknown): void;
}

type EmscriptenFactory = (config: FactoryConfig) => Promise<EmscriptenModule>;

interface ThreadedAssets {
  factory: EmscriptenFactory;
  workerPath: string;
  mainScriptPath: string;
  binaryPath: string;
}

let assets: Promise<ThreadedAssets> | undefined;

/** Loads the threaded glue and writes its worker + main scripts to a temp dir (once per process). */
function threadedAssets(): Promise<ThreadedAssets> {
  assets ??= (async () => {
    const { createRequire } = await import('node:module');
    const fs = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    const require = createRequire(import.meta.url);
    const pkgDir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
    const factory = require(path.join(pkgDir, THREADED_GLUE)) as EmscriptenFactory;
    const { wasmWorkerContents } = require(path.join(pkgDir, THREADED_WORKER)) as { wasmWorkerContents: string };
    if (typeof factory !== 'function' || typeof wasmWorkerContents !== 'string') {
      throw new Error('branchynet: unexpected layout of @tensorflow/tfjs-backend-wasm/wasm-out');
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'branchynet-wasm-'));
    process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
    // .cjs: run as CommonJS whatever package.json is around. The worker source
    // comes from a template literal whose "\n" escapes were expanded; restore
    // them as tfjs does before making a Blob of it.
    const workerPath = path.join(dir, 'tfjs-backend-wasm-threaded-simd.worker.cjs');
    fs.writeFileSync(workerPath, wasmWorkerContents.replace(/\n/g, '\\n'));
    // Evaluated by the worker with importScripts (indirect eval), which must
    // define the global WasmBackendModuleThreadedSimd; same text tfjs puts in its Blob.
    const mainScriptPath = path.join(dir, 'tfjs-backend-wasm-threaded-simd.main.cjs');
    fs.writeFileSync(mainScriptPath, `var WasmBackendModuleThreadedSimd = ${factory.toString()};\n`);
    return { factory, workerPath, mainScriptPath, binaryPath: path.join(pkgDir, THREADED_BINARY) };
  })();
  return assets;
}

/** Creates a BackendWasm on the threaded SIMD build with an XNNPACK pool of `threads` threads (Node only). */
export async function createNodeThreadedWasmBackend(threads: number): Promise<tfwasm.BackendWasm> {
  if (!Number.isInteger(threads) || threads < 1 || threads > MAX_WASM_THREADS) {
    throw new Error(`branchynet: wasm threads must be an integer in [1, ${MAX_WASM_THREADS}], got ${threads}`);
  }
  const { factory, workerPath, mainScriptPath, binaryPath } = await threadedAssets();
  const os = (await import('node:os')).default as { cpus: () => import('node:os').CpuInfo[] };

  const realCpus = os.cpus;
  const restoreCpus = (): void => {
    os.cpus = realCpus;
  };
  os.cpus = () => {
    const cpus = realCpus.call(os);
    const first = cpus[0];
    while (first !== undefined && cpus.length < 2 * threads) cpus.push(first);
    return cpus;
  };
  let module: EmscriptenModule;
  let timer: NodeJS.Timeout | undefined;
  try {
    module = await Promise.race([
      new Promise<EmscriptenModule>((resolve, reject) => {
        factory({
          locateFile: (file, prefix) =>
            file.endsWith('.worker.js') ? workerPath : file.endsWith('.wasm') ? binaryPath : prefix + file,
          mainScriptUrlOrBlob: mainScriptPath,
          onRuntimeInitialized: restoreCpus,
          onAbort: (what) => reject(new Error(`branchynet: threaded wasm module aborted: ${String(what)}`)),
        }).then(resolve, reject);
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('branchynet: threaded wasm init timed out')), INIT_TIMEOUT_MS);
        timer.unref();
      }),
    ]);
  } finally {
    restoreCpus();
    clearTimeout(timer);
  }

  // The bridge tfjs's init() installs (backend_wasm.ts).
  module.tfjs = {
    init: module.cwrap('init', null, []),
    initWithThreadsCount: module.cwrap('init_with_threads_count', null, ['number']),
    getThreadsCount: module.cwrap('get_threads_count', 'number', []),
    registerTensor: module.cwrap('register_tensor', null, ['number', 'number', 'number']),
    disposeData: module.cwrap('dispose_data', null, ['number']),
    dispose: module.cwrap('dispose', null, []),
  };
  tfwasm.setThreadsCount(threads); // read by the BackendWasm constructor only
  let backend: tfwasm.BackendWasm;
  try {
    backend = new tfwasm.BackendWasm(module as unknown as ConstructorParameters<typeof tfwasm.BackendWasm>[0]);
  } finally {
    tfwasm.setThreadsCount(-1);
  }
  // pthreadpool's threads wait on futexes forever: don't let them hold the event loop.
  for (const worker of module.PThread?.runningWorkers ?? []) worker.unref();
  const actual = tfwasm.getThreadsCount();
  if (actual !== threads) {
    console.warn(`branchynet: asked for ${threads} wasm threads, XNNPACK uses ${actual}`);
  }
  return backend;
}
