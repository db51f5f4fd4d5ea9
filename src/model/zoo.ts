import { UserError } from '../errors.js';
import type { BranchyNetSpec, LayerSpec } from './spec.js';

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

/** The reference code's LRN: F.local_response_normalization(n=3, alpha=5e-05, beta=0.75), k left at Chainer's 2. */
const REFERENCE_LRN: LayerSpec = { kind: 'lrn', n: 3, k: 2, alpha: 5e-5, beta: 0.75 };

/**
 * B-AlexNet for CIFAR-10 (32x32x3), as in the reference code (networks/alex_cifar10.py): the
 * exits follow conv2 and conv3 (the paper's text says conv1 and conv2). Max pooling 3/2 rounds
 * up as Chainer's cover_all does: 32 -> 16 -> 8 -> 4, so the trunk's first dense layer sees
 * 4*4*64 = 1024 inputs, exit 1's 4*4*32 = 512 and exit 2's 2*2*32 = 128, exactly as in the
 * reference. Flattening is NHWC rather than Chainer's NCHW (a fixed permutation of the dense
 * weights; no effect on what the network can learn). MACs per image: 28,247,296 along the trunk
 * (the reference's "about 28.2 M"), plus 1,774,592 in exit 1's head and 443,648 in exit 2's:
 * 30,465,536 in all; LRN, pooling and dropout are counted as 0.
 */
export function bAlexNet(): BranchyNetSpec {
  const lrn = REFERENCE_LRN;
  return {
    name: 'b-alexnet',
    input: [32, 32, 3],
    classes: 10,
    segments: [
      [
        { kind: 'conv2d', filters: 32, kernel: 5, pad: 2 },
        { kind: 'relu' },
        { kind: 'maxPool', size: 3, stride: 2 },
        lrn,
        { kind: 'conv2d', filters: 64, kernel: 5, pad: 2 },
      ],
      [{ kind: 'relu' }, { kind: 'maxPool', size: 3, stride: 2 }, lrn, { kind: 'conv2d', filters: 96, kernel: 3, pad: 1 }],
      [
        { kind: 'relu' },
        { kind: 'conv2d', filters: 96, kernel: 3, pad: 1 },
        { kind: 'relu' },
        { kind: 'conv2d', filters: 64, kernel: 3, pad: 1 },
        { kind: 'relu' },
        { kind: 'maxPool', size: 3, stride: 2 },
        { kind: 'flatten' },
        { kind: 'dense', units: 256 },
        { kind: 'relu' },
        { kind: 'dropout', rate: 0.5 },
        { kind: 'dense', units: 128 },
        { kind: 'relu' },
        { kind: 'dropout', rate: 0.5 },
        { kind: 'dense', units: 10 },
      ],
    ],
    heads: [
      [
        { kind: 'relu' },
        { kind: 'maxPool', size: 3, stride: 2 },
        lrn,
        { kind: 'conv2d', filters: 32, kernel: 3, pad: 1 },
        { kind: 'relu' },
        { kind: 'conv2d', filters: 32, kernel: 3, pad: 1 },
        { kind: 'relu' },
        { kind: 'maxPool', size: 3, stride: 2 },
        { kind: 'flatten' },
        { kind: 'dense', units: 10 },
      ],
      [
        { kind: 'relu' },
        { kind: 'maxPool', size: 3, stride: 2 },
        lrn,
        { kind: 'conv2d', filters: 32, kernel: 3, pad: 1 },
        { kind: 'relu' },
        { kind: 'maxPool', size: 3, stride: 2 },
        { kind: 'flatten' },
        { kind: 'dense', units: 10 },
      ],
      [],
    ],
    lossWeights: [1, 1, 1],
  };
}

/**
 * B-ResNet-(6n+2) for CIFAR-10, after the reference code (networks/resnet_cifar10.py, the
 * version whose exit 1 follows the stem): stem conv 3x3 3->16 with pad 0 (32 -> 30), batch norm,
 * relu, **exit 1**; n residual blocks of 16 channels, **exit 2**; n blocks of 32 (the first of
 * stride 2: 30 -> 15), n of 64 (15 -> 8), average pool 6 stride 1 (8 -> 3), dense 576 -> 10
 * (**exit 3**). Exit 1's head: conv 5x5 16->64 (pad 2), relu, LRN, conv 3x3 64->32, relu,
 * conv 3x3 32->32, relu, dense 28800 -> 10. Exit 2's head: one residual block of 16, dense
 * 14400 -> 10. (An earlier version of the reference file puts exit 1 after the first residual
 * block, with a different head; we follow the one the reference facts describe.)
 *
 * MACs per image (batch norm, pooling and LRN counted as 0): the trunk of B-ResNet-110 is
 * 232,411,968 (the reference's "about 232 M"). The trunk of B-ResNet-20 is 37,217,088: the
 * often quoted ~41 M (40.55 M) is He et al.'s ResNet-20, whose stem has pad 1 and keeps 32x32;
 * the reference's pad-0 stem works on 30x30 maps, (30/32)^2 of the arithmetic. The heads add
 * 48,211,200 (exit 1) and 4,291,200 (exit 2) at any depth.
 */
export function bResNet(depth: number): BranchyNetSpec {
  const n = (depth - 2) / 6;
  if (!Number.isInteger(n) || n < 1) throw new UserError(`b-resnet: depth must be 6n+2 with n >= 1 (20, 32, 44, 56, 110, ...), got ${depth}`);
  const stage = (filters: number, stride: number): LayerSpec[] =>
    Array.from({ length: n }, (_, i) => ({ kind: 'resBlock' as const, filters, ...(i === 0 && stride !== 1 ? { stride } : {}) }));
  return {
    name: `b-resnet-${depth}`,
    input: [32, 32, 3],
    classes: 10,
    segments: [
      [{ kind: 'conv2d', filters: 16, kernel: 3, pad: 0 }, { kind: 'batchNorm' }, { kind: 'relu' }],
      stage(16, 1),
      [...stage(32, 2), ...stage(64, 2), { kind: 'avgPool', size: 6, stride: 1 }, { kind: 'flatten' }, { kind: 'dense', units: 10 }],
    ],
    heads: [
      [
        { kind: 'conv2d', filters: 64, kernel: 5, pad: 2 },
        { kind: 'relu' },
        REFERENCE_LRN,
        { kind: 'conv2d', filters: 32, kernel: 3, pad: 1 },
        { kind: 'relu' },
        { kind: 'conv2d', filters: 32, kernel: 3, pad: 1 },
        { kind: 'relu' },
        { kind: 'flatten' },
        { kind: 'dense', units: 10 },
      ],
      [{ kind: 'resBlock', filters: 16 }, { kind: 'flatten' }, { kind: 'dense', units: 10 }],
      [],
    ],
    lossWeights: [1, 1, 1],
  };
}

export const MODEL_ZOO: Record<string, () => BranchyNetSpec> = {
  'b-lenet': bLeNet,
  'b-alexnet': bAlexNet,
  'b-resnet-20': () => bResNet(20),
  'b-resnet-32': () => bResNet(32),
  'b-resnet-110': () => bResNet(110),
};

export function zooSpec(name: string): BranchyNetSpec {
  const make = MODEL_ZOO[name];
  if (!make) throw new UserError(`unknown model '${name}' (known: ${Object.keys(MODEL_ZOO).join(', ')})`);
  return make();
}
