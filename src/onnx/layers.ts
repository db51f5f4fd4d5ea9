import { UserError } from '../errors.js';
import type { CompiledLayer } from '../model/network.js';
import { BATCH_NORM_DEFAULTS } from '../model/layers/batch_norm.js';
import { lrnParams } from '../model/layers/lrn.js';
import type {
  AvgPoolSpec,
  BatchNormSpec,
  BranchyNetSpec,
  Conv2dSpec,
  DenseSpec,
  DropoutSpec,
  FlattenSpec,
  LayerKind,
  LayerSpec,
  LrnSpec,
  MaxPoolSpec,
  ReluSpec,
  ResBlockSpec,
  Shape,
} from '../model/spec.js';
import type { Dim, GraphBuilder } from './graph.js';

/**
 * How a graph value stores one sample. The network thinks in NHWC; the ONNX graphs run in NCHW
 * (what ONNX's Conv and MaxPool take), so
 * - 'NCHW': a [h, w, c] activation stored as [N, c, h, w];
 * - 'NF': a vector stored as [N, f] in the network's own order;
 * - 'NF' with `flattenedFrom: [h, w, c]`: a vector flattened from an NCHW value, so its features
 *   are in (c, h, w) order rather than the network's (h, w, c) order. The next dense layer
 *   permutes its weight rows to match, which costs nothing at run time.
 */
export interface Layout {
  layout: 'NCHW' | 'NF';
  flattenedFrom?: [number, number, number];
}

/** A value in the graph being built. */
export interface OnnxValue extends Layout {
  name: string;
  /** Per-sample shape in the network's terms (NHWC), as in CompiledLayer. */
  shape: Shape;
}

/** The graph dimensions of a value: batch 'N' first. */
export function graphDims(v: Pick<OnnxValue, 'layout' | 'shape'>, batch: Dim = 'N'): Dim[] {
  if (v.layout === 'NCHW') {
    const [h, w, c] = v.shape;
    return [batch, c, h, w];
  }
  return [batch, ...v.shape];
}

/** Reads one of the layer's parameters (its short name, e.g. 'w') as float32 values and shape. */
export type ParamReader = (short: string) => { values: Float32Array; shape: number[] };

export type LayerExporter<S extends LayerSpec> = (
  g: GraphBuilder,
  layer: CompiledLayer & { spec: S },
  x: OnnxValue,
  param: ParamReader,
) => OnnxValue;

function expectNchw(kind: string, x: OnnxValue): void {
  if (x.layout !== 'NCHW') throw new Error(`onnx export: ${kind} expects an [h, w, c] activation, got a flat one`);
}

/** A Conv node from tfjs HWIO weights (converted to ONNX's OIHW) and a bias; returns its output. */
function convNode(
  g: GraphBuilder,
  x: string,
  w: { values: Float32Array; shape: number[] },
  bias: Float32Array,
  stride: number,
  pad: number,
): string {
  const [kh, kw, cin, cout] = w.shape;
  const oihw = new Float32Array(w.values.length);
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      for (let ci = 0; ci < cin; ci++) {
        for (let co = 0; co < cout; co++)
          oihw[((co * cin + ci) * kh + i) * kw + j] = w.values[((i * kw + j) * cin + ci) * cout + co];
      }
    }
  }
  return g.node(
    'Conv',
    [x, g.floatConstant(`${x}_conv_w`, [cout, cin, kh, kw], oihw), g.floatConstant(`${x}_conv_b`, [cout], bias)],
    { kernel_shape: [kh, kw], strides: [stride, stride], pads: [pad, pad, pad, pad], dilations: [1, 1], group: 1 },
    'conv',
  );
}

const conv2d: LayerExporter<Conv2dSpec> = (g, layer, x, param) => {
  expectNchw('conv2d', x);
  const { spec } = layer;
  const out = convNode(g, x.name, param('w'), param('b').values, spec.stride ?? 1, spec.pad ?? 0);
  return { name: out, shape: layer.outputShape, layout: 'NCHW' };
};

