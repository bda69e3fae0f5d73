/**
 * The compaction job (etcd's scheduleCompaction): after compact(rev) moves the compact revision
 * (reads below it fail at once), old revisions are removed in the background, one bounded step
 * at a time: first the key index in chunks, then the `key` bucket in batches of `batchLimit`
 * deleted revision keys (chosen beforehand in read snapshots), at most one batch per `intervalMs`. While writers commit, a step rides
 * on their commit (etcd's batches go into its backend's one shared write transaction too); once
 * they are quiet it commits on its own. `finishedCompactRev` is written with the last batch, so a restart finds
 * `scheduledCompactRev` ahead of it and resumes.
 */
import type { Backend, BackendReader, BackendWriter } from './backend.ts';
import { FINISHED_COMPACT_KEY, KEY_BUCKET, META_BUCKET } from './buckets.ts';
import type { BackgroundWork, Waiter } from './commit-queue.ts';
import type { MvccError } from './errors.ts';
import { KeepSet, type KeyIndex } from './key-index.ts';
import { mainRevPrefix, revKeyMain, revKeySub, revToBytes } from './revision.ts';
import { Panic } from '../errors.ts';

/**
 * Revision keys examined per collection step (a cursor step and a keep-set look each, ~0.07 ms
 * for 100). Steps run in a writers' fdatasync wait, and a step still running when the fdatasync
 * completes delays their answer, so steps are small and the queue runs several per commit wait
 * (commit-queue.ts, STEPS_PER_COMMIT): at most one step's time is added to a commit. 2,000 made
 * the writer's p99 during a 100k compaction 13.7-17.4 ms, 500 made it 7.2-9.5 (alternated).
 */
const COLLECT_STEP = 100;

/** Keys of the key index compacted per step (~0.05 ms), small for the same reason as COLLECT_STEP. */
const INDEX_COMPACT_CHUNK = 100;

/**
 * One compaction job. Deleting is split in two so that a writer's commit carries only the engine's
 * leaf rewrite: which revision keys die is decided outside any write transaction (in read
 * snapshots, while a writers' commit waits on fdatasync or when they are idle), and a batch then
 * deletes exactly the chosen keys. That is safe because nothing but compaction ever deletes a
 * revision key and every write after compact(rev) gets a revision above rev: the chosen keys are
 * still there when the batch runs, and no key written in between falls among them.
 */
