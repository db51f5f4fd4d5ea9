/**
 * Multiply-accumulate bookkeeping of an early-exit network, from the per-block counts that the
 * spec analysis gives (`analyseSpec`, model.json's `macs`, an export manifest's stages). Every
 * figure of cost (calibration, reports, exports, `info`) comes from here.
 */

/** MACs per sample of each trunk segment and of each exit head (the last head is empty). */
export interface BlockMacs {
  segments: readonly number[];
  heads: readonly number[];
}

/** MACs per sample of answering at each exit: every segment and head up to and including it. */
export function cumulativeExitMacs(macs: BlockMacs): number[] {
  let total = 0;
  return macs.segments.map((s, k) => (total += s + macs.heads[k]));
}

/** MACs per sample of the trunk alone: the network without its branches (the baseline's cost). */
export function trunkMacs(macs: BlockMacs): number {
  return macs.segments.reduce((a, b) => a + b, 0);
}

/** Expected MACs per sample when `fractions[k]` of the samples answer at exit k (0-based). */
export function expectedMacs(fractions: readonly number[], perExit: readonly number[]): number {
  return fractions.reduce((sum, f, k) => sum + f * perExit[k], 0);
}
