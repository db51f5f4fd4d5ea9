import { UserError } from '../errors.js';
/**
 * An image classification set held in memory: images as float32 NHWC, scaled to [0, 1] (or
 * normalised), labels as class indices.
 */
export interface Dataset {
  images: Float32Array;
  labels: Uint8Array;
  count: number;
  /** [height, width, channels] of one image. */
  shape: [number, number, number];
  classes: string[];
}

export interface Splits {
  train: Dataset;
  validation: Dataset;
  test: Dataset;
}

export function imageSize(d: Pick<Dataset, 'shape'>): number {
  return d.shape[0] * d.shape[1] * d.shape[2];
}

/** Rows [start, end) of a data set, sharing memory with it. */
export function sliceDataset(d: Dataset, start: number, end: number): Dataset {
  const size = imageSize(d);
  return {
    ...d,
    images: d.images.subarray(start * size, end * size),
    labels: d.labels.subarray(start, end),
    count: end - start,
  };
}

/** The first `limit` rows (all when limit is undefined or larger). */
export function headDataset(d: Dataset, limit: number | undefined): Dataset {
  return limit === undefined || limit >= d.count ? d : sliceDataset(d, 0, limit);
}

/** Holds the last `validationSize` training images out as the validation split. */
export function holdOutValidation(train: Dataset, validationSize: number): { train: Dataset; validation: Dataset } {
  if (!Number.isInteger(validationSize) || validationSize < 1 || validationSize >= train.count) {
    throw new UserError(
      `must be an integer in [1, ${train.count - 1}] (below the ${train.count} training images), got ${validationSize}`,
      {
        option: 'validationSize',
      },
    );
  }
  const cut = train.count - validationSize;
  return { train: sliceDataset(train, 0, cut), validation: sliceDataset(train, cut, train.count) };
}
