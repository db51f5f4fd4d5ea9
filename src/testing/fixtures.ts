import type { Dataset } from '../data/dataset.js';
import type { BranchyNetSpec } from '../model/spec.js';
import { Rng } from '../rng.js';

/** A tiny three-exit network on 9x9x2 inputs, exercising every layer kind and odd sizes. */
export function tinySpec(): BranchyNetSpec {
  return {
    name: 'tiny',
    input: [9, 9, 2],
    classes: 4,
    segments: [
      [{ kind: 'conv2d', filters: 3, kernel: 3, pad: 1 }],
      [
        { kind: 'maxPool', size: 2, stride: 2 },
        { kind: 'relu' },
        { kind: 'conv2d', filters: 4, kernel: 3, stride: 2, pad: 1 },
      ],
      [
        { kind: 'relu' },
        { kind: 'flatten' },
        { kind: 'dense', units: 6 },
        { kind: 'relu' },
        { kind: 'dense', units: 4 },
      ],
    ],
    heads: [
      [{ kind: 'maxPool', size: 3, stride: 2 }, { kind: 'relu' }, { kind: 'flatten' }, { kind: 'dense', units: 4 }],
      [{ kind: 'relu' }, { kind: 'flatten' }, { kind: 'dense', units: 4 }],
      [],
    ],
  };
}

/** Seeded random images in [0, 1) with random labels. */
export function randomDataset(count: number, shape: [number, number, number], classes: number, seed: number): Dataset {
  const rng = new Rng(seed);
  const size = shape[0] * shape[1] * shape[2];
  const images = new Float32Array(count * size);
  for (let i = 0; i < images.length; i++) images[i] = rng.next();
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) labels[i] = rng.int(classes);
  return { images, labels, count, shape, classes: Array.from({ length: classes }, (_, c) => String(c)) };
}
