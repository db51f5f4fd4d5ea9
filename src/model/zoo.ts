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
export interface BAlexNetOptions {
  /**
   * Convolutions (1 to 4) after which the exits branch off, increasing; default [2, 3], the
   * reference code's. [1, 2] is the paper's text. The first exit gets the reference's first head
   * (two 3x3 convolutions), a second exit the reference's second (one).
   */
  exitsAfter?: number[];
}

const ALEXNET_DEFAULT_EXITS = [2, 3];

export function bAlexNet(options: BAlexNetOptions = {}): BranchyNetSpec {
  const exitsAfter = options.exitsAfter ?? ALEXNET_DEFAULT_EXITS;
  if (
    exitsAfter.length < 1 ||
    exitsAfter.length > 2 ||
    exitsAfter.some((c, i) => !Number.isInteger(c) || c < 1 || c > 4 || (i > 0 && c <= exitsAfter[i - 1]))
  ) {
    throw new UserError(
      `b-alexnet: exits follow one or two convolutions, increasing, from 1 to 4; got [${exitsAfter.join(', ')}]`,
    );
  }
  const lrn = REFERENCE_LRN;
  const conv = (filters: number, kernel: number): LayerSpec => ({
    kind: 'conv2d',
    filters,
    kernel,
    pad: (kernel - 1) / 2,
  });
  // The trunk as runs of layers, each run ending with convolution k (k = 1..5), then the classifier.
  const convRuns: LayerSpec[][] = [
    [conv(32, 5)],
    [{ kind: 'relu' }, { kind: 'maxPool', size: 3, stride: 2 }, lrn, conv(64, 5)],
    [{ kind: 'relu' }, { kind: 'maxPool', size: 3, stride: 2 }, lrn, conv(96, 3)],
    [{ kind: 'relu' }, conv(96, 3)],
    [{ kind: 'relu' }, conv(64, 3)],
  ];
  const classifier: LayerSpec[] = [
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
  ];
  const cuts = [...exitsAfter, convRuns.length];
  const segments = cuts.map((end, k) => convRuns.slice(k === 0 ? 0 : cuts[k - 1], end).flat());
  segments[segments.length - 1].push(...classifier);
  const referenceHeads: LayerSpec[][] = [
    [
      { kind: 'relu' },
      { kind: 'maxPool', size: 3, stride: 2 },
      lrn,
      conv(32, 3),
      { kind: 'relu' },
      conv(32, 3),
      { kind: 'relu' },
      { kind: 'maxPool', size: 3, stride: 2 },
      { kind: 'flatten' },
      { kind: 'dense', units: 10 },
    ],
    [
      { kind: 'relu' },
      { kind: 'maxPool', size: 3, stride: 2 },
      lrn,
      conv(32, 3),
      { kind: 'relu' },
      { kind: 'maxPool', size: 3, stride: 2 },
      { kind: 'flatten' },
      { kind: 'dense', units: 10 },
    ],
  ];
  const defaultLayout = exitsAfter.join() === ALEXNET_DEFAULT_EXITS.join();
  return {
    name: `b-alexnet${defaultLayout ? '' : `@${exitsAfter.join(',')}`}`,
    input: [32, 32, 3],
    classes: 10,
    segments,
    heads: [...referenceHeads.slice(0, exitsAfter.length), []],
    lossWeights: new Array(exitsAfter.length + 1).fill(1),
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
export interface BResNetOptions {
  /**
   * Residual blocks after which an exit branches off, in increasing order: 0 is right after the
   * stem, 3n (the last block) is not allowed (the trunk's own classifier answers there). Default
   * [0, n], the reference's positions.
   */
  exitsAfter?: number[];
  /**
   * 'reference': the reference code's two heads (only at its positions 0 and n). 'compact': at
   * any position, conv 3x3 stride 2 doubling the channels, batch norm, relu, global average
   * pooling, dense -> classes: about 1 M MACs instead of the reference's 48 M. '2conv': the same
   * with a second such convolution (doubling again) before the pooling, about 2.2-2.4 M MACs.
   */
  heads?: BResNetHeads;
}

export type BResNetHeads = 'reference' | 'compact' | '2conv';

/**
 * A compact head of `convs` stride-2 convolutions, each doubling the channels (batch norm, relu), then global
 * pooling and dense.
 */
function compactHead(blocksBefore: number, n: number, convs: number): LayerSpec[] {
  // Channels and map size after `blocksBefore` blocks: 16 at 30x30, 32 at 15x15, 64 at 8x8.
  const stage = Math.min(Math.floor(Math.max(blocksBefore - 1, 0) / n), 2);
  let channels = 16 << stage;
  let size = [30, 15, 8][stage];
  const layers: LayerSpec[] = [];
  for (let i = 0; i < convs; i++) {
    channels *= 2;
    size = Math.ceil(size / 2);
    layers.push(
      { kind: 'conv2d', filters: channels, kernel: 3, stride: 2, pad: 1 },
      { kind: 'batchNorm' },
      { kind: 'relu' },
    );
  }
  return [...layers, { kind: 'avgPool', size }, { kind: 'flatten' }, { kind: 'dense', units: 10 }];
}

export function bResNet(depth: number, options: BResNetOptions = {}): BranchyNetSpec {
  const n = (depth - 2) / 6;
  if (!Number.isInteger(n) || n < 1)
    throw new UserError(`b-resnet: depth must be 6n+2 with n >= 1 (20, 32, 44, 56, 110, ...), got ${depth}`);
  const headKind = options.heads ?? 'reference';
  const exitsAfter = options.exitsAfter ?? [0, n];
  if (exitsAfter.some((b, i) => !Number.isInteger(b) || b < 0 || b >= 3 * n || (i > 0 && b <= exitsAfter[i - 1]))) {
    throw new UserError(
      `b-resnet-${depth}: exit positions must be increasing block counts from 0 to ${3 * n - 1}, got [${exitsAfter.join(', ')}]`,
    );
  }
  if (headKind === 'reference' && exitsAfter.join() !== [0, n].join()) {
    throw new UserError(
      `b-resnet-${depth}: the reference heads only fit exits after blocks 0 and ${n}; use compact heads for [${exitsAfter.join(', ')}]`,
    );
  }
  const blocks: LayerSpec[] = [16, 32, 64].flatMap((filters, s) =>
    Array.from({ length: n }, (_, i) => ({
      kind: 'resBlock' as const,
      filters,
      ...(i === 0 && s > 0 ? { stride: 2 } : {}),
    })),
  );
  const stem: LayerSpec[] = [
    { kind: 'conv2d', filters: 16, kernel: 3, pad: 0 },
    { kind: 'batchNorm' },
    { kind: 'relu' },
  ];
  const classifier: LayerSpec[] = [
    { kind: 'avgPool', size: 6, stride: 1 },
    { kind: 'flatten' },
    { kind: 'dense', units: 10 },
  ];
  const cuts = [...exitsAfter, 3 * n];
  const segments = cuts.map((end, k) => [...(k === 0 ? stem : []), ...blocks.slice(k === 0 ? 0 : cuts[k - 1], end)]);
  segments[segments.length - 1].push(...classifier);
  const referenceHeads: LayerSpec[][] = [
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
  ];
  const heads =
    headKind === 'reference' ? referenceHeads : exitsAfter.map((b) => compactHead(b, n, headKind === '2conv' ? 2 : 1));
  const defaultLayout = headKind === 'reference' || exitsAfter.join() === [0, n].join();
  return {
    name: `b-resnet-${depth}${headKind === 'reference' ? '' : `-${headKind}`}${defaultLayout ? '' : `@${exitsAfter.join(',')}`}`,
    input: [32, 32, 3],
    classes: 10,
    segments,
    heads: [...heads, []],
    lossWeights: new Array(exitsAfter.length + 1).fill(1),
  };
}

/**
 * A zoo model by name: b-lenet, b-alexnet (b-alexnet@1,2: exits after other convolutions), b-resnet-<depth> (depth
 * 6n+2, the reference heads) or
 * b-resnet-<depth>-compact / -2conv, optionally with exit positions: b-resnet-20-compact@3,6.
 */
export const MODEL_ZOO: Record<string, () => BranchyNetSpec> = {
  'b-lenet': bLeNet,
  'b-alexnet': bAlexNet,
  'b-resnet-20': () => bResNet(20),
  'b-resnet-32': () => bResNet(32),
  'b-resnet-110': () => bResNet(110),
  'b-resnet-20-compact': () => bResNet(20, { heads: 'compact' }),
};

export function zooSpec(name: string): BranchyNetSpec {
  const alexnet = /^b-alexnet@(\d+(?:,\d+)*)$/.exec(name);
  if (alexnet) return bAlexNet({ exitsAfter: alexnet[1].split(',').map(Number) });
  const resnet = /^b-resnet-(\d+)(?:-(compact|2conv))?(?:@(\d+(?:,\d+)*))?$/.exec(name);
  if (resnet) {
    const exitsAfter = resnet[3]?.split(',').map(Number);
    return bResNet(Number(resnet[1]), {
      heads: (resnet[2] as BResNetHeads | undefined) ?? 'reference',
      ...(exitsAfter ? { exitsAfter } : {}),
    });
  }
  const make = MODEL_ZOO[name];
  if (!make)
    throw new UserError(
      `unknown model '${name}' (known: ${Object.keys(MODEL_ZOO).join(', ')}; b-alexnet@convs,...; b-resnet-<6n+2>[-compact|-2conv][@blocks,...])`,
    );
  return make();
}
