import { UserError } from '../errors.js';
import { exitsHere, rowEntropy } from '../runtime/exit_rule.js';
import { expectedMacs } from '../model/macs.js';
import { normalQuantile } from './normal_quantile.js';

/** The reference code's threshold grid (LeNet and ResNet), used for every non-final exit. */
export const REFERENCE_GRID = [
  0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2, 3, 5, 10,
];

/**
 * Candidate thresholds per non-final exit: 'reference' is REFERENCE_GRID for each; 'fine' adds
 * each exit's own entropy quantiles on the calibration data at 5 % steps, so that the sweep also
 * tries the settings between the reference's coarse top values (1, 2, 3: the entropy of 10
 * classes is at most ln 10 = 2.30) where a weak early exit's useful thresholds lie. A list of
 * numbers is used for every exit as given.
 */
export type ThresholdGrid = 'reference' | 'fine' | number[];

export const FINE_GRID_QUANTILES = 20;

function thresholdLists(grid: ThresholdGrid, entropy: Float64Array[]): number[][] {
  const nonFinal = entropy.slice(0, -1);
  if (grid === 'reference') return nonFinal.map(() => REFERENCE_GRID);
  if (Array.isArray(grid)) return nonFinal.map(() => grid);
  return nonFinal.map((h) => {
    const sorted = Float64Array.from(h).sort();
    const cuts = Array.from(
      { length: FINE_GRID_QUANTILES - 1 },
      (_, q) => sorted[Math.floor(((q + 1) / FINE_GRID_QUANTILES) * (sorted.length - 1))]!,
    );
    return [...new Set([...REFERENCE_GRID, ...cuts])].sort((a, b) => a - b);
  });
}

/** A threshold for people: at most 4 significant digits (the saved model keeps the exact value). */
export function formatThreshold(t: number): string {
  return String(Number(t.toPrecision(4)));
}

export interface OperatingPoint {
  thresholds: number[];
  accuracy: number;
  exitFractions: number[];
  /** Expected multiply-accumulates per sample (segments and heads run up to the answering exit). */
  macs: number;
  /**
   * Standard error of the accuracy drop against the baseline (paired: the same samples, the
   * baseline's answers and these), where the baseline's per-sample answers were given.
   */
  dropStdErr?: number;
}

export interface Calibration {
  split: 'validation';
  samples: number;
  baselineAccuracy: number;
  maxDrop: number;
  /**
   * One-sided confidence that the drop is at most maxDrop (null: the drop measured on the
   * calibration data is held to maxDrop as it is).
   */
  confidence: number | null;
  /** The thresholds tried at each non-final exit. */
  grid: number[][];
  /**
   * The chosen point: the cheapest setting with baselineAccuracy - accuracy <= maxDrop, or, with
   * a confidence, with baselineAccuracy - accuracy + z * dropStdErr <= maxDrop (z its normal quantile).
   */
  chosen: OperatingPoint;
  /** False when no point met the target and the most accurate one was chosen instead. */
  metTarget: boolean;
  /** The monotone accuracy-versus-cost frontier, cheapest first. */
  frontier: OperatingPoint[];
}

function* cartesian(lists: number[][]): Generator<number[]> {
  if (lists.length === 0) {
    yield [];
    return;
  }
  const [first, ...rest] = lists;
  for (const v of first) for (const tail of cartesian(rest)) yield [v, ...tail];
}

/**
 * Standard error of a paired accuracy difference: per sample d = baseline right - early exit right
 * (in -1, 0, 1), mean `drop`, mean square `disagreeRate`; the sample variance over n gives it.
 */
export function pairedDropStdErr(drop: number, disagreeRate: number, n: number): number {
  return Math.sqrt(Math.max(0, disagreeRate - drop * drop) / n);
}

/** Keeps the points that are more accurate than every cheaper point, cheapest first. */
export function paretoFrontier(points: OperatingPoint[]): OperatingPoint[] {
  const sorted = [...points].sort((a, b) => a.macs - b.macs || b.accuracy - a.accuracy);
  const frontier: OperatingPoint[] = [];
  for (const p of sorted) {
    if (frontier.length === 0 || p.accuracy > frontier[frontier.length - 1].accuracy) frontier.push(p);
  }
  return frontier;
}

