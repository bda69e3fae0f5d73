import { BoltkvError } from '../errors.ts';

export type CliErrorCode =
  | 'ERR_USAGE'
  | 'ERR_FILE_NOT_FOUND'
  | 'ERR_NOT_FOUND'
  | 'ERR_CORRUPT'
  | 'ERR_INVALID_INPUT'
  | 'ERR_PARTIAL_FAILURE'
  | 'ERR_UNSUPPORTED';

/** Errors of the command line itself: bad arguments, missing files or keys, a failed check. */
export class CliError extends BoltkvError {
  declare readonly code: CliErrorCode;
  constructor(code: CliErrorCode, message: string) {
    super(code, message);
    this.name = 'CliError';
  }
}

export const usage = (message: string): CliError => new CliError('ERR_USAGE', message);
