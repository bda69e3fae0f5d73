/**
 * In-memory EventSource for watch tests and benchmarks: a tiny MVCC with etcd's revision rules
 * (one main revision per changing write, sub-revisions in op order, generations/versions,
 * tombstones), a history list and compaction. It keeps the full log separately so checkers can
 * replay what really happened even after compaction.
 */
import { Buffer } from 'node:buffer';
import type { Event, EventSource, KeyValue, RevisionBatch } from '../../../src/mvcc/types.ts';

export type FakeOp =
  | { op: 'put'; key: string; value: string; lease?: number }
  | { op: 'delete'; key: string; rangeEnd?: string };

export class FakeCompactedError extends Error {
  readonly code = 'ERR_COMPACTED';
  constructor() {
    super('mvcc: required revision has been compacted');
  }
}

const enc = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));
const dec = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

/** rangeEnd rules on byte-strings: undefined → single key, '\0' → open-ended. */
export function inRange(k: string, key: string, rangeEnd: string | undefined): boolean {
  if (rangeEnd === undefined || rangeEnd === '') return k === key;
  if (rangeEnd === '\0') return k >= key;
  return k >= key && k < rangeEnd;
}

export class FakeSource implements EventSource {
  #rev = 1;
  #compact = 0;
  readonly #live = new Map<string, KeyValue>();
  /** Batches still readable (>= compact revision). */
  #history: RevisionBatch[] = [];
  /** Every batch ever committed, never compacted: the checkers' ground truth. */
  readonly fullLog: RevisionBatch[] = [];
  readonly #listeners = new Set<(b: RevisionBatch) => void>();
  /** Counts readEvents calls, so tests can see catch-up really read history. */
  reads = 0;
  /** Number of upcoming commits whose notification is dropped (simulates a faulty source). */
  muteNext = 0;
  /** When false, fullLog is not kept (for long benchmarks). */
  keepFullLog = true;

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

  put(key: string, value: string, lease = 0): number {
    return this.txn([{ op: 'put', key, value, lease }]);
  }

  delete(key: string, rangeEnd?: string): number {
    return this.txn([{ op: 'delete', key, rangeEnd }]);
  }

  /** Applies ops in one revision (if anything changes) and returns the store revision after. */
  txn(ops: FakeOp[]): number {
    const rev = this.#rev + 1;
    const events: Event[] = [];
    // prevKv is the key's value before this revision (etcd reads it at rev - 1), even when the
    // same txn touched the key earlier (etcd allows a put plus a delete of the "\0" range).
    const before = new Map<string, KeyValue | undefined>();
    const remember = (k: string): void => {
      if (!before.has(k)) before.set(k, this.#live.get(k));
    };
    for (const o of ops) {
      if (o.op === 'put') {
        const cur = this.#live.get(o.key);
        remember(o.key);
        const prev = before.get(o.key);
        const kv: KeyValue = {
          key: enc(o.key),
          createRevision: cur ? cur.createRevision : rev,
          modRevision: rev,
          version: cur ? cur.version + 1 : 1,
          value: enc(o.value),
          lease: BigInt(o.lease ?? 0),
        };
        this.#live.set(o.key, kv);
        // A create (version 1) carries no prevKv, as in etcd, even after a delete in the same txn.
        events.push(prev && cur ? { type: 'PUT', kv, prevKv: prev } : { type: 'PUT', kv });
      } else {
        const keys = [...this.#live.keys()].filter((k) => inRange(k, o.key, o.rangeEnd)).sort();
        for (const k of keys) {
          remember(k);
          const prev = before.get(k);
          this.#live.delete(k);
          const kv: KeyValue = {
            key: enc(k),
            createRevision: 0,
            modRevision: rev,
            version: 0,
            value: new Uint8Array(0),
            lease: 0n,
          };
          events.push(prev ? { type: 'DELETE', kv, prevKv: prev } : { type: 'DELETE', kv });
        }
      }
    }
    if (events.length === 0) return this.#rev;
    this.#rev = rev;
    const batch: RevisionBatch = { revision: rev, events };
    this.#history.push(batch);
    if (this.keepFullLog) this.fullLog.push(batch);
    if (this.muteNext > 0) this.muteNext--;
    else for (const l of [...this.#listeners]) l(batch);
    return rev;
  }

  compact(rev: number): void {
    if (rev <= this.#compact || rev > this.#rev) throw new Error(`bad compact ${rev}`);
    this.#compact = rev;
    let i = 0;
    while (i < this.#history.length && this.#history[i]!.revision < rev) i++;
    this.#history = this.#history.slice(i);
  }

  readEvents(req: Parameters<EventSource['readEvents']>[0]): RevisionBatch[] {
    this.reads++;
    if (req.fromRev < this.#compact) throw new FakeCompactedError();
    const key = dec(req.key);
    const end = req.rangeEnd === undefined ? undefined : dec(req.rangeEnd);
    const out: RevisionBatch[] = [];
    // Binary search for the first batch >= fromRev.
    let lo = 0;
    let hi = this.#history.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#history[mid]!.revision < req.fromRev) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < this.#history.length; i++) {
      const b = this.#history[i]!;
      if (b.revision > req.toRev) break;
      const evs = b.events.filter((e) => inRange(dec(e.kv.key), key, end));
      if (evs.length === 0) continue;
      out.push({
        revision: b.revision,
        events: req.prevKv ? evs : evs.map((e) => ({ type: e.type, kv: e.kv })),
      });
      if (req.limit !== undefined && out.length >= req.limit) break;
    }
    return out;
  }
}
