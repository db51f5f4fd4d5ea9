/**
 * Activation ranges seen on calibration data: each tensor's minimum and maximum and an evenly
 * strided sample of its values, from which a percentile range is read.
 */
import type { QuantParams } from './maths.js';
import { activationParams, percentileRange } from './maths.js';

/** 'minmax': the extremes seen; 'percentile': the quantiles `percentile` and 1 - `percentile`. */
export type RangeMethod = 'minmax' | 'percentile';
export const RANGE_METHODS: readonly RangeMethod[] = ['minmax', 'percentile'];
export const DEFAULT_PERCENTILE = 0.9999;
/** Values kept per tensor for the percentile: the 0.01 % tail of 2^17 values is 13 of them. */
export const SAMPLE_BUDGET = 1 << 17;

interface Seen {
  min: number;
  max: number;
  sample: number[];
  /** Values passed so far (every `stride`-th one is sampled). */
  passed: number;
  stride: number;
}

export class RangeObserver {
  private readonly seen = new Map<string, Seen>();

  /** `expectedRows`: how many rows (images) will be observed in all, to spread the sample over them. */
  constructor(
    private readonly expectedRows: number,
    private readonly budget = SAMPLE_BUDGET,
  ) {}

  observe(tensor: string, data: ArrayLike<number>, rows: number): void {
    let s = this.seen.get(tensor);
    if (!s) {
      const total = (data.length / Math.max(1, rows)) * this.expectedRows;
      s = { min: Infinity, max: -Infinity, sample: [], passed: 0, stride: Math.max(1, Math.ceil(total / this.budget)) };
      this.seen.set(tensor, s);
    }
    let { min, max } = s;
    for (let i = 0; i < data.length; i++) {
      const v = data[i];
      if (v < min) min = v;
      if (v > max) max = v;
    }
    s.min = min;
    s.max = max;
    for (let i = (s.stride - (s.passed % s.stride)) % s.stride; i < data.length; i += s.stride) s.sample.push(data[i]);
    s.passed += data.length;
  }

  tensors(): string[] {
    return [...this.seen.keys()];
  }

  range(tensor: string, method: RangeMethod, percentile = DEFAULT_PERCENTILE): [number, number] {
    const s = this.seen.get(tensor);
    if (!s) throw new Error(`quant: tensor ${tensor} was not observed`);
    if (method === 'minmax') return [s.min, s.max];
    return percentileRange(Float32Array.from(s.sample), percentile);
  }

  /** uint8 parameters of every observed tensor by `method`. */
  params(method: RangeMethod, percentile = DEFAULT_PERCENTILE): Map<string, QuantParams> {
    return new Map(
      this.tensors().map((t) => {
        const [lo, hi] = this.range(t, method, percentile);
        return [t, activationParams(lo, hi)];
      }),
    );
  }
}
