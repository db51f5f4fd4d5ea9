/**
 * The whole early exit in one ONNX graph: stage 1, its exit's entropy, and for the rows that do
 * not answer there the later stages inside nested `If`s, on those rows only, the answers scattered
 * back in input order. The file alone early-exits in any ONNX runtime.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ChannelStats } from '../data/transform.js';
import { defaultClassNames } from '../api/class_names.js';
import { cumulativeExitMacs } from '../model/macs.js';
import { UserError } from '../errors.js';
import { writeFileAtomic } from '../io/tensor_pack.js';
import type { LoadedModel } from '../model/io.js';
import type { BranchyNet } from '../model/network.js';
import { run as exportLayers, type GraphOptions } from './export.js';
import { encodeModel, GraphBuilder, type Dim } from './graph.js';
import { exportOrder, graphDims, matchPackedConv, PACK_ROWS, type OnnxValue } from './layers.js';
import { tritonConfigOf, tritonModelName, writeTritonRepository } from './triton.js';

/** The file's input and output names: users' code depends on them. */
export const SINGLE_NAMES = {
  image: 'image',
  thresholds: 'thresholds',
  logits: 'logits',
  exit: 'exit',
  entropy: 'entropy',
} as const;

export const SINGLE_FILE = 'model.onnx';

/** The pixel range the file takes: 0-255, divided by this inside the graph before any normalisation. */
export const PIXEL_SCALE = 255;

export const EXIT_RULE =
  'exit k answers when entropy < thresholds[k - 1] (softmax entropy of its logits, natural log: H = -sum_c p_c ln p_c); the last exit answers every row that reaches it';

export interface SingleFileOptions extends Pick<GraphOptions, 'phaseConv' | 'padChannels' | 'lrnAsConv'> {
  /**
   * Where stage 1 starts with a convolution of a one-channel image, run it in packed form
   * (`exportPackedConv`: 16 images read as the channels of one) on a batch's whole groups of 16
   * rows, behind an If on N >= 16 (default false: that If costs a batch of one row a few
   * microseconds).
   */
  imagePacking?: boolean;
  /** The default entropy thresholds, one per non-final exit (the calibrated ones). */
  thresholds: readonly number[];
  /** Class names; default the class indices as strings. */
  classes?: string[];
  /** Per-channel statistics the network's inputs were normalised with (after scaling to [0, 1]); null: none. */
  normalization?: ChannelStats | null;
}

/** What the file holds besides its graph (also written into its metadata_props). */
export interface SingleFileInfo {
  model: string;
  /** [N, H, W, C]. */
  input: Dim[];
  classes: string[];
  thresholds: number[];
  /** MACs per sample of answering at each exit (the trunk up to it and every exit head passed). */
  macsPerExit: number[];
  normalization: string;
}

/** An ONNX `If` node over two branches built by `then` and `otherwise`; returns its outputs' names. */
function ifNode(
  g: GraphBuilder,
  cond: string,
  hints: string[],
  then: (b: GraphBuilder) => string[],
  otherwise: (b: GraphBuilder) => string[],
  shapes: { dims: Dim[]; elem: 'float' | 'int64' }[],
): string[] {
  const branch = (name: string, build: (b: GraphBuilder) => string[]) => {
    const b = g.subgraph(name);
    const outs = build(b);
    // Branch outputs need names of their own (one name space per model); Identity where the value is the enclosing graph's.
    outs.forEach((v, i) => b.output(v, b.fresh(`${name}_${hints[i]}`), shapes[i].dims, shapes[i].elem, true));
    return b.graph();
  };
  return g.nodeOutputs(
    'If',
    [cond],
    {
      then_branch: { graph: branch(`${hints[0]}_then`, then) },
      else_branch: { graph: branch(`${hints[0]}_else`, otherwise) },
    },
    hints,
  );
}

