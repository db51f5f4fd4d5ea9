import { loadOneDnnAddon } from '../engine/onednn/addon.js';

/** Set (to 1) where the oneDNN addon must be there: CI's pass with the addon built (.ci/run). */
export const REQUIRE_ONEDNN_ENV = 'BRANCHYNET_REQUIRE_ONEDNN';

/**
 * The `skip` option of the tests that need the oneDNN addon: false when it loads, else a message
 * saying why, so that a machine without libdnnl-dev passes with those tests skipped. With
 * BRANCHYNET_REQUIRE_ONEDNN=1 a missing addon throws instead, failing the test file: there the
 * native tests cannot be skipped unseen.
 */
export function oneDnnSkip(): string | false {
  const { addon, reason } = loadOneDnnAddon();
  if (addon !== null) return false;
  if (process.env[REQUIRE_ONEDNN_ENV] === '1') {
    throw new Error(`${REQUIRE_ONEDNN_ENV}=1, but the onednn addon is unavailable (${reason}); see docs/onednn.md`);
  }
  return `onednn addon unavailable (${reason}); see docs/onednn.md`;
}
