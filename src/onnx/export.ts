import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../io/tensor_pack.js';
import type { LoadedModel } from '../model/io.js';
import { trunkOf } from '../model/io.js';
import type { BranchyNet, CompiledLayer } from '../model/network.js';
import { cumulativeExitMacs } from '../model/macs.js';
import type { Conv2dSpec, LrnSpec } from '../model/spec.js';
import { defaultClassNames } from '../api/class_names.js';
import { preprocessingOf } from '../api/preprocessing.js';
import type { IoSpec, OnnxExport, OnnxManifest, Preprocessing, StageManifest } from './manifest.js';
import { MANIFEST_FILE, ONNX_FORMAT, ONNX_FORMAT_VERSION } from './manifest.js';
import { encodeModel, GraphBuilder, IR_VERSION, OPSET } from './graph.js';
import type { OnnxValue, ParamReader } from './layers.js';
import {
  exportLayer,
  exportLrnAsConv,
  exportOrder,
  exportPackedConv,
  exportPhaseConvPool,
  graphDims,
  matchPackedConv,
  matchPhaseConv,
  PACK_ROWS,
} from './layers.js';
import { padPooledChannels } from './pad_channels.js';

function paramReader(net: BranchyNet, layer: CompiledLayer): ParamReader {
  return (short) => {
    const full = layer.paramNames[short];
    const v = full === undefined ? undefined : net.params.get(full);
    if (!v) throw new Error(`onnx export: layer ${layer.spec.kind} has no parameter '${short}'`);
    return { values: v.dataSync() as Float32Array, shape: v.shape };
  };
}

/** Exports `layers` onto `x`; returns the result and the layer kinds in graph order. */
export function run(
  g: GraphBuilder,
  net: BranchyNet,
  layers: CompiledLayer[],
  x: OnnxValue,
  options: GraphOptions,
  packed = false,
): { value: OnnxValue; kinds: string[] } {
  let v = x;
  const kinds: string[] = [];
  const ordered = exportOrder(layers);
  const phaseConv = (list: CompiledLayer[], i: number) => options.phaseConv !== false && matchPhaseConv(list, i);
  const packedLayers = packed ? matchPackedConv(ordered, 0) : 0;
  const direct = (layer: CompiledLayer) => paramReader(net, layer);
  const { layers: planned, read } =
    options.padChannels === false
      ? { layers: ordered, read: direct }
      : padPooledChannels(ordered, direct, (i) => i < packedLayers || phaseConv(ordered, i));
  for (let i = 0; i < planned.length; i++) {
    const layer = planned[i];
    if (i === 0 && packedLayers > 0) {
      v = exportPackedConv(g, planned.slice(0, packedLayers), v, read(layer));
      kinds.push(
        `${planned
          .slice(0, packedLayers)
          .map((l) => l.spec.kind)
          .join('+')} (packed: ${PACK_ROWS} images per depthwise convolution)`,
      );
      i += packedLayers - 1;
    } else if (layer.spec.kind === 'lrn' && options.lrnAsConv !== false) {
      v = exportLrnAsConv(g, layer as CompiledLayer & { spec: LrnSpec }, v);
      kinds.push('lrn');
    } else if (phaseConv(planned, i)) {
      v = exportPhaseConvPool(g, layer as CompiledLayer & { spec: Conv2dSpec }, planned[i + 2], v, read(layer));
      kinds.push('conv2d+relu+maxPool (phase convolution)');
      i += 2;
    } else {
      v = exportLayer(g, layer, v, read(layer));
      kinds.push(layer.spec.kind);
    }
  }
  return { value: v, kinds };
}

/** Graph-level choices that do not change the arithmetic's result beyond float rounding. */
export interface GraphOptions {
  /**
   * Rewrite small-channel conv + relu + 2x2 pool as one stride-2 convolution over the pool's phases (default true;
   * see layers.ts).
   */
  phaseConv?: boolean;
  /**
   * Pad the filters of convolutions that are max-pooled within a stage to a multiple of 16, with
   * zeros, so that ONNX Runtime pools in its blocked layout (default true; see pad_channels.ts).
   */
  padChannels?: boolean;
  /** Export LRN as a 1x1 band convolution of the squares and elementwise ops, not ONNX's slow LRN (default true). */
  lrnAsConv?: boolean;
  /**
   * Where the first stage starts with a convolution of a one-channel image, also export that stage
   * in packed form (`StageManifest.packed`: for batches of a multiple of 16 rows; see layers.ts,
   * `exportPackedConv`). Default true.
   */
  imagePacking?: boolean;
  /**
   * Compute each exit's softmax entropy in the graph (default true: an exported stage gives all
   * a caller needs to decide). Our runtime turns it off and computes the entropy from the logits
   * in JS: at batch 1 the six extra graph nodes cost more per stage run than the JS does.
   */
  entropy?: boolean;
}

