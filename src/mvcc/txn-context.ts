/**
 * The read and write transaction context (etcd's kvstore_txn): what one request sees and does. The
 * state is the key index, the lessor and the commit queue, shared by every request of one store.
 * Reads resolve the index to revision keys and read records from the overlay (not yet durable) or
 * the backend. A write transaction gives every change the revision after the current one, in order
 * of sub-revision; it bumps the current revision only if it changed something.
 */
import type { BackendReader } from './backend.ts';
import { KEY_BUCKET } from './buckets.ts';
import { decodeRecord, encodeRecord, encodeTombstone } from './codec.ts';
import type { CommitQueue } from './commit-queue.ts';
import { etcdError } from './errors.ts';
import type { KeyIndex } from './key-index.ts';
import type { Lessor } from './lessor.ts';
import type { DeleteRangeResponse, PutResponse, ResponseHeader } from './requests.ts';
import { revToBytes } from './revision.ts';
import type { Event, KeyValue, RevisionBatch } from './types.ts';
import type { NDelete, NPut } from './validate.ts';
import { bytesToByteString as bstr, byteStringToBytes, isFromKeyEnd } from '../keys.ts';
import { Panic } from '../errors.ts';

export const EMPTY: Uint8Array = Buffer.alloc(0);

/** The state every request of one store runs against. */
export interface StoreState {
  readonly index: KeyIndex;
  readonly lessor: Lessor;
  readonly queue: CommitQueue;
  /** Newest revision, including writes not yet durable. */
  currentRev: number;
  /** -1 until the first compaction, as in etcd. */
  compactMainRev: number;
}

export function header(rev: number): ResponseHeader {
  return { revision: rev };
}

/** The record at revision (main, sub), which must be a live value. */
export function readKv(s: StoreState, r: BackendReader, main: number, sub: number): KeyValue {
  const rk = revToBytes(main, sub);
  const raw = s.queue.visible(main, sub) ?? r.get(KEY_BUCKET, rk);
  if (raw === undefined) throw new Panic(`index points at missing revision ${main}_${sub}`);
  const rec = decodeRecord(raw, rk);
  if (rec.tombstone) throw new Panic('index points at a tombstone');
  return rec.kv;
}

/** The live value of a key right now (including the running transaction's own writes). */
export function liveKv(s: StoreState, r: BackendReader, ks: string): KeyValue | undefined {
  const hit = s.index.get(ks, Number.MAX_SAFE_INTEGER);
  return hit === undefined ? undefined : readKv(s, r, hit.main, hit.sub);
}

/** Live keys of [key, end) at `rev` (etcd's rangeEnd rules); up to `limit` values fetched (0: all). */
export function rangeKeys(
  s: StoreState,
  r: BackendReader,
  key: Uint8Array,
  end: Uint8Array,
  rev: number,
  limit: number,
  countOnly: boolean,
): { kvs: KeyValue[]; count: number } {
  const kvs: KeyValue[] = [];
  let count = 0;
  if (end.length === 0) {
    const hit = s.index.get(bstr(key), rev);
    if (hit !== undefined) {
      count = 1;
      if (!countOnly) kvs.push(readKv(s, r, hit.main, hit.sub));
    }
    return { kvs, count };
  }
  s.index.range(bstr(key), isFromKeyEnd(end) ? undefined : bstr(end), rev, (e) => {
    count++;
    if (!countOnly && (limit <= 0 || kvs.length < limit)) kvs.push(readKv(s, r, e.main, e.sub));
  });
  return { kvs, count };
}

/** Keys live now in [key, end) (etcd's rangeEnd rules), as byte-strings. */
export function liveKeys(s: StoreState, key: Uint8Array, end: Uint8Array): string[] {
  const out: string[] = [];
  if (end.length === 0) {
    const ks = bstr(key);
    if (s.index.current(ks) !== undefined) out.push(ks);
    return out;
  }
  s.index.range(bstr(key), isFromKeyEnd(end) ? undefined : bstr(end), Number.MAX_SAFE_INTEGER, (e) => {
    out.push(e.key);
  });
  return out;
}

/**
 * One write transaction: its changes share revision beginRev + 1. It is also the revision's batch
 * for onCommit listeners: a load keeps a thousand writes in flight across each commit's fdatasyncs,
 * so a put keeps only what it must (its encoded record, the key's previous value) and the events
 * are decoded from the records once the revision is durable.
 */
export class WriteTxn implements RevisionBatch {
  readonly beginRev: number;
  readonly #s: StoreState;
  readonly reader: BackendReader;
  /**
   * Two slots per change, in sub-revision order: a put's encoded record and the key's previous
   * live value (undefined for a new key); a delete's finished event and undefined. Made by the
   * first change at its exact size (an empty array's first push reserves 17 slots).
   */
  #changes: (Uint8Array | KeyValue | Event | undefined)[] | undefined;

