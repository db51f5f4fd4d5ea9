import { UserError } from '../errors.js';
import { inNode } from '../platform.js';

/** Where a model's files come from: a directory (Node) or a URL (any platform with fetch). */
export interface FileSource {
  /** The file's location, for messages. */
  where(file: string): string;
  /** The file's bytes; null where it does not exist. */
  read(file: string): Promise<Uint8Array | null>;
  /** The directory in Node's file system, where the source is one. */
  readonly dir: string | null;
}

/** Imports a Node-only module of this package at run time, out of the sight of browser bundlers. */
export function importNodeOnly<T>(relative: string): Promise<T> {
  const url = new URL(relative, import.meta.url).href;
  return import(url) as Promise<T>;
}

function urlSource(base: URL): FileSource {
  const dirUrl = new URL(base.href.endsWith('/') ? base.href : base.href + '/');
  return {
    dir: null,
    where: (file) => new URL(file, dirUrl).href,
    async read(file) {
      const url = new URL(file, dirUrl);
      let response: Response;
      try {
        response = await fetch(url);
      } catch (e) {
        throw new UserError(`${url.href}: cannot fetch (${e instanceof Error ? e.message : String(e)})`);
      }
      if (response.status === 404) return null;
      if (!response.ok) throw new UserError(`${url.href}: HTTP ${response.status} ${response.statusText}`);
      return new Uint8Array(await response.arrayBuffer());
    },
  };
}

function directorySource(dir: string): FileSource {
  type Fs = typeof import('node:fs/promises');
  type Path = typeof import('node:path');
  const modules = Promise.all([importNodeOnly<Fs>('node:fs/promises'), importNodeOnly<Path>('node:path')]);
  let path: Path | undefined;
  void modules.then(
    ([, p]) => (path = p),
    () => {},
  );
  return {
    dir,
    where: (file) => (path ? path.join(dir, file) : `${dir}/${file}`),
    async read(file) {
      const [fs, p] = await modules;
      try {
        return new Uint8Array(await fs.readFile(p.join(dir, file)));
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') return null;
        throw new UserError(`${p.join(dir, file)}: cannot read (${code ?? String(e)})`);
      }
    },
  };
}

/**
 * The files at `location`: a URL (http:, https:, blob:, or file: in Node) or, in Node, a
 * directory path; in a page a relative location is a URL relative to the page.
 */
export function sourceOf(location: string | URL): FileSource {
  if (location instanceof URL) {
    if (location.protocol === 'file:' && inNode) return directorySource(decodeURIComponent(location.pathname));
    return urlSource(location);
  }
  if (typeof location !== 'string' || location.length === 0)
    throw new UserError(`expected a model directory or URL, got ${JSON.stringify(location)}`, { option: 'location' });
  if (/^[a-z][a-z0-9+.-]*:/i.test(location) && !/^[a-z]:[\\/]/i.test(location)) return sourceOf(new URL(location));
  if (inNode) return directorySource(location);
  const base = (globalThis as { location?: { href: string } }).location?.href;
  if (!base)
    throw new UserError(`${location}: not a URL, and there is no page to resolve it against`, { option: 'location' });
  return urlSource(new URL(location, base));
}