const maxPool: LayerExporter<MaxPoolSpec> = (g, layer, x) => {
  expectNchw('maxPool', x);
  const { spec } = layer;
  const stride = spec.stride ?? spec.size;
  const pad = spec.pad ?? 0;
  const [h, w] = layer.inputShape;
  const [oh, ow] = layer.outputShape;
  // Rounding the output size up (Chainer's cover_all) = extra bottom/right padding, which ONNX's
  // MaxPool, like tfjs, never picks as a maximum. Derived from the layer's own output shape.
  const extraH = (oh - 1) * stride + spec.size - h - 2 * pad;
  const extraW = (ow - 1) * stride + spec.size - w - 2 * pad;
  const out = g.node(
    'MaxPool',
    [x.name],
    { kernel_shape: [spec.size, spec.size], strides: [stride, stride], pads: [pad, pad, pad + extraH, pad + extraW] },
    'pool',
  );
  return { ...x, name: out, shape: layer.outputShape };
};

const relu: LayerExporter<ReluSpec> = (g, _layer, x) => ({ ...x, name: g.node('Relu', [x.name], {}, 'relu') });

const flatten: LayerExporter<FlattenSpec> = (g, layer, x) => {
  if (x.layout === 'NF') return { ...x, shape: layer.outputShape };
  const [h, w, c] = x.shape;
  return {
    name: g.node('Flatten', [x.name], { axis: 1 }, 'flat'),
    shape: layer.outputShape,
    layout: 'NF',
    flattenedFrom: [h, w, c],
  };
};

/**
 * Per-feature values (`rowSize` each) of a flat vector in the network's (h, w, c) order, moved to
 * the graph's (c, h, w) order: network feature (i * W + j) * C + ch sits at (ch * H + i) * W + j.
 */
function toGraphFeatureOrder(values: Float32Array, [H, W, C]: [number, number, number], rowSize = 1): Float32Array {
  const out = new Float32Array(values.length);
  for (let i = 0; i < H; i++) {
    for (let j = 0; j < W; j++) {
      for (let ch = 0; ch < C; ch++) {
        const from = ((i * W + j) * C + ch) * rowSize;
        out.set(values.subarray(from, from + rowSize), ((ch * H + i) * W + j) * rowSize);
      }
    }
  }
  return out;
}

const dense: LayerExporter<DenseSpec> = (g, layer, x, param) => {
  if (x.layout !== 'NF')
    throw new Error('onnx export: dense expects a flat activation; the spec needs a flatten layer first');
  const w = param('w');
  const [n, units] = w.shape;
  // Row r of the network's weight multiplies NHWC feature r; move each row to where the graph feeds that feature.
  const values = x.flattenedFrom ? toGraphFeatureOrder(w.values, x.flattenedFrom, units) : w.values;
  const out = g.node(
    'Gemm',
    [
      x.name,
      g.floatConstant(`${x.name}_gemm_w`, [n, units], values),
      g.floatConstant(`${x.name}_gemm_b`, [units], param('b').values),
    ],
    {},
    'dense',
  );
  return { name: out, shape: layer.outputShape, layout: 'NF' };
};

/**
 * Chainer/Caffe LRN (what the tfjs layer computes) as ONNX LRN. Chainer sums the squares over the
 * channels c - floor(n/2) .. c + floor(n/2) and does not divide alpha; ONNX LRN sums over
 * c - floor((size-1)/2) .. c + ceil((size-1)/2) and divides alpha by size. So size = 2 * floor(n/2) + 1
 * (n itself for odd n; an even n's window is one wider in Chainer's definition) and
 * alpha = chainer alpha * size.
 */
const lrn: LayerExporter<LrnSpec> = (g, layer, x) => {
  expectNchw('lrn', x);
  const { n, k, alpha, beta } = lrnParams(layer.spec);
  const size = 2 * Math.floor(n / 2) + 1;
  const out = g.node(
    'LRN',
    [x.name],
    { size, alpha: { float: alpha * size }, beta: { float: beta }, bias: { float: k } },
    'lrn',
  );
  return { ...x, name: out };
};

/**
 * The same LRN from fast standard operators: ONNX Runtime's LRN kernel is a slow loop (a third of
 * B-AlexNet's time at batch 1; docs/benchmarks.md). The windowed sum of
 * squares is a 1x1 convolution of x*x with a band matrix (alpha on the n channels around each,
 * bias k), blocked and vectorised like every convolution; then x * t^-beta, with beta = 0.75 and
 * 0.5 as square roots (exact to float rounding) and any other beta through Pow.
 */
