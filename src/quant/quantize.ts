/**
 * Post-training static quantisation of a branchy network and its baseline, measured and
 * calibrated on the model's validation split: export the float stage graphs, fold batch norm,
 * observe activation ranges on calibration images, quantise (QDQ, int8 weights per channel,
 * uint8 activations) with each range method and keep the more accurate, return to float the layers
 * whose int8 form loses the most where a stage's exit loses more than the tolerance, and
 * re-calibrate the exit thresholds on the int8 network against the float baseline's accuracy.
 */
import type { Preprocessing } from '../onnx/manifest.js';
import type { Dataset } from '../data/dataset.js';
import { headDataset } from '../data/dataset.js';
import type { Calibration, ThresholdGrid } from '../eval/calibrate.js';
import { calibrate, REFERENCE_GRID } from '../eval/calibrate.js';
import { cumulativeExitMacs } from '../model/macs.js';
import type { BranchyNet } from '../model/network.js';
import type { GraphOptions } from '../onnx/export.js';
import type { OnnxExport, StageManifest } from '../onnx/manifest.js';
import { exportNetwork } from '../onnx/export.js';
import type { ModelProto } from '../onnx/graph.js';
import { decodeModel, encodeModel } from '../onnx/graph.js';
import { argmaxRow } from '../runtime/exit_rule.js';
import { accuracyOf } from '../runtime/full_forward.js';
import type { ChainStage } from './chain.js';
import { runChain } from './chain.js';
import type { QuantParams } from './maths.js';
import { activationsToQuantize, foldBatchNorms, quantizeGraph, weightedNodes, withObservedOutputs } from './qdq.js';
import type { RangeMethod } from './ranges.js';
import { DEFAULT_PERCENTILE, RANGE_METHODS, RangeObserver } from './ranges.js';

export const QUANTIZED_FORMAT = 'branchynet-int8';
export const QUANTIZED_VERSION = 1;

/**
 * Export choices for graphs that are quantised: plain convolutions, pools and Relus (no phase
 * convolution, no zero-padded filters, no packed first stage: those rewrite float graphs for ONNX
 * Runtime's float kernels and would only add int8 work), the entropy left to the runtime.
 */
export const QUANT_GRAPH_OPTIONS: GraphOptions = {
  phaseConv: false,
  padChannels: false,
  imagePacking: false,
  entropy: false,
};

export const DEFAULT_CALIBRATION_SAMPLES = 1000;
export const DEFAULT_DECISION_SAMPLES = 2000;
/** A stage whose exit loses more than this (a fraction of accuracy) on validation gets float layers back. */
export const DEFAULT_TOLERANCE = 0.003;
/** At most this many layers per graph return to float. */
const MAX_FLOAT_LAYERS = 6;

export interface QuantizeOptions {
  /** Validation images whose activations set the ranges (default 1000, the first ones). */
  calibrationSamples?: number;
  /** Validation images on which each stage's int8 loss is measured and layers chosen (default 2000). */
  decisionSamples?: number;
  methods?: readonly RangeMethod[];
  percentile?: number;
  tolerance?: number;
  maxDrop?: number;
  confidence?: number;
  grid?: ThresholdGrid;
  threads?: number;
  /** The source model's calibration record: its max drop, confidence and grid are the defaults. */
  sourceCalibration?: unknown;
  log?: (line: string) => void;
}

/** A layer kept in float, and what quantising it alone cost that graph's exit on the decision images. */
export interface FloatLayer {
  node: string;
  /** Accuracy (fraction) the exit regained with this layer in float, measured with the rest int8. */
  gain: number;
}

export interface GraphReport {
  file: string;
  /** Conv / Gemm nodes in the graph and how many run in int8. */
  weightedLayers: number;
  int8Layers: number;
  floatLayers: FloatLayer[];
  /** Accuracy of this graph's exit on the decision images: float network, int8 (as shipped), int8 everywhere. */
  decision: { samples: number; float: number; int8: number; allInt8: number };
}

