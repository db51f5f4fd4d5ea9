import type { InferenceSession, Tensor } from 'onnxruntime-common';
import type { OnnxExport, StageManifest } from '../onnx/manifest.js';
import type { OrtModule, OrtSession, SessionOpener } from './ort_session.js';
import { openPublicSession } from './ort_session.js';
import { oneLine, UserError } from '../errors.js';
import { checkStageRuns, type LoadedStage } from './check_stages.js';
import type { StageOutput, StageRunner } from './runner.js';

export interface OnnxRunnerOptions {
  /** Threads ONNX Runtime may use inside one operator (default 1: the batch-1 latency setting). */
  intraOpNumThreads?: number;
  /** ONNX Runtime graph optimisation level (default 'all'). */
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /**
   * ONNX Runtime's memory-pattern planning, for every stage when given. By default it is on for
   * the first stage only: it plans buffers for one input shape and re-plans for every new one.
   * The first stage sees the same few shapes (batch 1, or full tiles and one remainder), where it
   * pays; batched early exit hands each later stage a batch of a new size almost every time,
   * where re-planning costs more than it saves (docs/benchmarks.md).
   */
  enableMemPattern?: boolean;
  /**
   * Most rows per session run (default 64): a larger batch runs as consecutive tiles of this many
   * rows, so that each run's activations stay in cache; 64 measured best of 32, 64, 128 and whole
   * batches (`npm run bench:tiles`, docs/benchmarks.md).
   */
  maxRunRows?: number;
  /**
   * Run the stages on onnxruntime-node's native session directly, synchronously (default true
   * where the session opener supports it, as Node's does; see `directOrtBinding` in compat.ts):
   * it skips the public API's deferral of the same call through `setImmediate`, a fixed cost per
   * run. false: the public API. Either way a run blocks the thread it is on; the answers are the same.
   */
  direct?: boolean;
  /**
   * Use a stage's packed graph (`StageManifest.packed`, exported for a first convolution of a
   * one-channel image) for the rows of a run that fill whole groups of its `rowMultiple`, the plain
   * graph for the rest (default true). Same answers, less time where it applies
   * (`npm run bench:stages -- --packing on|off`, docs/onnx.md).
   */
  imagePacking?: boolean;
  /**
   * How a stage graph becomes a session (default: the ONNX Runtime module's public
   * `InferenceSession.create`). Node's entry passes one that runs onnxruntime-node's native
   * session directly where it can (`direct`).
   */
  openSession?: SessionOpener;
}

export const DEFAULT_MAX_RUN_ROWS = 64;

/**
 * The stage graphs of one network: an export held in memory (its early-exit stages or its
 * baseline), stage manifests with their files' bytes, or stage manifests with a reader of their
 * files (from a directory, a URL, ...).
 */
export type OnnxSource =
  | { kind: 'bundle'; bundle: OnnxExport; which?: 'early' | 'baseline' }
  | { kind: 'stages'; stages: StageManifest[]; files: Map<string, Uint8Array> }
  | {
      kind: 'files';
      stages: StageManifest[];
      read: (file: string) => Promise<Uint8Array> | Uint8Array;
      /** Where a file is, for messages (default its name). */
      where?: (file: string) => string;
    };

type Stage = LoadedStage;

function imageShape(input: StageManifest['input']): [number, number, number] {
  const [, h, w, c] = input.shape;
  if (input.layout !== 'NHWC' || typeof h !== 'number' || typeof w !== 'number' || typeof c !== 'number') {
    throw new Error(`onnx runner: the first stage must take NHWC images, got ${input.layout} [${input.shape}]`);
  }
  return [h, w, c];
}

/**
 * An activation on ONNX Runtime: its rows as consecutive blocks of ORT tensors (NCHW or flat,
 * the stage's layout). A tiled run's output stays as its tiles, so compaction copies only the
 * rows that go on (a few percent at batch 256), never the whole batch first.
 */
export interface OnnxActivation {
  readonly blocks: readonly Tensor[];
  readonly rows: number;
}

function rowSizeOf(a: OnnxActivation): number {
  const first = a.blocks[0];
  return first.dims.slice(1).reduce((n, d) => n * d, 1);
}

/** Every session the stages hold, packed graphs' included. */
function sessionsOf(stages: readonly Stage[]): OrtSession[] {
  return stages.flatMap((s) => [s.session, ...(s.packed ? [s.packed.session] : [])]);
}

/** One session run's rows, and whether they go to the stage's packed graph. */
interface Tile {
  tensor: Tensor;
  packed: boolean;
}

/** The index of the block holding `row`, given each block's first row (and one past the end). */
function blockOf(starts: number[], row: number): number {
  let lo = 0;
  let hi = starts.length - 2;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid] <= row) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** The tensors' float data, stacked in order. */