export function exportLrnAsConv(g: GraphBuilder, layer: CompiledLayer & { spec: LrnSpec }, x: OnnxValue): OnnxValue {
  expectNchw('lrn', x);
  const { n, k, alpha, beta } = lrnParams(layer.spec);
  const c = x.shape[2];
  const half = Math.floor(n / 2);
  const band = new Float32Array(c * c);
  for (let co = 0; co < c; co++) {
    for (let ci = Math.max(0, co - half); ci <= Math.min(c - 1, co + half); ci++) band[co * c + ci] = alpha;
  }
  const squares = g.node('Mul', [x.name, x.name], {}, 'lrn_sq');
  const t = g.node(
    'Conv',
    [
      squares,
      g.floatConstant(`${x.name}_lrn_band`, [c, c, 1, 1], band),
      g.floatConstant(`${x.name}_lrn_k`, [c], new Float32Array(c).fill(k)),
    ],
    { kernel_shape: [1, 1], strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1 },
    'lrn_sum',
  );
  let out: string;
  if (beta === 0.75) {
    const root = g.node('Sqrt', [t], {}, 'lrn_sqrt');
    const root4 = g.node('Sqrt', [root], {}, 'lrn_sqrt4');
    out = g.node('Div', [x.name, g.node('Mul', [root, root4], {}, 'lrn_pow')], {}, 'lrn');
  } else if (beta === 0.5) {
    out = g.node('Div', [x.name, g.node('Sqrt', [t], {}, 'lrn_sqrt')], {}, 'lrn');
  } else {
    const scale = g.node(
      'Pow',
      [t, g.floatConstant(`${x.name}_lrn_beta`, [], new Float32Array([-beta]))],
      {},
      'lrn_pow',
    );
    out = g.node('Mul', [x.name, scale], {}, 'lrn');
  }
  return { ...x, name: out };
}

/**
 * A BatchNormalization node from a batch norm's four parameters; `prefix` names a sub-layer's ('bn1.' in a residual
 * block).
 */
function batchNormNode(g: GraphBuilder, x: OnnxValue, param: ParamReader, epsilon: number, prefix = ''): string {
  const read = (short: string) => {
    const v = param(prefix + short).values;
    // A batch norm after a flatten normalises each feature; the graph holds them in (c, h, w) order.
    return x.layout === 'NF' && x.flattenedFrom ? toGraphFeatureOrder(v, x.flattenedFrom) : v;
  };
  const channels = x.layout === 'NCHW' ? x.shape[2] : x.shape[0];
  const c = (short: string) => g.floatConstant(`${x.name}_bn_${short}`, [channels], read(short));
  // Opset 13 runs BatchNormalization-9: inference with the given (running) statistics when only Y is asked for.
  return g.node(
    'BatchNormalization',
    [x.name, c('gamma'), c('beta'), c('mean'), c('variance')],
    { epsilon: { float: epsilon } },
    'bn',
  );
}

/** Inference batch norm: the running statistics (state parameters) and the layer's epsilon. */
const batchNorm: LayerExporter<BatchNormSpec> = (g, layer, x, param) => {
  if (x.layout === 'NF' && x.shape.length !== 1)
    throw new Error('onnx export: batchNorm on a flat activation expects [N, F]');
  return { ...x, name: batchNormNode(g, x, param, layer.spec.epsilon ?? BATCH_NORM_DEFAULTS.epsilon) };
};

/**
 * Average pooling without padding, output size rounded down (the tfjs layer's 'valid' pooling):
 * every window lies inside the input, so count_include_pad cannot matter; it is set to 0, which is
 * also what tfjs does where a window overlaps padding (averages over the real cells only).
 */
const avgPool: LayerExporter<AvgPoolSpec> = (g, layer, x) => {
  expectNchw('avgPool', x);
  const { spec } = layer;
  const stride = spec.stride ?? spec.size;
  const out = g.node(
    'AveragePool',
    [x.name],
    {
      kernel_shape: [spec.size, spec.size],
      strides: [stride, stride],
      pads: [0, 0, 0, 0],
      count_include_pad: 0,
      ceil_mode: 0,
    },
    'avgpool',
  );
  return { ...x, name: out, shape: layer.outputShape };
};

/** Dropout is the identity at inference: no node. */
const dropout: LayerExporter<DropoutSpec> = (_g, _layer, x) => x;

