/**
 * An EventSource whose history is computed, not stored: revision r (r >= 2) holds one PUT of key
 * `k<r mod keys>` with an 8-byte value. It lets slow-consumer tests and benchmarks write millions
 * of revisions and measure what the watch layer itself holds, free of the store's own memory.
 */
import { Buffer } from 'node:buffer';
import type { Event, EventSource, RevisionBatch } from '../../../src/mvcc/types.ts';
import { FakeCompactedError, inRange } from './fake-source.ts';

export class SyntheticSource implements EventSource {
  #rev = 1;
  #compact = 0;
  readonly #keys: number;
  readonly #keyBytes: Uint8Array[];
  readonly #keyStrs: string[];
  readonly #listeners = new Set<(b: RevisionBatch) => void>();

  constructor(keys = 100, prefix = 'k') {
    this.#keys = keys;
    this.#keyStrs = Array.from({ length: keys }, (_, i) => `${prefix}${i}`);
    this.#keyBytes = this.#keyStrs.map((k) => new Uint8Array(Buffer.from(k, 'latin1')));
  }

  keyOf(rev: number): string {
    return this.#keyStrs[rev % this.#keys]!;
  }

  eventAt(rev: number): Event {
    const value = new Uint8Array(8);
    new DataView(value.buffer).setFloat64(0, rev);
    return {
      type: 'PUT',
      kv: {
        key: this.#keyBytes[rev % this.#keys]!,
        createRevision: rev,
        modRevision: rev,
        version: 1,
        value,
        lease: 0n,
      },
    };
  }

  currentRevision(): number {
    return this.#rev;
  }

  compactRevision(): number {
    return this.#compact;
  }

  onCommit(listener: (batch: RevisionBatch) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Commits `n` revisions, notifying listeners for each. */
  write(n: number): void {
    for (let i = 0; i < n; i++) {
      const rev = ++this.#rev;
      const batch: RevisionBatch = { revision: rev, events: [this.eventAt(rev)] };
      for (const l of this.#listeners) l(batch);
    }
  }

  /** Moves the revision forward without notifying (history that exists "on disk"). */
  advanceSilently(n: number): void {
    this.#rev += n;
  }

  compact(rev: number): void {
    this.#compact = rev;
  }

  readEvents(req: Parameters<EventSource['readEvents']>[0]): RevisionBatch[] {
    if (req.fromRev < this.#compact) throw new FakeCompactedError();
    const key = Buffer.from(req.key).toString('latin1');
    const end = req.rangeEnd === undefined ? undefined : Buffer.from(req.rangeEnd).toString('latin1');
    const out: RevisionBatch[] = [];
    const to = Math.min(req.toRev, this.#rev);
    for (let r = Math.max(2, req.fromRev); r <= to; r++) {
      if (!inRange(this.#keyStrs[r % this.#keys]!, key, end)) continue;
      out.push({ revision: r, events: [this.eventAt(r)] });
      if (req.limit !== undefined && out.length >= req.limit) break;
    }
    return out;
  }
}
