/**
 * Public shapes of the watch layer. They mirror etcd's WatchCreateRequest / WatchResponse with
 * camelCase fields, so code written against etcd's semantics reads the same here.
 */
import type { Event } from '../mvcc/types.ts';

/** Keys may be raw bytes or a string, which is encoded as UTF-8. */
export type WatchKey = Uint8Array | string;

/** etcd's watch filters: NOPUT drops PUT events, NODELETE drops DELETE events. */
export type WatchFilter = 'NOPUT' | 'NODELETE';

export interface WatchRequest {
  /** The key watched, or the start of the range when `rangeEnd` is given. */
  key: WatchKey;
  /** etcd's range_end rules: absent/empty = only `key`; `"\0"` = every key >= `key`; else `[key, rangeEnd)`. */
  rangeEnd?: WatchKey;
  /** First revision reported (inclusive). 0 or absent = the next revision to be committed. */
  startRevision?: number;
  /** Attach each event's previous key-value. */
  prevKv?: boolean;
  filters?: WatchFilter[];
  /** Ask for periodic progress notifications (see WatchHubOptions.progressIntervalMs). */
  progressNotify?: boolean;
  /** Aborting cancels the watch, exactly like cancel(). */
  signal?: AbortSignal;
  /**
   * Only on `WatchStream.create`: the id to give this watch (etcd's client-chosen `watch_id`; any
   * safe integer but 0). 0 or absent picks the lowest free id counting up from the last one given.
   */
  watchId?: number;
  /**
   * Split responses that reach the size limit (`WatchHubOptions.maxRequestBytes` + 512 KiB, as
   * etcd does) into pieces, all but the last with `fragment: true`. Events are never split.
   */
  fragment?: boolean;
}

export interface WatchResponseHeader {
  /**
   * On event and progress responses: every event of this watch up to this revision has been
   * delivered (with this response at the latest), so `revision + 1` is a safe place to resume.
   */
  revision: number;
}

export interface WatchResponse {
  header: WatchResponseHeader;
  /** Every event of one revision arrives in one response; may hold several revisions. Empty for progress/cancel. */
  events: Event[];
  /**
   * Set when the watch start (or a parked watcher's resume point) was compacted away; the watch is
   * canceled. Such a response's header revision is 0, as etcd's is.
   */
  compactRevision?: number;
  /** On a WatchStream with createdNotify: the first response of every create() (header revision: the current one). */
  created?: boolean;
  canceled?: boolean;
  cancelReason?: string;
  /** Set on responses of a WatchStream: the watch's id, or -1 for a stream-wide progress notification or a refused create. */
  watchId?: number;
  /** More pieces of this response follow (watches created with `fragment: true`). */
  fragment?: boolean;
}

export interface WatchHubOptions {
  /** Period of progress notifications for watchers with progressNotify. etcd's default is 10 minutes. */
  progressIntervalMs?: number;
  /**
   * Events a watcher (or a stream, shared by its watchers) may hold undelivered before it is parked
   * and later caught up from stored history. A single revision larger than this is still delivered
   * whole, once the buffer is empty. Default 4096.
   */
  maxBufferedEvents?: number;
  /**
   * Revisions read from history per catch-up step, and so the most revisions one catch-up response
   * holds. Default 1000, etcd's.
   */
  catchUpRevisions?: number;
  /**
   * The server's request size limit (etcd's `--max-request-bytes`, default 1.5 MiB). Watches with
   * `fragment: true` get responses split below this plus 512 KiB, as etcd splits them.
   */
  maxRequestBytes?: number;
}

/** One watch. Iterate it to receive responses; iteration ends when the watch is canceled. */
export interface Watcher extends AsyncIterable<WatchResponse> {
  /** Stops the watch. Undelivered responses are dropped and iteration ends. Idempotent. */
  cancel(): void;
  /**
   * Asks for a progress notification. Sent at once when the watcher is synced, otherwise as soon
   * as it has caught up, so its revision is always a valid bookmark.
   */
  requestProgress(): void;
  /** True once canceled by the caller, a signal, compaction or hub close. */
  readonly canceled: boolean;
}

export interface WatchStreamOptions {
  /**
   * Answer exactly as etcd's Watch RPC does (a server or gateway wants this; clientv3 shows it only
   * with WithCreatedNotify): a `{ created: true, watchId }` response first for every create; a
   * duplicate `watchId` or an empty range refused inside the stream with `{ watchId: -1, created:
   * true, canceled: true, cancelReason }` (create returns -1) instead of thrown; a watch ended by
   * compaction keeps its id until canceled, and cancelling it then is answered. Default false.
   */
  createdNotify?: boolean;
}

/** etcd's bidirectional watch stream: many watches multiplexed on one response sequence. */
export interface WatchStream extends AsyncIterable<WatchResponse> {
  /**
   * Starts a watch on this stream and returns its id (`req.watchId`, or the next free one counting
   * up from 0). A duplicate `watchId` throws `ERR_DUPLICATE_WATCH_ID`, an empty range
   * `ERR_EMPTY_WATCH_RANGE`; with `createdNotify` both are answered in the stream instead, as etcd
   * does (see WatchStreamOptions).
   */
  create(req: WatchRequest): number;
  /** Cancels one watch; a `{ canceled: true, watchId }` response follows. Unknown ids get no answer. */
  cancel(watchId: number): void;
  /** One progress notification (watchId -1) once every watch on the stream is synced. */
  requestProgress(): void;
  /** Cancels every watch of the stream and ends iteration. */
  close(): void;
  readonly closed: boolean;
}
