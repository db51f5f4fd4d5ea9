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
import type { OrtModule, SessionOpener } from '../runtime/ort_session.js';
import { openPublicSession } from '../runtime/ort_session.js';

type NodeOrt = typeof import('onnxruntime-node');
type LoadedOrt = { ort: NodeOrt } | { error: string };
let ortModule: Promise<LoadedOrt> | null = null;

/**
 * Set to `0` to act as if onnxruntime-node were not installed (ONNX Runtime then runs on
 * onnxruntime-web): how a project whose `npm install` dropped it runs, e.g. in a test.
 */
export const NODE_ORT_ENV = 'BRANCHYNET_ONNXRUNTIME_NODE';

/**
 * Loads onnxruntime-node (an optional dependency) once. Resolves to the reason instead where it
 * is not installed, its native binding does not load on this platform, or `NODE_ORT_ENV` is 0.
 */
export async function loadOnnxRuntime(): Promise<LoadedOrt> {
  if (process.env[NODE_ORT_ENV] === '0') return { error: `turned off by ${NODE_ORT_ENV}=0` };
  ortModule ??= import('onnxruntime-node').then(
    (m) => {
      const ort = ((m as { default?: NodeOrt }).default ?? m) as NodeOrt;
      if (typeof ort.InferenceSession?.create !== 'function')
        return { error: 'onnxruntime-node has no InferenceSession' };
      return { ort };
    },
    (e: unknown) => ({ error: firstLine(e) }),
  );
  return ortModule;
}

function firstLine(e: unknown): string {
  return e instanceof Error ? e.message.split('\n')[0] : String(e);
}

type WebOrt = typeof import('onnxruntime-web');
let webModule: Promise<{ ort: WebOrt } | { error: string }> | null = null;

/**
 * Loads onnxruntime-web (WebAssembly; a dependency without an install script, so it is there
 * where npm dropped onnxruntime-node) once, on one thread as onnxruntime-node runs by default.
 */
export async function loadOnnxRuntimeWeb(): Promise<{ ort: WebOrt } | { error: string }> {
  webModule ??= import('onnxruntime-web').then(
    (m) => {
      const ort = ((m as { default?: WebOrt }).default ?? m) as WebOrt;
      if (typeof ort.InferenceSession?.create !== 'function')
        return { error: 'onnxruntime-web has no InferenceSession' };
      ort.env.wasm.numThreads = 1;
      return { ort };
    },
    (e: unknown) => ({ error: firstLine(e) }),
  );
  return webModule;
}

/** An ONNX Runtime module that loaded, its name and how to open sessions on it. */
export interface NodeOnnxRuntime {
  ort: OrtModule;
  name: 'onnxruntime-node' | 'onnxruntime-web';
  openSession: SessionOpener;
  /** Why onnxruntime-node does not run, where the module is onnxruntime-web. */
  fallbackReason?: string;
}

/**
 * The ONNX Runtime Node runs on: onnxruntime-node (native, the fastest per run), else
 * onnxruntime-web (WebAssembly; a few times slower per run, still faster than tfjs on these
 * networks), else the reasons neither loaded.
 */
export async function loadAnyOnnxRuntime(): Promise<NodeOnnxRuntime | { error: string }> {
  const native = await loadOnnxRuntime();
  if ('ort' in native) return { ort: native.ort, name: 'onnxruntime-node', openSession: openDirectSession };
  const web = await loadOnnxRuntimeWeb();
  if ('ort' in web)
    return { ort: web.ort, name: 'onnxruntime-web', openSession: openPublicSession, fallbackReason: native.error };
  return { error: `onnxruntime-node did not load (${native.error}), nor did onnxruntime-web (${web.error})` };
}

async function requireOrt(): Promise<NodeOnnxRuntime> {
  const loaded = await loadAnyOnnxRuntime();
  if ('error' in loaded) throw new UserError(`the ONNX runtime did not load: ${loaded.error}`);
  return loaded;
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
 * where it can (`OnnxRunnerOptions.direct`); on onnxruntime-web where onnxruntime-node is missing.
 */
export async function createOnnxRunner(source: NodeOnnxSource, options: OnnxRunnerOptions = {}): Promise<OnnxRunner> {
  const { ort, openSession } = await requireOrt();
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
  return OnnxRunner.create(ort, resolved, { openSession, ...options });
}

/**
 * Exports `net`'s stages in memory (no files) and loads them on onnxruntime-node. These graphs
 * leave the entropy out: the early-exit loop computes it from the logits, cheaper than six graph
 * nodes. Runs on onnxruntime-node, else onnxruntime-web.
 */
export async function onnxRunnerFromNet(net: BranchyNet, options: OnnxRunnerOptions = {}): Promise<OnnxRunner> {
  const { stages, files } = exportStages(net, 'stage', { entropy: false, imagePacking: options.imagePacking });
  return createOnnxRunner({ kind: 'stages', stages, files }, options);
}

export type RuntimeName = 'onnx' | 'tfjs';

/**
 * Picks the runtime: the requested one, or (none requested) ONNX Runtime where onnxruntime-node
 * or onnxruntime-web loads and `spec` (when given) can be exported, else tfjs, with a notice
 * line where it is not onnxruntime-node. An explicit 'onnx' that cannot be had is an error (its
 * `option` is 'runtime').
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
  const loaded = await loadAnyOnnxRuntime();
  if ('ort' in loaded) {
    if (loaded.fallbackReason) notice(fallbackNotice(loaded.fallbackReason));
    return 'onnx';
  }
  if (requested === 'onnx') throw new UserError(`'onnx' is not available: ${loaded.error}`, { option: 'runtime' });
  notice(`note: ${loaded.error}; using the tfjs runtime (${INSTALL_HINT})`);
  return 'tfjs';
}

const INSTALL_HINT =
  'install onnxruntime-node without its CUDA download: ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node';

/** The notice where ONNX Runtime runs on onnxruntime-web because onnxruntime-node did not load. */
export function fallbackNotice(reason: string): string {
  return `note: onnxruntime-node is not available (${reason}); using onnxruntime-web (WebAssembly, slower per run; ${INSTALL_HINT})`;
}
