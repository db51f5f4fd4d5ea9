/**
 * The images quantisation may look at: the saved model's own validation split (the last
 * `validationSize` training images its training record names), normalised as in training. Never
 * the test set: the int8 thresholds and layer choices are then as untouched by it as the float ones.
 */
import type { Dataset } from '../data/dataset.js';
import { holdOutValidation } from '../data/dataset.js';
import { normalizeDataset } from '../data/transform.js';
import { UserError } from '../errors.js';
import type { ModelMeta } from '../model/io.js';
import { savedValidationSize } from '../model/io.js';

/** The validation split of `train` (the full training set, as loaded) that `model` was trained with. */
export function validationSplitOf(
  model: Pick<ModelMeta, 'training' | 'normalization'> & { dir: string },
  train: Dataset,
): Dataset {
  const size = savedValidationSize(model);
  if (size === undefined) {
    throw new UserError(
      `${model.dir}: model.json has no training record of its validation split (training.validationSize); quantisation calibrates on that split only`,
    );
  }
  if (size >= train.count)
    throw new UserError(`${model.dir}: validation split of ${size} images, but the training set has ${train.count}`);
  const { validation } = holdOutValidation(train, size);
  return model.normalization ? normalizeDataset(validation, model.normalization) : validation;
}
