import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CIFAR10_DIR_ENV, CIFAR10_FILES } from '../data/cifar10.js';

/** Why a test that needs the real CIFAR-10 files skips. */
export const NO_CIFAR = `no CIFAR-10 files: set ${CIFAR10_DIR_ENV} to their directory`;

/**
 * The real CIFAR-10 files for tests: the directory $BRANCHYNET_CIFAR10_DIR names, where it holds
 * them (CI points it at its copy); undefined otherwise, and the tests that need them skip.
 */
export function cifarTestDir(): string | undefined {
  const dir = process.env[CIFAR10_DIR_ENV];
  return dir && existsSync(join(dir, CIFAR10_FILES.test)) ? dir : undefined;
}
