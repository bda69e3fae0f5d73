/**
 * A Backend wrapper that lets raft persistence ride in the revision layer's own commits. The
 * member stages the raft bucket writes of a Ready here, then applies the Ready's committed entries
 * to the store; the store's next commit runs the staged writes first, in the same bolt write
 * transaction, so "log + hard state + applied data + consistent_index" land atomically. When no
 * apply follows (a follower that only appends), flush() commits the staged writes on their own.
 */
import type { Backend, BackendReader, BackendWriter } from '../mvcc/backend.ts';
import type { RaftWrite } from './bolt-raft-storage.ts';
import { mark, tracing } from './trace.ts';

interface Staged {
  writes: RaftWrite[];
  resolve: () => void;
  reject: (e: unknown) => void;
}

export class RaftBackend implements Backend {
  private staged: Staged[] = [];

  constructor(readonly inner: Backend) {}

  view<T>(fn: (r: BackendReader) => T): T {
    return this.inner.view(fn);
  }

  update<T>(fn: (w: BackendWriter) => T): Promise<T> {
    let carried: Staged[] = [];
    let durable: Array<() => void> = [];
    const p = this.inner.update((w) => {
      if (tracing) mark('bolt-tx', this.staged.length);
      carried = this.staged;
      this.staged = [];
      durable = [];
      for (const s of carried) {
        for (const write of s.writes) {
          const then = write(w);
          if (typeof then === 'function') durable.push(then);
        }
      }
      return fn(w);
    });
    return p.then(
      (v) => {
        if (tracing) mark('bolt-durable');
        for (const f of durable) f();
        for (const s of carried) s.resolve();
        return v;
      },
      (e: unknown) => {
        for (const s of carried) s.reject(e);
        throw e;
      },
    );
  }

  /** Queues raft writes for the next commit; resolves once that commit is durable (after the writes' own durable callbacks ran). */
  stage(writes: RaftWrite[]): Promise<void> {
    return new Promise<void>((resolve, reject) => this.staged.push({ writes, resolve, reject }));
  }

  /** Commits staged writes now if no other commit has picked them up. */
  async flush(): Promise<void> {
    if (this.staged.length === 0) return;
    await this.update(() => undefined);
  }

  size(): { dbSize: number; dbSizeInUse: number } {
    return this.inner.size?.() ?? { dbSize: 0, dbSizeInUse: 0 };
  }

  close(): void | Promise<void> {
    const err = new Error('backend closed');
    for (const s of this.staged) s.reject(err);
    this.staged = [];
    return this.inner.close();
  }
}