function concatData(tensors: readonly Tensor[]): Float32Array {
  const out = new Float32Array(tensors.reduce((n, t) => n + t.data.length, 0));
  let at = 0;
  for (const t of tensors) {
    out.set(t.data as Float32Array, at);
    at += t.data.length;
  }
  return out;
}

/**
 * Runs an exported network's stages on ONNX Runtime (onnxruntime-node, CPU): one session per
 * stage, one session run per stage and batch (or tile of `maxRunRows` rows), the entropy computed
 * inside the graph unless the export left it to the early-exit loop. Activations
 * are lists of ORT tensors (`OnnxActivation`); compaction copies the surviving rows (contiguous
 * in NCHW) into a new tensor.
 * Create with `OnnxRunner.create` (sessions load asynchronously) and `release()` when done.
 */
export class OnnxRunner implements StageRunner<OnnxActivation> {
  readonly exits: number;

  private constructor(
    private readonly ort: OrtModule,
    private readonly stages: Stage[],
    readonly classes: number,
    private readonly shape: [number, number, number],
    private readonly maxRunRows: number,
  ) {
    this.exits = stages.length;
  }

  /** Loads the stages of `source` into sessions of `ort` (onnxruntime-node, onnxruntime-web). */
  static async create(ort: OrtModule, source: OnnxSource, options: OnnxRunnerOptions = {}): Promise<OnnxRunner> {
    let stages: StageManifest[];
    let read: (file: string) => Promise<Uint8Array> | Uint8Array;
    const fileName = (file: string) => (source.kind === 'files' && source.where ? source.where(file) : file);
    if (source.kind === 'files') {
      ({ stages, read } = source);
    } else {
      stages =
        source.kind === 'stages'
          ? source.stages
          : source.which === 'baseline'
            ? [source.bundle.manifest.baseline]
            : source.bundle.manifest.stages;
      const files = source.kind === 'stages' ? source.files : source.bundle.files;
      read = (file) => {
        const bytes = files.get(file);
        if (!bytes) throw new Error(`onnx runner: the export has no file ${file}`);
        return bytes;
      };
    }
    const maxRunRows = options.maxRunRows ?? DEFAULT_MAX_RUN_ROWS;
    if (!Number.isInteger(maxRunRows) || maxRunRows < 1)
      throw new RangeError(`onnx runner: maxRunRows must be an integer >= 1, got ${maxRunRows}`);
    const classes = stages[0].outputs.logits.shape[1];
    if (typeof classes !== 'number') throw new Error('onnx runner: the logits must have a fixed number of classes');
    const sessionOptions: InferenceSession.SessionOptions = {
      intraOpNumThreads: options.intraOpNumThreads ?? 1,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: options.graphOptimizationLevel ?? 'all',
    };
    const opener = options.openSession ?? openPublicSession;
    const built: Stage[] = [];
    try {
      for (const [k, s] of stages.entries()) {
        const next = s.outputs.activation?.name ?? null;
        const logits = s.outputs.logits.name;
        const entropy = s.outputs.entropy?.name ?? null;
        const fetches = [...(next ? [next] : []), logits, ...(entropy ? [entropy] : [])];
        const stageOptions = { ...sessionOptions, enableMemPattern: options.enableMemPattern ?? k === 0 };
        const open = async (file: string) => {
          const bytes = await read(file);
          if (bytes.length === 0) throw new UserError(`${fileName(file)}: empty file (an interrupted copy?)`);
          try {
            return await opener(ort, bytes, stageOptions, fetches, options.direct ?? true);
          } catch (e) {
            const why = oneLine(e instanceof Error ? e.message : String(e));
            throw new UserError(`${fileName(file)}: ONNX Runtime cannot load it (${why})`);
          }
        };
        const stage: Stage = { session: await open(s.file), packed: null, input: s.input.name, next, logits, entropy };
        built.push(stage);
        if (s.packed && options.imagePacking !== false) {
          const rows = s.packed.rowMultiple;
          if (!Number.isInteger(rows) || rows < 1)
            throw new Error(`onnx runner: stage ${k + 1}'s packed graph has row multiple ${rows}`);
          stage.packed = { session: await open(s.packed.file), rows };
        }
      }
      // Files may be corrupt in ways ONNX Runtime loads; graphs exported in memory are not.
      if (source.kind === 'files') await checkStageRuns(ort, built, stages, fileName);
    } catch (e) {
      await Promise.all(sessionsOf(built).map((session) => session.release()));
      throw e;
    }
    return new OnnxRunner(ort, built, classes, imageShape(stages[0].input), maxRunRows);
  }

  input(images: Float32Array, count: number): OnnxActivation {
    // Wraps the caller's memory; ORT reads it during the run, no copy here.
    return { blocks: [new this.ort.Tensor('float32', images, [count, ...this.shape])], rows: count };
  }

