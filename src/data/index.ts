import { UserError } from '../errors.js';
import { loadCifar10 } from './cifar10.js';
import type { Dataset } from './dataset.js';
import { loadMnist } from './mnist.js';

export const DATASETS = ['mnist', 'cifar10'] as const;
export type DatasetName = (typeof DATASETS)[number];

/** Loads a data set by name from `dataDir` (or its built-in location). */
export function loadDataset(name: string, dataDir?: string): { train: Dataset; test: Dataset } {
  switch (name) {
    case 'mnist':
      return loadMnist(dataDir);
    case 'cifar10':
      return loadCifar10(dataDir);
    default:
      throw new UserError(`unknown dataset '${name}' (known: ${DATASETS.join(', ')})`);
  }
}

export { holdOutValidation, headDataset, type Dataset, type Splits } from './dataset.js';

/**
 * Data sets whose inputs are normalised per channel with statistics of the training split (CIFAR); MNIST stays in
 * [0, 1] as in the paper.
 */
export function normalisesInputs(name: string): boolean {
  return name === 'cifar10';
}