/**
 * The option-A shortcut of a block that subsamples or widens: every stride-th pixel of the input
 * (tfjs: a 1x1 average pool of that stride), its c channels after f - c new zero ones. Exported as
 * a 1x1 convolution whose weights select those channels (exact: each output is one input times 1
 * plus zeros), not as Slice + Pad: ONNX Runtime runs a convolution in its blocked channel layout,
 * where the residual Add and Relu fuse into the block's second convolution. Slice and Pad have no
 * blocked form, so they left every later block converting layouts back and forth around a separate
 * Add and Relu (ResNet-20's baseline: 6 of its 9 blocks). For the same reason a block whose input
 * is the graph's input (a stage's first) takes its identity shortcut through this convolution:
 * ONNX Runtime converts a graph input to the blocked layout for the convolution only, and an Add
 * of it stayed unfused for the whole stage.
 */
function shortcutConv(g: GraphBuilder, x: string, c: number, f: number, stride: number): string {
  const hwio = new Float32Array(c * f);
  for (let i = 0; i < c; i++) hwio[i * f + (f - c) + i] = 1;
  return convNode(g, x, { values: hwio, shape: [1, 1, c, f] }, new Float32Array(f), stride, 0);
}

/**
 * The residual block (see ResBlockSpec): Conv(3x3, stride) -> BatchNormalization -> Relu ->
 * Conv(3x3) -> BatchNormalization, plus the shortcut (the input, or `shortcutConv` where the block
 * subsamples or widens or begins a stage), then Relu.
 */
const resBlock: LayerExporter<ResBlockSpec> = (g, layer, x, param) => {
  expectNchw('resBlock', x);
  const { spec } = layer;
  const stride = spec.stride ?? 1;
  const c = layer.inputShape[2];
  const [oh, ow, f] = layer.outputShape;
  const eps = BATCH_NORM_DEFAULTS.epsilon; // the tfjs block runs its batch norms with the defaults
  const conv = (input: string, name: string, s: number) =>
    convNode(g, input, param(`${name}.w`), param(`${name}.b`).values, s, 1);
  const mid = (name: string): OnnxValue => ({ name, shape: [oh, ow, f], layout: 'NCHW' });
  let y = conv(x.name, 'conv1', stride);
  y = g.node('Relu', [batchNormNode(g, mid(y), param, eps, 'bn1.')], {}, 'relu');
  y = batchNormNode(g, mid(conv(y, 'conv2', 1)), param, eps, 'bn2.');
  const shortcut = stride > 1 || f > c || g.isInput(x.name) ? shortcutConv(g, x.name, c, f, stride) : x.name;
  const sum = g.node('Add', [y, shortcut], {}, 'residual');
  return { name: g.node('Relu', [sum], {}, 'relu'), shape: layer.outputShape, layout: 'NCHW' };
};

/** One exporter per layer kind: adding a kind to the spec means adding one entry here. */
export const LAYER_EXPORTERS: { [K in LayerKind]: LayerExporter<Extract<LayerSpec, { kind: K }>> } = {
  conv2d,
  maxPool,
  relu,
  flatten,
  dense,
  lrn,
  batchNorm,
  avgPool,
  dropout,
  resBlock,
};

/** The layer kinds of `spec` (trunk and heads) that have no exporter, in order of first use. */
export function unexportableKinds(spec: BranchyNetSpec): string[] {
  const known = new Set(Object.keys(LAYER_EXPORTERS));
  const kinds = [...spec.segments, ...spec.heads].flat().map((l) => l.kind);
  return [...new Set(kinds.filter((k) => !known.has(k)))];
}

export function exportLayer(g: GraphBuilder, layer: CompiledLayer, x: OnnxValue, param: ParamReader): OnnxValue {
  const exporter = (LAYER_EXPORTERS as Record<string, LayerExporter<LayerSpec> | undefined>)[layer.spec.kind];
  if (!exporter)
    throw new UserError(
      `onnx export: layer kind '${layer.spec.kind}' cannot be exported yet (exportable: ${Object.keys(LAYER_EXPORTERS).join(', ')})`,
    );
  return exporter(g, layer, x, param);
}

