import { BoltkvError, Panic, invariant } from '../errors.ts';

export { Panic, invariant };

/**
 * Typed errors of the engine. Every error a caller can provoke carries a stable `code`, so callers
 * branch on `err.code` rather than on message text. `Panic` is reserved for our own broken
 * invariants; seeing one is a bug in boltkv.
 */
export type BoltErrorCode =
  | 'ERR_CLOSED'
  | 'ERR_DATABASE_READ_ONLY'
  | 'ERR_TX_CLOSED'
  | 'ERR_TX_NOT_WRITABLE'
  | 'ERR_TX_MANAGED'
  | 'ERR_WRITER_BUSY'
  | 'ERR_BUCKET_EXISTS'
  | 'ERR_BUCKET_NOT_FOUND'
  | 'ERR_BUCKET_NAME_REQUIRED'
  | 'ERR_INCOMPATIBLE_VALUE'
  | 'ERR_KEY_REQUIRED'
  | 'ERR_KEY_TOO_LARGE'
  | 'ERR_VALUE_TOO_LARGE'
  | 'ERR_INVALID_KEY_TYPE'
  | 'ERR_INVALID_VALUE_TYPE'
  | 'ERR_INVALID_OPTION'
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_INVALID_FILE'
  | 'ERR_CHECKSUM'
  | 'ERR_VERSION_MISMATCH'
  | 'ERR_LOCK_TIMEOUT'
  | 'ERR_CORRUPT_PAGE'
  | 'ERR_IO'
  | 'ERR_ABORTED'
  | 'ERR_PANIC';

export class BoltError extends BoltkvError {
  declare readonly code: BoltErrorCode;
  constructor(code: BoltErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'BoltError';
  }
}
