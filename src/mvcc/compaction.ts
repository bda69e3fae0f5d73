/**
 * The compaction job (etcd's scheduleCompaction): after compact(rev) moves the compact revision
 * (reads below it fail at once), old revisions are removed in the background, one bounded step
 * at a time: first the key index in chunks, then the `key` bucket in batches of `batchLimit`
 * deleted revision keys, at most one batch per `intervalMs`. While writers commit, a step rides
 * on their commit (etcd's batches go into its backend's one shared write transaction too); once
 * they are quiet it commits on its own. `finishedCompactRev` is written with the last batch, so a restart finds
 * `scheduledCompactRev` ahead of it and resumes.
 */
import type { Backend, BackendReader, BackendWriter } from './backend.ts';
import { FINISHED_COMPACT_KEY, KEY_BUCKET, META_BUCKET } from './buckets.ts';
import type { BackgroundWork, Waiter } from './commit-queue.ts';
import type { MvccError } from './errors.ts';
import { KeepSet, type KeyIndex } from './key-index.ts';
import { bytesToRev, mainRevPrefix, revKeyMain, revKeySub, revToBytes } from './revision.ts';

/**
 * A batch ends after `batchLimit` deletions (etcd counts revisions examined): a kept revision costs
 * a look, not a write, and in a typical compaction half of those examined are kept, so counting
 * them doubled the batches. Examining is bounded too (a batch runs inside a writers' commit), and
 * longer runs of kept revisions are passed over outside any commit.
 */
const EXAMINE_FACTOR = 2;

/**
 * Kept revisions passed over per step outside a commit (a cursor step each, more when the leaf is
 * read from disk). Steps outside a commit run in a writers' fdatasync wait; what outlasts the
 * wait delays their answer, so they are small: 2,000 made the writer's p99 during a 100k
 * compaction 13.7-17.4 ms, 500 made it 7.2-9.5 (alternated, same minutes).
 */
const SKIP_STEP = 500;

/** Kept revisions a ride looks past before leaving the rest to a step outside the commit. */
const RIDE_LOOK = 64;

/** Keys of the key index compacted per step (~0.25 ms), small for the same reason as SKIP_STEP. */
const INDEX_COMPACT_CHUNK = 500;

interface Job {
  rev: number;
  /** Revisions ≤ rev to keep; complete once the index phase is over. */
  keep: KeepSet;
  /** Index phase: the next key to compact in the key index; undefined once done. */
  indexFrom: string | undefined;
  /** Deletion phase: the next revision key to examine. */
  next: Uint8Array;
  /** `next` is known to be a revision to delete, or DONE: the next batch can start there. */
  ready: boolean;
  waiters: Waiter[];
}

export class Compactor implements BackgroundWork {
  readonly #jobs: Job[] = [];
  readonly #backend: Backend;
  readonly #index: KeyIndex;
  readonly #batchLimit: number;
  readonly #intervalMs: number;
  readonly #onBackendFailure: (e: unknown) => void;
  /** Date.now() before which the next deletion batch does not start. */
  #resumeAt = 0;

  constructor(
    backend: Backend,
    index: KeyIndex,
    batchLimit: number,
    intervalMs: number,
    onBackendFailure: (e: unknown) => void,
  ) {
    this.#backend = backend;
    this.#index = index;
    this.#batchLimit = batchLimit;
    this.#intervalMs = intervalMs;
    this.#onBackendFailure = onBackendFailure;
  }

  /** Start compacting at `rev` (the caller has recorded scheduledCompactRev). */
  schedule(rev: number): void {
    this.#jobs.push({ rev, keep: new KeepSet(), indexFrom: '', next: revToBytes(0, 0), ready: false, waiters: [] });
  }

  /** On open: a compaction a crash cut short. The key index is compacted at once. */
  resume(rev: number): void {
    const keep = this.#index.compact(rev);
    this.#jobs.push({ rev, keep, indexFrom: undefined, next: revToBytes(0, 0), ready: false, waiters: [] });
  }

  get pending(): boolean {
    return this.#jobs.length > 0;
  }

  /** Resolves once the newest scheduled compaction has physically finished. */
  whenDone(): Promise<void> {
    const last = this.#jobs[this.#jobs.length - 1];
    if (last === undefined) return Promise.resolve();
    return new Promise<void>((resolve, reject) => last.waiters.push({ resolve, reject }));
  }

  nextStepAt(): number | undefined {
    return this.#jobs.length === 0 ? undefined : this.#resumeAt;
  }

