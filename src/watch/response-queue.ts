/**
 * The bounded buffer between the hub and one consumer (a Watcher, or a WatchStream shared by its
 * watches). Event responses are refused once `capacity` events are waiting, which is the hub's cue
 * to park the watcher and catch it up from stored history later; so memory stays bounded however
 * slowly the consumer reads. Control responses (progress, cancel) are always accepted, and a
 * progress notification replaces an undelivered one of the same watch instead of piling up.
 */
import type { WatchResponse } from './types.ts';

export class ResponseQueue<W> {
  readonly capacity: number;
  /**
   * Watchers refused for lack of room; handed to onRoom once the consumer has drained half.
   * Created on first use, so the many queues that never overflow stay small.
   */
  #parked: Set<W> | undefined;
  #items: (WatchResponse | undefined)[] = [];
  #head = 0;
  #events = 0;
  #waiters: ((r: IteratorResult<WatchResponse>) => void)[] = [];
  /** No more responses will be added; iteration ends once the buffer is drained. */
  #finished = false;
  readonly #onRoom: (q: ResponseQueue<W>) => void;

  constructor(capacity: number, onRoom: (q: ResponseQueue<W>) => void) {
    this.capacity = capacity;
    this.#onRoom = onRoom;
  }

  park(w: W): void {
    (this.#parked ??= new Set()).add(w);
  }

  unpark(w: W): void {
    this.#parked?.delete(w);
  }

  /** Removes and returns every parked watcher. */
  takeParked(): W[] {
    const p = this.#parked;
    this.#parked = undefined;
    return p === undefined ? [] : [...p];
  }

  get bufferedEvents(): number {
    return this.#events;
  }

  get bufferedResponses(): number {
    return this.#items.length - this.#head;
  }

  get finished(): boolean {
    return this.#finished;
  }

  /** Events that may still be queued before offers are refused. */
  room(): number {
    return Math.max(0, this.capacity - this.#events);
  }

  /**
   * Queues an event response if there is room. An empty buffer takes any size, so a single
   * revision bigger than the capacity is still delivered whole.
   */
  offer(resp: WatchResponse): boolean {
    if (this.#finished) return true;
    const n = resp.events.length;
    if (this.#events > 0 && this.#events + n > this.capacity) return false;
    this.#deliver(resp);
    return true;
  }

  /** Queues the pieces of one fragmented response if there is room for all of them, else none. */
  offerAll(resps: WatchResponse[]): boolean {
    if (this.#finished) return true;
    let n = 0;
    for (const r of resps) n += r.events.length;
    if (this.#events > 0 && this.#events + n > this.capacity) return false;
    for (const r of resps) this.#deliver(r);
    return true;
  }

  /** Queues a control response regardless of room. */
  pushControl(resp: WatchResponse): void {
    if (this.#finished) return;
    this.#deliver(resp);
  }

  /** Queues a progress notification, replacing an undelivered trailing one for the same watch. */
  pushProgress(resp: WatchResponse): void {
    if (this.#finished) return;
    const last = this.#items.length > this.#head ? this.#items[this.#items.length - 1] : undefined;
    if (last !== undefined && last.events.length === 0 && last.canceled !== true && last.watchId === resp.watchId) {
      this.#items[this.#items.length - 1] = resp;
      return;
    }
    this.#deliver(resp);
  }

  /** Ends iteration after what is already queued. */
  finish(): void {
    this.#finished = true;
    this.#parked = undefined;
    if (this.bufferedResponses === 0) this.#releaseWaiters();
  }

  /** Ends iteration now, dropping what is queued. */
  end(): void {
    this.#finished = true;
    this.#parked = undefined;
    this.#items = [];
    this.#head = 0;
    this.#events = 0;
    this.#releaseWaiters();
  }

  next(): Promise<IteratorResult<WatchResponse>> {
    if (this.#head < this.#items.length) {
      const resp = this.#items[this.#head]!;
      this.#items[this.#head] = undefined;
      this.#head++;
      if (this.#head === this.#items.length) {
        this.#items = [];
        this.#head = 0;
      } else if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
        this.#items = this.#items.slice(this.#head);
        this.#head = 0;
      }
      this.#events -= resp.events.length;
      this.#maybeRoom();
      if (this.#finished && this.bufferedResponses === 0) queueMicrotask(() => this.#releaseWaiters());
      return Promise.resolve({ value: resp, done: false });
    }
    if (this.#finished) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  #deliver(resp: WatchResponse): void {
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) {
      waiter({ value: resp, done: false });
      return;
    }
    this.#items.push(resp);
    this.#events += resp.events.length;
  }

  #maybeRoom(): void {
    if (this.#parked !== undefined && this.#parked.size > 0 && this.#events * 2 <= this.capacity) {
      this.#onRoom(this);
    }
  }

  #releaseWaiters(): void {
    const ws = this.#waiters;
    this.#waiters = [];
    for (const w of ws) w({ value: undefined, done: true });
  }
}