  /** Whether session runs go to onnxruntime-node's native session directly (`OnnxRunnerOptions.direct`). */
  get direct(): boolean {
    return this.stages.every((s) => this.stageDirect(s));
  }

  /** Whether some stage runs its packed graph for whole groups of rows (`OnnxRunnerOptions.imagePacking`). */
  get packed(): boolean {
    return this.stages.some((s) => s.packed !== null);
  }

  /**
   * Synchronous where the sessions run directly (so the early-exit loop pays no Promise per
   * stage), else a Promise.
   */
  runStage(k: number, activation: OnnxActivation): StageOutput<OnnxActivation> | Promise<StageOutput<OnnxActivation>> {
    const s = this.stages[k];
    const tiles = this.tiles(activation, s.packed?.rows ?? 0);
    const sessionOf = (tile: Tile) => (tile.packed ? s.packed!.session : s.session);
    if (this.stageDirect(s))
      return this.output(
        s,
        activation,
        tiles.map((tile) => sessionOf(tile).run({ [s.input]: tile.tensor }) as Record<string, Tensor>),
      );
    return (async () => {
      const outs: Record<string, Tensor>[] = [];
      for (const tile of tiles) outs.push(await sessionOf(tile).run({ [s.input]: tile.tensor }));
      return this.output(s, activation, outs);
    })();
  }

  private stageDirect(s: Stage): boolean {
    return s.session.direct && (s.packed === null || s.packed.session.direct);
  }

  /**
   * The activation's blocks cut into runs of at most maxRunRows rows (views, no copy). With a
   * packed graph of row multiple `packRows`, a run's whole groups of rows go to it (`packed`) and
   * the rest, fewer than `packRows`, to the plain graph as a run of their own.
   */
  private tiles(activation: OnnxActivation, packRows: number): Tile[] {
    const tiles: Tile[] = [];
    for (const block of activation.blocks) {
      const rows = block.dims[0];
      const data = block.data as Float32Array;
      const rowSize = rows === 0 ? 0 : data.length / rows;
      const tail = block.dims.slice(1);
      const view = (first: number, n: number) =>
        n === rows
          ? block
          : new this.ort.Tensor('float32', data.subarray(first * rowSize, (first + n) * rowSize), [n, ...tail]);
      let first = 0;
      do {
        const n = Math.min(this.maxRunRows, rows - first);
        const whole = packRows > 0 ? n - (n % packRows) : 0;
        if (whole > 0) tiles.push({ tensor: view(first, whole), packed: true });
        if (whole < n || n === 0) tiles.push({ tensor: view(first + whole, n - whole), packed: false });
        first += n;
      } while (first < rows);
    }
    return tiles;
  }

  private output(s: Stage, activation: OnnxActivation, outs: Record<string, Tensor>[]): StageOutput<OnnxActivation> {
    const stacked = (name: string): Float32Array =>
      outs.length === 1 ? (outs[0][name].data as Float32Array) : concatData(outs.map((o) => o[name]));
    return {
      // The activation stays as its tiles: the rows that go on are copied out of them later.
      next: s.next === null ? null : { blocks: outs.map((o) => o[s.next!]), rows: activation.rows },
      logits: stacked(s.logits),
      ...(s.entropy ? { entropies: stacked(s.entropy) } : {}),
    };
  }

  selectRows(activation: OnnxActivation, rows: Int32Array): OnnxActivation {
    const { blocks } = activation;
    const rowSize = rowSizeOf(activation);
    const out = new Float32Array(rows.length * rowSize);
    // Block b holds rows starts[b] .. starts[b + 1] - 1.
    const starts = [0];
    for (const block of blocks) starts.push(starts[starts.length - 1] + block.dims[0]);
    let b = 0;
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i];
      if (row < starts[b] || row >= starts[b + 1]) b = blockOf(starts, row);
      const data = blocks[b].data as Float32Array;
      const at = (row - starts[b]) * rowSize;
      out.set(data.subarray(at, at + rowSize), i * rowSize);
    }
    return {
      blocks: [new this.ort.Tensor('float32', out, [rows.length, ...blocks[0].dims.slice(1)])],
      rows: rows.length,
    };
  }

  concatRows(activations: OnnxActivation[]): OnnxActivation {
    const blocks = activations.flatMap((a) => a.blocks);
    const rows = activations.reduce((n, a) => n + a.rows, 0);
    return { blocks: [new this.ort.Tensor('float32', concatData(blocks), [rows, ...blocks[0].dims.slice(1)])], rows };
  }

  dispose(_activation: OnnxActivation): void {
    // CPU tensors hold plain typed arrays, reclaimed by the garbage collector. (Tensor.dispose
    // would also drop the reference to the caller's image memory, which `input` wraps.)
  }

  async release(): Promise<void> {
    await Promise.all(sessionsOf(this.stages).map((session) => session.release()));
  }
}