  /**
   * A step with a commit of its own, run when no writer is committing. Passing over kept
   * revisions needs no commit: it reads a snapshot, and only a batch with something to delete
   * opens a write transaction.
   */
  async step(): Promise<void> {
    const job = this.#jobs[0];
    if (job === undefined) return;
    if (!job.ready) {
      this.stepOutsideCommit();
      return;
    }
    let after: (() => void) | undefined;
    try {
      await this.#backend.update((w) => {
        after = this.#deleteBatch(job, w);
      });
    } catch (e) {
      this.#onBackendFailure(e);
      return;
    }
    after?.();
  }

  /**
   * The next step, inside the writers' transaction: a batch rides on their commit (one commit,
   * one pair of fdatasyncs for both) instead of holding them behind a commit of its own. Returns
   * what to do once that commit is durable. Steps that need no transaction are left to
   * stepOutsideCommit, which runs while the commit waits on the disk.
   */
  ride(w: BackendWriter): (() => void) | undefined {
    const job = this.#jobs[0];
    if (job === undefined || job.indexFrom !== undefined) return undefined;
    // a batch usually ends just before more to delete: a short look settles that here
    if (!job.ready) this.#skipKept(job, w, RIDE_LOOK);
    return job.ready ? this.#deleteBatch(job, w) : undefined;
  }

  /**
   * A step that needs no write transaction: a chunk of the key index, or passing over kept
   * revisions in a read snapshot (which the deletions in flight do not touch: they are all below
   * job.next). False when the next step is a batch.
   */
  stepOutsideCommit(): boolean {
    const job = this.#jobs[0];
    if (job === undefined) return false;
    if (job.indexFrom !== undefined) {
      this.#indexChunk(job);
      return true;
    }
    if (job.ready) return false;
    try {
      this.#backend.view((r) => this.#skipKept(job, r, SKIP_STEP));
    } catch (e) {
      this.#onBackendFailure(e);
    }
    return true;
  }

  #indexChunk(job: Job): void {
    job.indexFrom = this.#index.compactChunk(job.rev, job.indexFrom!, INDEX_COMPACT_CHUNK, job.keep);
  }

  /**
   * Move job.next past at most `max` kept revisions. job.ready once it sits on a revision to
   * delete, or on DONE when no revision ≤ job.rev is left to look at.
   */
  #skipKept(job: Job, r: BackendReader, max: number): void {
    const keep = job.keep;
    let seen = 0;
    let found = false;
    let next: Uint8Array = DONE;
    r.scan(KEY_BUCKET, job.next, mainRevPrefix(job.rev + 1), (k) => {
      if (!keep.has(revKeyMain(k), revKeySub(k))) {
        found = true;
        next = k.slice();
        return false;
      }
      if (++seen < max) return true;
      next = after(k);
      return false;
    });
    job.next = next;
    job.ready = found || next === DONE;
  }

  /**
   * Delete one bounded batch from job.next (which #skipKept left on a revision to delete, or DONE)
   * in `w`; the last batch also records finishedCompactRev. Returns what to do once `w` is durable.
   */
  #deleteBatch(job: Job, w: BackendWriter): () => void {
    let next: Uint8Array | undefined;
    if (job.next !== DONE) {
      const keep = job.keep;
      next = deleteRange(
        w,
        job.next,
        mainRevPrefix(job.rev + 1),
        (k) => !keep.has(revKeyMain(k), revKeySub(k)),
        this.#batchLimit,
      );
    }
    if (next === undefined) w.put(META_BUCKET, FINISHED_COMPACT_KEY, revToBytes(job.rev, 0));
    // job.next moves on now: if the commit fails, the queue fails and the job is dropped with it
    job.next = next ?? DONE;
    job.ready = false;
    return () => {
      this.#resumeAt = Date.now() + this.#intervalMs;
      if (next !== undefined) return;
      this.#jobs.shift();
      for (const waiter of job.waiters) waiter.resolve();
    };
  }

  fail(err: MvccError): void {
    this.#rejectAll(err);
  }

  /** The store closes: waiters reject; the job resumes on reopen from the stored progress. */
  close(err: MvccError): void {
    this.#rejectAll(err);
  }

  #rejectAll(err: MvccError): void {
    for (const job of this.#jobs.splice(0)) for (const w of job.waiters) w.reject(err);
  }
}

/** job.next once the deletion phase has nothing more to examine. */
const DONE = new Uint8Array(0);

/** The smallest revision key above `k` ((main, sub) is unique, tombstone or not). */
function after(k: Uint8Array): Uint8Array {
  const r = bytesToRev(k);
  return revToBytes(r.main, r.sub + 1);
}

/**
 * Delete up to `limit` keys `doomed` picks in [from, to) of the key bucket (examining at most
 * EXAMINE_FACTOR times as many); where to go on, undefined once `to` is reached.
 */
function deleteRange(
  w: BackendWriter,
  from: Uint8Array,
  to: Uint8Array,
  doomed: (k: Uint8Array) => boolean,
  limit: number,
): Uint8Array | undefined {
  if (w.deleteWhere !== undefined) {
    const r = w.deleteWhere(KEY_BUCKET, from, to, doomed, limit, limit * EXAMINE_FACTOR);
    return r.next === undefined ? undefined : new Uint8Array(r.next);
  }
  // key by key: collect first, a cursor must not walk a bucket that is being deleted from
  const dead: Uint8Array[] = [];
  let seen = 0;
  let next: Uint8Array | undefined;
  w.scan(KEY_BUCKET, from, to, (k) => {
    if (dead.length >= limit || seen >= limit * EXAMINE_FACTOR) {
      next = k.slice();
      return false;
    }
    seen++;
    if (doomed(k)) dead.push(k.slice());
    return true;
  });
  for (const k of dead) w.delete(KEY_BUCKET, k);
  return next;
}
