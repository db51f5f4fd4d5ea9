/**
 * Reuse of the onednn backend's output arrays. Every kernel output used to be a fresh allocation,
 * and V8 counts that memory against its heap: a ResNet-20 training step (batch 64) allocated enough
 * to trigger about 7 full garbage collections and 12 scavenges (`npm run bench:step`), whose
 * marking threads took the core the OpenMP worker of 2-thread runs needed; each fresh array's pages
 * also fault in on first write. Arrays of disposed tensors now come back here and serve later outputs of the
 * same length.
 *
 * Reuse is safe only for an array no one else can still see, so an array is never reused once
 * - its values were read out (`readSync`: `dataSync()`, `data()`, `array()` hand out the backend's
 *   own array), or
 * - it was registered for a second tensor, or a view of it was (a kernel aliasing its input).
 */

/** Arrays shorter than this are left to malloc and the garbage collector (cheap, little memory). */
export const POOLED_MIN_LENGTH = 1024;
/** At most this many bytes wait in the pool; beyond it, released arrays are dropped. */
export const POOL_MAX_BYTES = 256 * 1024 * 1024;

/** A float32 array of n elements, not zero-filled (no memset; see `uninitialized`). */
function allocate(n: number): Float32Array {
  const bytes = Buffer.allocUnsafeSlow(n * 4);
  return new Float32Array(bytes.buffer, bytes.byteOffset, n);
}

export class OutputPool {
  /** Off: every output is a new array and nothing is kept (BRANCHYNET_OUTPUT_POOL=0; benchmarks). */
  enabled = true;
  private readonly free = new Map<number, Float32Array[]>();
  private freeBytes = 0;
  /** The arrays this pool handed out, by their buffer; `live`: registered to a tensor now. */
  private readonly owned = new WeakMap<ArrayBufferLike, { array: Float32Array; live: boolean }>();
  /** Buffers that must never be reused (read out or aliased). */
  private readonly shared = new WeakSet<ArrayBufferLike>();

  /** An output array of n elements: a released one of that length, else a new one. */
  take(n: number): Float32Array {
    if (!this.enabled) return allocate(n);
    const list = this.free.get(n);
    const reused = list?.pop();
    if (reused !== undefined) {
      this.freeBytes -= reused.byteLength;
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
    if (!this.enabled || values !== array || this.shared.has(array.buffer) || this.freeBytes + array.byteLength > POOL_MAX_BYTES) return;
    let list = this.free.get(array.length);
    if (list === undefined) this.free.set(array.length, (list = []));
    list.push(array);
    this.freeBytes += array.byteLength;
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
