/**
 * A Backend held entirely in memory: for tests, and for users who want etcd semantics without a
 * file. Each bucket is a sorted array of keys; a write transaction stages its changes in an overlay
 * and folds them in on commit, so a thrown callback leaves nothing behind.
 *
 * Keys are kept as binary strings (latin1) so JS string order is byte order.
 */
import type { Backend, BackendReader, BackendWriter, ScanVisitor } from '../backend.ts';
import { MvccError } from '../errors.ts';
import { OrderedMap } from '../ordered-map.ts';
import { bytesToByteString as toStr, byteStringToBytes as toBytes } from '../../keys.ts';

type Buckets = Map<string, OrderedMap<Uint8Array>>;

class Reader implements BackendReader {
  constructor(protected readonly buckets: Buckets) {}
  get(bucket: string, key: Uint8Array): Uint8Array | undefined {
    return this.buckets.get(bucket)?.get(toStr(key));
  }
  scan(bucket: string, from: Uint8Array, to: Uint8Array | undefined, fn: ScanVisitor): void {
    const b = this.buckets.get(bucket);
    if (b === undefined) return;
    b.forEachInRange(toStr(from), to === undefined ? undefined : toStr(to), (k, v) => fn(toBytes(k), v));
  }
  scanReverse(bucket: string, from: Uint8Array, to: Uint8Array | undefined, fn: ScanVisitor): void {
    // Collecting first is fine here: reverse scans in the revision layer are short (last revision).
    const all: [string, Uint8Array][] = [];
    this.buckets.get(bucket)?.forEachInRange(toStr(from), to === undefined ? undefined : toStr(to), (k, v) => {
      all.push([k, v]);
    });
    for (let i = all.length - 1; i >= 0; i--) if (fn(toBytes(all[i]![0]), all[i]![1]) === false) return;
  }
}

class Writer extends Reader implements BackendWriter {
  /** Staged changes per bucket: value or null for a delete. */
  readonly staged = new Map<string, Map<string, Uint8Array | null>>();
  override get(bucket: string, key: Uint8Array): Uint8Array | undefined {
    const s = this.staged.get(bucket)?.get(toStr(key));
    if (s !== undefined) return s ?? undefined;
    return super.get(bucket, key);
  }
  override scan(bucket: string, from: Uint8Array, to: Uint8Array | undefined, fn: ScanVisitor): void {
    const lo = toStr(from);
    const hi = to === undefined ? undefined : toStr(to);
    // staged changes are few: sort them and merge them into the (lazy) walk of the committed map
    const staged = [...(this.staged.get(bucket) ?? [])]
      .filter(([k]) => k >= lo && (hi === undefined || k < hi))
      .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    let i = 0;
    let stopped = false;
    const emitStagedBelow = (limit: string | undefined): void => {
      while (!stopped && i < staged.length && (limit === undefined || staged[i]![0] < limit)) {
        const [k, v] = staged[i++]!;
        if (v !== null && fn(toBytes(k), v) === false) stopped = true;
      }
    };
    this.buckets.get(bucket)?.forEachInRange(lo, hi, (k, v) => {
      emitStagedBelow(k);
      if (stopped) return false;
      if (i < staged.length && staged[i]![0] === k) {
        const sv = staged[i++]![1];
        if (sv === null) return true;
        if (fn(toBytes(k), sv) === false) stopped = true;
        return !stopped;
      }
      if (fn(toBytes(k), v) === false) stopped = true;
      return !stopped;
    });
    emitStagedBelow(undefined);
  }
  override scanReverse(bucket: string, from: Uint8Array, to: Uint8Array | undefined, fn: ScanVisitor): void {
    const all: [Uint8Array, Uint8Array][] = [];
    this.scan(bucket, from, to, (k, v) => {
      all.push([k, v]);
    });
    for (let i = all.length - 1; i >= 0; i--) if (fn(all[i]![0], all[i]![1]) === false) return;
  }
  put(bucket: string, key: Uint8Array, value: Uint8Array): void {
    let s = this.staged.get(bucket);
    if (s === undefined) this.staged.set(bucket, (s = new Map()));
    s.set(toStr(key), value.slice());
  }
  delete(bucket: string, key: Uint8Array): void {
    let s = this.staged.get(bucket);
    if (s === undefined) this.staged.set(bucket, (s = new Map()));
    s.set(toStr(key), null);
  }
}

export class MemoryBackend implements Backend {
  private readonly buckets: Buckets = new Map();
  private closed = false;
  /** Key and value bytes held, kept up to date on commit. */
  private bytes = 0;

  view<T>(fn: (r: BackendReader) => T): T {
    this.checkOpen();
    return fn(new Reader(this.buckets));
  }

  async update<T>(fn: (w: BackendWriter) => T): Promise<T> {
    this.checkOpen();
    const w = new Writer(this.buckets);
    const result = fn(w);
    for (const [bucket, changes] of w.staged) {
      let b = this.buckets.get(bucket);
      if (b === undefined) this.buckets.set(bucket, (b = new OrderedMap()));
      for (const [k, v] of changes) {
        const old = b.get(k);
        if (old !== undefined) this.bytes -= k.length + old.length;
        if (v === null) b.delete(k);
        else {
          b.set(k, v);
          this.bytes += k.length + v.length;
        }
      }
    }
    return result;
  }

  /** Bytes of keys and values held; nothing is free space in memory. */
  size(): { dbSize: number; dbSizeInUse: number } {
    return { dbSize: this.bytes, dbSizeInUse: this.bytes };
  }

  /** The memory backend survives close so tests can "reopen" a store over the same data. */
  close(): void {
    this.closed = true;
  }

  /** Make a closed backend usable again (simulated restart). */
  reopen(): this {
    this.closed = false;
    return this;
  }

  private checkOpen(): void {
    if (this.closed) throw new MvccError('ERR_CLOSED', 'boltkv: backend is closed');
  }
}
