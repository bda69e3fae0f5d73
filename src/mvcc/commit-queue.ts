/**
 * Group commit (etcd's batch tx): writes queue their backend operations here and wait for one
 * promise; everything queued in the same event-loop turn lands in one backend transaction. Records
 * not yet durable stay readable through the overlay. Revisions are announced to listeners only once
 * durable, in order. Between commits, background work (compaction) gets a bounded step.
 *
 * A failed commit fails the queue for good: the writes waiting on it, and every later one, reject
 * with ERR_STORE_FAILED (the in-memory state may be ahead of the file; reopen).
 */
import type { Backend, BackendWriter } from './backend.ts';
import { CONSISTENT_INDEX_KEY, KEY_BUCKET, META_BUCKET } from './buckets.ts';
import { Panic } from '../errors.ts';
import { MvccError } from './errors.ts';
import { REV_BYTES, revIntoBytes, u64ToBytes } from './revision.ts';
import type { RevisionBatch } from './types.ts';

export interface Waiter {
  resolve: () => void;
  reject: (e: unknown) => void;
}

/** Work done between commits, one bounded step at a time. */
export interface BackgroundWork {
  /** Date.now() at which the next step may run; undefined when there is nothing to do. */
  nextStepAt(): number | undefined;
  step(): Promise<void>;
  /**
   * Run the next step inside the writers' transaction instead of in a commit of its own; returns
   * what to run once that commit is durable.
   */
  ride(w: BackendWriter): (() => void) | undefined;
  /**
   * If the next step needs no write transaction, run it and return true. The queue runs it while
   * a writers' commit waits on the disk, where it does not lengthen their commit.
   */
  stepOutsideCommit(): boolean;
  /** The queue failed: reject whoever waits on this work. */
  fail(err: MvccError): void;
}

/**
 * Everything queued for the next backend commit. A load keeps a thousand writes in flight across
 * each commit's fdatasyncs, long enough for V8's scavenges to promote whatever they hold, so a
 * write adds no object of its own here: operations go into parallel arrays, and every write of
 * one commit waits on the same promise.
 */
interface Pending {
  buckets: string[];
  keys: Uint8Array[];
  /** null: delete. */
  values: (Uint8Array | null)[];
  /**
   * The `key` bucket's records that reads must see before they are durable (putVisible), by
   * revision: ascending (main, sub), as writes take revisions in order; numbers, so a record adds
   * no key object of its own (its revision key is written at commit time).
   */
  revMains: number[];
  revSubs: number[];
  revValues: Uint8Array[];
  batches: RevisionBatch[];
  /** The promise the writes of this commit wait on; made by the first durable(). */
  done: Deferred | undefined;
  consistentIndex: number | undefined;
}

interface Deferred extends Waiter {
  promise: Promise<void>;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // every caller of durable() awaits it; this only keeps a failure nobody awaits yet quiet
  promise.catch(() => {});
  return { promise, resolve, reject };
}

/**
 * How long writers must have been quiet before a background step commits on its own (while they
 * are not, steps ride on their commits).
 */
const WRITERS_QUIET_MS = 20;

/**
 * Background steps (100 keys each, compaction.ts) run per writers' commit while it waits on the
 * disk: the rate of one 500-key step per commit, with at most one small step's delay to the commit.
 */
const STEPS_PER_COMMIT = 5;

function newPending(): Pending {
  return {
    buckets: [],
    keys: [],
    values: [],
    revMains: [],
    revSubs: [],
    revValues: [],
    batches: [],
    done: undefined,
    consistentIndex: undefined,
  };
}

export class CommitQueue {
  background: BackgroundWork | undefined;
  readonly #backend: Backend;
  readonly #onDurable: (b: RevisionBatch) => void;
  #pending = newPending();
  /** The commit in flight, whose visible records reads still look up until it is durable. */
  #committed: Pending | undefined;
  #flushScheduled = false;
  #committing = false;
  #closing = false;
  #closeWaiters: (() => void)[] = [];
  #timer: NodeJS.Timeout | undefined;
  #failure: MvccError | undefined;
  /** Date.now() after the last writers' commit. */
  #lastWriteAt = 0;

