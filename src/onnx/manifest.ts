import { shown, UserError } from '../errors.js';
import { checkManifestStructure } from './check_manifest.js';
import type { Dim } from './graph.js';

export const MANIFEST_FILE = 'manifest.json';

export const ONNX_FORMAT = 'branchynet-onnx';
export const ONNX_FORMAT_VERSION = 1;

/** One input or output of a stage graph. */
export interface IoSpec {
  name: string;
  /** Graph dimensions, batch ('N', dynamic) first. */
  shape: Dim[];
  /**
   * 'NHWC' (the image), 'NCHW' (a trunk activation) or 'NF' (features / class scores / one
   * entropy per row: [N] for the entropy). An 'NF' activation with `flattenedFrom` [h, w, c] holds
   * its features in (c, h, w) order.
   */
  layout: 'NHWC' | 'NCHW' | 'NF' | 'N';
  flattenedFrom?: [number, number, number];
}

export interface StageManifest {
  /** 1-based exit number this stage ends in. */
  exit: number;
  file: string;
  input: IoSpec;
  /** `activation` is the trunk activation handed on to the next stage (null at the last stage). */
  /** `entropy` is null in graphs exported with `entropy: false` (a runtime computing it itself). */
  outputs: { activation: IoSpec | null; logits: IoSpec; entropy: IoSpec | null };
  /** Layer kinds in graph order: the trunk part, then the exit head. */
  layers: { trunk: string[]; head: string[] };
  /** MACs per sample of this stage (trunk part + exit head) and of answering at this exit. */
  macs: number;
  cumulativeMacs: number;
  /**
   * The same stage, same inputs and outputs and results, for batches whose size is a multiple of
   * `rowMultiple` only (it reads each `rowMultiple` images as the channels of one): faster where
   * it applies. Absent where the stage has no such form; a runtime may always use `file`.
   */
  packed?: { file: string; rowMultiple: number };
}

/**
 * How raw pixels become the image the first stage takes: `(pixel / pixelRange - mean[c]) / std[c]`
 * for channel c (mean and std absent: `pixel / pixelRange`). Pixels are 0-255, channels last.
 */
export interface Preprocessing {
  pixelRange: number;
  mean?: number[];
  std?: number[];
}

export interface OnnxManifest {
  format: typeof ONNX_FORMAT;
  version: number;
  model: string;
  opset: number;
  irVersion: number;
  /** The public input: images, NHWC float32, values as the network was trained on (see `preprocessing`). */
  input: IoSpec;
  /** How raw 0-255 pixels become `input` (absent in older exports: pixel / 255). */
  preprocessing?: Preprocessing;
  classes: string[];
  /** Entropy threshold of each non-final exit (exit at k when entropy < thresholds[k]); null if uncalibrated. */
  thresholds: number[] | null;
  entropy: string;
  stages: StageManifest[];
  /** The trunk alone (the baseline), one stage taking the image. */
  baseline: StageManifest;
}

/** An export held in memory: the manifest and each file's bytes. */
export interface OnnxExport {
  manifest: OnnxManifest;
  files: Map<string, Uint8Array>;
}

/** Checks a parsed manifest.json (`where` names it in errors) and returns it typed. */
export function checkManifest(json: unknown, where: string): OnnxManifest {
  const m = json as Partial<OnnxManifest> | null;
  if (typeof m !== 'object' || m === null || Array.isArray(m))
    throw new UserError(`${where}: not a branchynet ONNX export (not a JSON object)`);
  if (m.format !== ONNX_FORMAT)
    throw new UserError(`${where}: not a branchynet ONNX export (format ${shown(m.format)})`);
  if (m.version !== ONNX_FORMAT_VERSION)
    throw new UserError(
      `${where}: export format version ${shown(m.version)} is not supported (this is ${ONNX_FORMAT_VERSION})`,
    );
  return checkManifestStructure(m, where);
}
