/**
 * etcd's watch stream (one Watch RPC): many watches multiplexed on one bounded response buffer,
 * each response tagged with its watch id.
 */
import { WatchError } from './errors.ts';
import type { WatchRequest, WatchResponse, WatchStream } from './types.ts';
import { parseWatchRequest } from './validate.ts';
import type { HubLink, Queue, WatcherState } from './watcher.ts';

export class WatchStreamImpl implements WatchStream {
  readonly #hub: HubLink;
  readonly #queue: Queue;
  readonly #watchers = new Map<number, WatcherState>();
  #nextId = 0;
  #closed = false;
  #progressPending = false;

  constructor(hub: HubLink, queue: Queue) {
    this.#hub = hub;
    this.#queue = queue;
  }

  get closed(): boolean {
    return this.#closed;
  }

  create(req: WatchRequest): number {
    if (this.#closed) throw new WatchError('ERR_CLOSED', 'watch stream is closed');
    this.#hub.assertOpen();
    const settings = parseWatchRequest(req);
    const id = this.#nextId;
    const w = this.#hub.register(settings, this.#queue, id, this);
    this.#nextId++;
    if (w.status !== 'canceled') this.#watchers.set(id, w);
    return id;
  }

  cancel(watchId: number): void {
    const w = this.#watchers.get(watchId);
    if (w !== undefined) this.#hub.cancel(w);
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

  /** @internal The watch ended (canceled, compacted): its id is free and no longer holds progress back. */
  forget(w: WatcherState): void {
    if (w.watchId !== undefined) this.#watchers.delete(w.watchId);
    this.maybeSendPendingProgress();
  }

  /** @internal Sends a requested stream progress once no watch on the stream is behind. */
  maybeSendPendingProgress(): void {
    if (!this.#progressPending || this.#closed) return;
    for (const w of this.#watchers.values()) if (w.status !== 'synced') return;
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
