/**
 * Backend selection: the native oneDNN backend (onednn/, when its addon is
 * built), tfjs wasm (XNNPACK, SIMD) with our kernels, or the pure-JS cpu
 * backend as a fallback.
 */
import { registeredBackend } from '../compat.js';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfwasm from '@tensorflow/tfjs-backend-wasm';
import { registerKernels, unregisterKernels } from './register_wasm_kernels.js';
import { createNodeThreadedWasmBackend, MAX_WASM_THREADS } from './wasm_threads.js';
import { loadOneDnnAddon } from './onednn/addon.js';
import { ONEDNN, registerOneDnnBackend } from './onednn/backend.js';
import { inNode } from '../platform.js';

export type BackendName = 'onednn' | 'wasm' | 'cpu';

export interface InitBackendOptions {
  /**
   * wasm only: size of XNNPACK's thread pool. Default 1: tfjs's standard
   * single-threaded SIMD build (the safe choice). 2..8 opt into the threaded
   * SIMD build (Node: see wasm_threads.ts; browsers: tfjs's own threaded
   * build, only when the page is cross-origin isolated). Changing it after
   * the wasm backend was initialised re-creates that backend: tensors living
   * on the old one become unusable.
   */
  threads?: number;
  /**
   * onednn only: what to do when the addon is unavailable (not built, or
   * libdnnl missing): true (default) prints the oneDNN notice (oneDnnNotice, at
   * most once per process) and initialises wasm instead (initBackend then
   * returns 'wasm'); false throws.
   */
  fallback?: boolean;
  /** wasm only: register our kernels (default true); false restores the stock tfjs-backend-wasm ones. */
  customKernels?: boolean;
}

const WASM = 'wasm';
/** tfjs-backend-wasm registers itself with this priority. */
const WASM_PRIORITY = 2;
const stockWasmFactory = tf.findBackendFactory(WASM);
/** Threads of the factory currently registered as 'wasm' (undefined: stock factory, tfjs's default threading). */
let wasmFactoryThreads: number | undefined;

/** Registers the 'wasm' factory that yields `threads` threads, re-creating the backend if needed. */
function useWasmFactory(threads: number | undefined): void {
  if (threads === wasmFactoryThreads || (threads === 1 && wasmFactoryThreads === undefined && inNode)) return;
  if (stockWasmFactory == null) throw new Error('branchynet: @tensorflow/tfjs-backend-wasm is not registered');
  const existing = registeredBackend(WASM);
  if (existing !== undefined && existing.numDataIds() > 0) {
    console.warn(
      `branchynet: re-creating the wasm backend for threads=${threads}; ` +
        `${existing.numDataIds()} tensors on the previous instance become unusable`,
    );
  }
  let factory = stockWasmFactory;
  if (threads !== undefined && threads > 1 && inNode) {
    factory = () => createNodeThreadedWasmBackend(threads);
  } else if (!inNode) {
    tfwasm.setThreadsCount(threads ?? -1);
  }
  if (tf.findBackendFactory(WASM) != null) tf.removeBackend(WASM);
  tf.registerBackend(WASM, factory, WASM_PRIORITY);
  wasmFactoryThreads = threads;
}

/**
 * tfjs-backend-cpu prints a "install tfjs-node" banner on its first tensor
 * under Node. Clear its one-shot `firstUse` flag (touches nothing else; other
 * warnings stay on). Instantiating the cpu backend for that is cheap.
 */
function silenceCpuNodeBanner(): void {
  if (tf.findBackendFactory('cpu') == null) return;
  const cpu = tf.findBackend('cpu') as unknown as { firstUse?: boolean } | null;
  if (cpu != null && cpu.firstUse === true) cpu.firstUse = false;
}

/**
 * Selects and initialises a tfjs backend and returns its name.
 *
 * 'onednn': the cpu backend with oneDNN kernels (onednn/, docs/onednn.md);
 * `threads` sets oneDNN's OpenMP threads (default one per core). Without its
 * addon: one notice and 'wasm' is initialised and returned instead, or an
 * error with `fallback: false`. 'wasm': XNNPACK/SIMD backend with our kernels registered (Conv2DBackpropFilter,
 * which the stock backend lacks, plus faster Conv2DBackpropInput, transposed
 * BatchMatMul and _FusedMatMul). 'cpu': pure-JS fallback (`threads` ignored).
 * A failing multi-threaded wasm init falls back to single-threaded, with a
 * warning; backendThreads() tells which one runs.
 */
