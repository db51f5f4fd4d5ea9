/**
 * An error caused by the user's input (a bad file, flag or model directory). The CLI prints its
 * message as one line, without a stack trace; every other error is a bug and keeps its stack.
 */
export class UserError extends Error {
  override name = 'UserError';
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
  const escape = (c: string) => (c === '\n' ? '\\n' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  const line = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, escape);
  return line.length > max ? `${line.slice(0, max)}...` : line;
}
