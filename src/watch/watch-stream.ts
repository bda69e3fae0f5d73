/**
 * etcd's watch stream (one Watch RPC): many watches multiplexed on one bounded response buffer,
 * each response tagged with its watch id. Ids are the stream's: chosen by the client or handed out
 * counting up. With `createdNotify` the stream answers exactly as etcd's server does (created
 * responses, refusals inside the stream, compacted ids held until canceled); without it, as
 * clientv3 presents a stream: no created responses, refusals thrown.
 */
import { WatchError } from './errors.ts';
import type { WatchRequest, WatchResponse, WatchStream, WatchStreamOptions } from './types.ts';
import { parseWatchRequest, type WatchSettings } from './validate.ts';
import type { HubLink, Queue, WatcherState } from './watcher.ts';

/** etcd's message for a client-chosen id already in use on the stream. */
export const DUPLICATE_WATCH_ID = 'mvcc: duplicate watch ID provided on the WatchStream';

export class WatchStreamImpl implements WatchStream {
  readonly #hub: HubLink;
  readonly #queue: Queue;
  /** Every id in use (with createdNotify, also watches that ended by compaction and were not canceled yet). */
  readonly #watchers = new Map<number, WatcherState>();
  #nextId = 0;
  #closed = false;
  #progressPending = false;
  /** Answer as etcd's Watch RPC does (see WatchStreamOptions.createdNotify). */
  readonly #rpc: boolean;

  constructor(hub: HubLink, queue: Queue, options: WatchStreamOptions) {
    this.#hub = hub;
    this.#queue = queue;
    this.#rpc = options.createdNotify === true;
  }

  get closed(): boolean {
    return this.#closed;
  }

  create(req: WatchRequest): number {
    if (this.#closed) throw new WatchError('ERR_CLOSED', 'watch stream is closed');
    this.#hub.assertOpen();
    let settings: WatchSettings;
    try {
      settings = parseWatchRequest(req);
    } catch (err) {
      // etcd answers an empty range inside the stream, like a duplicate id.
      if (this.#rpc && err instanceof WatchError && err.code === 'ERR_EMPTY_WATCH_RANGE')
        return this.#refuse(err.message);
      throw err;
    }
    let id = settings.watchId;
    if (id === 0) {
      while (this.#watchers.has(this.#nextId)) this.#nextId++;
      id = this.#nextId++;
    } else if (this.#watchers.has(id)) {
      if (this.#rpc) return this.#refuse(DUPLICATE_WATCH_ID);
      throw new WatchError('ERR_DUPLICATE_WATCH_ID', DUPLICATE_WATCH_ID);
    }
    if (this.#rpc) {
      this.#queue.pushControl({ header: { revision: this.#hub.revision() }, events: [], watchId: id, created: true });
    }
    const w = this.#hub.register(settings, this.#queue, id, this);
    // An already-aborted signal cancels at once (its cancel response is queued): the id is free.
    if (w.status !== 'canceled') this.#watchers.set(id, w);
    return id;
  }

  #refuse(reason: string): number {
    this.#queue.pushControl({
      header: { revision: this.#hub.revision() },
      events: [],
      watchId: -1,
      created: true,
      canceled: true,
      cancelReason: reason,
    });
    return -1;
  }

  cancel(watchId: number): void {
    const w = this.#watchers.get(watchId);
    if (w === undefined) return;
    if (w.status !== 'canceled') {
      this.#hub.cancel(w);
      return;
    }
    // Ended by compaction earlier: free the id and confirm, as etcd does.
    this.#watchers.delete(watchId);
    this.#queue.pushControl({ header: { revision: this.#hub.revision() }, events: [], canceled: true, watchId });
  }

  requestProgress(): void {
    if (this.#closed) return;
    this.#progressPending = true;
    this.maybeSendPendingProgress();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const w of [...this.#watchers.values()]) this.#hub.cancel(w);
    this.#watchers.clear();
    this.#queue.end();
  }

  /** @internal The hub is closing: end without per-watch cancel responses. */
  closeFromHub(): void {
    this.#closed = true;
    this.#watchers.clear();
    this.#queue.end();
  }

  /** @internal The caller canceled the watch: its id is free. */
  forget(w: WatcherState): void {
    if (w.watchId !== undefined) this.#watchers.delete(w.watchId);
    this.maybeSendPendingProgress();
  }

  /**
   * @internal The watch ended on its own (compaction, storage error). etcd keeps its id taken until
   * the client cancels it; a clientv3-style stream frees it at once.
   */
  ended(w: WatcherState): void {
    if (this.#rpc) this.maybeSendPendingProgress();
    else this.forget(w);
  }

  /** @internal Sends a requested stream progress once no live watch on the stream is behind. */
  maybeSendPendingProgress(): void {
    if (!this.#progressPending || this.#closed) return;
    for (const w of this.#watchers.values()) if (w.status === 'unsynced') return;
    this.#progressPending = false;
    this.#hub.streamProgress(this.#queue);
  }

  [Symbol.asyncIterator](): AsyncIterator<WatchResponse> {
    const q = this.#queue;
    return {
      next: () => q.next(),
      return: (): Promise<IteratorResult<WatchResponse>> => {
        this.close();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