  constructor(s: StoreState, reader: BackendReader) {
    this.#s = s;
    this.reader = reader;
    this.beginRev = s.currentRev;
  }

  /** How many changes (puts and deletes) this transaction made so far. */
  get changes(): number {
    return this.#changes === undefined ? 0 : this.#changes.length >> 1;
  }

  /** The revision a read inside this transaction sees (its own writes included). */
  get readRev(): number {
    return this.#changes !== undefined ? this.beginRev + 1 : this.beginRev;
  }

  /** The revision this transaction's changes carry (RevisionBatch). */
  get revision(): number {
    return this.beginRev + 1;
  }

  /**
   * The revision's events in sub-revision order, each with its prevKv (RevisionBatch), decoded on
   * every read (the store reads them once, when the revision is durable; kept here, they would stay
   * alive as long as the commit's other batches).
   */
  get events(): Event[] {
    const c = this.#changes ?? [];
    const rev = this.beginRev + 1;
    const out: Event[] = [];
    for (let i = 0; i < c.length; i += 2) {
      const x = c[i]!;
      if (!(x instanceof Uint8Array)) {
        out.push(x as Event);
        continue;
      }
      const rec = decodeRecord(x, revToBytes(rev, i >> 1));
      if (rec.tombstone) throw new Panic('a put recorded a tombstone');
      const prev = c[i + 1] as KeyValue | undefined;
      out.push(prev !== undefined ? { type: 'PUT', kv: rec.kv, prevKv: prev } : { type: 'PUT', kv: rec.kv });
    }
    return out;
  }

  put(n: NPut): PutResponse {
    const s = this.#s;
    const ks = bstr(n.key);
    // the previous value is read only when something needs it: a new key needs no read at all
    const prev = liveKv(s, this.reader, ks);
    if ((n.ignoreValue || n.ignoreLease) && prev === undefined) throw etcdError('ERR_KEY_NOT_FOUND');
    const value = n.ignoreValue ? prev!.value : n.value;
    const lease = n.ignoreLease ? prev!.lease : n.lease;
    const rev = this.beginRev + 1;
    const sub = this.changes;
    const created = prev !== undefined ? prev.createRevision : rev;
    const version = prev !== undefined ? prev.version + 1 : 1;
    // encoded straight from the request's bytes: the record is the only copy the put keeps
    const raw = encodeRecord(n.key, created, rev, version, value, lease);
    s.index.put(ks, rev, sub, created, version);
    s.queue.putVisible(rev, sub, raw);
    s.lessor.attach(ks, lease);
    this.#record(raw, prev);
    const resp: PutResponse = { header: header(rev) };
    if (n.prevKv && prev !== undefined) resp.prevKv = prev;
    return resp;
  }

  deleteRange(n: NDelete): DeleteRangeResponse {
    const live = liveKeys(this.#s, n.key, n.rangeEnd);
    const prevKvs: KeyValue[] = [];
    for (const ks of live) {
      const prev = this.deleteKey(ks);
      if (n.prevKv) prevKvs.push(prev);
    }
    return { header: header(this.readRev), deleted: live.length, prevKvs };
  }

  /** Tombstone one live key; returns its last value. */
  deleteKey(ks: string): KeyValue {
    const s = this.#s;
    const prev = liveKv(s, this.reader, ks);
    if (prev === undefined) throw new Panic('deleting a key that is not live');
    const rev = this.beginRev + 1;
    const sub = this.changes;
    s.index.tombstone(ks, rev, sub);
    const key = Buffer.from(byteStringToBytes(ks));
    s.queue.put(KEY_BUCKET, revToBytes(rev, sub, true), encodeTombstone(key));
    s.lessor.detach(ks);
    // A watcher's prevKv is the key as of the revision before this one (as etcd and our history
    // read give it), not a value written earlier in the same txn.
    const before = s.index.get(ks, this.beginRev);
    const ev: Event = {
      type: 'DELETE',
      kv: { key, createRevision: 0, modRevision: rev, version: 0, value: EMPTY, lease: 0n },
    };
    if (before !== undefined) ev.prevKv = readKv(s, this.reader, before.main, before.sub);
    this.#record(ev, undefined);
    return prev;
  }

  #record(change: Uint8Array | Event, prev: KeyValue | undefined): void {
    if (this.#changes === undefined) this.#changes = [change, prev];
    else this.#changes.push(change, prev);
  }

  /** Bump the revision and queue its announcement, if anything changed. */
  end(): void {
    if (this.#changes === undefined) return;
    this.#s.currentRev = this.beginRev + 1;
    this.#s.queue.announce(this);
  }
}
