import { UserError } from '../errors.js';
import { cumulativeExitMacs, trunkMacs } from '../model/macs.js';
import type { OnnxManifest, Preprocessing } from '../onnx/manifest.js';
import { checkManifest, MANIFEST_FILE } from '../onnx/manifest.js';
import type { EarlyExitOptions, ExitResults } from '../runtime/early_exit.js';
import { earlyExitAsync } from '../runtime/early_exit.js';
import { checkThresholds, softmaxRow } from '../runtime/exit_rule.js';
import type { OnnxRunnerOptions } from '../runtime/onnx_runner.js';
import { OnnxRunner } from '../runtime/onnx_runner.js';
import type { OrtModule, SessionOpener } from '../runtime/ort_session.js';
import type { StageRunner } from '../runtime/runner.js';
import { defaultClassNames } from './class_names.js';
import type { ImageInput } from './images.js';
import { toPixels } from './images.js';
import { applyPreprocessing, checkPreprocessing, PIXEL_RANGE } from './preprocessing.js';
import type { FileSource } from './source.js';
import { inNode } from '../platform.js';
import { importNodeOnly, sourceOf } from './source.js';

export type RuntimeChoice = 'auto' | 'onnx' | 'tfjs';

export interface LoadOptions {
  /**
   * 'auto' (default): ONNX Runtime where it loads (and the network exports), else tfjs, with a
   * notice saying which and why. 'onnx' or 'tfjs': that one, or an error. The answers are the same.
   */
  runtime?: RuntimeChoice;
  /** ONNX Runtime intra-op threads (default 1). */
  threads?: number;
  /**
   * An ONNX Runtime module to run on (e.g. `import * as ort from 'onnxruntime-web'` in a page).
   * Default in Node: onnxruntime-node.
   */
  ort?: OrtModule;
  /** Lines worth telling a person (which runtime runs and why); default: none. */
  notice?: (line: string) => void;
  /** Options of the ONNX runner (rows per session run, image packing, ...). */
  onnx?: OnnxRunnerOptions;
}

/** One image's answer. */
export interface Answer {
  /** The predicted class index. */
  label: number;
  className: string;
  /** The exit that answered, 1-based (the last exit is the full network's). */
  exit: number;
  /** The softmax entropy (natural log) of that exit's answer: low is confident. */
  entropy: number;
  /** The answering exit's softmax. */
  probabilities: Float32Array;
}

/** What a loaded model is, apart from how it runs. */
export interface ModelInfo {
  name: string;
  dataset: string | null;
  /** [height, width, channels] of one image. */
  inputShape: [number, number, number];
  classNames: string[];
  thresholds: number[] | null;
  preprocessing: Preprocessing;
  /** MACs per sample of answering at each exit (cumulative), and of the baseline network. */
  macs: { perExit: number[]; baseline: number };
}

/** How a model runs: its early-exit stages and its baseline on one runtime. */
export interface ModelEngine {
  runtime: 'onnx' | 'tfjs';
  /** The tfjs backend the tfjs runtime runs on ('none' on ONNX Runtime). */
  backend: string;
  stages: StageRunner<unknown>;
  baseline: StageRunner<unknown> | null;
  /** A quantised model's float baseline, for comparison. */
  floatBaseline?: StageRunner<unknown>;
  release(): Promise<void>;
}

/** Node's loader of model directories (src/node/model_dir.ts), imported only where it is needed. */
interface ModelDirLoader {
  openModelDir(dir: string, options: LoadOptions): Promise<EarlyExitModel>;
}

interface NodeOnnx {
  loadAnyOnnxRuntime(): Promise<
    { ort: OrtModule; name: string; openSession: SessionOpener; fallbackReason?: string } | { error: string }
  >;
  fallbackNotice(reason: string): string;
}

const DEFAULT_BATCH_SIZE = 256;

async function readJson(source: FileSource, file: string): Promise<unknown | null> {
  const bytes = await source.read(file);
  if (bytes === null) return null;
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new UserError(`${source.where(file)}: not valid JSON (${(e as Error).message})`);
  }
}

function manifestInfo(m: OnnxManifest, where: string): ModelInfo {
  const [, h, w, c] = m.input.shape;
  if (typeof h !== 'number' || typeof w !== 'number' || typeof c !== 'number')
    throw new UserError(`${where}: the input must have a fixed image shape, got [${m.input.shape}]`);
  const preprocessing = m.preprocessing ?? { pixelRange: PIXEL_RANGE };
  checkPreprocessing(preprocessing, c, where);
  return {
    name: m.model,
    dataset: null,
    inputShape: [h, w, c],
    classNames: m.classes,
    thresholds: m.thresholds,
    preprocessing,
    macs: { perExit: m.stages.map((s) => s.cumulativeMacs), baseline: m.baseline.cumulativeMacs },
  };
}

