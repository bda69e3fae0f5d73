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
import { CONSISTENT_INDEX_KEY, META_BUCKET } from './buckets.ts';
import { MvccError } from './errors.ts';
import { u64ToBytes } from './revision.ts';
import type { RevisionBatch } from './types.ts';
import { bytesToByteString as bstr } from '../keys.ts';

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
   * If the next step needs no write transaction, run a small slice of it and return true. The queue
   * runs slices while a writers' commit waits on the disk, where they do not lengthen their commit.
   */
  stepOutsideCommit(): boolean;
  /** The queue failed: reject whoever waits on this work. */
  fail(err: MvccError): void;
}

/** Everything queued for the next backend commit. */
interface Pending {
  ops: { bucket: string; key: Uint8Array; value: Uint8Array | null }[];
  overlayKeys: string[];
  batches: RevisionBatch[];
  waiters: Waiter[];
  consistentIndex: number | undefined;
}

/**
 * How long writers must have been quiet before a background step commits on its own (while they
 * are not, steps ride on their commits).
 */
const WRITERS_QUIET_MS = 20;

function newPending(): Pending {
  return { ops: [], overlayKeys: [], batches: [], waiters: [], consistentIndex: undefined };
}

export class CommitQueue {
  /** Records written but not yet durable, by revision key (byte-string): reads look here first. */
  readonly overlay = new Map<string, Uint8Array>();
  background: BackgroundWork | undefined;
  readonly #backend: Backend;
  readonly #onDurable: (b: RevisionBatch) => void;
  #pending = newPending();
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
    this.#pending.ops.push({ bucket, key, value });
  }

  delete(bucket: string, key: Uint8Array): void {
    this.#pending.ops.push({ bucket, key, value: null });
  }

  /** A record that reads must see before it is durable. */
  putVisible(bucket: string, key: Uint8Array, value: Uint8Array): void {
    const id = bstr(key);
    this.overlay.set(id, value);
    this.#pending.overlayKeys.push(id);
    this.put(bucket, key, value);
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
    const p = new Promise<void>((resolve, reject) => this.#pending.waiters.push({ resolve, reject }));
    this.schedule();
    return p;
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
  fail(cause: unknown, more: Waiter[] = []): void {
    this.#failure = new MvccError(
      'ERR_STORE_FAILED',
      `boltkv: a backend commit failed; reopen the store: ${String(cause)}`,
      { cause },
    );
    const all = [...this.#pending.waiters, ...more];
    this.#pending = newPending();
    for (const w of all) w.reject(this.#failure);
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
    return p.ops.length > 0 || p.waiters.length > 0 || p.batches.length > 0 || p.consistentIndex !== undefined;
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
      const committing = this.#backend.update((w) => {
        for (const op of p.ops) {
          if (op.value === null) w.delete(op.bucket, op.key);
          else w.put(op.bucket, op.key, op.value);
        }
        if (p.consistentIndex !== undefined) w.put(META_BUCKET, CONSISTENT_INDEX_KEY, u64ToBytes(p.consistentIndex));
        if (ride) after = bg!.ride(w);
      });
      if (at !== undefined) {
        // One turn later the commit is waiting on fdatasync, off the event loop: background work
        // that needs no write transaction runs in that wait (also before its next batch is due,
        // so the batch is ready when it is), in small slices with a turn of the loop between them,
        // until the commit is durable (one at least, so that work goes on over a backend that
        // commits at once): the writers' answer then waits for one slice at most.
        let inFlight = true;
        const landed = (): void => {
          inFlight = false;
        };
        committing.then(landed, landed); // rejections are handled below
        let first = true;
        do {
          await new Promise<void>((resolve) => setImmediate(resolve));
          if (!first && !inFlight) break;
          first = false;
        } while (bg!.stepOutsideCommit());
      }
      await committing;
    } catch (e) {
      this.fail(e, p.waiters);
      return;
    }
    this.#lastWriteAt = Date.now();
    after?.();
    for (const id of p.overlayKeys) this.overlay.delete(id);
    for (const b of p.batches) this.#onDurable(b);
    for (const w of p.waiters) w.resolve();
  }
}
