import { BoltkvError } from '../errors.ts';

/**
 * Typed errors of the watch layer. Callers branch on `code`; messages may change.
 */
export type WatchErrorCode =
  /** The request is malformed (bad key type, empty key, negative revision, unknown filter…). */
  | 'ERR_INVALID_WATCH_REQUEST'
  /** The request has a field the watch layer does not know; `field` names it. */
  | 'ERR_UNKNOWN_FIELD'
  /** `watchId` is already in use on the stream (etcd: "mvcc: duplicate watch ID provided on the WatchStream"). */
  | 'ERR_DUPLICATE_WATCH_ID'
  /** `rangeEnd` sorts at or before `key`, so the watch could never match (etcd: "watcher range is empty"). */
  | 'ERR_EMPTY_WATCH_RANGE'
  /** The hub or the stream was closed (the code every layer uses for a closed handle). */
  | 'ERR_CLOSED';

export class WatchError extends BoltkvError {
  declare readonly code: WatchErrorCode;
  /** With ERR_UNKNOWN_FIELD: the offending field. */
  readonly field: string | undefined;
  constructor(code: WatchErrorCode, message: string, options?: { cause?: unknown; field?: string }) {
    super(code, message, options);
    this.name = 'WatchError';
    this.field = options?.field;
  }
}