interface Job {
  rev: number;
  /** Revisions ≤ rev to keep; complete once the index phase is over. */
  keep: KeepSet;
  /** Index phase: the next key to compact in the key index; undefined once done. */
  indexFrom: string | undefined;
  /** Collection: the next revision key to examine, or DONE once every one ≤ rev was examined. */
  next: Uint8Array;
  /** Chosen for the next batch, ascending: main and sub revision of each doomed revision key. */
  mains: number[];
  subs: number[];
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
    this.#jobs.push(newJob(rev, new KeepSet(this.#index.size), ''));
  }

  /** On open: a compaction a crash cut short. The key index is compacted at once. */
  resume(rev: number): void {
    this.#jobs.push(newJob(rev, this.#index.compact(rev), undefined));
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
   * A step with a commit of its own, run when no writer is committing. Choosing what to delete
   * needs no commit: it reads a snapshot, and only a batch with something to delete (or the
   * finished mark) opens a write transaction.
   */
  async step(): Promise<void> {
    const job = this.#jobs[0];
    if (job === undefined) return;
    if (!this.#ready(job)) {
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
   * The next batch, inside the writers' transaction: it rides on their commit (one commit, one pair
   * of fdatasyncs for both) instead of holding them behind a commit of its own. Only a batch
   * whose keys were already chosen rides, so the commit does the engine's leaf rewrite and nothing
   * else. Returns what to do once that commit is durable.
   */
  ride(w: BackendWriter): (() => void) | undefined {
    const job = this.#jobs[0];
    if (job === undefined || !this.#ready(job)) return undefined;
    return this.#deleteBatch(job, w);
  }

  /**
   * A step that needs no write transaction: a chunk of the key index, or choosing the next
   * batch's keys in a read snapshot (the deletions in flight do not touch them: they are all below
   * job.next). False when the next step is a batch.
   */
  stepOutsideCommit(): boolean {
    const job = this.#jobs[0];
    if (job === undefined) return false;
    if (job.indexFrom !== undefined) {
      job.indexFrom = this.#index.compactChunk(job.rev, job.indexFrom, INDEX_COMPACT_CHUNK, job.keep);
      return true;
    }
    if (this.#ready(job)) return false;
    try {
      this.#backend.view((r) => this.#collect(job, r, COLLECT_STEP));
    } catch (e) {
      this.#onBackendFailure(e);
    }
    return true;
  }

  /** A batch can run: its keys are chosen (a full batch, or the last one, possibly empty). */
  #ready(job: Job): boolean {
    return job.indexFrom === undefined && (job.next === DONE || job.mains.length >= this.#batchLimit);
  }

  /** Examine up to `max` revision keys from job.next, choosing those not kept, up to a full batch. */
  #collect(job: Job, r: BackendReader, max: number): void {
    const { keep, mains, subs } = job;
    const limit = this.#batchLimit;
    let seen = 0;
    let next: Uint8Array = DONE;
    r.scan(KEY_BUCKET, job.next, mainRevPrefix(job.rev + 1), (k) => {
      if (seen >= max || mains.length >= limit) {
        next = k.slice();
        return false;
      }
      seen++;
      const main = revKeyMain(k);
      const sub = revKeySub(k);
      if (!keep.has(main, sub)) {
        mains.push(main);
        subs.push(sub);
      }
      return true;
    });
    job.next = next;
  }

  /**
   * Delete the chosen keys in `w`; the last batch also records finishedCompactRev. Returns what to
   * do once `w` is durable.
   */
  #deleteBatch(job: Job, w: BackendWriter): () => void {
    const { mains, subs } = job;
    if (mains.length > 0) deleteChosen(w, mains, subs);
    const last = job.next === DONE;
    if (last) w.put(META_BUCKET, FINISHED_COMPACT_KEY, revToBytes(job.rev, 0));
    // the chosen keys are gone now: if the commit fails, the queue fails and the job is dropped with it
    job.mains = [];
    job.subs = [];
    return () => {
      this.#resumeAt = Date.now() + this.#intervalMs;
      if (!last) return;
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

function newJob(rev: number, keep: KeepSet, indexFrom: string | undefined): Job {
  return { rev, keep, indexFrom, next: revToBytes(0, 0), mains: [], subs: [], waiters: [] };
}

/** job.next once every revision key ≤ the job's revision was examined. */
const DONE = new Uint8Array(0);

/**
 * Delete the revision keys (mains[i], subs[i]), ascending, from the key bucket. The walk covers
 * [first, just above the last) and the predicate matches the list in order (two number compares a
 * key), so the commit carrying it pays for the leaf rewrite, not for the choice.
 */
function deleteChosen(w: BackendWriter, mains: readonly number[], subs: readonly number[]): void {
  const n = mains.length;
  const from = revToBytes(mains[0]!, subs[0]!);
  const to = revToBytes(mains[n - 1]!, subs[n - 1]! + 1);
  let p = 0;
  const doomed = (k: Uint8Array): boolean => {
    if (p < n && revKeyMain(k) === mains[p] && revKeySub(k) === subs[p]) {
      p++;
      return true;
    }
    return false;
  };
  if (w.deleteWhere !== undefined) {
    w.deleteWhere(KEY_BUCKET, from, to, doomed, n, Number.MAX_SAFE_INTEGER);
  } else {
    // key by key: collect first, a cursor must not walk a bucket that is being deleted from
    const dead: Uint8Array[] = [];
    w.scan(KEY_BUCKET, from, to, (k) => {
      if (doomed(k)) dead.push(k.slice());
    });
    for (const k of dead) w.delete(KEY_BUCKET, k);
  }
  if (p !== n) throw new Panic(`compaction: ${n - p} of ${n} chosen revision keys were not found`);
}