  constructor(backend: Backend, onDurable: (b: RevisionBatch) => void) {
    this.#backend = backend;
    this.#onDurable = onDurable;
  }

  /** Set once a commit failed; every later write must be refused with it. */
  get failure(): MvccError | undefined {
    return this.#failure;
  }

  put(bucket: string, key: Uint8Array, value: Uint8Array): void {
    const p = this.#pending;
    p.buckets.push(bucket);
    p.keys.push(key);
    p.values.push(value);
  }

  delete(bucket: string, key: Uint8Array): void {
    const p = this.#pending;
    p.buckets.push(bucket);
    p.keys.push(key);
    p.values.push(null);
  }

  /**
   * A record of the `key` bucket at revision (main, sub) that reads must see before it is durable
   * (visible()); revisions must come in ascending order.
   */
  putVisible(main: number, sub: number, value: Uint8Array): void {
    const p = this.#pending;
    const n = p.revMains.length;
    // visible() binary-searches these: a revision out of order would be a record reads cannot find
    if (n > 0) {
      const m = p.revMains[n - 1]!;
      if (m > main || (m === main && p.revSubs[n - 1]! >= sub))
        throw new Panic(`commit queue: revision ${main}.${sub} written after ${m}.${p.revSubs[n - 1]!}`);
    }
    p.revMains.push(main);
    p.revSubs.push(sub);
    p.revValues.push(value);
  }

  /** The record at revision (main, sub) if it was written and is not yet durable. */
  visible(main: number, sub: number): Uint8Array | undefined {
    return findRev(this.#pending, main, sub) ?? (this.#committed && findRev(this.#committed, main, sub));
  }

  /** A revision to announce once this commit is durable. */
  announce(batch: RevisionBatch): void {
    this.#pending.batches.push(batch);
  }

  /** Store the replication index in the same backend transaction as the queued writes. */
  setConsistentIndex(index: number): void {
    this.#pending.consistentIndex = index;
  }

  /** A promise for the commit that will carry everything queued so far. */
  durable(): Promise<void> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    const p = this.#pending;
    p.done ??= deferred();
    this.schedule();
    return p.done.promise;
  }

