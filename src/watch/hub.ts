/**
 * WatchHub: etcd's watchable store on top of an EventSource.
 *
 * Every watcher is in one of two sets. Synced watchers have seen every revision up to the last one
 * committed; they sit in the key indexes (a map for single keys, an interval index for ranges) and
 * get each revision's events as it commits. Unsynced watchers (started in the past, or parked
 * because their consumer fell behind) are caught up from stored history in bounded chunks, and
 * join the synced set once they reach the last committed revision. JS runs the commit callback and
 * the catch-up step to completion without interleaving, so the hand-over has no gap and no
 * duplicate. A watcher whose resume point has been compacted gets one compacted response and ends.
 */
import type { Event, EventSource, RevisionBatch } from '../mvcc/types.ts';
import { WatchError } from './errors.ts';
import { IntervalIndex, type IntervalHandle } from './interval-index.ts';
import { byteStringToBytes, bytesToByteString, parseKeyRange, type KeyRange } from './key-range.ts';
import { ResponseQueue } from './response-queue.ts';
import type {
  WatchHubOptions,
  WatchRequest,
  WatchResponse,
  WatchStream,
  Watcher,
} from './types.ts';

export type { WatchHubOptions, WatchRequest, WatchResponse, WatchStream, Watcher } from './types.ts';

const DEFAULT_PROGRESS_INTERVAL_MS = 10 * 60 * 1000;
const DEFAULT_MAX_BUFFERED_EVENTS = 4096;
const DEFAULT_CATCH_UP_REVISIONS = 512;
/** Catch-up steps run per macrotask, so a long catch-up never starves the event loop. */
const CATCH_UP_STEPS_PER_TICK = 16;

type Queue = ResponseQueue<WatcherState>;
/** etcd's "\0" range end: every key from the start on. */
const ZERO_KEY = new Uint8Array([0]);

/** Internal per-watch state; the public Watcher/stream objects are thin views over it. */
interface WatcherState {
  readonly range: KeyRange;
  readonly prevKv: boolean;
  readonly noPut: boolean;
  readonly noDelete: boolean;
  readonly progressNotify: boolean;
  readonly queue: Queue;
  /** watchId on a stream; undefined for a standalone Watcher. */
  readonly watchId: number | undefined;
  readonly stream: StreamImpl | undefined;
  /**
   * Synced: the lowest revision of interest (above the last commit only for future starts).
   * Unsynced: the next revision to read from history.
   */
  nextRev: number;
  status: 'synced' | 'unsynced' | 'canceled';
  handle: IntervalHandle | undefined;
  progressPending: boolean;
  /** Events were sent since the last periodic progress tick (etcd then skips the notification). */
  sentSinceTick: boolean;
  detachSignal: (() => void) | undefined;
}

function positiveInt(v: number | undefined, dflt: number, name: string): number {
  if (v === undefined) return dflt;
  if (!Number.isSafeInteger(v) || v <= 0) {
    throw new WatchError('ERR_INVALID_WATCH_REQUEST', `${name} must be a positive integer`);
  }
  return v;
}

