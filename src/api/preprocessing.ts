import { UserError } from '../errors.js';
import type { Preprocessing } from '../onnx/manifest.js';

export type { Preprocessing };

/** Raw pixels as every data set loader of ours reads them: 0-255, divided by 255 into [0, 1]. */
export const PIXEL_RANGE = 255;

/** The preprocessing of a model trained on [0, 1] images, normalised per channel where `stats` are given. */
export function preprocessingOf(stats: { mean: number[]; std: number[] } | null | undefined): Preprocessing {
  return stats ? { pixelRange: PIXEL_RANGE, mean: stats.mean, std: stats.std } : { pixelRange: PIXEL_RANGE };
}

export function checkPreprocessing(p: Preprocessing, channels: number, where: string): void {
  if (!(p.pixelRange > 0)) throw new UserError(`${where}: preprocessing pixelRange must be > 0, got ${p.pixelRange}`);
  if ((p.mean === undefined) !== (p.std === undefined))
    throw new UserError(`${where}: preprocessing needs both mean and std, or neither`);
  if (p.mean && p.std) {
    if (p.mean.length !== channels || p.std.length !== channels) {
      throw new UserError(
        `${where}: ${channels} channels need ${channels} means and stds, got ${p.mean.length} and ${p.std.length}`,
      );
    }
    if (p.std.some((s) => !(s > 0)) || p.mean.some((m) => !Number.isFinite(m)))
      throw new UserError(`${where}: preprocessing means must be finite and stds > 0`);
  }
}

/**
 * `pixels` (0-255, channels last, `channels` per pixel) as the network takes them, in place. The
 * same float32 steps as the data loaders and `normalizeDataset`, so that an image gives the same
 * answer here as in evaluation.
 */
export function applyPreprocessing(pixels: Float32Array, channels: number, p: Preprocessing): Float32Array {
  for (let i = 0; i < pixels.length; i++) pixels[i] = pixels[i] / p.pixelRange;
  if (!p.mean || !p.std) return pixels;
  const mean = p.mean;
  const scale = p.std.map((s) => 1 / s);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (pixels[i] - mean[i % channels]) * scale[i % channels];
  return pixels;
}
