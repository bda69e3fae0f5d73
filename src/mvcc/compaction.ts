/**
 * The compaction job (etcd's scheduleCompaction): after compact(rev) moves the compact revision
 * (reads below it fail at once), old revisions are removed in the background, one bounded step
 * between write commits: first the key index in chunks, then the `key` bucket in batches of
 * `batchLimit` deleted revision keys, pausing `intervalMs` between batches. `finishedCompactRev` is written
 * with the last batch, so a restart finds `scheduledCompactRev` ahead of it and resumes.
 */
import type { Backend } from './backend.ts';
import { FINISHED_COMPACT_KEY, KEY_BUCKET, META_BUCKET } from './buckets.ts';
import type { BackgroundWork, Waiter } from './commit-queue.ts';
import type { MvccError } from './errors.ts';
import { KeepSet, type KeyIndex } from './key-index.ts';
import { bytesToRev, mainRevPrefix, revKeyMain, revKeySub, revToBytes } from './revision.ts';

/**
 * A batch ends after `batchLimit` deletions (etcd counts revisions examined): a kept revision costs
 * a cursor step, not a commit, and in a typical compaction half of those examined are kept, so
 * counting them doubled the batches and the pauses between them. Examining is bounded too, so a
 * batch of mostly kept revisions stays short.
 */
const EXAMINE_FACTOR = 8;

/** Keys of the key index compacted per step, so a million-key compaction never blocks for long. */
const INDEX_COMPACT_CHUNK = 2000;

interface Job {
  rev: number;
  /** Revisions ≤ rev to keep; complete once the index phase is over. */
  keep: KeepSet;
  /** Index phase: the next key to compact in the key index; undefined once done. */
  indexFrom: string | undefined;
  /** Deletion phase: the next revision key to examine. */
  next: Uint8Array;
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

  constructor(backend: Backend, index: KeyIndex, batchLimit: number, intervalMs: number, onBackendFailure: (e: unknown) => void) {
    this.#backend = backend;
    this.#index = index;
    this.#batchLimit = batchLimit;
    this.#intervalMs = intervalMs;
    this.#onBackendFailure = onBackendFailure;
  }

  /** Start compacting at `rev` (the caller has recorded scheduledCompactRev). */
  schedule(rev: number): void {
    this.#jobs.push({ rev, keep: new KeepSet(), indexFrom: '', next: revToBytes(0, 0), waiters: [] });
  }

  /** On open: a compaction a crash cut short. The key index is compacted at once. */
  resume(rev: number): void {
    const keep = this.#index.compact(rev);
    this.#jobs.push({ rev, keep, indexFrom: undefined, next: revToBytes(0, 0), waiters: [] });
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

  async step(): Promise<void> {
    const job = this.#jobs[0];
    if (job === undefined) return;
    if (job.indexFrom !== undefined) {
      job.indexFrom = this.#index.compactChunk(job.rev, job.indexFrom, INDEX_COMPACT_CHUNK, job.keep);
      return;
    }
    await this.#deleteBatch(job);
    this.#resumeAt = Date.now() + this.#intervalMs;
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

  /** Delete one bounded batch of revisions ≤ job.rev that the compaction does not keep. */
  async #deleteBatch(job: Job): Promise<void> {
    const limit = this.#batchLimit;
    let finished = false;
    let last: Uint8Array | undefined;
    try {
      await this.#backend.update((w) => {
        // collect first: a cursor must not walk a bucket that is being deleted from
        const doomed: Uint8Array[] = [];
        let seen = 0;
        let stopped = false;
        w.scan(KEY_BUCKET, job.next, mainRevPrefix(job.rev + 1), (k) => {
          seen++;
          if (!job.keep.has(revKeyMain(k), revKeySub(k))) doomed.push(k.slice());
          if (doomed.length < limit && seen < limit * EXAMINE_FACTOR) return true;
          last = new Uint8Array(k); // a copy: it is read after the commit, when page memory may be reused
          stopped = true;
          return false;
        });
        for (const k of doomed) w.delete(KEY_BUCKET, k);
        if (!stopped) {
          w.put(META_BUCKET, FINISHED_COMPACT_KEY, revToBytes(job.rev, 0));
          finished = true;
        }
      });
    } catch (e) {
      this.#onBackendFailure(e);
      return;
    }
    if (finished) {
      this.#jobs.shift();
      for (const w of job.waiters) w.resolve();
    } else {
      const r = bytesToRev(last!);
      // resume just past the last key seen ((main, sub) is unique, tombstone or not)
      job.next = revToBytes(r.main, r.sub + 1);
    }
  }
}