/**
 * A stride-1 convolution with few input channels, then relu, then a 2x2 max pool of stride 2 that
 * tiles the convolution's output exactly (even height and width, no padding): ONNX Runtime runs
 * such a convolution slowly (a 1-channel input fills a sliver of each SIMD block), so the three
 * layers are exported as one stride-2 convolution over the pool's four phases instead:
 *   Conv(kernel k + 1, stride 2, cout -> 4 cout) -> Relu -> max over the 4 phases.
 * Output channel (c, a, b) at (i, j) is the original convolution's channel c at (2i + a, 2j + b):
 * its filter is the original one shifted by (a, b) inside the (k + 1)-square kernel. So the 2x2
 * pool is a max over the phases (a, b); the arithmetic per output is the original's (the extra
 * taps are zeros), about 1.4x its multiply-adds at a quarter of the positions with four times the
 * channels, which ONNX Runtime's blocked kernels fill. Faster for B-LeNet's first layer than the
 * plain convolution and pool, and than the same idea as Pad -> SpaceToDepth -> stride-1
 * convolution, which moves the input twice first (docs/benchmarks.md). Only for
 * inputs of at most PHASE_CONV_MAX_CHANNELS channels, where the rewrite pays.
 */
export const PHASE_CONV_MAX_CHANNELS = 2;

export function matchPhaseConv(layers: CompiledLayer[], i: number): boolean {
  const [conv, relu, pool] = layers.slice(i, i + 3);
  if (
    !conv ||
    !relu ||
    !pool ||
    conv.spec.kind !== 'conv2d' ||
    relu.spec.kind !== 'relu' ||
    pool.spec.kind !== 'maxPool'
  )
    return false;
  const [oh, ow] = conv.outputShape;
  return (
    (conv.spec.stride ?? 1) === 1 &&
    conv.inputShape[2] <= PHASE_CONV_MAX_CHANNELS &&
    pool.spec.size === 2 &&
    (pool.spec.stride ?? pool.spec.size) === 2 &&
    (pool.spec.pad ?? 0) === 0 &&
    oh % 2 === 0 &&
    ow % 2 === 0
  );
}

export function exportPhaseConvPool(
  g: GraphBuilder,
  conv: CompiledLayer & { spec: Conv2dSpec },
  pool: CompiledLayer,
  x: OnnxValue,
  param: ParamReader,
): OnnxValue {
  expectNchw('conv2d', x);
  const w = param('w');
  const b = param('b');
  const [k, , cin, cout] = w.shape;
  const pad = conv.spec.pad ?? 0;
  const [h, wd] = conv.inputShape;
  // An odd padded size gets one more zero row/column at the end, which no output reads.
  const extraH = (h + 2 * pad) % 2;
  const extraW = (wd + 2 * pad) % 2;
  const kp = k + 1;
  const co4 = 4 * cout;
  const weights = new Float32Array(co4 * cin * kp * kp);
  const bias = new Float32Array(co4);
  for (let c = 0; c < cout; c++) {
    for (let a = 0; a < 2; a++) {
      for (let bb = 0; bb < 2; bb++) {
        const o = (c * 2 + a) * 2 + bb;
        bias[o] = b.values[c];
        for (let ci = 0; ci < cin; ci++) {
          for (let u = 0; u < k; u++) {
            for (let v = 0; v < k; v++)
              weights[((o * cin + ci) * kp + a + u) * kp + bb + v] = w.values[((u * k + v) * cin + ci) * cout + c];
          }
        }
      }
    }
  }
  let y = g.node(
    'Conv',
    [
      x.name,
      g.floatConstant(`${x.name}_phase_conv_w`, [co4, cin, kp, kp], weights),
      g.floatConstant(`${x.name}_phase_conv_b`, [co4], bias),
    ],
    {
      kernel_shape: [kp, kp],
      strides: [2, 2],
      pads: [pad, pad, pad + extraH, pad + extraW],
      dilations: [1, 1],
      group: 1,
    },
    'phase_conv',
  );
  y = g.node('Relu', [y], {}, 'relu');
  const [ph, pw] = pool.outputShape;
  y = g.node('Reshape', [y, g.int64Constant(`${x.name}_phases`, [-1, cout, 4, ph, pw])], {}, 'phases');
  y = g.node('ReduceMax', [y], { axes: [2], keepdims: 0 }, 'pool');
  return { name: y, shape: pool.outputShape, layout: 'NCHW' };
}

/**
 * Images per group in a packed graph (`exportPackedConv`): one block of ONNX Runtime's blocked
 * layout with AVX-512 (two with AVX2, whose blocks hold 8).
 */
export const PACK_ROWS = 16;

/**
 * How many layers from `i` on `exportPackedConv` takes (0: none): a convolution of a one-channel
 * input into fewer filters than a channel block, with the relu and max pool right after it, if any.
 */