function ioOf(name: string, v: OnnxValue): IoSpec {
  const io: IoSpec = { name, shape: graphDims(v), layout: v.layout };
  if (v.flattenedFrom) io.flattenedFrom = v.flattenedFrom;
  return io;
}

/**
 * Softmax entropy (natural log) of each row, inside the graph:
 * log p = z - logsumexp(z), H = -sum_c p_c log p_c. ReduceLogSumExp is computed stably by the runtime.
 */
function entropyOf(g: GraphBuilder, logits: string): string {
  const lse = g.node('ReduceLogSumExp', [logits], { axes: [1], keepdims: 1 }, 'lse');
  const logp = g.node('Sub', [logits, lse], {}, 'logp');
  const p = g.node('Exp', [logp], {}, 'p');
  const plogp = g.node('Mul', [p, logp], {}, 'plogp');
  const sum = g.node('ReduceSum', [plogp, g.int64Constant('class_axis', [1])], { keepdims: 0 }, 'sum_plogp');
  return g.node('Neg', [sum], {}, 'neg_entropy');
}

export const STAGE_NAMES = {
  image: 'image',
  activation: 'activation',
  next: 'next_activation',
  logits: 'logits',
  entropy: 'entropy',
} as const;

/**
 * One ONNX model per inference stage of `net` (its `stages` plan): stage k takes the image (k = 0,
 * NHWC, transposed to NCHW inside) or the activation stage k-1 handed on, and returns the
 * activation to hand on (except the last stage), the exit's logits and their softmax entropy.
 */
export function exportStages(
  net: BranchyNet,
  filePrefix: string,
  options: GraphOptions = {},
): { stages: StageManifest[]; files: Map<string, Uint8Array> } {
  const files = new Map<string, Uint8Array>();
  const stages: StageManifest[] = [];
  const macs = net.macs();
  const cumulative = cumulativeExitMacs(macs);
  let handed: OnnxValue | null = null;
  const exits = net.exits;
  for (let k = 0; k < exits; k++) {
    const last = k === exits - 1;
    const file = exits === 1 ? `${filePrefix}.onnx` : `${filePrefix}-${k + 1}.onnx`;
    const build = (packed: boolean) => {
      const g = new GraphBuilder(`${net.spec.name}_stage${k + 1}${packed ? '_packed' : ''}`);
      let x: OnnxValue;
      let input: IoSpec;
      if (handed === null) {
        const [h, w, c] = net.spec.input;
        input = { name: STAGE_NAMES.image, shape: ['N', h, w, c], layout: 'NHWC' };
        const image = g.input(input.name, input.shape);
        // One channel: NHWC and NCHW hold the same bytes, so a reshape (no copy) does instead of a transpose.
        const nchw =
          c === 1
            ? g.node('Reshape', [image, g.int64Constant('image_nchw_shape', [-1, 1, h, w])], {}, 'image_nchw')
            : g.node('Transpose', [image], { perm: [0, 3, 1, 2] }, 'image_nchw');
        x = { name: nchw, shape: net.spec.input, layout: 'NCHW' };
      } else {
        input = ioOf(STAGE_NAMES.activation, handed);
        x = { ...handed, name: g.input(input.name, input.shape) };
      }
      const trunk = run(g, net, net.stages.segments[k], x, options, packed);
      const a = trunk.value;
      const head = run(g, net, net.stages.heads[k], a, options);
      const logits = head.value;
      if (logits.layout !== 'NF' || logits.shape.length !== 1)
        throw new Error(`onnx export: exit ${k + 1} does not end in class scores`);
      const activation = last ? null : ioOf(STAGE_NAMES.next, a);
      if (activation) g.output(a.name, activation.name, activation.shape);
      const logitsIo: IoSpec = { name: STAGE_NAMES.logits, shape: ['N', net.spec.classes], layout: 'NF' };
      const entropy = options.entropy === false ? null : entropyOf(g, logits.name);
      const entropyIo: IoSpec | null =
        entropy === null ? null : { name: STAGE_NAMES.entropy, shape: ['N'], layout: 'N' };
      g.output(logits.name, logitsIo.name, logitsIo.shape);
      if (entropy !== null && entropyIo) g.output(entropy, entropyIo.name, entropyIo.shape);
      const doc = `${net.spec.name} stage ${k + 1} of ${exits}${packed ? ` (batches of a multiple of ${PACK_ROWS} only)` : ''}: ${last ? 'logits and entropy of the final exit' : `activation handed on, logits and entropy of exit ${k + 1}`}`;
      return {
        bytes: encodeModel(g.build(doc)),
        input,
        a,
        activation,
        logitsIo,
        entropyIo,
        kinds: { trunk: trunk.kinds, head: head.kinds },
      };
    };
    const plain = build(false);
    files.set(file, plain.bytes);
    const stageMacs = macs.segments[k] + macs.heads[k];
    const stage: StageManifest = {
      exit: k + 1,
      file,
      input: plain.input,
      outputs: { activation: plain.activation, logits: plain.logitsIo, entropy: plain.entropyIo },
      layers: plain.kinds,
      macs: stageMacs,
      cumulativeMacs: cumulative[k],
    };
    // The same test run() applies to the trunk's first layers (a one-channel input: the image here).
    if (k === 0 && options.imagePacking !== false && matchPackedConv(exportOrder(net.stages.segments[0]), 0) > 0) {
      const packedFile = file.replace(/\.onnx$/, '.packed.onnx');
      files.set(packedFile, build(true).bytes);
      stage.packed = { file: packedFile, rowMultiple: PACK_ROWS };
    }
    stages.push(stage);
    handed = plain.a;
  }
  return { stages, files };
}