export async function initBackend(name: BackendName = 'wasm', options: InitBackendOptions = {}): Promise<BackendName> {
  const { threads, customKernels = true, fallback = true } = options;
  if (threads !== undefined && (!Number.isInteger(threads) || threads < 1 || threads > MAX_WASM_THREADS)) {
    throw new Error(`initBackend: threads must be an integer in [1, ${MAX_WASM_THREADS}], got ${threads}`);
  }
  if (name === ONEDNN) {
    const missing = registerOneDnnBackend();
    if (missing === null) {
      // OpenMP threads of oneDNN (Debian's libdnnl uses OpenMP): default all cores.
      loadOneDnnAddon().addon!.setThreads(threads ?? defaultOneDnnThreads());
      if (!(await tf.setBackend(ONEDNN))) throw new Error("initBackend: backend 'onednn' failed to initialise");
      await tf.ready();
      return ONEDNN;
    }
    if (!fallback) throw new Error(`initBackend: the onednn backend is unavailable: ${missing}. ${ONEDNN_HOWTO}`);
    const notice = oneDnnNotice();
    if (notice !== null) console.warn(notice);
    return initBackend(WASM, { ...options, threads: undefined });
  }
  silenceCpuNodeBanner();
  // Kernel registration does not depend on the backend instance (nor on which
  // backend is selected); doing it first lets setBackend run the setupFuncs.
  if (customKernels) registerKernels();
  else unregisterKernels();
  if (name === WASM) useWasmFactory(threads ?? (inNode ? 1 : undefined));
  let ok = await tf.setBackend(name);
  if (!ok && name === WASM && inNode && wasmFactoryThreads !== undefined && wasmFactoryThreads > 1) {
    console.warn(
      `initBackend: the ${wasmFactoryThreads}-thread wasm backend failed to initialise; ` +
        'falling back to the single-threaded one',
    );
    useWasmFactory(1);
    ok = await tf.setBackend(name);
  }
  if (!ok) throw new Error(`initBackend: backend '${name}' failed to initialise`);
  await tf.ready();
  return name;
}

/** Threads of the active backend: XNNPACK's pool (wasm), oneDNN's OpenMP threads (onednn), 1 (cpu). */
export function backendThreads(): number {
  const active = tf.getBackend();
  if (active === WASM) return tfwasm.getThreadsCount();
  if (active === ONEDNN) return loadOneDnnAddon().addon!.getThreads();
  return 1;
}

const ONEDNN_HOWTO = 'To enable it: apt-get install libdnnl-dev && npm rebuild branchynet (see docs/onednn.md).';
let noticeGiven = false;

/**
 * The one-line notice that the native oneDNN backend is unavailable here (why, and how to build it),
 * the first time it is asked for in this process; null when the addon loads, or once the notice was
 * given. It matters where the backend decides speed, i.e. training: the CLI prints it when a command
 * starts training, never for calibration, evaluation, export or info, whose output scripts parse.
 */
export function oneDnnNotice(): string | null {
  const { addon, reason } = loadOneDnnAddon();
  if (addon !== null || noticeGiven) return null;
  noticeGiven = true;
  return `branchynet: native oneDNN backend unavailable (${reason}); using wasm. ${ONEDNN_HOWTO}`;
}

function defaultOneDnnThreads(): number {
  return Math.min(MAX_WASM_THREADS, loadOneDnnAddon().defaultThreads);
}

/**
 * The fastest backend that loads here: 'onednn' when its addon is built and loads, else 'wasm'.
 * Cheap; initialises nothing and prints nothing (oneDnnNotice says why the native one is missing).
 * Pass the result to initBackend.
 */
export function bestBackend(): BackendName {
  return loadOneDnnAddon().addon !== null ? ONEDNN : WASM;
}
