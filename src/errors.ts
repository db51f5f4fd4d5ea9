/**
 * An error caused by the user's input (a bad file, option, image or model directory). Its message
 * is one line that says what was wrong and what is expected. `option`, when set, names the API
 * option at fault (e.g. 'thresholds', 'batchSize') and the message reads `option: detail`, so that
 * a front end can put its own name for the option before `detail` (the CLI names its flag). The
 * CLI prints the message as one line, without a stack trace; every other error is a bug and keeps
 * its stack.
 */
export class UserError extends Error {
  override name = 'UserError';
  readonly option?: string;
  /** The message without the option's name. */
  readonly detail: string;

  constructor(detail: string, options: { option?: string; cause?: unknown } = {}) {
    super(
      options.option === undefined ? detail : `${options.option}: ${detail}`,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.detail = detail;
    if (options.option !== undefined) this.option = options.option;
  }
}

/**
 * A value read from a file, as short one-line text for an error message: JSON, control
 * characters escaped, cut at `max` characters (a corrupt file may hold a huge array or binary).
 */
export function shown(value: unknown, max = 40): string {
  let text: string;
  try {
    text = value === undefined ? '(missing)' : (JSON.stringify(value) ?? String(value));
  } catch {
    text = String(value);
  }
  return oneLine(text.length > max ? `${text.slice(0, max)}...` : text);
}

/** Another library's error message (a JSON parser's, ONNX Runtime's) as one line of at most `max` characters. */
export function oneLine(text: string, max = 300): string {
  // eslint-disable-next-line no-control-regex -- control characters are what this rejects or escapes
  const line = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) =>
    c === '\n' ? '\\n' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  return line.length > max ? `${line.slice(0, max)}...` : line;
}
