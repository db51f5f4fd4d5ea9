import { readFileSync } from 'node:fs';
import { UserError } from '../errors.js';

/** A parsed IDX file (the format of the original MNIST release): unsigned bytes only. */
export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

const UBYTE = 0x08;

/** Parses IDX bytes, checking magic, type, dimensions and length. `name` is used in errors. */
export function parseIdx(bytes: Uint8Array, name: string, expectedRank?: number): IdxArray {
  if (bytes.length < 4) throw new UserError(`${name}: not an IDX file (only ${bytes.length} bytes)`);
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw new UserError(`${name}: not an IDX file (bad magic number; is it still gzip-compressed?)`);
  }
  if (bytes[2] !== UBYTE) {
    throw new UserError(
      `${name}: IDX element type 0x${bytes[2].toString(16)} is not supported (expected 0x08, unsigned byte)`,
    );
  }
  const rank = bytes[3];
  if (expectedRank !== undefined && rank !== expectedRank) {
    throw new UserError(`${name}: expected an IDX file of rank ${expectedRank}, found rank ${rank}`);
  }
  const headerLength = 4 + 4 * rank;
  if (bytes.length < headerLength) throw new UserError(`${name}: truncated IDX header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  for (let i = 0; i < rank; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const elements = dims.reduce((a, b) => a * b, 1);
  if (bytes.length !== headerLength + elements) {
    throw new UserError(
      `${name}: IDX header declares ${dims.join('x')} = ${elements} bytes of data but the file holds ${bytes.length - headerLength}`,
    );
  }
  return { dims, data: bytes.subarray(headerLength) };
}

export function readIdx(path: string, expectedRank?: number): IdxArray {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(`${path}: cannot read (${code ?? String(e)})`);
  }
  return parseIdx(bytes, path, expectedRank);
}
