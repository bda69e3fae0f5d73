/**
 * One watch (etcd's watcher.go): what it covers, how its events are shaped, where it stands, and
 * the public Watcher object a caller iterates. The hub owns the state transitions; this file owns
 * the per-watch data and the one place events are filtered and stripped of prevKv.
 */
import type { Event } from '../mvcc/types.ts';
import type { IntervalHandle } from './interval-index.ts';
import type { KeyRange } from './key-range.ts';
import type { ResponseQueue } from './response-queue.ts';
import type { WatchResponse, Watcher } from './types.ts';
import type { WatchSettings } from './validate.ts';
import type { WatchStreamImpl } from './watch-stream.ts';

export type Queue = ResponseQueue<WatcherState>;

/** Internal per-watch state; the public Watcher and stream objects are thin views over it. */
export interface WatcherState {
  readonly range: KeyRange;
  readonly prevKv: boolean;
  readonly noPut: boolean;
  readonly noDelete: boolean;
  readonly progressNotify: boolean;
  /** Split large responses as etcd's fragment option does. */
  readonly fragment: boolean;
  readonly queue: Queue;
  /** watchId on a stream; undefined for a standalone Watcher. */
  readonly watchId: number | undefined;
  readonly stream: WatchStreamImpl | undefined;
  /**
   * Synced: the lowest revision of interest (above the last commit only for future starts).
   * Unsynced: the next revision to read from history.
   */
  nextRev: number;
  status: 'synced' | 'unsynced' | 'canceled';
  /** Its entry in the watcher group's interval index (range watchers while synced). */
  handle: IntervalHandle | undefined;
  progressPending: boolean;
  /** Events were sent since the last periodic progress tick (etcd then skips the notification). */
  sentSinceTick: boolean;
  detachSignal: (() => void) | undefined;
}

export function newWatcherState(
  s: WatchSettings,
  queue: Queue,
  watchId: number | undefined,
  stream: WatchStreamImpl | undefined,
  nextRev: number,
): WatcherState {
  return {
    range: s.range,
    prevKv: s.prevKv,
    noPut: s.noPut,
    noDelete: s.noDelete,
    progressNotify: s.progressNotify,
    fragment: s.fragment,
    queue,
    watchId,
    stream,
    nextRev,
    status: 'unsynced',
    handle: undefined,
    progressPending: false,
    sentSinceTick: false,
    detachSignal: undefined,
  };
}

/**
 * The event as this watcher reports it, or undefined when its filters drop it. Events carry prevKv
 * from the source; a watcher that did not ask for it gets a copy without.
 */
export function eventFor(w: WatcherState, ev: Event): Event | undefined {
  if (ev.type === 'PUT' ? w.noPut : w.noDelete) return undefined;
  return w.prevKv || ev.prevKv === undefined ? ev : { type: ev.type, kv: ev.kv };
}

/** A response for this watcher, tagged with its watch id when it lives on a stream. */
export function responseFor(w: WatcherState, revision: number, events: Event[]): WatchResponse {
  const resp: WatchResponse = { header: { revision }, events };
  if (w.watchId !== undefined) resp.watchId = w.watchId;
  return resp;
}

/** What the watcher and stream objects may ask of the hub that created them. */
export interface HubLink {
  /** Validated settings in, a registered watcher (synced or catching up) out. */
  register(
    s: WatchSettings,
    queue: Queue,
    watchId: number | undefined,
    stream: WatchStreamImpl | undefined,
  ): WatcherState;
  /** Caller-initiated cancel (Watcher.cancel, stream.cancel, abort signal). */
  cancel(w: WatcherState): void;
  requestProgress(w: WatcherState): void;
  /** Queues a stream-wide progress notification (watchId -1). */
  streamProgress(q: Queue): void;
  /** The last revision watchers have been given. */
  revision(): number;
  assertOpen(): void;
}

/** A standalone watch: its own buffer; iteration ends when it is canceled. */
export class WatcherImpl implements Watcher {
  readonly #hub: HubLink;
  readonly #state: WatcherState;

  constructor(hub: HubLink, state: WatcherState) {
    this.#hub = hub;
    this.#state = state;
  }

  get canceled(): boolean {
    return this.#state.status === 'canceled';
  }

  cancel(): void {
    this.#hub.cancel(this.#state);
  }

  requestProgress(): void {
    this.#hub.requestProgress(this.#state);
  }

  [Symbol.asyncIterator](): AsyncIterator<WatchResponse> {
    const q = this.#state.queue;
    return {
      next: () => q.next(),
      return: (): Promise<IteratorResult<WatchResponse>> => {
        this.cancel();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