export interface QuantizedRecord {
  format: typeof QUANTIZED_FORMAT;
  version: number;
  /** Subdirectory holding the int8 ONNX export (manifest.json, stage-k.onnx, baseline.onnx). */
  dir: string;
  weights: 'int8, symmetric, per output channel';
  activations: 'uint8, asymmetric, per tensor';
  method: RangeMethod;
  percentile: number;
  calibrationSamples: number;
  tolerance: number;
  /** Validation accuracy with every layer in int8, by range method: exits, then the baseline. */
  methods: { method: RangeMethod; exitAccuracies: number[]; baselineAccuracy: number }[];
  stages: GraphReport[];
  baseline: GraphReport;
  /** On the whole validation split: float and int8 exits (every sample through every exit) and baselines. */
  validation: {
    samples: number;
    floatExitAccuracies: number[];
    int8ExitAccuracies: number[];
    floatBaseline: number;
    int8Baseline: number;
  };
  /** Thresholds re-calibrated on the int8 network; the drop is held against the float baseline. */
  thresholds: number[];
  calibration: Calibration;
}

interface Graph {
  manifest: StageManifest;
  model: ModelProto;
  observer: RangeObserver;
  tensors: string[];
}

function chainStage(g: Graph, model: ModelProto, observe = false): ChainStage {
  const s = g.manifest;
  const base = { input: s.input.name, next: s.outputs.activation?.name ?? null, logits: s.outputs.logits.name };
  return observe ? { ...base, model: withObservedOutputs(model, g.tensors), observe: g.tensors } : { ...base, model };
}

function rowShapeOf(s: StageManifest): number[] {
  return s.input.shape.slice(1).map(Number);
}

function correctOf(logits: Float32Array, labels: Uint8Array, classes: number): Uint8Array {
  return Uint8Array.from(labels, (label, i) => (argmaxRow(logits, i, classes) === label ? 1 : 0));
}

/** The grid the source model was calibrated with: the reference's, or else the fine one. */
function gridOf(calibration: unknown): ThresholdGrid {
  const grid = (calibration as Partial<Calibration> | undefined)?.grid;
  if (!grid) return 'reference';
  return grid.every((g) => g.length === REFERENCE_GRID.length && g.every((t, i) => t === REFERENCE_GRID[i]))
    ? 'reference'
    : 'fine';
}

/** Calibration settings of the source model, for defaults: same rules on the int8 network. */
export function sourceCalibrationRules(calibration: unknown): {
  maxDrop: number;
  confidence?: number;
  grid: ThresholdGrid;
} {
  const c = calibration as Partial<Calibration> | undefined;
  return {
    maxDrop: c?.maxDrop ?? 0,
    ...(typeof c?.confidence === 'number' ? { confidence: c.confidence } : {}),
    grid: gridOf(calibration),
  };
}

/**
 * Chooses the layers of one graph to keep in float: none while the exit's accuracy on the decision
 * rows (`input`, the graph's input as the int8 stages before it hand it on) is within `tolerance`
 * of the float network's; else, by measurement, the layers whose float form regains the most,
 * one at a time, until it is within tolerance or no layer helps.
 */
async function chooseFloatLayers(
  g: Graph,
  params: Map<string, QuantParams>,
  input: Float32Array,
  rows: number,
  labels: Uint8Array,
  classes: number,
  floatAccuracy: number,
  options: QuantizeOptions,
): Promise<{ floatLayers: FloatLayer[]; model: ModelProto; int8: number; allInt8: number }> {
  const tolerance = options.tolerance ?? DEFAULT_TOLERANCE;
  const accuracyWith = async (floatNodes: Set<string>) => {
    const model = quantizeGraph(g.model, params, floatNodes);
    const { logits } = await runChain([chainStage(g, model)], input, rows, rowShapeOf(g.manifest), {
      threads: options.threads,
    });
    return { model, accuracy: accuracyOf(logits[0], labels, classes) };
  };
  const all = await accuracyWith(new Set());
  if (floatAccuracy - all.accuracy <= tolerance)
    return { floatLayers: [], model: all.model, int8: all.accuracy, allInt8: all.accuracy };
  const gains: FloatLayer[] = [];
  for (const node of weightedNodes(g.model))
    gains.push({ node, gain: (await accuracyWith(new Set([node]))).accuracy - all.accuracy });
  gains.sort((a, b) => b.gain - a.gain);
  let best = all;
  const kept: FloatLayer[] = [];
  for (const candidate of gains.slice(0, MAX_FLOAT_LAYERS)) {
    if (candidate.gain <= 0) break;
    const trial = await accuracyWith(new Set([...kept.map((k) => k.node), candidate.node]));
    if (trial.accuracy <= best.accuracy) continue;
    kept.push(candidate);
    best = trial;
    if (floatAccuracy - best.accuracy <= tolerance) break;
  }
  options.log?.(
    `  ${g.manifest.file}: int8 everywhere ${(100 * all.accuracy).toFixed(2)} % against float ${(100 * floatAccuracy).toFixed(2)} %; ` +
      (kept.length
        ? `float: ${kept.map((k) => k.node).join(', ')} -> ${(100 * best.accuracy).toFixed(2)} %`
        : 'no single layer in float helps'),
  );
  return { floatLayers: kept, model: best.model, int8: best.accuracy, allInt8: all.accuracy };
}

