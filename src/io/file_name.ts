/**
 * Whether `name`, read from a file (model.json, an export manifest), is a plain file name: no
 * directory part (nothing outside the directory that names it is read), no control characters,
 * at most 255 characters.
 */
export function isPlainFileName(name: unknown): name is string {
  // eslint-disable-next-line no-control-regex -- control characters are what this rejects or escapes
  return typeof name === 'string' && /^[^/\\\u0000-\u001f]{1,255}$/.test(name) && name !== '.' && name !== '..';
}
