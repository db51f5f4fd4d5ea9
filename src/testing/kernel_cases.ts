import { Rng } from '../rng.js';

/** Shared fixtures of the kernel tests (wasm and onednn): seeded values and convolution cases. */

export type Pad = 'valid' | 'same' | number | [[number, number], [number, number], [number, number], [number, number]];
export type Shape4 = [number, number, number, number];

/** A seeded stream uniform in [-1, 1). */
export function uniform(seed: number): () => number {
  const rng = new Rng(seed);
  return () => rng.next() * 2 - 1;
}

export const sizeOf = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

export interface ConvCase {
  x: Shape4;
  f: Shape4;
  strides: [number, number];
  pad: Pad;
  dilations?: [number, number];
}

/** Convolutions over strides 1 and 2, every padding kind, odd sizes, 5x5 and 3x3 filters, plus edge cases. */
export function convCases(): ConvCase[] {
  const rand = uniform(7);
  const int = (lo: number, hi: number): number => lo + Math.floor(((rand() + 1) / 2) * (hi - lo + 1));
  const cases: ConvCase[] = [];
  const pads: Pad[] = [
    'valid',
    'same',
    1,
    3,
    [
      [0, 0],
      [1, 2],
      [0, 3],
      [0, 0],
    ],
  ];
  for (const s of [1, 2]) {
    for (const pad of pads) {
      for (const k of [5, 3]) {
        const ci = int(1, 7);
        const co = int(1, 7);
        cases.push({ x: [int(1, 3), 17, 13, ci], f: [k, k, ci, co], strides: [s, s], pad });
      }
    }
  }
  // Uneven strides / filters, 1x1 strided (input rows never read), even filter.
  cases.push({ x: [2, 17, 13, 3], f: [3, 5, 3, 4], strides: [2, 1], pad: 'same' });
  cases.push({ x: [2, 17, 13, 3], f: [1, 1, 3, 4], strides: [2, 2], pad: 'valid' });
  cases.push({ x: [1, 16, 16, 2], f: [4, 4, 2, 3], strides: [2, 2], pad: 'same' });
  cases.push({ x: [3, 12, 12, 4], f: [3, 3, 4, 6], strides: [3, 3], pad: 'valid' });
  return cases;
}

export const convCaseName = (c: ConvCase): string =>
  `x[${c.x}] f[${c.f}] s[${c.strides}] pad ${JSON.stringify(c.pad)}${c.dilations ? ` d[${c.dilations}]` : ''}`;
