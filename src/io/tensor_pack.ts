import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { shown, UserError } from '../errors.js';

/** One named float32 array with its shape, as stored in weight files and checkpoints. */
export interface NamedArray {
  name: string;
  shape: number[];
  data: Float32Array;
}

export interface PackEntry {
  name: string;
  shape: number[];
  /** Offset in float32 elements from the start of the data. */
  offset: number;
}

/** Concatenates arrays into one little-endian float32 blob plus a manifest. */
export function packArrays(arrays: NamedArray[]): { manifest: PackEntry[]; bytes: Uint8Array } {
  const total = arrays.reduce((n, a) => n + a.data.length, 0);
  const data = new Float32Array(total);
  const manifest: PackEntry[] = [];
  let offset = 0;
  for (const a of arrays) {
    const size = a.shape.reduce((x, y) => x * y, 1);
    if (size !== a.data.length)
      throw new Error(`packArrays: ${a.name} has ${a.data.length} values for shape [${a.shape}]`);
    data.set(a.data, offset);
    manifest.push({ name: a.name, shape: a.shape, offset });
    offset += size;
  }
  return { manifest, bytes: new Uint8Array(data.buffer) };
}

function isEntry(e: unknown): e is PackEntry {
  const entry = e as Partial<PackEntry> | null;
  const count = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
  return (
    typeof entry === 'object' &&
    entry !== null &&
    typeof entry.name === 'string' &&
    Array.isArray(entry.shape) &&
    entry.shape.every(count) &&
    count(entry.offset)
  );
}

/**
 * The arrays `manifest` describes in `bytes`. A manifest that is not a list of { name, shape,
 * offset }, an array past the end of the data or a NaN or infinite value is a UserError naming `source`.
 */
export function unpackArrays(manifest: PackEntry[], bytes: Uint8Array, source: string): NamedArray[] {
  if (bytes.byteLength % 4 !== 0)
    throw new UserError(`${source}: length ${bytes.byteLength} is not a whole number of float32 values`);
  if (!Array.isArray(manifest)) {
    throw new UserError(`${source}: its manifest is not a list of arrays (found ${shown(manifest)})`);
  }
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  const data = new Float32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4);
  return manifest.map((e, i) => {
    if (!isEntry(e)) {
      throw new UserError(
        `${source}: manifest entry ${i} is not { name, shape, offset } with whole numbers (found ${shown(e)})`,
      );
    }
    const size = e.shape.reduce((x, y) => x * y, 1);
    if (e.offset + size > data.length) {
      const needs = `${shown(e.name)} needs values up to ${e.offset + size}`;
      throw new UserError(`${source}: truncated (${needs}, file has ${data.length})`);
    }
    const values = data.slice(e.offset, e.offset + size);
    const bad = values.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) {
      throw new UserError(
        `${source}: ${shown(e.name)} holds ${values[bad]} at index ${bad} (a corrupt file, or a run that diverged)`,
      );
    }
    return { name: e.name, shape: e.shape, data: values };
  });
}

/** Writes a file so that a reader sees either the old or the new content, never a torn one. */
export function writeFileAtomic(path: string, chunks: Uint8Array[]): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    try {
      for (const c of chunks) writeSync(fd, c);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    // A failed write (a full disk) leaves neither a torn file nor the temporary one.
    rmSync(tmp, { force: true });
    throw e;
  }
}

const MAGIC = 'BRANCHY1';

/** One self-describing file: magic, JSON header (with the manifest), float32 data. */
export function writePackFile(path: string, header: object, arrays: NamedArray[]): void {
  const { manifest, bytes } = packArrays(arrays);
  let json = new TextEncoder().encode(JSON.stringify({ ...header, manifest }));
  const padded = new Uint8Array(Math.ceil(json.length / 4) * 4).fill(0x20);
  padded.set(json);
  json = padded;
  const prefix = new Uint8Array(12);
  prefix.set(new TextEncoder().encode(MAGIC));
  new DataView(prefix.buffer).setUint32(8, json.length, true);
  writeFileAtomic(path, [prefix, json, bytes]);
}

export function readPackFile<H extends object>(path: string): { header: H; arrays: NamedArray[] } {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new UserError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  if (bytes.length < 12 || new TextDecoder().decode(bytes.subarray(0, 8)) !== MAGIC) {
    throw new UserError(`${path}: not a branchynet checkpoint file`);
  }
  const jsonLength = new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true);
  if (12 + jsonLength > bytes.length) throw new UserError(`${path}: truncated header`);
  let header: H & { manifest: PackEntry[] };
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + jsonLength)));
  } catch {
    throw new UserError(`${path}: corrupt header`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new UserError(`${path}: corrupt header (not a JSON object)`);
  }
  const arrays = unpackArrays(header.manifest, bytes.subarray(12 + jsonLength), path);
  return { header, arrays };
}
