/**
 * WatchHub: etcd's watchable store on top of an EventSource.
 *
 * Every watcher is in one of two sets. Synced watchers have seen every revision up to the last one
 * committed; they sit in the watcher group and get each revision's events as it commits. Unsynced
 * watchers (started in the past, or parked as victims because their consumer fell behind) are
 * caught up from stored history in bounded chunks, and join the synced set once they reach the
 * last committed revision. JS runs the commit callback and the catch-up step to completion without
 * interleaving, so the hand-over has no gap and no duplicate. A watcher whose resume point has been
 * compacted gets one compacted response and ends.
 */
import type { Event, EventSource, RevisionBatch } from '../mvcc/types.ts';
import { WatchError } from './errors.ts';
import { fragmentResponse, GRPC_OVERHEAD_BYTES } from './fragment.ts';
import { rangeBytes } from './key-range.ts';
import { ResponseQueue } from './response-queue.ts';
import type {
  WatchHubOptions,
  WatchRequest,
  WatchResponse,
  WatchStream,
  WatchStreamOptions,
  Watcher,
} from './types.ts';
import { parseWatchRequest, positiveIntOption, refuseUnknownFields, type WatchSettings } from './validate.ts';
import { WatchStreamImpl } from './watch-stream.ts';
import {
  eventFor,
  type HubLink,
  newWatcherState,
  type Queue,
  responseFor,
  WatcherImpl,
  type WatcherState,
} from './watcher.ts';
import { WatcherGroup } from './watcher-group.ts';

export type {
  WatchHubOptions,
  WatchRequest,
  WatchResponse,
  WatchStream,
  Watcher,
} from './types.ts';

const DEFAULT_PROGRESS_INTERVAL_MS = 10 * 60 * 1000;
const DEFAULT_MAX_BUFFERED_EVENTS = 4096;
/** etcd's watchBatchMaxRevs: at most this many revisions go to a catching-up watcher at a time. */
const DEFAULT_CATCH_UP_REVISIONS = 1000;
/** etcd's default --max-request-bytes. */
const DEFAULT_MAX_REQUEST_BYTES = 1.5 * 1024 * 1024;
const STREAM_OPTIONS = new Set(['createdNotify']);
const HUB_OPTIONS = new Set(['progressIntervalMs', 'maxBufferedEvents', 'catchUpRevisions', 'maxRequestBytes']);
/** Catch-up steps run per macrotask, so a long catch-up never starves the event loop. */
const CATCH_UP_STEPS_PER_TICK = 16;