/**
 * Sweeps the Cartesian product of the candidate thresholds (`grid`, default the reference's) over
 * the non-final exits on held-out data, keeps the monotone accuracy-versus-MACs frontier and picks
 * the cheapest setting whose accuracy is at least `baselineAccuracy - maxDrop`.
 *
 * With `confidence` (and the baseline's per-sample answers, `baselineCorrect`), the drop must hold
 * as a one-sided normal upper bound: measured drop + z * its paired standard error <= maxDrop. The
 * cheapest of tens of thousands of settings that only just meets the tolerance on a few thousand
 * samples has, on new data, usually lost more than it did here; the margin pays for that.
 */
export function calibrate(args: {
  exitLogits: ArrayLike<number>[];
  labels: Uint8Array;
  classes: number;
  exitMacs: number[];
  baselineAccuracy: number;
  /** 1 where the baseline answers sample i correctly: gives each point its dropStdErr. */
  baselineCorrect?: Uint8Array;
  maxDrop?: number;
  /** In [0.5, 1): see above; needs baselineCorrect. */
  confidence?: number;
  grid?: ThresholdGrid;
}): Calibration {
  const { exitLogits, labels, classes, exitMacs, baselineCorrect } = args;
  const maxDrop = args.maxDrop ?? 0;
  const confidence = args.confidence ?? null;
  const exits = exitLogits.length;
  const n = labels.length;
  if (n === 0) throw new RangeError('calibrate: no samples');
  if (baselineCorrect !== undefined) {
    if (baselineCorrect.length !== n)
      throw new RangeError(`calibrate: ${baselineCorrect.length} baseline answers for ${n} samples`);
    const fromAnswers = baselineCorrect.reduce((sum, right) => sum + right, 0) / n;
    if (Math.abs(fromAnswers - args.baselineAccuracy) > 1e-9) {
      throw new RangeError(
        `calibrate: baselineAccuracy ${args.baselineAccuracy} disagrees with the baseline's answers (${fromAnswers})`,
      );
    }
  }
  if (confidence !== null) {
    if (!(confidence >= 0.5 && confidence < 1))
      throw new UserError(`must be a probability in [0.5, 1), e.g. 0.9, got ${confidence}`, { option: 'confidence' });
    if (baselineCorrect === undefined)
      throw new RangeError("calibrate: a confidence needs the baseline's per-sample answers (baselineCorrect)");
  }
  const z = confidence === null ? 0 : normalQuantile(confidence);
  const entropy = exitLogits.map(() => new Float64Array(n));
  const correct = exitLogits.map(() => new Uint8Array(n));
  for (let k = 0; k < exits; k++) {
    for (let i = 0; i < n; i++) {
      const r = rowEntropy(exitLogits[k], i, classes);
      entropy[k][i] = r.entropy;
      correct[k][i] = r.argmax === labels[i] ? 1 : 0;
    }
  }
  const grid = thresholdLists(args.grid ?? 'reference', entropy);
  const points: OperatingPoint[] = [];
  for (const thresholds of cartesian(grid)) {
    const counts = new Array(exits).fill(0);
    let right = 0;
    let disagreements = 0; // samples where exactly one of baseline and early exit is right
    for (let i = 0; i < n; i++) {
      let k = 0;
      while (!exitsHere(entropy[k][i], k, thresholds, exits)) k++;
      counts[k]++;
      right += correct[k][i];
      if (baselineCorrect !== undefined) disagreements += baselineCorrect[i] ^ correct[k][i];
    }
    const exitFractions = counts.map((c) => c / n);
    const point: OperatingPoint = {
      thresholds,
      accuracy: right / n,
      exitFractions,
      macs: expectedMacs(exitFractions, exitMacs),
    };
    if (baselineCorrect !== undefined)
      point.dropStdErr = pairedDropStdErr(args.baselineAccuracy - point.accuracy, disagreements / n, n);
    points.push(point);
  }
  const frontier = paretoFrontier(points);
  const meets = (p: OperatingPoint) => args.baselineAccuracy - p.accuracy + z * (p.dropStdErr ?? 0) <= maxDrop + 1e-12;
  // Without a confidence the cheapest point meeting the target is on the frontier; with one, a
  // point off it (slightly less accurate, but with a smaller error) may be the cheapest that does.
  const meeting =
    confidence === null
      ? frontier.find(meets)
      : [...points].sort((a, b) => a.macs - b.macs || b.accuracy - a.accuracy).find(meets);
  return {
    split: 'validation',
    samples: n,
    baselineAccuracy: args.baselineAccuracy,
    maxDrop,
    confidence,
    grid,
    chosen: meeting ?? frontier[frontier.length - 1],
    metTarget: meeting !== undefined,
    frontier,
  };
}
