import { UserError } from '../errors.js';

/** An `ImageData` as a page has it (canvas `getImageData`): RGBA bytes, row by row. */
export interface ImageDataLike {
  readonly data: Uint8ClampedArray;
  readonly width: number;
  readonly height: number;
}

/** A tfjs tensor, read through its public API only (no tfjs import here). */
export interface TensorLike {
  readonly shape: readonly number[];
  readonly dtype: string;
  dataSync(): ArrayLike<number>;
}

/** Raw pixels 0-255, channels last: one image, or several packed one after another. */
export type PixelArray = Uint8Array | Uint8ClampedArray | Float32Array | number[];

/** One image (or, for a packed array or a rank-4 tensor, several) as a user holds it. */
export type ImageInput = PixelArray | ImageDataLike | TensorLike;

function isImageData(x: unknown): x is ImageDataLike {
  const d = x as ImageDataLike;
  return (
    typeof d === 'object' &&
    d !== null &&
    d.data instanceof Uint8ClampedArray &&
    Number.isInteger(d.width) &&
    Number.isInteger(d.height)
  );
}

function isTensor(x: unknown): x is TensorLike {
  const t = x as TensorLike;
  return typeof t === 'object' && t !== null && Array.isArray(t.shape) && typeof t.dataSync === 'function';
}

function isPixelArray(x: unknown): x is PixelArray {
  return x instanceof Uint8Array || x instanceof Uint8ClampedArray || x instanceof Float32Array || Array.isArray(x);
}

const describe = (x: unknown): string =>
  x === null ? 'null' : typeof x !== 'object' ? typeof x : ((x as object).constructor?.name ?? 'an object');

/**
 * Converts an RGBA `ImageData` to `channels` (3: drop alpha; 1: luma, ITU-R BT.601 weights)
 * at the size the model takes; a picture of another size is an error (resize it on a canvas).
 */
function fromImageData(
  image: ImageDataLike,
  shape: readonly [number, number, number],
  out: Float32Array,
  at: number,
): void {
  const [h, w, c] = shape;
  if (image.width !== w || image.height !== h) {
    throw new UserError(
      `ImageData is ${image.width}x${image.height}; the model takes ${w}x${h} images (draw it onto a ${w}x${h} canvas first)`,
    );
  }
  const d = image.data;
  for (let p = 0; p < h * w; p++) {
    const r = d[4 * p];
    const g = d[4 * p + 1];
    const b = d[4 * p + 2];
    if (c === 1) out[at + p] = 0.299 * r + 0.587 * g + 0.114 * b;
    else if (c === 3) {
      out[at + 3 * p] = r;
      out[at + 3 * p + 1] = g;
      out[at + 3 * p + 2] = b;
    } else {
      for (let k = 0; k < c; k++) out[at + c * p + k] = d[4 * p + Math.min(k, 3)];
    }
  }
}

function checkValues(values: ArrayLike<number>, what: string): void {
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!(v >= 0 && v <= 255)) {
      throw new UserError(
        `${what}: value ${v} at index ${i} is not a pixel value in [0, 255] (pass raw pixels; the model normalises them itself)`,
      );
    }
  }
}

/**
 * Images as the model's runners take them: raw pixel values 0-255, float32, channels last, packed.
 * Takes one image or a packed array of several (`many`: how many images a packed array or tensor
 * may hold; false: exactly one), an array of images, ImageData or tfjs tensors.
 */
export function toPixels(
  input: ImageInput | readonly ImageInput[],
  shape: readonly [number, number, number],
  many: boolean,
): { pixels: Float32Array; count: number } {
  const size = shape[0] * shape[1] * shape[2];
  const expect = `[${shape.join(', ')}] (height, width, channels: ${size} values per image, 0-255)`;
  // A plain array of numbers is pixels; an array of objects (typed arrays, ImageData, tensors) is a list of images.
  const isList = Array.isArray(input) && input.length > 0 && typeof input[0] === 'object';
  const list: readonly unknown[] = isList ? (input as readonly unknown[]) : [input];
  if (!many && list.length !== 1)
    throw new UserError(`classify takes one image, got a list of ${list.length}; use classifyBatch`);
  const parts: { values: ArrayLike<number> | ImageDataLike; count: number }[] = [];
  for (const [i, item] of list.entries()) {
    const what = isList ? `image ${i}` : 'image';
    if (isImageData(item)) {
      parts.push({ values: item, count: 1 });
    } else if (isTensor(item)) {
      const dims = item.shape;
      const tail = dims.slice(-3);
      if (!(dims.length === 3 || dims.length === 4) || tail.join() !== shape.join()) {
        throw new UserError(
          `${what}: a tensor of shape [${dims.join(', ')}]; the model takes ${expect}, or [N, ...] of those`,
        );
      }
      if (dims.length === 4 && !many && dims[0] !== 1)
        throw new UserError(`${what}: a batch of ${dims[0]} images; use classifyBatch`);
      const values = item.dataSync();
      checkValues(values, what);
      parts.push({ values, count: dims.length === 4 ? dims[0] : 1 });
    } else if (isPixelArray(item)) {
      if (item.length === 0 || item.length % size !== 0) {
        throw new UserError(
          `${what}: ${item.length} values; the model takes ${expect}${many ? ', or N such images packed' : ''}`,
        );
      }
      const count = item.length / size;
      if (!many && count !== 1)
        throw new UserError(`${what}: ${item.length} values hold ${count} images; use classifyBatch`);
      if (!(item instanceof Uint8Array || item instanceof Uint8ClampedArray)) checkValues(item, what);
      parts.push({ values: item, count });
    } else {
      throw new UserError(
        `${what}: ${describe(item)} is not an image; pass pixels (Uint8Array, Uint8ClampedArray, Float32Array), ImageData or a tfjs tensor`,
      );
    }
  }
  const count = parts.reduce((n, p) => n + p.count, 0);
  const pixels = new Float32Array(count * size);
  let at = 0;
  for (const part of parts) {
    if (isImageData(part.values)) fromImageData(part.values, shape, pixels, at);
    else pixels.set(part.values as ArrayLike<number>, at);
    at += part.count * size;
  }
  return { pixels, count };
}
