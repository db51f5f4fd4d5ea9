// Install step of branchynet: builds the optional oneDNN addon (native/onednn.cc)
// with node-gyp. Never fails the install: without libdnnl-dev (or a compiler)
// it prints one notice and exits 0, and the package runs on wasm.
// BRANCHYNET_SKIP_ONEDNN=1 skips the build.
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const howTo = 'apt-get install libdnnl-dev && npm rebuild branchynet (docs/onednn.md)';
const notice = (why) => {
  console.log(`branchynet: native oneDNN backend not built (${why}); the wasm backend will be used. To build it: ${howTo}`);
  process.exit(0);
};

if (process.env.BRANCHYNET_SKIP_ONEDNN === '1') notice('BRANCHYNET_SKIP_ONEDNN=1');
if (process.platform !== 'linux') notice(`unsupported platform ${process.platform}`);

// oneDNN's header: quick check so that a machine without it sees one line, not a compiler error.
const includeDirs = ['/usr/include', '/usr/local/include', '/opt/intel/oneapi/dnnl/latest/include',
  ...(process.env.CPATH ?? '').split(':').filter(Boolean)];
if (!includeDirs.some((d) => existsSync(join(d, 'oneapi', 'dnnl', 'dnnl.hpp')))) notice('oneDNN headers not found: libdnnl-dev is not installed');

// npm passes its own node-gyp; otherwise use the one bundled with npm next to this node.
const prefix = resolve(dirname(process.execPath), '..');
const gyp = [process.env.npm_config_node_gyp, join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')]
  .find((p) => p && existsSync(p));
if (gyp === undefined) notice('node-gyp not found');

// Use the headers installed with node (no download); else node-gyp's own cache / download.
const args = [gyp, 'rebuild', '--jobs=2'];
if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
const run = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', env: process.env });
if (run.status !== 0) {
  const log = join(tmpdir(), 'branchynet-onednn-build.log');
  writeFileSync(log, `${run.stdout ?? ''}\n${run.stderr ?? ''}\n${run.error ?? ''}`);
  notice(`node-gyp failed; log in ${log}`);
}
console.log('branchynet: built the native oneDNN backend (build/Release/branchynet_onednn.node)');