/** Runs an export directory's stage graphs on ONNX Runtime. */
async function openExport(source: FileSource, manifest: OnnxManifest, options: LoadOptions): Promise<ModelEngine> {
  if (options.runtime === 'tfjs')
    throw new UserError(`an export directory runs on ONNX Runtime only; load the model directory for tfjs`, {
      option: 'runtime',
    });
  let ort = options.ort;
  let openSession: SessionOpener | undefined;
  let name = 'the given module';
  if (!ort) {
    if (!inNode)
      throw new UserError(
        `in a page, pass an ONNX Runtime module: EarlyExitModel.load(url, { ort }) with ort from onnxruntime-web`,
        { option: 'ort' },
      );
    const nodeOnnx = await importNodeOnly<NodeOnnx>('../node/onnx.js');
    const loaded = await nodeOnnx.loadAnyOnnxRuntime();
    if ('error' in loaded)
      throw new UserError(`an export directory needs ONNX Runtime: ${loaded.error}`, { option: 'runtime' });
    if (loaded.fallbackReason) options.notice?.(nodeOnnx.fallbackNotice(loaded.fallbackReason));
    ({ ort, openSession, name } = loaded);
  }
  const read = async (file: string) => {
    const bytes = await source.read(file);
    if (bytes === null) throw new UserError(`${source.where(file)}: no such file (named in ${MANIFEST_FILE})`);
    return bytes;
  };
  const runnerOptions: OnnxRunnerOptions = {
    intraOpNumThreads: options.threads,
    ...(openSession ? { openSession } : {}),
    ...options.onnx,
  };
  const where = (file: string) => source.where(file);
  const stages = await OnnxRunner.create(ort, { kind: 'files', stages: manifest.stages, read, where }, runnerOptions);
  const baseline = await OnnxRunner.create(
    ort,
    { kind: 'files', stages: [manifest.baseline], read, where },
    runnerOptions,
  ).catch(async (e: unknown) => {
    await stages.release();
    throw e;
  });
  options.notice?.(`runtime: ONNX Runtime (${name})`);
  return {
    runtime: 'onnx',
    backend: 'none',
    stages,
    baseline,
    release: async () => void (await Promise.all([stages.release(), baseline.release()])),
  };
}

/**
 * A trained early-exit network, ready to classify images: loaded from a model directory
 * (`branchynet train`) or an export directory (`branchynet export`), by path in Node or by URL.
 *
 * ```ts
 * const model = await EarlyExitModel.load('models/b-lenet-mnist');
 * const { className, exit } = await model.classify(pixels);
 * ```
 */
export class EarlyExitModel {
  private current: number[] | null;
  private released = false;

  private constructor(
    readonly info: ModelInfo,
    private readonly engine: ModelEngine,
  ) {
    this.current = info.thresholds ? [...info.thresholds] : null;
  }

  static async load(location: string | URL, options: LoadOptions = {}): Promise<EarlyExitModel> {
    const runtime = options.runtime ?? 'auto';
    if (!['auto', 'onnx', 'tfjs'].includes(runtime))
      throw new UserError(`expected 'auto', 'onnx' or 'tfjs', got '${String(runtime)}'`, { option: 'runtime' });
    const source = sourceOf(location);
    // By URL only an export directory loads: its manifest is asked for first, so that a page's
    // console shows no failed request for model.json.
    const urlManifest = source.dir === null ? await readJson(source, MANIFEST_FILE) : null;
    const modelJson = urlManifest === null ? await readJson(source, 'model.json') : null;
    if (modelJson !== null) {
      if (!inNode || source.dir === null) {
        throw new UserError(
          `${source.where('model.json')}: a model directory loads in Node from a path; for a page, export it (branchynet export) and load the export's URL`,
          { option: 'location' },
        );
      }
      const loader = await importNodeOnly<ModelDirLoader>('../node/model_dir.js');
      return loader.openModelDir(source.dir, options);
    }
    const manifestJson = urlManifest ?? (await readJson(source, MANIFEST_FILE));
    if (manifestJson === null) {
      throw new UserError(
        `${source.where('')}: neither model.json (a model directory) nor ${MANIFEST_FILE} (an export directory) is there`,
        { option: 'location' },
      );
    }
    const manifest = checkManifest(manifestJson, source.where(MANIFEST_FILE));
    const info = manifestInfo(manifest, source.where(MANIFEST_FILE));
    return new EarlyExitModel(info, await openExport(source, manifest, options));
  }

  /** Wraps runners you built yourself (e.g. in a test or a benchmark) as a model. */
  static fromEngine(info: ModelInfo, engine: ModelEngine): EarlyExitModel {
    return new EarlyExitModel(info, engine);
  }

  get name(): string {
    return this.info.name;
  }

  get classNames(): string[] {
    return this.info.classNames;
  }

  get inputShape(): [number, number, number] {
    return this.info.inputShape;
  }

  get exits(): number {
    return this.engine.stages.exits;
  }

  get runtime(): 'onnx' | 'tfjs' {
    return this.engine.runtime;
  }

  /** The tfjs backend the tfjs runtime runs on ('none' on ONNX Runtime). */
  get backend(): string {
    return this.engine.backend;
  }

