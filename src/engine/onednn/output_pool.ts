import { totalmem } from 'node:os';

/**
 * Reuse of the onednn backend's output arrays. A fresh allocation per kernel output counts against
 * V8's heap: a training step allocates enough to set off full garbage collections, whose marking
 * threads take the core the OpenMP worker of 2-thread runs needs, and each fresh array's pages
 * fault in on first write (`npm run bench:step` counts both). So arrays of disposed tensors come
 * back here and serve later outputs of the same length.
 *
 * Reuse is safe only for an array no one else can still see, so an array is never reused once
 * - its values were read out (`readSync`: `dataSync()`, `data()`, `array()` hand out the backend's
 *   own array), or
 * - it was registered for a second tensor, or a view of it was (a kernel aliasing its input).
 */

/** Arrays shorter than this are left to malloc and the garbage collector (cheap, little memory). */
export const POOLED_MIN_LENGTH = 1024;
/**
 * Default bytes that may wait in the pool: a quarter of the machine's memory, at most 4 GiB
 * (`BRANCHYNET_OUTPUT_POOL_MB` overrides). One training step's outputs come back at its end and
 * serve the next step, so the pool must hold a step's worth: a smaller fixed cap (256 MB) leaves
 * ResNet-20 at batch 128 allocating most outputs afresh (`npm run bench:step -- --batch 128`;
 * docs/benchmarks.md).
 */
export function defaultPoolBytes(
  env: Record<string, string | undefined> = process.env,
  totalBytes = totalmem(),
): number {
  const mb = Number(env['BRANCHYNET_OUTPUT_POOL_MB']);
  if (env['BRANCHYNET_OUTPUT_POOL_MB'] !== undefined && Number.isFinite(mb) && mb >= 0) return mb * 1024 * 1024;
  return Math.min(4 * 1024 ** 3, Math.floor(totalBytes / 4));
}

/** A float32 array of n elements, not zero-filled (no memset; see `uninitialized`). */
function allocate(n: number): Float32Array {
  const bytes = Buffer.allocUnsafeSlow(n * 4);
  return new Float32Array(bytes.buffer, bytes.byteOffset, n);
}

export class OutputPool {
  /** Off: every output is a new array and nothing is kept (BRANCHYNET_OUTPUT_POOL=0; benchmarks). */
  enabled = true;
  /**
   * Released arrays by length, least recently wanted length first: when the pool is full, those
   * go first (a length the run no longer makes, e.g. an earlier phase's or a last partial batch's).
   */
  private readonly free = new Map<number, Float32Array[]>();
  private freeBytes = 0;
  /** The arrays this pool handed out, by their buffer; `live`: registered to a tensor now. */
  private readonly owned = new WeakMap<ArrayBufferLike, { array: Float32Array; live: boolean }>();
  /** Buffers that must never be reused (read out or aliased). */
  private readonly shared = new WeakSet<ArrayBufferLike>();

  /** @param maxBytes most bytes of released arrays kept for reuse */
  constructor(readonly maxBytes: number = defaultPoolBytes()) {}

  /** An output array of n elements: a released one of that length, else a new one. */
  take(n: number): Float32Array {
    if (!this.enabled) return allocate(n);
    const list = this.free.get(n);
    const reused = list?.pop();
    if (reused !== undefined) {
      this.freeBytes -= reused.byteLength;
      // Now the most recently wanted length.
      this.free.delete(n);
      this.free.set(n, list!);
      return reused;
    }
    const array = allocate(n);
    if (n >= POOLED_MIN_LENGTH) this.owned.set(array.buffer, { array, live: false });
    return array;
  }

  /** `values` now backs a tensor (the backend's write / move). */
  register(values: unknown): void {
    const entry = this.entryOf(values);
    if (entry === undefined) return;
    if (entry.live || values !== entry.array) this.shared.add(entry.array.buffer);
    entry.live = true;
  }

  /** `values` left the backend (read out): it is never reused. */
  expose(values: unknown): void {
    const entry = this.entryOf(values);
    if (entry !== undefined) this.shared.add(entry.array.buffer);
  }

  /** The tensor backed by `values` was disposed: its array may serve a later output. */
  release(values: unknown): void {
    const entry = this.entryOf(values);
    if (entry === undefined || !entry.live) return;
    entry.live = false;
    const { array } = entry;
    if (!this.enabled || values !== array || this.shared.has(array.buffer) || array.byteLength > this.maxBytes) return;
    this.evictFor(array.byteLength);
    let list = this.free.get(array.length);
    if (list === undefined) this.free.set(array.length, (list = []));
    list.push(array);
    this.freeBytes += array.byteLength;
  }

  /** Drops arrays of the least recently wanted lengths until `bytes` more fit. */
  private evictFor(bytes: number): void {
    for (const [length, list] of this.free) {
      if (this.freeBytes + bytes <= this.maxBytes) return;
      while (list.length > 0 && this.freeBytes + bytes > this.maxBytes) this.freeBytes -= list.pop()!.byteLength;
      if (list.length === 0) this.free.delete(length);
    }
  }

  /** Drops every waiting array (the backend was disposed, or reuse is being switched off). */
  clear(): void {
    this.free.clear();
    this.freeBytes = 0;
  }

  /** Bytes waiting for reuse. */
  get pooledBytes(): number {
    return this.freeBytes;
  }

  private entryOf(values: unknown): { array: Float32Array; live: boolean } | undefined {
    if (!(values instanceof Float32Array)) return undefined;
    return this.owned.get(values.buffer);
  }
}

/** The pool every onednn backend instance and kernel shares (arrays are plain memory). */
export const outputPool = new OutputPool();
outputPool.enabled = typeof process === 'undefined' || process.env?.['BRANCHYNET_OUTPUT_POOL'] !== '0';
