import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname } from 'node:path';

/** What a URL path serves: a file on disk, or bytes made in memory. */
export type Served = { file: string } | { body: Uint8Array | string; type: string };

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.wasm': 'application/wasm',
  '.onnx': 'application/octet-stream',
  '.bin': 'application/octet-stream',
  '.png': 'image/png',
};

export interface RunningServer {
  url: string;
  close(): Promise<void>;
}

/**
 * Serves `route`'s answers over HTTP on `host` (loopback by default) and GET only. Pages are
 * cross-origin isolated (the two headers below), which lets onnxruntime-web run threads.
 */
export async function serve(
  route: (path: string) => Served | null,
  { host = '127.0.0.1', port = 0 }: { host?: string; port?: number } = {},
): Promise<RunningServer> {
  const server = createServer((req, res) => {
    const headers = {
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Embedder-Policy': 'require-corp',
      'Cache-Control': 'no-store',
    };
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
    const served = req.method === 'GET' || req.method === 'HEAD' ? route(path) : null;
    const fail = (status: number, text: string) => {
      res.writeHead(status, { ...headers, 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(text);
    };
    if (!served) return fail(404, `not found: ${path}`);
    const send = (body: Uint8Array | string, type: string) => {
      res.writeHead(200, { ...headers, 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if ('body' in served) return send(served.body, served.type);
    readFile(served.file).then(
      (bytes) => send(bytes, TYPES[extname(served.file)] ?? 'application/octet-stream'),
      () => fail(404, `not found: ${path}`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shownHost}:${address.port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
