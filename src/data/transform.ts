import type { Rng } from '../rng.js';
import type { Dataset } from './dataset.js';

/**
 * Per-channel statistics of a training split, JSON-serialisable: store them with the model so
 * evaluation normalises exactly as training did.
 */
export interface ChannelStats {
  mean: number[];
  /** Population standard deviation (over every pixel of every image). */
  std: number[];
}

/** Mean and standard deviation of each channel over all pixels of `data` (accumulated in float64). */
export function channelStats(data: Dataset): ChannelStats {
  const c = data.shape[2];
  const sum = new Float64Array(c);
  const sumSq = new Float64Array(c);
  const images = data.images;
  for (let i = 0; i < images.length; i++) {
    const v = images[i];
    sum[i % c] += v;
    sumSq[i % c] += v * v;
  }
  const n = images.length / c;
  if (n === 0) throw new RangeError('channelStats: empty data set');
  const mean = Array.from(sum, (s) => s / n);
  const std = Array.from(sumSq, (s, k) => Math.sqrt(Math.max(s / n - mean[k] * mean[k], 0)));
  return { mean, std };
}

/** A copy of `data` with every channel normalised: (x - mean) / std. */
export function normalizeDataset(data: Dataset, stats: ChannelStats): Dataset {
  const c = data.shape[2];
  if (stats.mean.length !== c || stats.std.length !== c) {
    throw new RangeError(
      `normalizeDataset: ${c} channels need ${c} means and stds, got ${stats.mean.length} and ${stats.std.length}`,
    );
  }
  if (stats.std.some((s) => !(s > 0)))
    throw new RangeError(`normalizeDataset: standard deviations must be > 0, got ${stats.std.join(', ')}`);
  const scale = stats.std.map((s) => 1 / s);
  const images = new Float32Array(data.images.length);
  for (let i = 0; i < images.length; i++) images[i] = (data.images[i] - stats.mean[i % c]) * scale[i % c];
  return { ...data, images };
}

export interface AugmentOptions {
  /** Random crop after padding each side with this many zero pixels (4 in He et al.); 0: none. */
  cropPad: number;
  /** Mirror left-right with probability 1/2. */
  flip: boolean;
}

/** Augmentation is off by default (the reference code trains without it). */
export const NO_AUGMENTATION: AugmentOptions = { cropPad: 0, flip: false };

/** The standard CIFAR augmentation of He et al. 2016. */
export const CIFAR_AUGMENTATION: AugmentOptions = { cropPad: 4, flip: true };

/** Transforms a training batch in place: `count` NHWC images at the start of `images`. */
export type BatchTransform = (images: Float32Array, count: number, rng: Rng) => void;

/**
 * The augmentation as a per-batch transform, or null when `options` turn everything off.
 * Each image draws its own crop offset (dy, dx in [-pad, pad]) and flip from `rng`, so a batch
 * transformed with an Rng seeded from (seed, phase, epoch, batch) is reproducible across resumes.
 * Padding is zeros of the data as fed: apply it after normalisation and the pads are the channel
 * means, before and they are black.
 */
export function makeAugmentation(
  shape: [number, number, number],
  options: AugmentOptions = NO_AUGMENTATION,
): BatchTransform | null {
  const { cropPad, flip } = options;
  if (!Number.isInteger(cropPad) || cropPad < 0)
    throw new RangeError(`makeAugmentation: cropPad must be an integer >= 0, got ${cropPad}`);
  if (cropPad === 0 && !flip) return null;
  const [h, w, c] = shape;
  const size = h * w * c;
  const scratch = new Float32Array(size);
  return (images, count, rng) => {
    for (let n = 0; n < count; n++) {
      const dy = cropPad > 0 ? rng.int(2 * cropPad + 1) - cropPad : 0;
      const dx = cropPad > 0 ? rng.int(2 * cropPad + 1) - cropPad : 0;
      const mirror = flip && rng.next() < 0.5;
      if (dy === 0 && dx === 0 && !mirror) continue;
      const img = images.subarray(n * size, (n + 1) * size);
      scratch.set(img);
      for (let i = 0; i < h; i++) {
        const si = i + dy;
        for (let j = 0; j < w; j++) {
          // Output (i, j) is the padded image at (i + pad + dy, j' + pad + dx), j' mirrored when flipping.
          const sj = (mirror ? w - 1 - j : j) + dx;
          const out = (i * w + j) * c;
          if (si < 0 || si >= h || sj < 0 || sj >= w) {
            img.fill(0, out, out + c);
          } else {
            const from = (si * w + sj) * c;
            for (let k = 0; k < c; k++) img[out + k] = scratch[from + k];
          }
        }
      }
    }
  };
}