export function matchPackedConv(layers: CompiledLayer[], i: number): number {
  const conv = layers[i];
  if (conv?.spec.kind !== 'conv2d' || conv.inputShape[2] !== 1 || conv.outputShape[2] >= PACK_ROWS) return 0;
  let n = 1;
  if (layers[i + n]?.spec.kind === 'relu') n++;
  if (layers[i + n]?.spec.kind === 'maxPool') n++;
  return n;
}

/**
 * A convolution of a one-channel input (and the relu and max pool after it) for a batch whose size
 * is a multiple of PACK_ROWS: each group of PACK_ROWS consecutive images is read as one image of
 * PACK_ROWS channels (the same bytes), and each filter becomes a depthwise convolution (group =
 * PACK_ROWS) applying that filter to all of them. Every lane of ONNX Runtime's blocked kernels then
 * does useful work: a 1 -> 5 convolution fills 5 of a block's 16 output lanes, and the phase
 * convolution (`exportPhaseConvPool`) pays for its layout change and the max over the phases. The
 * per-filter results are pooled in blocked layout, concatenated, and put back in per-image order
 * ([N / R, cout, R, hw] -> [N / R, R, cout, hw]). The arithmetic per output is the original's.
 * What it saves: `npm run bench:stages -- --batch-size 64 --packing on|off` (docs/benchmarks.md).
 */
export function exportPackedConv(
  g: GraphBuilder,
  layers: CompiledLayer[],
  x: OnnxValue,
  param: ParamReader,
): OnnxValue {
  expectNchw('conv2d', x);
  const conv = layers[0] as CompiledLayer & { spec: Conv2dSpec };
  const w = param('w');
  const b = param('b');
  const [kh, kw, , cout] = w.shape;
  const [h, wd] = conv.inputShape;
  const R = PACK_ROWS;
  const packed = g.node('Reshape', [x.name, g.int64Constant(`${x.name}_packed_shape`, [-1, R, h, wd])], {}, 'packed');
  const stride = conv.spec.stride ?? 1;
  const pad = conv.spec.pad ?? 0;
  const parts: string[] = [];
  let out: OnnxValue = x;
  for (let f = 0; f < cout; f++) {
    const filter = new Float32Array(R * kh * kw);
    for (let r = 0; r < R; r++) {
      for (let t = 0; t < kh * kw; t++) filter[r * kh * kw + t] = w.values[t * cout + f];
    }
    const y = g.node(
      'Conv',
      [
        packed,
        g.floatConstant(`${packed}_w${f}`, [R, 1, kh, kw], filter),
        g.floatConstant(`${packed}_b${f}`, [R], new Float32Array(R).fill(b.values[f])),
      ],
      { kernel_shape: [kh, kw], strides: [stride, stride], pads: [pad, pad, pad, pad], dilations: [1, 1], group: R },
      `conv_filter${f}`,
    );
    out = { name: y, shape: conv.outputShape, layout: 'NCHW' };
    for (const layer of layers.slice(1)) out = exportLayer(g, layer, out, param);
    parts.push(out.name);
  }
  const [oh, ow] = out.shape;
  let y = g.node('Concat', parts, { axis: 1 }, 'filters');
  y = g.node('Reshape', [y, g.int64Constant(`${y}_split`, [-1, cout, R, oh * ow])], {}, 'filters_split');
  y = g.node('Transpose', [y], { perm: [0, 2, 1, 3] }, 'per_image');
  y = g.node('Reshape', [y, g.int64Constant(`${y}_nchw`, [-1, cout, oh, ow])], {}, 'unpacked');
  return { name: y, shape: out.shape, layout: 'NCHW' };
}

/**
 * Layer order for export: a relu right after a max pool moves in front of it (max pooling
 * commutes with the monotone relu, and padded cells never win either way), so that it follows
 * the conv or dense layer before the pool, which ONNX Runtime fuses it into.
 */
export function exportOrder(layers: CompiledLayer[]): CompiledLayer[] {
  const out = layers.slice();
  for (let i = 1; i + 1 < out.length; i++) {
    const before = out[i - 1].spec.kind;
    if (
      out[i].spec.kind === 'maxPool' &&
      out[i + 1].spec.kind === 'relu' &&
      (before === 'conv2d' || before === 'dense')
    ) {
      [out[i], out[i + 1]] = [out[i + 1], out[i]];
      i++;
    }
  }
  return out;
}