/** Quantises `net` and `baseline`; returns the int8 export (thresholds re-calibrated) and its record. */
export async function quantizeNetwork(
  net: BranchyNet,
  baseline: BranchyNet,
  validation: Dataset,
  options: QuantizeOptions & { classNames?: string[]; preprocessing?: Preprocessing } = {},
): Promise<{ bundle: OnnxExport; record: Omit<QuantizedRecord, 'dir'> }> {
  const log = options.log ?? (() => {});
  const classes = net.spec.classes;
  const percentile = options.percentile ?? DEFAULT_PERCENTILE;
  const methods = options.methods ?? RANGE_METHODS;
  const threads = options.threads;
  const floatExport = exportNetwork(net, baseline, QUANT_GRAPH_OPTIONS);
  const calib = headDataset(validation, options.calibrationSamples ?? DEFAULT_CALIBRATION_SAMPLES);
  const decision = headDataset(validation, options.decisionSamples ?? DEFAULT_DECISION_SAMPLES);
  const graphOf = (manifest: StageManifest): Graph => {
    const model = decodeModel(floatExport.files.get(manifest.file)!);
    foldBatchNorms(model);
    return { manifest, model, observer: new RangeObserver(calib.count), tensors: activationsToQuantize(model) };
  };
  const stages = floatExport.manifest.stages.map(graphOf);
  const base = graphOf(floatExport.manifest.baseline);
  const imageShape = rowShapeOf(stages[0].manifest);

  log(`observing activation ranges on ${calib.count} validation images...`);
  for (const chain of [stages, [base]]) {
    await runChain(
      chain.map((g) => chainStage(g, g.model, true)),
      calib.images,
      calib.count,
      imageShape,
      {
        threads,
        observer: (k, t, data, rows) => chain[k].observer.observe(t, data, rows),
      },
    );
  }
  const run = async (chain: Graph[], models: ModelProto[], data: Dataset) =>
    (
      await runChain(
        chain.map((g, k) => chainStage(g, models[k])),
        data.images,
        data.count,
        imageShape,
        { threads },
      )
    ).logits;

  log(`float network on ${validation.count} validation images...`);
  const floatExits = await run(
    stages,
    stages.map((g) => g.model),
    validation,
  );
  const floatBaseLogits = (await run([base], [base.model], validation))[0];
  const floatExitAccuracies = floatExits.map((l) => accuracyOf(l, validation.labels, classes));
  const baselineCorrect = correctOf(floatBaseLogits, validation.labels, classes);
  const floatBaseline = baselineCorrect.reduce((s, c) => s + c, 0) / validation.count;

  const measured: QuantizedRecord['methods'] = [];
  for (const method of methods) {
    const models = stages.map((g) => quantizeGraph(g.model, g.observer.params(method, percentile)));
    const exits = await run(stages, models, validation);
    const b = (await run([base], [quantizeGraph(base.model, base.observer.params(method, percentile))], validation))[0];
    measured.push({
      method,
      exitAccuracies: exits.map((l) => accuracyOf(l, validation.labels, classes)),
      baselineAccuracy: accuracyOf(b, validation.labels, classes),
    });
    const m = measured[measured.length - 1];
    log(
      `  ${method}: int8 exits ${m.exitAccuracies.map((a) => (100 * a).toFixed(2)).join(' / ')} %, baseline ${(100 * m.baselineAccuracy).toFixed(2)} % ` +
        `(float ${floatExitAccuracies.map((a) => (100 * a).toFixed(2)).join(' / ')} %, baseline ${(100 * floatBaseline).toFixed(2)} %)`,
    );
  }
  const score = (m: QuantizedRecord['methods'][number]) =>
    m.exitAccuracies.reduce((s, a) => s + a, 0) + m.baselineAccuracy;
  const chosen = measured.reduce((best, m) => (score(m) > score(best) ? m : best));
  log(`range method: ${chosen.method}; measuring each stage's int8 loss on ${decision.count} validation images...`);

  const floatOnDecision = floatExits.map((l) =>
    accuracyOf(l.subarray(0, decision.count * classes), decision.labels, classes),
  );
  const chooseChain = async (chain: Graph[], floatAccuracies: number[]) => {
    const models: ModelProto[] = [];
    const reports: GraphReport[] = [];
    let input = decision.images;
    for (const [k, g] of chain.entries()) {
      const params = g.observer.params(chosen.method, percentile);
      const choice = await chooseFloatLayers(
        g,
        params,
        input,
        decision.count,
        decision.labels,
        classes,
        floatAccuracies[k],
        options,
      );
      models.push(choice.model);
      const weighted = weightedNodes(g.model).length;
      reports.push({
        file: g.manifest.file,
        weightedLayers: weighted,
        int8Layers: weighted - choice.floatLayers.length,
        floatLayers: choice.floatLayers,
        decision: { samples: decision.count, float: floatAccuracies[k], int8: choice.int8, allInt8: choice.allInt8 },
      });
      if (k < chain.length - 1)
        input = (
          await runChain([chainStage(g, choice.model)], input, decision.count, rowShapeOf(g.manifest), {
            threads,
            keepNext: true,
          })
        ).next!;
    }
    return { models, reports };
  };
  const early = await chooseChain(stages, floatOnDecision);
  const baseFloatOnDecision = accuracyOf(
    floatBaseLogits.subarray(0, decision.count * classes),
    decision.labels,
    classes,
  );
  const baseChoice = await chooseChain([base], [baseFloatOnDecision]);

  log(
    `re-calibrating the thresholds on the int8 network (${validation.count} validation images, drop held against the float baseline)...`,
  );
  const int8Exits = await run(stages, early.models, validation);
  const int8BaseLogits = (await run([base], baseChoice.models, validation))[0];
  const rules = {
    ...sourceCalibrationRules(options.sourceCalibration),
    ...definedOnly({ maxDrop: options.maxDrop, confidence: options.confidence, grid: options.grid }),
  };
  const calibration = calibrate({
    exitLogits: int8Exits,
    labels: validation.labels,
    classes,
    exitMacs: cumulativeExitMacs(net.macs()),
    baselineAccuracy: floatBaseline,
    baselineCorrect,
    maxDrop: rules.maxDrop,
    confidence: rules.confidence,
    grid: rules.grid,
  });

  const files = new Map<string, Uint8Array>();
  stages.forEach((g, k) => files.set(g.manifest.file, encodeModel(early.models[k])));
  files.set(base.manifest.file, encodeModel(baseChoice.models[0]));
  const manifest = {
    ...floatExport.manifest,
    ...(options.classNames ? { classes: options.classNames } : {}),
    ...(options.preprocessing ? { preprocessing: options.preprocessing } : {}),
    thresholds: calibration.chosen.thresholds,
  };
  const record: Omit<QuantizedRecord, 'dir'> = {
    format: QUANTIZED_FORMAT,
    version: QUANTIZED_VERSION,
    weights: 'int8, symmetric, per output channel',
    activations: 'uint8, asymmetric, per tensor',
    method: chosen.method,
    percentile,
    calibrationSamples: calib.count,
    tolerance: options.tolerance ?? DEFAULT_TOLERANCE,
    methods: measured,
    stages: early.reports,
    baseline: baseChoice.reports[0],
    validation: {
      samples: validation.count,
      floatExitAccuracies,
      int8ExitAccuracies: int8Exits.map((l) => accuracyOf(l, validation.labels, classes)),
      floatBaseline,
      int8Baseline: accuracyOf(int8BaseLogits, validation.labels, classes),
    },
    thresholds: calibration.chosen.thresholds,
    calibration,
  };
  return { bundle: { manifest, files }, record };
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
