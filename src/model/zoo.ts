import { UserError } from '../errors.js';
import type { BranchyNetSpec } from './spec.js';

/**
 * B-LeNet for MNIST, as in the reference code (kunglab/branchynet). Chainer's max pooling rounds
 * output sizes up (cover_all); our maxPool does the same by default (`roundUp`), which is why
 * 30 -> 15 -> (conv) 17 -> 9 -> (conv) 11 -> 6 and the trunk's dense layer sees 6*6*20 = 720
 * inputs and the branch's 8*8*10 = 640, exactly as in the reference. There is no relu between
 * the two dense layers of the trunk, as in the reference.
 */
export function bLeNet(): BranchyNetSpec {
  return {
    name: 'b-lenet',
    input: [28, 28, 1],
    classes: 10,
    segments: [
      [{ kind: 'conv2d', filters: 5, kernel: 5, pad: 3 }],
      [
        { kind: 'maxPool', size: 2, stride: 2 },
        { kind: 'relu' },
        { kind: 'conv2d', filters: 10, kernel: 5, pad: 3 },
        { kind: 'maxPool', size: 2, stride: 2 },
        { kind: 'relu' },
        { kind: 'conv2d', filters: 20, kernel: 5, pad: 3 },
        { kind: 'maxPool', size: 2, stride: 2 },
        { kind: 'relu' },
        { kind: 'flatten' },
        { kind: 'dense', units: 84 },
        { kind: 'dense', units: 10 },
      ],
    ],
    heads: [
      [
        { kind: 'maxPool', size: 2, stride: 2 },
        { kind: 'relu' },
        { kind: 'conv2d', filters: 10, kernel: 3, pad: 1 },
        { kind: 'maxPool', size: 2, stride: 2 },
        { kind: 'relu' },
        { kind: 'flatten' },
        { kind: 'dense', units: 10 },
      ],
      [],
    ],
    lossWeights: [1, 1],
  };
}

export const MODEL_ZOO: Record<string, () => BranchyNetSpec> = {
  'b-lenet': bLeNet,
};

export function zooSpec(name: string): BranchyNetSpec {
  const make = MODEL_ZOO[name];
  if (!make) throw new UserError(`unknown model '${name}' (known: ${Object.keys(MODEL_ZOO).join(', ')})`);
  return make();
}