/**
 * Softmax entropy (natural log) of each row, from LogSoftmax: H = -sum_c p_c l_c with
 * l = LogSoftmax(z) <= 0 and p = exp(l), so every term is <= 0 and H >= 0 in float arithmetic too.
 */
function entropyNodes(g: GraphBuilder, logits: string): string {
  const logp = g.node('LogSoftmax', [logits], { axis: 1 }, 'logp');
  const p = g.node('Exp', [logp], {}, 'p');
  const sum = g.node(
    'ReduceSum',
    [g.node('Mul', [p, logp], {}, 'plogp'), g.int64Constant('class_axis', [1])],
    { keepdims: 0 },
    'sum_plogp',
  );
  return g.node('Neg', [sum], {}, 'entropy');
}

/**
 * `net` with its first convolution's weights multiplied by `scale` (one factor per input channel),
 * as far as the exporter reads it (its parameters); null where the first layer is no convolution.
 */
function foldInputScale(net: BranchyNet, scale: number[]): BranchyNet | null {
  const first = net.stages.segments[0][0];
  if (first?.spec.kind !== 'conv2d') return null;
  const name = first.paramNames.w;
  const w = net.params.get(name)!;
  const [kh, kw, cin] = w.shape as [number, number, number, number];
  const values = Float32Array.from(w.dataSync() as Float32Array);
  const cout = values.length / (kh * kw * cin);
  for (let i = 0; i < values.length; i++) values[i] *= scale[Math.floor(i / cout) % cin];
  const params = new Map(net.params);
  params.set(name, { shape: w.shape, dataSync: () => values } as unknown as typeof w);
  return Object.assign(Object.create(net) as BranchyNet, { params });
}

/** Whether `imagePacking` applies to `net`: its first stage starts with a convolution of a one-channel image. */
export function canPackImages(net: BranchyNet): boolean {
  return matchPackedConv(exportOrder(net.stages.segments[0]), 0) > 0;
}

