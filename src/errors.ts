/**
 * An error caused by the user's input (a bad file, flag or model directory). The CLI prints its
 * message as one line, without a stack trace; every other error is a bug and keeps its stack.
 */
export class UserError extends Error {
  override name = 'UserError';
}