export interface ExportOptions extends GraphOptions {
  thresholds?: number[] | null;
  /** Class names; default the class indices as strings (the digits for MNIST). */
  classes?: string[];
  /** How raw pixels become the input (default pixel / 255). */
  preprocessing?: Preprocessing;
}

/** Exports a branchy network's stages and its baseline (trunk alone) into one bundle, in memory. */
export function exportNetwork(net: BranchyNet, baseline: BranchyNet, options: ExportOptions = {}): OnnxExport {
  if (baseline.exits !== 1) throw new Error('onnx export: the baseline must have a single exit');
  if (baseline.spec.input.join() !== net.spec.input.join() || baseline.spec.classes !== net.spec.classes) {
    throw new Error('onnx export: the baseline must take the same input and give the same classes as the network');
  }
  const early = exportStages(net, 'stage', options);
  const base = exportStages(baseline, 'baseline', options);
  const classes = options.classes ?? Array.from({ length: net.spec.classes }, (_, c) => String(c));
  if (classes.length !== net.spec.classes)
    throw new Error(`onnx export: ${classes.length} class names for ${net.spec.classes} classes`);
  const manifest: OnnxManifest = {
    format: ONNX_FORMAT,
    version: ONNX_FORMAT_VERSION,
    model: net.spec.name,
    opset: OPSET,
    irVersion: IR_VERSION,
    input: early.stages[0].input,
    preprocessing: options.preprocessing ?? preprocessingOf(null),
    classes,
    thresholds: options.thresholds ?? null,
    entropy: 'softmax entropy of the logits, natural log: H = -sum_c p_c ln p_c',
    stages: early.stages,
    baseline: base.stages[0],
  };
  return { manifest, files: new Map([...early.files, ...base.files]) };
}

/** Writes an export bundle into `dir`: manifest.json and one .onnx file per stage plus the baseline. */
export function writeExport(dir: string, bundle: OnnxExport): string[] {
  mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  for (const [file, bytes] of bundle.files) {
    writeFileAtomic(join(dir, file), [bytes]);
    written.push(file);
  }
  writeFileAtomic(join(dir, MANIFEST_FILE), [
    new TextEncoder().encode(JSON.stringify(bundle.manifest, null, 1) + '\n'),
  ]);
  written.push(MANIFEST_FILE);
  return written;
}

/** Exports a saved model directory (its network, its baseline or else its trunk, its thresholds). */
export function exportModel(
  model: LoadedModel,
  outDir: string,
  options: Omit<ExportOptions, 'thresholds'> = {},
): { bundle: OnnxExport; files: string[] } {
  const baseline = model.baseline ?? trunkOf(model.net);
  try {
    const bundle = exportNetwork(model.net, baseline, {
      classes: model.classNames ?? defaultClassNames(model.dataset, model.spec.classes),
      preprocessing: preprocessingOf(model.normalization),
      ...options,
      thresholds: model.thresholds,
    });
    return { bundle, files: writeExport(outDir, bundle) };
  } finally {
    if (!model.baseline) baseline.dispose();
  }
}

/**
 * An activation as a stage graph holds it (per `io`: NCHW, or features flattened in (c, h, w)
 * order) rearranged into the network's own NHWC order, e.g. to compare with the tfjs runtime.
 */
export function toNetworkOrder(data: ArrayLike<number>, io: IoSpec): Float32Array {
  const rows = data.length === 0 ? 0 : data.length / io.shape.slice(1).reduce<number>((a, d) => a * Number(d), 1);
  const out = new Float32Array(data.length);
  let dims: [number, number, number] | null = null;
  if (io.layout === 'NCHW') {
    const [, c, h, w] = io.shape as number[];
    dims = [h, w, c];
  } else if (io.flattenedFrom) {
    dims = io.flattenedFrom;
  }
  if (!dims) {
    for (let i = 0; i < data.length; i++) out[i] = data[i];
    return out;
  }
  const [H, W, C] = dims;
  const size = H * W * C;
  for (let n = 0; n < rows; n++) {
    for (let ch = 0; ch < C; ch++) {
      for (let i = 0; i < H; i++) {
        for (let j = 0; j < W; j++) out[n * size + (i * W + j) * C + ch] = data[n * size + (ch * H + i) * W + j];
      }
    }
  }
  return out;
}