  /** The entropy threshold of each early exit (one fewer than exits); null until calibrated or set. */
  get thresholds(): number[] | null {
    return this.current ? [...this.current] : null;
  }

  set thresholds(value: readonly number[]) {
    if (!Array.isArray(value))
      throw new UserError(`expected an array of ${this.exits - 1} numbers >= 0`, { option: 'thresholds' });
    checkThresholds(value, this.exits);
    this.current = [...value];
  }

  /** MACs per sample of answering at each exit (index k: exit k + 1), and of the baseline network. */
  macs(): { perExit: number[]; baseline: number } {
    return { perExit: [...this.info.macs.perExit], baseline: this.info.macs.baseline };
  }

  /** The early-exit stages and the baseline as runners (for timing, as `branchynet eval` does). */
  get runners(): {
    stages: StageRunner<unknown>;
    baseline: StageRunner<unknown> | null;
    floatBaseline?: StageRunner<unknown>;
  } {
    this.checkOpen();
    const { stages, baseline, floatBaseline } = this.engine;
    return { stages, baseline, ...(floatBaseline ? { floatBaseline } : {}) };
  }

  /** Raw pixels (0-255, channels last, packed) as the network takes them: a new array. */
  preprocess(pixels: Float32Array): Float32Array {
    return applyPreprocessing(Float32Array.from(pixels), this.inputShape[2], this.info.preprocessing);
  }

  /** Classifies one image: raw pixels 0-255 ([H, W, C], channels last), ImageData or a tfjs tensor. */
  async classify(image: ImageInput): Promise<Answer> {
    const { pixels, count } = toPixels(image, this.inputShape, false);
    return (await this.run(pixels, count, 1))[0];
  }

  /**
   * Classifies many images by batched early exit: an array of images, or pixels of N images
   * packed. Stages run on up to `batchSize` rows at a time (default 256); answers in input order.
   */
  async classifyBatch(
    images: ImageInput | readonly ImageInput[],
    options: { batchSize?: number } = {},
  ): Promise<Answer[]> {
    const { pixels, count } = toPixels(images, this.inputShape, true);
    return this.run(pixels, count, options.batchSize ?? DEFAULT_BATCH_SIZE);
  }

  /**
   * Early exit on preprocessed images (as `preprocess` gives them), with every answer's fields as
   * typed arrays: the fast path for many images.
   */
  async exitResults(
    images: Float32Array,
    count: number,
    options: { batchSize?: number; thresholds?: readonly number[] } & EarlyExitOptions = {},
  ): Promise<ExitResults> {
    this.checkOpen();
    const thresholds = options.thresholds ?? this.requireThresholds();
    return earlyExitAsync(this.engine.stages, images, count, thresholds, options.batchSize ?? 1, {
      logits: options.logits,
    });
  }

  private async run(pixels: Float32Array, count: number, batchSize: number): Promise<Answer[]> {
    this.checkOpen();
    const thresholds = this.requireThresholds();
    const images = applyPreprocessing(pixels, this.inputShape[2], this.info.preprocessing);
    const r = await earlyExitAsync(this.engine.stages, images, count, thresholds, batchSize, { logits: true });
    const classes = this.classNames.length;
    return Array.from({ length: count }, (_, i) => ({
      label: r.predictions[i],
      className: this.classNames[r.predictions[i]],
      exit: r.exitTaken[i],
      entropy: r.entropies[i],
      probabilities: softmaxRow(r.logits!, i, classes),
    }));
  }

  private requireThresholds(): number[] {
    if (!this.current)
      throw new UserError(
        `${this.name} has no calibrated thresholds: set model.thresholds or calibrate it (branchynet calibrate)`,
        { option: 'thresholds' },
      );
    return this.current;
  }

  private checkOpen(): void {
    if (this.released) throw new UserError(`${this.name}: the model was disposed`);
  }

  /** Frees the sessions or tensors the model holds. */
  async dispose(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.engine.release();
  }
}

/** The info of a model directory's model.json (shared with Node's loader). */
export function modelDirInfo(json: {
  spec: { name: string; input: [number, number, number]; classes: number };
  dataset?: string;
  classNames?: string[];
  thresholds: number[] | null;
  normalization?: { mean: number[]; std: number[] } | null;
  macs: { segments: number[]; heads: number[]; baseline: number };
}): ModelInfo {
  const { spec } = json;
  return {
    name: spec.name,
    dataset: json.dataset ?? null,
    inputShape: [...spec.input],
    classNames: json.classNames ?? defaultClassNames(json.dataset, spec.classes),
    thresholds: json.thresholds,
    preprocessing: json.normalization
      ? { pixelRange: PIXEL_RANGE, mean: json.normalization.mean, std: json.normalization.std }
      : { pixelRange: PIXEL_RANGE },
    macs: { perExit: cumulativeExitMacs(json.macs), baseline: json.macs.baseline ?? trunkMacs(json.macs) },
  };
}
