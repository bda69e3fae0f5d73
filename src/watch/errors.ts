import { BoltkvError } from '../errors.ts';

/**
 * Typed errors of the watch layer. Callers branch on `code`; messages may change.
 */
export type WatchErrorCode =
  /** The request is malformed (bad key type, empty key, negative revision, unknown filter…). */
  | 'ERR_INVALID_WATCH_REQUEST'
  /** `rangeEnd` sorts at or before `key`, so the watch could never match (etcd: "watcher range is empty"). */
  | 'ERR_EMPTY_WATCH_RANGE'
  /** The hub or the stream was closed. */
  | 'ERR_WATCH_CLOSED';

export class WatchError extends BoltkvError {
  declare readonly code: WatchErrorCode;
  constructor(code: WatchErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'WatchError';
  }
}
