import type { Shape } from '../spec.js';

/** Checks a pooling window against its input; the stride defaults to the window size. */
export function checkPoolWindow(
  kind: string,
  size: number,
  strideOption: number | undefined,
  input: Shape,
  pad: number,
): { h: number; w: number; c: number; stride: number } {
  if (input.length !== 3) throw new Error(`${kind}: expects an [h, w, c] input, got [${input.join(', ')}]`);
  const stride = strideOption ?? size;
  if (!Number.isInteger(size) || size < 1) throw new Error(`${kind}: size must be an integer >= 1, got ${size}`);
  if (!Number.isInteger(stride) || stride < 1)
    throw new Error(`${kind}: stride must be an integer >= 1, got ${stride}`);
  if (!Number.isInteger(pad) || pad < 0) throw new Error(`${kind}: pad must be an integer >= 0, got ${pad}`);
  const [h, w, c] = input;
  if (h + 2 * pad < size || w + 2 * pad < size) {
    throw new Error(
      `${kind}: window ${size} is larger than the ${pad > 0 ? 'padded ' : ''}input ${h + 2 * pad}x${w + 2 * pad}`,
    );
  }
  return { h, w, c, stride };
}