/** Exports the early-exit network `net` as one ONNX model (bytes) with its description. */
export function exportSingleFile(
  net: BranchyNet,
  options: SingleFileOptions,
): { bytes: Uint8Array; info: SingleFileInfo } {
  const exits = net.exits;
  const thresholds = [...options.thresholds];
  if (thresholds.length !== exits - 1)
    throw new Error(`single-file export: ${exits} exits need ${exits - 1} thresholds, got ${thresholds.length}`);
  const classes = options.classes ?? Array.from({ length: net.spec.classes }, (_, c) => String(c));
  if (classes.length !== net.spec.classes)
    throw new Error(`single-file export: ${classes.length} class names for ${net.spec.classes} classes`);
  const [h, w, c] = net.spec.input;
  const C = net.spec.classes;
  const graphOptions: GraphOptions = {
    phaseConv: options.phaseConv,
    padChannels: options.padChannels,
    lrnAsConv: options.lrnAsConv,
    imagePacking: false,
    entropy: false,
  };

  const g = new GraphBuilder(`${net.spec.name}_early_exit`);
  // The public output names, taken first so that no inner value gets one.
  const outputNames = [SINGLE_NAMES.logits, SINGLE_NAMES.exit, SINGLE_NAMES.entropy].map((n) => g.fresh(n));
  const image = g.input(SINGLE_NAMES.image, ['N', h, w, c]);
  const thresholdInput = exits > 1 ? g.input(SINGLE_NAMES.thresholds, [exits - 1]) : null;
  if (thresholdInput) g.inputDefault(thresholdInput, [exits - 1], Float32Array.from(thresholds));

  const norm = options.normalization ?? null;
  if (norm && (norm.mean.length !== c || norm.std.length !== c))
    throw new Error(`single-file export: normalisation for ${norm.mean.length} channels, the input has ${c}`);
  // Pixels 0-255 -> the network's input: x = (image / 255 - mean) / std = (image - 255 mean) * scale.
  const scale = Array.from({ length: c }, (_, ch) => 1 / (PIXEL_SCALE * (norm ? norm.std[ch] : 1)));
  const folded = foldInputScale(net, scale);
  const source = folded ?? net;
  let x = image;
  if (norm)
    x = g.node(
      'Sub',
      [
        x,
        g.floatConstant(
          'pixel_mean',
          [c],
          Float32Array.from(norm.mean, (m) => m * PIXEL_SCALE),
        ),
      ],
      {},
      'centred',
    );
  // Where the first layer is a convolution its weights take the scale (zero padding of the centred image is still the
  // normalised image's zero); else one more node.
  if (!folded) x = g.node('Mul', [x, g.floatConstant('pixel_scale', [c], Float32Array.from(scale))], {}, 'scaled');
  // One channel: NHWC and NCHW hold the same bytes, so a reshape (no copy) does instead of a transpose.
  const nchw =
    c === 1
      ? g.node('Reshape', [x, g.int64Constant('image_nchw_shape', [-1, 1, h, w])], {}, 'image_nchw')
      : g.node('Transpose', [x], { perm: [0, 3, 1, 2] }, 'image_nchw');

  /** Stage k (0-based) on `input` in graph `b`: the activation handed on, the exit's logits and entropy. */
  const stage = (b: GraphBuilder, k: number, input: OnnxValue) => {
    const trunk = exportLayers(b, source, net.stages.segments[k], input, graphOptions);
    const head = exportLayers(b, source, net.stages.heads[k], trunk.value, graphOptions);
    if (head.value.layout !== 'NF' || head.value.shape.length !== 1)
      throw new Error(`single-file export: exit ${k + 1} does not end in class scores`);
    return { activation: trunk.value, logits: head.value.name, entropy: entropyNodes(b, head.value.name) };
  };

  /**
   * Stage 1 with its trunk part packed for the batch's whole groups of PACK_ROWS rows and plain for
   * the rest: If N >= PACK_ROWS { packed trunk on rows [0, whole), If rest { plain trunk on the
   * rest, concatenated } } else { plain trunk }; then the exit head on the result.
   */
  const packedFirstStage = (b: GraphBuilder, input: OnnxValue) => {
    const plainTrunk = (sub: GraphBuilder, x: OnnxValue) =>
      exportLayers(sub, source, net.stages.segments[0], x, graphOptions).value;
    const n = b.node(
      'Slice',
      [
        b.node('Shape', [input.name], {}, 'image_shape'),
        b.int64Constant('zero_index', [0]),
        b.int64Constant('one_index', [1]),
      ],
      {},
      'rows',
    );
    const packRows = b.int64Constant('pack_rows', [PACK_ROWS]);
    const outShape = exportLayers(new GraphBuilder('probe'), source, net.stages.segments[0], input, graphOptions).value;
    const shapes = [{ dims: graphDims(outShape), elem: 'float' as const }];
    const [trunk] = ifNode(
      b,
      b.node('GreaterOrEqual', [n, packRows], {}, 'packable'),
      ['trunk1'],
      (then) => {
        const rest = then.node('Mod', [n, packRows], {}, 'rest_rows');
        const whole = then.node('Sub', [n, rest], {}, 'whole_rows');
        const axis = then.int64Constant('row_axis', [0]);
        const head = then.node(
          'Slice',
          [input.name, then.int64Constant('first_row', [0]), whole, axis],
          {},
          'packed_rows',
        );
        const packed = exportLayers(
          then,
          source,
          net.stages.segments[0],
          { ...input, name: head },
          { ...graphOptions, imagePacking: true },
          true,
        ).value;
        const [all] = ifNode(
          then,
          then.node('Greater', [rest, then.int64Constant('no_rows', [0], true)], {}, 'any_rest'),
          ['trunk1_all'],
          (more) => {
            const tail = more.node('Slice', [input.name, whole, n, axis], {}, 'plain_rows');
            return [
              more.node(
                'Concat',
                [packed.name, plainTrunk(more, { ...input, name: tail }).name],
                { axis: 0 },
                'trunk1_rows',
              ),
            ];
          },
          () => [packed.name],
          shapes,
        );
        return [all];
      },
      (otherwise) => [plainTrunk(otherwise, input).name],
      shapes,
    );
    // The row count is the image's: stated, so that the head's nodes fuse as in the unpacked graph.
    b.declareShape(trunk, graphDims(outShape));
    const a: OnnxValue = { ...outShape, name: trunk };
    const head = exportLayers(b, source, net.stages.heads[0], a, graphOptions);
    return { activation: a, logits: head.value.name, entropy: entropyNodes(b, head.value.name) };
  };

  const resultShapes = [
    { dims: ['N', C] as Dim[], elem: 'float' as const },
    { dims: ['N'] as Dim[], elem: 'int64' as const },
    { dims: ['N'] as Dim[], elem: 'float' as const },
  ];
  const hints = ['logits', 'exit', 'entropy'];

  /** Every row of `b`'s batch answering at exit k + 1: [N] int64 of k + 1. */
  const exitColumn = (b: GraphBuilder, k: number, entropy: string) =>
    b.node(
      'Expand',
      [b.int64Constant(`exit${k + 1}`, [k + 1]), b.node('Shape', [entropy], {}, 'rows')],
      {},
      `exit${k + 1}_rows`,
    );

  /**
   * The answers of the rows that reached stage k (its outputs computed in `b`): rows below the
   * threshold answer here; the rest, if any, go on, compacted, inside an If.
   */
  const answers = (
    b: GraphBuilder,
    k: number,
    s: { activation: OnnxValue; logits: string; entropy: string },
  ): string[] => {
    if (k === exits - 1) return [s.logits, exitColumn(b, k, s.entropy), s.entropy];
    const t =
      exits === 2
        ? thresholdInput!
        : b.node(
            'Gather',
            [thresholdInput!, b.int64Constant(`threshold${k + 1}_index`, [k])],
            { axis: 0 },
            `threshold${k + 1}`,
          );
    // Whether any row goes on: its largest entropy reaches the threshold. The rows themselves are
    // found inside the branch, so a batch that answers here pays two small nodes and the If.
    const highest = b.node('ReduceMax', [s.entropy], { axes: [0], keepdims: 0 }, `highest_entropy${k + 1}`);
    const any = b.node('GreaterOrEqual', [highest, t], {}, `any_after_exit${k + 1}`);
    return ifNode(
      b,
      any,
      hints.map((n) => `${n}_from_exit${k + 1}`),
      (then) => {
        const goOn = then.node('GreaterOrEqual', [s.entropy, t], {}, `go_on_after_exit${k + 1}`);
        const rows = then.node('NonZero', [goOn], {}, `rows_after_exit${k + 1}`);
        const index = then.node('Transpose', [rows], { perm: [1, 0] }, `rows${k + 2}_index`);
        const kept = then.node('GatherND', [s.activation.name, index], {}, `activation${k + 2}`);
        // A symbolic row count: without it, shape inference leaves the rows unknown, ONNX Runtime cannot
        // tell that a residual Add's two inputs have the same shape, and the Add stays out of the convolution.
        then.declareShape(kept, graphDims(s.activation, `rows${k + 2}`));
        then.markEntry(kept);
        const next = stage(then, k + 1, { ...s.activation, name: kept });
        const [logits, exit, entropy] = answers(then, k + 1, next);
        return [
          then.node('ScatterND', [s.logits, index, logits], {}, 'logits'),
          then.node('ScatterND', [exitColumn(then, k, s.entropy), index, exit], {}, 'exit'),
          then.node('ScatterND', [s.entropy, index, entropy], {}, 'entropy'),
        ];
      },
      (otherwise) => [s.logits, exitColumn(otherwise, k, s.entropy), s.entropy],
      resultShapes,
    );
  };

  const imageValue: OnnxValue = { name: nchw, shape: net.spec.input, layout: 'NCHW' };
  const packable = options.imagePacking === true && canPackImages(net);
  const first = packable ? packedFirstStage(g, imageValue) : stage(g, 0, imageValue);
  const [logits, exit, entropy] = answers(g, 0, first);
  g.output(logits, outputNames[0], ['N', C], 'float', true);
  g.output(exit, outputNames[1], ['N'], 'int64', true);
  g.output(entropy, outputNames[2], ['N'], 'float', true);

  const macs = cumulativeExitMacs(net.macs());
  const normalization = norm
    ? `image: float32 pixel values 0-255, NHWC, channels last; the graph feeds the network x = (image / ${PIXEL_SCALE} - mean[c]) / std[c] with mean [${norm.mean.join(', ')}], std [${norm.std.join(', ')}]`
    : `image: float32 pixel values 0-255, NHWC, channels last; the graph feeds the network x = image / ${PIXEL_SCALE}`;
  const info: SingleFileInfo = {
    model: net.spec.name,
    input: ['N', h, w, c],
    classes,
    thresholds,
    macsPerExit: macs,
    normalization,
  };
  const model = g.build(
    `${net.spec.name}: early exit in one graph (${exits} exits). Inputs: image [N, ${h}, ${w}, ${c}] float32 0-255; optional thresholds [${exits - 1}]. Outputs: logits [N, ${C}] of the exit that answered, exit [N] int64 (1-based), entropy [N].`,
  );
  model.metadataProps = [
    { key: 'branchynet.model', value: info.model },
    { key: 'branchynet.classes', value: JSON.stringify(classes) },
    { key: 'branchynet.thresholds', value: JSON.stringify(thresholds) },
    { key: 'branchynet.exit_rule', value: EXIT_RULE },
    { key: 'branchynet.macs_per_exit', value: JSON.stringify(macs) },
    { key: 'branchynet.normalization', value: normalization },
    {
      key: 'branchynet.outputs',
      value:
        "logits [N, C]: the answering exit's class scores; exit [N] int64: 1-based exit that answered; entropy [N]: its softmax entropy",
    },
  ];
  return { bytes: encodeModel(model), info };
}