  /** Make sure a flush runs soon (also to give background work its turn). */
  schedule(): void {
    if (this.#flushScheduled || this.#committing) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      void this.#flushLoop();
    });
  }

  /** Fail the queue: reject every waiter queued now, and every later write. */
  fail(cause: unknown, more?: Waiter): void {
    this.#failure = new MvccError(
      'ERR_STORE_FAILED',
      `boltkv: a backend commit failed; reopen the store: ${String(cause)}`,
      { cause },
    );
    const waiting = this.#pending.done;
    this.#pending = newPending();
    waiting?.reject(this.#failure);
    more?.reject(this.#failure);
    this.background?.fail(this.#failure);
  }

  /** Commit what is queued (no more background steps), then resolve. */
  async close(): Promise<void> {
    this.#closing = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    if (this.#committing || this.#flushScheduled || this.#hasWork()) {
      await new Promise<void>((resolve) => {
        this.#closeWaiters.push(resolve);
        this.schedule();
      });
    }
  }

  #hasWork(): boolean {
    const p = this.#pending;
    return (
      p.keys.length > 0 ||
      p.revMains.length > 0 ||
      p.done !== undefined ||
      p.batches.length > 0 ||
      p.consistentIndex !== undefined
    );
  }

  async #flushLoop(): Promise<void> {
    if (this.#committing) return;
    this.#committing = true;
    try {
      for (;;) {
        if (this.#failure !== undefined) break;
        if (this.#hasWork()) {
          const p = this.#pending;
          this.#pending = newPending();
          await this.#commit(p);
          continue;
        }
        let at = this.#closing ? undefined : this.background?.nextStepAt();
        if (at === undefined) break;
        // While writers commit, background steps ride on their commits; a step commits on its
        // own only once they have been quiet for a while, so a writer seldom waits behind one.
        at = Math.max(at, this.#lastWriteAt + WRITERS_QUIET_MS);
        // Between background steps the loop is released, so a writer arriving meanwhile commits at
        // once instead of queueing behind the next step.
        const wait = at - Date.now();
        if (wait > 0) {
          if (this.#timer === undefined) {
            this.#timer = setTimeout(() => {
              this.#timer = undefined;
              this.schedule();
            }, wait);
          }
          break;
        }
        await this.background!.step();
        // always give other work a turn between steps
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } finally {
      this.#committing = false;
    }
    if (this.#failure === undefined && this.#hasWork()) {
      this.schedule();
    } else if (this.#closing || this.#failure !== undefined) {
      const ws = this.#closeWaiters;
      this.#closeWaiters = [];
      for (const f of ws) f();
    }
  }

  async #commit(p: Pending): Promise<void> {
    const bg = this.#closing ? undefined : this.background;
    const at = bg?.nextStepAt();
    const ride = at !== undefined && at <= Date.now();
    let after: (() => void) | undefined;
    try {
      this.#committed = p;
      const committing = this.#backend.update((w) => {
        const { revMains, revSubs, revValues } = p;
        // the engine copies the key, so one buffer serves every revision key of the commit
        const rk = new Uint8Array(REV_BYTES);
        for (let i = 0; i < revMains.length; i++)
          w.put(KEY_BUCKET, revIntoBytes(rk, revMains[i]!, revSubs[i]!), revValues[i]!);
        const { buckets, keys, values } = p;
        for (let i = 0; i < keys.length; i++) {
          const v = values[i]!;
          if (v === null) w.delete(buckets[i]!, keys[i]!);
          else w.put(buckets[i]!, keys[i]!, v);
        }
        if (p.consistentIndex !== undefined) w.put(META_BUCKET, CONSISTENT_INDEX_KEY, u64ToBytes(p.consistentIndex));
        if (ride) after = bg!.ride(w);
      });
      if (at !== undefined) {
        // From the next turn on the commit waits on fdatasync, off the event loop: background work
        // that needs no write transaction runs in that wait (also before its next batch is due, so
        // the batch is ready when it is), in small steps, one per turn, while the commit is in
        // flight, at most STEPS_PER_COMMIT of them. A step still running when the fdatasync
        // completes delays the writers, so what a commit can be held by is one small step, not the
        // whole budget. The budget per commit stays what one 500-key step was: running steps for
        // as long as the commit was in flight made compaction 1.2-1.3x faster, but more of the
        // writers' commits carried a batch and their p99 during it got worse at 300k (6.8-7.1
        // against 5.9-6.2 ms, alternated).
        let landed = false;
        committing.then(
          () => (landed = true),
          () => (landed = true),
        );
        // The first step runs even when the commit has landed (a backend that does not wait on a
        // disk lands at once): compaction must progress while writers commit back to back.
        for (let i = 0; i < STEPS_PER_COMMIT; i++) {
          await new Promise<void>((resolve) => setImmediate(resolve));
          if ((i > 0 && landed) || !bg!.stepOutsideCommit()) break;
        }
      }
      await committing;
    } catch (e) {
      this.#committed = undefined;
      this.fail(e, p.done);
      return;
    }
    this.#lastWriteAt = Date.now();
    after?.();
    this.#committed = undefined;
    for (const b of p.batches) this.#onDurable(b);
    p.done?.resolve();
  }
}

/** Binary search of p's visible records for revision (main, sub). */
function findRev(p: Pending, main: number, sub: number): Uint8Array | undefined {
  const { revMains, revSubs } = p;
  let lo = 0;
  let hi = revMains.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const m = revMains[mid]!;
    if (m < main || (m === main && revSubs[mid]! < sub)) lo = mid + 1;
    else hi = mid;
  }
  return lo < revMains.length && revMains[lo] === main && revSubs[lo] === sub ? p.revValues[lo] : undefined;
}
