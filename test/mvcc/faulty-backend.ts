/**
 * A Backend wrapper for crash tests: counts commits and, once armed, makes a chosen commit fail
 * before anything of it reaches the inner backend — exactly what a crash before the commit's fsync
 * leaves behind. Closing it leaves the inner backend open so a test can "restart" over it.
 */
import type { Backend, BackendReader, BackendWriter } from '../../src/mvcc/backend.ts';

export class FaultyBackend implements Backend {
  commits = 0;
  /** The commit number (1-based, counted from construction) that fails; Infinity: none. */
  failAt = Infinity;
  constructor(readonly inner: Backend) {}

  view<T>(fn: (r: BackendReader) => T): T {
    return this.inner.view(fn);
  }

  async update<T>(fn: (w: BackendWriter) => T): Promise<T> {
    this.commits++;
    if (this.commits >= this.failAt) throw new Error(`injected crash at commit ${this.commits}`);
    return this.inner.update(fn);
  }

  close(): void {}
}
