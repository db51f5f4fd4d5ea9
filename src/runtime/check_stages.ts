import type { Tensor } from 'onnxruntime-common';
import { oneLine, shown, UserError } from '../errors.js';
import type { IoSpec, StageManifest } from '../onnx/manifest.js';
import type { OrtModule, OrtSession } from './ort_session.js';

/** What `checkStageRuns` needs of a loaded stage: its sessions and the names it feeds and fetches. */
export interface LoadedStage {
  session: OrtSession;
  /** The stage's packed graph and its row multiple, where it has one (and packing is on). */
  packed: { session: OrtSession; rows: number } | null;
  input: string;
  next: string | null;
  logits: string;
  /** Null when the graph does not compute it: the early-exit loop then does, from the logits. */
  entropy: string | null;
}

function dimsOf(io: IoSpec, rows: number): number[] {
  return [rows, ...(io.shape.slice(1) as number[])];
}

/**
 * Runs every loaded stage graph (and its packed form) once on zeros of the input shape its manifest
 * declares, and checks the outputs against the manifest: a graph that ONNX Runtime loads can still
 * be corrupt (renamed inputs, changed sizes, NaN weights). A UserError naming the file otherwise;
 * `fileName` gives the name a stage's file is reported under.
 */
export async function checkStageRuns(
  ort: OrtModule,
  loaded: readonly LoadedStage[],
  manifests: readonly StageManifest[],
  fileName: (file: string) => string,
): Promise<void> {
  for (const [k, stage] of loaded.entries()) {
    const m = manifests[k];
    const runs = [{ session: stage.session, file: m.file, rows: 1 }];
    if (stage.packed && m.packed)
      runs.push({ session: stage.packed.session, file: m.packed.file, rows: stage.packed.rows });
    for (const { session, file, rows } of runs) {
      const inputDims = dimsOf(m.input, rows);
      const bad = (what: string) =>
        new UserError(`${fileName(file)}: ${what}; the graph does not match manifest.json (a corrupt export?)`);
      const size = inputDims.reduce((a, b) => a * b, 1);
      let outputs: Record<string, Tensor>;
      try {
        outputs = await session.run({ [stage.input]: new ort.Tensor('float32', new Float32Array(size), inputDims) });
      } catch (e) {
        throw bad(
          `does not run on a [${inputDims}] input ${shown(stage.input)} ` +
            `(${oneLine(e instanceof Error ? e.message : String(e))})`,
        );
      }
      const expect = (name: string | null, io: IoSpec | null) => {
        if (name === null || io === null) return;
        const got = outputs[name];
        const want = dimsOf(io, rows);
        if (!got || got.type !== 'float32' || got.dims.join() !== want.join()) {
          throw bad(
            `gives output ${shown(name)} as ${got ? `${got.type} [${got.dims}]` : 'nothing'}, expected float32 [${want}]`,
          );
        }
      };
      expect(stage.next, m.outputs.activation);
      expect(stage.logits, m.outputs.logits);
      expect(stage.entropy, m.outputs.entropy);
      const logits = outputs[stage.logits].data as Float32Array;
      if (!logits.every(Number.isFinite))
        throw bad('gives non-finite class scores for a blank image (corrupt weights)');
    }
  }
}