export class WatchHub {
  readonly #source: EventSource;
  readonly #progressIntervalMs: number;
  readonly #maxBufferedEvents: number;
  readonly #catchUpRevisions: number;
  readonly #unsubscribe: () => void;
  /** Highest revision received from onCommit: what synced watchers have been given. */
  #lastRev: number;
  readonly #singles = new Map<string, Set<WatcherState>>();
  readonly #ranges = new IntervalIndex<WatcherState>();
  readonly #pending = new Set<WatcherState>();
  readonly #all = new Set<WatcherState>();
  readonly #progressWatchers = new Set<WatcherState>();
  readonly #streams = new Set<StreamImpl>();
  /** One callback shared by every queue (a closure per watcher would cost memory). */
  readonly #onRoomFn = (q: Queue): void => this.#onRoom(q);
  #catchUpScheduled = false;
  #timer: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  constructor(source: EventSource, options: WatchHubOptions = {}) {
    this.#source = source;
    this.#progressIntervalMs = positiveInt(
      options.progressIntervalMs,
      DEFAULT_PROGRESS_INTERVAL_MS,
      'progressIntervalMs',
    );
    this.#maxBufferedEvents = positiveInt(
      options.maxBufferedEvents,
      DEFAULT_MAX_BUFFERED_EVENTS,
      'maxBufferedEvents',
    );
    this.#catchUpRevisions = positiveInt(
      options.catchUpRevisions,
      DEFAULT_CATCH_UP_REVISIONS,
      'catchUpRevisions',
    );
    this.#lastRev = source.currentRevision();
    this.#unsubscribe = source.onCommit((batch) => this.#onCommit(batch));
  }

  /** Numbers for tests, benchmarks and monitoring. */
  stats(): { synced: number; unsynced: number; streams: number; lastRevision: number } {
    let synced = 0;
    for (const w of this.#all) if (w.status === 'synced') synced++;
    return {
      synced,
      unsynced: this.#all.size - synced,
      streams: this.#streams.size,
      lastRevision: this.#lastRev,
    };
  }

  /** Starts one watch with its own bounded buffer. */
  watch(req: WatchRequest): Watcher {
    this.#assertOpen();
    const queue: Queue = new ResponseQueue(this.#maxBufferedEvents, this.#onRoomFn);
    const state = this.#register(req, queue, undefined, undefined);
    return new WatcherImpl(this, state);
  }

  /** Opens etcd's multiplexed stream: many watches sharing one bounded response buffer. */
  stream(): WatchStream {
    this.#assertOpen();
    const s = new StreamImpl(this, new ResponseQueue(this.#maxBufferedEvents, this.#onRoomFn));
    this.#streams.add(s);
    return s;
  }

  /** Cancels every watch and stream and detaches from the source. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe();
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    for (const w of [...this.#all]) {
      this.#detach(w);
      if (w.stream === undefined) w.queue.end();
    }
    for (const s of [...this.#streams]) s.closeFromHub();
    this.#streams.clear();
  }

  get closed(): boolean {
    return this.#closed;
  }

  #assertOpen(): void {
    if (this.#closed) throw new WatchError('ERR_WATCH_CLOSED', 'watch hub is closed');
  }

  // ---- registration -------------------------------------------------------------------------

  /** @internal Validates the request and puts the new watcher in the synced or unsynced set. */
  register(req: WatchRequest, queue: Queue, watchId: number, stream: StreamImpl): WatcherState {
    this.#assertOpen();
    return this.#register(req, queue, watchId, stream);
  }

  #register(
    req: WatchRequest,
    queue: Queue,
    watchId: number | undefined,
    stream: StreamImpl | undefined,
  ): WatcherState {
    if (req === null || typeof req !== 'object') {
      throw new WatchError('ERR_INVALID_WATCH_REQUEST', 'watch request must be an object');
    }
    const range = parseKeyRange(req.key, req.rangeEnd);
    const start = req.startRevision ?? 0;
    if (!Number.isSafeInteger(start) || start < 0) {
      throw new WatchError('ERR_INVALID_WATCH_REQUEST', 'startRevision must be a non-negative integer');
    }
    let noPut = false;
    let noDelete = false;
    if (req.filters !== undefined) {
      if (!Array.isArray(req.filters)) {
        throw new WatchError('ERR_INVALID_WATCH_REQUEST', 'filters must be an array');
      }
      for (const f of req.filters as unknown[]) {
        if (f === 'NOPUT') noPut = true;
        else if (f === 'NODELETE') noDelete = true;
        else throw new WatchError('ERR_INVALID_WATCH_REQUEST', `unknown watch filter ${String(f)}`);
      }
    }
    const signal = req.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
      throw new WatchError('ERR_INVALID_WATCH_REQUEST', 'signal must be an AbortSignal');
    }
    const w: WatcherState = {
      range,
      prevKv: req.prevKv === true,
      noPut,
      noDelete,
      progressNotify: req.progressNotify === true,
      queue,
      watchId,
      stream,
      nextRev: start === 0 ? this.#lastRev + 1 : start,
      status: 'unsynced',
      handle: undefined,
      progressPending: false,
      sentSinceTick: false,
      detachSignal: undefined,
    };
    this.#all.add(w);
    if (w.progressNotify) {
      this.#progressWatchers.add(w);
      this.#ensureTimer();
    }
    if (w.nextRev > this.#lastRev) this.#addSynced(w);
    else this.#wantCatchUp(w);
    if (signal !== undefined) {
      if (signal.aborted) {
        this.cancel(w);
      } else {
        const onAbort = (): void => this.cancel(w);
        signal.addEventListener('abort', onAbort, { once: true });
        w.detachSignal = () => signal.removeEventListener('abort', onAbort);
      }
    }
    return w;
  }

  /** @internal Caller-initiated cancel (Watcher.cancel, stream.cancel, abort signal). */
  cancel(w: WatcherState): void {
    if (w.status === 'canceled') return;
    this.#detach(w);
    if (w.stream !== undefined) {
      w.queue.pushControl({
        header: { revision: this.#lastRev },
        events: [],
        canceled: true,
        watchId: w.watchId,
      });
      w.stream.forget(w);
    } else {
      w.queue.end();
    }
  }

  /** Takes the watcher out of every set; it will be given nothing more. Its queue is untouched. */
  #detach(w: WatcherState): void {
    if (w.status === 'synced') this.#removeSynced(w);
    w.status = 'canceled';
    this.#pending.delete(w);
    w.queue.unpark(w);
    this.#all.delete(w);
    if (this.#progressWatchers.delete(w) && this.#progressWatchers.size === 0) this.#stopTimer();
    w.detachSignal?.();
    w.detachSignal = undefined;
  }

  /** Ends a watch with a final response (compaction or a storage error) after what is queued. */
  #terminate(w: WatcherState, extra: { compactRevision?: number; cancelReason?: string }): void {
    this.#detach(w);
    const resp: WatchResponse = {
      header: { revision: this.#lastRev },
      events: [],
      ...extra,
      canceled: true,
    };
    if (w.stream !== undefined) {
      resp.watchId = w.watchId;
      w.queue.pushControl(resp);
      w.stream.forget(w);
    } else {
      w.queue.pushControl(resp);
      w.queue.finish();
    }
  }

  // ---- synced set ---------------------------------------------------------------------------

  #addSynced(w: WatcherState): void {
    w.status = 'synced';
    if (w.range.end === undefined) {
      let set = this.#singles.get(w.range.start);
      if (set === undefined) {
        set = new Set();
        this.#singles.set(w.range.start, set);
      }
      set.add(w);
    } else {
      w.handle = this.#ranges.insert({ start: w.range.start, end: w.range.end, value: w });
    }
    if (w.progressPending) {
      w.progressPending = false;
      this.#sendProgress(w);
    }
    w.stream?.maybeSendPendingProgress();
  }

  #removeSynced(w: WatcherState): void {
    if (w.range.end === undefined) {
      const set = this.#singles.get(w.range.start);
      if (set !== undefined) {
        set.delete(w);
        if (set.size === 0) this.#singles.delete(w.range.start);
      }
    } else if (w.handle !== undefined) {
      this.#ranges.remove(w.handle);
      w.handle = undefined;
    }
  }

  /** Moves a synced watcher whose consumer has no room to the unsynced set, resuming at `rev`. */
  #park(w: WatcherState, rev: number): void {
    this.#removeSynced(w);
    w.status = 'unsynced';
    w.nextRev = rev;
    w.queue.park(w);
  }

  #onCommit(batch: RevisionBatch): void {
    if (this.#closed) return;
    const rev = batch.revision;
    if (rev <= this.#lastRev) return; // already seen: never deliver a revision twice
    if (rev !== this.#lastRev + 1) {
      // The source skipped a revision: let every synced watcher re-read the gap from history.
      const from = this.#lastRev + 1;
      this.#lastRev = rev;
      for (const w of [...this.#all]) {
        if (w.status !== 'synced') continue;
        this.#removeSynced(w);
        w.status = 'unsynced';
        w.nextRev = Math.max(w.nextRev, from);
        this.#wantCatchUp(w);
      }
      return;
    }
    this.#lastRev = rev;
    if (this.#all.size === 0) return;
    const matched = new Map<WatcherState, Event[]>();
    const add = (w: WatcherState, ev: Event): void => {
      if (w.nextRev > rev) return;
      if (ev.type === 'PUT' ? w.noPut : w.noDelete) return;
      const out = w.prevKv || ev.prevKv === undefined ? ev : { type: ev.type, kv: ev.kv };
      const list = matched.get(w);
      if (list === undefined) matched.set(w, [out]);
      else list.push(out);
    };
    for (const ev of batch.events) {
      const k = bytesToByteString(ev.kv.key);
      const set = this.#singles.get(k);
      if (set !== undefined) for (const w of set) add(w, ev);
      if (this.#ranges.size > 0) this.#ranges.stab(k, (w) => add(w, ev));
    }
    for (const [w, events] of matched) {
      const resp: WatchResponse = { header: { revision: rev }, events };
      if (w.watchId !== undefined) resp.watchId = w.watchId;
      if (w.queue.offer(resp)) {
        w.sentSinceTick = true;
        } else {
        this.#park(w, rev);
      }
    }
  }

  // ---- catch-up -----------------------------------------------------------------------------

  #wantCatchUp(w: WatcherState): void {
    w.status = 'unsynced';
    this.#pending.add(w);
    this.#scheduleCatchUp();
  }

  #onRoom(q: Queue): void {
    for (const w of q.takeParked()) this.#pending.add(w);
    this.#scheduleCatchUp();
  }

  #scheduleCatchUp(): void {
    if (this.#catchUpScheduled || this.#closed || this.#pending.size === 0) return;
    this.#catchUpScheduled = true;
    setImmediate(() => this.#runCatchUp());
  }

  #runCatchUp(): void {
    this.#catchUpScheduled = false;
    if (this.#closed) return;
    let steps = 0;
    const todo = [...this.#pending];
    this.#pending.clear();
    for (let i = 0; i < todo.length; i++) {
      const w = todo[i]!;
      if (steps >= CATCH_UP_STEPS_PER_TICK) {
        for (let j = i; j < todo.length; j++) this.#pending.add(todo[j]!);
        break;
      }
      if (w.status !== 'unsynced') continue;
      if (w.queue.room() === 0) {
        w.queue.park(w);
        continue;
      }
      this.#catchUpStep(w);
      steps++;
      if (w.status === 'unsynced') {
        if (w.queue.room() > 0) this.#pending.add(w);
        else w.queue.park(w);
      }
    }
    this.#scheduleCatchUp();
  }

  /** Reads one chunk of history for an unsynced watcher; joins the synced set when it is current. */
  #catchUpStep(w: WatcherState): void {
    const compactRev = this.#source.compactRevision();
    if (w.nextRev < compactRev) {
      this.#terminate(w, { compactRevision: compactRev });
      return;
    }
    const to = this.#lastRev;
    if (w.nextRev > to) {
      this.#addSynced(w);
      return;
    }
    const limit = Math.max(1, Math.min(this.#catchUpRevisions, w.queue.room()));
    let batches: RevisionBatch[];
    try {
      batches = this.#source.readEvents({
        fromRev: w.nextRev,
        toRev: to,
        // Bytes are rebuilt per step rather than kept per watcher: idle watchers stay small.
        key: byteStringToBytes(w.range.start),
        rangeEnd:
          w.range.end === undefined ? undefined : w.range.end === null ? ZERO_KEY : byteStringToBytes(w.range.end),
        prevKv: w.prevKv,
        limit,
      });
    } catch (err) {
      const c = this.#source.compactRevision();
      if (w.nextRev < c) this.#terminate(w, { compactRevision: c });
      else this.#terminate(w, { cancelReason: err instanceof Error ? err.message : String(err) });
      return;
    }
    const events: Event[] = [];
    let last = w.nextRev - 1;
    for (const b of batches) {
      if (b.revision <= last || b.revision > to) continue; // defensive: order and bounds
      last = b.revision;
      for (const ev of b.events) {
        if (ev.type === 'PUT' ? w.noPut : w.noDelete) continue;
        events.push(w.prevKv || ev.prevKv === undefined ? ev : { type: ev.type, kv: ev.kv });
      }
    }
    w.nextRev = batches.length < limit ? to + 1 : last + 1;
    if (events.length > 0) {
      // The header is where this watch is complete up to, so it is always a safe resume point
      // (etcd puts its current revision there even when a catch-up batch stopped short of it).
      const resp: WatchResponse = { header: { revision: w.nextRev - 1 }, events };
      if (w.watchId !== undefined) resp.watchId = w.watchId;
      w.queue.pushControl(resp);
      w.sentSinceTick = true;
    }
    if (w.nextRev > to) this.#addSynced(w);
  }

  // ---- progress -----------------------------------------------------------------------------

  /** @internal */
  requestProgress(w: WatcherState): void {
    if (w.status === 'canceled') return;
    if (w.status === 'synced') this.#sendProgress(w);
    else w.progressPending = true;
  }

  #sendProgress(w: WatcherState): void {
    const resp: WatchResponse = { header: { revision: this.#lastRev }, events: [] };
    if (w.watchId !== undefined) resp.watchId = w.watchId;
    w.queue.pushProgress(resp);
  }

  /** @internal A stream-wide progress notification (watchId -1), only valid when all are synced. */
  sendStreamProgress(q: Queue): void {
    q.pushProgress({ header: { revision: this.#lastRev }, events: [], watchId: -1 });
  }

  #ensureTimer(): void {
    if (this.#timer !== undefined || this.#closed) return;
    this.#timer = setInterval(() => this.#progressTick(), this.#progressIntervalMs);
    this.#timer.unref();
  }

  #stopTimer(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #progressTick(): void {
    for (const w of this.#progressWatchers) {
      if (w.status === 'synced' && !w.sentSinceTick) this.#sendProgress(w);
      w.sentSinceTick = false;
    }
  }
}

/** A standalone watch: its own buffer, iteration ends when it is canceled. */
class WatcherImpl implements Watcher {
  readonly #hub: WatchHub;
  readonly #state: WatcherState;

  constructor(hub: WatchHub, state: WatcherState) {
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

/** etcd's watch stream: watches multiplexed on one bounded buffer, responses tagged with watchId. */
class StreamImpl implements WatchStream {
  readonly #hub: WatchHub;
  readonly #queue: Queue;
  readonly #watchers = new Map<number, WatcherState>();
  #nextId = 0;
  #closed = false;
  #progressPending = false;

  constructor(hub: WatchHub, queue: Queue) {
    this.#hub = hub;
    this.#queue = queue;
  }

  get closed(): boolean {
    return this.#closed;
  }

  create(req: WatchRequest): number {
    if (this.#closed) throw new WatchError('ERR_WATCH_CLOSED', 'watch stream is closed');
    const id = this.#nextId;
    const w = this.#hub.register(req, this.#queue, id, this);
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

  /** @internal */
  forget(w: WatcherState): void {
    if (w.watchId !== undefined) this.#watchers.delete(w.watchId);
    this.maybeSendPendingProgress();
  }

  /** @internal Sends a requested stream progress once no watch on the stream is behind. */
  maybeSendPendingProgress(): void {
    if (!this.#progressPending || this.#closed) return;
    for (const w of this.#watchers.values()) if (w.status !== 'synced') return;
    this.#progressPending = false;
    this.#hub.sendStreamProgress(this.#queue);
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