export class WatchHub {
  readonly #source: EventSource;
  readonly #progressIntervalMs: number;
  readonly #maxBufferedEvents: number;
  readonly #catchUpRevisions: number;
  /** Responses of fragmenting watches are split below this many encoded bytes. */
  readonly #fragmentBytes: number;
  readonly #unsubscribe: () => void;
  /** Highest revision received from onCommit: what synced watchers have been given. */
  #lastRev: number;
  readonly #synced = new WatcherGroup();
  /** Unsynced watchers due a catch-up step. */
  readonly #pending = new Set<WatcherState>();
  readonly #all = new Set<WatcherState>();
  readonly #progressWatchers = new Set<WatcherState>();
  readonly #streams = new Set<WatchStreamImpl>();
  /** One callback shared by every queue (a closure per watcher would cost memory). */
  readonly #onRoomFn = (q: Queue): void => this.#onRoom(q);
  /** What watcher and stream objects may call; kept off the public class. */
  readonly #link: HubLink = {
    register: (s, queue, watchId, stream) => this.#register(s, queue, watchId, stream),
    cancel: (w) => this.#cancel(w),
    requestProgress: (w) => this.#requestProgress(w),
    streamProgress: (q) =>
      q.pushProgress({
        header: { revision: this.#lastRev },
        events: [],
        watchId: -1,
      }),
    revision: () => this.#lastRev,
    assertOpen: () => this.#assertOpen(),
  };
  #catchUpScheduled = false;
  #timer: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  constructor(source: EventSource, options: WatchHubOptions = {}) {
    this.#source = source;
    refuseUnknownFields(options, HUB_OPTIONS, 'watch option');
    this.#progressIntervalMs = positiveIntOption(
      options.progressIntervalMs,
      DEFAULT_PROGRESS_INTERVAL_MS,
      'progressIntervalMs',
    );
    this.#maxBufferedEvents = positiveIntOption(
      options.maxBufferedEvents,
      DEFAULT_MAX_BUFFERED_EVENTS,
      'maxBufferedEvents',
    );
    this.#catchUpRevisions = positiveIntOption(
      options.catchUpRevisions,
      DEFAULT_CATCH_UP_REVISIONS,
      'catchUpRevisions',
    );
    this.#fragmentBytes =
      positiveIntOption(options.maxRequestBytes, DEFAULT_MAX_REQUEST_BYTES, 'maxRequestBytes') + GRPC_OVERHEAD_BYTES;
    this.#lastRev = source.currentRevision();
    this.#unsubscribe = source.onCommit((batch) => this.#onCommit(batch));
  }

  /** Numbers for tests, benchmarks and monitoring. */
  stats(): {
    synced: number;
    unsynced: number;
    streams: number;
    lastRevision: number;
  } {
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
    const settings = parseWatchRequest(req);
    if (settings.watchId !== 0) {
      throw new WatchError('ERR_INVALID_WATCH_REQUEST', 'watchId applies only to watches created on a WatchStream');
    }
    const queue: Queue = new ResponseQueue(this.#maxBufferedEvents, this.#onRoomFn);
    return new WatcherImpl(this.#link, this.#register(settings, queue, undefined, undefined));
  }

  /** Opens etcd's multiplexed stream: many watches sharing one bounded response buffer. */
  stream(options: WatchStreamOptions = {}): WatchStream {
    this.#assertOpen();
    refuseUnknownFields(options, STREAM_OPTIONS, 'watch stream option');
    const queue: Queue = new ResponseQueue(this.#maxBufferedEvents, this.#onRoomFn);
    const s = new WatchStreamImpl(this.#link, queue, options);
    this.#streams.add(s);
    return s;
  }

  /** Cancels every watch and stream and detaches from the source. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe();
    this.#stopTimer();
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
    if (this.#closed) throw new WatchError('ERR_CLOSED', 'watch hub is closed');
  }

  // ---- registration and cancel ----------------------------------------------------------------

  /** Puts a new watcher in the synced or unsynced set. */
  #register(
    s: WatchSettings,
    queue: Queue,
    watchId: number | undefined,
    stream: WatchStreamImpl | undefined,
  ): WatcherState {
    const w = newWatcherState(s, queue, watchId, stream, s.startRevision === 0 ? this.#lastRev + 1 : s.startRevision);
    this.#all.add(w);
    if (w.progressNotify) {
      this.#progressWatchers.add(w);
      this.#ensureTimer();
    }
    if (w.nextRev > this.#lastRev) this.#addSynced(w);
    else this.#wantCatchUp(w);
    const signal = s.signal;
    if (signal !== undefined) {
      if (signal.aborted) {
        this.#cancel(w);
      } else {
        const onAbort = (): void => this.#cancel(w);
        signal.addEventListener('abort', onAbort, { once: true });
        w.detachSignal = () => signal.removeEventListener('abort', onAbort);
      }
    }
    return w;
  }

  #cancel(w: WatcherState): void {
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
    if (w.status === 'synced') this.#synced.remove(w);
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
    // etcd's compacted cancel carries no header revision (0): it says nothing about progress.
    const revision = extra.compactRevision === undefined ? this.#lastRev : 0;
    const resp: WatchResponse = { header: { revision }, events: [], ...extra, canceled: true };
    if (w.stream !== undefined) {
      resp.watchId = w.watchId;
      w.queue.pushControl(resp);
      w.stream.ended(w);
    } else {
      w.queue.pushControl(resp);
      w.queue.finish();
    }
  }

  // ---- synced set -----------------------------------------------------------------------------

  #addSynced(w: WatcherState): void {
    w.status = 'synced';
    this.#synced.add(w);
    if (w.progressPending) {
      w.progressPending = false;
      this.#sendProgress(w);
    }
    w.stream?.maybeSendPendingProgress();
  }

  /** Moves a synced watcher whose consumer has no room to the unsynced set (a victim), resuming at `rev`. */
  #park(w: WatcherState, rev: number): void {
    this.#synced.remove(w);
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
        this.#synced.remove(w);
        w.nextRev = Math.max(w.nextRev, from);
        this.#wantCatchUp(w);
      }
      return;
    }
    this.#lastRev = rev;
    if (this.#all.size === 0) return;
    for (const [w, events] of this.#synced.match(batch)) {
      if (this.#offer(w, responseFor(w, rev, events))) w.sentSinceTick = true;
      else this.#park(w, rev);
    }
  }

  /** Queues a live event response (in pieces for a fragmenting watch) if the consumer has room. */
  #offer(w: WatcherState, resp: WatchResponse): boolean {
    return w.fragment ? w.queue.offerAll(fragmentResponse(resp, this.#fragmentBytes)) : w.queue.offer(resp);
  }

  // ---- catch-up -------------------------------------------------------------------------------

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
        ...rangeBytes(w.range),
        prevKv: w.prevKv,
        limit,
      });
    } catch (err) {
      const c = this.#source.compactRevision();
      if (w.nextRev < c) this.#terminate(w, { compactRevision: c });
      else
        this.#terminate(w, {
          cancelReason: err instanceof Error ? err.message : String(err),
        });
      return;
    }
    const events: Event[] = [];
    let last = w.nextRev - 1;
    for (const b of batches) {
      if (b.revision <= last || b.revision > to) continue; // defensive: order and bounds
      last = b.revision;
      for (const ev of b.events) {
        const out = eventFor(w, ev);
        if (out !== undefined) events.push(out);
      }
    }
    w.nextRev = batches.length < limit ? to + 1 : last + 1;
    if (events.length > 0) {
      // The header is where this watch is complete up to, so it is always a safe resume point
      // (etcd puts its current revision there even when a catch-up batch stopped short of it).
      const resp = responseFor(w, w.nextRev - 1, events);
      if (w.fragment) for (const piece of fragmentResponse(resp, this.#fragmentBytes)) w.queue.pushControl(piece);
      else w.queue.pushControl(resp);
      w.sentSinceTick = true;
    }
    if (w.nextRev > to) this.#addSynced(w);
  }

  // ---- progress -------------------------------------------------------------------------------

  #requestProgress(w: WatcherState): void {
    if (w.status === 'canceled') return;
    if (w.status === 'synced') this.#sendProgress(w);
    else w.progressPending = true;
  }

  #sendProgress(w: WatcherState): void {
    w.queue.pushProgress(responseFor(w, this.#lastRev, []));
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
