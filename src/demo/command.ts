import { UserError } from '../errors.js';
import { startDemo } from './demo_server.js';

/** Parses --port: an integer 0-65535 (0: any free port). */
export function parsePort(text: string | undefined): number {
  if (text === undefined) return 0;
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65535) throw new UserError(`--port: expected an integer 0-65535, got '${text}'`);
  return port;
}

/**
 * `branchynet demo`: serves the page until the process is interrupted (Ctrl-C), then closes the
 * server and removes the temporary export.
 */
export async function runDemo(
  values: { model?: string; port?: string; host?: string },
  log: (line: string) => void,
): Promise<void> {
  if (!values.model) throw new UserError('--model DIR is required (a model directory or an export directory)');
  const demo = await startDemo({ model: values.model, port: parsePort(values.port), host: values.host }, log);
  log(
    `demo of ${values.model}${demo.testSet ? ` with ${demo.testSet.labels.length} ${demo.testSet.dataset} test images` : ''}; Ctrl-C stops it`,
  );
  process.stdout.write(`${demo.url}\n`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await demo.close();
}
