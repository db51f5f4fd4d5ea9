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
    super(options.option === undefined ? detail : `${options.option}: ${detail}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.detail = detail;
    if (options.option !== undefined) this.option = options.option;
  }
}
