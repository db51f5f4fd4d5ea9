import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openDirectSession } from '../compat.js';
import { oneLine, UserError } from '../errors.js';
import type { BranchyNet } from '../model/network.js';
import type { BranchyNetSpec } from '../model/spec.js';
import { exportStages } from '../onnx/export.js';
import { unexportableKinds } from '../onnx/layers.js';
import type { OnnxManifest } from '../onnx/manifest.js';
import { checkManifest, MANIFEST_FILE } from '../onnx/manifest.js';
import type { OnnxRunnerOptions, OnnxSource } from '../runtime/onnx_runner.js';
import { OnnxRunner } from '../runtime/onnx_runner.js';

type NodeOrt = typeof import('onnxruntime-node');
type LoadedOrt = { ort: NodeOrt } | { error: string };
let ortModule: Promise<LoadedOrt> | null = null;

/**
 * Loads onnxruntime-node (an optional dependency) once. Resolves to the reason instead where it
 * is not installed or its native binding does not load on this platform.
 */
export async function loadOnnxRuntime(): Promise<LoadedOrt> {
  ortModule ??= import('onnxruntime-node').then(
    (m) => {
      const ort = ((m as { default?: NodeOrt }).default ?? m) as NodeOrt;
      if (typeof ort.InferenceSession?.create !== 'function')
        return { error: 'onnxruntime-node has no InferenceSession' };
      return { ort };
    },
    (e: unknown) => ({ error: e instanceof Error ? e.message.split('\n')[0] : String(e) }),
  );
  return ortModule;
}

async function requireOrt(): Promise<NodeOrt> {
  const loaded = await loadOnnxRuntime();
  if ('error' in loaded)
    throw new UserError(`the ONNX runtime needs onnxruntime-node, which did not load: ${loaded.error}`);
  return loaded.ort;
}

/** Reads and checks an export directory's manifest. */
export function readManifest(dir: string): OnnxManifest {
  const path = join(dir, MANIFEST_FILE);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(
      code === 'ENOENT'
        ? `${path}: no such file; expected a directory written by 'branchynet export'`
        : `${path}: ${oneLine((e as Error).message)}`,
    );
  }
  return checkManifest(json, path);
}

/** An export directory (its early-exit stages, or its baseline), or any in-memory source. */
export type NodeOnnxSource = OnnxSource | { kind: 'dir'; dir: string; which?: 'early' | 'baseline' };

/**
 * An `OnnxRunner` on onnxruntime-node, its sessions running on the native binding directly
 * where it can (`OnnxRunnerOptions.direct`).
 */
export async function createOnnxRunner(source: NodeOnnxSource, options: OnnxRunnerOptions = {}): Promise<OnnxRunner> {
  const ort = await requireOrt();
  let resolved: OnnxSource;
  if (source.kind === 'dir') {
    const manifest = readManifest(source.dir);
    resolved = {
      kind: 'files',
      stages: source.which === 'baseline' ? [manifest.baseline] : manifest.stages,
      read: (file) => {
        try {
          return readFileSync(join(source.dir, file));
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code ?? String(e);
          throw new UserError(
            `${join(source.dir, file)}: cannot read (${code}); ${join(source.dir, MANIFEST_FILE)} names it`,
          );
        }
      },
      where: (file) => join(source.dir, file),
    };
  } else {
    resolved = source;
  }
  return OnnxRunner.create(ort, resolved, { openSession: openDirectSession, ...options });
}

/**
 * Exports `net`'s stages in memory (no files) and loads them on onnxruntime-node. These graphs
 * leave the entropy out: the early-exit loop computes it from the logits, cheaper than six graph
 * nodes.
 */
export async function onnxRunnerFromNet(net: BranchyNet, options: OnnxRunnerOptions = {}): Promise<OnnxRunner> {
  const { stages, files } = exportStages(net, 'stage', { entropy: false, imagePacking: options.imagePacking });
  return createOnnxRunner({ kind: 'stages', stages, files }, options);
}

export type RuntimeName = 'onnx' | 'tfjs';

/**
 * Picks the runtime: the requested one, or (none requested) ONNX Runtime where onnxruntime-node
 * loads and `spec` (when given) can be exported, else tfjs with one notice line. An explicit
 * 'onnx' that cannot be had is an error (its `option` is 'runtime').
 */
export async function chooseRuntime(
  requested: RuntimeName | 'auto' | undefined,
  notice: (line: string) => void = () => {},
  spec?: BranchyNetSpec,
): Promise<RuntimeName> {
  if (requested === 'tfjs') return 'tfjs';
  const missing = spec ? unexportableKinds(spec) : [];
  if (missing.length > 0) {
    const why = `${spec!.name} has layers the ONNX exporter does not handle yet (${missing.join(', ')})`;
    if (requested === 'onnx') throw new UserError(`'onnx' cannot run it: ${why}`, { option: 'runtime' });
    notice(`note: ${why}; using the tfjs runtime`);
    return 'tfjs';
  }
  const loaded = await loadOnnxRuntime();
  if ('ort' in loaded) return 'onnx';
  if (requested === 'onnx')
    throw new UserError(`'onnx' is not available: onnxruntime-node did not load: ${loaded.error}`, {
      option: 'runtime',
    });
  notice(
    `note: onnxruntime-node is not available (${loaded.error}); using the tfjs runtime (install it without its CUDA download: ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node)`,
  );
  return 'tfjs';
}
