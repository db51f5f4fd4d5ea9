import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';

export type BackendName = 'wasm' | 'cpu';

/** Selects and initialises a tfjs backend. Placeholder: the engine module extends this. */
export async function initBackend(name: BackendName = 'wasm'): Promise<BackendName> {
  const ok = await tf.setBackend(name);
  if (!ok) throw new Error(`initBackend: backend '${name}' failed to initialise`);
  await tf.ready();
  return name;
}