/**
 * The single file of a saved model (its network, normalisation and calibrated thresholds, or
 * `thresholds` instead), written as `outDir/model.onnx` and/or as a Triton model repository in
 * `tritonDir`. Returns the paths written.
 */
export function exportSingleModel(
  model: LoadedModel,
  targets: { outDir?: string; tritonDir?: string; thresholds?: number[]; imagePacking?: boolean },
): { files: string[]; info: SingleFileInfo } {
  const exits = model.net.exits;
  const thresholds = targets.thresholds ?? model.thresholds;
  if (!thresholds)
    throw new UserError(
      `${model.dir}: the model has no calibrated thresholds; run 'branchynet calibrate' or pass --thresholds`,
    );
  if (thresholds.length !== exits - 1)
    throw new UserError(
      `--thresholds: ${model.spec.name} has ${exits} exits and needs ${exits - 1} thresholds, got ${thresholds.length}`,
    );
  if (targets.imagePacking && !canPackImages(model.net))
    throw new UserError(`--image-packing: ${model.spec.name} does not start with a convolution of a one-channel image`);
  const { bytes, info } = exportSingleFile(model.net, {
    thresholds,
    normalization: model.normalization ?? null,
    imagePacking: targets.imagePacking,
    classes: model.classNames ?? defaultClassNames(model.dataset, model.spec.classes),
  });
  const files: string[] = [];
  if (targets.outDir) {
    mkdirSync(targets.outDir, { recursive: true });
    const file = join(targets.outDir, SINGLE_FILE);
    writeFileAtomic(file, [bytes]);
    files.push(file);
  }
  if (targets.tritonDir) {
    const config = tritonConfigOf(tritonModelName(model.spec.name), model.spec.input, model.spec.classes);
    files.push(...writeTritonRepository(targets.tritonDir, config, bytes));
  }
  return { files, info };
}
